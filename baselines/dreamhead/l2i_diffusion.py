"""DreamHead stage 2: landmark-to-image (L2I) diffusion.

Usage::

    from talking_head.baselines.dreamhead.l2i_diffusion import L2IDiffusion

    model = L2IDiffusion.from_pretrained("runs/dh/l2i")   # a `toolkit train dreamhead --stage l2i` run
    frames = model.generate_frames(reference_frame, landmarks)  # (H, W, 3) uint8 RGB, (T, 478, 3) px
    frames.shape                                          # (T, H, W, 3) uint8

Design notes
------------

A denoiser generates frame i of a talking head from (Hong et al. 2024, arXiv 2409.10281, Fig. 2b):

* the reference frame I_ref (frame i - tau) and its landmark rendering I^P_ref,
* frame i with the lower face masked, I_mask,
* the landmark rendering of frame i, I^P_i (ground-truth landmarks in training, A2L's at inference).

Every image goes through one frozen encoder E (the Stable Diffusion VAE, ``sd-vae-ft-mse`` from the
weights registry, in the ``paper`` config; the identity on low-resolution pixels in the ``tiny`` one).
The conditions enter the denoiser twice:

1. channel concatenation: the UNet input is ``[z_t, E(I_mask), E(I^P_i), E(I_ref), E(I^P_ref)]``;
2. attention between reference and target features (the toolkit's design; the figure shows only
   "Correspondence" arrows): the same UNet first runs on the reference at t = 0 (the reference is a
   frame whose content is fully known, so its input is
   ``[E(I_ref), E(I_ref), E(I^P_ref), E(I_ref), E(I^P_ref)]``), and every attention layer of the target
   pass attends to its own tokens concatenated with the reference pass's tokens of the same layer (the
   ReferenceNet / reference-only mechanism, with the weights shared).

Training (:meth:`L2IDiffusion.training_loss`) draws (target i, reference i - tau) pairs inside each
window of :class:`toolkit.windows.TalkingHeadWindows` (the items' separate ``reference`` frame is
not used: items carry no landmarks for it) and masks the target itself, as in the figure.

The paper gives no sizes, schedules or losses; every value is in the stage config
(``configs/<name>/l2i.yaml``) with the reason it was chosen. At inference the masked-frame condition is
frame i of the clip being dubbed (``frames``: the figure's setting, as in training) or, one-shot, the given
reference frame for every frame (``--audio``: there is no frame i), masking the union of that frame's and
the generated landmarks' lower-face boxes (:mod:`baselines.dreamhead.conditions`); with
``previous_as_reference`` the reference (image and landmarks) of frame i is the generated frame i - 1,
while the masked frame never is a generated one, so errors cannot accumulate outside the mouth region.

What the model sees (``crop``): the whole frame, or (``face_scale``) a square around the face,
``face_scale`` times the landmarks' larger extent (the clip's median landmarks in training; the reference's,
the targets' and the dubbed frames' at inference), resized to ``resolution``: a small model then spends its
pixels on the face rather than on the shoulders and background of a wide crop. At inference the generated
lower face is pasted back into the full-resolution frame it was masked from, frame i or the reference
(``paste_back``, the usual inpainting practice: outside the mask the model only reproduces that frame, at
its own resolution), blended over ``feather`` of the crop side.

Landmarks are MediaPipe's 478 points in pixels of the frames they come with (the preprocessed
``landmarks`` column: x, y in crop pixels, z ignored); :func:`baselines.mesh_render.render_mesh` draws them.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head.baselines.checkpoint import PretrainedStage
from talking_head.baselines.dreamhead.conditions import MaskedFrames, box_masks, lower_face_boxes
from talking_head.baselines.dreamhead.reference_unet import ReferenceUNet
from talking_head.baselines.face_crop import (blend, crop_square, face_crop_box, feathered, images_to_model, model_view, to_box,
                                 to_frame)
from talking_head.baselines.mesh_render import render_mesh
from talking_head.toolkit import face_mesh

MODEL_NAME = "dreamhead"
STAGE = "l2i"
SKIP_PREFIXES = ("autoencoder.",)  # the frozen autoencoder comes from the weights registry, never from checkpoints
SAMPLERS = ("ddim", "dpm-solver")
# Every key a stage config must have (the shipped configs say why each value was chosen).
SCHEMA: dict[str, tuple[str, ...]] = {
    "autoencoder": ("kind", "weights"),
    "render": ("tessellation", "thickness", "antialias"),
    "mask": ("margin",),
    "crop": ("face_scale", "paste_back", "feather"),
    "reference": ("tau", "symmetric", "pairs_per_window"),
    "unet": ("patch_size", "block_out_channels", "layers_per_block", "attention_levels", "mid_attention",
             "attention_head_dim", "norm_num_groups", "zero_init"),
    "noise": ("num_train_timesteps", "beta_schedule", "beta_start", "beta_end", "prediction_type", "timestep_exponent"),
    "sampler": ("name", "num_inference_steps", "timestep_spacing", "clip_sample", "previous_as_reference", "batch_size"),
    "loss": ("mask_weight", "reference_gradient"),
    "data": ("window", "stride", "preload"),
}


def _check_landmarks(landmarks: Any, what: str, single: bool = False) -> np.ndarray:
    array = np.asarray(landmarks.detach().cpu() if isinstance(landmarks, torch.Tensor) else landmarks, dtype=np.float64)
    shape = "(478, 2|3)" if single else "(T, 478, 2|3)"
    ok = array.ndim == (2 if single else 3) and array.shape[-2] == face_mesh.NUM_POINTS and array.shape[-1] in (2, 3)
    if not ok:
        raise ValueError(f"{what} must be MediaPipe landmarks of shape {shape} in pixels, got shape {array.shape}")
    if single:
        array = array[None]
    if len(array) == 0:
        raise ValueError(f"{what}: no frames (shape {array.shape})")
    bad = np.flatnonzero(~np.isfinite(array[..., :2]).all(axis=(1, 2)))
    if len(bad):
        raise ValueError(f"{what}: frame(s) {bad[:10].tolist()} hold non-finite coordinates (no face detected?); "
                         "fill or drop them first")
    return array[..., :2]


# ------------------------------------------------------------------------------------------ the model
class L2IDiffusion(PretrainedStage, nn.Module):
    """DreamHead's landmark-to-image diffusion (see the module docstring). Build with :meth:`from_config`."""

    MODEL_NAME, STAGE, SKIP_PREFIXES = MODEL_NAME, STAGE, SKIP_PREFIXES

    def __init__(self, config: dict, autoencoder: nn.Module | None = None):
        super().__init__()
        from diffusers import DDPMScheduler

        self.config = config
        self.resolution = int(config["resolution"])
        self.autoencoder = autoencoder  # frozen; never saved with the checkpoint
        if autoencoder is None:
            self.latent_channels, self.downsample = 3, 1
        else:
            autoencoder.requires_grad_(False).eval()
            self.latent_channels = int(autoencoder.config.latent_channels)
            self.downsample = 2 ** (len(autoencoder.config.block_out_channels) - 1)
            self.scaling_factor = float(autoencoder.config.scaling_factor)
        u = config["unet"]
        factor = self.downsample * int(u["patch_size"]) * 2 ** (len(u["block_out_channels"]) - 1)
        if self.resolution % factor:
            raise ValueError(f"resolution {self.resolution} must be a multiple of {factor} (autoencoder downsampling x "
                             "unet.patch_size x 2 per UNet level after the first)")
        self.unet = ReferenceUNet(
            in_channels=5 * self.latent_channels, out_channels=self.latent_channels,
            block_out_channels=list(u["block_out_channels"]), layers_per_block=int(u["layers_per_block"]),
            attention_levels=list(u["attention_levels"]), mid_attention=bool(u["mid_attention"]),
            attention_head_dim=int(u["attention_head_dim"]), norm_num_groups=int(u["norm_num_groups"]),
            patch_size=int(u["patch_size"]), zero_init=bool(u["zero_init"]),
        )
        noise = config["noise"]
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=int(noise["num_train_timesteps"]), beta_schedule=noise["beta_schedule"],
            beta_start=float(noise["beta_start"]), beta_end=float(noise["beta_end"]),
            prediction_type=noise["prediction_type"], clip_sample=False,
        )

    # ---------------------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, config: dict) -> "L2IDiffusion":
        """Build from a parsed stage config (loads the frozen autoencoder from the weights registry)."""
        config = copy.deepcopy(config)
        _validate(config)
        autoencoder = None
        if config["autoencoder"]["kind"] == "vae":
            autoencoder = load_autoencoder(config["autoencoder"]["weights"])
        return cls(config, autoencoder)

    @classmethod
    def check_config(cls, config: dict) -> None:
        _validate(config)

    def train(self, mode: bool = True) -> "L2IDiffusion":
        super().train(mode)
        if self.autoencoder is not None:
            self.autoencoder.eval()  # frozen: always in inference mode
        return self

    # ---------------------------------------------------------------------------- autoencoder
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, R, R) in [-1, 1] -> the diffusion space (identity for pixel-space configs)."""
        if self.autoencoder is None:
            return images
        with torch.no_grad():  # frozen; the posterior mean (its std is negligible for the SD VAE)
            return self.autoencoder.encode(images).latent_dist.mean * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.autoencoder is None:
            return latents
        with torch.no_grad():
            return self.autoencoder.decode(latents / self.scaling_factor).sample

    # ---------------------------------------------------------------------------- conditions
    def render(self, landmarks: np.ndarray) -> torch.Tensor:
        """Landmarks (N, 478, 2) in model pixels -> renderings (N, 3, R, R) in [-1, 1]."""
        r = self.config["render"]
        images = render_mesh(landmarks, self.resolution, tessellation=bool(r["tessellation"]),
                             thickness=int(r["thickness"]), antialias=bool(r["antialias"]))
        return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    def _conditions(self, masked: torch.Tensor, target_render: torch.Tensor, reference: torch.Tensor,
                    reference_render: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoded (target conditions, reference-pass input); each (N, 4C, h, w) and (N, 5C, h, w)."""
        n = len(masked)
        encoded = self.encode(torch.cat([masked, target_render, reference, reference_render]))
        m, p, r, pr = encoded.split(n)
        return torch.cat([m, p, r, pr], 1), torch.cat([r, r, pr, r, pr], 1)

    def _scale(self, frames_hw: tuple[int, int]) -> np.ndarray:
        h, w = frames_hw
        return np.array([self.resolution / w, self.resolution / h])

    # ---------------------------------------------------------------------------- training
    def training_loss(self, batch: dict, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """Denoising loss on (target i, reference i - tau) pairs drawn from each window of the batch.

        ``batch``: default-collated :class:`toolkit.windows.TalkingHeadWindows` items with
        ``frames`` (B, W, H, W', 3) uint8 and ``landmarks`` (B, W, 478, 3) in pixels of those frames.
        """
        frames, landmarks = batch["frames"], batch["landmarks"]
        if frames.ndim != 5 or landmarks.ndim != 4 or landmarks.shape[:2] != frames.shape[:2]:
            raise ValueError(f"expected frames (B, W, H, W, 3) and landmarks (B, W, 478, 3), got "
                             f"{tuple(frames.shape)} and {tuple(landmarks.shape)}")
        if not bool(torch.as_tensor(batch.get("model_view", False)).all()):  # not preloaded: crop/resize here
            face_scale = self.config["crop"]["face_scale"]
            views = [model_view(f.cpu().numpy(), lm.detach().cpu().numpy(), self.resolution, face_scale)
                     for f, lm in zip(frames, landmarks)]
            frames = torch.from_numpy(np.stack([v[0] for v in views]))
            landmarks = torch.from_numpy(np.stack([v[1] for v in views])).float()
        device = next(self.unet.parameters()).device
        gen_device = generator.device if generator is not None else torch.device("cpu")
        b, window = frames.shape[:2]
        per_window = int(self.config["reference"]["pairs_per_window"])

        pairs = _reference_pairs(window, self.config["reference"])
        pick = torch.randint(len(pairs), (b, per_window), generator=generator, device=gen_device).cpu()
        rows = torch.arange(b)[:, None].expand(b, per_window).reshape(-1)
        target_idx, reference_idx = pairs[pick.reshape(-1)].T

        scale = self._scale(frames.shape[2:4])
        target = images_to_model(frames[rows, target_idx].to(device), self.resolution)
        reference = images_to_model(frames[rows, reference_idx].to(device), self.resolution)
        all_landmarks = landmarks.detach().cpu().numpy()[..., :2] * scale
        lm_target = all_landmarks[rows.numpy(), target_idx.numpy()]
        lm_reference = all_landmarks[rows.numpy(), reference_idx.numpy()]

        mask = box_masks(lower_face_boxes(lm_target, float(self.config["mask"]["margin"])), self.resolution).to(device)
        masked = target * (1 - mask) - mask  # black box (-1) over the lower face, as in the paper's figure
        conditions, reference_input = self._conditions(
            masked, self.render(lm_target).to(device), reference, self.render(lm_reference).to(device))
        x0 = self.encode(target)

        n = len(x0)
        noise = torch.randn(x0.shape, generator=generator, device=gen_device).to(device)
        # t = T u^k, u uniform: k = 1 is DDPM's uniform t; k < 1 favours high noise, where the conditions
        # alone must explain the image (the mapping a short run most needs to learn).
        u = torch.rand((n,), generator=generator, device=gen_device).to(device)
        total = self.noise_scheduler.config.num_train_timesteps
        steps = (u ** float(self.config["noise"]["timestep_exponent"]) * total).long().clamp(max=total - 1)
        noisy = self.noise_scheduler.add_noise(x0, noise, steps)
        with torch.set_grad_enabled(torch.is_grad_enabled() and bool(self.config["loss"]["reference_gradient"])):
            tokens = self.unet(reference_input, torch.zeros_like(steps), collect=True)
        prediction = self._predict(noisy, steps, conditions, tokens)

        kind = self.noise_scheduler.config.prediction_type
        goal = {"epsilon": noise, "sample": x0}.get(kind)
        if goal is None:
            goal = self.noise_scheduler.get_velocity(x0, noise, steps)
        error = (prediction.float() - goal.float()) ** 2
        inside = F.adaptive_max_pool2d(mask, x0.shape[-2:])  # the masked box in latent cells
        weight = 1.0 + (float(self.config["loss"]["mask_weight"]) - 1.0) * inside
        loss = (error * weight).mean() / weight.mean()  # a weighted mean: the loss scale does not depend on the weight
        with torch.no_grad():
            masked_error = (error.mean(1, keepdim=True) * inside).sum() / inside.sum().clamp(min=1)
        return loss, {"mse_lower_face": float(masked_error)}

    def _predict(self, noisy: torch.Tensor, t: torch.Tensor, conditions: torch.Tensor,
                 tokens: list[torch.Tensor]) -> torch.Tensor:
        return self.unet(torch.cat([noisy, conditions], 1), t, reference=tokens)

    # ---------------------------------------------------------------------------- sampling
    def make_sampler(self):
        """A fresh diffusers sampler (DDIM or DPM-Solver++) on the training noise schedule."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        s = self.config["sampler"]
        if s["name"] == "ddim":
            return DDIMScheduler.from_config(self.noise_scheduler.config, timestep_spacing=s["timestep_spacing"],
                                             clip_sample=bool(s["clip_sample"]), set_alpha_to_one=True)
        return DPMSolverMultistepScheduler.from_config(self.noise_scheduler.config, timestep_spacing=s["timestep_spacing"],
                                                       algorithm_type="dpmsolver++", solver_order=2)

    def _denoise(self, noise: torch.Tensor, conditions: torch.Tensor, tokens: list[torch.Tensor], steps: int,
                 generator: torch.Generator | None) -> torch.Tensor:
        # 1. the sampler's timesteps; 2. at each, predict with the conditions concatenated and the
        # reference tokens attended to; 3. step back to the previous noise level.
        sampler = self.make_sampler()
        sampler.set_timesteps(steps, device=noise.device)
        latents = noise * sampler.init_noise_sigma
        for t in sampler.timesteps:
            out = self._predict(sampler.scale_model_input(latents, t), t, conditions, tokens)
            latents = sampler.step(out, t, latents, generator=generator).prev_sample
        return latents

    @torch.no_grad()
    def generate_frames(self, reference_frame: np.ndarray, landmarks: np.ndarray, *,
                        reference_landmarks: np.ndarray | None = None, generator: torch.Generator | None = None,
                        num_inference_steps: int | None = None, previous_as_reference: bool | None = None,
                        batch_size: int | None = None, frames=None, frame_landmarks: np.ndarray | None = None
                        ) -> np.ndarray:
        """Frames (T, H, W, 3) uint8 showing the reference's face with the given landmarks.

        Args:
            reference_frame: (H, W, 3) uint8 RGB, the identity and background.
            landmarks: (T, 478, 2|3) MediaPipe landmarks of the frames to generate, in pixels of the reference frame.
            reference_landmarks: (478, 2|3) landmarks of the reference frame; detected with MediaPipe when None.
            generator: the source of the initial noise (and of DDIM's noise when eta > 0).
            num_inference_steps: sampler steps (default ``sampler.num_inference_steps`` of the config).
            previous_as_reference: use generated frame i - 1 as the reference of frame i (default: the config's).
            batch_size: frames denoised together when the reference is fixed (default: the config's).
            frames: dubbing (:mod:`baselines.dreamhead.conditions`): (n, H, W, 3) uint8 chunks of the clip from
                frame 0 in order; frame i is masked for I_mask and receives the lower face. None: the reference.
            frame_landmarks: with `frames`, their (T, 478, 2|3) landmarks in pixels (NaN where no face).
        """
        frame = np.asarray(reference_frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"reference_frame must be an RGB uint8 image (H, W, 3), got {frame.dtype} {frame.shape}")
        targets = _check_landmarks(landmarks, "landmarks")
        if reference_landmarks is None:
            with face_mesh.FaceMeshDetector(video=False) as detector:
                reference_landmarks = detector.detect(frame)
            if reference_landmarks is None:
                raise ValueError("no face found in the reference frame: pass reference_landmarks or another image")
        ref_lm = _check_landmarks(reference_landmarks, "reference_landmarks", single=True)
        source = MaskedFrames(frame, ref_lm[0], len(targets), frames, frame_landmarks)
        s = self.config["sampler"]
        steps = int(num_inference_steps or s["num_inference_steps"])
        sequential = bool(s["previous_as_reference"] if previous_as_reference is None else previous_as_reference)
        batch_size = int(batch_size or s["batch_size"])
        device = next(self.unet.parameters()).device
        height, width = frame.shape[:2]
        crop = self.config["crop"]
        box = face_crop_box(source.points(ref_lm, targets), crop["face_scale"]) if crop["face_scale"] else None
        margin = float(self.config["mask"]["margin"])
        frame_boxes = source.boxes(targets, margin)  # in frame pixels: what is pasted back

        def model_view_of(points: np.ndarray) -> np.ndarray:
            return to_box(points[..., :2], box, self.resolution, (height, width))

        targets, ref_lm = model_view_of(targets), model_view_of(ref_lm)

        def to_model(images: np.ndarray) -> torch.Tensor:
            images = crop_square(images, box) if box is not None else images
            return images_to_model(torch.from_numpy(np.ascontiguousarray(images)).to(device), self.resolution)

        reference = to_model(frame[None])
        boxes = source.boxes(targets, margin, transform=model_view_of)
        shape = (len(targets), self.latent_channels, self.resolution // self.downsample, self.resolution // self.downsample)
        noise = torch.randn(shape, generator=generator, device=generator.device if generator else "cpu").to(device)
        ref_latent, ref_render = self.encode(torch.cat([reference, self.render(ref_lm).to(device)])).split(1)
        chunk = 1 if sequential else batch_size
        out, tokens = [], None
        for start in range(0, len(targets), chunk):
            stop = min(len(targets), start + chunk)
            n = stop - start
            if tokens is None or sequential:  # the reference pass: at t = 0, once per reference
                reference_input = torch.cat([ref_latent, ref_latent, ref_render, ref_latent, ref_render], 1)
                tokens = self.unet(reference_input, torch.zeros(1, device=device), collect=True)
            mask = box_masks(boxes[start:stop], self.resolution).to(device)
            canvas = source.take(n)  # frame i (dubbing) or the reference: never a generated frame
            masked = (to_model(canvas) if source.dubbing else reference) * (1 - mask) - mask
            m, p = self.encode(torch.cat([masked, self.render(targets[start:stop]).to(device)])).split(n)
            conditions = torch.cat([m, p, ref_latent.expand(n, -1, -1, -1), ref_render.expand(n, -1, -1, -1)], 1)
            latents = self._denoise(noise[start:stop], conditions, tokens, steps, generator)
            if sequential:  # frame i is the reference of frame i + 1, with the landmarks it was drawn from
                ref_latent, ref_render = latents, p
            out.append(self._to_frame(self.decode(latents), canvas if source.dubbing else frame, box,
                                      frame_boxes[start:stop]))
        return np.concatenate(out)

    def _to_frame(self, images: torch.Tensor, frame: np.ndarray, box: tuple[int, int, int] | None,
                  lower_face: np.ndarray) -> np.ndarray:
        """Model-view images (N, C, R, R) in [-1, 1] -> (N, H, W, 3) uint8 frames: resized back over the box
        (or the whole frame), then, with ``crop.paste_back``, only the lower face blended into `frame` (H, W, 3),
        or into each of `frame` (N, H, W, 3)."""
        crop = self.config["crop"]
        hw = frame.shape[-3:-1]
        side = box[2] if box is not None else max(hw)
        weights = feathered(lower_face, hw, float(crop["feather"]) * side) if crop["paste_back"] else None
        return blend(to_frame(images, frame, box), frame, weights)


# ---------------------------------------------------------------------------------------- helpers
def _reference_pairs(window: int, cfg: dict) -> torch.Tensor:
    """Every (target, reference) index pair of a window allowed by ``reference.tau`` / ``symmetric``."""
    low, high = (int(v) for v in cfg["tau"])
    pairs = [(i, j) for i in range(window) for j in range(window)
             if low <= i - j <= high or (cfg["symmetric"] and low <= j - i <= high)]
    if not pairs:
        raise ValueError(f"a window of {window} frames holds no reference at tau in [{low}, {high}]: "
                         "make data.window larger than reference.tau's maximum")
    return torch.tensor(pairs)


def _validate(config: dict) -> None:
    """Raise ValueError naming the first problem: another model or stage, a missing or unknown key."""
    if (config.get("model"), config.get("stage")) != (MODEL_NAME, STAGE):
        raise ValueError(f"this is a config for model {config.get('model')!r} stage {config.get('stage')!r}, "
                         f"not {MODEL_NAME!r} stage {STAGE!r}")
    for key in ("resolution", *SCHEMA):
        if key not in config:
            raise ValueError(f"the L2I config lacks {key!r} (see baselines/dreamhead/configs/tiny/l2i.yaml)")
    for section, keys in SCHEMA.items():
        given = config[section]
        if not isinstance(given, dict):
            raise ValueError(f"L2I config: {section!r} must be a mapping, got {given!r}")
        missing, unknown = sorted(set(keys) - set(given)), sorted(set(given) - set(keys))
        if missing or unknown:
            raise ValueError(f"L2I config section {section!r}: missing keys {missing}, unknown keys {unknown}")
    if config["autoencoder"]["kind"] not in ("pixel", "vae"):
        raise ValueError(f"autoencoder.kind must be 'pixel' or 'vae', got {config['autoencoder']['kind']!r}")
    if config["sampler"]["name"] not in SAMPLERS:
        raise ValueError(f"sampler.name must be one of {SAMPLERS}, got {config['sampler']['name']!r}")
    if config["noise"]["prediction_type"] not in ("epsilon", "sample", "v_prediction"):
        raise ValueError("noise.prediction_type must be epsilon, sample or v_prediction, "
                         f"got {config['noise']['prediction_type']!r}")


def load_autoencoder(name: str) -> nn.Module:
    """The frozen VAE of registry entry `name` (a Hugging Face snapshot), checked before loading."""
    from diffusers import AutoencoderKL

    from talking_head.toolkit import weights

    weights.require(name)  # missing -> WeightsMissingError with the fetch hint; corrupt -> WeightsCorruptError
    # diffusers reads the safetensors file, or a .bin with torch.load(weights_only=True).
    vae = AutoencoderKL.from_pretrained(str(weights.path(name)), local_files_only=True)
    return vae.requires_grad_(False).eval()


# ------------------------------------------------------------------------------------------ data
class PreloadedWindows(torch.utils.data.Dataset):
    """Windows of `window` frames every `stride` frames, every clip decoded once and kept in memory as the
    model sees it (:func:`model_view`: `size` pixels of the whole frame or of the clip's face box, landmarks
    in those pixels): for small datasets, where decoding would dominate a step.

    Items have the ``frames`` and ``landmarks`` of :class:`toolkit.windows.TalkingHeadWindows`, and
    ``model_view`` (True: :meth:`L2IDiffusion.training_loss` uses them as they are).
    """

    def __init__(self, path: str | Path, split: str, window: int, stride: int, size: int,
                 face_scale: float | None = None):
        from talking_head.toolkit.windows import TalkingHeadWindows

        source = TalkingHeadWindows(path, split=split, window=window, stride=1, frames=True, reference="first")
        first = {}
        for i, (row, start) in enumerate(source.index):
            first.setdefault((row, start), i)
        self.window = window
        self.clips = []
        self.index = []
        for row, (clip_id, total) in enumerate(zip(source.clip_ids, source.lengths)):
            if total < window:
                continue
            # Windows that tile the clip, then the last one for the tail: each frame decoded once or twice.
            parts = [source[first[(row, s)]] for s in sorted({*range(0, total - window + 1, window), total - window})]
            frames = np.zeros((total, *parts[0]["frames"].shape[1:]), dtype=np.uint8)
            landmarks = np.zeros((total, *parts[0]["landmarks"].shape[1:]), dtype=np.float32)
            for part in parts:
                span = slice(part["start"], part["start"] + window)
                frames[span], landmarks[span] = part["frames"].numpy(), part["landmarks"].numpy()
            frames, landmarks, _ = model_view(frames, landmarks, size, face_scale)
            frames = torch.from_numpy(frames)
            self.index += [(len(self.clips), s) for s in range(0, total - window + 1, stride)]
            self.clips.append({"clip_id": clip_id, "frames": frames, "landmarks": torch.from_numpy(landmarks).float()})
        if not self.index:
            raise ValueError(f"{path} [{split}]: no clip has {window} frames")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        clip, start = self.index[i]
        data = self.clips[clip]
        return {"clip_id": data["clip_id"], "start": start, "frames": data["frames"][start : start + self.window],
                "landmarks": data["landmarks"][start : start + self.window], "model_view": True}


def training_dataset(config: dict, dataset_dir: str | Path, split: str = "train") -> torch.utils.data.Dataset:
    """The L2I training set: windows of ``data.window`` frames every ``data.stride`` (preloaded if
    ``data.preload``), as the generic trainer (:func:`baselines.training.train`) expects."""
    from talking_head.toolkit.windows import TalkingHeadWindows

    data = config["data"]
    window, stride = int(data["window"]), int(data["stride"])
    if data["preload"]:
        return PreloadedWindows(dataset_dir, split, window, stride, size=int(config["resolution"]),
                                face_scale=config["crop"]["face_scale"])
    return TalkingHeadWindows(dataset_dir, split=split, window=window, stride=stride, frames=True,
                              reference="first", seed=int(config.get("seed", 0)))
