"""Face tracks as SyncNet's ``run_pipeline.py`` builds them: detections chained by IoU per shot,
gaps interpolated, boxes median-smoothed, 224x224 crops padded with grey 110, and each track's audio span.

Usage::

    from talking_head.metrics.face_tracks import link_detections, interpolate_track, smooth_track, crop_face

    chains = link_detections(faces_per_frame_of_a_shot, variant="upstream")
    frames_, boxes = interpolate_track(chains[0])
    half, cx, cy = smooth_track(boxes)
    crop = crop_face(frame, half[0], cx[0], cy[0])       # (224, 224, 3) uint8

The constants are the reference's argparse defaults; the two variants and every rule kept on purpose
are described in :mod:`metrics.lse_track`, which runs these steps on decoded videos.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Optional, Sequence

import cv2
import numpy as np
from scipy import signal
from scipy.interpolate import interp1d


# ----------------------------------------------------------------------------- reference constants
# run_pipeline.py argparse defaults (joonson/syncnet_python), identical in the 0.2.3 wheel's PipelineConfig
# except min_track.
FRAME_RATE = 25  # --frame_rate: ffmpeg -r 25 before anything else
AUDIO_SAMPLE_RATE = 16000  # ffmpeg -ar 16000
FACEDET_SCALE = 0.25  # --facedet_scale
CONF_THRESHOLD = 0.9  # DET.detect_faces(..., conf_th=0.9)
NMS_THRESHOLD = 0.1  # nms_(bboxes, 0.1) inside detect_faces
CROP_SCALE = 0.40  # --crop_scale
NUM_FAILED_DET = 25  # --num_failed_det: frames a track may go without a detection
MIN_FACE_SIZE = 100  # --min_face_size, pixels of the original frame
MIN_TRACK_UPSTREAM = 100  # --min_track (run_pipeline.py)
MIN_TRACK_SYNCNET_PYTHON = 50  # PipelineConfig.min_track (syncnet-python 0.2.3, MoChaBench, LatentSync)
IOU_THRESHOLD = 0.5  # track_shot: iouThres
SMOOTHING_KERNEL = 13  # crop_video: signal.medfilt(..., kernel_size=13)
CROP_SIZE = 224  # cv2.resize(face, (224, 224)); SyncNet's lip stream needs exactly 224
PAD_VALUE = 110  # np.pad(..., constant_values=(110, 110)) / cv2.copyMakeBorder(value=(110, 110, 110))

VARIANTS = ("upstream", "syncnet-python")
Variant = Literal["upstream", "syncnet-python"]


# ----------------------------------------------------------------------------- tracking
@dataclass(frozen=True)
class Face:
    frame: int
    box: tuple[float, float, float, float]
    score: float


def _iou_upstream(a: Sequence[float], b: Sequence[float]) -> float:
    """run_pipeline.py bb_intersection_over_union (a is the new face, b the track's last box)."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(union) if union != 0 else 0.0  # the reference raises ZeroDivisionError here


def _iou_syncnet_python(a: Sequence[float], b: Sequence[float]) -> float:
    """syncnet_pipeline.py SyncNetPipeline._iou: the same with + 1e-8 in the denominator."""
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-8)


def link_detections(scene_faces: Sequence[Sequence[Face]], variant: Variant = "upstream",
                    num_failed_det: int = NUM_FAILED_DET, iou_threshold: float = IOU_THRESHOLD) -> list[list[Face]]:
    """Greedy chaining of one scene's per-frame faces into tracks, in the reference's order.

    Each pass walks the frames in order and builds one chain: the first face left starts it, later faces
    join when at most ``num_failed_det`` frames after the chain's last face and IoU > ``iou_threshold``
    with it; joined faces are removed. Passes repeat until no face is left. Returns every chain (the
    length and size filters come after). The input is not modified.
    """
    iou = _iou_upstream if variant == "upstream" else _iou_syncnet_python
    pools = [list(faces) for faces in scene_faces]
    chains: list[list[Face]] = []
    while True:
        chain: list[Face] = []
        for pool in pools:
            k = 0
            while k < len(pool):
                face = pool[k]
                if chain:
                    near = face.frame - chain[-1].frame <= num_failed_det
                    if variant == "upstream":
                        if not near:
                            break
                        if not iou(face.box, chain[-1].box) > iou_threshold:
                            k += 1  # upstream tries the frame's next face
                            continue
                    elif not (near and iou(face.box, chain[-1].box) > iou_threshold):
                        break  # the wheel gives up on the frame's remaining faces
                chain.append(face)
                del pool[k]
                # The reference removes the face from the list it is iterating over, so the iterator
                # then steps over the face that followed it: keep that quirk.
                k += 1
        if not chain:
            return chains
        chains.append(chain)


def interpolate_track(chain: Sequence[Face]) -> tuple[np.ndarray, np.ndarray]:
    """(frames, boxes): every frame from the chain's first to its last, boxes linearly interpolated.

    ``scipy.interpolate.interp1d`` per coordinate, as the reference (float64 pixels).
    """
    frame_numbers = np.array([f.frame for f in chain])
    boxes = np.array([np.array(f.box) for f in chain])
    frames = np.arange(frame_numbers[0], frame_numbers[-1] + 1)
    if len(chain) == 1:
        return frames, boxes.astype(np.float64)
    return frames, np.stack([interp1d(frame_numbers, boxes[:, c])(frames) for c in range(4)], axis=1)


def smooth_track(boxes: np.ndarray, kernel: int = SMOOTHING_KERNEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(half_size, centre_x, centre_y) per frame, each ``scipy.signal.medfilt``-ed with ``kernel``.

    half_size = max(h, w) / 2 of the (T, 4) x0 y0 x1 y1 boxes. medfilt pads with zeros, so the first and
    last kernel // 2 values lean towards 0, exactly as the reference's crops do.
    """
    boxes = np.asarray(boxes, dtype=np.float64)
    half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    return tuple(signal.medfilt(v, kernel_size=kernel) for v in (half, cx, cy))  # type: ignore[return-value]


def crop_face(frame: np.ndarray, half_size: float, cx: float, cy: float, crop_scale: float = CROP_SCALE,
              size: int = CROP_SIZE, pad_value: int = PAD_VALUE) -> np.ndarray:
    """The reference crop of one frame: (size, size, C) uint8, same channel order as ``frame``.

    Pad by ``int(s * (1 + 2 * crop_scale))`` with ``pad_value``, take rows ``int(y - s)`` ..
    ``int(y + s * (1 + 2 * crop_scale))`` and columns ``int(x - s * (1 + crop_scale))`` ..
    ``int(x + s * (1 + crop_scale))`` (padded coordinates) and ``cv2.resize`` (INTER_LINEAR). Only the
    part of the padded frame that is needed is built; the pixels are the same.
    """
    bs = half_size
    pad = int(bs * (1 + 2 * crop_scale))
    my, mx = cy + pad, cx + pad
    y1, y2 = int(my - bs), int(my + bs * (1 + 2 * crop_scale))
    x1, x2 = int(mx - bs * (1 + crop_scale)), int(mx + bs * (1 + crop_scale))
    height, width = frame.shape[:2]
    if 0 <= y1 < y2 <= height + 2 * pad and 0 <= x1 < x2 <= width + 2 * pad:
        top, bottom, left, right = y1 - pad, y2 - pad, x1 - pad, x2 - pad  # source coordinates
        region = frame[max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
        if region.size == 0:  # entirely in the padding
            region = np.full((y2 - y1, x2 - x1, *frame.shape[2:]), pad_value, dtype=frame.dtype)
        else:
            border = (max(0, -top), max(0, bottom - height), max(0, -left), max(0, right - width))
            if any(border):
                region = cv2.copyMakeBorder(region, *border, cv2.BORDER_CONSTANT,
                                            value=(pad_value,) * max(1, frame.shape[2] if frame.ndim == 3 else 1))
    else:
        # Negative or inverted indices: numpy's slicing rules decide, as in the reference.
        widths = ((pad, pad), (pad, pad)) + ((0, 0),) * (frame.ndim - 2)
        region = np.pad(frame, widths, mode="constant", constant_values=pad_value)[y1:y2, x1:x2]
        if region.size == 0:
            raise ValueError(f"empty crop rows {y1}:{y2} cols {x1}:{x2} "
                             f"(half size {bs:.2f}, centre {cx:.1f}, {cy:.1f})")
    return cv2.resize(region, (size, size))


def audio_sample_range(start_s: float, end_s: float, sample_rate: int = AUDIO_SAMPLE_RATE,
                       num_samples: Optional[int] = None) -> tuple[int, int]:
    """Samples [a, b) that ``ffmpeg -i audio.wav -ss %.3f -to %.3f`` keeps (times printed with 3 decimals)."""
    a = int(round(float(f"{start_s:.3f}") * sample_rate))
    b = int(round(float(f"{end_s:.3f}") * sample_rate))
    if num_samples is not None:
        a, b = min(a, num_samples), min(b, num_samples)
    return a, max(a, b)


# ----------------------------------------------------------------------------- results
@dataclass
class FaceTrack:
    """One face track and its SyncNet input.

    ``frames``: (T,) consecutive frame indices at ``fps``; ``boxes``: (T, 4) x0 y0 x1 y1 pixels
    (detections, linearly interpolated where missed; ``detected`` marks the real ones); ``half_size``,
    ``centre_x``, ``centre_y``: the median-smoothed crop geometry; ``crops``: (T, 224, 224, 3) RGB uint8;
    ``audio``: int16 samples of ``audio_span`` at ``sample_rate`` when the pipeline had the audio.
    """

    frames: np.ndarray
    boxes: np.ndarray
    detected: np.ndarray
    half_size: np.ndarray
    centre_x: np.ndarray
    centre_y: np.ndarray
    crops: np.ndarray
    scene: tuple[int, int]
    fps: int = FRAME_RATE
    sample_rate: int = AUDIO_SAMPLE_RATE
    audio: Optional[np.ndarray] = None

    @property
    def start_frame(self) -> int:
        return int(self.frames[0])

    @property
    def end_frame(self) -> int:
        """One past the last frame."""
        return int(self.frames[-1]) + 1

    @property
    def audio_span(self) -> tuple[float, float]:
        """(start, end) seconds of the matching audio: [first frame / fps, (last frame + 1) / fps)."""
        return self.start_frame / self.fps, self.end_frame / self.fps

    def audio_range(self, sample_rate: Optional[int] = None, num_samples: Optional[int] = None) -> tuple[int, int]:
        """Samples [a, b) of the span, cut as the reference's ffmpeg command cuts it."""
        return audio_sample_range(*self.audio_span, sample_rate or self.sample_rate, num_samples)

    def cut_audio(self, audio: np.ndarray, sample_rate: Optional[int] = None) -> np.ndarray:
        """The track's part of a whole-video 1-D audio array."""
        audio = np.asarray(audio)
        if audio.ndim != 1:
            raise ValueError(f"audio must be 1-D mono, got shape {audio.shape}")
        a, b = self.audio_range(sample_rate, len(audio))
        return audio[a:b]

    def summary(self) -> dict[str, Any]:
        return {"start_frame": self.start_frame, "end_frame": self.end_frame, "num_frames": len(self.frames),
                "detections": int(self.detected.sum()), "scene": list(self.scene),
                "audio_span": list(self.audio_span),
                "mean_box_size": float(max(np.mean(self.boxes[:, 2] - self.boxes[:, 0]),
                                           np.mean(self.boxes[:, 3] - self.boxes[:, 1])))}


@dataclass(frozen=True)
class Rejection:
    """A scene or a face chain that gave no track, and why (the reference drops these silently)."""

    scene: tuple[int, int]
    reason: str
    first_frame: Optional[int] = None
    last_frame: Optional[int] = None
    detections: int = 0


@dataclass
class TrackResult:
    tracks: list[FaceTrack]
    rejected: list[Rejection]
    scenes: list[tuple[int, int]]
    detections: list[np.ndarray]  # per frame (n, 5) x0 y0 x1 y1 score
    num_frames: int
    frame_size: tuple[int, int]  # (height, width)
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def reason(self) -> Optional[str]:
        """Why there is no track (None when there is one)."""
        if self.tracks:
            return None
        if self.num_frames == 0:
            return "no frames"
        if not any(len(d) for d in self.detections):
            return "no face detected in any frame"
        return "; ".join(dict.fromkeys(r.reason for r in self.rejected)) or "no track"

    def summary(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "frame_size": list(self.frame_size),
                "scenes": [list(s) for s in self.scenes],
                "frames_with_faces": int(sum(len(d) > 0 for d in self.detections)),
                "tracks": [t.summary() for t in self.tracks],
                "rejected": [asdict(r) for r in self.rejected], "reason": self.reason}


