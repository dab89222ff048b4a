"""Procedural speech-like audio with a phone timeline, for the built-in sample.

A source-filter synthesiser: a glottal pulse train (Rosenberg pulses along a pitch contour) through a
cascade of formant resonators gives voiced vowels; filtered noise gives consonant bursts and
fricatives; words are separated by pauses. Every phone is written to a timeline together with the
viseme (mouth opening, rounding, spreading) it should produce, so the video can move in sync and
tests know the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

SAMPLE_RATE = 16000

# Formant frequencies F1-F3 (Hz) of an adult male voice (Peterson & Barney style averages).
# Bandwidths are fixed at (80, 100, 140) Hz. A speaker's formants are scaled by `formant_scale`.
VOWEL_FORMANTS = {
    "a": (730.0, 1090.0, 2440.0),
    "e": (530.0, 1840.0, 2480.0),
    "i": (270.0, 2290.0, 3010.0),
    "o": (570.0, 840.0, 2410.0),
    "u": (300.0, 870.0, 2240.0),
}
FORMANT_BANDWIDTHS = (80.0, 100.0, 140.0)

# Viseme targets per phone: (open, round, spread), each in [0, 1].
# open: inner-lip gap as a fraction of the speaker's widest opening; round: lips pushed together
# sideways and forward (/u/, /o/); spread: corners pulled outwards (/i/).
VISEMES = {
    "a": (1.00, 0.00, 0.15),
    "e": (0.55, 0.00, 0.55),
    "i": (0.28, 0.00, 1.00),
    "o": (0.70, 0.75, 0.00),
    "u": (0.25, 1.00, 0.00),
    "m": (0.00, 0.10, 0.10),  # nasal: lips closed, voiced murmur
    "p": (0.00, 0.00, 0.10),  # plosive: closure then burst
    "b": (0.00, 0.00, 0.10),
    "t": (0.15, 0.00, 0.30),
    "k": (0.30, 0.00, 0.10),
    "s": (0.10, 0.00, 0.60),  # fricatives
    "f": (0.08, 0.00, 0.20),
    "sil": (0.05, 0.00, 0.00),  # rest: lips lightly together
}
CONSONANTS = ("m", "p", "b", "t", "k", "s", "f")


@dataclass(frozen=True)
class Phone:
    """One segment of the timeline: a phone (vowel, consonant or 'sil') from start to end seconds."""

    phone: str
    start: float
    end: float

    @property
    def viseme(self) -> tuple[float, float, float]:
        return VISEMES[self.phone]


@dataclass(frozen=True)
class Voice:
    """Speaker-specific voice parameters."""

    f0: float = 120.0  # mean pitch, Hz
    formant_scale: float = 1.0  # vocal-tract length: 1.0 adult male, ~1.17 adult female


def make_timeline(seconds: float, rng: np.random.Generator) -> list[Phone]:
    """Words of 1-3 consonant-vowel syllables separated by pauses, filling `seconds` exactly."""
    phones: list[Phone] = []
    t = rng.uniform(0.15, 0.35)
    phones.append(Phone("sil", 0.0, t))
    vowels = tuple(VOWEL_FORMANTS)
    while True:
        word: list[tuple[str, float]] = []
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.8:
                word.append((str(rng.choice(CONSONANTS)), rng.uniform(0.05, 0.10)))
            word.append((str(rng.choice(vowels)), rng.uniform(0.12, 0.26)))
        pause = rng.uniform(0.12, 0.45)
        if t + sum(d for _, d in word) + pause > seconds:
            break
        for phone, duration in word:
            phones.append(Phone(phone, t, t + duration))
            t += duration
        phones.append(Phone("sil", t, t + pause))
        t += pause
    phones.append(Phone("sil", t, seconds))
    return phones


def _rosenberg_pulse_train(f0: np.ndarray, sample_rate: int, open_quotient: float = 0.6) -> np.ndarray:
    """Glottal flow derivative for a per-sample pitch track (Rosenberg C pulses, phase-accumulated)."""
    phase = np.cumsum(f0 / sample_rate) % 1.0
    rise = 0.66 * open_quotient
    fall = open_quotient - rise
    flow = np.where(
        phase < rise,
        0.5 * (1.0 - np.cos(np.pi * phase / rise)),
        np.where(phase < open_quotient, np.cos(0.5 * np.pi * (phase - rise) / fall), 0.0),
    )
    return np.diff(flow, prepend=0.0)  # lip radiation ~ first difference


def _resonator(freq: float, bandwidth: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-pole resonator with unit gain at DC (Klatt's formant filter)."""
    r = np.exp(-np.pi * bandwidth / sample_rate)
    a1 = -2.0 * r * np.cos(2.0 * np.pi * freq / sample_rate)
    a2 = r * r
    return np.array([1.0 + a1 + a2]), np.array([1.0, a1, a2])


def _smooth(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve each column of (N, C) `x` with an odd-length kernel, edges extended, length kept."""
    pad = len(kernel) // 2
    return np.stack([np.convolve(np.pad(col, pad, mode="edge"), kernel, "valid") for col in x.T], axis=1)


def synthesize(
    timeline: list[Phone], voice: Voice, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Render the timeline to float32 mono audio with peak 0.7."""
    n = int(round(timeline[-1].end * sample_rate))
    t = np.arange(n) / sample_rate

    # Pitch: declination across each word, an accent on each vowel, slow jitter.
    f0 = np.full(n, float(voice.f0))
    f0 *= 1.0 + 0.08 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 2 * np.pi))
    f0 *= 1.0 + 0.01 * signal.lfilter([0.02], [1, -0.98], rng.standard_normal(n))

    # Per-sample formant targets and source amplitudes.
    formants = np.zeros((n, 3))
    voiced = np.zeros(n)
    noise_amp = np.zeros(n)
    noise_kind = np.zeros(n, dtype=np.int8)  # 0 none, 1 broadband burst/frication, 2 sibilant
    last_formants = VOWEL_FORMANTS["a"]
    for ph in timeline:
        i0, i1 = int(round(ph.start * sample_rate)), int(round(ph.end * sample_rate))
        length = i1 - i0
        if length <= 0:
            continue
        local = np.linspace(0.0, 1.0, length, endpoint=False)
        if ph.phone in VOWEL_FORMANTS:
            last_formants = VOWEL_FORMANTS[ph.phone]
            formants[i0:i1] = last_formants
            envelope = np.minimum(1.0, np.minimum(local / 0.15, (1.0 - local) / 0.25))
            voiced[i0:i1] = envelope
            f0[i0:i1] *= 1.0 + 0.12 * np.sin(np.pi * local)  # syllable accent
        else:
            formants[i0:i1] = last_formants
            if ph.phone == "m":
                formants[i0:i1] = (250.0, 1000.0, 2200.0)
                voiced[i0:i1] = 0.25
            elif ph.phone in ("p", "b", "t", "k"):
                burst = local > 0.7  # closure (silence) then release burst
                noise_amp[i0:i1] = np.where(burst, 0.5 * np.exp(-(local - 0.7) / 0.08), 0.0)
                noise_kind[i0:i1] = 1
                if ph.phone == "b":
                    voiced[i0:i1] = 0.1
            elif ph.phone == "s":
                noise_amp[i0:i1] = 0.35 * np.sin(np.pi * local)
                noise_kind[i0:i1] = 2
            elif ph.phone == "f":
                noise_amp[i0:i1] = 0.15 * np.sin(np.pi * local)
                noise_kind[i0:i1] = 1
    formants *= voice.formant_scale
    # Coarticulation: formants glide between phones over ~25 ms.
    smooth = signal.windows.hann(int(0.05 * sample_rate) + 1)
    smooth /= smooth.sum()
    formants = _smooth(formants, smooth)
    voiced = _smooth(voiced[:, None], smooth)[:, 0]

    source = _rosenberg_pulse_train(f0, sample_rate) * voiced
    source += 0.002 * rng.standard_normal(n) * voiced  # aspiration

    # Time-varying cascade of resonators, block by block (5 ms) with carried filter state.
    block = int(0.005 * sample_rate)
    out = source.copy()
    for k, bw in enumerate(FORMANT_BANDWIDTHS):
        zi = np.zeros(2)
        for s in range(0, n, block):
            b, a = _resonator(formants[s, k], bw, sample_rate)
            out[s : s + block], zi = signal.lfilter(b, a, out[s : s + block], zi=zi)

    noise = rng.standard_normal(n)
    broadband = signal.sosfilt(signal.butter(2, [500, 6000], "bandpass", fs=sample_rate, output="sos"), noise)
    sibilant = signal.sosfilt(signal.butter(4, [4000, 7500], "bandpass", fs=sample_rate, output="sos"), noise)
    frication = np.where(noise_kind == 2, sibilant, broadband) * noise_amp

    voiced_part = out / (np.abs(out).max() + 1e-9)
    audio = voiced_part + frication
    audio *= 0.7 / (np.abs(audio).max() + 1e-9)
    return audio.astype(np.float32)


def viseme_track(timeline: list[Phone], fps: float, num_frames: int, smoothing_s: float = 0.035) -> np.ndarray:
    """(num_frames, 3) open/round/spread at frame times, smoothed to mimic coarticulation.

    Targets are laid out on a 1 ms grid, smoothed with a Gaussian (sigma `smoothing_s`), then read at
    each frame's time n / fps, so the mouth moves exactly in sync with the sound.
    """
    grid_rate = 1000
    n = int(round(timeline[-1].end * grid_rate))
    targets = np.zeros((n, 3))
    for ph in timeline:
        targets[int(round(ph.start * grid_rate)) : int(round(ph.end * grid_rate))] = ph.viseme
    sigma = smoothing_s * grid_rate
    kernel = np.exp(-0.5 * (np.arange(-int(4 * sigma), int(4 * sigma) + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    smoothed = _smooth(targets, kernel)
    idx = np.clip(np.round(np.arange(num_frames) / fps * grid_rate).astype(int), 0, n - 1)
    return smoothed[idx]
