"""talking_head.metrics.lpips against lpips 0.1.4 (``lpips.LPIPS(net='alex')``) with the same weights files.

The AlexNet trunk is torchvision's architecture with random weights (the real 233 MB file cannot be
downloaded here), saved under its real name in the torch hub checkpoint directory, where both
torchvision (for lpips) and our registry look. The lin heads are the real ones from the lpips wheel.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data

from talking_head.metrics.lpips import LIN_ALEX_SHA256, LIN_WEIGHTS_NAME, LPIPS, WEIGHTS_NAME, lpips
from talking_head.toolkit import weights as w

TOL = 1e-6
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory) -> Path:
    """A torchvision AlexNet state dict (all keys, features.* and classifier.*) with random weights."""
    import torchvision

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("alexnet") / w.REGISTRY[WEIGHTS_NAME].filename
    torch.save(torchvision.models.alexnet().state_dict(), path)
    return path


@pytest.fixture
def trunk(isolated_caches, monkeypatch, alexnet_file) -> Path:
    """Place the random AlexNet where torch hub / the registry look; unpin the registry entry."""
    entry = dataclasses.replace(w.REGISTRY[WEIGHTS_NAME], sha256=None, sha256_prefix=None, size=None)
    monkeypatch.setitem(w.REGISTRY, WEIGHTS_NAME, entry)
    target = w.destination(entry)
    assert target == Path(torch.hub.get_dir()) / "checkpoints" / "alexnet-owt-7be5be79.pth"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(alexnet_file)
    return target


def _pairs(frames: int = 3, size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Photo crops (reference) and degraded copies (generated), RGB uint8."""
    photo = data.astronaut()
    rng = np.random.default_rng(3)
    ref = np.stack([photo[40 + 9 * t:40 + 9 * t + size, 140 + 6 * t:140 + 6 * t + size + 32] for t in range(frames)])
    gen = np.stack([cv2.GaussianBlur(f, (0, 0), 1.5 + t) for t, f in enumerate(ref)])
    gen[-1] = np.clip(ref[-1] + rng.normal(0, 20, ref[-1].shape), 0, 255).astype(np.uint8)
    return gen, ref


def _reference_values(gen: np.ndarray, ref: np.ndarray) -> np.ndarray:
    import lpips as reference

    with warnings.catch_warnings():  # lpips 0.1.4 still passes torchvision's deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        model = reference.LPIPS(net="alex", verbose=False)  # torchvision loads the file placed by `trunk`
    with torch.no_grad():
        return np.array([model(reference.im2tensor(g), reference.im2tensor(r)).item() for g, r in zip(gen, ref)])


def test_equals_reference_lpips_per_frame(trunk):
    gen, ref = _pairs()
    expected = _reference_values(gen, ref)
    metric = LPIPS(batch_size=2)  # batches of 2 and 1: batching must not change the numbers
    metric.update(gen, ref)
    values = metric.per_frame()
    assert values.shape == (3,)
    assert np.abs(values - expected).max() < TOL
    assert len(set(np.round(expected, 8))) == 3  # distinct, non-degenerate distances
    result = metric.compute()
    assert result["num_frames"] == 3 and abs(result["lpips"] - expected.mean()) < TOL


def test_float_input_in_minus_one_one_equals_uint8(trunk):
    gen, ref = _pairs(frames=2)
    metric = LPIPS()
    from_uint8 = metric.distances(gen, ref)
    from_float = metric.distances(gen / 127.5 - 1.0, ref / 127.5 - 1.0)
    assert np.abs(from_uint8 - from_float).max() < TOL


def test_identical_frames_give_zero_and_streaming_matches(trunk):
    gen, ref = _pairs(frames=3)
    metric = LPIPS()
    assert np.all(metric.distances(ref, ref) == 0.0)
    metric.update(gen[:1], ref[:1])
    metric.update(gen[1], ref[1])  # one (H, W, 3) frame
    metric.update(gen[2:], ref[2:])
    assert abs(metric.compute()["lpips"] - lpips(gen, ref)["lpips"]) < 1e-9
    metric.reset()
    with pytest.raises(ValueError, match="before any update"):
        metric.compute()


def test_provenance_and_config(trunk):
    metric = LPIPS()
    provenance = metric.weights_provenance()
    assert provenance[WEIGHTS_NAME] == hashlib.sha256(trunk.read_bytes()).hexdigest()
    assert provenance[LIN_WEIGHTS_NAME] == LIN_ALEX_SHA256
    cfg = metric.config()
    assert cfg["net"] == "alex" and cfg["version"] == "0.1" and cfg["shift"] == [-0.030, -0.088, -0.188]


def test_missing_trunk_names_the_file(isolated_caches, monkeypatch):
    monkeypatch.setitem(w.REGISTRY, WEIGHTS_NAME, dataclasses.replace(w.REGISTRY[WEIGHTS_NAME], sha256_prefix=None))
    with pytest.raises(w.WeightsMissingError, match="alexnet-owt-7be5be79.pth"):
        LPIPS()


def test_wrong_checkpoint_is_rejected(isolated_caches, monkeypatch):
    entry = dataclasses.replace(w.REGISTRY[WEIGHTS_NAME], sha256_prefix=None, sha256=None, size=None)  # reach the load
    monkeypatch.setitem(w.REGISTRY, WEIGHTS_NAME, entry)
    w.destination(entry).parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.zeros(64, 3, 11, 11)}, w.destination(entry))  # truncated state dict
    with pytest.raises(w.WeightsCorruptError, match="not a torchvision AlexNet"):
        LPIPS()


@pytest.mark.parametrize(
    "gen, ref, message",
    [
        (np.zeros((1, 64, 64, 3), np.uint8), np.zeros((1, 64, 60, 3), np.uint8), "same shape"),
        (np.zeros((1, 64, 64), np.uint8), np.zeros((1, 64, 64), np.uint8), r"\(T, H, W, 3\)"),
        (np.zeros((0, 64, 64, 3), np.uint8), np.zeros((0, 64, 64, 3), np.uint8), "empty"),
        (np.zeros((1, 64, 64, 3), np.int16), np.zeros((1, 64, 64, 3), np.int16), "dtype"),
        (np.full((1, 64, 64, 3), 200.0), np.zeros((1, 64, 64, 3)), r"\[-1, 1\]"),
        (np.zeros((1, 64, 64, 3), np.uint8), np.zeros((1, 64, 64, 3)), "same range"),
        (np.zeros((1, 16, 16, 3), np.uint8), np.zeros((1, 16, 16, 3), np.uint8), "too small"),
    ],
)
def test_bad_input_raises_value_error(trunk, gen, ref, message):
    with pytest.raises(ValueError, match=message):
        LPIPS().update(gen, ref)


def test_no_torchvision_import():
    # The module and its network run in plain torch: torchvision is never imported.
    code = (
        "import sys, torch\n"
        "from metrics.lpips import AlexNetLPIPS\n"
        "net = AlexNetLPIPS()\n"
        "x = torch.zeros(1, 3, 64, 64)\n"
        "assert net(x, x).shape == (1,)\n"
        "assert not [m for m in sys.modules if m.startswith('torchvision')], 'torchvision was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
