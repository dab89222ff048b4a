"""MFCCs exactly as SyncNet's scorer computes them: ``python_speech_features.mfcc(audio, 16000)``.

A vectorised numpy port of python_speech_features 0.6 (``base.mfcc`` / ``base.fbank`` /
``sigproc.framesig``) with the defaults ``SyncNetInstance.evaluate`` relies on. Conventions:

* input: 1-D mono samples at 16 kHz **on the int16 scale** (what ``scipy.io.wavfile.read`` returns
  for the reference's ``pcm_s16le`` WAV). The scale matters: coefficient 0 is the log frame energy,
  so float audio in [-1, 1] shifts it by ``2 * ln(32768) ~ 20.8`` and SyncNet's scores change.
* output: ``(num_frames, 13)`` float64, time-major (100 frames per second), like the reference.
  SyncNet consumes the transpose, ``(13, num_frames)``.
* ``num_frames = 1 + ceil((N - 400) / 160)`` (1 when N <= 400); the last frame is zero-padded.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

__all__ = [
    "SAMPLE_RATE", "WINLEN", "WINSTEP", "NUMCEP", "NFILT", "NFFT", "LOWFREQ", "PREEMPH", "CEPLIFTER",
    "LOG_FLOOR", "mfcc", "num_frames", "filterbank",
]

# python_speech_features.base.mfcc defaults (jameslyons/python_speech_features base.py), as called by
# syncnet_python's SyncNetInstance.evaluate: `python_speech_features.mfcc(audio, sample_rate)`.
SAMPLE_RATE = 16_000  # Hz; the reference extracts audio with `ffmpeg -ar 16000`
WINLEN = 0.025  # s -> 400 samples per frame
WINSTEP = 0.01  # s -> 160 samples hop (100 frames/s; 4 MFCC frames per 25 fps video frame)
NUMCEP = 13  # cepstra kept
NFILT = 26  # mel filters
NFFT = 512  # FFT size (frames of 400 samples are zero-padded to 512)
LOWFREQ = 0.0  # Hz, lowest mel band edge; the highest is sample_rate / 2
PREEMPH = 0.97  # pre-emphasis y[n] = x[n] - 0.97 x[n-1], y[0] = x[0]
CEPLIFTER = 22  # sinusoidal lifter 1 + (L/2) sin(pi n / L)
# Window: rectangular (winfunc = numpy.ones), so no weighting is applied. appendEnergy=True:
# coefficient 0 is replaced by the log of the frame's total power-spectrum energy.
BLOCK_FRAMES = 1000  # MFCC frames computed at a time (10 s): bounds memory, not the numbers
LOG_FLOOR = float(np.finfo(float).eps)  # zero energies are replaced by float64 eps before the log


def _round_half_up(x: float) -> int:
    """sigproc.round_half_up: 0.5 rounds away from zero (Python's round() would round to even)."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def _frame_params(sample_rate: int) -> tuple[int, int]:
    return _round_half_up(WINLEN * sample_rate), _round_half_up(WINSTEP * sample_rate)


def num_frames(num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
    """Number of MFCC frames ``mfcc`` returns for ``num_samples`` samples (sigproc.framesig)."""
    frame_len, frame_step = _frame_params(sample_rate)
    if num_samples <= frame_len:
        return 1
    return 1 + int(math.ceil((1.0 * num_samples - frame_len) / frame_step))


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595 * np.log10(1 + np.asarray(hz) / 700.0)  # HTK mel scale (base.hz2mel)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return 700 * (10 ** (mel / 2595.0) - 1)  # base.mel2hz


def filterbank(sample_rate: int = SAMPLE_RATE, nfilt: int = NFILT, nfft: int = NFFT) -> np.ndarray:
    """The (nfilt, nfft // 2 + 1) triangular mel filterbank of base.get_filterbanks.

    Filter j rises over FFT bins [b_j, b_{j+1}) and falls over [b_{j+1}, b_{j+2}), with
    ``b = floor((nfft + 1) * mel_to_hz(linspace(mel(lowfreq), mel(sr / 2), nfilt + 2)) / sr)``.
    """
    high = sample_rate / 2
    mel_points = np.linspace(_hz_to_mel(LOWFREQ), _hz_to_mel(high), nfilt + 2)
    b = np.floor((nfft + 1) * _mel_to_hz(mel_points) / sample_rate)
    lo, mid, hi = b[:-2, None], b[1:-1, None], b[2:, None]
    i = np.arange(nfft // 2 + 1, dtype=np.float64)[None, :]
    rising = (i >= lo) & (i < mid)
    falling = (i >= mid) & (i < hi)
    out = np.zeros((nfilt, nfft // 2 + 1))
    # `where` keeps empty triangles (two equal bin edges) from dividing by zero, as the loops did.
    np.divide(i - lo, mid - lo, out=out, where=rising)
    np.divide(hi - i, hi - mid, out=out, where=falling)
    return out


_FILTERBANK_16K = filterbank()
_LIFTER = 1 + (CEPLIFTER / 2.0) * np.sin(np.pi * np.arange(NUMCEP) / CEPLIFTER)


def mfcc(signal: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``python_speech_features.mfcc(signal, sample_rate)`` with its defaults: (num_frames, 13) float64.

    ``signal``: 1-D mono samples; pass int16 (or int16-scale floats) to match SyncNet. Integer input
    is computed in float64, as the reference's numpy promotion does; float32 input is pre-emphasised in
    float32, again like the reference.
    """
    x = np.asarray(signal)
    if x.ndim != 1:
        raise ValueError(f"mfcc: expected 1-D mono audio, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("mfcc: empty audio")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"mfcc: expected integer or float samples, got dtype {x.dtype}")
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"mfcc: sample_rate must be positive, got {sample_rate}")

    frame_len, frame_step = _frame_params(sample_rate)
    n = num_frames(len(x), sample_rate)
    fb = _FILTERBANK_16K if sample_rate == SAMPLE_RATE else filterbank(sample_rate)
    out = np.empty((n, NUMCEP))
    # Block by block: every step is per sample or per frame, so this only bounds memory (an hour of
    # audio would otherwise take gigabytes of float64 frames and spectra).
    for first in range(0, n, BLOCK_FRAMES):
        last = min(n, first + BLOCK_FRAMES)
        lo, hi = first * frame_step, (last - 1) * frame_step + frame_len
        # Pre-emphasis, written as the reference's expression so dtype promotion is the same; a block
        # after the first needs the sample before it.
        if lo == 0:
            seg = x[:hi]
            emphasised = np.append(seg[0], seg[1:] - PREEMPH * seg[:-1])
        else:
            seg = x[lo - 1 : hi]
            emphasised = seg[1:] - PREEMPH * seg[:-1]
        padded = np.zeros(hi - lo, dtype=emphasised.dtype)  # the last frame is zero-padded
        padded[: len(emphasised)] = emphasised
        frames = np.lib.stride_tricks.sliding_window_view(padded, frame_len)[::frame_step]
        out[first:last] = _cepstra(frames, fb)
    return out


def _cepstra(frames: np.ndarray, fb: np.ndarray) -> np.ndarray:
    # Power spectrum |FFT|^2 / NFFT, in the reference's order of operations (abs, then square).
    pspec = 1.0 / NFFT * np.square(np.absolute(np.fft.rfft(frames, NFFT)))
    energy = pspec.sum(axis=1)
    energy = np.where(energy == 0, LOG_FLOOR, energy)
    feat = pspec @ fb.T
    feat = np.where(feat == 0, LOG_FLOOR, feat)
    cep = scipy.fft.dct(np.log(feat), type=2, axis=1, norm="ortho")[:, :NUMCEP]
    cep = cep * _LIFTER
    cep[:, 0] = np.log(energy)  # appendEnergy: c0 <- log total frame energy
    return cep
