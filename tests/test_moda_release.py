"""MODA's release switches (baselines/moda/release.py, docs/moda-release-differences.md): each `fixes` key
changes what the release says it changes, `faithful_to_release: true` sets every key to the release's value,
and the defaults are the toolkit's fixes. Release formulas are restated here from taichuai/MODA@69718d7 (file:line
at each test), not taken from the toolkit's code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talking_head.baselines.moda import load_config
from talking_head.baselines.moda import moda_net as mn
from talking_head.baselines.moda import release
from talking_head.baselines.moda import renderer as rd
from talking_head.baselines.moda.faco_net import FaCoNet, MeshWindows, build_dataset as faco_dataset
from talking_head.baselines.gan import lsgan
from talking_head.baselines.moda.renderer_networks import gram

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

SMALL = ["network.hidden_size=16", "network.layers=1", "data.window=12"]


def test_defaults_are_the_fixes_and_faithful_mode_sets_the_release_values() -> None:
    motion = load_config("tiny", "motion")
    assert release.fixes(motion) == {"dropout": 0.0, "spec_augment": False, "torso_loss": "masked_mean",
                                     "means": "speaker"}
    faithful = load_config("tiny", "motion", ["faithful_to_release=true"])
    assert release.fixes(faithful) == {"dropout": 0.1, "spec_augment": True, "torso_loss": "release", "means": "clip"}
    one = load_config("tiny", "motion", ["fixes.torso_loss=release"])
    assert release.fixes(one)["torso_loss"] == "release" and release.fixes(one)["dropout"] == 0.0
    renderer = load_config("paper", "renderer", ["faithful_to_release=true"])
    assert release.fixes(renderer) == {"gram": "batch", "vgg_input": "raw", "tpe_inference_offset": 0.0}
    old = {k: v for k, v in load_config("tiny", "renderer").items() if k not in ("fixes", "faithful_to_release")}
    assert release.fixes(old)["gram"] == "image"  # a config saved before the switches existed
    with pytest.raises(ValueError, match="fixes.means must be 'speaker'"):
        release.fixes({**motion, "fixes": {"means": "window"}})
    with pytest.raises(ValueError, match="unknown keys"):
        release.fixes({**motion, "fixes": {"gram": "batch"}})


def _release_masked_mse(x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``MaskedMSELoss.forward`` (models/componments/losses.py:99-106), restated: squared error flattened per
    window and divided by the last dimension, the per-window mean of that, summed over the mask / its sum."""
    t = ((x - y) ** 2).reshape(x.shape[0], -1) / x.shape[-1]
    return (t.mean(1) * m.float()).sum() / m.sum().float()


def _batch(model: mn.MODANet, valid: list[float]) -> dict:
    g = torch.Generator().manual_seed(1)
    b, t = len(valid), model.window
    context = model.audio_input.front_end.shape
    return {"audio": torch.randn(b, t, *context, generator=g), "lips": torch.randn(b, t, 40, 3, generator=g),
            "eyes": torch.randn(b, t, 60, 3, generator=g), "head": torch.randn(b, t, 7, generator=g),
            "torso": torch.randn(b, t, 18, 3, generator=g), "mesh": torch.randn(b, 478, 3, generator=g) * 50 + 256,
            "torso_valid": torch.tensor(valid)}


def test_torso_loss_release_is_the_masked_mse_over_54_and_its_velocity_is_unmasked() -> None:
    pred, target = torch.randn(3, 12, 54), torch.randn(3, 12, 54)
    valid = torch.tensor([1.0, 0.0, 1.0])
    fixed = release.masked_mse(pred, target, valid, False)
    assert torch.allclose(release.masked_mse(pred, target, valid, True), _release_masked_mse(pred, target, valid))
    assert torch.allclose(release.masked_mse(pred, target, valid, True) * 54, fixed)
    assert torch.allclose(fixed, ((pred - target) ** 2)[[0, 2]].mean())

    torch.manual_seed(0)
    model = mn.MODANet(load_config("tiny", "motion", SMALL)).eval()
    batch = _batch(model, [1.0, 0.0, 1.0])
    terms = {}
    for mode in ("masked_mean", "release"):
        model.config["fixes"]["torso_loss"] = mode
        terms[mode] = model.training_loss(batch, torch.Generator().manual_seed(0))[1]
    assert terms["release"]["torso"] == pytest.approx(terms["masked_mean"]["torso"] / 54, rel=1e-5)
    assert terms["release"]["lips"] == terms["masked_mean"]["lips"]  # only the torso terms change
    assert terms["release"]["torso_velocity"] != pytest.approx(terms["masked_mean"]["torso_velocity"], rel=1e-3)
    batch["torso_valid"] = torch.ones(3)  # every window valid: the masks change nothing
    for mode in ("masked_mean", "release"):
        model.config["fixes"]["torso_loss"] = mode
        terms[mode] = model.training_loss(batch, torch.Generator().manual_seed(0))[1]
    assert terms["release"]["torso_velocity"] == pytest.approx(terms["masked_mean"]["torso_velocity"], rel=1e-6)


def test_release_tvae_encoder_sees_the_future_and_the_fixed_one_does_not() -> None:
    """networks.py:549: the release's t-VAE encoder runs without a mask (the 0/1 mask is the decoder's only)."""
    torch.manual_seed(0)
    audio, subject, motion = torch.randn(1, 10, 16), torch.randn(1, 16), torch.randn(1, 10, 61)
    later = audio.clone()
    later[:, -1] += 1.0  # change only the last frame
    for is_release in (True, False):
        tvae = mn.TemporalVAE(16, 2, 1, 32, 61, is_release).eval()
        given = None if is_release else motion
        mu = tvae(audio, subject, given, torch.Generator().manual_seed(0))[1]
        mu_later = tvae(later, subject, given, torch.Generator().manual_seed(0))[1]
        first_changes = not torch.allclose(mu[:, 0], mu_later[:, 0])
        assert first_changes == is_release


def test_dropout_switch_reaches_the_layers_and_the_position_encodings() -> None:
    """networks.py:415, 434 (PPE / PE dropout 0.1) and 487, 511, 515 (PyTorch's default 0.1 in the layers)."""
    torch.manual_seed(0)
    audio, subject = torch.randn(2, 30, 16), torch.randn(2, 16)
    for p in (0.0, 0.1):
        decoder = mn.AlignedDecoder(16, 2, 1, 16, 10, dropout=p).train()
        assert decoder.decoder.layers[0].dropout.p == p
        decoder.decoder.layers[0].dropout.p = decoder.decoder.layers[0].dropout1.p = 0.0  # leave only the PPE's
        decoder.decoder.layers[0].dropout2.p = decoder.decoder.layers[0].dropout3.p = 0.0
        same = torch.equal(decoder(audio, subject), decoder(audio, subject))
        assert same == (p == 0.0)
    model = mn.MODANet(load_config("tiny", "motion", [*SMALL, "fixes.dropout=0.1"]))
    assert model.network.tvae.dropout == 0.1 and model.network.tvae.encoder.layers[0].dropout.p == 0.1


def test_spec_augment_masks_spans_with_the_learned_embedding_in_training_only(monkeypatch) -> None:
    """wav2vec.py:110-128: spans of mask_time_length (10) frames, mask_time_prob 0.05, at least 2 spans."""
    from transformers import Wav2Vec2Config

    config = Wav2Vec2Config()
    hidden, embedding = torch.randn(2, 600, 8), torch.full((8,), 7.0)
    torch.manual_seed(0)
    out = release.spec_augment(hidden, embedding, config)
    masked = (out == 7.0).all(-1)
    assert torch.equal(out[~masked], hidden[~masked])
    per_window = masked.sum(1)
    # HF draws int(0.05 * 600 / 10 + U[0, 1)) = 3 distinct span starts of 10 frames: 11..30 frames (overlaps merge)
    assert (per_window > 10).all() and (per_window <= 30).all()
    torch.manual_seed(0)
    assert torch.equal(release.spec_augment(hidden, embedding, config), out)  # seeded through torch

    calls = []
    monkeypatch.setattr(release, "spec_augment", lambda h, e, c: calls.append(h.shape) or h)
    from transformers import Wav2Vec2Model

    from weights_factory import TINY_WAV2VEC2

    monkeypatch.setattr(mn, "load_wav2vec2", lambda weights, keep_mask_embedding: Wav2Vec2Model(
        Wav2Vec2Config(**TINY_WAV2VEC2)))
    head = mn.AudioHead("wav2vec2", (5, 80), 16, None, spec_augment=True)
    wav = torch.randn(2, 16000)
    head.eval()(wav, 25)
    assert calls == []
    head.train()(wav, 25)
    assert calls == [torch.Size([2, 25, 32])]


def test_clip_means_are_each_clips_own(preprocessed_sample) -> None:
    """audio2repr_dataset.py:47, 128-133: the release's reference (mean) of a clip is that clip itself."""
    from talking_head.baselines.moda.data import speaker_means

    config = load_config("tiny", "motion", ["fixes.means=clip"])
    windows = mn.build_dataset(config, preprocessed_sample)
    by_clip = speaker_means(preprocessed_sample, "train", torso=True, by_clip=True)
    by_speaker = speaker_means(preprocessed_sample, "train", torso=True)
    assert len(by_clip) == 4 and len(by_speaker) == 2
    row, _, c = (int(v) for v in windows.index[0])
    clip_id, speaker, _ = windows.clips[c]
    item = windows[0]
    assert np.array_equal(item["mesh"].numpy(), by_clip[clip_id].mesh)
    assert not np.allclose(by_clip[clip_id].mesh, by_speaker[speaker].mesh)


def test_batch_gram_holds_every_image_pair_at_one_over_the_batch() -> None:
    """losses.py:126-135: one (B*C) x (B*C) Gram normalised by B*C*H*W."""
    torch.manual_seed(0)
    features = torch.randn(4, 3, 5, 6)
    batch, per_image = release.batch_gram(features), gram(features)
    assert batch.shape == (12, 12)
    for i in range(4):
        assert torch.allclose(batch[3 * i:3 * i + 3, 3 * i:3 * i + 3] * 4, per_image[i], atol=1e-6)
    cross = features[0].reshape(3, -1) @ features[1].reshape(3, -1).t() / (4 * 3 * 5 * 6)
    assert torch.allclose(batch[0:3, 3:6], cross, atol=1e-6)


def test_tpe_offset_at_inference_is_the_release_s_zero_when_asked(monkeypatch) -> None:
    """render_dataset.py:166-169 trains on 1 + idx/1000; util.py:285-289 encodes idx/1000 at inference."""
    encoding = rd.temporal_encoding(torch.tensor([250]), 2, offset=0.0)
    assert encoding[0, 0, 0, 0] == pytest.approx(0.25)
    seen = []
    original = rd.temporal_encoding
    monkeypatch.setattr(rd, "temporal_encoding", lambda *a: seen.append(a[3]) or original(*a))
    rng = np.random.default_rng(0)
    landmarks = np.concatenate([rng.uniform(20, 44, (1, 478, 2)), np.zeros((1, 478, 1))], -1)
    frame = np.zeros((64, 64, 3), np.uint8)
    for offset in (1.0, 0.0):
        model = rd.TemporalRenderer(load_config("tiny", "renderer", [f"fixes.tpe_inference_offset={offset}"]))
        model.render(frame, landmarks, None, [3])
        assert seen.pop() == offset
        batch = {"frame": torch.zeros(1, 64, 64, 3, dtype=torch.uint8), "condition": torch.zeros(1, 64, 64, 3,
                 dtype=torch.uint8), "reference": torch.zeros(1, 64, 64, 3, dtype=torch.uint8),
                 "frame_index": torch.tensor([3]), "mouth": torch.zeros(1, 64, 64, dtype=torch.uint8)}
        model.training_loss(batch)
        assert seen.pop() == 1.0  # training always encodes 1 + idx/1000, as the release does


def test_faco_release_batches_are_windows_and_its_gan_scores_only_the_last(preprocessed_sample) -> None:
    """configs/train/faco.yaml:3-5 (32 audio2repr windows a batch) and losses.py:43-53 (GANLoss reads input[-1])."""
    config = load_config("tiny", "faco", ["faithful_to_release=true"])
    windows = faco_dataset(config, preprocessed_sample)
    assert isinstance(windows, MeshWindows) and len(windows) > 0
    for i in (0, len(windows) - 1):
        row, first, _ = windows.index[windows.starts[i]]
        row_last, last, _ = windows.index[windows.starts[i] + 49]
        assert row == row_last and last - first == 49 and first % 10 == 0
    batch = torch.utils.data.default_collate([windows[i] for i in range(3)])
    assert batch["lips"].shape == (3, 50, 40, 3) and batch["full"].shape == (3, 50, 478, 3)
    torch.manual_seed(0)
    model = FaCoNet(config)
    terms = model.training_loss(batch)[1]
    lips, eyes, full = (batch[k][-1].flatten(-2) for k in ("lips", "eyes", "full"))
    subject = model.subject_code(batch["mesh"][-1:]).expand(50, -1)
    with torch.no_grad():
        expected = lsgan(model.discriminator(lips, eyes, full, subject), True)
    assert terms["d_real"] == pytest.approx(float(expected), rel=1e-5)
    model.config["faithful_to_release"] = False  # the fix: every window of the batch is scored
    assert model.training_loss(batch)[1]["d_real"] != pytest.approx(terms["d_real"], rel=1e-4)


def test_vgg_input_raw_feeds_the_images_as_they_are() -> None:
    """losses.py:76, 260-290: the release's Vgg19 gets the [-1, 1] images with no ImageNet normalisation."""
    from talking_head.baselines.moda.renderer_networks import IMAGENET_MEAN, IMAGENET_STD, VGG19Features

    torch.manual_seed(0)
    vgg = VGG19Features()  # random weights: only the input path is under test
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    first = vgg.features[:2]  # conv1_1 + relu: the first tap
    normalised = ((x + 1) / 2 - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(vgg(x, imagenet=False)[0], first(x))
    assert torch.allclose(vgg(x)[0], first(normalised))
    assert not torch.allclose(vgg(x)[0], vgg(x, imagenet=False)[0])
