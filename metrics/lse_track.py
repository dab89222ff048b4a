"""The LSE face-track crop pipeline: SyncNet's ``run_pipeline`` on frames decoded once, in memory.

Usage::

    from talking_head.metrics.lse_track import track_video
    from talking_head.metrics.lse import compute_lse

    result = track_video("clip.mp4")                 # face tracks: 224x224 RGB crops + their audio
    tracks = [(t.crops, t.audio) for t in result.tracks]
    compute_lse({"clip": tracks})["lse_d"]           # and ["lse_c"]

The steps live in two modules of their own: :mod:`metrics.scene_cuts` (shot cuts) and
:mod:`metrics.face_tracks` (linking detections, smoothing, cropping, audio spans); this module runs
them on decoded videos with the S3FD detector and feeds :mod:`metrics.lse`.

How it matches the reference
----------------------------

LSE-C / LSE-D are scored on 224x224 face crops that the reference makes with
``run_pipeline.py`` (joonson/syncnet_python) or its packaged copy ``syncnet_pipeline.py``
(syncnet-python 0.2.3, from MoChaBench): S3FD on every 25 fps frame, PySceneDetect shot cuts, greedy
IoU face tracks per shot, a median-smoothed crop per track. This module reproduces that logic on
RGB frames held in memory - no JPEG dumps, no AVI re-encodes, no ffmpeg calls - and hands the crops
and the matching audio span to the SyncNet scorer (:mod:`metrics.lse`)::

    result = track_video("clip.mp4")                       # or track_faces(frames) / FaceTrackPipeline
    for track in result.tracks:
        track.crops          # (T, 224, 224, 3) RGB uint8, frames track.start_frame .. track.end_frame - 1
        track.audio_span     # (start, end) seconds, the reference's `ffmpeg -ss %.3f -to %.3f` cut
        track.audio          # int16 16 kHz samples of that span (when the pipeline was given audio)
    result.rejected          # every track / shot that was dropped, with the reason
    result.config            # every knob that changes the crops
    lse.update(video_id, [(t.crops, t.audio) for t in result.tracks], reason=result.reason)  # metrics.lse.LSE

Reference behaviour kept on purpose (each one changes the crops):

* **Scene cuts**: PySceneDetect 0.6.x ``ContentDetector()`` with its defaults (threshold 27 on the mean
  HSV difference, 15-frame minimum scene, MERGE flash filter), on frames downscaled the way
  ``SceneManager`` auto-downscales (to >= 256 px on the longer side, ``cv2.INTER_LINEAR``). In 0.6.x
  ``VideoManager.set_downscale_factor()`` - called by upstream, not by the wheel - is a no-op, so both
  see the same auto-downscaled frames. No cut: one scene covering the whole video.
* **Tracking** per scene of at least ``min_track`` frames: greedy chaining of detections with IoU > 0.5
  against the track's last box and at most ``num_failed_det`` frames between detections. The reference
  removes faces from the list it is iterating over, so the face right after a taken one is not looked
  at in that pass; kept. Two variants: ``"upstream"`` (run_pipeline.py: on an IoU miss, try the next
  face of the frame) and ``"syncnet-python"`` (the 0.2.3 wheel / MoChaBench: an IoU miss abandons the
  frame's remaining faces; IoU denominator + 1e-8). They differ only with several faces in a frame.
* A track is kept if it has **more than** ``min_track`` detections (upstream 100, wheel 50) and its mean
  box width or height (after linear interpolation over missed frames) is **more than** ``min_face_size``
  pixels of the original frame.
* **Crop**: half-size s = max(w, h) / 2 and the box centre, each ``scipy.signal.medfilt``-ed with kernel
  13 (zero-padded at the ends, which shrinks s and pulls the centre towards the origin over the first
  and last 6 frames, as in the reference); the frame is padded by ``int(s * (1 + 2 * 0.4))`` with the
  value 110; rows [y - s, y + 1.8 s) and columns [x - 1.4 s, x + 1.4 s) (``int()``-truncated) are
  resized to 224 x 224 with ``cv2.resize`` (INTER_LINEAR). The whole lower-shifted face, not a mouth.
* **Audio**: a track covering frames f0..f1 gets the audio of [f0 / 25, (f1 + 1) / 25) s, cut as
  ``ffmpeg -ss %.3f -to %.3f`` cuts a 16 kHz WAV (sample round(t * 16000), checked against ffmpeg).

What is *not* reproduced by default: the reference's lossy round trips. It detects faces and crops on
JPEG (q2) frames of an MPEG-4 (q2) AVI re-encode, writes the crops with OpenCV's XVID writer and
SyncNet reads them back as default-quality JPEGs. ``reference_exact=True`` (``track_video`` only)
re-runs those encodes with the same tools (the ffmpeg binary of ``imageio_ffmpeg`` and OpenCV), in a
temporary directory because ffmpeg's AVI/JPEG muxers and OpenCV's ``VideoWriter`` need files, and
returns the pixels SyncNet would read; it matches the reference bit for bit when the reference uses
the same ffmpeg and OpenCV builds (see tests), and not otherwise (codecs differ between builds).
``cv2.imencode`` cannot stand in for ffmpeg's q2 JPEG (different quantisation tables and chroma
handling), so there is no file-free exact mode. Measured on the synthetic sample, the default crops
differ from the exact ones by 5-6 grey levels (mean absolute difference) after aligning the frames.

The reference's timing quirks come with the exact mode. With the ffmpeg 9 binary here, dumping the q2
AVI (MPEG-4 + MP3 audio) to JPEGs duplicates the first frames (``dup=2``: JPEG k shows AVI frame k - 2),
so the reference's frame list is 2 frames longer than the video and shifted by 80 ms, while scene cuts
are found on the AVI itself (unshifted). Upstream takes its audio from that AVI, whose MP3 priming
delay (1105 samples, 69 ms) shifts the audio by almost as much; the syncnet-python wheel takes the
audio from the source instead, so its crops lag their audio by 2 frames. The default mode has none of
this: frame k is the source's frame k at 25 fps and the audio starts with it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Sequence, Union

import cv2
import numpy as np

from talking_head.metrics.base import CHUNK, Chunk, VideoInfo, batch_size_for
from talking_head.metrics.face_tracks import (
    AUDIO_SAMPLE_RATE, CONF_THRESHOLD, CROP_SCALE, CROP_SIZE, FACEDET_SCALE, FRAME_RATE, IOU_THRESHOLD,
    MIN_FACE_SIZE, MIN_TRACK_SYNCNET_PYTHON, MIN_TRACK_UPSTREAM, NMS_THRESHOLD, NUM_FAILED_DET, PAD_VALUE,
    SMOOTHING_KERNEL, VARIANTS, Face, FaceTrack, Rejection, TrackResult, Variant, audio_sample_range, crop_face,
    interpolate_track, link_detections, smooth_track,
)
from talking_head.metrics.lse import DEFAULT_FRAMES, LSEVideos, plain_result
from talking_head.metrics.lse_score import ffmpeg_exe, score_crops
from talking_head.metrics.scene_cuts import (
    SCENE_MIN_LENGTH, SCENE_MIN_WIDTH, SCENE_THRESHOLD, SceneDetector, detect_scenes,
)
from talking_head.toolkit import media
from talking_head.toolkit.frames import as_frames

__all__ = [
    "FRAME_RATE",
    "AUDIO_SAMPLE_RATE",
    "CROP_SIZE",
    "CROP_SCALE",
    "PAD_VALUE",
    "SMOOTHING_KERNEL",
    "IOU_THRESHOLD",
    "NUM_FAILED_DET",
    "MIN_FACE_SIZE",
    "MIN_TRACK_UPSTREAM",
    "MIN_TRACK_SYNCNET_PYTHON",
    "SCENE_THRESHOLD",
    "SCENE_MIN_LENGTH",
    "SCENE_MIN_WIDTH",
    "VARIANTS",
    "PRESETS",
    "TrackConfig",
    "SceneDetector",
    "FaceTrack",
    "Rejection",
    "TrackResult",
    "FaceTrackPipeline",
    "link_detections",
    "interpolate_track",
    "smooth_track",
    "crop_face",
    "audio_sample_range",
    "detect_scenes",
    "track_faces",
    "track_video",
    "crops_from_boxes",
]



@dataclass(frozen=True)
class TrackConfig:
    """Every knob of the face-track pipeline that changes the crops (see the module docstring)."""

    variant: Variant = "upstream"
    min_track: int = MIN_TRACK_UPSTREAM
    min_face_size: float = MIN_FACE_SIZE
    num_failed_det: int = NUM_FAILED_DET
    iou_threshold: float = IOU_THRESHOLD
    facedet_scale: float = FACEDET_SCALE
    conf_threshold: float = CONF_THRESHOLD
    nms_threshold: float = NMS_THRESHOLD
    smoothing_kernel: int = SMOOTHING_KERNEL
    crop_scale: float = CROP_SCALE
    crop_size: int = CROP_SIZE
    pad_value: int = PAD_VALUE
    scene_threshold: float = SCENE_THRESHOLD
    scene_min_length: int = SCENE_MIN_LENGTH
    frame_rate: int = FRAME_RATE
    audio_sample_rate: int = AUDIO_SAMPLE_RATE
    reference_exact: bool = False

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        for name in ("min_track", "num_failed_det", "scene_min_length"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.smoothing_kernel < 1 or self.smoothing_kernel % 2 == 0:
            raise ValueError(f"smoothing_kernel must be a positive odd number, got {self.smoothing_kernel}")
        if not 0.0 <= self.iou_threshold < 1.0:
            raise ValueError(f"iou_threshold must be in [0, 1), got {self.iou_threshold}")
        if not self.facedet_scale > 0:
            raise ValueError(f"facedet_scale must be positive, got {self.facedet_scale}")
        if not 0.0 <= self.conf_threshold < 1.0:
            raise ValueError(f"conf_threshold must be in [0, 1), got {self.conf_threshold}")
        if self.crop_scale < 0 or self.crop_size < 1 or self.frame_rate < 1 or self.audio_sample_rate < 1:
            raise ValueError("crop_scale must be >= 0 and crop_size, frame_rate, audio_sample_rate >= 1")
        if not 0 <= self.pad_value <= 255:
            raise ValueError(f"pad_value must be in 0..255, got {self.pad_value}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Named settings of the tools people run. "upstream": joonson/syncnet_python run_pipeline.py and the
# Wav2Lip real-video scripts on top of it. "syncnet-python": the PyPI wheel 0.2.3 / MoChaBench.
PRESETS: dict[str, TrackConfig] = {
    "upstream": TrackConfig(),
    "syncnet-python": TrackConfig(variant="syncnet-python", min_track=MIN_TRACK_SYNCNET_PYTHON),
}


# ----------------------------------------------------------------------------- pipeline
Detector = Callable[[np.ndarray], list[np.ndarray]]


def _check_detections(dets: Any, frame: int) -> np.ndarray:
    dets = np.asarray(dets, dtype=np.float64)
    if dets.size == 0:
        return np.empty((0, 5))
    if dets.ndim != 2 or dets.shape[1] not in (4, 5):
        raise ValueError(f"detections of frame {frame} must be (n, 5) x0 y0 x1 y1 score, got shape {dets.shape}")
    if dets.shape[1] == 4:
        dets = np.concatenate([dets, np.ones((len(dets), 1))], 1)
    return dets


class FaceTrackPipeline:
    """Streaming face-track crop pipeline: ``update(frames)`` chunk by chunk, ``compute()``, ``reset()``.

    ``update`` runs the detector and the scene detector on each chunk of consecutive RGB uint8 frames
    (at the pipeline's 25 fps) and keeps the frames (the crops need them); ``compute`` tracks, smooths
    and crops. ``detector`` is anything mapping (n, H, W, 3) RGB frames to per-frame (k, 5) arrays; by
    default :class:`metrics.s3fd.S3FD` with the registry weights and this config's scale / threshold.
    ``audio`` (int16 mono at ``audio_sample_rate``, the whole video) is cut per track when given.
    """

    def __init__(self, config: Union[TrackConfig, str, None] = None, *, detector: Optional[Detector] = None,
                 device: str = "cpu", **overrides: Any) -> None:
        if isinstance(config, str):
            if config not in PRESETS:
                raise ValueError(f"unknown preset {config!r}; presets: {', '.join(PRESETS)}")
            config = PRESETS[config]
        config = config or TrackConfig()
        self.cfg = replace(config, **overrides) if overrides else config
        self.device = device
        self._detector = detector
        self._detector_info: Optional[dict[str, Any]] = None  # set when boxes come from elsewhere
        self._s3fd = None
        self.reset()

    # ---------------------------------------------------------------- provenance
    def config(self) -> dict[str, Any]:
        out = {"pipeline": "syncnet run_pipeline face tracks (metrics.lse_track)", **self.cfg.as_dict(),
               "scene_detection": self._scenes.config()}
        if self._detector_info is not None:
            out["detector"] = dict(self._detector_info)
        elif self._detector is None:
            out["detector"] = {"name": "s3fd", "scales": [self.cfg.facedet_scale],
                               "conf_threshold": self.cfg.conf_threshold, "nms_threshold": self.cfg.nms_threshold}
        else:
            out["detector"] = {"name": getattr(self._detector, "__name__", type(self._detector).__name__)}
        return out

    def weights_provenance(self) -> dict[str, Optional[str]]:
        if self._detector is not None:
            provenance = getattr(self._detector, "weights_provenance", None)
            return provenance() if callable(provenance) else {}
        return self._s3fd_detector().weights_provenance()

    # ---------------------------------------------------------------- streaming
    def reset(self) -> None:
        self._frames: list[np.ndarray] = []
        self._detections: list[np.ndarray] = []
        self._scenes = SceneDetector(self.cfg.scene_threshold, self.cfg.scene_min_length)
        self._audio: Optional[np.ndarray] = None

    def _s3fd_detector(self):
        if self._s3fd is None:
            from talking_head.metrics.s3fd import BATCH_SIZE, S3FD

            self._s3fd = S3FD.from_registry(device=self.device, batch_size=batch_size_for(BATCH_SIZE, self.device))
        return self._s3fd

    def _detect(self, frames: np.ndarray) -> list[np.ndarray]:
        if self._detector is not None:
            found = self._detector(frames)
        else:
            found = self._s3fd_detector().detect_faces(frames, conf_th=self.cfg.conf_threshold,
                                                       scales=[self.cfg.facedet_scale],
                                                       nms_threshold=self.cfg.nms_threshold)
        if len(found) != len(frames):
            raise ValueError(f"the detector returned {len(found)} results for {len(frames)} frames")
        return [_check_detections(d, len(self._detections) + k) for k, d in enumerate(found)]

    def update(self, frames: np.ndarray, detections: Optional[Sequence[np.ndarray]] = None,
               channel_order: Literal["RGB", "BGR"] = "RGB") -> None:
        """Add consecutive frames (n, H, W, 3) uint8; ``detections`` skips the detector for them.

        ``channel_order="BGR"`` is for frames straight from OpenCV (scene detection only; the detector
        and the crops get RGB).
        """
        frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
        if self.cfg.reference_exact:
            raise ValueError("reference_exact re-encodes the video file like the reference: use track_video(path)")
        if self._frames and frames.shape[1:] != self._frames[0].shape[1:]:
            raise ValueError(f"frame size changed from {self._frames[0].shape[1:3]} to {frames.shape[1:3]}")
        self._scenes.update(frames, channel_order)
        if channel_order == "BGR":
            frames = frames[..., ::-1]
        if detections is None:
            found = self._detect(np.ascontiguousarray(frames))
        else:
            if len(detections) != len(frames):
                raise ValueError(f"{len(detections)} detection lists for {len(frames)} frames")
            found = [_check_detections(d, len(self._detections) + k) for k, d in enumerate(detections)]
            self._detector_info = self._detector_info or {"name": "given per-frame detections"}
        self._detections += found
        self._frames.append(frames)

    def set_audio(self, audio: Optional[np.ndarray]) -> None:
        """The whole video's audio (1-D int16 at ``audio_sample_rate``); each track gets its cut."""
        if audio is not None:
            audio = np.asarray(audio)
            if audio.ndim != 1:
                raise ValueError(f"audio must be 1-D mono, got shape {audio.shape}")
            if audio.dtype != np.int16:
                raise ValueError(f"audio must be int16 samples (SyncNet's MFCC needs that scale), got {audio.dtype}")
        self._audio = audio

    def compute(self, scenes: Optional[Sequence[tuple[int, int]]] = None,
                crop_hook: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> TrackResult:
        """Tracks and crops for everything passed to ``update``. ``scenes`` overrides the scene cuts."""
        num_frames = len(self._detections)
        frame_size = tuple(self._frames[0].shape[1:3]) if self._frames else (0, 0)
        scene_list = list(scenes) if scenes is not None else self._scenes.scenes()
        result = TrackResult([], [], [tuple(map(int, s)) for s in scene_list], list(self._detections),
                             num_frames, frame_size, self.config())  # type: ignore[arg-type]
        if num_frames == 0:
            return result
        frames = _ChunkedFrames(self._frames)
        cfg = self.cfg
        for start, end in result.scenes:
            if not 0 <= start <= end <= num_frames:
                raise ValueError(f"scene ({start}, {end}) outside 0..{num_frames}")
            if end - start < cfg.min_track:
                result.rejected.append(Rejection((start, end), f"scene of {end - start} frames is shorter than "
                                                 f"min_track={cfg.min_track}"))
                continue
            faces = [[Face(f, tuple(float(v) for v in d[:4]), float(d[4])) for d in self._detections[f]]
                     for f in range(start, end)]
            for chain in link_detections(faces, cfg.variant, cfg.num_failed_det, cfg.iou_threshold):
                first, last = chain[0].frame, chain[-1].frame
                if len(chain) <= cfg.min_track:
                    result.rejected.append(Rejection(
                        (start, end), f"track of {len(chain)} detections is not longer than min_track={cfg.min_track}",
                        first, last, len(chain)))
                    continue
                track_frames, boxes = interpolate_track(chain)
                size = max(np.mean(boxes[:, 2] - boxes[:, 0]), np.mean(boxes[:, 3] - boxes[:, 1]))
                if not size > cfg.min_face_size:
                    result.rejected.append(Rejection(
                        (start, end), f"face of {size:.1f} px (mean box side) is not larger than "
                        f"min_face_size={cfg.min_face_size}", first, last, len(chain)))
                    continue
                result.tracks.append(self._make_track(frames, track_frames, boxes, chain, (start, end), crop_hook))
        return result

    def _make_track(self, frames: "_ChunkedFrames", track_frames: np.ndarray, boxes: np.ndarray, chain: list[Face],
                    scene: tuple[int, int], crop_hook) -> FaceTrack:
        cfg = self.cfg
        half, cx, cy = smooth_track(boxes, cfg.smoothing_kernel)
        crops = np.empty((len(track_frames), cfg.crop_size, cfg.crop_size, 3), dtype=np.uint8)
        for i, f in enumerate(track_frames):
            crops[i] = crop_face(frames[f], half[i], cx[i], cy[i], cfg.crop_scale, cfg.crop_size, cfg.pad_value)
        if crop_hook is not None:
            crops = crop_hook(crops)
        detected = np.isin(track_frames, [f.frame for f in chain])
        track = FaceTrack(track_frames, boxes, detected, half, cx, cy, crops, scene, cfg.frame_rate,
                          cfg.audio_sample_rate)
        if self._audio is not None:
            track.audio = track.cut_audio(self._audio)
        return track


class _ChunkedFrames:
    """Frame k of a list of (n, H, W, 3) chunks, without concatenating them (a copy of the whole video)."""

    def __init__(self, chunks: list[np.ndarray]) -> None:
        self.chunks = chunks
        self.starts = np.cumsum([0] + [len(c) for c in chunks])

    def __getitem__(self, k: int) -> np.ndarray:
        c = int(np.searchsorted(self.starts, k, side="right")) - 1
        return self.chunks[c][k - self.starts[c]]


# ----------------------------------------------------------------------------- one-off entry points
def track_faces(frames: np.ndarray, config: Union[TrackConfig, str, None] = None, *,
                detector: Optional[Detector] = None, detections: Optional[Sequence[np.ndarray]] = None,
                audio: Optional[np.ndarray] = None, device: str = "cpu", chunk_size: int = 32,
                **overrides: Any) -> TrackResult:
    """Face tracks and crops of RGB uint8 frames (T, H, W, 3) at 25 fps: the functional twin of
    :class:`FaceTrackPipeline`. ``detections`` (per frame (n, 5)) replaces the detector."""
    frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
    if len(frames) == 0:
        raise ValueError("frames are empty (no frame to track)")
    pipeline = FaceTrackPipeline(config, detector=detector, device=device, **overrides)
    pipeline.set_audio(audio)
    for start in range(0, len(frames), chunk_size):
        chunk_dets = None if detections is None else detections[start : start + chunk_size]
        pipeline.update(frames[start : start + chunk_size], chunk_dets)
    return pipeline.compute()


def crops_from_boxes(frames: np.ndarray, boxes: np.ndarray, config: Union[TrackConfig, str, None] = None, *,
                     box_scale: float = 1.0, scenes: Optional[Sequence[tuple[int, int]]] = None,
                     detect_scene_cuts: bool = False, audio: Optional[np.ndarray] = None,
                     **overrides: Any) -> TrackResult:
    """The fast path: SyncNet crops from face boxes we already have, without S3FD.

    ``boxes``: (T, 4) x0 y0 x1 y1 pixels of ``frames`` (the original frames, not the dataset's crops),
    one per frame, NaN rows where there is no face. ``box_scale`` scales each box about its centre
    first: the preprocessing stage stores *crop* boxes (``toolkit.face_box.DEFAULT_CROP_SCALE``
    = 2.5 times the BlazeFace box side), so ``box_scale=1 / 2.5`` brings a dataset row's ``boxes`` back
    to face boxes (BlazeFace boxes, not S3FD's: expect a few % difference in crop size). The boxes then
    go through exactly the same tracking, filters, smoothing and crop as the detector path. The whole
    clip is one scene unless ``scenes`` is given or ``detect_scene_cuts`` is set.
    """
    frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or len(boxes) != len(frames):
        raise ValueError(f"boxes must be (T, 4) with T = {len(frames)} frames, got shape {boxes.shape}")
    if not box_scale > 0:
        raise ValueError(f"box_scale must be positive, got {box_scale}")
    if box_scale != 1.0:
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2
        half = (boxes[:, 2:] - boxes[:, :2]) / 2 * box_scale
        boxes = np.concatenate([centre - half, centre + half], 1)
    valid = np.isfinite(boxes).all(1)
    detections = [np.concatenate([b, [1.0]])[None] if ok else np.empty((0, 5)) for b, ok in zip(boxes, valid)]
    pipeline = FaceTrackPipeline(config, detector=_no_detector, **overrides)
    pipeline._detector_info = {"name": "given face boxes (fast path, no S3FD)", "box_scale": float(box_scale)}
    pipeline.set_audio(audio)
    if detect_scene_cuts:
        pipeline.update(frames, detections)
        return pipeline.compute(scenes)
    # Skip the scene detector's work when the scenes are known.
    pipeline._frames, pipeline._detections = [frames], [_check_detections(d, k) for k, d in enumerate(detections)]
    return pipeline.compute(scenes if scenes is not None else [(0, len(frames))])


def _no_detector(frames: np.ndarray) -> list[np.ndarray]:
    raise ValueError("crops_from_boxes has no detector: every frame's boxes must be given")


# ----------------------------------------------------------------------------- video files
def _ffmpeg(*args: str) -> None:
    cmd = [ffmpeg_exe(), "-y", "-nostdin", "-loglevel", "error", *args]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr.strip()[-2000:]}")


def _read_jpegs(folder: Path) -> np.ndarray:
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise ValueError(f"ffmpeg wrote no frames to {folder}")
    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])


def _read_wav_int16(path: Path) -> np.ndarray:
    from scipy.io import wavfile

    _, audio = wavfile.read(str(path))
    if audio.ndim != 1 or audio.dtype != np.int16:
        raise ValueError(f"{path}: expected mono int16 PCM, got {audio.dtype} {audio.shape}")
    return audio


def reference_frames(video: Union[str, os.PathLike], workdir: Union[str, os.PathLike],
                     frame_rate: int = FRAME_RATE) -> tuple[np.ndarray, Path]:
    """The reference's frames: ``ffmpeg -qscale:v 2 -async 1 -r 25`` AVI, then q2 JPEGs, decoded by OpenCV.

    Returns (T, H, W, 3) RGB uint8 and the AVI path (the reference's scene detection and audio use it).
    """
    workdir = Path(workdir)
    avi = workdir / "video.avi"
    _ffmpeg("-i", os.fspath(video), "-qscale:v", "2", "-async", "1", "-r", str(frame_rate), str(avi))
    (workdir / "frames").mkdir(exist_ok=True)
    _ffmpeg("-i", str(avi), "-qscale:v", "2", "-threads", "1", "-f", "image2", str(workdir / "frames" / "%06d.jpg"))
    return _read_jpegs(workdir / "frames"), avi


def reference_crop_roundtrip(crops: np.ndarray, workdir: Union[str, os.PathLike],
                             frame_rate: int = FRAME_RATE) -> np.ndarray:
    """What SyncNet reads of crops the reference wrote: OpenCV XVID AVI -> default-quality JPEGs -> imread.

    ``crops``: (T, S, S, 3) RGB uint8; returns the same shape.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    avi = workdir / "crop.avi"
    size = crops.shape[2], crops.shape[1]
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"XVID"), frame_rate, size)
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write XVID AVI files (built without FFmpeg video I/O?)")
    for crop in crops:
        writer.write(np.ascontiguousarray(crop[..., ::-1]))
    writer.release()
    out = workdir / "crop_frames"
    out.mkdir(exist_ok=True)
    _ffmpeg("-i", str(avi), "-threads", "1", "-f", "image2", str(out / "%06d.jpg"))  # SyncNetInstance.evaluate
    frames = _read_jpegs(out)
    if len(frames) != len(crops):
        raise RuntimeError(f"the XVID round trip returned {len(frames)} frames for {len(crops)} crops")
    return frames


def track_video(path: Union[str, os.PathLike], config: Union[TrackConfig, str, None] = None, *,
                audio_path: Union[str, os.PathLike, None] = None, detector: Optional[Detector] = None,
                device: str = "cpu", chunk_size: int = 32, **overrides: Any) -> TrackResult:
    """Face tracks, crops and audio of a video file, the reference pipeline's job in one call.

    Default: frames decoded once at 25 fps like ``ffmpeg -r 25`` (:class:`toolkit.media.VideoReader`)
    and audio like ``ffmpeg -ac 1 -ar 16000`` (int16), from ``audio_path`` if given, else from the video.
    With ``reference_exact=True`` (config or override) the reference's lossy steps are re-run (see the
    module docstring): frames are the q2 JPEGs of the q2 AVI, scene detection reads the AVI through
    OpenCV, crops are what SyncNet reads back after the XVID + JPEG round trip, and the audio is taken
    from the AVI (upstream) or from ``audio_path`` / the video (syncnet-python variant).
    """
    from talking_head.toolkit import media

    pipeline = FaceTrackPipeline(config, detector=detector, device=device, **overrides)
    cfg = pipeline.cfg
    if not cfg.reference_exact:
        reader = media.VideoReader(path, fps=cfg.frame_rate)
        for chunk in reader.iter_chunks(chunk_size):
            pipeline.update(chunk)
        audio = _try_audio(audio_path or path, cfg.audio_sample_rate)
        pipeline.set_audio(audio)
        return pipeline.compute()

    return _track_reference_exact(pipeline, path, audio_path, chunk_size)


def _track_reference_exact(pipeline: FaceTrackPipeline, path: Union[str, os.PathLike],
                           audio_path: Union[str, os.PathLike, None] = None, chunk_size: int = 32) -> TrackResult:
    """:func:`track_video`'s ``reference_exact`` mode with a given pipeline (its detector and config); the
    pipeline holds the video's frames until it is ``reset()``."""
    cfg = pipeline.cfg
    with tempfile.TemporaryDirectory(prefix="lse_track_") as tmp:
        work = Path(tmp)
        frames, avi = reference_frames(path, work, cfg.frame_rate)
        # Scene detection reads the AVI through OpenCV (VideoManager / open_video), not the JPEGs.
        scenes = SceneDetector(cfg.scene_threshold, cfg.scene_min_length)
        capture = cv2.VideoCapture(str(avi))
        try:
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                scenes.update(image[None], "BGR")
        finally:
            capture.release()
        if cfg.variant == "upstream":
            _ffmpeg("-i", str(avi), "-ac", "1", "-vn", "-acodec", "pcm_s16le", "-ar", str(cfg.audio_sample_rate),
                    str(work / "audio.wav"))
            audio = _read_wav_int16(work / "audio.wav")
        else:
            audio = _try_audio(audio_path or path, cfg.audio_sample_rate)
        for start in range(0, len(frames), chunk_size):
            chunk = frames[start : start + chunk_size]
            pipeline._detections += pipeline._detect(chunk)
            pipeline._frames.append(chunk)
        pipeline._scenes = scenes
        pipeline.set_audio(audio)
        # OpenCV and ffmpeg could disagree on the AVI's frame count; the reference slices leniently.
        scene_list = [(min(s, len(frames)), min(e, len(frames))) for s, e in scenes.scenes()] or [(0, len(frames))]
        counter = iter(range(1 << 30))
        return pipeline.compute(
            scene_list,
            crop_hook=lambda crops: reference_crop_roundtrip(crops, work / f"track{next(counter):05d}", cfg.frame_rate),
        )


def _try_audio(path: Union[str, os.PathLike], sample_rate: int) -> Optional[np.ndarray]:
    from talking_head.toolkit import media

    try:
        return media.read_audio(path, sample_rate=sample_rate, dtype="int16")
    except media.NoAudioStreamError:
        return None


# The face tracks each LSE face-track preset (metrics.lse.PRESETS) was computed on.
TRACK_PRESETS = {"wav2lip_real": "upstream", "mocha": "syncnet-python", "latentsync": "syncnet-python"}


class LSETrackVideos(LSEVideos):
    """LSE on SyncNet's face-track crops (S3FD on every 25 fps frame, scene cuts, IoU tracks, smoothed
    224 crops), for full-frame videos, aggregated by the preset (``wav2lip_real``, ``mocha``,
    ``latentsync``; built by ``LSEVideos(preset=...)``). The crops need each track's smoothed boxes,
    so the frames of one video are held until it ends: memory grows with the longest video, unlike
    the default ``wav2lip_lrs`` path.

    ``frames="ffmpeg_jpeg"`` (default) runs the reference's whole chain of re-encodes
    (``reference_exact``: q2 AVI, q2 JPEGs, XVID crop video, JPEGs SyncNet reads), with the ffmpeg binary
    of :func:`metrics.lse_score.ffmpeg_exe` and OpenCV; ``"decoded"`` tracks and crops the decoded frames.
    Reference videos are cached by content as in :class:`metrics.lse.LSEVideos`."""

    CHAINS = {
        "ffmpeg_jpeg": "the reference pipeline's re-encodes (reference_exact): ffmpeg -qscale:v 2 -async 1 -r 25 AVI, "
                       "its q2 JPEGs (detection, crops), OpenCV XVID crop video, ffmpeg -threads 1 -f image2 JPEGs "
                       "read back with cv2.imread",
        "decoded": "the decoded frames at 25 fps (PyAV), tracked and cropped in memory: no re-encodes",
    }

    def __init__(self, device: str = "cpu", preset: str = "mocha", frames: str = DEFAULT_FRAMES,
                 reference_cache: bool = True) -> None:
        super().__init__(device, preset, frames, reference_cache)
        exact = frames == "ffmpeg_jpeg"
        self.pipelines = {side: FaceTrackPipeline(TRACK_PRESETS[preset], device=device, reference_exact=exact)
                          for side in self.SIDES}
        # Load S3FD now (missing weights skip the metric before any video), once for both sides.
        self.pipelines["reference"]._s3fd = self.pipelines["generated"]._s3fd_detector()

    def start_video(self, video: VideoInfo) -> None:
        self._video = video
        self.discard_video()
        # Decoded frames at 25 fps are tracked as they come; otherwise each video is read again at the end.
        self._live = self.frames == "decoded" and video.fps == FRAME_RATE

    def update(self, chunk: Chunk) -> None:
        if self._live:
            self.pipelines["generated"].update(chunk.generated)
            self.pipelines["reference"].update(chunk.reference)

    def _frames_ahead(self, path: Any) -> None:
        return None  # the face-track chain runs its re-encodes when the side is scored

    def _score(self, side: str, path: Any, ahead: None = None) -> dict[str, Any]:
        """The side's tracks, each scored: ``{"tracks": [result, ...], "reason": why there is none}``."""
        assert self._video is not None
        pipeline = self.pipelines[side]
        try:
            if self.frames == "ffmpeg_jpeg":
                try:
                    result = _track_reference_exact(pipeline, path, chunk_size=CHUNK)
                except RuntimeError as err:  # an ffmpeg or OpenCV step of the chain failed on this video
                    raise media.MediaError(path, f"the reference chain failed: {str(err).splitlines()[0]}") from None
            else:
                if not self._live:
                    with media.VideoReader(path, fps=FRAME_RATE) as reader:
                        for frames in reader.iter_chunks(CHUNK):
                            pipeline.update(frames)
                pipeline.set_audio(media.read_audio(path, sample_rate=AUDIO_SAMPLE_RATE, dtype="int16"))
                result = pipeline.compute()
        finally:
            pipeline.reset()  # drop the held frames
        scored = []
        for index, track in enumerate(result.tracks):
            if track.audio is None:
                raise ValueError(f"{path}: no audio track to score face track {index} against")
            try:
                scored.append(plain_result(score_crops(track.crops, track.audio, self.model)))
            except ValueError as err:
                raise ValueError(f"{self._video.pair.video_id!r} track {index}: {err}") from err
        return {"tracks": scored, "reason": result.reason}

    def _cache_valid(self, result: Any) -> bool:
        return (isinstance(result, dict) and isinstance(result.get("tracks"), list)
                and all(isinstance(t, dict) and all(k in t for k in ("offset", "lse_d", "lse_c"))
                        for t in result["tracks"]))

    def _record(self, side: str, result: dict[str, Any]) -> dict[str, Any]:
        assert self._video is not None
        metric, video_id = self.sides[side], self._video.pair.video_id
        metric.update(video_id, [dict(t) for t in result["tracks"]], reason=result.get("reason"))
        values: dict[str, Any] = {"lse_tracks": metric.per_video(-1)[0]["num_tracks"]}
        per_video = metric.video_result(video_id, self.preset)  # the preset's per-video rule, kept in LSE
        if per_video is None:
            self._video.warnings.append(f"LSE {side}: {metric.videos[video_id]['reason']}")
        else:
            values.update(lse_d=per_video["lse_d"], lse_c=per_video["lse_c"])
        return values

    def discard_video(self) -> None:
        for pipeline in self.pipelines.values():
            pipeline.reset()

    def config(self) -> dict[str, Any]:
        return {**self.sides["generated"].config(), "preset": self.preset, "fps": float(FRAME_RATE),
                "tracks": self.pipelines["generated"].config(), "audio": "the video's own audio track, 16 kHz mono int16",
                **self._chain_config()}

    def weights_provenance(self) -> dict[str, Any]:
        found = {**self.model.weights_provenance(), **self.pipelines["generated"].weights_provenance()}
        return {k: v for k, v in found.items() if v}
