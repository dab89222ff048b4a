"""The score of one face track: SyncNet's LSE-D, LSE-C and AV offset, exactly as ``SyncNetInstance.evaluate``.

Usage::

    from talking_head.metrics.lse_score import score_crops, score_video
    from talking_head.metrics.syncnet import SyncNet

    model  = SyncNet.from_pretrained("cpu")
    result = score_crops(crops, audio_int16, model)       # one face track (224x224 crops, 25 fps)
    result = score_video("clip.mp4", model)                # a crop video (or whole frames, resize_to_224)

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

Here all windows are batched (one lip-stream forward per ``batch_size`` windows, built with
``unfold``; the audio stream ``AUDIO_BATCH_SIZE`` at a time) and the 31 offsets are one tensor operation; the numbers agree with the reference to float32
rounding (see tests/test_lse.py).

Frame rate: the scorer assumes 25 fps. :func:`score_video` reads through
``VideoReader(path, fps=25)``, which resamples like ``ffmpeg -r 25`` (e.g. MODA's 30 fps renders).
"""

from __future__ import annotations

import functools
import glob
import os
import shutil
import subprocess
import tempfile
from typing import Any, Iterator, Literal, Optional, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from talking_head.toolkit.fp32 import strict_fp32
from talking_head.metrics.mfcc import mfcc
from talking_head.metrics.syncnet import CROP_SIZE, MFCC_WINDOW, WINDOW_FRAMES, SyncNet
from talking_head.toolkit import media

PathLike = Union[str, "os.PathLike[str]"]

# syncnet_python run_syncnet.py / demo_syncnet.py defaults and SyncNetInstance.evaluate constants.
VSHIFT = 15  # --vshift: offsets -15..+15 video frames (31 candidates)
DEFAULT_BATCH_SIZE = 20  # --batch_size: windows per forward pass (float32 round-off only, see below)
# Lip windows per forward pass, by device, as LSE uses them. On the CPU five windows' activations stay in the
# cores' caches: ~10% faster than 20. On a GPU a 10-s clip's 246 windows go in one pass. Batching moves the
# embeddings by float32 round-off, in the reference as here (docs/metrics-reference.md, "Batching").
BATCH_SIZE = {"cpu": 5, "cuda": 256}
AUDIO_BATCH_SIZE = DEFAULT_BATCH_SIZE  # audio windows per forward pass (small maps: larger batches are faster)
VIDEO_FPS = 25  # the model's frame rate ("Video 25 FPS, Audio 16000HZ")
SAMPLE_RATE = 16_000  # Hz
SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640: min_length = min(frames, floor(samples / 640))
MFCC_PER_FRAME = 4  # 100 Hz MFCC / 25 fps: audio window v starts at MFCC frame 4v
PAIRWISE_EPS = 1e-6  # torch.nn.functional.pairwise_distance default eps: ||x - y + eps||_2
MIN_FRAMES = WINDOW_FRAMES + 1  # min_length - 5 windows must be >= 1


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


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# ------------------------------------------------------------------------------------ scoring
def score_crops(
    crops: np.ndarray | torch.Tensor,
    audio: np.ndarray,
    model: Optional[SyncNet] = None,
    vshift: int = VSHIFT,
    batch_size: int = DEFAULT_BATCH_SIZE,
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
    return _score_features(video_feat, samples, len(frames), num_windows, model, vshift)


def _score_features(video_feat: torch.Tensor, samples: np.ndarray, num_frames: int, num_windows: int,
                    model: SyncNet, vshift: int) -> dict[str, Any]:
    """The audio side, the 31 offsets and the two scores, given the lip embeddings of the windows."""
    device = model_device(model)
    # MFCC in float64 then float32, as the reference's cc.astype(float) -> .float().
    cepstra = torch.from_numpy(mfcc(samples, SAMPLE_RATE).T.astype(np.float32))  # (13, n_mfcc)
    audio_windows = cepstra.unfold(1, MFCC_WINDOW, MFCC_PER_FRAME)[:, :num_windows]  # (13, N, 20)
    audio_windows = audio_windows.permute(1, 0, 2).unsqueeze(1)  # (N, 1, 13, 20)
    video_feat = video_feat[:num_windows]
    with torch.inference_mode(), strict_fp32():
        audio_feat = torch.cat([
            model.forward_aud(audio_windows[i : i + AUDIO_BATCH_SIZE].to(device)).cpu()
            for i in range(0, num_windows, AUDIO_BATCH_SIZE)
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
    gives what ``score_crops(all_crops, audio)`` gives: windows go through the lip stream ``batch_size``
    at a time from the first, whatever the chunks, so chunking changes nothing but memory (frames wait
    until a batch's windows are all there).

    Give the audio up front (``StreamingScorer(model, audio)``) and each window's 31 offset distances
    are computed as soon as its audio neighbours are known: what stays is 31 numbers per window plus
    the embeddings of the last ``vshift`` + one chunk of windows. Without it (``score(audio)`` at the
    end), every window's embedding (4 KB) is kept until then.
    """

    def __init__(self, model: SyncNet, audio: Optional[np.ndarray] = None, vshift: int = VSHIFT,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.model, self.vshift, self.batch_size = model.eval(), int(vshift), int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.num_frames = 0
        self._frames = torch.zeros(0, CROP_SIZE, CROP_SIZE, 3, dtype=torch.uint8)  # BGR, from the next window's first
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
        self._frames = torch.cat([self._frames, frames])
        self._embed(final=False)
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

    def _embed(self, final: bool) -> None:
        """Embed the windows whose frames are all here, in whole batches (``final``: the last, partial one too)."""
        ready = len(self._frames) - WINDOW_FRAMES + 1
        count = ready if final else ready - ready % self.batch_size
        if count > 0:
            with torch.inference_mode(), strict_fp32():
                self._pending.append(self.model.lip_windows(self._frames[: count + WINDOW_FRAMES - 1],
                                                            batch_size=self.batch_size).cpu())
            self._frames = self._frames[count:].clone()  # the next window's frames; the rest is freed

    def _audio(self, start: int, stop: int, num_windows: Optional[int]) -> torch.Tensor:
        """Audio embeddings of windows start..stop-1; zeros outside 0..num_windows-1 (calc_pdist's padding)."""
        lo, hi = max(start, 0), stop if num_windows is None else min(stop, num_windows)
        cached_stop = self._audio_start + len(self._audio_feat)
        if hi > cached_stop:
            device = model_device(self.model)
            with torch.inference_mode(), strict_fp32():
                new = [self.model.forward_aud(self._audio_windows[i : min(i + AUDIO_BATCH_SIZE, hi)].to(device)).cpu()
                       for i in range(cached_stop, hi, AUDIO_BATCH_SIZE)]
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
        self._embed(final=True)
        self._compare(num_windows, num_windows)
        dists = torch.cat(self._rows)[:num_windows]
        return _scores(dists, self.num_frames, self._num_samples, num_windows, self.vshift)


def ffmpeg_exe() -> str:
    """The ffmpeg binary of the reference chain: the one imageio-ffmpeg picks (``$IMAGEIO_FFMPEG_EXE`` if set,
    else the binary bundled with the package, else ``ffmpeg`` on PATH); ValueError when there is none."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise ValueError(f"no ffmpeg binary for the LSE reference chain (imageio-ffmpeg found none: {err})") from None


@functools.lru_cache(maxsize=8)
def _identity(exe: str, size: int, mtime_ns: int) -> dict[str, str]:
    from talking_head.toolkit import weights

    done = subprocess.run([exe, "-version"], capture_output=True, text=True)
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines:
        raise ValueError(f"{exe}: `ffmpeg -version` failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return {"version": lines[0].strip(), "sha256": weights.file_sha256(exe)}


def ffmpeg_identity(exe: Optional[str] = None) -> dict[str, str]:
    """The ffmpeg binary without its path: ``version`` (the first line of ``ffmpeg -version``) and ``sha256``
    of the binary. The reference chain's JPEGs, and so LSE, change with the ffmpeg build."""
    exe = exe or ffmpeg_exe()
    exe = shutil.which(exe) or exe  # imageio-ffmpeg may answer plain "ffmpeg" (found on PATH)
    st = os.stat(exe)
    return dict(_identity(os.path.realpath(exe), st.st_size, st.st_mtime_ns))


def ffmpeg_jpeg_chunks(path: PathLike, native_fps: Optional[float], chunk: int = 32,
                       exe: Optional[str] = None) -> Iterator[np.ndarray]:
    """The reference's frames, ``chunk`` at a time: ``ffmpeg -i VIDEO -threads 1 -f image2 %06d.jpg`` (plus
    ``-r 25`` when the video is not at 25 fps), each JPEG read back with ``cv2.imread`` (BGR -> RGB) and
    deleted. The JPEGs wait on disk (as in the reference) and only one chunk of frames is in memory."""
    path = os.fspath(path)
    with tempfile.TemporaryDirectory(prefix="lse-jpeg-") as tmp:
        command = [exe or ffmpeg_exe(), "-loglevel", "error", "-y", "-i", path, "-threads", "1"]
        if native_fps is None or abs(native_fps - VIDEO_FPS) > 1e-6:
            command += ["-r", str(VIDEO_FPS)]  # the reference assumes 25 fps input; resample like -r 25
        command += ["-f", "image2", os.path.join(tmp, "%06d.jpg")]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise media.MediaError(path, f"ffmpeg could not extract JPEG frames: {done.stderr.strip()[-500:]}")
        files = sorted(glob.glob(os.path.join(tmp, "*.jpg")))
        if not files:
            raise media.NoVideoFramesError(path, "ffmpeg extracted no frames")
        for start in range(0, len(files), chunk):
            frames = []
            for file in files[start : start + chunk]:
                image = cv2.imread(file)
                if image is None:
                    raise media.MediaError(path, f"cv2.imread could not read the JPEG frame {os.path.basename(file)} "
                                                 "that ffmpeg wrote")
                frames.append(image[:, :, ::-1])  # BGR -> RGB
                os.unlink(file)
            yield np.stack(frames)


def _ffmpeg_jpeg_frames(path: str, native_fps: Optional[float]) -> np.ndarray:
    """Every frame of :func:`ffmpeg_jpeg_chunks` at once."""
    return np.concatenate(list(ffmpeg_jpeg_chunks(path, native_fps)))


def score_video(
    path: PathLike,
    model: Optional[SyncNet] = None,
    *,
    resize_to_224: bool = False,
    frame_source: Literal["decode", "ffmpeg_jpeg"] = "decode",
    vshift: int = VSHIFT,
    batch_size: int = DEFAULT_BATCH_SIZE,
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
