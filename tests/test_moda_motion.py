"""MODA stage 1 (baselines/moda/moda_net.py): acceptance on held-out sample clips, the dual attention's
masks and encodings, the release/fixed switch, long audio, save/load and the wav2vec 2.0 encoder.

Acceptance: trained with the shipped `tiny` config (fixed seed, at most 3 CPU minutes), the
generated mouth of the test-split clips beats the mean-mesh baseline on mouth LMD (the `dense` preset) by
at least 30%, the generated mouth opening correlates with the ground truth at r >= 0.5, and two samples
for the same audio differ in head motion (cross-sample pose diversity > 0) while their lips stay within
10% LMD of each other.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch

from talking_head.baselines import training
from talking_head.baselines.checkpoint import CheckpointError
from talking_head.baselines.moda import STAGES, load_config
from talking_head.baselines.moda import moda_net as mn
from talking_head.baselines.moda.data import load_clips, point_sets, subjects
from talking_head.metrics.head_motion import cross_sample_diversity
from talking_head.metrics.lmd import frame_distances
from talking_head.toolkit import face_mesh
from talking_head.toolkit import weights as w

import weights_factory as factory
from same_items import assert_same_items

SMALL = ["network.hidden_size=32", "network.layers=1", "training.batch_size=4", "data.stride=10",
         "training.steps=3", "training.checkpoint_every=3"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained(tiny_runs) -> mn.MODANet:
    """The tiny config exactly as shipped, trained on the sample's train split (tests/conftest.py)."""
    run = tiny_runs.stage("moda", "motion")[0]  # its CPU budget: tests/test_training_budget.py
    return mn.MODANet.from_pretrained(run)


@pytest.fixture(scope="module")
def data(preprocessed_sample):
    return load_clips(preprocessed_sample, "test"), subjects(load_clips(preprocessed_sample, "train"))


def test_acceptance(trained, data) -> None:
    test, means = data
    assert len(test) == 2
    ours, baseline, second = [], [], []
    for clip in test:
        subject = means[clip.speaker]
        samples = trained.generate(clip.wav, subject, num_frames=len(clip.canonical), mel=clip.mel, num_samples=2)
        first, other = samples
        still = np.repeat(subject.mesh[None], len(clip.canonical), axis=0)
        ours.append(frame_distances(first.mesh, clip.canonical, "dense", "mouth"))
        second.append(frame_distances(other.mesh, clip.canonical, "dense", "mouth"))
        baseline.append(frame_distances(still, clip.canonical, "dense", "mouth"))
        r = float(np.corrcoef(face_mesh.mouth_opening(first.mesh), face_mesh.mouth_opening(clip.canonical))[0, 1])
        diversity = cross_sample_diversity([first.pose, other.pose])["diversity"]
        lmd_1, lmd_2 = np.nanmean(ours[-1]), np.nanmean(second[-1])
        print(f"{clip.clip_id}: mouth r {r:.3f}, pose diversity {diversity:.3f} deg, "
              f"mouth LMD sample 0 / 1: {lmd_1:.3f} / {lmd_2:.3f}")
        assert r >= 0.5
        assert diversity > 0
        assert abs(lmd_1 - lmd_2) <= 0.1 * lmd_1
        assert first.mesh.shape == (len(clip.canonical), 478, 3) and first.torso.shape == (len(clip.canonical), 18, 3)
        np.testing.assert_array_equal(first.mesh[:, point_sets()["lips"]], first.lips)
    improvement = 1.0 - np.nanmean(np.concatenate(ours)) / np.nanmean(np.concatenate(baseline))
    print(f"mouth LMD {100 * improvement:.1f}% below the mean-mesh baseline")
    assert improvement >= 0.30


def test_samples_are_seeded(trained, data) -> None:
    test, means = data
    clip = test[0]
    a = trained.generate(clip.wav, means[clip.speaker], mel=clip.mel, num_samples=2, seed=5)
    b = trained.generate(clip.wav, means[clip.speaker], mel=clip.mel, num_samples=1, seed=5)
    np.testing.assert_array_equal(a[0].pose, b[0].pose)  # sample k depends on (seed, k) only
    assert np.abs(a[0].pose - a[1].pose).max() > 0


def test_long_audio_runs_in_overlapping_windows(trained, data) -> None:
    test, means = data
    clip = test[0]
    assert trained.window_starts(40) == [0]
    assert trained.window_starts(125) == [0, 25, 50, 75]
    wav = np.concatenate([clip.wav, clip.wav])
    out = trained.generate(wav, means[clip.speaker])[0]
    assert out.mesh.shape == (250, 478, 3) and np.isfinite(out.mesh).all()
    # no step where a window ends: the largest frame-to-frame lip change stays within the clip's range
    jump = np.abs(np.diff(out.lips, axis=0)).max(axis=(1, 2))
    assert jump.max() < 3 * np.percentile(jump, 99) + 1e-6


# ------------------------------------------------------------------------------------ the dual attention
def test_biased_causal_mask_is_faceformers() -> None:
    mask = mn.biased_causal_mask(70, period=30, heads=1)
    slope = mn.alibi_slopes(1)[0]  # FaceFormer's get_slopes(1)
    assert slope == pytest.approx(2 ** -(2 ** -(0 - 3)))
    assert mask.shape == (1, 70, 70)
    assert torch.isinf(mask[0, 5, 6]) and mask[0, 5, 6] < 0  # the future is blocked
    assert mask[0, 5, 5] == 0 and mask[0, 29, 0] == 0  # the same period: no bias
    assert mask[0, 30, 0] == pytest.approx(-slope) and mask[0, 69, 0] == pytest.approx(-2 * slope)
    assert mn.alibi_slopes(4) == pytest.approx([0.25, 0.0625, 0.015625, 0.00390625])
    diagonal = mn.diagonal_mask(4)
    assert (~diagonal).sum() == 4 and not diagonal[2, 2] and diagonal[2, 1]
    ppe = mn.periodic_encoding(70, 16, 30)
    torch.testing.assert_close(ppe[35], ppe[5])
    assert not torch.allclose(ppe[5], ppe[6])


def _tvae(release: bool) -> mn.TemporalVAE:
    torch.manual_seed(0)
    return mn.TemporalVAE(16, 2, 1, 32, 61, release).eval()


def test_fixed_tvae_is_causal_and_the_release_is_not() -> None:
    """The fixed branch: frames before t do not change when audio after t changes; the release's added
    0/1 mask lets them change. Positions: by frame (fixed) or one per batch element (release)."""
    torch.manual_seed(1)
    audio, subject = torch.randn(2, 12, 16), torch.randn(2, 16)
    changed = audio.clone()
    changed[:, 8:] += 1.0
    for release in (False, True):
        model = _tvae(release)
        outputs = []
        for a in (audio, changed):
            generator = torch.Generator().manual_seed(0)
            motion = None if release else torch.zeros(2, 12, 61)
            outputs.append(model(a, subject, motion, generator)[0])
        past_change = (outputs[0][:, :8] - outputs[1][:, :8]).abs().max().item()
        if release:
            assert past_change > 1e-3
        else:
            assert past_change < 1e-5
    release_positions = _tvae(True).position(3, 5, "cpu")
    torch.testing.assert_close(release_positions[1, 0], release_positions[1, 4])  # no temporal signal
    assert not torch.allclose(release_positions[0, 0], release_positions[1, 0])
    fixed_positions = _tvae(False).position(3, 5, "cpu")
    assert not torch.allclose(fixed_positions[0, 0], fixed_positions[0, 4])
    torch.testing.assert_close(fixed_positions[0], fixed_positions[2])


def test_faithful_to_release_trains_without_kl(preprocessed_sample, tmp_path) -> None:
    for release in (True, False):
        config = load_config("tiny", "motion", [*SMALL, f"faithful_to_release={str(release).lower()}"])
        run = tmp_path / f"release-{release}"
        training.train(STAGES["motion"], config, preprocessed_sample, run, show_progress=False)
        header = (run / "loss.csv").read_text().splitlines()[0].split(",")
        assert ("kl" in header) is (not release)
        assert {"lips", "eyes", "head", "torso", "lips_velocity", "torso_velocity"} <= set(header)
        model = mn.MODANet.from_pretrained(run)
        assert (model.network.tvae.motion_in is None) is release


def test_loss_weights_follow_the_release(preprocessed_sample) -> None:
    """L = sum_h w_h MSE_h + v_h L1vel_h (+ kl KL): recomputed by hand from the returned terms."""
    config = load_config("tiny", "motion", SMALL)
    torch.manual_seed(0)
    model = mn.MODANet(config)
    batch = torch.utils.data.default_collate([mn.build_dataset(config, preprocessed_sample)[i] for i in range(3)])
    loss, terms = model.training_loss(batch, torch.Generator().manual_seed(0))
    weights, velocity = config["loss"]["weights"], config["loss"]["velocity"]
    expected = sum(weights[h] * terms[h] + velocity[h] * terms[f"{h}_velocity"] for h in mn.HEADS)
    expected += config["loss"]["kl"] * terms["kl"]
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-5)
    assert batch["lips"].shape[1:] == (50, 40, 3) and batch["eyes"].shape[1:] == (50, 60, 3)
    assert batch["head"].shape[1:] == (50, 7) and batch["torso"].shape[1:] == (50, 18, 3)


def test_save_load_and_wrong_stage(trained, tmp_path, data) -> None:
    trained.save_pretrained(tmp_path / "copy")
    again = mn.MODANet.from_pretrained(tmp_path / "copy")
    test, means = data
    clip = test[0]
    a = trained.generate(clip.wav, means[clip.speaker], mel=clip.mel)[0]
    b = again.generate(clip.wav, means[clip.speaker], mel=clip.mel)[0]
    np.testing.assert_array_equal(a.mesh, b.mesh)
    from talking_head.baselines.moda.faco_net import FaCoNet

    with pytest.raises(CheckpointError, match="not moda/faco"):
        FaCoNet.from_pretrained(tmp_path / "copy")


@pytest.mark.usefixtures("isolated_caches")
def test_wav2vec2_encoder_fine_tunes_the_transformer_only(preprocessed_sample, tmp_path, data,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    small = [*SMALL, "audio.encoder=wav2vec2", "training.steps=2", "training.checkpoint_every=2"]
    with pytest.raises(w.WeightsMissingError, match="toolkit weights fetch wav2vec2-base-960h"):
        training.train(STAGES["motion"], load_config("tiny", "motion", small), preprocessed_sample,
                       tmp_path / "missing", show_progress=False)
    factory.tiny_wav2vec2(monkeypatch)
    config = load_config("tiny", "motion", small)
    torch.manual_seed(0)
    fresh = mn.MODANet(config)
    training.train(STAGES["motion"], config, preprocessed_sample, tmp_path / "run", show_progress=False)
    model = mn.MODANet.from_pretrained(tmp_path / "run")
    before, after = fresh.network.audio.speech.state_dict(), model.network.audio.speech.state_dict()
    cnn = [k for k in before if k.startswith("feature_extractor.")]
    transformer = [k for k in before if k.startswith("encoder.layers.")]
    assert cnn and transformer
    assert all(torch.equal(before[k], after[k]) for k in cnn)  # frozen
    assert any(not torch.equal(before[k], after[k]) for k in transformer)  # trained
    test, means = data
    clip = test[0]
    out = model.generate(clip.wav, means[clip.speaker], num_frames=len(clip.canonical))[0]
    assert out.mesh.shape == (len(clip.canonical), 478, 3) and np.isfinite(out.mesh).all()


def _windows_in_memory(config: dict, dataset) -> list[dict]:
    """The motion stage's windows as they were built before they were read on demand: every clip's arrays
    in memory, the whole clip's audio input made once and windows cut out of it."""
    reader = mn.AudioInput(config)
    window, stride = int(config["data"]["window"]), int(config["data"]["stride"])
    targets, sets = config["targets"], point_sets()
    units = np.asarray(targets["head_units"], np.float32)
    clips = load_clips(dataset, "train", torso=True)
    means = subjects(clips)
    items = []
    for clip in clips:
        subject = means[clip.speaker]
        audio = reader(clip.wav, len(clip.canonical), clip.mel)
        torso_valid = float(np.nanmean(np.nanstd(clip.torso[..., :2], axis=0)) > 0.5)
        arrays = {
            "lips": (clip.canonical[:, sets["lips"]] - subject.mesh[list(sets["lips"])]) / float(targets["mesh_scale"]),
            "eyes": (clip.canonical[:, sets["eyes"]] - subject.mesh[list(sets["eyes"])]) / float(targets["mesh_scale"]),
            "head": (clip.pose - subject.pose) / units,
            "torso": (clip.torso - subject.torso) / float(targets["torso_scale"]),
        }
        for start in range(0, len(clip.good) - window + 1, stride):
            if not clip.good[start:start + window].all():
                continue
            item = {name: torch.from_numpy(np.ascontiguousarray(a[start:start + window], np.float32))
                    for name, a in arrays.items()}
            item["audio"] = torch.from_numpy(np.ascontiguousarray(reader.window(audio, start, window)))
            item["mesh"] = torch.from_numpy(subject.mesh)
            item["torso_valid"] = torch.tensor(torso_valid)
            items.append(item)
    return items


@pytest.mark.parametrize("encoder", ["mel", "wav2vec2"])
def test_windows_read_on_demand_equal_the_clips_in_memory(preprocessed_sample, encoder) -> None:
    """Each window is read from the dataset's memory map when asked for; the items equal those of building
    every clip in memory first, bit for bit (the raw waveform for wav2vec2, mel contexts otherwise)."""
    config = load_config("tiny", "motion", [f"audio.encoder={encoder}", "data.stride=7"])
    expected = _windows_in_memory(config, preprocessed_sample)
    assert_same_items(mn.build_dataset(config, preprocessed_sample), expected)  # tests/same_items.py
