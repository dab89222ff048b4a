"""MODA stage 3: the temporal-guided renderer (docs/reference-models.md#renderer; the release's ``models/render_model.py``,
``render_G.py``, ``render_D.py``, ``datasets/render_dataset.py``).

Usage::

    from talking_head.baselines.moda.renderer import TemporalRenderer

    model = TemporalRenderer.from_pretrained("runs/moda/renderer")  # one identity's trained renderer
    frames = model.render(reference_frame, meshes, torso, frame_indices=range(len(meshes)))
    frames.shape                         # (T, S, S, 3) uint8, like the (S, S, 3) reference crop

Design notes
------------

One model per identity turns a drawn face mesh into a photo of that person:

    input (19 channels, images in [-1, 1], at ``resolution``):
        the conditioning image (3): the 478-point mesh drawn by :func:`baselines.mesh_render.render_mesh`
            with the 18 shoulder points (:mod:`baselines.moda.torso`) drawn on it as two white polylines;
        the reference image (3): a frame of the same person (identity, background, clothes);
        the temporal positional encoding, TPE (13): :func:`temporal_encoding` of the frame index, which
            lets the network keep what the mesh does not say (hair, wrinkles, light) tied to time.
    generator: :class:`ResUNetGenerator` (the release's ``RenderGenerator_normal``) -> the frame, tanh.
    discriminator: :class:`MultiscalePatchGAN` (pix2pixHD's), conditional: it sees the generator's whole
        input next to the real or generated frame (22 channels, as ``render_D.py`` builds it).

Losses (``loss`` section; the release's ``calculate_loss`` / ``backward_D``):

    G = gan * LSGAN + l1 * L1 + vgg * VGG19 perceptual + style * Gram style + fm * feature matching
        (+ mouth_l1 * L1 inside the dilated mouth polygon, an addition of this toolkit, off in `paper`)
    D = 0.666 * LSGAN(real -> 1) + 0.334 * LSGAN(fake -> 0)

One optimizer, one backward. The shared loop (:mod:`baselines.training`) has one AdamW over
``model.parameters()`` and one backward per step, so G and D are trained *simultaneously* rather than
alternately as in the release (D step, then G step against the updated D). :meth:`TemporalRenderer.
training_loss` returns G + D, built so that each term reaches only its own network:

* the G terms that run the discriminator (adversarial, feature matching) call it through
  ``torch.func.functional_call`` with *detached* copies of D's parameters: gradients flow through D into
  the generated frame, never into D's weights;
* the D terms see the *detached* generated frame: gradients reach D's weights, never the generator.

So one backward gives G the gradient of the G loss and D the gradient of the D loss, exactly as two
separate backwards would; only the ordering differs (both updates use the discriminator of the step's
start). The global gradient-norm clip of the loop (``training.grad_clip``) sees both networks at once;
both configs turn it off, as the release does not clip.

Where this module departs from the release, and why:

* D uses InstanceNorm (pix2pixHD's default), not the release's BatchNorm: D runs three times per step
  on differently distributed inputs (real, fake, fake again), and BatchNorm would mix their statistics
  and update its running averages on each call.
* Switches of ``fixes`` (:mod:`baselines.moda.release`; all at the release's value with ``faithful_to_release``):
  ImageNet-normalised VGG19 input (release: [-1, 1] as is), per-image Gram / C*H*W (release: one batch Gram
  / B*C*H*W), the TPE offset 1 at inference as in training (release: 0 at inference), x :data:`STYLE_GRAM_SCALE`.
* No data augmentation (the release's optional ``use_da``: a random crop of up to 25 px and a rotation
  of up to 15 degrees), and every scale of D has ``ndf`` channels (the release's ``min(64, ndf * 2**k)``
  is ``ndf`` for its ndf = 64).
* The temporal split of each clip and the item's frame index replace the release's per-identity frame
  list, and the reference is a frame of the clip (the release: a fixed "candidate" image).

Kept from the release where pix2pixHD differs: every VGG layer weighs 1.0 (pix2pixHD: 1/32 .. 1);
feature matching includes D's last (prediction) layer; the TPE has no factor pi (see
:func:`temporal_encoding`).

Identities and training data: :mod:`baselines.moda.renderer_data` (one renderer per identity, the
release's protocol, and :class:`~baselines.moda.renderer_data.RendererFrames`). With a face box
(``crop.face_scale``), :meth:`TemporalRenderer.render` renders the box around the target meshes and pastes it
into the full-resolution reference frame with a feathered edge.
"""

from __future__ import annotations

import copy
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head.baselines import checkpoint
from talking_head.baselines.face_crop import (blend, crop_square, face_crop_box, feathered, images_to_model, to_box,
                                               to_frame)
from talking_head.baselines.mesh_render import render_mesh
from talking_head.baselines.moda.renderer_networks import MultiscalePatchGAN, ResUNetGenerator, VGG19Features, gram
from talking_head.baselines.moda.release import batch_gram, fixes
from talking_head.baselines.moda.torso import draw_shoulders

MODEL_NAME = "moda"
STAGE = "renderer"
SKIP_PREFIXES = ("vgg.",)  # the frozen VGG19 comes from the weights registry, never from checkpoints
ALL_SPEAKERS = "all"  # data.speaker value: one renderer trained on every speaker of the split

# Temporal positional encoding (the release's RenderDataset.positional_encoding, nerf-pytorch's form):
# x = TPE_OFFSET + frame_index / TPE_TIME_SCALE, encoded as [x, sin(2^k x), cos(2^k x) for k < frequencies].
TPE_TIME_SCALE = 1000.0  # the release's temporal_encoding_param
TPE_OFFSET = 1.0  # the release builds x as np.ones(...) + t
TPE_FREQUENCIES = 6  # num_encoding_functions; with include_input: 1 + 2 * 6 = 13 channels

# MODA's mouth weight mask (data_prepare step 7): the mouth-outer polygon, dilated by 45 x 45 at 512 px.
MOUTH_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
MOUTH_DILATION = 45 / 512  # dilation square side as a fraction of the image side

IMAGE_CHANNELS = 3
D_REAL_WEIGHT = 0.666  # the release's lambda_real: D = 0.666 real + 0.334 fake
STYLE_GRAM_SCALE = 3e7  # the release's StyleLoss multiplies the Gram MSE by 30 000 000
VGG_LAYER_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)  # the release's VGGLoss.weights (pix2pixHD: 1/32, 1/16, 1/8, 1/4, 1)
INIT_STD = 0.02  # the release's init_net(init_type="normal", init_gain=0.02)
EXTRA_TERMS = ("g_gan", "l1", "mouth_l1", "vgg", "style", "fm", "d_real", "d_fake")

# Every key a stage config must have (the shipped configs say why each value was chosen).
SCHEMA: dict[str, tuple[str, ...]] = {
    "draw": ("tessellation", "thickness", "antialias", "shoulder_thickness"),
    "tpe": ("frequencies",),
    "generator": ("ngf", "n_downsample", "max_channels"),
    "discriminator": ("num_D", "n_layers", "ndf"),
    "loss": ("gan", "l1", "mouth_l1", "vgg", "style", "fm"),
    "data": ("split", "speaker", "train_fraction", "reference"),
    "inference": ("batch_size",),
    "crop": ("face_scale", "feather"),
}


# ---------------------------------------------------------------------------------------- inputs
def temporal_encoding(frame_index: Any, size: int, frequencies: int = TPE_FREQUENCIES,
                      offset: float = TPE_OFFSET) -> torch.Tensor:
    """MODA's TPE of frame index(es), broadcast to `size` x `size`: (1 + 2F, S, S), or (N, 1 + 2F, S, S)
    for N indices.

    x = offset + frame_index / 1000; channels [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(F-1) x), cos(2^(F-1) x)].
    The frequencies are log-spaced 2^0 .. 2^(F-1) without a factor pi: the release copies nerf-pytorch's
    ``positional_encoding`` (log_sampling), whose bands are 2^k (the NeRF paper's are 2^k pi). The offset
    1 is the release's in training (it adds t to an image of ones); its inference has 0 (``fixes``)."""
    index = torch.as_tensor(frame_index, dtype=torch.float64)
    single = index.ndim == 0
    x = offset + index.reshape(-1) / TPE_TIME_SCALE
    bands = 2.0 ** torch.arange(frequencies, dtype=torch.float64)
    angles = x[:, None] * bands[None]  # (N, F)
    channels = [x[:, None]]
    for k in range(frequencies):
        channels += [torch.sin(angles[:, k : k + 1]), torch.cos(angles[:, k : k + 1])]
    values = torch.cat(channels, 1).float()  # (N, 1 + 2F)
    out = values[:, :, None, None].expand(-1, -1, size, size)
    return out[0] if single else out


def tpe_channels(frequencies: int = TPE_FREQUENCIES) -> int:
    return 1 + 2 * frequencies


def draw_condition(landmarks: np.ndarray, torso: np.ndarray | None, size: int, draw: dict) -> np.ndarray:
    """The conditioning image (S, S, 3) uint8: the mesh (478, 2|3) and the shoulder polylines (18, 2|3),
    both in pixels of the S-pixel image."""
    image = render_mesh(landmarks, size, tessellation=bool(draw["tessellation"]), thickness=int(draw["thickness"]),
                        antialias=bool(draw["antialias"]))
    if torso is not None:
        draw_shoulders(image, torso, 1.0, (255, 255, 255), int(draw["shoulder_thickness"]))
    return image


def mouth_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """MODA's mouth weight mask (S, S) uint8 in {0, 1}: the mouth-outer polygon of the mesh (478, 2|3, in
    pixels of the S-pixel image) filled, then dilated by a square of 45/512 of the image side (odd)."""
    mask = np.zeros((size, size), np.uint8)
    points = np.asarray(landmarks, dtype=np.float64)[list(MOUTH_OUTER), :2]
    if not np.isfinite(points).all():
        return mask
    fixed = np.round((points - 0.5) * 16).astype(np.int32)  # pixel centres at +0.5, 4 fractional bits
    cv2.fillPoly(mask, [fixed], 1, cv2.LINE_8, 4)
    side = 2 * int(round(MOUTH_DILATION * size / 2)) + 1  # 45 at 512, 7 at 64: odd, so centred
    return cv2.dilate(mask, np.ones((side, side), np.uint8))


# ------------------------------------------------------------------------------------------ model
class TemporalRenderer(checkpoint.PretrainedStage, nn.Module):
    """MODA's renderer: :attr:`generator` (used at inference), :attr:`discriminator` (training only),
    and, when the perceptual or style loss is on, the frozen :attr:`vgg`."""

    MODEL_NAME, STAGE, SKIP_PREFIXES = MODEL_NAME, STAGE, SKIP_PREFIXES

    def __init__(self, config: dict, vgg: VGG19Features | None = None):
        super().__init__()
        _validate(config)
        self.config = config
        self.resolution = int(config["resolution"])
        self.frequencies = int(config["tpe"]["frequencies"])
        self.in_channels = 2 * IMAGE_CHANNELS + tpe_channels(self.frequencies)
        g, d = config["generator"], config["discriminator"]
        self.generator = ResUNetGenerator(self.in_channels, IMAGE_CHANNELS, int(g["ngf"]), int(g["n_downsample"]),
                                          int(g["max_channels"]))
        # Conditional D (render_D.py): the generator's whole input next to the frame.
        self.discriminator = MultiscalePatchGAN(self.in_channels + IMAGE_CHANNELS, int(d["ndf"]), int(d["n_layers"]),
                                                int(d["num_D"]))
        _init_weights(self.generator), _init_weights(self.discriminator)
        self.vgg, self.fixes = vgg, fixes(config)

    # ---------------------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, config: dict) -> "TemporalRenderer":
        """Build from a stage config; loads VGG19 from the weights registry when loss.vgg or loss.style > 0."""
        config = copy.deepcopy(config)
        _validate(config)
        loss = config["loss"]
        vgg = VGG19Features.from_registry() if float(loss["vgg"]) > 0 or float(loss["style"]) > 0 else None
        return cls(config, vgg)

    @classmethod
    def check_config(cls, config: dict) -> None:
        _validate(config)

    def train(self, mode: bool = True) -> "TemporalRenderer":
        super().train(mode)
        if self.vgg is not None:
            self.vgg.eval()
        return self

    # ---------------------------------------------------------------------------- forward
    def inputs(self, condition: torch.Tensor, reference: torch.Tensor, frame_index: torch.Tensor, offset=TPE_OFFSET):
        """The generator input (N, 19, R, R) from uint8 (N, R, R, 3) conditioning and reference images."""
        device = next(self.generator.parameters()).device
        size = self.resolution
        tpe = temporal_encoding(frame_index.reshape(-1).cpu(), size, self.frequencies, offset)
        return torch.cat([images_to_model(condition.to(device), size), images_to_model(reference.to(device), size),
                          tpe.to(device)], 1)

    def training_loss(self, batch: dict,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """G loss + D loss of one batch (see the module docstring: one backward trains both).

        ``batch``: default-collated :class:`RendererFrames` items: ``frame``, ``condition``, ``reference``
        (B, R, R, 3) uint8, ``frame_index`` (B,), ``mouth`` (B, R, R) uint8. `generator` is not used: nothing
        here is random.
        """
        w = self.config["loss"]
        device = next(self.generator.parameters()).device
        x = self.inputs(batch["condition"], batch["reference"], batch["frame_index"])
        real = images_to_model(batch["frame"].to(device), self.resolution)
        fake = self.generator(x)
        num_d = len(self.discriminator.nets)
        n_layers = len(self.discriminator.nets[0].layers) - 2

        # D: real and the detached fake through D's own parameters (gradients reach D only).
        pred_real = self.discriminator(torch.cat([x, real], 1))
        pred_fake_d = self.discriminator(torch.cat([x, fake.detach()], 1))
        d_real = sum(F.mse_loss(p[-1], torch.ones_like(p[-1])) for p in pred_real)
        d_fake = sum(F.mse_loss(p[-1], torch.zeros_like(p[-1])) for p in pred_fake_d)
        loss_d = D_REAL_WEIGHT * d_real + (1 - D_REAL_WEIGHT) * d_fake

        # G: the fake through detached copies of D's parameters (gradients reach G only).
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        pred_fake = torch.func.functional_call(self.discriminator, frozen, (torch.cat([x, fake], 1),))
        g_gan = float(w["gan"]) * sum(F.mse_loss(p[-1], torch.ones_like(p[-1])) for p in pred_fake)
        fm = fake.new_zeros(())
        if float(w["fm"]) > 0:  # all layers incl. the prediction (the release); 4/(n_layers+1) each, 1/num_D per scale
            per_layer = 4.0 / (n_layers + 1) / num_d
            fm = float(w["fm"]) * per_layer * sum(F.l1_loss(f, r.detach()) for pf, pr in zip(pred_fake, pred_real)
                                                  for f, r in zip(pf, pr))
        l1 = float(w["l1"]) * F.l1_loss(fake, real)
        mouth_l1 = fake.new_zeros(())
        if float(w["mouth_l1"]) > 0:  # mean absolute error over the mouth pixels only
            mask = batch["mouth"].to(device).float()[:, None]
            error = ((fake - real).abs() * mask).sum() / (mask.sum() * IMAGE_CHANNELS).clamp(min=1)
            mouth_l1 = float(w["mouth_l1"]) * error
        vgg = style = fake.new_zeros(())
        if self.vgg is not None:
            imagenet, gram_of = self.fixes["vgg_input"] == "imagenet", {"batch": batch_gram}.get(self.fixes["gram"], gram)
            target, taps = self.vgg(real, imagenet), self.vgg(fake, imagenet)  # VGG is frozen: no graph for `real`
            vgg = float(w["vgg"]) * sum(k * F.l1_loss(f, t) for k, f, t in zip(VGG_LAYER_WEIGHTS, taps, target))
            if float(w["style"]) > 0:
                style = float(w["style"]) * STYLE_GRAM_SCALE * sum(
                    k * F.mse_loss(gram_of(f.float()), gram_of(t.float()))
                    for k, f, t in zip(VGG_LAYER_WEIGHTS, taps, target))
        loss_g = g_gan + l1 + mouth_l1 + vgg + style + fm
        terms = {"g_gan": g_gan, "l1": l1, "mouth_l1": mouth_l1, "vgg": vgg, "style": style, "fm": fm,
                 "d_real": d_real, "d_fake": d_fake}
        return loss_g + loss_d, {k: float(v.detach()) for k, v in terms.items()}

    # ---------------------------------------------------------------------------- inference
    @torch.no_grad()
    def render(self, reference_frame: np.ndarray, landmarks: np.ndarray, torso: np.ndarray | None,
               frame_indices: Any, batch_size: int | None = None) -> np.ndarray:
        """Frames (T, S, S, 3) uint8 of the reference's person with the given meshes.

        Args:
            reference_frame: (S, S, 3) uint8 RGB crop: identity, background, clothes.
            landmarks: (T, 478, 2|3) MediaPipe meshes in pixels of the reference crop.
            torso: (T, 18, 2|3) shoulder points in the same pixels (:mod:`baselines.moda.torso`), or None.
            frame_indices: (T,) frame indices for the temporal encoding (as in training: the index in the clip).
            batch_size: frames per generator pass (default ``inference.batch_size``).

        With ``crop.face_scale`` the model sees the square of that many times the extent of the meshes'
        median face, and only that square, feathered at its edge, replaces the reference frame's pixels.
        """
        frame = np.asarray(reference_frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] != frame.shape[1]:
            raise ValueError("reference_frame must be a square RGB uint8 image (S, S, 3), "
                             f"got {frame.dtype} {frame.shape}")
        meshes = np.asarray(landmarks, dtype=np.float64)
        if meshes.ndim != 3 or meshes.shape[1] != 478 or meshes.shape[2] not in (2, 3):
            raise ValueError(f"landmarks must be (T, 478, 2|3) in pixels, got {meshes.shape}")
        count = len(meshes)
        shoulders = None if torso is None else np.asarray(torso, dtype=np.float64)
        if shoulders is not None and (shoulders.ndim != 3 or shoulders.shape[:2] != (count, 18)):
            raise ValueError(f"torso must be (T, 18, 2|3) with T = {count}, got {shoulders.shape}")
        indices = torch.as_tensor(np.asarray(frame_indices)).reshape(-1)
        if len(indices) != count:
            raise ValueError(f"frame_indices must have one index per mesh ({count}), got {len(indices)}")
        size, res = frame.shape[0], self.resolution
        crop = self.config["crop"]
        box = face_crop_box(meshes, float(crop["face_scale"])) if crop["face_scale"] else None
        view = crop_square(frame[None], box)[0] if box is not None else frame
        meshes = to_box(meshes[..., :2], box, res, frame.shape[:2])
        shoulders = None if shoulders is None else to_box(shoulders[..., :2], box, res, frame.shape[:2])
        weights = None
        if box is not None:  # 1 inside the box, 0 at its edge: the reference's own pixels around it
            x0, y0, side = box
            sigma = float(crop["feather"]) * side
            weights = feathered(np.array([[x0, y0, x0 + side, y0 + side]]), frame.shape[:2], sigma, grow=-3 * sigma)
        batch_size = int(batch_size or self.config["inference"]["batch_size"])
        was_training = self.training
        self.eval()
        try:
            reference = torch.from_numpy(np.ascontiguousarray(view))[None]
            out = []
            for start in range(0, count, batch_size):
                stop = min(count, start + batch_size)
                conditions = np.stack([
                    draw_condition(meshes[t], None if shoulders is None else shoulders[t], res, self.config["draw"])
                    for t in range(start, stop)])
                x = self.inputs(torch.from_numpy(conditions), reference.expand(stop - start, -1, -1, -1),
                                indices[start:stop], float(self.fixes["tpe_inference_offset"]))
                out.append(blend(to_frame(self.generator(x), frame, box), frame, weights))
        finally:
            self.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)


def _init_weights(module: nn.Module) -> None:
    """The release's init_net("normal", 0.02): conv weights N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, INIT_STD)
            nn.init.zeros_(m.bias)


def _validate(config: dict) -> None:
    """Raise ValueError naming the first problem: another model or stage, a missing or unknown key."""
    if (config.get("model"), config.get("stage")) != (MODEL_NAME, STAGE):
        raise ValueError(f"this is a config for model {config.get('model')!r} stage {config.get('stage')!r}, "
                         f"not {MODEL_NAME!r} stage {STAGE!r}")
    for key in ("resolution", *SCHEMA):
        if key not in config:
            raise ValueError(f"the renderer config lacks {key!r} (see baselines/moda/configs/tiny/renderer.yaml)")
    for section, keys in SCHEMA.items():
        given = config[section]
        if not isinstance(given, dict):
            raise ValueError(f"renderer config: {section!r} must be a mapping, got {given!r}")
        missing, unknown = sorted(set(keys) - set(given)), sorted(set(given) - set(keys))
        if missing or unknown:
            raise ValueError(f"renderer config section {section!r}: missing keys {missing}, unknown keys {unknown}")
    levels = int(config["generator"]["n_downsample"])
    if int(config["resolution"]) % 2**levels:
        raise ValueError(f"resolution {config['resolution']} must be divisible by "
                         f"2^generator.n_downsample = {2**levels}")
    if config["data"]["reference"] not in ("first", "random"):
        raise ValueError(f"data.reference must be 'first' or 'random', got {config['data']['reference']!r}")
    if not 0 < float(config["data"]["train_fraction"]) <= 1:
        raise ValueError(f"data.train_fraction must be in (0, 1], got {config['data']['train_fraction']}")
