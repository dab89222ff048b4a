"""DreamHead stage 1: audio-to-landmark (A2L) diffusion over windows of canonical dense landmarks.

Usage::

    from talking_head.baselines.dreamhead.a2l_diffusion import A2LDiffusion

    model = A2LDiffusion.from_pretrained("runs/dh/a2l")   # a `toolkit train dreamhead --stage a2l` run
    contexts = model.audio_contexts(wav)                  # 16 kHz float mono -> one context per video frame
    out = model.generate(contexts, mean_landmarks, seed=0)  # P-bar: (478, 3) canonical px
    out.landmarks                                         # (T, 478, 3) canonical landmarks

Design notes
------------

DreamHead (arXiv 2409.10281, Fig. 2a; docs/reference-models.md#a2l-diffusion) denoises a window of l frames of
dense landmarks P_t^[i-l:i] conditioned on the audio window A^[i-l:i] and the speaker's mean landmarks
P-bar, with a network ``Projection-In -> N x (Temporal Unit, Mapping Unit) -> Projection-Out``. Only the
figure and the abstract are known; everything else here is an assumption, named in the config files
(``configs/<name>/a2l.yaml``) with a reason each. In short:

* Landmarks: the dataset's ``canonical_landmarks`` (head pose removed, 512-px canonical units, see
  :mod:`toolkit.pose`), all 478 points or a subset (``landmarks.points``). The network works on
  ``x = (P - P_bar) / landmarks.scale``: the displacement from the speaker's mean.
* P-bar: the mean canonical mesh of the speaker over every frame of the speaker's *training* clips
  (:func:`speaker_means`); for a speaker without training clips (a new reference image) the canonical
  mesh of the reference frame stands in. It enters as ``(P_bar - CANONICAL_CENTRE) / CANONICAL_IOD``.
* Temporal Unit: self-attention over the l frames of the window. Mapping Unit: cross-attention from
  each landmark frame to the audio frames within ``network.align_radius`` of it (frame-by-frame
  alignment, as MODA's diagonal alignment mask with a little slack). Both units are DiT-style blocks whose
  LayerNorms are modulated (adaLN-Zero) by the diffusion step and the P-bar embedding.
* Diffusion: diffusers' ``DDPMScheduler`` for the training noise; ``DDIMScheduler`` or
  ``DPMSolverMultistepScheduler`` (built from the same config) for sampling with ``sampling.steps`` steps.
  The network predicts x0 (``prediction_type: sample``; epsilon and v are supported) under an L2 loss
  with the mouth points weighted up, plus an L2 loss on frame-to-frame velocities of x0 (MDM-style).
* Classifier-free guidance on audio: in training the audio features of a window are replaced by a
  learned null embedding with probability ``diffusion.audio_dropout``; sampling mixes
  ``uncond + s * (cond - uncond)`` with ``s = sampling.guidance_scale``. P-bar is never dropped.
* Audio of any length: windows of l frames start every l - ``sampling.overlap`` frames (the last one is
  aligned to the end), and each continues from the frames already generated. The network is trained
  for this: with probability ``diffusion.prefix_probability`` the first k (1 <= k < l) ground-truth
  frames of a training window are given as known frames (clean in place of their noisy values, and in an
  extra input channel with their mask); the loss covers the other frames and the step from the last
  known frame to the first generated one. At sampling, the shared frames but the last
  ``sampling.crossfade`` are given as known frames; over those last ones the output fades from the
  previous window to the new one (on the built-in sample the known frames alone leave a visible step at
  the joins: jerk there 1.4x the rest, 1.1x with a 4-frame fade).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head.baselines.checkpoint import PretrainedStage
from talking_head.baselines.dreamhead.audio_encoder import AudioEncoder, AudioFrontEnd, check_audio
from talking_head.toolkit import face_mesh
from talking_head.toolkit.pose import CANONICAL_CENTRE, CANONICAL_IOD

MODEL_NAME = "dreamhead"
STAGE = "a2l"
SAMPLERS = ("ddim", "dpm")
PREDICTION_TYPES = ("sample", "epsilon", "v_prediction")

EYES = tuple(sorted(set(face_mesh.RIGHT_EYE_UPPER + face_mesh.RIGHT_EYE_LOWER + face_mesh.LEFT_EYE_UPPER
                        + face_mesh.LEFT_EYE_LOWER + face_mesh.RIGHT_IRIS + face_mesh.LEFT_IRIS)))
POINT_SETS = {
    "all": tuple(range(face_mesh.NUM_POINTS)),
    "lips": face_mesh.LIPS,
    "lips_eyes": tuple(sorted(set(face_mesh.LIPS + EYES))),
}


def point_indices(points: str | Sequence[int]) -> tuple[int, ...]:
    """The mesh indices a config's ``landmarks.points`` names: a set name or a list of indices."""
    if isinstance(points, str):
        if points not in POINT_SETS:
            raise ValueError(f"landmarks.points must be one of {sorted(POINT_SETS)} or a list of indices, got {points!r}")
        return POINT_SETS[points]
    indices = tuple(int(i) for i in points)
    if not indices or len(set(indices)) != len(indices) or min(indices) < 0 or max(indices) >= face_mesh.NUM_POINTS:
        raise ValueError(f"landmarks.points: expected distinct indices in 0..{face_mesh.NUM_POINTS - 1}")
    return indices


# ------------------------------------------------------------------------------------------ network
def sinusoidal(positions: torch.Tensor, width: int) -> torch.Tensor:
    """Transformer sinusoidal embedding of (any shape) positions -> (..., width)."""
    half = width // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[..., None] * freqs
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class _Unit(nn.Module):
    """Pre-norm attention + MLP block with adaLN-Zero conditioning (DiT, Peebles & Xie 2023).

    The conditioning vector gives shift, scale and a residual gate for both halves; the gates start at
    zero so every unit starts as the identity. Self-attention when `context` is None, else cross-attention
    from the tokens to `context`.
    """

    def __init__(self, hidden: int, heads: int, ffn_mult: int, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False)
        self.attention = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(hidden, ffn_mult * hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn_mult * hidden, hidden))
        self.modulation = nn.Linear(hidden, 6 * hidden)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(cond))[:, None].chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1
        source = h if context is None else context
        x = x + gate1 * self.attention(h, source, source, attn_mask=mask, need_weights=False)[0]
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.mlp(h)


class TemporalUnit(_Unit):
    """Self-attention over the frames of the window: temporal smoothness and coherence."""

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, cond)


class MappingUnit(_Unit):
    """Audio-to-landmark cross-attention, frame t to audio frames t-r .. t+r only (the alignment mask)."""

    def __init__(self, hidden: int, heads: int, ffn_mult: int, dropout: float):
        super().__init__(hidden, heads, ffn_mult, dropout)
        self.norm_audio = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, audio: torch.Tensor,  # type: ignore[override]
                mask: torch.Tensor) -> torch.Tensor:
        return super().forward(x, cond, context=self.norm_audio(audio), mask=mask)


class A2LNetwork(nn.Module):
    """``Projection-In -> N x (Temporal Unit, Mapping Unit) -> Projection-Out`` (DreamHead Fig. 2a).

    Inputs per frame: the noisy displacement x_t (K*3), the known frames' values and their 0/1 mask
    (continuation). Conditioning vector: diffusion-step embedding + P-bar embedding.
    """

    def __init__(self, num_points: int, audio_encoder: str, audio_context: tuple[int, int], hidden: int,
                 layers: int, heads: int, ffn_mult: int, dropout: float, align_radius: int, audio_step_width: int):
        super().__init__()
        width = 3 * num_points
        self.hidden, self.align_radius = hidden, align_radius
        self.audio = AudioEncoder(audio_encoder, audio_context, hidden, audio_step_width)
        self.null_audio = nn.Parameter(torch.zeros(hidden))  # the "no audio" condition of CFG
        self.projection_in = nn.Linear(2 * width + 1, hidden)
        self.step_embedding = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.identity_embedding = nn.Sequential(nn.Linear(width, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.temporal = nn.ModuleList(TemporalUnit(hidden, heads, ffn_mult, dropout) for _ in range(layers))
        self.mapping = nn.ModuleList(MappingUnit(hidden, heads, ffn_mult, dropout) for _ in range(layers))
        self.norm_out = nn.LayerNorm(hidden, elementwise_affine=False)
        self.modulation_out = nn.Linear(hidden, 2 * hidden)
        self.projection_out = nn.Linear(hidden, width)
        for layer in (self.modulation_out, self.projection_out):  # the untrained network predicts 0
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def alignment_mask(self, frames: int, device: torch.device) -> torch.Tensor:
        """(T, T) bool, True where landmark frame i may NOT look at audio frame j (|i - j| > radius)."""
        index = torch.arange(frames, device=device)
        return (index[:, None] - index[None, :]).abs() > self.align_radius

    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor, audio: torch.Tensor, identity: torch.Tensor,
                known: torch.Tensor, known_mask: torch.Tensor, keep_audio: torch.Tensor) -> torch.Tensor:
        """x_t, known: (B, T, K*3); timesteps: (B,); audio: (B, T, L, D) contexts; identity: (B, K*3);
        known_mask: (B, T); keep_audio: (B,) bool (False: the null audio condition). Returns (B, T, K*3)."""
        frames = x_t.shape[1]
        positions = sinusoidal(torch.arange(frames, device=x_t.device), self.hidden)
        audio_tokens = self.audio(audio)
        audio_tokens = torch.where(keep_audio[:, None, None], audio_tokens, self.null_audio.to(audio_tokens.dtype))
        audio_tokens = audio_tokens + positions
        cond = self.step_embedding(sinusoidal(timesteps, self.hidden)) + self.identity_embedding(identity)
        h = self.projection_in(torch.cat([x_t, known * known_mask[..., None], known_mask[..., None]], dim=-1))
        h = h + positions
        mask = self.alignment_mask(frames, x_t.device)
        for temporal, mapping in zip(self.temporal, self.mapping):
            h = temporal(h, cond)
            h = mapping(h, cond, audio_tokens, mask)
        shift, scale = self.modulation_out(F.silu(cond))[:, None].chunk(2, dim=-1)
        return self.projection_out(self.norm_out(h) * (1 + scale) + shift)


# ------------------------------------------------------------------------------------------ model
@dataclasses.dataclass
class A2LOutput:
    """Generated landmarks of one clip: the full canonical mesh (T, 478, 3) (points the model does not
    generate hold P-bar), and the generated subset (T, K, 3)."""

    landmarks: np.ndarray
    points: np.ndarray


class A2LDiffusion(PretrainedStage, nn.Module):
    """DreamHead's audio-to-landmark diffusion: network, noise objective and samplers. See the module docstring."""

    MODEL_NAME, STAGE = MODEL_NAME, STAGE

    def __init__(self, config: dict):
        super().__init__()
        from diffusers import DDPMScheduler

        self.check_names(config)
        self.config = config
        lm, audio, net, diff = config["landmarks"], config["audio"], config["network"], config["diffusion"]
        self.fps = float(config["fps"])
        self.window = int(config["data"]["window"])
        self.points = point_indices(lm["points"])
        self.scale = float(lm["scale"])
        if diff["prediction_type"] not in PREDICTION_TYPES:
            raise ValueError(f"diffusion.prediction_type must be one of {PREDICTION_TYPES}")
        if float(config["loss"]["velocity_weight"]) > 0 and diff["prediction_type"] != "sample":
            raise ValueError("loss.velocity_weight applies to x0 and needs diffusion.prediction_type: sample")
        self.front_end = AudioFrontEnd(audio["encoder"], self.fps, int(audio["context_radius"]), audio["weights"],
                                       int(audio["feature_width"]))
        self.network = A2LNetwork(
            len(self.points), audio["encoder"], self.front_end.shape, int(net["hidden_size"]), int(net["layers"]),
            int(net["heads"]), int(net["ffn_mult"]), float(net["dropout"]), int(net["align_radius"]),
            int(net["audio_step_width"]),
        )
        self.noise_scheduler = DDPMScheduler(
            num_train_timesteps=int(diff["train_timesteps"]), beta_schedule=diff["beta_schedule"],
            prediction_type=diff["prediction_type"], clip_sample=False,
        )
        weights = torch.ones(len(self.points), 3)
        mouth = [i for i, p in enumerate(self.points) if p in set(face_mesh.LIPS)]
        weights[mouth] = float(config["loss"]["mouth_weight"])
        self.register_buffer("point_weights", (weights / weights.mean()).flatten(), persistent=False)

    @classmethod
    def from_config(cls, config: dict) -> "A2LDiffusion":
        return cls(config)

    # ------------------------------------------------------------------------- representation
    def normalize(self, landmarks: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """(B, T, K, 3) canonical px and (B, K, 3) P-bar -> (B, T, K*3) scaled displacements."""
        return ((landmarks - mean[:, None]) / self.scale).flatten(-2)

    def denormalize(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, 3)) * self.scale + mean[:, None]

    def identity(self, mean: torch.Tensor) -> torch.Tensor:
        centre = torch.tensor(CANONICAL_CENTRE, dtype=mean.dtype, device=mean.device)
        return ((mean - centre) / CANONICAL_IOD).flatten(-2)

    # ------------------------------------------------------------------------- training
    def training_loss(self, batch: dict, generator: torch.Generator | None = None):
        """Noise-prediction loss on a batch of windows: ``landmarks`` (B, T, K, 3) canonical px,
        ``mean_landmarks`` (B, K, 3), ``audio`` (B, T, L, D). Returns (loss, {"mse", "velocity"})."""
        diff, loss_cfg = self.config["diffusion"], self.config["loss"]
        x0 = self.normalize(batch["landmarks"], batch["mean_landmarks"])
        batch_size, frames, _ = x0.shape
        device = x0.device
        noise = torch.randn(x0.shape, generator=generator, device=device, dtype=x0.dtype)
        timesteps = torch.randint(0, self.noise_scheduler.config.num_train_timesteps, (batch_size,),
                                  generator=generator, device=device)
        x_t = self.noise_scheduler.add_noise(x0, noise, timesteps)
        keep_audio = torch.rand(batch_size, generator=generator, device=device) >= float(diff["audio_dropout"])
        with_prefix = torch.rand(batch_size, generator=generator, device=device) < float(diff["prefix_probability"])
        prefix = torch.randint(1, frames, (batch_size,), generator=generator, device=device) * with_prefix
        known_mask = (torch.arange(frames, device=device)[None] < prefix[:, None]).to(x0.dtype)
        x_t = torch.where(known_mask[..., None] > 0, x0, x_t)  # known frames are given clean, as in sampling

        pred = self.network(x_t, timesteps, batch["audio"], self.identity(batch["mean_landmarks"]), x0, known_mask,
                            keep_audio)
        if diff["prediction_type"] == "sample":
            target = x0
        elif diff["prediction_type"] == "epsilon":
            target = noise
        else:
            target = self.noise_scheduler.get_velocity(x0, noise, timesteps)
        free = 1.0 - known_mask  # the loss covers the frames the network has to make
        mse = (((pred - target) ** 2 * self.point_weights).mean(-1) * free).sum() / free.sum().clamp_min(1.0)
        loss = mse
        terms = {"mse": float(mse.detach())}
        if float(loss_cfg["velocity_weight"]) > 0:
            # on the sequence sampling returns (known frames as given): the step from the last known frame
            # to the first generated one is a velocity too, and it is what makes windows join smoothly
            sequence = torch.where(known_mask[..., None] > 0, x0, pred)
            pairs = 1.0 - known_mask[:, 1:] * known_mask[:, :-1]
            vel = ((torch.diff(sequence, dim=1) - torch.diff(x0, dim=1)) ** 2 * self.point_weights).mean(-1)
            velocity = (vel * pairs).sum() / pairs.sum().clamp_min(1.0)
            loss = loss + float(loss_cfg["velocity_weight"]) * velocity
            terms["velocity"] = float(velocity.detach())
        return loss, terms

    # ------------------------------------------------------------------------- sampling
    def make_sampler(self, sampler: str):
        """A DDIM or DPM-Solver++ scheduler with the training noise schedule."""
        from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        cls = DDIMScheduler if sampler == "ddim" else DPMSolverMultistepScheduler
        return cls.from_config(self.noise_scheduler.config)

    @torch.no_grad()
    def sample(self, audio: torch.Tensor, mean: torch.Tensor, known: torch.Tensor | None = None,
               known_frames: int = 0, *, steps: int | None = None, sampler: str | None = None,
               guidance_scale: float | None = None, eta: float = 0.0,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Denoise one batch of windows. audio: (B, T, L, D) contexts; mean: (B, K, 3) P-bar; known:
        (B, T, K, 3) canonical px whose first `known_frames` frames are kept. Returns (B, T, K, 3).

        Defaults come from the config's ``sampling`` section.
        """
        cfg = self.config["sampling"]
        steps = int(steps if steps is not None else cfg["steps"])
        guidance = float(guidance_scale if guidance_scale is not None else cfg["guidance_scale"])
        sampler = sampler or cfg["sampler"]
        scheduler = self.make_sampler(sampler)
        if not 1 <= steps <= scheduler.config.num_train_timesteps:
            raise ValueError(f"steps must be in 1..{scheduler.config.num_train_timesteps}, got {steps}")
        device = next(self.parameters()).device
        audio, mean = audio.to(device), mean.to(device)
        batch_size, frames = audio.shape[:2]
        width = 3 * len(self.points)
        known_x = (torch.zeros(batch_size, frames, width, device=device) if known is None
                   else self.normalize(known.to(device), mean))
        known_mask = (torch.arange(frames, device=device)[None] < known_frames).float().expand(batch_size, -1)
        identity = self.identity(mean)

        # 1. start from pure noise at the scheduler's initial scale
        scheduler.set_timesteps(steps, device=device)
        x = torch.randn(batch_size, frames, width, generator=generator, device=device) * scheduler.init_noise_sigma
        keep = torch.ones(batch_size, dtype=torch.bool, device=device)
        for t in scheduler.timesteps:
            # 2. predict with and without audio (classifier-free guidance) in one batch
            x = torch.where(known_mask[..., None] > 0, known_x, x)  # known frames clean, as in training
            x_in = scheduler.scale_model_input(x, t)
            timesteps = t.expand(batch_size).to(device)
            if guidance != 1.0:
                pred_both = self.network(torch.cat([x_in, x_in]), torch.cat([timesteps, timesteps]),
                                         torch.cat([audio, audio]), torch.cat([identity, identity]),
                                         torch.cat([known_x, known_x]), torch.cat([known_mask, known_mask]),
                                         torch.cat([keep, ~keep]))
                cond, uncond = pred_both.chunk(2)
                pred = uncond + guidance * (cond - uncond)
            else:
                pred = self.network(x_in, timesteps, audio, identity, known_x, known_mask, keep)
            # 3. one reverse step x_t -> x_{t-1}
            extra = {"eta": eta} if sampler == "ddim" else {}  # DPM-Solver has no eta
            x = scheduler.step(pred, t, x, generator=generator, **extra).prev_sample
        # 4. back to canonical px; the known frames are kept exactly (not through the scaling round trip)
        out = self.denormalize(x, mean)
        if known is not None:
            out = torch.where(known_mask[..., None, None] > 0, known.to(device=device, dtype=out.dtype), out)
        return out

    def window_starts(self, num_frames: int, overlap: int) -> list[int]:
        """Window starts covering num_frames: every window - overlap frames, the last aligned to the end."""
        if not 0 <= overlap < self.window:
            raise ValueError(f"overlap must be in 0..{self.window - 1}, got {overlap}")
        if num_frames < self.window:
            raise ValueError(f"{num_frames} frames is shorter than one window ({self.window} frames)")
        hop = self.window - overlap
        starts = list(range(0, num_frames - self.window + 1, hop))
        if starts[-1] + self.window < num_frames:
            starts.append(num_frames - self.window)
        return starts

    @torch.no_grad()
    def generate(self, audio: np.ndarray | torch.Tensor, mean_landmarks: np.ndarray, *, overlap: int | None = None,
                 crossfade: int | None = None, steps: int | None = None, sampler: str | None = None,
                 guidance_scale: float | None = None, seed: int = 0) -> A2LOutput:
        """Landmarks for audio of any length: audio contexts (T, L, D) (:meth:`audio_contexts`), P-bar
        (478, 3) canonical px.

        Consecutive windows share `overlap` frames. Of the frames a window shares with those already made,
        all but the last `crossfade` are given to it as known frames (kept exactly); over the last
        `crossfade` shared frames the output fades linearly from the previous window's frames to this
        window's, so windows join without a step (the sample's per-frame variation is not carried across
        windows by the known frames alone). Defaults: the config's ``sampling`` section.
        """
        cfg = self.config["sampling"]
        contexts = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        num_frames = contexts.shape[0]
        overlap = int(overlap if overlap is not None else cfg["overlap"])
        crossfade = int(crossfade if crossfade is not None else cfg["crossfade"])
        if not 0 <= crossfade <= overlap:
            raise ValueError(f"crossfade must be in 0..overlap ({overlap}), got {crossfade}")
        mean_full = np.asarray(mean_landmarks, dtype=np.float32)
        if mean_full.shape != (face_mesh.NUM_POINTS, 3):
            raise ValueError(f"mean landmarks must be (478, 3), got {mean_full.shape}")
        mean = torch.from_numpy(mean_full[list(self.points)])[None]
        generator = torch.Generator(device=next(self.parameters()).device).manual_seed(seed)
        out = torch.zeros(num_frames, len(self.points), 3)
        done = 0  # frames made so far
        for start in self.window_starts(num_frames, overlap):
            stop = start + self.window
            shared = done - start  # frames of this window made by the previous ones (0 for the first)
            fade = min(crossfade, shared)
            known = shared - fade
            window = self.sample(contexts[start:stop][None], mean, out[start:stop][None], known_frames=known,
                                 steps=steps, sampler=sampler, guidance_scale=guidance_scale,
                                 generator=generator)[0].float().cpu()
            if fade:
                new_share = torch.arange(1, fade + 1, dtype=torch.float32)[:, None, None] / (fade + 1)
                faded = slice(start + known, start + shared)
                out[faded] = (1 - new_share) * out[faded] + new_share * window[known:shared]
            out[start + shared:stop] = window[shared:]
            done = stop
        points = out.numpy()
        full = np.repeat(mean_full[None], num_frames, axis=0)
        full[:, list(self.points)] = points
        return A2LOutput(landmarks=full, points=points)

    def audio_contexts(self, wav: np.ndarray, source: str | Path = "audio", num_frames: int | None = None,
                       mel: np.ndarray | None = None) -> np.ndarray:
        """Check 16 kHz float `wav` (long enough for one window, not silent) and compute its per-frame
        contexts; `num_frames` defaults to the audio's length in frames."""
        check_audio(wav, source, self.window, self.fps)
        if num_frames is None:
            num_frames = int(round(len(wav) * self.fps / 16000))
        return self.front_end(wav, num_frames, mel=mel)
