"""Tests of toolkit.landmarks68 (face-alignment 2D-FAN-4 on boxes we already have).

Offline: the FAN and S3FD checkpoints are face-alignment's own network classes with random weights,
saved as state dicts (the format face-alignment 1.5.0 loads) into a temporary torch hub directory.
"""

from __future__ import annotations

import io
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

import weights_factory as factory
from talking_head.toolkit import landmarks68 as lm68
from talking_head.toolkit import media
from talking_head.toolkit import weights as w

NUM_TEST_FRAMES = 2  # FAN on CPU is ~0.5 s a frame; the first call also pays numba's compile (~10 s)


@pytest.fixture(scope="module")
def checkpoint_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random FAN-4 and S3FD state dicts with the real key names and shapes (written once per module)."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    files = {"fan-2d": folder / w.REGISTRY["fan-2d"].filename, "fan-s3fd": folder / w.REGISTRY["fan-s3fd"].filename}
    torch.save(FAN(4).state_dict(), files["fan-2d"])
    torch.save(s3fd().state_dict(), files["fan-s3fd"])
    return files


pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py


def place(files: dict[str, Path]) -> None:
    """Copy the checkpoints where face-alignment (and the registry) look: torch hub's checkpoints dir."""
    for name, source in files.items():
        target = w.destination(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def unpinned(name: str) -> w.WeightFile:
    """The registry entry without its size and digest: random test files are "unpinned" instead of "corrupt"."""
    return factory.unpinned(name, name=f"test-{name}")


@pytest.fixture(scope="module")
def sample_frames(shared_sample) -> tuple[np.ndarray, np.ndarray]:
    """A few decoded sample frames and tight face boxes (x1, y1, x2, y2) from their ground-truth mesh."""
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=0)[0]  # tests/conftest.py
    frames = media.read_video(clip.video, fps=25)[:NUM_TEST_FRAMES]
    points = clip.load_ground_truth()["landmarks"][:NUM_TEST_FRAMES, :, :2]
    boxes = np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)
    return frames, boxes


def crop_square(box: np.ndarray) -> tuple[float, float, float]:
    """face-alignment's crop for a box: centre (box centre, raised by 0.12 h) and half side 100 (w + h) / 195."""
    x1, y1, x2, y2 = box
    return (x1 + x2) / 2, (y1 + y2) / 2 - 0.12 * (y2 - y1), 100 * ((x2 - x1) + (y2 - y1)) / 195


def test_landmarks_on_sample_frames(checkpoint_files, sample_frames, monkeypatch: pytest.MonkeyPatch) -> None:
    import face_alignment.utils
    import torch.hub

    place(checkpoint_files)
    fan, detector = unpinned("fan-2d"), unpinned("fan-s3fd")
    assert lm68.available(fan, detector) and lm68.Landmarks68.available(fan, detector)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("download or network access attempted")

    # No download path may be taken, and no network reached.
    monkeypatch.setattr(face_alignment.utils, "load_file_from_url", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr("face_alignment.detection.sfd.sfd_detector.load_state_dict_from_url", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)

    landmarker = lm68.Landmarks68(fan_entry=fan, detector_entry=detector)
    assert landmarker._fa.flip_input is False and landmarker.flip_input is False
    monkeypatch.setattr(landmarker._fa.face_detector, "detect_from_image", refuse)  # our boxes, no detection
    assert landmarker.provenance["fan_sha256"] == w.verify(fan).actual_sha256

    frames, boxes = sample_frames
    flags = []  # TF32 flags while FAN runs: the shared fp32 guard must hold them off
    landmarker._fa.face_alignment_net.register_forward_hook(
        lambda *_: flags.append((torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)))
    points = landmarker(frames, boxes)
    assert flags == [(False, False)] * NUM_TEST_FRAMES
    assert points.shape == (NUM_TEST_FRAMES, 68, 2) and points.dtype == np.float32
    assert np.all(np.isfinite(points))
    for frame_points, box in zip(points, boxes):
        cx, cy, half = crop_square(box)  # random weights: anywhere in the crop the heatmap maps back to
        assert np.all(np.abs(frame_points[:, 0] - cx) <= half + 2)
        assert np.all(np.abs(frame_points[:, 1] - cy) <= half + 2)

    missing = boxes.copy()
    missing[1] = np.nan  # no face in frame 1
    out = landmarker(frames, missing)
    assert np.all(np.isnan(out[1]))
    np.testing.assert_array_equal(out[0], points[0])  # deterministic
    with pytest.raises(ValueError):
        landmarker(frames, boxes[:1])
    with pytest.raises(ValueError):
        landmarker(frames.astype(np.float32), boxes)


def test_missing_weights(checkpoint_files) -> None:
    assert not lm68.available()
    with pytest.raises(w.WeightsMissingError) as info:
        lm68.Landmarks68()
    message = str(info.value)
    assert "--landmarks68" in message and w.REGISTRY["fan-2d"].url in message
    assert str(w.destination("fan-2d")) in message and "toolkit weights fetch fan-2d" in message
    # FAN present, detector missing: still unavailable, and the message names the detector.
    place({"fan-2d": checkpoint_files["fan-2d"]})
    fan, detector = unpinned("fan-2d"), unpinned("fan-s3fd")
    assert not lm68.available(fan, detector)
    with pytest.raises(w.WeightsMissingError, match="s3fd-619a316812.pth"):
        lm68.Landmarks68(fan_entry=fan, detector_entry=detector)


def test_registry_refuses_random_files_in_place_of_the_pinned_ones(checkpoint_files) -> None:
    place(checkpoint_files)
    assert w.verify("fan-2d").status == "corrupt" and w.verify("fan-s3fd").status == "corrupt"
    assert not lm68.available()
    with pytest.raises(w.WeightsCorruptError, match="wrong sha256"):
        lm68.Landmarks68()


class _Payload:
    """Unpickling this would create a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


def test_detector_file_that_is_not_plain_weights_is_refused(checkpoint_files, isolated_caches: Path) -> None:
    place(checkpoint_files)
    marker = isolated_caches / "payload-ran"
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "evil": _Payload(marker)}, buffer)
    w.destination("fan-s3fd").write_bytes(buffer.getvalue())
    with pytest.raises(w.WeightsCorruptError, match="s3fd-619a316812.pth: not a plain weights file; refused"):
        lm68.Landmarks68(fan_entry=unpinned("fan-2d"), detector_entry=unpinned("fan-s3fd"))
    assert not marker.exists()


def test_checkpoints_of_the_wrong_network_are_refused(checkpoint_files) -> None:
    place(checkpoint_files)
    torch.save({"conv1.weight": torch.zeros(2)}, w.destination("fan-s3fd"))
    with pytest.raises(w.WeightsCorruptError, match="not an S3FD state dict .*Missing key"):
        lm68.Landmarks68(fan_entry=unpinned("fan-2d"), detector_entry=unpinned("fan-s3fd"))
    place({"fan-s3fd": checkpoint_files["fan-s3fd"]})
    shutil.copyfile(checkpoint_files["fan-s3fd"], w.destination("fan-2d"))  # the detector where the FAN goes
    with pytest.raises(w.WeightsCorruptError, match="2DFAN4-11f355bf06.pth.tar is not a 2D-FAN-4 state dict"):
        lm68.Landmarks68(fan_entry=unpinned("fan-2d"), detector_entry=unpinned("fan-s3fd"))
