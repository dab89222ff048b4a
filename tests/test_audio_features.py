"""Tests of toolkit.audio_features: Wav2Lip log-mel, frame alignment, wav2vec 2.0 / HuBERT features.

Offline: the speech models are tiny random models of the real architecture classes, written with
save_pretrained into a temporary Hugging Face cache laid out the way toolkit.weights looks for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import warnings
from pathlib import Path

import librosa
import numpy as np
import pytest
import scipy.signal
import torch

from talking_head.toolkit import audio_features as af
from talking_head.toolkit import media
from talking_head.toolkit import weights as w

SECONDS = 3.0
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, conv_dim=(8,) * 7,
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=32)  # real conv stack geometry
COMMIT = "a" * 40


# ------------------------------------------------------------------------------------ fixtures
pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py


@pytest.fixture(scope="module")
def sample_wav(shared_sample) -> tuple[np.ndarray, object]:
    clip = shared_sample(speakers=1, clips=1, seconds=SECONDS, seed=0)[0]  # tests/conftest.py
    return media.read_audio(clip.audio, sample_rate=af.SAMPLE_RATE), clip


def tiny_model(kind: str, repo_id: str, *, norm: str = "group", seed: int = 0, snapshot: Path | None = None,
               sha256: str | None = None) -> w.WeightFile:
    """Save a random tiny Wav2Vec2Model / HubertModel + preprocessor config as a hub-cache snapshot; its entry."""
    from transformers import HubertConfig, HubertModel, Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config_class, model_class = (Wav2Vec2Config, Wav2Vec2Model) if kind == "wav2vec2" else (HubertConfig, HubertModel)
    torch.manual_seed(seed)
    model = model_class(config_class(**TINY, feat_extract_norm=norm))
    if snapshot is None:
        snapshot = w.hf_hub_cache() / ("models--" + repo_id.replace("/", "--")) / "snapshots" / COMMIT
    model.save_pretrained(snapshot, safe_serialization=True)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(snapshot)
    return w.WeightFile(name=f"test-{kind}", description="tiny random test model", consumer="tests",
                        url=f"https://huggingface.co/{repo_id}/resolve/{COMMIT}/model.safetensors",
                        filename="model.safetensors", size=None, sha256=sha256, location="hf_hub", license="test",
                        repo_id=repo_id, revision=COMMIT, extra_files=("config.json", "preprocessor_config.json"))


# ---------------------------------------------------------------------------------- log-mel
def reference_log_mel(wav: np.ndarray, pad_mode: str = "reflect") -> np.ndarray:
    """Wav2Lip's recipe written out step by step in float64 (numpy framing + rfft), time-major."""
    y = wav.astype(np.float64)
    emphasized = np.concatenate([y[:1], y[1:] - 0.97 * y[:-1]])  # lfilter([1, -0.97], [1], y)
    padded = np.pad(emphasized, 400, mode=pad_mode)  # centred frames (librosa 0.7: reflect)
    count = 1 + (len(padded) - 800) // 200
    frames = np.stack([padded[i * 200:i * 200 + 800] for i in range(count)])
    window = scipy.signal.get_window("hann", 800, fftbins=True)
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1))  # (N, 401)
    mel_filters = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600, dtype=np.float64)
    db = 20 * np.log10(np.maximum(1e-5, magnitude @ mel_filters.T)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


def test_log_mel_matches_wav2lip_recipe_on_the_sample(sample_wav) -> None:
    wav, _ = sample_wav
    mel = af.log_mel(wav)
    assert mel.dtype == np.float32 and mel.flags.c_contiguous
    assert mel.shape == (1 + len(wav) // 200, 80) == (af.num_mel_frames(len(wav)), af.NUM_MELS)
    assert np.abs(mel - reference_log_mel(wav)).max() < 1e-4
    assert mel.min() >= -4 and mel.max() <= 4 and mel.max() > 0  # speech reaches the upper half of the scale


def test_log_mel_equals_librosa_and_scipy(sample_wav) -> None:
    """The numpy STFT, mel filters and pre-emphasis against the library calls Wav2Lip makes."""
    wav, _ = sample_wav
    np.testing.assert_allclose(af._mel_basis(), librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600,
                                                                     htk=False, norm="slaney"), rtol=1e-6, atol=1e-9)
    emphasized = scipy.signal.lfilter([1.0, -0.97], [1.0], wav)
    spectrum = librosa.stft(y=emphasized, n_fft=800, hop_length=200, win_length=800, window="hann", center=True,
                            pad_mode="reflect", dtype=np.complex64)
    mel = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600, norm="slaney") @ np.abs(spectrum)
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    expected = np.clip(8 * (db + 100) / 100 - 4, -4, 4).T
    assert np.abs(af.log_mel(wav) - expected).max() < 1e-5


def test_log_mel_pads_by_reflection_like_librosa_0_7() -> None:
    wav = (np.random.default_rng(1).standard_normal(16000) * 0.1).astype(np.float32)
    mel = af.log_mel(wav)
    assert np.abs(mel - reference_log_mel(wav, "reflect")).max() < 1e-4
    zero_padded = reference_log_mel(wav, "constant")  # librosa >= 0.9's default: differs at both ends
    assert np.abs(mel[0] - zero_padded[0]).max() > 1e-2 and np.abs(mel[-1] - zero_padded[-1]).max() > 1e-2
    np.testing.assert_allclose(mel[3:-3], zero_padded[3:-3], atol=1e-4)


def test_log_mel_inputs() -> None:
    pcm = (np.random.default_rng(2).standard_normal(8000) * 3000).astype(np.int16)
    np.testing.assert_array_equal(af.log_mel(pcm), af.log_mel(pcm.astype(np.float32) / 32768))
    assert np.all(af.log_mel(np.zeros(4000, np.float32)) == af.MEL_SILENCE)  # digital silence -> -4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa notes that 100 samples are fewer than n_fft
        assert af.log_mel(np.zeros(100, np.float32)).shape == (1, 80)
    with pytest.raises(ValueError):
        af.log_mel(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError):
        af.log_mel(np.zeros(0, np.float32))


def test_mel_indices_follow_wav2lip() -> None:
    assert [af.mel_start_index(k, 25) for k in range(7)] == [0, 3, 6, 9, 12, 16, 19]
    assert af.mel_start_index(5, 25) == int(80.0 * (5 / 25.0)) == 16  # one 5-frame window = 16 mel frames
    for fps in (25, 30, 29.97):
        ranges = [af.mel_frames_for_video_frame(k, fps) for k in range(200)]
        assert [i for r in ranges for i in r] == list(range(af.mel_start_index(200, fps)))  # tiles, no gaps
        assert {len(r) for r in ranges} <= {int(80 / fps), int(80 / fps) + 1}
    with pytest.raises(ValueError):
        af.mel_start_index(-1, 25)


def test_mel_window_slices_and_pads(sample_wav) -> None:
    wav, clip = sample_wav
    mel = af.log_mel(wav)
    assert clip.num_frames == 75 and len(mel) == 241
    window = af.mel_window(mel, 10, 5, 25)
    assert window.shape == (af.SYNCNET_MEL_STEP, 80)
    np.testing.assert_array_equal(window, mel[32:48])
    assert af.mel_window(mel, 10, 5, 30).shape == (13, 80)  # round(5 * 80 / 30)
    assert af.mel_window(mel, 10, 5, 30, length=16).shape == (16, 80)
    last = af.mel_window(mel, 73, 5, 25)  # frames 73..77: the clip ends after 75
    assert last.shape == (16, 80)
    np.testing.assert_array_equal(last[:241 - 233], mel[233:])
    assert np.all(last[241 - 233:] == af.MEL_SILENCE)
    assert np.all(af.mel_window(mel, 500, 5, 25) == af.MEL_SILENCE)


def test_mel_energy_follows_the_mouth_without_offset(sample_wav) -> None:
    """On the sample (frame n shows the mouth for audio time n/25) loudness per frame tracks mouth opening."""
    wav, clip = sample_wav
    mel = af.log_mel(wav)
    energy = np.array([mel[list(af.mel_frames_for_video_frame(k, 25))].mean() for k in range(clip.num_frames)])
    opening = clip.load_ground_truth()["visemes"][:, 0]

    def corr(lag: int) -> float:
        a = energy[max(0, lag):len(energy) + min(0, lag)]
        b = opening[max(0, -lag):len(opening) - max(0, lag)]
        return float(np.corrcoef(a, b)[0, 1])

    scores = {lag: corr(lag) for lag in range(-6, 7)}
    assert scores[0] > 0.5 and abs(max(scores, key=scores.get)) <= 1


# ------------------------------------------------------------------------------ speech features
@pytest.mark.parametrize("kind", ["wav2vec2", "hubert"])
def test_speech_features_shapes_determinism_and_provenance(kind: str, sample_wav) -> None:
    wav, clip = sample_wav
    entry = tiny_model(kind, f"test/tiny-{kind}")
    extractor = af.SpeechFeatureExtractor(kind, weights_entry=entry)
    features = extractor(wav, fps=25)
    assert features.shape == (clip.num_frames, 32) and features.dtype == np.float32
    assert np.all(np.isfinite(features))
    assert extractor(wav, fps=30).shape == (int(SECONDS * 30), 32)
    assert extractor(wav, fps=25, num_frames=80).shape == (80, 32)  # longer than the audio: last value held
    assert extractor(wav, fps=29.97, num_frames=7).shape == (7, 32)
    np.testing.assert_array_equal(extractor(wav, fps=25), features)  # deterministic (eval mode)
    np.testing.assert_array_equal(af.SpeechFeatureExtractor(kind, weights_entry=entry)(wav, fps=25), features)
    assert extractor.features(wav).shape == ((len(wav) - 400) // 320 + 1, 32)  # 50 Hz conv frames

    weights_file = w.weights_file(entry)
    assert extractor.provenance["sha256"] == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert extractor.provenance["verify_status"] == "unpinned"
    assert extractor.provenance["revision"] == COMMIT == extractor.provenance["snapshot"]
    assert extractor.provenance["repo_id"] == f"test/tiny-{kind}" and extractor.provenance["model"] == kind


def test_layer_selection(sample_wav) -> None:
    wav, _ = sample_wav
    entry = tiny_model("wav2vec2", "test/tiny-layers")
    last = af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry).features(wav)
    np.testing.assert_allclose(af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry, layer=2).features(wav),
                               last, atol=1e-6)  # hidden_states[2] of a 2-layer model is the last one
    first = af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry, layer=0).features(wav)
    assert first.shape == last.shape and not np.allclose(first, last)
    with pytest.raises(ValueError):
        af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry, layer=3)
    with pytest.raises(ValueError):
        af.SpeechFeatureExtractor("whisper")


@pytest.mark.parametrize("norm", ["group", "layer"])
def test_chunks_are_stitched_on_the_right_frames(norm: str, sample_wav) -> None:
    """Layer 0 (before attention) sees ~0.3 s of input per frame, once the group norm uses whole-clip
    statistics: chunks with 0.5 s of context must reproduce the whole-clip run - a misplaced frame would show."""
    wav, _ = sample_wav
    entry = tiny_model("wav2vec2", f"test/tiny-{norm}", norm=norm)
    whole = af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry, layer=0).features(wav)
    chunked = af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry, layer=0, chunk_seconds=0.7,
                                        context_seconds=0.5)
    assert chunked.features(wav).shape == whole.shape
    assert np.abs(chunked.features(wav) - whole).max() < 1e-4
    layer = chunked.model.feature_extractor.conv_layers[0]
    assert type(layer.layer_norm).__name__ in ("GroupNorm", "LayerNorm")  # the frozen norm was taken out again


def test_chunked_last_layer_stays_close(sample_wav) -> None:
    """The last layer attends over the chunk + context only: close to the whole-clip run, not identical."""
    wav, _ = sample_wav
    entry = tiny_model("wav2vec2", "test/tiny-global")
    whole = af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry)(wav, fps=25)
    chunked = af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry, chunk_seconds=1.0, context_seconds=0.5)
    assert np.abs(chunked(wav, fps=25) - whole).max() < 0.01 * np.abs(whole).max()  # plain chunks: ~30 %


def test_features_are_placed_at_their_receptive_field_centres() -> None:
    rate, first = 50.0, 199.5 / 16000
    times = first + np.arange(150) / rate  # feature j carries its own time
    for fps in (25, 30, 29.97):
        frame_times = np.arange(int(3 * fps)) / fps
        out = af.resample_to_frames(np.repeat(times[:, None], 3, axis=1), fps, len(frame_times), rate, first)
        np.testing.assert_allclose(out[:, 0], np.clip(frame_times, times[0], times[-1]), atol=1e-6)
    assert af._conv_geometry((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)) == (320, 400)


def test_missing_model_gives_the_registry_error() -> None:
    with pytest.raises(w.WeightsMissingError) as info:
        af.SpeechFeatureExtractor("wav2vec2")
    message = str(info.value)
    assert "toolkit weights fetch wav2vec2-base-960h" in message and "preprocessor_config.json" in message
    with pytest.raises(w.WeightsMissingError, match="hubert-base-ls960"):
        af.SpeechFeatureExtractor("hubert")


def test_pinned_entries_refuse_other_bytes() -> None:
    # The real, pinned entry with a random model in its snapshot folder: corrupt, never loaded. The pinned size
    # rules the tiny file out before it is hashed; with the size unpinned, the sha256 still refuses it.
    real = w.REGISTRY["wav2vec2-base-960h"]
    tiny_model("wav2vec2", real.repo_id or "", snapshot=w.destination(real))
    assert w.verify(real).status == "corrupt"
    with pytest.raises(w.WeightsCorruptError, match=f"truncated: [0-9,]+ bytes, expected {real.size:,}"):
        af.SpeechFeatureExtractor("wav2vec2")
    with pytest.raises(w.WeightsCorruptError, match="wrong sha256"):
        af.SpeechFeatureExtractor("wav2vec2", weights_entry=dataclasses.replace(real, size=None))
    # A private entry pinned to a digest: loads when it matches, refuses when it does not.
    entry = tiny_model("hubert", "test/tiny-pinned")
    digest = hashlib.sha256(w.weights_file(entry).read_bytes()).hexdigest()
    pinned = dataclasses.replace(entry, sha256=digest)
    assert af.SpeechFeatureExtractor("hubert", weights_entry=pinned).provenance["verify_status"] == "ok"
    with pytest.raises(w.WeightsCorruptError):
        af.SpeechFeatureExtractor("hubert", weights_entry=dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(w.WeightsCorruptError, match="not 'wav2vec2'"):
        af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry)  # a HuBERT snapshot under the wrong name


def test_loading_and_running_never_touch_the_network(sample_wav, monkeypatch: pytest.MonkeyPatch) -> None:
    wav, _ = sample_wav
    entry = tiny_model("wav2vec2", "test/tiny-offline")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert af.SpeechFeatureExtractor("wav2vec2", weights_entry=entry)(wav, fps=25).shape == (75, 32)
