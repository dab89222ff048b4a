"""DreamHead A2L (baselines/dreamhead/a2l_diffusion.py): acceptance on held-out sample clips, samplers,
classifier-free guidance, long audio, save/load, bad input, and the wav2vec 2.0 encoder.

Acceptance: trained with the `tiny` config (fixed seed, well under 3 CPU minutes), the generated
mouth landmarks of the test-split clips beat the mean-landmark baseline (P-bar repeated) on mouth LMD
(the `dense` preset: MediaPipe lips, centred, % of the inter-ocular distance) by at least 30%, and the
generated mouth opening correlates with the ground truth at r >= 0.5 on every clip.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from datasets import load_from_disk

from talking_head.baselines import training
from talking_head.baselines.dreamhead import STAGES, load_config
from talking_head.baselines.checkpoint import CheckpointError
from talking_head.baselines.dreamhead.a2l_diffusion import A2LDiffusion, point_indices
from talking_head.baselines.subjects import speaker_means
from talking_head.baselines.dreamhead.audio_encoder import AudioInputError, mel_context_length, mel_contexts
from talking_head.metrics.lmd import frame_distances
from talking_head.toolkit.audio_features import MEL_SILENCE, log_mel, mel_window
from talking_head.toolkit import face_mesh
from talking_head.toolkit import weights as w

import weights_factory as factory
from same_items import assert_same_items


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained(tiny_runs) -> A2LDiffusion:
    """The tiny config exactly as shipped, trained on the sample's train split (tests/conftest.py)."""
    run = tiny_runs.stage("dreamhead", "a2l")[0]  # its CPU budget: tests/test_training_budget.py
    return A2LDiffusion.from_pretrained(run)


@dataclasses.dataclass
class Clip:
    clip_id: str
    wav: np.ndarray
    mel: np.ndarray
    truth: np.ndarray  # (T, 478, 3) canonical
    mean: np.ndarray  # P-bar of the speaker (train split)


@pytest.fixture(scope="module")
def test_clips(preprocessed_sample) -> list[Clip]:
    means = speaker_means(preprocessed_sample)
    rows = load_from_disk(str(preprocessed_sample))["test"].with_format("numpy")
    clips = [Clip(str(r["clip_id"]), np.asarray(r["audio"]).astype(np.float32) / 32768.0, r["mel"],
                  r["canonical_landmarks"], means[str(r["speaker"])]) for r in rows]
    assert len(clips) == 2
    return clips


def generated(model: A2LDiffusion, clip: Clip, **options) -> np.ndarray:
    contexts = model.audio_contexts(clip.wav, num_frames=len(clip.truth), mel=clip.mel)
    return model.generate(contexts, clip.mean, **options).landmarks


def scores(model: A2LDiffusion, clips: list[Clip], **options) -> tuple[float, list[float]]:
    """(improvement of pooled mouth LMD over the mean-landmark baseline, mouth-opening r per clip)."""
    ours, baseline, rs = [], [], []
    for clip in clips:
        landmarks = generated(model, clip, **options)
        still = np.repeat(clip.mean[None], len(clip.truth), axis=0)
        ours.append(frame_distances(landmarks, clip.truth, "dense", "mouth"))
        baseline.append(frame_distances(still, clip.truth, "dense", "mouth"))
        rs.append(float(np.corrcoef(face_mesh.mouth_opening(landmarks), face_mesh.mouth_opening(clip.truth))[0, 1]))
    ours_lmd, base_lmd = np.nanmean(np.concatenate(ours)), np.nanmean(np.concatenate(baseline))
    return 1.0 - ours_lmd / base_lmd, rs


# ------------------------------------------------------------------------------------ acceptance
def test_acceptance_beats_mean_landmarks_and_follows_the_mouth(trained, test_clips) -> None:
    improvement, rs = scores(trained, test_clips)
    print(f"DDIM: mouth LMD {100 * improvement:.1f}% below the mean-landmark baseline; mouth opening r = {rs}")
    assert improvement >= 0.30
    assert min(rs) >= 0.5


def test_dpm_solver_sampler(trained, test_clips) -> None:
    improvement, rs = scores(trained, test_clips, sampler="dpm", steps=10)
    print(f"DPM-Solver++ 10 steps: {100 * improvement:.1f}%, r = {rs}")
    assert improvement >= 0.30 and min(rs) >= 0.5


def test_classifier_free_guidance(trained, test_clips) -> None:
    """Guidance 0 is the unconditional model: the audio is ignored exactly (two clips' audio give the same
    landmarks) and the mouth no longer follows it; guidance 1.5 follows it."""
    a, b = test_clips
    frames = min(len(a.truth), len(b.truth))
    contexts_a = trained.audio_contexts(a.wav, num_frames=frames, mel=a.mel)
    contexts_b = trained.audio_contexts(b.wav, num_frames=frames, mel=b.mel)
    unconditional_a = trained.generate(contexts_a, a.mean, guidance_scale=0.0).landmarks
    unconditional_b = trained.generate(contexts_b, a.mean, guidance_scale=0.0).landmarks
    np.testing.assert_array_equal(unconditional_a, unconditional_b)
    guided = trained.generate(contexts_a, a.mean, guidance_scale=1.5).landmarks
    r = [float(np.corrcoef(face_mesh.mouth_opening(x), face_mesh.mouth_opening(a.truth[:frames]))[0, 1])
         for x in (unconditional_a, guided)]
    assert r[1] - r[0] > 0.4, r


def test_long_audio_continues_each_window_from_the_previous(trained, test_clips) -> None:
    """generate() = window-by-window sample() calls: each window gets the first shared frames as known
    frames (kept exactly) and is faded in over the last `crossfade` shared ones."""
    clip = test_clips[0]
    frames = len(clip.truth)  # 125 frames: windows of 25 sharing 8, the last aligned to the end
    assert trained.window_starts(frames, 8) == [0, 17, 34, 51, 68, 85, 100]
    assert trained.window_starts(25, 8) == [0]
    contexts = trained.audio_contexts(clip.wav, num_frames=frames, mel=clip.mel)
    out = trained.generate(contexts, clip.mean, overlap=8, crossfade=4, seed=3).landmarks
    assert out.shape == (frames, 478, 3) and np.isfinite(out).all()

    generator = torch.Generator().manual_seed(3)
    mean = torch.from_numpy(clip.mean)[None]
    ctx = torch.from_numpy(contexts)
    first = trained.sample(ctx[None, 0:25], mean, generator=generator)[0].numpy()
    known = np.concatenate([first[17:25], np.zeros((17, 478, 3), np.float32)])  # only 4 of them are used
    second = trained.sample(ctx[None, 17:42], mean, torch.from_numpy(known)[None], known_frames=4,
                            generator=generator)[0].numpy()
    np.testing.assert_array_equal(second[:4], first[17:21])  # known frames are kept exactly
    np.testing.assert_allclose(out[:21], first[:21], atol=1e-5)
    share = np.arange(1, 5, dtype=np.float32)[:, None, None] / 5  # the new window's share over frames 21..24
    np.testing.assert_allclose(out[21:25], (1 - share) * first[21:25] + share * second[4:8], atol=1e-5)
    np.testing.assert_allclose(out[25:34], second[8:17], atol=1e-5)

    one_window = trained.generate(contexts[:25], clip.mean).landmarks
    assert one_window.shape == (25, 478, 3)
    with pytest.raises(ValueError, match="shorter than one window"):
        trained.generate(contexts[:24], clip.mean)
    with pytest.raises(ValueError, match="crossfade must be in 0..overlap"):
        trained.generate(contexts, clip.mean, overlap=3, crossfade=4)


# ------------------------------------------------------------------------------------ small pieces
def test_points_subset_shapes_and_loss() -> None:
    """A lips+eyes model: the loss is a scalar with its terms; generated meshes hold P-bar elsewhere."""
    config = load_config("tiny", "a2l", ["landmarks.points=lips_eyes", "network.hidden_size=32", "network.layers=1"])
    torch.manual_seed(0)
    model = A2LDiffusion.from_config(config)
    points = point_indices("lips_eyes")
    assert len(points) == 82  # 40 lip points, 2 x 16 eyelid points, 2 x 5 iris points
    length, width = model.front_end.shape
    assert (length, width) == (mel_context_length(2, 25), 80) == (16, 80)
    batch = {"landmarks": 256 + torch.randn(3, 25, len(points), 3), "mean_landmarks": 256 + torch.zeros(3, len(points), 3),
             "audio": torch.randn(3, 25, length, width)}
    loss, terms = model.training_loss(batch, torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and set(terms) == {"mse", "velocity"}
    loss.backward()
    assert model.network.null_audio.grad is not None  # the CFG null condition is always in the graph

    mean = np.random.default_rng(0).normal(256, 50, (478, 3)).astype(np.float32)
    out = model.generate(np.random.default_rng(1).normal(size=(30, length, width)).astype(np.float32), mean, steps=3)
    assert out.points.shape == (30, len(points), 3) and out.landmarks.shape == (30, 478, 3)
    others = np.setdiff1d(np.arange(478), points)
    np.testing.assert_array_equal(out.landmarks[:, others], np.broadcast_to(mean[others], (30, len(others), 3)))


def test_mel_contexts_are_wav2lip_windows() -> None:
    wav = np.random.default_rng(0).normal(0, 0.1, 16000).astype(np.float32)
    mel = log_mel(wav)
    contexts = mel_contexts(mel, 25.0, 25, radius=2)
    assert contexts.shape == (25, 16, 80)
    for k in range(2, 25):  # the window of frames k-2..k+2 as Wav2Lip cuts it (silence past the end)
        np.testing.assert_array_equal(contexts[k], mel_window(mel, k - 2, 5, 25.0))
    assert (contexts[0, :7] == MEL_SILENCE).all() and (contexts[0, 7:] == mel[:9]).all()  # starts at floor(-6.4) = -7


def test_save_load_and_checkpoint_errors(tmp_path) -> None:
    config = load_config("tiny", "a2l", ["network.hidden_size=32", "network.layers=1"])
    torch.manual_seed(0)
    model = A2LDiffusion.from_config(config)
    model.save_pretrained(tmp_path / "ok")
    loaded = A2LDiffusion.from_pretrained(tmp_path / "ok")
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])

    (tmp_path / "bigger").mkdir()
    (tmp_path / "bigger" / "model.safetensors").write_bytes((tmp_path / "ok" / "model.safetensors").read_bytes())
    text = (tmp_path / "ok" / "config.yaml").read_text().replace("hidden_size: 32", "hidden_size: 64")
    (tmp_path / "bigger" / "config.yaml").write_text(text)
    with pytest.raises(CheckpointError, match="does not match.*another config"):
        A2LDiffusion.from_pretrained(tmp_path / "bigger")

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.safetensors").write_bytes(b"")
    (tmp_path / "other" / "config.yaml").write_text("model: moda\nstage: renderer\n")
    with pytest.raises(CheckpointError, match=r"model/stage \('moda', 'renderer'\), not dreamhead/a2l"):
        A2LDiffusion.from_pretrained(tmp_path / "other")
    with pytest.raises(CheckpointError, match="config.yaml: missing"):
        A2LDiffusion.from_pretrained(tmp_path / "nothing")


def test_bad_audio_is_named(trained) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(AudioInputError, match=r"speech\.wav: the audio is 0\.50 s long, shorter than one window of 25"):
        trained.audio_contexts(rng.normal(0, 0.1, 8000).astype(np.float32), source="speech.wav")
    with pytest.raises(AudioInputError, match=r"quiet\.wav: the audio is silent"):
        trained.audio_contexts(np.zeros(32000, np.float32), source="quiet.wav")


# ------------------------------------------------------------------------------------ wav2vec 2.0
@pytest.mark.usefixtures("isolated_caches")
def test_wav2vec2_encoder_trains_and_generates(preprocessed_sample, test_clips, tmp_path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    small = ["audio.encoder=wav2vec2", "network.hidden_size=32", "network.layers=1", "training.steps=3",
             "training.batch_size=4", "data.stride=5", "training.checkpoint_every=3"]
    with pytest.raises(w.WeightsMissingError, match="toolkit weights fetch wav2vec2-base-960h"):
        training.train(STAGES["a2l"], load_config("tiny", "a2l", small), preprocessed_sample, tmp_path / "missing",
                       show_progress=False)
    factory.tiny_wav2vec2(monkeypatch)
    with pytest.raises(ValueError, match="hidden size 32, the config says audio.feature_width: 768"):
        training.train(STAGES["a2l"], load_config("tiny", "a2l", small), preprocessed_sample, tmp_path / "wide",
                       show_progress=False)

    config = load_config("tiny", "a2l", [*small, "audio.feature_width=32"])
    result = training.train(STAGES["a2l"], config, preprocessed_sample, tmp_path / "run", show_progress=False)
    assert result.step == 3
    model = A2LDiffusion.from_pretrained(tmp_path / "run")
    assert model.front_end.shape == (5, 32)
    clip = test_clips[0]
    contexts = model.audio_contexts(clip.wav, num_frames=len(clip.truth))
    assert contexts.shape == (len(clip.truth), 5, 32)
    speech = model.front_end.extractor()
    assert speech.provenance["weights_entry"] == "wav2vec2-base-960h" and speech.provenance["verify_status"] == "unpinned"
    np.testing.assert_array_equal(contexts[10], speech(clip.wav, 25.0, len(clip.truth))[8:13])  # frames 8..12
    out = model.generate(contexts, clip.mean, steps=3)
    assert out.landmarks.shape == (len(clip.truth), 478, 3) and np.isfinite(out.landmarks).all()


# ------------------------------------------------------------------------------------ training windows
def _windows_in_memory(config: dict, dataset) -> list[dict]:
    """A2L's training windows as they were built before they were read on demand: every clip's contexts
    computed whole and held, windows sliced out of them."""
    from talking_head.baselines.dreamhead.audio_encoder import AudioFrontEnd
    from talking_head.toolkit import dataset as schema

    points = list(point_indices(config["landmarks"]["points"]))
    window, stride, audio = int(config["data"]["window"]), int(config["data"]["stride"]), config["audio"]
    front_end = AudioFrontEnd(audio["encoder"], float(config["fps"]), int(audio["context_radius"]), audio["weights"],
                              int(audio["feature_width"]))
    means = speaker_means(dataset)
    items = []
    for row in schema.load_split(dataset, "train").with_format("numpy"):
        canonical = np.asarray(row[schema.CANONICAL_LANDMARKS], dtype=np.float32)
        wav = np.asarray(row[schema.AUDIO]).astype(np.float32) / 32768.0
        contexts = torch.from_numpy(front_end(wav, len(canonical), mel=np.asarray(row[schema.MEL], dtype=np.float32)))
        landmarks = torch.from_numpy(canonical[:, points])
        mean = torch.from_numpy(means[str(row[schema.SPEAKER])][points])
        good = np.isfinite(canonical).all(axis=(1, 2))
        for start in range(0, len(canonical) - window + 1, stride):
            if good[start:start + window].all():
                items.append({"landmarks": landmarks[start:start + window], "mean_landmarks": mean,
                              "audio": contexts[start:start + window]})
    return items


def test_windows_read_on_demand_equal_the_contexts_in_memory(preprocessed_sample) -> None:
    from talking_head.baselines.dreamhead.a2l_data import build_dataset

    config = load_config("tiny", "a2l", ["data.stride=6"])
    assert_same_items(build_dataset(config, preprocessed_sample), _windows_in_memory(config, preprocessed_sample))


@pytest.mark.usefixtures("isolated_caches")
def test_speech_features_are_computed_once_and_read_from_disk(preprocessed_sample, tmp_path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from talking_head.baselines.dreamhead import a2l_data
    from talking_head.baselines.audio import AudioFrontEnd

    dataset = tmp_path / "data"  # a copy: the features are cached in the dataset folder
    shutil.copytree(preprocessed_sample, dataset)
    factory.tiny_wav2vec2(monkeypatch)
    config = load_config("tiny", "a2l", ["audio.encoder=wav2vec2", "audio.feature_width=32", "data.stride=6"])
    windows = a2l_data.build_dataset(config, dataset)
    files = sorted((dataset / a2l_data.SPEECH_CACHE).rglob("*.npy"))
    assert [f.stem for f in files] == ["S01_000", "S01_001", "S02_000", "S02_001"]
    assert files[0].parent.parent.name.startswith("wav2vec2-base-960h-") and files[0].parent.name == "train"
    assert_same_items(windows, _windows_in_memory(config, dataset))

    calls = []
    monkeypatch.setattr(AudioFrontEnd, "speech_features", lambda *args: calls.append(args))
    again = a2l_data.build_dataset(config, dataset)  # the features are on disk: no speech model pass
    assert calls == [] and torch.equal(again[5]["audio"], windows[5]["audio"])
