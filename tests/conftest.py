"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every cache the weights registry and the model libraries look at into tmp_path.

    Proxies are cleared too, so test servers on 127.0.0.1 are reached directly.
    """
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TOOLKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "toolkit-cache"))
    for var in ("HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "XDG_CACHE_HOME", "http_proxy", "HTTP_PROXY",
                "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def meshed_sample(tmp_path_factory: pytest.TempPathFactory):
    """The built-in sample (8 s, seed 0: two blinks), its ground truth, and MediaPipe's meshes of its
    decoded frames (float64): the motion and blink tests share it."""
    import numpy as np

    from toolkit import face_mesh, media
    from toolkit.sample import generate

    clip = generate(tmp_path_factory.mktemp("meshed_sample"), speakers=1, clips=1, seconds=8.0, seed=0,
                    show_progress=False)[0]
    with face_mesh.FaceMeshDetector(video=True) as detector:
        meshes = [detector.detect(frame) for frame in media.read_video(clip.video)]
    assert all(m is not None for m in meshes)
    return clip, clip.load_ground_truth(), np.stack(meshes).astype(np.float64)
