"""Audio features aligned to video frames: Wav2Lip's 80-bin log-mel, and wav2vec 2.0 / HuBERT hidden states.

Usage::

    from talking_head.toolkit.audio_features import log_mel, mel_window, SpeechFeatureExtractor

    mel = log_mel(wav)                                       # 16 kHz mono -> (N, 80), 80 mel frames/s
    window = mel_window(mel, start_frame=10, num_frames=5, fps=25.0)   # (16, 80), Wav2Lip's window
    hubert = SpeechFeatureExtractor("hubert")(wav, fps=25.0)  # (T, 768) at video frame times

Fidelity notes
--------------

Log-mel
    :func:`log_mel` is Wav2Lip's ``audio.melspectrogram`` (Rudrabha/Wav2Lip ``audio.py`` with the defaults
    of its ``hparams.py``), re-implemented with the settings Wav2Lip actually ran under (``librosa==0.7.0``,
    pinned in its requirements.txt). Wav2Lip returns ``(80, N)`` (mel-major); this module returns the
    **time-major** ``(N, 80)``, which is what Wav2Lip's training code uses after its ``.T``
    (``audio.melspectrogram(wav).T`` in ``color_syncnet_train.py`` / ``wav2lip_train.py``).

    Timing: ``center=True``, so mel frame ``j`` is centred on sample ``200 * j``, i.e. at ``j / 80`` s, and
    ``N = 1 + len(wav) // 200``. Video frame ``k`` (shown at ``k / fps`` s) starts at mel index
    ``int(80. * (k / fps))`` - Wav2Lip's ``crop_audio_window`` expression, kept literally.

Speech features
    :class:`SpeechFeatureExtractor` runs ``facebook/wav2vec2-base-960h`` or ``facebook/hubert-base-ls960``
    (found and verified through :mod:`toolkit.weights`) and resamples its 50 Hz hidden states to the video
    frame rate. See the class docstring for normalisation, chunking and the time of each feature.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

from talking_head.toolkit import weights

__all__ = [
    "SAMPLE_RATE", "NUM_MELS", "MEL_FPS", "MEL_SILENCE", "SYNCNET_MEL_STEP", "log_mel", "num_mel_frames",
    "mel_start_index", "mel_frames_for_video_frame", "mel_window", "SPEECH_MODELS", "SpeechFeatureExtractor",
    "resample_to_frames",
]

# ------------------------------------------------------------------------------ Wav2Lip log-mel
SAMPLE_RATE = 16_000  # Wav2Lip hparams.sample_rate; also what wav2vec 2.0 / HuBERT were trained on
N_FFT = 800  # hparams.n_fft: 50 ms
HOP_SIZE = 200  # hparams.hop_size: 12.5 ms -> 80 mel frames per second
WIN_SIZE = 800  # hparams.win_size (Hann window, as librosa's default)
NUM_MELS = 80  # hparams.num_mels
FMIN = 55.0  # hparams.fmin (Hz)
FMAX = 7600.0  # hparams.fmax (Hz)
PREEMPHASIS = 0.97  # hparams.preemphasis, applied with scipy.signal.lfilter([1, -k], [1], wav)
REF_LEVEL_DB = 20.0  # hparams.ref_level_db, subtracted after amplitude -> dB
MIN_LEVEL_DB = -100.0  # hparams.min_level_db: floor of the dB scale (amplitude 1e-5)
MAX_ABS_VALUE = 4.0  # hparams.max_abs_value with symmetric_mels=True: output range [-4, 4]
MIN_AMPLITUDE = 10.0 ** (MIN_LEVEL_DB / 20.0)  # 1e-5: Wav2Lip's _amp_to_db floor
# librosa 0.7 (Wav2Lip's pin) padded centred frames by reflection; librosa >= 0.9 pads with zeros by default,
# which changes the first and last 2 frames. Stated explicitly so the librosa version does not matter.
STFT_PAD_MODE = "reflect"
STFT_DTYPE = np.complex64  # librosa 0.7's default stft dtype: the float64 FFT is stored as complex64
MEL_FPS = SAMPLE_RATE / HOP_SIZE  # 80.0 mel frames per second (Wav2Lip hard-codes this 80.)
MEL_SILENCE = -MAX_ABS_VALUE  # what digital silence maps to (-120 dB clipped): the padding value
SYNCNET_MEL_STEP = 16  # Wav2Lip's syncnet_mel_step_size: 16 mel frames = 0.2 s = 5 video frames at 25 fps


def _as_float_wav(wav: np.ndarray) -> np.ndarray:
    """1-D float32 waveform in [-1, 1]; int16 input is scaled by 1/32768 (as librosa.load does)."""
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise ValueError(f"expected a 1-D mono waveform, got shape {wav.shape}")
    if wav.size == 0:
        raise ValueError("empty waveform")
    if wav.dtype == np.int16:
        return wav.astype(np.float32) / 32768.0
    if not np.issubdtype(wav.dtype, np.floating):
        raise TypeError(f"expected float32 or int16 samples, got {wav.dtype}")
    return wav.astype(np.float32, copy=False)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa ``hz_to_mel(htk=False)``): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, np.float64)
    linear = hz / (200.0 / 3)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), (200.0 / 3) * mel)


@functools.lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    """(80, 401) Slaney mel filters: librosa ``filters.mel(htk=False, norm="slaney")`` (0.7's ``norm=1``).

    Written out rather than imported: librosa costs about two seconds to import and JIT-compile in every
    worker process. ``tests/test_audio_features.py`` checks it against librosa itself.
    """
    fft_hz = np.fft.rfftfreq(N_FFT, d=1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), NUM_MELS + 2))
    width = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    rising = -ramps[:-2] / width[:-1, None]
    falling = ramps[2:] / width[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # Slaney: each filter has unit area
    return weights.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _hann_window() -> np.ndarray:
    """Periodic Hann window of WIN_SIZE samples (scipy ``get_window("hann", 800, fftbins=True)``)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(WIN_SIZE) / WIN_SIZE)


def _stft_magnitude(y: np.ndarray) -> np.ndarray:
    """|STFT| as librosa ``stft(center=True, pad_mode="reflect", dtype=complex64)`` computes it: (401, N) float32.

    Frames are centred (the signal is reflected by n_fft/2 at both ends), windowed and transformed in float64;
    the result is stored as complex64 before the magnitude, as librosa stores it.
    """
    padded = np.pad(y, N_FFT // 2, mode=STFT_PAD_MODE)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_SIZE]
    spectrum = np.fft.rfft(frames * _hann_window(), axis=1).astype(STFT_DTYPE)
    return np.abs(spectrum).T


def num_mel_frames(num_samples: int) -> int:
    """Frames :func:`log_mel` returns for `num_samples` samples (centred STFT): 1 + num_samples // 200."""
    return 1 + num_samples // HOP_SIZE


def log_mel(wav: np.ndarray) -> np.ndarray:
    """Wav2Lip's normalised log-mel spectrogram of 16 kHz mono audio, time-major: (N, 80) float32 in [-4, 4].

    Steps (Wav2Lip ``audio.melspectrogram``): pre-emphasis 0.97 (lfilter) -> |STFT| (n_fft 800, hop 200,
    Hann 800, centred, reflect padding) -> 80 Slaney mel filters 55-7600 Hz -> 20*log10(max(1e-5, x)) - 20
    -> symmetric normalisation 8 * (dB + 100) / 100 - 4, clipped to [-4, 4].
    """
    y = _as_float_wav(wav).astype(np.float64)
    # scipy's lfilter([1, -0.97], [1], y), written out: the same float64 products and sums
    emphasized = np.concatenate([y[:1], y[1:] + (-PREEMPHASIS) * y[:-1]])
    spectrum = _stft_magnitude(emphasized)
    # einsum, not BLAS: BLAS may split the sum differently with the thread count, and a resumed or
    # distributed run must give bit-identical features.
    mel = np.einsum("mf,ft->mt", _mel_basis(), spectrum, optimize=False)  # (80, N) float32
    db = 20.0 * np.log10(np.maximum(MIN_AMPLITUDE, mel)) - REF_LEVEL_DB
    scaled = (2.0 * MAX_ABS_VALUE) * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE
    return np.ascontiguousarray(np.clip(scaled, -MAX_ABS_VALUE, MAX_ABS_VALUE).T, dtype=np.float32)


def mel_start_index(frame: int, fps: float) -> int:
    """First mel frame of video frame `frame`: Wav2Lip's ``int(80. * (frame / fps))``.

    Mel frame j is centred at j/80 s and video frame k is shown from k/fps s, so this is the mel frame
    centred at, or just before, the start of video frame k.
    """
    if frame < 0:
        raise ValueError(f"frame index must be >= 0, got {frame}")
    return int(MEL_FPS * (frame / float(fps)))


def mel_frames_for_video_frame(frame: int, fps: float) -> range:
    """The mel indices belonging to video frame `frame`: [start(frame), start(frame + 1)).

    At 25 fps that is 3 or 4 frames (3.2 on average); consecutive frames tile the mel axis without gaps.
    """
    return range(mel_start_index(frame, fps), mel_start_index(frame + 1, fps))


def mel_window(mel: np.ndarray, start_frame: int, num_frames: int, fps: float, length: int | None = None) -> np.ndarray:
    """The (length, 80) mel slice for video frames [start_frame, start_frame + num_frames).

    Starts at ``mel_start_index(start_frame, fps)`` (Wav2Lip's ``crop_audio_window``). `length` defaults to
    ``round(num_frames * 80 / fps)``: 16 for Wav2Lip's 5-frame window at 25 fps (pass ``length=16`` to
    feed a 25 fps-trained SyncNet at another rate). Past the end of `mel` the window is padded with
    :data:`MEL_SILENCE` (-4, the value of digital silence); Wav2Lip's training loader instead skips such
    windows, so callers that want Wav2Lip's sampling should drop windows that needed padding.
    """
    if mel.ndim != 2:
        raise ValueError(f"expected a time-major (N, {NUM_MELS}) mel spectrogram, got shape {mel.shape}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if length is None:
        length = int(round(num_frames * MEL_FPS / float(fps)))
    start = mel_start_index(start_frame, fps)
    window = mel[start:start + length]
    if len(window) < length:
        pad = np.full((length - len(window), mel.shape[1]), MEL_SILENCE, dtype=mel.dtype)
        window = np.concatenate([window, pad], axis=0)
    return window


# ------------------------------------------------------------------------- wav2vec 2.0 / HuBERT
# name -> (registry entry, transformers model class, config.model_type)
SPEECH_MODELS: dict[str, tuple[str, str, str]] = {
    "wav2vec2": ("wav2vec2-base-960h", "Wav2Vec2Model", "wav2vec2"),
    "hubert": ("hubert-base-ls960", "HubertModel", "hubert"),
}
CHUNK_SECONDS = 20.0  # audio per forward pass beyond which we chunk: bounds attention memory (~1000 frames)
CONTEXT_SECONDS = 2.0  # extra audio on each side of a chunk, computed and thrown away (hides chunk edges)


def resample_to_frames(features: np.ndarray, fps: float, num_frames: int, feature_rate: float,
                       first_feature_time: float) -> np.ndarray:
    """Linear interpolation of features (T, D) at times first_feature_time + j / feature_rate onto video
    frame times k / fps, k < num_frames. Times before the first / after the last feature hold the edge value."""
    if len(features) == 0:
        raise ValueError("no features to resample")
    frame_times = np.arange(num_frames, dtype=np.float64) / float(fps)
    position = np.clip((frame_times - first_feature_time) * feature_rate, 0.0, len(features) - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, len(features) - 1)
    weight = (position - lower)[:, None]
    out = (1.0 - weight) * features[lower].astype(np.float64) + weight * features[upper].astype(np.float64)
    return out.astype(np.float32)


class SpeechFeatureExtractor:
    """wav2vec 2.0 / HuBERT hidden states resampled to video frames: ``extractor(wav16k, fps) -> (T, D)``.

    * Weights: the registry entry of `name` (or `weights_entry`, e.g. a private mirror or a test model) is
      verified with :func:`toolkit.weights.require` ("ok" and "unpinned" load, "corrupt" and "missing"
      raise), then loaded with ``from_pretrained(snapshot_dir, local_files_only=True)``. transformers is
      told which weights format to read so it loads exactly the file that was verified. The model stays
      resident (eval mode) between calls.
    * Input: 16 kHz mono float32 (or int16). Normalised to zero mean / unit variance over the *whole* clip
      by the model's own ``Wav2Vec2FeatureExtractor`` when its preprocessor config says ``do_normalize``.
    * Chunks: clips longer than `chunk_seconds` + 2 * `context_seconds` are cut into cores of
      `chunk_seconds` of output frames; each core is run with up to `context_seconds` of extra audio on both
      sides and only the core's frames are kept. Chunk starts are multiples of the conv stride (320 samples),
      so the kept frames are the same frames the whole-clip run would produce, concatenated without overlap
      or gaps. Both base models normalise their first conv layer with a GroupNorm over the *whole input's*
      time axis; a chunk alone would get other statistics (badly so for a chunk that is mostly silence), so
      for chunked runs those statistics are first computed over the whole clip (a streamed pass of that one
      conv layer) and frozen into the layer. What remains different from a whole-clip run is only that
      attention sees the chunk plus its context instead of the whole clip.
    * Timing: feature j comes from input samples [320 j, 320 j + 400) (the conv stack's stride and receptive
      field, computed from the config), so it is placed at the centre of that window,
      (320 j + 199.5) / 16000 s ~= 0.02 j + 0.0125 s (samples at n / 16000 s, the same convention as video
      frame k at k / fps and mel frame j at j / 80). Frame k gets the linear interpolation of the features at
      k / fps (edge values held at both ends).
    * `layer`: "last" is ``last_hidden_state``; an int i is ``hidden_states[i]`` (0 = the transformer's input,
      i = output of transformer layer i; negative counts from the end).

    ``provenance`` records model, registry entry, repository, pinned revision, snapshot, weights file, its
    sha256 and verification status, layer and timing constants.
    """

    def __init__(self, name: Literal["wav2vec2", "hubert"] = "wav2vec2", device: str = "cpu",
                 layer: Literal["last"] | int = "last", *, weights_entry: str | weights.WeightFile | None = None,
                 chunk_seconds: float = CHUNK_SECONDS, context_seconds: float = CONTEXT_SECONDS) -> None:
        if name not in SPEECH_MODELS:
            raise ValueError(f"unknown speech model {name!r}; choose one of {sorted(SPEECH_MODELS)}")
        if layer != "last" and not isinstance(layer, int):
            raise ValueError(f"layer must be 'last' or an int, got {layer!r}")
        if chunk_seconds <= 0 or context_seconds < 0:
            raise ValueError("chunk_seconds must be > 0 and context_seconds >= 0")
        import torch
        import transformers

        default_entry, class_name, model_type = SPEECH_MODELS[name]
        entry = weights.get(weights_entry if weights_entry is not None else default_entry)
        if entry.location != "hf_hub":
            raise ValueError(f"'{entry.name}' is not a Hugging Face model snapshot (location {entry.location})")
        weights.require(entry)  # WeightsMissingError / WeightsCorruptError with the registry's instructions
        check = weights.verify(entry)  # digest comes from the verification cache: no second hash
        snapshot = weights.path(entry)
        weights_file = check.path

        config = transformers.AutoConfig.from_pretrained(snapshot, local_files_only=True)
        if config.model_type != model_type:
            raise weights.WeightsCorruptError(
                f"'{entry.name}' at {snapshot} holds a {config.model_type!r} model, not {model_type!r} ({name})"
            )
        model_class = getattr(transformers, class_name)
        self.model = model_class.from_pretrained(
            snapshot, local_files_only=True, use_safetensors=weights_file.suffix == ".safetensors",
        ).to(device=device, dtype=torch.float32).eval()
        self.feature_extractor = transformers.Wav2Vec2FeatureExtractor.from_pretrained(snapshot, local_files_only=True)
        if self.feature_extractor.sampling_rate != SAMPLE_RATE:
            raise ValueError(f"{entry.name} expects {self.feature_extractor.sampling_rate} Hz input, not {SAMPLE_RATE}")

        num_layers = int(config.num_hidden_layers)
        if isinstance(layer, int) and not -(num_layers + 1) <= layer <= num_layers:
            raise ValueError(f"layer {layer} out of range for {num_layers} transformer layers (0..{num_layers})")
        self.name = name
        self.device = device
        self.layer = layer
        self.dim = int(config.hidden_size)
        self.stride, self.receptive_field = _conv_geometry(config.conv_kernel, config.conv_stride)
        self.feature_rate = SAMPLE_RATE / self.stride  # 50 Hz for both base models
        self.first_feature_time = (self.receptive_field - 1) / 2.0 / SAMPLE_RATE  # centre of feature 0's window
        self.chunk_frames = max(1, int(round(chunk_seconds * self.feature_rate)))
        self.context_frames = int(round(context_seconds * self.feature_rate))
        self.provenance: dict[str, Any] = {
            "model": name,
            "weights_entry": entry.name,
            "repo_id": entry.repo_id,
            "revision": entry.revision,
            "snapshot": snapshot.name,
            "weights_file": weights_file.name,
            "sha256": check.actual_sha256,
            "verify_status": check.status,
            "layer": layer,
            "hidden_size": self.dim,
            "feature_rate_hz": self.feature_rate,
            "first_feature_time_s": self.first_feature_time,
            "do_normalize": bool(self.feature_extractor.do_normalize),
            "chunk_seconds": chunk_seconds,
            "context_seconds": context_seconds,
        }

    # ---------------------------------------------------------------------------------- running
    def num_features(self, num_samples: int) -> int:
        """Feature frames the conv stack produces for `num_samples` samples (at least the receptive field)."""
        return (max(num_samples, self.receptive_field) - self.receptive_field) // self.stride + 1

    def features(self, wav: np.ndarray) -> np.ndarray:
        """The model's hidden states at its own rate: (num_features(len(wav)), D) float32."""
        samples = _as_float_wav(wav)
        values = self.feature_extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="np").input_values[0]
        values = np.asarray(values, dtype=np.float32)
        if len(values) < self.receptive_field:  # too short for one frame: pad (after normalisation) with zeros
            values = np.pad(values, (0, self.receptive_field - len(values)))
        total = self.num_features(len(values))
        if total <= self.chunk_frames + 2 * self.context_frames:
            return self._forward(values)
        pieces = []
        with self._whole_clip_group_norm(values):
            for start in range(0, total, self.chunk_frames):
                end = min(start + self.chunk_frames, total)
                first, last = max(0, start - self.context_frames), min(total, end + self.context_frames)
                segment = values[first * self.stride:(last - 1) * self.stride + self.receptive_field]
                hidden = self._forward(segment)
                if len(hidden) != last - first:  # cannot happen for a plain conv stack; guards odd configs
                    raise RuntimeError(f"expected {last - first} frames from the chunk, model gave {len(hidden)}")
                pieces.append(hidden[start - first:end - first])
        return np.concatenate(pieces, axis=0)

    @contextlib.contextmanager
    def _whole_clip_group_norm(self, values: np.ndarray) -> Iterator[None]:
        """While active, the first conv layer's GroupNorm uses statistics of the whole clip, not of its input.

        Its conv is run over the clip in pieces (exact: piece starts are multiples of its stride) to
        accumulate per-group sums in float64. A no-op for layer-norm conv stacks (per-frame normalisation).
        """
        import torch

        layer = self.model.feature_extractor.conv_layers[0]
        norm = getattr(layer, "layer_norm", None)
        if not isinstance(norm, torch.nn.GroupNorm):
            yield
            return
        kernel, step = layer.conv.kernel_size[0], layer.conv.stride[0]
        outputs = (len(values) - kernel) // step + 1
        piece = max(1, self.chunk_frames * self.stride // step)  # conv outputs per piece: one chunk's worth
        channels = layer.conv.out_channels
        total = torch.zeros(channels, dtype=torch.float64)
        total_sq = torch.zeros(channels, dtype=torch.float64)
        with torch.inference_mode():
            for a in range(0, outputs, piece):
                b = min(outputs, a + piece)
                segment = torch.from_numpy(np.ascontiguousarray(values[a * step:(b - 1) * step + kernel]))
                out = layer.conv(segment[None, None].to(self.device))[0].double().cpu()  # (channels, b - a)
                total += out.sum(dim=1)
                total_sq += (out * out).sum(dim=1)
        groups = norm.num_groups
        count = outputs * (channels // groups)
        mean = total.view(groups, -1).sum(dim=1) / count
        var = (total_sq.view(groups, -1).sum(dim=1) / count - mean * mean).clamp_min(0.0)  # biased, as GroupNorm
        per_group = channels // groups
        frozen = _frozen_group_norm_class()(mean.repeat_interleave(per_group), var.repeat_interleave(per_group), norm)
        layer.layer_norm = frozen.to(self.device)
        try:
            yield
        finally:
            layer.layer_norm = norm

    def _forward(self, values: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(values))[None].to(self.device)
            if self.layer == "last":
                hidden = self.model(inputs).last_hidden_state
            else:
                hidden = self.model(inputs, output_hidden_states=True).hidden_states[self.layer]
        return hidden[0].float().cpu().numpy()

    def __call__(self, wav: np.ndarray, fps: float, num_frames: int | None = None) -> np.ndarray:
        """Hidden states at video frame times k / fps: (num_frames, D) float32.

        `num_frames` defaults to ``round(len(wav) * fps / 16000)``; frames past the end of the audio repeat
        the last feature.
        """
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        samples = _as_float_wav(wav)
        if num_frames is None:
            num_frames = int(round(len(samples) * float(fps) / SAMPLE_RATE))
        if num_frames < 0:
            raise ValueError(f"num_frames must be >= 0, got {num_frames}")
        feats = self.features(samples)
        return resample_to_frames(feats, fps, num_frames, self.feature_rate, self.first_feature_time)


@functools.lru_cache(maxsize=1)
def _frozen_group_norm_class() -> type:
    """The FrozenGroupNorm module class (defined lazily: torch is only imported when speech features are used)."""
    import torch

    class FrozenGroupNorm(torch.nn.Module):
        """GroupNorm with given per-channel mean/variance (of the whole clip) and the original affine."""

        def __init__(self, mean: Any, var: Any, norm: Any) -> None:
            super().__init__()
            scale = 1.0 / torch.sqrt(var + norm.eps)
            weight = norm.weight.detach().double() if norm.affine else torch.ones_like(mean)
            bias = norm.bias.detach().double() if norm.affine else torch.zeros_like(mean)
            self.register_buffer("scale", (scale * weight).float()[None, :, None])
            self.register_buffer("shift", (bias - mean * scale * weight).float()[None, :, None])

        def forward(self, x: Any) -> Any:
            return x * self.scale + self.shift

    return FrozenGroupNorm


def _conv_geometry(kernels: Any, strides: Any) -> tuple[int, int]:
    """(total stride, receptive field) in samples of a stack of unpadded 1-D convolutions."""
    stride, field = 1, 1
    for kernel, step in zip(kernels, strides):
        field += (int(kernel) - 1) * stride
        stride *= int(step)
    return stride, field
