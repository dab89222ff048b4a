"""Reference work done once (issue 20): against a dataset, the runner reads the meshes `toolkit preprocess`
stored for the reference crops instead of running MediaPipe on them again, when they describe exactly the
frames it reads; otherwise it runs MediaPipe and says why."""

from __future__ import annotations

import numpy as np
import pytest
from shifted_videos import shifted_crop_videos

from talking_head.metrics import evaluate
from talking_head.metrics.pairing import dataset_meshes
from talking_head.toolkit import dataset as schema
from talking_head.toolkit import face_mesh


@pytest.fixture
def generated(small_preprocessed_sample, tmp_path):
    """The test clip's crop video, shifted by 3 pixels: a generated video with known landmark motion."""
    return shifted_crop_videos(small_preprocessed_sample, tmp_path / "generated", pixels=3)


@pytest.fixture
def mesh_calls(monkeypatch):
    """How many frames MediaPipe's mesh was run on, counted at the detector."""
    calls = {"frames": 0}
    detect = face_mesh.FaceMeshDetector.detect

    def counted(self, image):
        calls["frames"] += 1
        return detect(self, image)

    monkeypatch.setattr(face_mesh.FaceMeshDetector, "detect", counted)
    return calls


def test_stored_reference_meshes_replace_mediapipe(small_preprocessed_sample, generated, tmp_path, mesh_calls):
    stored = dataset_meshes(small_preprocessed_sample, "test", tmp_path / "meshes")
    rows = schema.load_split(small_preprocessed_sample, "test").with_format("numpy")
    for row in rows:  # the cache holds the dataset's own arrays
        with np.load(stored[row[schema.CLIP_ID]]) as cached:
            assert np.array_equal(cached["landmarks"], row[schema.LANDMARKS], equal_nan=True)
            assert tuple(cached["size"]) == (256, 256) and float(cached["fps"]) == 25.0
    frames = sum(int(row[schema.NUM_FRAMES]) for row in rows)

    summary = evaluate(generated, small_preprocessed_sample, metrics=["lmd", "pose"], out=tmp_path / "stored",
                       show_progress=False, bootstrap=0)
    assert mesh_calls["frames"] == frames  # the generated side only
    per_video = (tmp_path / "stored" / "per_video.csv").read_text()
    assert "stored" in per_video and "MediaPipe ran on the reference" not in per_video
    assert summary["videos"] == len(rows) and np.isfinite(summary["results"]["lmd"]["face_lmd"])

    assert summary["options"]["reference_meshes"] == "stored"

    # MediaPipe on the decoded reference frames (what a folder of the same videos gives) runs on both sides and,
    # since toolkit preprocess meshes the crop video as it decodes, finds exactly the stored meshes.
    mesh_calls["frames"] = 0
    recomputed = evaluate(generated, small_preprocessed_sample, metrics=["lmd", "pose"], out=tmp_path / "recomputed",
                          show_progress=False, bootstrap=0, reference_meshes="mediapipe")
    assert mesh_calls["frames"] == 2 * frames and "reference_meshes" not in recomputed["options"]
    assert recomputed["results"] == summary["results"]
    with pytest.raises(ValueError, match="reference_meshes must be one of stored, mediapipe"):
        evaluate(generated, small_preprocessed_sample, metrics=["lmd"], reference_meshes="fan", show_progress=False)


def test_meshes_that_do_not_fit_are_recomputed_and_said_so(small_preprocessed_sample, generated, tmp_path,
                                                           mesh_calls):
    """Read at 30 fps the reference frames are not the ones the meshes were stored for."""
    summary = evaluate(generated, small_preprocessed_sample, metrics=["lmd"], out=tmp_path / "fps30", fps=30,
                       show_progress=False, bootstrap=0)
    per_video = (tmp_path / "fps30" / "per_video.csv").read_text()
    assert "read at 30 fps, stored at 25" in per_video and "MediaPipe ran on the reference frames" in per_video
    assert mesh_calls["frames"] == 2 * summary["frames"]
