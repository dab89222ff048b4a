"""LSE-D and LSE-C: SyncNet lip-sync error, exactly as ``SyncNetInstance.evaluate`` computes it.

One obvious entry point per job::

    model  = SyncNet.from_pretrained("cpu")
    result = score_crops(crops, audio_int16, model)       # one face track (224x224 crops, 25 fps)
    result = score_video("clip.mp4", model)                # a crop video (or whole frames, resize_to_224)
    lse = LSE(model); lse.update("vid", [(crops, audio)]); lse.compute("mocha")   # a data set (lse.per_video())

The score of one track (joonson/syncnet_python ``SyncNetInstance.evaluate``; the same in the
syncnet-python 0.2.3 wheel and in Wav2Lip's ``SyncNetInstance_calc_scores.py``):

1. frames: 224x224, **BGR, 0..255 float, no normalisation**; audio: 16 kHz **int16-scale** samples,
   MFCCs by :func:`metrics.mfcc.mfcc` (100 Hz).
2. ``min_length = min(num_frames, floor(num_samples / 640))``; windows ``v = 0 .. min_length - 6``
   (``min_length - 5`` of them: the reference drops the last complete window). Window v pairs
   frames ``v .. v+4`` with MFCC frames ``4v .. 4v+19``.
3. Both embeddings (1024-d) per window; the audio embeddings are padded with ``vshift`` zero rows
   at both ends and every video window is compared with the 31 audio windows ``v-15 .. v+15``
   (``||x - y + 1e-6||_2``, torch's ``pairwise_distance``). The zero rows take part near the ends.
4. ``mdist`` = mean over windows per offset (31 values); **LSE-D** = ``min(mdist)``;
   **LSE-C** = ``median(mdist) - min(mdist)``; AV offset = ``vshift - argmin(mdist)`` frames.

Here all windows are batched (one forward per ``batch_size`` windows, built with ``unfold``) and
the 31 offsets are one tensor operation; the numbers agree with the reference to float32
rounding (see tests/test_lse.py).

Frame rate: the scorer assumes 25 fps. :func:`score_video` reads through
``VideoReader(path, fps=25)``, which resamples like ``ffmpeg -r 25`` (e.g. MODA's 30 fps renders).

Aggregation over a data set differs between papers; :data:`PRESETS` reproduces the known scripts
and :class:`LSE` reports which videos each one leaves out, and why.
"""

from __future__ import annotations

import glob
import math
import os
import statistics
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from talking_head.metrics import registry
from talking_head.metrics.base import AUDIO, CHUNK, GENERATED_FRAMES, Chunk, Metric, PerVideoRows, VideoInfo
from talking_head.toolkit.fp32 import strict_fp32
from talking_head.metrics.mfcc import mfcc
from talking_head.metrics.syncnet import CROP_SIZE, MFCC_WINDOW, WINDOW_FRAMES, SyncNet
from talking_head.toolkit import media

__all__ = [
    "VSHIFT", "BATCH_SIZE", "VIDEO_FPS", "SAMPLE_RATE", "SAMPLES_PER_FRAME", "MFCC_PER_FRAME", "PAIRWISE_EPS",
    "PRESETS", "score_crops", "score_video", "LSE", "compute_lse",
]

PathLike = Union[str, "os.PathLike[str]"]
Preset = Literal["wav2lip_lrs", "wav2lip_real", "mocha", "latentsync"]

# syncnet_python run_syncnet.py / demo_syncnet.py defaults and SyncNetInstance.evaluate constants.
VSHIFT = 15  # --vshift: offsets -15..+15 video frames (31 candidates)
BATCH_SIZE = 20  # --batch_size: windows per forward pass (does not change the numbers)
VIDEO_FPS = 25  # the model's frame rate ("Video 25 FPS, Audio 16000HZ")
SAMPLE_RATE = 16_000  # Hz
SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640: min_length = min(frames, floor(samples / 640))
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps: audio window v starts at MFCC frame 4v
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance default eps: ||x - y + eps||_2
MIN_FRAMES = WINDOW_FRAMES + 1  # min_length - 5 windows must be >= 1


# ------------------------------------------------------------------------------------ presets
PRESETS: dict[str, dict[str, Any]] = {
    # Wav2Lip evaluation/scores_LSE/calculate_scores_LRS.py: no face detection, every frame
    # cv2.resize'd to 224x224; one score per video; arithmetic mean over videos.
    "wav2lip_lrs": {
        "source": "Rudrabha/Wav2Lip evaluation/scores_LSE/calculate_scores_LRS.py",
        "tracks": "whole frame resized to 224 (score_video(..., resize_to_224=True)), one per video",
        "per_video": "the single score", "across_videos": "mean over videos", "min_track": None,
    },
    # Wav2Lip calculate_scores_real_videos.sh: run_pipeline.py face tracks, one "<LSE-D> <LSE-C>" line
    # per track appended to all_scores.txt, averaged by the user: a mean over track rows.
    "wav2lip_real": {
        "source": "Rudrabha/Wav2Lip evaluation/scores_LSE/calculate_scores_real_videos.{sh,py}",
        "tracks": "run_pipeline.py face tracks", "per_video": "none (one row per track)",
        "across_videos": "mean over all track rows", "min_track": 100,
    },
    # MoChaBench / syncnet-python wheel: per video max(conf) and min(dist) over tracks (possibly
    # different tracks); mean over videos with a face (has_face); the rest are left out.
    "mocha": {
        "source": "congwei1230/MoChaBench eval-lipsync/script/run_syncnet_pipeline_on_your_own_model_results.py",
        "tracks": "syncnet_pipeline face tracks", "per_video": "LSE-C = max over tracks, LSE-D = min over tracks",
        "across_videos": "mean over videos with at least one track", "min_track": 50,
    },
    # LatentSync eval/eval_sync_conf.py: per video fmean over tracks (offset int(fmean)); fmean over
    # videos; videos that raise (no face) are skipped. LatentSync itself prints only the confidence.
    "latentsync": {
        "source": "bytedance/LatentSync eval/eval_sync_conf.py",
        "tracks": "LatentSync SyncNetDetector face tracks", "per_video": "mean over tracks (offset: int(mean))",
        "across_videos": "mean over videos with at least one track", "min_track": 50,
    },
}

DEFAULT_PRESET: str = registry.defaults("lse")["preset"]  # whole frames resized to 224: toolkit videos are face crops


# ------------------------------------------------------------------------------------ helpers
def _check_crops(crops: Any) -> torch.Tensor:
    if isinstance(crops, torch.Tensor):
        crops = crops.detach().cpu().numpy()
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise ValueError(
            f"crops must be (T, {CROP_SIZE}, {CROP_SIZE}, 3) RGB frames, got shape {crops.shape}; "
            f"resize whole frames with score_video(..., resize_to_224=True) or crop faces first"
        )
    if crops.dtype != np.uint8:
        raise ValueError(f"crops must be uint8 RGB (0..255), got dtype {crops.dtype}")
    if crops.shape[0] == 0:
        raise ValueError("crops is empty (0 frames)")
    return torch.from_numpy(np.ascontiguousarray(crops))


def _check_audio(audio: Any) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be 1-D mono samples at 16 kHz, got shape {audio.shape}")
    if audio.dtype != np.int16:
        raise ValueError(
            f"audio must be int16 samples (e.g. read_audio(path, 16000, dtype='int16')), got dtype {audio.dtype}: "
            "the MFCC energy coefficient depends on the sample scale, so float audio would change the scores"
        )
    if audio.size == 0:
        raise ValueError("audio is empty (0 samples)")
    return audio


def _offset_distances(video: torch.Tensor, audio: torch.Tensor, vshift: int) -> torch.Tensor:
    """(N, 2*vshift+1) distances between video window i and audio windows i-vshift .. i+vshift.

    Audio rows outside the clip are zeros (calc_pdist pads with F.pad), compared like any other.
    """
    padded = F.pad(audio, (0, 0, vshift, vshift))
    candidates = padded.unfold(0, 2 * vshift + 1, 1).transpose(1, 2)  # (N, 31, 1024)
    return F.pairwise_distance(video[:, None, :].expand_as(candidates), candidates, eps=PAIRWISE_EPS)


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# ------------------------------------------------------------------------------------ scoring
def score_crops(
    crops: np.ndarray | torch.Tensor,
    audio: np.ndarray,
    model: Optional[SyncNet] = None,
    vshift: int = VSHIFT,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """LSE of one face track: ``SyncNetInstance.evaluate`` on in-memory data.

    ``crops``: (T, 224, 224, 3) **RGB** uint8 frames at 25 fps (converted to BGR inside, as the
    reference reads frames with cv2). ``audio``: 1-D int16 samples at 16 kHz. ``model``: a
    :class:`SyncNet` (default: ``SyncNet.from_pretrained()``, loaded for this call only).

    Returns ``offset`` (int, video frames: video window i matches audio window ``i - offset`` best,
    so positive means the audio leads), ``lse_d`` (min dist), ``lse_c``
    (confidence), ``num_windows``, ``mdist`` ((2*vshift+1,) float32 mean distance per offset, index
    ``vshift - offset`` at the minimum), ``num_frames``, ``num_samples`` and ``length_mismatch_s``
    (audio minus video duration; the reference prints a warning when it is not 0).
    """
    frames = _check_crops(crops)
    samples = _check_audio(audio)
    if int(vshift) < 0:
        raise ValueError(f"vshift must be >= 0, got {vshift}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    vshift, batch_size = int(vshift), int(batch_size)
    min_length = min(len(frames), len(samples) // SAMPLES_PER_FRAME)
    num_windows = min_length - WINDOW_FRAMES
    if num_windows < 1:
        raise ValueError(
            f"too short for SyncNet: {len(frames)} frames and {len(samples)} samples give min_length {min_length}; "
            f"need at least {MIN_FRAMES} frames (0.24 s at 25 fps) and {MIN_FRAMES * SAMPLES_PER_FRAME} samples"
        )
    if model is None:
        model = SyncNet.from_pretrained()
    model.eval()

    # Window v uses frames v..v+4, so frames past num_windows + 3 are never read.
    bgr = frames[: num_windows + WINDOW_FRAMES - 1].flip(-1)
    with torch.inference_mode(), strict_fp32():
        video_feat = model.lip_windows(bgr, batch_size=batch_size).cpu()
    return _score_features(video_feat, samples, len(frames), num_windows, model, vshift, batch_size)


def _score_features(video_feat: torch.Tensor, samples: np.ndarray, num_frames: int, num_windows: int,
                    model: SyncNet, vshift: int, batch_size: int) -> dict[str, Any]:
    """The audio side, the 31 offsets and the two scores, given the lip embeddings of the windows."""
    device = _model_device(model)
    # MFCC in float64 then float32, as the reference's cc.astype(float) -> .float().
    cepstra = torch.from_numpy(mfcc(samples, SAMPLE_RATE).T.astype(np.float32))  # (13, n_mfcc)
    audio_windows = cepstra.unfold(1, MFCC_WINDOW, MFCC_PER_FRAME)[:, :num_windows]  # (13, N, 20)
    audio_windows = audio_windows.permute(1, 0, 2).unsqueeze(1)  # (N, 1, 13, 20)
    video_feat = video_feat[:num_windows]
    with torch.inference_mode(), strict_fp32():
        audio_feat = torch.cat([
            model.forward_aud(audio_windows[i : i + batch_size].to(device)).cpu()
            for i in range(0, num_windows, batch_size)
        ])
        dists = _offset_distances(video_feat, audio_feat, vshift)  # (N, 31)
    return _scores(dists, num_frames, len(samples), num_windows, vshift)


def _scores(dists: torch.Tensor, num_frames: int, num_samples: int, num_windows: int, vshift: int) -> dict[str, Any]:
    """Offset, LSE-D and LSE-C from the (N, 2*vshift+1) window-by-offset distances."""
    with torch.inference_mode():
        # Mean over windows along contiguous rows, the layout of the reference's stack(dists, 1).
        mdist = dists.t().contiguous().mean(1)
        minval, minidx = torch.min(mdist, 0)
        conf = torch.median(mdist) - minval
    return {
        "offset": int(vshift - int(minidx)),
        "lse_d": float(minval),
        "lse_c": float(conf),
        "num_windows": int(num_windows),
        "mdist": mdist.numpy().copy(),
        "num_frames": int(num_frames),
        "num_samples": int(num_samples),
        "length_mismatch_s": num_samples / SAMPLE_RATE - num_frames / VIDEO_FPS,
    }


class StreamingScorer:
    """:func:`score_crops` for a video that arrives in chunks, in memory that does not grow with its length.

    ``add(crops)`` takes consecutive (n, 224, 224, 3) RGB uint8 frames at 25 fps; ``score()`` then
    gives what ``score_crops(all_crops, audio)`` gives (each window is embedded on its own, so
    chunking changes nothing but memory).

    Give the audio up front (``StreamingScorer(model, audio)``) and each window's 31 offset distances
    are computed as soon as its audio neighbours are known: what stays is 31 numbers per window plus
    the embeddings of the last ``vshift`` + one chunk of windows. Without it (``score(audio)`` at the
    end), every window's embedding (4 KB) is kept until then.
    """

    def __init__(self, model: SyncNet, audio: Optional[np.ndarray] = None, vshift: int = VSHIFT,
                 batch_size: int = BATCH_SIZE) -> None:
        self.model, self.vshift, self.batch_size = model.eval(), int(vshift), int(batch_size)
        self.num_frames = 0
        self._tail: Optional[torch.Tensor] = None  # the last 4 BGR frames: the next window starts there
        self._pending: list[torch.Tensor] = []  # lip embeddings of windows _done.. not yet compared
        self._done = 0  # windows whose distances are final
        self._rows: list[torch.Tensor] = []  # (n, 31) distances of windows 0.._done
        self._num_samples: Optional[int] = None
        self._audio_windows: Optional[torch.Tensor] = None  # (n_mfcc_windows, 1, 13, 20) MFCC windows
        self._audio_start, self._audio_feat = 0, torch.zeros(0, self.model.num_features)  # embeddings cache
        if audio is not None:
            self._set_audio(audio)

    def _set_audio(self, audio: np.ndarray) -> None:
        samples = _check_audio(audio)
        self._num_samples = len(samples)  # the samples themselves are not kept: only their MFCCs (16x smaller)
        cepstra = torch.from_numpy(mfcc(samples, SAMPLE_RATE).T.astype(np.float32))  # (13, n_mfcc)
        self._audio_windows = cepstra.unfold(1, MFCC_WINDOW, MFCC_PER_FRAME).permute(1, 0, 2).unsqueeze(1)

    def add(self, crops: np.ndarray | torch.Tensor) -> None:
        frames = _check_crops(crops).flip(-1)
        self.num_frames += len(frames)
        if self._tail is not None:
            frames = torch.cat([self._tail, frames])
        if len(frames) >= WINDOW_FRAMES:
            with torch.inference_mode(), strict_fp32():
                self._pending.append(self.model.lip_windows(frames, batch_size=self.batch_size).cpu())
        self._tail = frames[-(WINDOW_FRAMES - 1):].clone()
        if self._num_samples is not None:
            # Window i compares with audio windows up to i + vshift, all real (not padding) once
            # i + vshift < min(frames, samples / 640) - 5, which more frames can only raise.
            audio_limit = self._num_samples // SAMPLES_PER_FRAME - WINDOW_FRAMES
            self._compare(min(self.num_frames - WINDOW_FRAMES, audio_limit) - self.vshift, num_windows=None)
            # Windows past the audio's end are never scored: drop them rather than hold them.
            surplus = self._done + sum(len(p) for p in self._pending) - max(audio_limit, self._done)
            if surplus > 0:
                video = torch.cat(self._pending)
                self._pending = [video[: len(video) - surplus]]

    def _audio(self, start: int, stop: int, num_windows: Optional[int]) -> torch.Tensor:
        """Audio embeddings of windows start..stop-1; zeros outside 0..num_windows-1 (calc_pdist's padding)."""
        lo, hi = max(start, 0), stop if num_windows is None else min(stop, num_windows)
        cached_stop = self._audio_start + len(self._audio_feat)
        if hi > cached_stop:
            device = _model_device(self.model)
            with torch.inference_mode(), strict_fp32():
                new = [self.model.forward_aud(self._audio_windows[i : min(i + self.batch_size, hi)].to(device)).cpu()
                       for i in range(cached_stop, hi, self.batch_size)]
            self._audio_feat = torch.cat([self._audio_feat, *new])
        keep = max(lo - self._audio_start, 0)  # windows before `lo` are never needed again
        self._audio_feat, self._audio_start = self._audio_feat[keep:], self._audio_start + keep
        out = torch.zeros(stop - start, self._audio_feat.shape[1])
        if hi > lo:
            out[lo - start : hi - start] = self._audio_feat[: hi - lo]
        return out

    def _compare(self, stop: int, num_windows: Optional[int]) -> None:
        """Distances of windows _done..stop-1 against their 2*vshift+1 audio windows."""
        if stop <= self._done or not self._pending:
            return
        video = torch.cat(self._pending) if len(self._pending) > 1 else self._pending[0]
        n = min(stop - self._done, len(video))
        audio = self._audio(self._done - self.vshift, self._done + n + self.vshift, num_windows)
        candidates = audio.unfold(0, 2 * self.vshift + 1, 1).transpose(1, 2)  # (n, 31, 1024)
        with torch.inference_mode():
            self._rows.append(F.pairwise_distance(video[:n, None, :].expand_as(candidates), candidates,
                                                  eps=PAIRWISE_EPS))
        self._pending = [video[n:]] if n < len(video) else []
        self._done += n

    def score(self, audio: Optional[np.ndarray] = None) -> dict[str, Any]:
        if audio is not None:
            if self._num_samples is not None:
                raise ValueError("StreamingScorer: the audio was already given when it was created")
            self._set_audio(audio)
        if self._num_samples is None:
            raise ValueError("StreamingScorer.score: no audio (give it to the constructor or to score())")
        num_windows = min(self.num_frames, self._num_samples // SAMPLES_PER_FRAME) - WINDOW_FRAMES
        if num_windows < 1:
            raise ValueError(f"too short for SyncNet: {self.num_frames} frames and {self._num_samples} samples; "
                             f"need at least {MIN_FRAMES} frames and {MIN_FRAMES * SAMPLES_PER_FRAME} samples")
        self._compare(num_windows, num_windows)
        dists = torch.cat(self._rows)[:num_windows]
        return _scores(dists, self.num_frames, self._num_samples, num_windows, self.vshift)


def _ffmpeg_jpeg_frames(path: str, native_fps: Optional[float]) -> np.ndarray:
    """The reference's frames: ``ffmpeg -i crop -threads 1 -f image2 %06d.jpg``, read back with cv2.imread."""
    import imageio_ffmpeg

    with tempfile.TemporaryDirectory(prefix="lse-jpeg-") as tmp:
        command = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-i", path, "-threads", "1"]
        if native_fps is None or abs(native_fps - VIDEO_FPS) > 1e-6:
            command += ["-r", str(VIDEO_FPS)]  # the reference assumes 25 fps input; resample like -r 25
        command += ["-f", "image2", os.path.join(tmp, "%06d.jpg")]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise media.MediaError(path, f"ffmpeg could not extract JPEG frames: {done.stderr.strip()[-500:]}")
        files = sorted(glob.glob(os.path.join(tmp, "*.jpg")))
        if not files:
            raise media.NoVideoFramesError(path, "ffmpeg extracted no frames")
        return np.stack([cv2.imread(f)[:, :, ::-1] for f in files])  # BGR -> RGB


def score_video(
    path: PathLike,
    model: Optional[SyncNet] = None,
    *,
    resize_to_224: bool = False,
    frame_source: Literal["decode", "ffmpeg_jpeg"] = "decode",
    vshift: int = VSHIFT,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """LSE of a video file: frames at 25 fps (``VideoReader(path, fps=25)``), int16 audio at 16 kHz.

    The frames must be 224x224 face crops, unless ``resize_to_224`` reproduces Wav2Lip's
    ``calculate_scores_LRS.py``: whole frames ``cv2.resize``d to 224x224 (bilinear), no detection.
    ``frame_source="ffmpeg_jpeg"`` is the reference-exact path: frames are dumped as JPEGs by the
    ffmpeg binary with the reference's command and read back with cv2.imread, reproducing its JPEG
    round trip (slower); ``"decode"`` (default) decodes straight to memory. See the tests for the
    measured difference. Audio is ``read_audio(path, 16000, dtype="int16")`` (= ffmpeg's
    ``-ac 1 -ar 16000 pcm_s16le`` extraction).
    """
    path = os.fspath(path)
    if frame_source not in ("decode", "ffmpeg_jpeg"):
        raise ValueError(f"frame_source must be 'decode' or 'ffmpeg_jpeg', got {frame_source!r}")
    if frame_source == "decode":
        frames = media.read_video(path, fps=VIDEO_FPS)
    else:
        frames = _ffmpeg_jpeg_frames(path, media.probe(path).fps)
    if resize_to_224:
        # Wav2Lip's SyncNetInstance_calc_scores.py: cv2.resize(img, (224, 224)), default INTER_LINEAR.
        frames = np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])
    elif frames.shape[1:3] != (CROP_SIZE, CROP_SIZE):
        raise ValueError(
            f"{path}: frames are {frames.shape[2]}x{frames.shape[1]}, "
            f"SyncNet needs {CROP_SIZE}x{CROP_SIZE} face crops; "
            "pass resize_to_224=True for whole-frame scoring (Wav2Lip LRS protocol) or crop face tracks first"
        )
    audio = media.read_audio(path, SAMPLE_RATE, dtype="int16")
    result = score_crops(frames, audio, model, vshift=vshift, batch_size=batch_size)
    result.update(path=path, resize_to_224=bool(resize_to_224), frame_source=frame_source)
    return result


# ------------------------------------------------------------------------------------ data sets
_RESULT_KEYS = ("offset", "lse_d", "lse_c")


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


class LSE(PerVideoRows):
    """Streaming LSE over a data set: per-track rows, aggregated by a preset at ``compute``.

    ``update(video_id, tracks)``: ``tracks`` is a list with one entry per face track of the video,
    each either ``(crops, audio_int16)`` (scored here with ``model``) or a result dict of
    :func:`score_crops` / :func:`score_video` (at least ``offset``, ``lse_d``, ``lse_c``). An empty
    list records a video without a usable track (``reason`` says why, e.g. "no face"); such videos
    are left out of every average and listed by ``compute``. ``on_error="exclude"`` records a track
    that cannot be scored (too short) instead of raising.

    ``min_track`` is the face-track pipeline's knob (tracks shorter than this were never produced);
    it is not applied here, only recorded in ``config()`` for provenance.

    ``per_video()``: per ``update`` (one video), ``video_id``, ``tracks`` (the rows added, one per scored
    track: ``offset``, ``lse_d``, ``lse_c``, ``num_windows``, ``mdist``), ``num_tracks``, ``failures`` and
    ``reason`` (why it has no scored track, else None), before any preset's per-video rule
    (:meth:`video_result`).
    """

    name = "lse"
    direction = registry.entry(name).direction  # the registry is the one place for directions

    def __init__(
        self,
        model: Optional[SyncNet] = None,
        *,
        device: str | torch.device = "cpu",
        vshift: int = VSHIFT,
        batch_size: int = BATCH_SIZE,
        min_track: Optional[int] = None,
        on_error: Literal["raise", "exclude"] = "raise",
    ) -> None:
        if on_error not in ("raise", "exclude"):
            raise ValueError(f"on_error must be 'raise' or 'exclude', got {on_error!r}")
        self._model = model
        self.device = torch.device(device) if model is None else _model_device(model)
        self.vshift, self.batch_size = int(vshift), int(batch_size)
        self.min_track = min_track
        self.on_error = on_error
        self.reset()

    @property
    def model(self) -> SyncNet:
        if self._model is None:  # loaded on first use: pre-scored rows need no weights
            self._model = SyncNet.from_pretrained(self.device)
        return self._model

    def reset(self) -> None:
        self.rows: list[dict[str, Any]] = []  # one per scored track
        self.videos: dict[str, dict[str, Any]] = {}  # video_id -> {"num_tracks", "failures", "reason"}
        self._per_video_rows = []

    def update(self, video_id: str, tracks: Sequence[Any], reason: Optional[str] = None) -> None:
        """Add one video's tracks (the rows added: ``per_video()``). A video id may be added once."""
        video_id = str(video_id)
        if video_id in self.videos:
            raise ValueError(f"video {video_id!r} was already added")
        if isinstance(tracks, (str, bytes, Mapping)) or not isinstance(tracks, Sequence):
            raise ValueError(f"tracks for {video_id!r} must be a list of (crops, audio) pairs or result dicts")
        added, failures = [], []
        for index, track in enumerate(tracks):
            if isinstance(track, Mapping):
                missing = [k for k in _RESULT_KEYS if k not in track]
                if missing:
                    raise ValueError(f"{video_id!r} track {index}: result dict lacks {missing}")
                result = dict(track)
            elif isinstance(track, (tuple, list)) and len(track) == 2:
                try:
                    result = score_crops(track[0], track[1], self.model, vshift=self.vshift, batch_size=self.batch_size)
                except ValueError as err:
                    if self.on_error == "raise":
                        raise ValueError(f"{video_id!r} track {index}: {err}") from err
                    failures.append(f"track {index}: {err}")
                    continue
            else:
                raise ValueError(f"{video_id!r} track {index}: expected (crops, audio) or a result dict")
            row = {"video_id": video_id, "track": index, "offset": int(result["offset"]),
                   "lse_d": float(result["lse_d"]), "lse_c": float(result["lse_c"]),
                   "num_windows": result.get("num_windows")}
            if "mdist" in result:
                row["mdist"] = [float(v) for v in np.asarray(result["mdist"]).ravel()]
            added.append(row)
        if not added:
            reason = reason or ("; ".join(failures) if failures else "no face track")
        self.videos[video_id] = {"num_tracks": len(added), "failures": failures, "reason": None if added else reason}
        self.rows.extend(added)
        self._per_video_rows.append({"video_id": video_id, "tracks": added, **self.videos[video_id]})

    def video_result(self, video_id: str, preset: Preset = DEFAULT_PRESET) -> Optional[dict[str, Any]]:
        """One video's value under a preset's per-video rule (None when it has no scored track);
        ``wav2lip_real``, which keeps no per-video value, averages the video's tracks."""
        rows = [r for r in self.rows if r["video_id"] == video_id]
        if not rows:
            return None
        offsets = [r["offset"] for r in rows]
        if preset == "wav2lip_lrs":
            if len(rows) != 1:
                raise ValueError(
                    f"preset wav2lip_lrs scores whole frames, one row per video; "
                    f"{video_id!r} has {len(rows)} tracks"
                )
            d, c, off = rows[0]["lse_d"], rows[0]["lse_c"], offsets[0]
        elif preset == "mocha":
            d, c, off = min(r["lse_d"] for r in rows), max(r["lse_c"] for r in rows), None
        else:  # latentsync
            d, c = _mean([r["lse_d"] for r in rows]), _mean([r["lse_c"] for r in rows])
            off = int(statistics.fmean(offsets))
        return {"video_id": video_id, "lse_d": d, "lse_c": c, "offset": off, "offsets": offsets,
                "num_tracks": len(rows)}

    def _video_results(self, preset: str) -> list[dict[str, Any]]:
        found = (self.video_result(video_id, preset) for video_id in self.videos)
        return [result for result in found if result is not None]

    def compute(self, preset: Preset = DEFAULT_PRESET) -> dict[str, Any]:
        """Aggregate with a preset (see :data:`PRESETS`).

        Returns ``lse_d``, ``lse_c`` (NaN when nothing was scored), ``num_videos`` (all added),
        ``num_scored`` (videos contributing), ``num_rows`` (track rows contributing), ``excluded``
        ({video_id: reason}), ``per_video`` (or per-track rows for ``wav2lip_real``), ``preset``
        and ``config``.
        """
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        excluded = {v: info["reason"] for v, info in self.videos.items() if info["num_tracks"] == 0}
        if preset == "wav2lip_real":
            items = [dict(r) for r in self.rows]
        else:
            items = self._video_results(preset)
        return {
            "preset": preset,
            "lse_d": _mean([i["lse_d"] for i in items]),
            "lse_c": _mean([i["lse_c"] for i in items]),
            "num_videos": len(self.videos),
            "num_scored": len(self.videos) - len(excluded),
            "num_rows": len(self.rows),
            "excluded": excluded,
            "per_video" if preset != "wav2lip_real" else "per_track": items,
            "preset_definition": dict(PRESETS[preset]),
            "config": self.config(),
        }

    def config(self) -> dict[str, Any]:
        """Every knob that changes the numbers."""
        return {
            "metric": "LSE (SyncNet, syncnet_python SyncNetInstance.evaluate)",
            "vshift": self.vshift, "video_fps": VIDEO_FPS, "sample_rate": SAMPLE_RATE,
            "mfcc": "python_speech_features.mfcc defaults on int16 samples", "pairwise_eps": PAIRWISE_EPS,
            "window_frames": WINDOW_FRAMES, "crop_size": CROP_SIZE, "frames": "BGR 0..255 float32, no normalisation",
            "min_track": self.min_track, "on_error": self.on_error, "precision": "float32 (no TF32)",
        }

    def weights_provenance(self) -> dict[str, Optional[str]]:
        return self.model.weights_provenance() if self._model is not None else {"syncnet": None}


def compute_lse(
    videos: Mapping[str, Sequence[Any]], preset: Preset = DEFAULT_PRESET, model: Optional[SyncNet] = None, **kwargs: Any
) -> dict[str, Any]:
    """One-off twin of :class:`LSE`: ``{video_id: tracks}`` -> ``LSE(model, **kwargs)`` updated and computed."""
    metric = LSE(model, **kwargs)
    for video_id, tracks in videos.items():
        metric.update(video_id, tracks)
    return metric.compute(preset)


def _resize_224(frames: np.ndarray) -> np.ndarray:
    if frames.shape[1:3] == (CROP_SIZE, CROP_SIZE):
        return frames
    return np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])  # INTER_LINEAR, as Wav2Lip


class LSEVideos(Metric):
    """LSE-D / LSE-C for the runner, of the generated videos and of the references (the usual anchor).

    Preset ``wav2lip_lrs`` (here): Wav2Lip's LRS protocol, whole frames resized to 224 (the toolkit's
    videos are face-centred crops), read at 25 fps, embedded chunk by chunk (memory does not grow with
    length), mean over videos. The face-track presets (``wav2lip_real``, ``mocha``, ``latentsync``)
    build :class:`metrics.lse_track.LSETrackVideos` instead.
    """

    name, direction = LSE.name, LSE.direction
    consumes = frozenset({GENERATED_FRAMES, AUDIO})
    SIDES = ("generated", "reference")

    def __new__(cls, device: str = "cpu", preset: str = DEFAULT_PRESET) -> "LSEVideos":
        if preset not in PRESETS:
            raise ValueError(f"unknown LSE preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if cls is LSEVideos and preset != "wav2lip_lrs":
            from talking_head.metrics.lse_track import LSETrackVideos

            return super().__new__(LSETrackVideos)
        return super().__new__(cls)

    def __init__(self, device: str = "cpu", preset: str = DEFAULT_PRESET) -> None:
        self.preset = preset
        self.model = SyncNet.from_pretrained(device)
        self.sides = {side: LSE(self.model) for side in self.SIDES}
        self._video: Optional[VideoInfo] = None
        self._streams: dict[str, StreamingScorer] = {}
        self._errors: dict[str, str] = {}
        self._live = False

    def _paths(self) -> dict[str, Any]:
        assert self._video is not None
        return {"generated": self._video.pair.generated, "reference": self._video.pair.reference}

    def start_video(self, video: VideoInfo) -> None:
        # With the audio known first, each window is scored as its frames arrive (constant memory).
        self._video, self._streams, self._errors = video, {}, {}
        for side, path in self._paths().items():
            try:
                self._streams[side] = StreamingScorer(self.model, media.read_audio(path, sample_rate=SAMPLE_RATE,
                                                                                    dtype="int16"))
            except (ValueError, media.MediaError) as err:
                self._errors[side] = str(err).splitlines()[0]
        # At 25 fps the runner's chunks are SyncNet's frames; otherwise both are re-read at 25 fps at the end.
        self._live = video.fps == VIDEO_FPS

    def update(self, chunk: Chunk) -> None:
        if self._live:
            for side, frames in (("generated", chunk.generated), ("reference", chunk.reference)):
                if side in self._streams:
                    self._streams[side].add(_resize_224(frames))

    def _score(self, side: str, path: Any) -> dict[str, Any]:
        if side in self._errors:
            raise ValueError(self._errors[side])
        scorer = self._streams[side]
        if not self._live:
            with media.VideoReader(path, fps=VIDEO_FPS) as reader:
                for frames in reader.iter_chunks(CHUNK):
                    scorer.add(_resize_224(frames))
        return scorer.score()

    def _record(self, side: str, result: dict[str, Any]) -> dict[str, Any]:
        """Add one side's score of the current video; its per-video values."""
        assert self._video is not None
        self.sides[side].update(self._video.pair.video_id, [result])
        return {"lse_d": result["lse_d"], "lse_c": result["lse_c"], "lse_offset": result["offset"]}

    def end_video(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for side, path in self._paths().items():
            try:
                result = self._score(side, path)
            except (ValueError, media.MediaError) as err:
                self._exclude(side, str(err).splitlines()[0])
                continue
            prefix = "" if side == "generated" else "reference_"
            row.update({prefix + key: value for key, value in self._record(side, result).items()})
        self.discard_video()
        return row

    def _exclude(self, side: str, reason: str) -> None:
        """A side of the current video gives no score: recorded in the LSE results and the video's warnings."""
        assert self._video is not None
        self.sides[side].update(self._video.pair.video_id, [], reason=reason)
        self._video.warnings.append(f"LSE {side}: {reason}")

    def discard_video(self) -> None:
        self._streams, self._errors = {}, {}

    def compute(self) -> dict[str, Any]:
        generated, reference = (self.sides[side].compute(self.preset) for side in self.SIDES)
        drop = ("per_video", "per_track", "config")
        return {**{k: v for k, v in generated.items() if k not in drop},
                "reference": {k: v for k, v in reference.items() if k not in drop}}

    def config(self) -> dict[str, Any]:
        return {**self.sides["generated"].config(), "preset": self.preset,
                "crop": "whole frame resized to 224x224 (cv2 INTER_LINEAR), Wav2Lip calculate_scores_LRS.py",
                "fps": float(VIDEO_FPS), "audio": "the video's own audio track, 16 kHz mono int16"}

    def weights_provenance(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.weights_provenance().items() if v}

    def reset(self) -> None:
        for metric in self.sides.values():
            metric.reset()
        self.discard_video()
