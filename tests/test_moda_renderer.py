"""MODA renderer (baselines/moda/renderer.py): acceptance on held-out frames, the 80/20 split in time, the
temporal positional encoding, one-backward G/D training, save/load and resume, and the VGG19 losses with a
created VGG19.

Acceptance: the `tiny` config as shipped, trained with the shared loop on both speakers of the sample
(under 3 CPU minutes, one thread; the model sees each clip's face box at 64 px), renders the validation
frames (the last 20% of each training clip, never trained on) from their ground-truth meshes and
shoulder points and the clip's reference frame (its first frame). Over MODA's mouth weight mask (the
mouth-outer polygon dilated by 45/512 of the image side, at the model's 64 px), the rendered frames'
PSNR against the ground truth must beat the reference frame's PSNR (copying the reference) by MARGIN_DB
on every clip.
"""

from __future__ import annotations

import csv
import math
import shutil

import numpy as np
import pytest
import torch
import yaml
from safetensors import safe_open

from talking_head.baselines import checkpoint, training
from talking_head.baselines.face_crop import face_crop_box
from talking_head.baselines.moda import STAGES, load_config
from talking_head.baselines.moda.renderer import TPE_OFFSET, TemporalRenderer, mouth_mask, temporal_encoding
from talking_head.baselines.moda.renderer_data import RendererFrames, build_dataset
import weights_factory
from talking_head.toolkit import weights as w

MARGIN_DB = 2.0  # the rendered mouths must beat copying the reference by this much (2.5-7 dB measured)

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained_run(tiny_runs):
    """The tiny config exactly as shipped, trained with the generic trainer (tests/conftest.py): (run folder,
    model)."""
    run, result, _ = tiny_runs.stage("moda", "renderer")  # its CPU budget: tests/test_training_budget.py
    assert result.step == load_config("tiny", "renderer")["training"]["steps"]
    return run, TemporalRenderer.from_pretrained(run)


@pytest.fixture(scope="module")
def validation(trained_run, preprocessed_sample) -> RendererFrames:
    return RendererFrames(trained_run[1].config, preprocessed_sample, split="validation")


def mouth_psnr(images: np.ndarray, truth: np.ndarray, landmarks: np.ndarray) -> float:
    """Mean over frames of the PSNR (dB) over each frame's mouth mask (from its ground-truth mesh)."""
    values = []
    for image, target, points in zip(images, truth, landmarks):
        inside = mouth_mask(points, image.shape[0]).astype(bool)
        diff = image[inside].astype(np.float64) - target[inside]
        values.append(10 * np.log10(255.0**2 / np.mean(diff**2)))
    return float(np.mean(values))


# ------------------------------------------------------------------------------------------ acceptance
def test_rendered_mouths_beat_copying_the_reference(trained_run, validation):
    model = trained_run[1]
    results = {}
    for clip in validation.clips:
        frames = np.array(clip["validation"])
        reference = clip["frames"][clip["reference"]]
        rendered = model.render(reference, clip["landmarks"][frames], clip["torso"][frames], frames)
        assert rendered.shape == clip["frames"][frames].shape and rendered.dtype == np.uint8
        ours = mouth_psnr(rendered, clip["frames"][frames], clip["landmarks"][frames])
        copies = np.repeat(reference[None], len(frames), 0)
        copied = mouth_psnr(copies, clip["frames"][frames], clip["landmarks"][frames])
        results[clip["clip_id"]] = (round(ours, 2), round(copied, 2))
    print("validation mouth PSNR (rendered, copied reference):", results)
    assert len(results) == 4  # both speakers' training clips (data.speaker: all)
    for clip_id, (ours, copied) in results.items():
        assert ours > copied + MARGIN_DB, f"{clip_id}: rendered {ours} dB, copied reference {copied} dB"


def test_render_takes_any_crop_size_and_is_deterministic(trained_run, validation):
    model, clip = trained_run[1], validation.clips[0]
    frames = np.array(clip["validation"][:3])
    reference = clip["frames"][clip["reference"]]
    a = model.render(reference, clip["landmarks"][frames], clip["torso"][frames], frames)
    b = model.render(reference, clip["landmarks"][frames], clip["torso"][frames], frames, batch_size=1)
    assert np.abs(a.astype(int) - b).max() <= 1  # batching only groups the work (oneDNN may pick other kernels)
    big = np.repeat(np.repeat(reference, 4, 0), 4, 1)  # a 256-px crop: landmarks and torso in its pixels
    out = model.render(big, clip["landmarks"][frames] * 4, clip["torso"][frames] * 4, frames)
    assert out.shape == (3, 256, 256, 3) and out.dtype == np.uint8
    # Only the face box is rendered: outside it the frames are the reference's own pixels.
    x0, y0, side = face_crop_box(clip["landmarks"][frames] * 4, model.config["crop"]["face_scale"])
    outside = np.ones((256, 256), bool)
    outside[max(0, y0) : y0 + side, max(0, x0) : x0 + side] = False
    assert 0 < outside.sum() < 256 * 256
    np.testing.assert_array_equal(out[:, outside], np.repeat(big[None, outside], 3, 0))
    inside = slice(y0 + side // 4, y0 + 3 * side // 4), slice(x0 + side // 4, x0 + 3 * side // 4)
    assert np.abs(out[(slice(None), *inside)].astype(int) - big[inside]).mean() > 1  # the face is rendered
    model.train()
    model.render(reference, clip["landmarks"][frames[:1]], clip["torso"][frames[:1]], frames[:1])
    assert model.training  # render runs in eval mode and restores the mode it found
    model.eval()
    with pytest.raises(ValueError, match="square"):
        model.render(big[:200], clip["landmarks"][frames], clip["torso"][frames], frames)


# ------------------------------------------------------------------------------------------ data
def test_validation_frames_are_the_last_fifth_of_each_clip(trained_run, validation, preprocessed_sample):
    config = trained_run[1].config
    train = build_dataset(config, preprocessed_sample)
    assert train.speaker == validation.speaker == "all"
    assert [c["clip_id"] for c in train.clips] == ["S01_000", "S01_001", "S02_000", "S02_001"]
    other = RendererFrames({**config, "data": {**config["data"], "speaker": "S02"}}, preprocessed_sample)
    assert [c["clip_id"] for c in other.clips] == ["S02_000", "S02_001"]  # one identity: the named one
    with pytest.raises(ValueError, match="data.speaker is null, which trains one renderer per speaker"):
        RendererFrames({**config, "data": {**config["data"], "speaker": None}}, preprocessed_sample)
    for clip in train.clips:  # the model's view: the square 1.3x the clip's median face, in 256-px crop pixels
        x0, y0, side = clip["box"]
        assert 100 < side < 200 and x0 > 0 and y0 > 0 and x0 + side < 256 and y0 + side < 256
        face = np.median(clip["landmarks"][clip["train"], :, :2], axis=0)
        assert abs((face.max(axis=0) - face.min(axis=0)).max() * 1.3 - 64) < 2
    train_items = {(c, t) for c, t in train.index}
    validation_items = {(c, t) for c, t in validation.index}
    assert not train_items & validation_items
    for c, clip in enumerate(train.clips):
        total = len(clip["frames"])
        cut = int(total * 0.8)
        assert (total, cut) == (125, 100)  # 5 s at 25 fps
        faces = np.isfinite(clip["landmarks"][..., :2]).all(axis=(1, 2))
        assert {t for cc, t in train_items if cc == c} == {t for t in range(cut) if faces[t]}
        assert {t for cc, t in validation_items if cc == c} == {t for t in range(cut, total) if faces[t]}
        assert len(clip["validation"]) >= 20  # the sample has a face in (nearly) every frame
    # Items: the frame index is the index in the clip, and the reference comes from the clip's training part.
    item = train[len(train) - 1]
    c, t = train.index[-1]
    assert item["frame_index"] == t and item["clip"] == c and t < 100
    np.testing.assert_array_equal(item["frame"].numpy(), train.clips[c]["frames"][t])
    assert item["condition"].shape == (64, 64, 3) and item["condition"].dtype == torch.uint8
    assert 0.01 < item["mouth"].float().mean() < 0.2
    np.testing.assert_array_equal(validation[0]["reference"].numpy(),
                                  validation.clips[0]["frames"][validation.clips[0]["reference"]])
    # A random reference is a training frame of the same clip, always the same for an index.
    random_ref = RendererFrames({**config, "data": {**config["data"], "reference": "random"}}, preprocessed_sample,
                                split="validation")
    picks = [random_ref.reference_of(i) for i in range(len(random_ref))]
    assert picks == [random_ref.reference_of(i) for i in range(len(random_ref))]
    assert all(p in random_ref.clips[random_ref.index[i][0]]["train"] for i, p in enumerate(picks))
    assert len(set(picks)) > 5


def test_temporal_encoding_is_the_release_formula():
    index = torch.tensor([0, 37, 1234])
    tpe = temporal_encoding(index, 8)
    assert tpe.shape == (3, 13, 8, 8)
    assert torch.equal(tpe, tpe[:, :, :1, :1].expand_as(tpe))  # constant over the image
    for row, i in enumerate(index.tolist()):
        x = TPE_OFFSET + i / 1000
        expected = [x] + [f(2.0**k * x) for k in range(6) for f in (math.sin, math.cos)]
        np.testing.assert_allclose(tpe[row, :, 3, 5].numpy(), expected, rtol=1e-6, atol=1e-6)
    assert temporal_encoding(37, 4).shape == (13, 4, 4)
    torch.testing.assert_close(temporal_encoding(37, 4), tpe[1, :, :4, :4])
    assert temporal_encoding(5, 2, frequencies=3).shape == (7, 2, 2)


# ------------------------------------------------------------------------------------------ training
def test_one_backward_trains_g_and_d_each_on_its_own_loss(preprocessed_sample):
    """The G terms reach D's weights not at all, and the D terms reach G's not at all."""
    config = load_config("tiny", "renderer")
    data = build_dataset(config, preprocessed_sample)
    batch = torch.utils.data.default_collate([data[i] for i in (0, 50, 120, 199)])

    def gradients(loss_weights: dict) -> tuple[dict, dict, dict]:
        torch.manual_seed(0)
        model = TemporalRenderer.from_config({**config, "loss": {**config["loss"], **loss_weights}}).train()
        loss, terms = model.training_loss(batch)
        loss.backward()
        grads = lambda net: {n: p.grad for n, p in net.named_parameters()}  # noqa: E731
        return grads(model.generator), grads(model.discriminator), terms

    g_all, d_all, terms = gradients({})
    g_none, d_none, _ = gradients({"gan": 0.0, "l1": 0.0, "mouth_l1": 0.0, "fm": 0.0})
    assert set(terms) == {"g_gan", "l1", "mouth_l1", "vgg", "style", "fm", "d_real", "d_fake"}
    assert all(np.isfinite(v) for v in terms.values()) and terms["g_gan"] > 0 and terms["fm"] > 0
    assert all(g is None or not g.any() for g in g_none.values())  # D's loss sees the detached fake
    assert all(g is not None for g in g_all.values()) and any(g.any() for g in g_all.values())
    for name, grad in d_all.items():  # the G terms ran D through detached parameters
        torch.testing.assert_close(grad, d_none[name], rtol=1e-5, atol=1e-8)


def test_checkpoint_round_trip_and_another_stage(trained_run, validation, tmp_path):
    model = trained_run[1]
    clip = validation.clips[1]
    frames = np.array(clip["validation"][:4])
    args = (clip["frames"][clip["reference"]], clip["landmarks"][frames], clip["torso"][frames], frames)
    model.save_pretrained(tmp_path / "copy")
    again = TemporalRenderer.from_pretrained(tmp_path / "copy")
    np.testing.assert_array_equal(model.render(*args), again.render(*args))
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    other = tmp_path / "faco"
    checkpoint.save(other, torch.nn.Linear(2, 2), {"model": "moda", "stage": "faco"}, "moda", "faco")
    with pytest.raises(checkpoint.CheckpointError, match="faco"):
        TemporalRenderer.from_pretrained(other)
    # Weights that do not fit the config: another generator width.
    shutil.copytree(tmp_path / "copy", tmp_path / "wider")
    config = yaml.safe_load((tmp_path / "wider" / "config.yaml").read_text())
    config["generator"]["ngf"] = 8
    (tmp_path / "wider" / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(checkpoint.CheckpointError, match="does not match"):
        TemporalRenderer.from_pretrained(tmp_path / "wider")


def test_resume_continues_to_the_step_count(preprocessed_sample, tmp_path):
    short = ["training.steps=2", "training.checkpoint_every=2", "training.log_every=1"]
    run = tmp_path / "run"
    first = training.train(STAGES["renderer"], load_config("tiny", "renderer", short), preprocessed_sample, run,
                           show_progress=False)
    assert first.step == 2
    longer = load_config("tiny", "renderer", [*short[1:], "training.steps=4"])
    second = training.train(STAGES["renderer"], longer, preprocessed_sample, run, resume=True, show_progress=False)
    assert (second.resumed_from, second.step) == (2, 4)
    assert [p.name for p in training.checkpoint_dirs(run)][-1] == "step-000004"
    with open(run / "loss.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [1, 2, 3, 4]


# ------------------------------------------------------------------------------------------ VGG19
def test_vgg_and_style_losses_with_a_created_vgg19(preprocessed_sample, isolated_caches, monkeypatch, tmp_path):
    weights_factory.place(monkeypatch, "vgg19", weights_factory.vgg19())
    overrides = ["loss.vgg=10", "loss.style=10", "training.steps=3", "training.log_every=1",
                 "training.checkpoint_every=3"]
    run = tmp_path / "run"
    training.train(STAGES["renderer"], load_config("tiny", "renderer", overrides), preprocessed_sample, run,
                   show_progress=False)
    with open(run / "loss.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    for row in rows:
        assert math.isfinite(float(row["vgg"])) and float(row["vgg"]) > 0
        assert math.isfinite(float(row["style"])) and float(row["style"]) > 0
    with safe_open(str(run / "model.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
    assert keys and not [k for k in keys if k.startswith("vgg.")]
    loaded = TemporalRenderer.from_pretrained(run)  # VGG19 comes from the registry again
    assert loaded.vgg is not None and not any(p.requires_grad for p in loaded.vgg.parameters())


def test_missing_vgg19_names_the_fetch_command(preprocessed_sample, isolated_caches, tmp_path):
    config = load_config("tiny", "renderer", ["loss.vgg=10", "training.steps=1"])
    with pytest.raises(w.WeightsMissingError, match="toolkit weights fetch vgg19"):
        training.train(STAGES["renderer"], config, preprocessed_sample, tmp_path / "run", show_progress=False)
