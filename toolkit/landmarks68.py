"""Optional 68-point facial landmarks with face-alignment's 2D-FAN-4 (``--landmarks68``), from boxes we already have.

Usage::

    from talking_head.toolkit.landmarks68 import Landmarks68, available

    if available():                      # both checkpoints present and verified
        points = Landmarks68(device="cpu")(frames, boxes)  # (n, H, W, 3) RGB, (n, 4) x1 y1 x2 y2 -> (n, 68, 2)

Fidelity notes
--------------

face-alignment 1.5.0's ``FaceAlignment(LandmarksType.TWO_D, ...)`` constructor loads two checkpoints:

* the landmark network ``2DFAN4-11f355bf06.pth.tar`` (registry entry ``fan-2d``): through
  ``load_file_from_url`` from ``torch.hub.get_dir()/checkpoints`` - *downloading it if absent* - then
  ``torch.load(weights_only=True)``;
* the S3FD face detector ``s3fd-619a316812.pth`` (``fan-s3fd``): through
  ``torch.hub.load_state_dict_from_url``, which also downloads if absent and unpickles with
  ``weights_only=False``.

Neither of those paths is used here. Both files are first verified by :mod:`toolkit.weights`
(missing/corrupt raise with the registry's fetch instructions). The FAN state dict is then read by
``weights.load_torch`` (``weights_only=True``) and handed to the network by overriding face-alignment's
``_load_native`` hook; the detector is given by path (``path_to_detector``), which face-alignment reads with
``torch.load(weights_only=True)``. Nothing can trigger a download.

The detector is loaded because ``FaceAlignment`` always builds one, but it never runs: our boxes are
passed as ``detected_faces``. Box -> crop uses face-alignment's own rule (centre of the box moved up by
0.12 h, scale (w + h) / 195), so boxes should be tight face boxes like S3FD's.

``flip_input=False`` (see :data:`FLIP_INPUT`); ``compile=False`` (torch.compile costs > 30 s per process on
CPU and gains nothing there).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from talking_head.toolkit import weights
from talking_head.toolkit.fp32 import strict_fp32
from talking_head.toolkit.frames import as_frames

__all__ = ["NUM_POINTS", "FLIP_INPUT", "FAN_WEIGHTS", "DETECTOR_WEIGHTS", "SUPPORTED_FACE_ALIGNMENT", "available",
           "Landmarks68"]

NUM_POINTS = 68  # iBUG 300-W 68-point layout (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67)
# face-alignment <= 1.4.1 defaulted to flip_input=False and the reference LMD scripts ran those versions;
# 1.5.0 defaults to True (averages in the mirrored image's heatmaps: 2x cost, slightly different points).
FLIP_INPUT = False
FAN_WEIGHTS = "fan-2d"  # registry entry of 2DFAN4-11f355bf06.pth.tar
DETECTOR_WEIGHTS = "fan-s3fd"  # registry entry of s3fd-619a316812.pth (built by FaceAlignment, unused here)
SUPPORTED_FACE_ALIGNMENT = "1.5."  # _load_native and the native .pth.tar checkpoints appeared in 1.5.0
BOX_FORMAT = "x1, y1, x2, y2 in pixels"  # face-alignment's detected_faces convention


def available(fan_entry: str | weights.WeightFile = FAN_WEIGHTS,
              detector_entry: str | weights.WeightFile = DETECTOR_WEIGHTS) -> bool:
    """True when both checkpoints are present and not known to be wrong ("ok" or "unpinned")."""
    return weights.verify(fan_entry).usable and weights.verify(detector_entry).usable


def _brief(err: BaseException, limit: int = 300) -> str:
    """An exception message on one line, cut to `limit` characters (state-dict errors list every key)."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _check_face_alignment() -> None:
    """Raise unless the installed face-alignment has the loading hook this module relies on."""
    import face_alignment

    version = getattr(face_alignment, "__version__", "unknown")
    if not version.startswith(SUPPORTED_FACE_ALIGNMENT) or not hasattr(face_alignment.FaceAlignment, "_load_native"):
        raise RuntimeError(f"face-alignment {version} is not supported: 68-point landmarks need face-alignment 1.5.x")


def _face_alignment_with_state(fan_state: dict[str, Any], source: str, **kwargs: Any) -> Any:
    """A face_alignment.FaceAlignment whose FAN gets `fan_state` (read from `source`) instead of a
    (possibly downloaded) file."""
    import face_alignment
    from face_alignment.models import FAN

    class _RegistryFaceAlignment(face_alignment.FaceAlignment):
        def _load_native(self, network_name: str, network_size: int, device: str, dtype: Any) -> Any:
            net = FAN(network_size)
            try:
                net.load_state_dict(fan_state)
            except (RuntimeError, TypeError, AttributeError) as err:
                raise weights.WeightsCorruptError(
                    f"{source} is not a 2D-FAN-4 state dict: {_brief(err)}"
                ) from err
            net.to(device, dtype=dtype)
            net.eval()
            return net

    return _RegistryFaceAlignment(**kwargs)


class Landmarks68:
    """``Landmarks68()(frames, boxes) -> (n, 68, 2)`` float32 (x, y) pixel coordinates, NaN where a box is NaN.

    `frames` are (n, H, W, 3) uint8 RGB, `boxes` (n, 4) float as (x1, y1, x2, y2) pixels, one face per frame.
    Boxes must be *tight face boxes* (brows to chin, like S3FD's): FAN crops about 2x the box around it,
    so a loose box (e.g. a whole 2.5x face crop) leaves the face a fraction of FAN's 256 px input.
    `fan_entry` / `detector_entry` replace the registry entries (private mirrors, tests).
    The first call in a process also pays numba's compilation of face-alignment's heatmap decoding (~10 s).
    """

    available = staticmethod(available)

    def __init__(self, device: str = "cpu", *, flip_input: bool = FLIP_INPUT,
                 fan_entry: str | weights.WeightFile = FAN_WEIGHTS,
                 detector_entry: str | weights.WeightFile = DETECTOR_WEIGHTS) -> None:
        fan = weights.get(fan_entry)
        detector = weights.get(detector_entry)
        for entry in (fan, detector):
            try:
                weights.require(entry)
            except weights.WeightsMissingError as err:
                raise weights.WeightsMissingError(
                    f"68-point landmarks (--landmarks68) need face-alignment's weights.\n{err}"
                ) from None
        _check_face_alignment()
        fan_state = weights.load_torch(fan, map_location="cpu")  # verified, weights_only=True
        import face_alignment

        try:  # FaceAlignment builds the detector first, then the FAN (whose errors are raised above)
            self._fa = _face_alignment_with_state(
                fan_state,
                f"'{fan.name}' at {weights.weights_file(fan)}",
                landmarks_type=face_alignment.LandmarksType.TWO_D,
                device=device,
                flip_input=flip_input,
                face_detector="sfd",
                face_detector_kwargs={"path_to_detector": str(weights.weights_file(detector))},
                compile=False,
            )
        except (RuntimeError, pickle.UnpicklingError, EOFError, KeyError) as err:
            why = ("not a plain weights file; refused to unpickle" if isinstance(err, pickle.UnpicklingError)
                   else f"not an S3FD state dict ({_brief(err)})")
            raise weights.WeightsCorruptError(
                f"'{detector.name}' at {weights.weights_file(detector)}: {why}"
            ) from err
        self.device = device
        self.flip_input = flip_input
        self.provenance: dict[str, Any] = {
            "landmarker": "face-alignment 2D-FAN-4",
            "face_alignment_version": face_alignment.__version__,
            "flip_input": flip_input,
            "box_format": BOX_FORMAT,
            "fan_weights": fan.name,
            "fan_sha256": weights.verify(fan).actual_sha256,
            "detector_weights": detector.name,
            "detector_sha256": weights.verify(detector).actual_sha256,
        }

    def __call__(self, frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """(n, 68, 2) landmarks, one FAN pass per frame on the given box; NaN rows where a box is NaN/empty."""
        frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape != (len(frames), 4):
            raise ValueError(f"boxes must be ({len(frames)}, 4) ({BOX_FORMAT}), got {boxes.shape}")
        out = np.full((len(frames), NUM_POINTS, 2), np.nan, dtype=np.float32)
        with strict_fp32():  # FAN's reference landmarks were made in fp32, not TF32
            for i, (frame, box) in enumerate(zip(frames, boxes)):
                if not np.all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
                    continue  # no face in this frame
                points = self._fa.get_landmarks_from_image(np.ascontiguousarray(frame), detected_faces=[box])
                out[i] = np.asarray(points[0], dtype=np.float32)[:, :2]
        return out
