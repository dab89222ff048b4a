"""LipLeak (KeySync, Bigata et al. 2025, arXiv 2505.00497): how often the mouth is open while the audio is silent.

Usage::

    from talking_head.metrics.lipleak import lip_leak
    from talking_head.metrics.landmark_extraction import extract_landmarks

    meshes = extract_landmarks("generated.mp4")                  # (T, 478, 3) MediaPipe meshes
    lip_leak(meshes, "generated.mp4", fps=25.0)["lipleak"]       # or audio samples with sample_rate=

Definition
----------

LipLeak = open-while-silent frames / silent frames. A lip-sync model whose mouth keeps moving through
the pauses of its audio (motion "leaking" in from the source video or from a prior) scores high; lower
is better, and the ground truth's own value is the anchor. The paper gives the definition but neither
code nor thresholds; every setting below is ours, stated here and recorded in ``config()``.

Voice activity (the WebRTC VAD, ``webrtcvad-wheels``)
    the audio at 16 kHz, 16-bit mono, cut into 10 ms frames, aggressiveness 3 (the most eager to call a
    frame non-speech). WebRTC keeps saying "speech" for up to ~90 ms after speech stops (its hangover),
    two video frames of every pause at 25 fps. So the VAD is run twice, on the audio and on the audio
    reversed in time, and a 10 ms frame is speech only where both passes say so: the reversed pass's
    hangover falls before each onset instead of after each offset, and the intersection keeps neither.
    On the built-in sample (7 clips) this raises the agreement of silent frames with the phone
    timeline's pauses from 86% (one pass) to 96%.
Frame alignment
    video frame n shows the mouth at audio time n / fps (the sample's convention and the usual one),
    so its audio window is [(n - 0.5) / fps, (n + 0.5) / fps). A frame is silent when every 10 ms VAD
    frame that overlaps its window is non-speech: a frame that straddles a speech boundary is never
    silent, since the mouth may rightly be closing or opening there. Frames whose window has no audio
    (audio shorter than the video) are neither silent nor speech; they are counted.
Mouth openness
    the inner-lip gap (points 13-14 of the 478-point mesh) over the distance between the outer eye
    corners (33-263), :func:`toolkit.face_mesh.mouth_opening`; "open" above 0.10. On the built-in
    sample's decoded frames (MediaPipe meshes, 7 clips, 1100 frames) closed visemes (viseme opening <
    0.1: pauses, /m/, /p/, /b/) stay at or below 0.052, and the open vowels /a/, /e/, /o/ (viseme
    opening >= 0.5) at or above 0.149; 0.10 is midway. The half-open /i/ and /u/ fall on either side.
    Frames without a face (NaN mesh) are left out of both counts and counted.

Per video: ``lipleak`` (NaN without a silent frame), ``silent_frames``, ``open_silent_frames``. Over a
set: ``lipleak`` pools every silent frame of every video, ``lipleak_video_mean`` is the mean of the
per-video fractions.
"""

from __future__ import annotations

from os import PathLike
from typing import Any, Optional, Union

import numpy as np

from talking_head.metrics import registry
from talking_head.metrics.base import AUDIO, LANDMARKS, PerVideoRows
from talking_head.metrics.both_sides import BothSides
from talking_head.toolkit import face_mesh

__all__ = ["SAMPLE_RATE", "VAD_MODE", "VAD_FRAME_MS", "OPEN_THRESHOLD", "speech_activity", "silent_frames",
           "mouth_openness", "LipLeak", "lip_leak", "LipLeakVideos"]

# -- reference constants (module docstring) ---------------------------------------------------------------
SAMPLE_RATE = 16000  # the rate audio files are read at; WebRTC takes 8, 16, 32 or 48 kHz
VAD_RATES = (8000, 16000, 32000, 48000)
VAD_MODE = 3  # WebRTC aggressiveness 0-3
VAD_FRAME_MS = 10  # WebRTC takes 10, 20 or 30 ms; the shortest follows the pauses closest
VAD_PASSES = "forward and time-reversed; speech where both passes say speech"
WINDOW = "[(n - 0.5) / fps, (n + 0.5) / fps): frame n shows the mouth at audio time n / fps"
SILENT_RULE = "all"  # a frame is silent when every VAD frame overlapping its window is non-speech
OPEN_THRESHOLD = 0.10  # inner-lip gap 13-14 / outer eye corners 33-263, "open" above it

AudioInput = Union[np.ndarray, str, PathLike]


def _pcm16(audio: AudioInput, sample_rate: int) -> tuple[np.ndarray, int]:
    """Mono int16 samples and their rate, from samples (float in [-1, 1] or int16) or a media file."""
    if isinstance(audio, (str, PathLike)):
        from talking_head.toolkit import media  # only here: the library functions work without the media stack

        return media.read_audio(audio, sample_rate=SAMPLE_RATE, dtype="int16"), SAMPLE_RATE
    if int(sample_rate) not in VAD_RATES:
        raise ValueError(f"the WebRTC VAD takes audio at {', '.join(map(str, VAD_RATES))} Hz, got {sample_rate}; "
                         f"resample it (e.g. to {SAMPLE_RATE})")
    y = np.asarray(audio)
    if y.ndim != 1 or y.dtype.kind not in "fi":
        raise ValueError(f"audio must be mono samples (n,) float or int16, got {y.dtype} {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError("audio has non-finite samples (NaN or inf)")
        y = np.clip(np.round(y.astype(np.float64) * 32768.0), -32768, 32767)
    elif y.dtype != np.int16:
        raise ValueError(f"integer audio must be int16, got {y.dtype}")
    return np.ascontiguousarray(y, dtype=np.int16), int(sample_rate)


def _vad_pass(pcm: np.ndarray, sample_rate: int, mode: int, frame: int) -> np.ndarray:
    import webrtcvad

    vad = webrtcvad.Vad(mode)
    return np.array([vad.is_speech(pcm[i:i + frame].tobytes(), sample_rate)
                     for i in range(0, len(pcm) - frame + 1, frame)], dtype=bool)


def speech_activity(audio: AudioInput, sample_rate: int = SAMPLE_RATE, mode: int = VAD_MODE,
                    frame_ms: int = VAD_FRAME_MS) -> np.ndarray:
    """Speech (True) per `frame_ms` frame of the audio, (len // frame,): the WebRTC VAD run forwards and on
    the time-reversed audio, speech where both say so (the hangover of each pass removed by the other).
    `audio`: mono samples (float in [-1, 1] or int16) at `sample_rate`, or a media file (read at 16 kHz).
    A trailing partial frame is dropped."""
    if mode not in (0, 1, 2, 3):
        raise ValueError(f"VAD mode must be 0, 1, 2 or 3, got {mode!r}")
    if frame_ms not in (10, 20, 30):
        raise ValueError(f"VAD frames must be 10, 20 or 30 ms, got {frame_ms!r}")
    pcm, rate = _pcm16(audio, sample_rate)
    frame = rate * frame_ms // 1000
    if len(pcm) < frame:
        raise ValueError(f"audio is shorter than one {frame_ms} ms VAD frame ({len(pcm)} samples at {rate} Hz)")
    pcm = pcm[:len(pcm) // frame * frame]
    forward = _vad_pass(pcm, rate, mode, frame)
    backward = _vad_pass(np.ascontiguousarray(pcm[::-1]), rate, mode, frame)[::-1]
    return forward & backward


def silent_frames(speech: np.ndarray, num_frames: int, fps: float, frame_ms: int = VAD_FRAME_MS) -> np.ndarray:
    """Per video frame (num_frames,): 1 silent, 0 speech, -1 no audio under its window, from the VAD's
    per-frame `speech` (:func:`speech_activity`) and the alignment in the module docstring."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    speech = np.asarray(speech, dtype=bool)
    step = frame_ms / 1000.0
    n = np.arange(int(num_frames))
    # First and one-past-last VAD frame overlapping each window (small epsilon: a window edge that falls on
    # a VAD frame edge does not count as overlapping the neighbour).
    first = np.floor((n - 0.5) / fps / step + 1e-9).astype(np.int64).clip(0, len(speech))
    stop = np.ceil((n + 0.5) / fps / step - 1e-9).astype(np.int64).clip(0, len(speech))
    spoken = np.concatenate([[0], np.cumsum(speech, dtype=np.int64)])
    out = np.where(spoken[stop] - spoken[first] == 0, 1, 0).astype(np.int8)
    out[stop <= first] = -1
    return out


def mouth_openness(meshes: np.ndarray) -> np.ndarray:
    """Inner-lip gap over the outer eye corners' distance per frame, (T,), NaN without a face."""
    a = np.asarray(meshes, dtype=np.float64)
    if a.ndim != 3 or a.shape[1] != face_mesh.NUM_POINTS or a.shape[2] not in (2, 3):
        raise ValueError(f"LipLeak needs MediaPipe meshes (T, {face_mesh.NUM_POINTS}, 2|3), got shape {a.shape}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return face_mesh.mouth_opening(a)


class LipLeak(PerVideoRows):
    """Streaming LipLeak: ``update(meshes, audio)`` per video, ``compute()`` over all of them.

    ``compute()``: ``lipleak`` (pooled over every silent frame), ``lipleak_video_mean``, ``silent_frames``,
    ``open_silent_frames``, ``videos``, ``videos_without_silence``, ``frames``, ``frames_without_face``,
    ``frames_without_audio``. ``per_video()``: per video ``lipleak``, ``silent_frames``,
    ``open_silent_frames``, ``frames_without_face``, ``frames_without_audio``.
    """

    name = "lipleak"
    direction = registry.entry(name).direction  # the registry is the one place for directions

    def __init__(self, fps: float = 25.0, threshold: float = OPEN_THRESHOLD, mode: int = VAD_MODE) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not threshold > 0:
            raise ValueError(f"the mouth-openness threshold must be positive, got {threshold}")
        if mode not in (0, 1, 2, 3):
            raise ValueError(f"VAD mode must be 0, 1, 2 or 3, got {mode!r}")
        self.fps, self.threshold, self.mode = float(fps), float(threshold), int(mode)
        self.reset()

    def reset(self) -> None:
        self._per_video_rows = []

    def update(self, meshes: np.ndarray, audio: AudioInput, sample_rate: int = SAMPLE_RATE,
               fps: Optional[float] = None) -> None:
        """Add one video: its meshes (T, 478, 2|3) and its audio (samples at `sample_rate`, or a file);
        `fps`: the video's frame rate (default: the metric's)."""
        self.update_openness(mouth_openness(meshes), audio, sample_rate, fps)

    def update_openness(self, openness: np.ndarray, audio: Optional[AudioInput],
                        sample_rate: int = SAMPLE_RATE, fps: Optional[float] = None) -> None:
        """Add one video given its per-frame mouth openness (T,) (NaN: no face), e.g. gathered chunk by chunk
        with :func:`mouth_openness`; ``audio=None``: a video whose audio could not be read (no frame has
        audio)."""
        openness = np.asarray(openness, dtype=np.float64)
        if openness.ndim != 1:
            raise ValueError(f"mouth openness must be 1-D (T,), got shape {openness.shape}")
        if audio is None:
            state = np.full(len(openness), -1, np.int8)
        else:
            state = silent_frames(speech_activity(audio, sample_rate, self.mode), len(openness), fps or self.fps)
        face = np.isfinite(openness)
        silent = (state == 1) & face
        open_silent = silent & (openness > self.threshold)
        count = int(silent.sum())
        self._per_video_rows.append({
            "lipleak": int(open_silent.sum()) / count if count else float("nan"),
            "silent_frames": count, "open_silent_frames": int(open_silent.sum()), "frames": len(openness),
            "frames_without_face": int((~face).sum()), "frames_without_audio": int((state == -1).sum())})

    def pooled(self, indices: Optional[np.ndarray] = None) -> float:
        """Open-while-silent frames over silent frames of the videos at `indices` (all by default)."""
        rows = self._per_video_rows
        chosen = range(len(rows)) if indices is None else np.asarray(indices, dtype=np.int64)
        silent = sum(rows[i]["silent_frames"] for i in chosen)
        return sum(rows[i]["open_silent_frames"] for i in chosen) / silent if silent else float("nan")

    def compute(self) -> dict[str, Any]:
        rows = self._per_video_rows
        fractions = [r["lipleak"] for r in rows if r["silent_frames"]]
        total = {key: sum(r[key] for r in rows) for key in
                 ("silent_frames", "open_silent_frames", "frames", "frames_without_face", "frames_without_audio")}
        mean = float(np.mean(fractions)) if fractions else float("nan")
        return {"lipleak": self.pooled(), "lipleak_video_mean": mean,
                **total, "videos": len(rows), "videos_without_silence": len(rows) - len(fractions)}

    def config(self) -> dict[str, Any]:
        return {"metric": "lipleak", "reference": "KeySync (arXiv 2505.00497), definition only; thresholds ours",
                "fps": self.fps,
                "vad": {"algorithm": "WebRTC VAD (webrtcvad-wheels)", "mode": self.mode, "frame_ms": VAD_FRAME_MS,
                        "sample_rate": SAMPLE_RATE, "format": "16-bit mono PCM", "passes": VAD_PASSES},
                "frame_window": WINDOW, "silent_rule": f"{SILENT_RULE}: every overlapping VAD frame is non-speech",
                "openness": "inner-lip gap (mesh points 13-14) / outer eye corners (33-263)",
                "open_threshold": self.threshold, "open_rule": "openness > open_threshold",
                "frames_without_face": "left out of both counts",
                "aggregate": "lipleak: open silent frames / silent frames over all videos; "
                             "lipleak_video_mean: mean of per-video fractions (videos with silent frames)"}

    def weights_provenance(self) -> dict[str, str]:
        return {}


def lip_leak(meshes: np.ndarray, audio: AudioInput, sample_rate: int = SAMPLE_RATE, fps: float = 25.0,
             **kwargs: Any) -> dict[str, Any]:
    """LipLeak of one video (see :class:`LipLeak`): its fraction and frame counts."""
    metric = LipLeak(fps, **kwargs)
    metric.update(meshes, audio, sample_rate)
    return metric.per_video()[0]


class LipLeakVideos(BothSides):
    """LipLeak of the generated videos against their own audio, and of the references as the anchor."""

    name, direction = LipLeak.name, LipLeak.direction
    consumes = frozenset({LANDMARKS, AUDIO})
    keys = ("lipleak", "silent_frames", "open_silent_frames")
    # Bootstrap (metrics.base): the video mean from the per-video fractions; the pooled fraction by resample().
    video_means = {"lipleak_video_mean": "lipleak", "reference.lipleak_video_mean": "reference_lipleak"}

    def make(self, fps: float) -> LipLeak:
        return LipLeak(fps)

    def reduce(self, meshes: np.ndarray) -> np.ndarray:
        return mouth_openness(meshes)  # (n,): all LipLeak keeps of the meshes

    def add_video(self, metric: LipLeak, per_frame: np.ndarray, path: Any, fps: float) -> dict[str, Any]:
        from talking_head.toolkit import media

        try:
            audio = media.read_audio(path, sample_rate=SAMPLE_RATE, dtype="int16")
            if len(audio) < SAMPLE_RATE * VAD_FRAME_MS // 1000:
                raise ValueError("its audio is shorter than one VAD frame")
        except (ValueError, media.MediaError) as err:  # scored as a video without audio, and said so
            audio = None
            if self._video is not None:
                self._video.warnings.append(f"LipLeak: no audio read from {path}: {str(err).splitlines()[0]}")
        metric.update_openness(per_frame.reshape(-1), audio, SAMPLE_RATE, fps)  # each video at its own rate
        return metric.per_video(-1)[0]

    def resample(self, indices: np.ndarray) -> dict[str, float]:
        """The pooled fraction (open silent frames over silent frames) of the videos at `indices`, both sides."""
        if self.generated is None:
            return {}
        return {"lipleak": self.generated.pooled(indices), "reference.lipleak": self.reference.pooled(indices)}
