"""DreamHead L2I (baselines/dreamhead/l2i_diffusion.py): acceptance on held-out sample clips, sampling,
save/load, the latent path with a created Stable Diffusion VAE, the paper config, and bad input.

Acceptance: trained with the `tiny` config as shipped (fixed seed, under 3 CPU minutes), given
the ground-truth landmarks of a held-out (test split) clip and its first frame as the reference, the
generated frames' mouth region is closer to the ground truth (PSNR) than the reference frame's mouth is,
on every test clip. The mouth region of a frame is the bounding box of its ground-truth MediaPipe lip
points (``toolkit.face_mesh.LIPS``), widened on every side by a quarter of the lips' width; PSNR is
computed over that box in the 256-pixel crops (the generated frames come back at the input size) and
averaged over the evaluated frames (every 4th frame after the reference).
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
import yaml
from datasets import load_from_disk
from safetensors import safe_open

import weights_factory as factory
from talking_head.baselines import training
from talking_head.baselines.checkpoint import CONFIG_NAME as CONFIG_FILE, WEIGHTS_NAME as MODEL_FILE, CheckpointError
from talking_head.baselines.dreamhead import load_config
from talking_head.baselines.dreamhead.l2i_diffusion import (L2IDiffusion, ReferenceUNet, lower_face_boxes,
                                               training_dataset)
from talking_head.toolkit.windows import TalkingHeadWindows
from talking_head.toolkit import face_mesh
from talking_head.toolkit import weights as w

EVERY = 4  # evaluate every 4th frame of a test clip (the reference, frame 0, excluded)
MOUTH_PAD = 0.25  # the mouth box is the lips' box widened by this fraction of the lips' width on each side


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def trained(tiny_runs) -> L2IDiffusion:
    """The tiny config exactly as shipped, trained on the sample's train split with the generic trainer
    (tests/conftest.py)."""
    run = tiny_runs.stage("dreamhead", "l2i")[0]  # its CPU budget: tests/test_training_budget.py
    return L2IDiffusion.from_pretrained(run).eval()


@pytest.fixture(scope="module")
def test_clips(preprocessed_sample) -> list[dict]:
    """Every test-split clip whole: frames (T, 256, 256, 3) and landmarks (T, 478, 3)."""
    length = min(load_from_disk(str(preprocessed_sample))["test"]["num_frames"])
    clips = TalkingHeadWindows(preprocessed_sample, split="test", window=length, reference="first")
    return [{"clip_id": item["clip_id"], "frames": item["frames"].numpy(), "landmarks": item["landmarks"].numpy()}
            for item in (clips[i] for i in range(len(clips)))]


def mouth_psnr(images: np.ndarray, truth: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each image against the truth over the frame's mouth box (see the module docstring)."""
    values = []
    for image, target, points in zip(images, truth, landmarks):
        lips = points[list(face_mesh.LIPS), :2]
        (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
        pad = MOUTH_PAD * (x1 - x0)
        x0, y0 = int(np.floor(x0 - pad)), int(np.floor(y0 - pad))
        x1, y1 = int(np.ceil(x1 + pad)), int(np.ceil(y1 + pad))
        diff = image[y0:y1, x0:x1].astype(np.float64) - target[y0:y1, x0:x1]
        values.append(10 * np.log10(255.0**2 / np.mean(diff**2)))
    return np.array(values)


# ------------------------------------------------------------------------------------------ acceptance
def test_generated_mouths_beat_the_reference_frame(trained, test_clips):
    results = {}
    for clip in test_clips:
        frames, landmarks = clip["frames"], clip["landmarks"]
        picked = np.arange(EVERY, len(frames), EVERY)
        generated = trained.generate_frames(frames[0], landmarks[picked], reference_landmarks=landmarks[0],
                                            generator=torch.Generator().manual_seed(0))
        assert generated.shape == frames[picked].shape and generated.dtype == np.uint8
        ours = mouth_psnr(generated, frames[picked], landmarks[picked]).mean()
        reference = mouth_psnr(np.repeat(frames[:1], len(picked), axis=0), frames[picked], landmarks[picked]).mean()
        results[clip["clip_id"]] = (round(float(ours), 2), round(float(reference), 2))
    print("mouth PSNR (generated, reference frame):", results)
    assert len(results) == 2
    for clip_id, (ours, reference) in results.items():
        assert ours > reference, f"{clip_id}: generated {ours} dB, reference frame {reference} dB"


def test_only_the_lower_face_is_pasted_back(trained, test_clips):
    """The tiny config crops the face and pastes the generated lower face into the full-resolution reference:
    far from the masked box the frames are the reference's pixels exactly; inside it the mouth changes."""
    assert trained.config["crop"]["face_scale"] and trained.config["crop"]["paste_back"]
    frames, landmarks = test_clips[0]["frames"], test_clips[0]["landmarks"]
    picked = [8, 40]
    out = trained.generate_frames(frames[0], landmarks[picked], reference_landmarks=landmarks[0],
                                  generator=torch.Generator().manual_seed(0), num_inference_steps=4)
    margin = trained.config["mask"]["margin"]
    boxes = np.concatenate([lower_face_boxes(landmarks[picked], margin), lower_face_boxes(landmarks[:1], margin)])
    top = int(np.floor(boxes[:, 1].min())) - 16  # 16 px above the highest box: beyond the feathered edge
    assert top > 32
    np.testing.assert_array_equal(out[:, :top], np.repeat(frames[:1, :top], 2, axis=0))
    x0, y0, x1, y1 = lower_face_boxes(landmarks[picked[1]:picked[1] + 1], 0.0)[0].astype(int)
    assert np.abs(out[1, y0:y1, x0:x1].astype(int) - frames[0, y0:y1, x0:x1]).mean() > 1


# ------------------------------------------------------------------------------------------ sampling
def test_generation_is_deterministic_and_sized_like_the_reference(trained, test_clips):
    frames, landmarks = test_clips[0]["frames"], test_clips[0]["landmarks"]
    args = (frames[0], landmarks[10:13])
    kwargs = dict(reference_landmarks=landmarks[0], num_inference_steps=4)
    a = trained.generate_frames(*args, generator=torch.Generator().manual_seed(1), **kwargs)
    b = trained.generate_frames(*args, generator=torch.Generator().manual_seed(1), **kwargs)
    c = trained.generate_frames(*args, generator=torch.Generator().manual_seed(2), **kwargs)
    assert a.shape == (3, 256, 256, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # The batch size only groups the work: frame by frame gives the same frames (up to float rounding,
    # as oneDNN picks other kernels for other batch sizes).
    one_by_one = trained.generate_frames(*args, generator=torch.Generator().manual_seed(1), batch_size=1, **kwargs)
    assert np.abs(a.astype(int) - one_by_one).max() <= 1
    # Any input size: a 128-pixel reference with its landmarks halved gives 128-pixel frames.
    small = frames[0, ::2, ::2].copy()
    out = trained.generate_frames(small, landmarks[10:12] / 2, reference_landmarks=landmarks[0] / 2,
                                  generator=torch.Generator().manual_seed(1), num_inference_steps=2)
    assert out.shape == (2, 128, 128, 3)


def test_dpm_solver_sampler(trained, test_clips):
    frames, landmarks = test_clips[0]["frames"], test_clips[0]["landmarks"]
    kwargs = dict(reference_landmarks=landmarks[0], num_inference_steps=4)
    ddim = trained.generate_frames(frames[0], landmarks[30:32], generator=torch.Generator().manual_seed(0), **kwargs)
    trained.config["sampler"]["name"] = "dpm-solver"
    try:
        a, b = (trained.generate_frames(frames[0], landmarks[30:32], generator=torch.Generator().manual_seed(0), **kwargs)
                for _ in range(2))
    finally:
        trained.config["sampler"]["name"] = "ddim"
    assert a.shape == ddim.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ddim)
    # Both samplers solve the same ODE: the frames agree closely.
    assert np.abs(a.astype(float) - ddim).mean() < 2


def test_previous_frame_as_reference(trained, test_clips):
    frames, landmarks = test_clips[1]["frames"], test_clips[1]["landmarks"]
    kwargs = dict(reference_landmarks=landmarks[0], num_inference_steps=4)
    fixed = trained.generate_frames(frames[0], landmarks[20:23], generator=torch.Generator().manual_seed(0),
                                    previous_as_reference=False, **kwargs)
    chained = trained.generate_frames(frames[0], landmarks[20:23], generator=torch.Generator().manual_seed(0),
                                      previous_as_reference=True, **kwargs)
    assert chained.shape == fixed.shape
    np.testing.assert_array_equal(chained[0], fixed[0])  # frame 0 has the given reference either way
    assert not np.array_equal(chained[1:], fixed[1:])  # later frames see the generated previous frame
    again = trained.generate_frames(frames[0], landmarks[20:23], generator=torch.Generator().manual_seed(0),
                                    previous_as_reference=True, **kwargs)
    np.testing.assert_array_equal(chained, again)


def test_training_loss_is_reproducible(trained, preprocessed_sample):
    dataset = training_dataset(load_config("tiny", "l2i"), preprocessed_sample)
    batch = torch.utils.data.default_collate([dataset[0], dataset[len(dataset) - 1]])
    loss_a, extras = trained.training_loss(batch, generator=torch.Generator().manual_seed(5))
    loss_b, _ = trained.training_loss(batch, generator=torch.Generator().manual_seed(5))
    loss_c, _ = trained.training_loss(batch, generator=torch.Generator().manual_seed(6))
    assert torch.isfinite(loss_a) and loss_a.item() == loss_b.item() != loss_c.item()
    assert set(extras) == {"mse_lower_face"} and extras["mse_lower_face"] >= 0


# ------------------------------------------------------------------------------------------ save / load
def test_save_and_load_round_trip(trained, test_clips, tmp_path):
    trained.save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / MODEL_FILE), framework="pt") as handle:
        assert handle.metadata() == {"model": "dreamhead", "stage": "l2i"}
    config = yaml.safe_load((tmp_path / "ckpt" / CONFIG_FILE).read_text())
    assert config == trained.config and (config["model"], config["stage"]) == ("dreamhead", "l2i")
    loaded = L2IDiffusion.from_pretrained(tmp_path / "ckpt").eval()
    frames, landmarks = test_clips[0]["frames"], test_clips[0]["landmarks"]
    kwargs = dict(reference_landmarks=landmarks[0], num_inference_steps=3)
    a = trained.generate_frames(frames[0], landmarks[5:7], generator=torch.Generator().manual_seed(3), **kwargs)
    b = loaded.generate_frames(frames[0], landmarks[5:7], generator=torch.Generator().manual_seed(3), **kwargs)
    np.testing.assert_array_equal(a, b)


def _checkpoint(tmp_path, trained, **changes):
    folder = tmp_path / "other"
    trained.save_pretrained(folder)
    config = yaml.safe_load((folder / CONFIG_FILE).read_text())
    config.update(changes)
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(config))
    return folder


def test_checkpoints_of_another_model_or_stage_are_refused(trained, tmp_path):
    with pytest.raises(CheckpointError, match=r"config\.yaml: a checkpoint of model/stage \('dreamhead', 'a2l'\)"):
        L2IDiffusion.from_pretrained(_checkpoint(tmp_path, trained, stage="a2l"))
    with pytest.raises(CheckpointError, match=r"config\.yaml: a checkpoint of model/stage \('moda', 'l2i'\)"):
        L2IDiffusion.from_pretrained(_checkpoint(tmp_path, trained, model="moda"))
    # Weights written by another stage, under an L2I config: refused by the safetensors header.
    folder = _checkpoint(tmp_path, trained)
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(folder / MODEL_FILE), metadata={"model": "dreamhead", "stage": "a2l"})
    with pytest.raises(CheckpointError, match=r"model\.safetensors: weights of model 'dreamhead' stage 'a2l'"):
        L2IDiffusion.from_pretrained(folder)
    (folder / MODEL_FILE).write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: not a readable safetensors file"):
        L2IDiffusion.from_pretrained(folder)
    (folder / MODEL_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors: missing"):
        L2IDiffusion.from_pretrained(folder)
    # A config that names the stage but lacks a section: refused naming the file, before anything is built.
    folder = _checkpoint(tmp_path, trained)
    config = yaml.safe_load((folder / CONFIG_FILE).read_text())
    del config["unet"]
    (folder / CONFIG_FILE).write_text(yaml.safe_dump(config))
    with pytest.raises(CheckpointError, match=r"config\.yaml: the L2I config lacks 'unet'"):
        L2IDiffusion.from_pretrained(folder)


def test_a_config_of_another_stage_is_refused():
    with pytest.raises(ValueError, match="stage 'a2l', not 'dreamhead' stage 'l2i'"):
        L2IDiffusion.from_config(load_config("tiny", "a2l"))
    config = load_config("tiny", "l2i")
    del config["unet"]["zero_init"]
    config["unet"]["zero_inti"] = True
    with pytest.raises(ValueError, match=r"'unet': missing keys \['zero_init'\], unknown keys \['zero_inti'\]"):
        L2IDiffusion.from_config(config)
    config = load_config("tiny", "l2i")
    config["resolution"] = 60
    with pytest.raises(ValueError, match="resolution 60 must be a multiple of 8"):
        L2IDiffusion.from_config(config)


# ------------------------------------------------------------------------------------------ bad input
def test_bad_landmarks_and_reference_raise(trained, test_clips):
    frames, landmarks = test_clips[0]["frames"], test_clips[0]["landmarks"]
    with pytest.raises(ValueError, match=r"landmarks must be MediaPipe landmarks of shape \(T, 478, 2\|3\).*\(4, 468, 3\)"):
        trained.generate_frames(frames[0], landmarks[:4, :468], reference_landmarks=landmarks[0])
    with pytest.raises(ValueError, match=r"landmarks must be .*\(478, 3\)"):
        trained.generate_frames(frames[0], landmarks[0], reference_landmarks=landmarks[0])  # one frame, not (T, ...)
    with pytest.raises(ValueError, match=r"reference_landmarks must be .*\(478, 2\|3\)"):
        trained.generate_frames(frames[0], landmarks[:2], reference_landmarks=landmarks[:2])
    holes = landmarks[:3].copy()
    holes[1] = np.nan
    with pytest.raises(ValueError, match=r"frame\(s\) \[1\] hold non-finite"):
        trained.generate_frames(frames[0], holes, reference_landmarks=landmarks[0])
    with pytest.raises(ValueError, match="RGB uint8 image"):
        trained.generate_frames(frames[0].astype(np.float32), landmarks[:2], reference_landmarks=landmarks[0])
    with pytest.raises(ValueError, match="no face found in the reference frame"):
        trained.generate_frames(np.full((256, 256, 3), 128, np.uint8), landmarks[:2])
    with pytest.raises(ValueError, match=r"expected frames \(B, W, H, W, 3\)"):
        trained.training_loss({"frames": torch.zeros(2, 256, 256, 3, dtype=torch.uint8), "landmarks": torch.zeros(2, 478, 3)})


# ------------------------------------------------------------------------------------------ latent path
def _latent_config() -> dict:
    config = load_config("tiny", "l2i")
    config["autoencoder"] = {"kind": "vae", "weights": "sd-vae-ft-mse"}
    config["unet"].update(patch_size=1, block_out_channels=[16, 32], attention_levels=[False, True])
    config["noise"].update(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="epsilon")
    config["sampler"]["clip_sample"] = False
    config["reference"]["tau"] = [1, 2]
    return config


def test_latent_path_with_the_registry_vae(isolated_caches, preprocessed_sample, test_clips, tmp_path, monkeypatch):
    vae = factory.sd_vae(monkeypatch)
    model = L2IDiffusion.from_config(_latent_config())
    assert model.latent_channels == 4 and model.downsample == 8
    np.testing.assert_array_equal(model.autoencoder.decoder.conv_in.weight.detach(), vae.decoder.conv_in.weight.detach())
    assert not any(p.requires_grad for p in model.autoencoder.parameters())

    # One training step end to end: gradients reach the UNet, never the frozen VAE.
    dataset = TalkingHeadWindows(preprocessed_sample, split="train", window=3, stride=50)
    batch = torch.utils.data.default_collate([dataset[0], dataset[1]])
    model.train()
    assert not model.autoencoder.training
    loss, _ = model.training_loss(batch, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.unet.parameters())
    assert all(p.grad is None for p in model.autoencoder.parameters())

    # Sampling decodes through the VAE, at the reference's size.
    model.eval()
    frames, landmarks = test_clips[0]["frames"], test_clips[0]["landmarks"]
    kwargs = dict(reference_landmarks=landmarks[0], num_inference_steps=2)
    out = model.generate_frames(frames[0], landmarks[3:5], generator=torch.Generator().manual_seed(0), **kwargs)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8

    # The checkpoint holds the denoiser only; loading takes the VAE from the registry again.
    model.save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / MODEL_FILE), framework="pt") as handle:
        keys = list(handle.keys())
    assert keys and not any(k.startswith("autoencoder.") for k in keys)
    loaded = L2IDiffusion.from_pretrained(tmp_path / "ckpt").eval()
    again = loaded.generate_frames(frames[0], landmarks[3:5], generator=torch.Generator().manual_seed(0), **kwargs)
    np.testing.assert_array_equal(out, again)


def test_missing_vae_weights_say_how_to_fetch_them(isolated_caches):
    with pytest.raises(w.WeightsMissingError, match="toolkit weights fetch sd-vae-ft-mse"):
        L2IDiffusion.from_config(_latent_config())


# ------------------------------------------------------------------------------------------ configs
def test_paper_config_is_complete_and_sd_sized():
    config = load_config("paper", "l2i")
    training.training_config(config)  # only keys the trainer knows
    assert config["autoencoder"] == {"kind": "vae", "weights": "sd-vae-ft-mse"} and "sd-vae-ft-mse" in w.REGISTRY
    assert config["resolution"] in (256, 512) and config["sampler"]["previous_as_reference"] is True
    u = config["unet"]
    with torch.device("meta"):  # SD-sized: built without allocating memory
        unet = ReferenceUNet(in_channels=5 * 4, out_channels=4, block_out_channels=u["block_out_channels"],
                             layers_per_block=u["layers_per_block"], attention_levels=u["attention_levels"],
                             mid_attention=u["mid_attention"], attention_head_dim=u["attention_head_dim"],
                             norm_num_groups=u["norm_num_groups"], patch_size=u["patch_size"])
    count = sum(p.numel() for p in unet.parameters())
    assert 3e8 < count < 2e9, count


def test_every_config_value_has_a_reason():
    from talking_head.baselines.dreamhead import CONFIG_DIR

    for name in ("tiny", "paper"):
        lines = (CONFIG_DIR / name / "l2i.yaml").read_text().splitlines()
        values = [line for line in lines if ":" in line and not line.lstrip().startswith("#")
                  and line.split(":", 1)[1].split("#")[0].strip()]
        unexplained = [line for line in values if "#" not in line and line.split(":")[0] not in ("model", "stage")]
        assert not unexplained, f"{name}: {unexplained}"
