"""Audio input of the reference models: checks, and fixed (untrained) per-frame features.

``mel``       Wav2Lip's 80-bin log-mel (:func:`toolkit.audio_features.log_mel`), no weights. The
              context of video frame k is the mel frames of frames k-r .. k+r (``context_radius`` r),
              indexed as Wav2Lip indexes them (``int(80 * frame / fps)``), silence-padded at the ends:
              16 mel frames (0.2 s, SyncNet's window) for r = 2 at 25 fps.
``wav2vec2``  wav2vec 2.0 base / HuBERT base hidden states at the video frame rate
``hubert``    (:class:`toolkit.audio_features.SpeechFeatureExtractor`, weights through the registry),
              the 2r+1 frames around frame k, edge frames repeated, the speech model frozen.

Contexts are computed once per clip from the whole waveform, so a window's features do not depend on
where the window starts: long audio cut into overlapping windows sees the same features as training.
"""


from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from talking_head.toolkit.audio_features import MEL_FPS, MEL_SILENCE, NUM_MELS, SAMPLE_RATE, log_mel

ENCODERS = ("mel", "wav2vec2", "hubert")
SILENCE_RMS = 1e-4  # -80 dBFS: below this the whole clip counts as silent (there is nothing to lip-sync)


class AudioInputError(ValueError):
    """Audio that cannot drive a talking head: too short, silent, wrong rate."""


def check_audio(wav: np.ndarray, source: str | Path, min_frames: int, fps: float) -> None:
    """Raise :class:`AudioInputError` naming `source` when `wav` (16 kHz float) is shorter than `min_frames`
    video frames or silent."""
    seconds = len(wav) / SAMPLE_RATE
    need = min_frames / fps
    if len(wav) < int(math.ceil(need * SAMPLE_RATE)):
        raise AudioInputError(f"{source}: the audio is {seconds:.2f} s long, shorter than one window of "
                              f"{min_frames} frames ({need:.2f} s at {fps:g} fps)")
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    if not np.isfinite(rms) or rms < SILENCE_RMS:
        raise AudioInputError(f"{source}: the audio is silent (RMS {rms:.2e}, below {SILENCE_RMS:g}); "
                              "there is no speech to drive the face")


def mel_context_length(radius: int, fps: float) -> int:
    """Mel frames in the context of one video frame: round((2r + 1) * 80 / fps)."""
    return int(round((2 * radius + 1) * MEL_FPS / float(fps)))


def mel_contexts(mel: np.ndarray, fps: float, num_frames: int, radius: int) -> np.ndarray:
    """(num_frames, L, 80): for video frame k the mel frames from ``floor(80 * (k - r) / fps)`` on.

    For k >= r this is Wav2Lip's index ``int(80 * (k - r) / fps)``; floor keeps the spacing regular before
    the start. Past either end the context is filled with :data:`MEL_SILENCE`.
    """
    length = mel_context_length(radius, fps)
    starts = np.floor(MEL_FPS * (np.arange(num_frames) - radius) / float(fps)).astype(np.int64)
    before = max(0, -int(starts.min()))
    after = max(0, int(starts.max()) + length - len(mel))
    padded = np.concatenate([np.full((before, NUM_MELS), MEL_SILENCE, np.float32), mel.astype(np.float32),
                             np.full((after, NUM_MELS), MEL_SILENCE, np.float32)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, (length, NUM_MELS))[:, 0]
    return np.ascontiguousarray(windows[starts + before])


def frame_contexts(features: np.ndarray, radius: int) -> np.ndarray:
    """(T, 2r+1, D): the features of frames k-r .. k+r for each k, edge frames repeated."""
    padded = np.concatenate([np.repeat(features[:1], radius, 0), features, np.repeat(features[-1:], radius, 0)])
    return np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0)
                                .transpose(0, 2, 1))


class AudioFrontEnd:
    """Fixed (untrained) audio features per video frame: ``front_end(wav16k, num_frames) -> (T, L, D)``.

    `weights`: a registry entry name (or :class:`toolkit.weights.WeightFile`) replacing the default
    wav2vec2 / HuBERT entry, e.g. a private mirror. `width`: the speech model's hidden size (768 for
    both base models), so the network can be built before the model is loaded; checked on loading.
    """

    def __init__(self, encoder: str, fps: float, radius: int, weights: object | None = None, width: int = 768):
        if encoder not in ENCODERS:
            raise ValueError(f"audio.encoder must be one of {ENCODERS}, got {encoder!r}")
        if radius < 0:
            raise ValueError(f"audio.context_radius must be >= 0, got {radius}")
        self.encoder, self.fps, self.radius, self.weights = encoder, float(fps), int(radius), weights
        self.width = int(width)
        self._extractor = None

    @property
    def shape(self) -> tuple[int, int]:
        """(L, D): context length and width of one frame's features."""
        if self.encoder == "mel":
            return mel_context_length(self.radius, self.fps), NUM_MELS
        return 2 * self.radius + 1, self.width

    def extractor(self):
        """The speech model, loaded (and verified through the registry) on first use."""
        if self._extractor is None:
            from talking_head.toolkit.audio_features import SpeechFeatureExtractor

            device = "cuda" if torch.cuda.is_available() else "cpu"
            self._extractor = SpeechFeatureExtractor(self.encoder, device=device, weights_entry=self.weights)
            if self._extractor.dim != self.width:
                entry = self._extractor.provenance["weights_entry"]
                raise ValueError(f"the {self.encoder} model '{entry}' has hidden size {self._extractor.dim}, "
                                 f"the config says audio.feature_width: {self.width}")
        return self._extractor

    def __call__(self, wav: np.ndarray, num_frames: int, mel: np.ndarray | None = None) -> np.ndarray:
        """Contexts for frames 0..num_frames-1 of 16 kHz float `wav`; `mel` reuses a precomputed
        :func:`log_mel` of the same waveform (the dataset stores one)."""
        if self.encoder == "mel":
            return mel_contexts(log_mel(wav) if mel is None else mel, self.fps, num_frames, self.radius)
        return frame_contexts(self.extractor()(wav, self.fps, num_frames), self.radius)

    def mel_window(self, mel: np.ndarray, start: int, length: int) -> np.ndarray:
        """The mel encoder's contexts of frames start..start+length-1 alone: those rows of ``self(wav, T, mel)``,
        reading only the mel rows they cover (`mel` may be a view of a 5-minute clip's)."""
        if self.encoder != "mel":
            raise ValueError(f"mel_window needs the mel encoder, not {self.encoder!r}")
        size = mel_context_length(self.radius, self.fps)
        starts = np.floor(MEL_FPS * (np.arange(start, start + length) - self.radius) / self.fps).astype(np.int64)
        rows = starts[:, None] + np.arange(size)[None, :]
        inside = (rows >= 0) & (rows < len(mel))
        out = np.full((length, size, NUM_MELS), MEL_SILENCE, np.float32)  # past either end: silence, as mel_contexts
        lo = int(rows[inside].min()) if inside.any() else 0
        part = np.asarray(mel[lo:int(rows[inside].max()) + 1 if inside.any() else 0], np.float32)
        out[inside] = part[rows[inside] - lo]
        return out

    def speech_features(self, wav: np.ndarray, num_frames: int) -> np.ndarray:
        """A speech encoder's (num_frames, D) features, what its contexts are cut from (:meth:`speech_window`)."""
        return self.extractor()(wav, self.fps, num_frames)

    def speech_window(self, features: np.ndarray, start: int, length: int) -> np.ndarray:
        """Rows start..start+length-1 of ``frame_contexts(features, radius)`` alone (edge frames repeated)."""
        rows = np.clip(np.arange(start - self.radius, start + length + self.radius), 0, len(features) - 1)
        return frame_contexts(np.asarray(features[rows]), self.radius)[self.radius:self.radius + length]


