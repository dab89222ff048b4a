"""MODA stage 1: the MODA network. Audio + the speaker's mean mesh -> lip, eye, head and torso motion of
every frame in one forward pass ("mapping once"), through the dual attention (docs/reference-models.md#moda-network).

Usage::

    from talking_head.baselines.moda.moda_net import MODANet, clip_subjects

    model = MODANet.from_pretrained("runs/moda/motion")   # a `toolkit train moda --stage motion` run
    clips, subjects = clip_subjects("data/sample")        # each speaker's means, by speaker id
    motions = model.generate(wav, subjects[speaker], num_samples=2, seed=0)  # 16 kHz float mono
    motions[0].lips, motions[0].pose, motions[0].torso    # (T, 40, 3), (T, 7), (T, 18, 3)

Design notes
------------

::

    s_a = AudioHead(audio)                      (B, T, d)   per-frame audio features
    v_s = SubjectHead(mean mesh)                (B, d)      tiled over time
    a   = AlignedDecoder(PPE(s_a + v_s), s_a)   (B, T, d)   biased causal self-attention, diagonal audio mask
    p   = TemporalVAE(s_a, v_s)                 (B, T, d)   the probabilistic branch
    lips, eyes, head, torso = Heads([a, p])     40x3, 60x3, 7, 18x3 displacements from the speaker's means

* Audio (``audio.encoder``): ``wav2vec2`` is MODA's: wav2vec 2.0 base (registry entry ``wav2vec2-base-960h``),
  its CNN frozen and its transformer trained; the CNN's 50 Hz features are linearly interpolated to the
  video frame rate *before* the feature projection and the transformer (FaceFormer's trick). ``mel``
  is the weight-free alternative: each frame's context of Wav2Lip log-mel frames
  (:func:`baselines.audio.mel_contexts`, the frames k-r..k+r).
* Aligned decoder ("SpecAttn"): FaceFormer's periodic positional encoding (period ``network.period``)
  and its ALiBi-style biased causal mask (key j <= query i only, bias -slope * floor((i - j) / period),
  one head's slope shared by all heads as MODA does), memory = the audio features under the diagonal
  alignment mask (frame t reads audio frame t only).
* Temporal VAE ("ProbAttn"): transformer encoder -> mu, logvar -> z -> transformer decoder with the tiled
  subject code + audio as its queries.

Three release defects (docs/reference-models.md#release-defects): ``faithful_to_release: false`` (default) fixes them and
``true`` reproduces them, so both can be trained and compared:

==================  ===========================================  ============================================
                    release (``faithful_to_release: true``)      fixed (``false``)
==================  ===========================================  ============================================
KL term             none (mu, logvar unused; sigma free to       ``loss.kl`` * KL(q || N(0, I)); the
                    shrink to 0, so samples stop differing)      encoder also sees the target head and torso
                                                                 motion in training (a conditional VAE's
                                                                 posterior), inference samples z ~ N(0, I)
t-VAE mask          float 0/1 upper triangle *added* to the      boolean causal masks: frame t sees frames
                    decoder's self-attention logits: the future  <= t (encoder, self-attention and z)
                    is not blocked; the encoder is unmasked
t-VAE position      ``pe[:B]`` on batch-first input: a constant  sinusoidal encoding of the frame index
                    per batch element, no temporal signal
==================  ===========================================  ============================================

The other fixes over the release are switches of the config's ``fixes`` section (:mod:`baselines.moda.release`:
dropout, SpecAugment, the torso loss, per-clip means), all at the release's value with ``faithful_to_release``.

Why the posterior sees only head and torso motion: those are what the audio does not determine (the point
of sampling several motions per audio); lips stay with the audio, so samples differ in head motion while
their lips agree. Targets are displacements divided by fixed units (``targets``) so the loss weights of
MODA's code (lips 5, eyes 1, head 1, torso 1; velocities 5, 1, 1, 0.5) act on comparable numbers.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter1d
from torch import nn

from talking_head.baselines import checkpoint
from talking_head.baselines.audio import check_audio
from talking_head.baselines.moda.data import Clip, Subject, load_clips, point_sets, subjects
from talking_head.baselines.moda import motion_data, release
from talking_head.baselines.moda.motion_data import AudioInput
from talking_head.toolkit.audio_features import MAX_ABS_VALUE, SAMPLE_RATE
from talking_head.toolkit.pose import CANONICAL_CENTRE, CANONICAL_IOD
from talking_head.toolkit import face_mesh

MODEL_NAME = "moda"
STAGE = "motion"
AUDIO_ENCODERS = ("mel", "wav2vec2")
HEADS = ("lips", "eyes", "head", "torso")


def mlp(sizes: list[int], batch_norm: bool = True) -> nn.Sequential:
    """MODA's MLP: Linear (+ BatchNorm) + LeakyReLU(0.2) between layers, a plain Linear at the end."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(_FrameBatchNorm(b))
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class _FrameBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the last axis of (..., C): every frame of every window is one sample."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return super().forward(x.reshape(-1, shape[-1])).reshape(shape)


def sinusoidal_table(length: int, width: int) -> torch.Tensor:
    """(length, width) transformer sinusoidal encoding (sin on even, cos on odd channels)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    table = torch.zeros(length, width)
    table[:, 0::2] = torch.sin(position * div)
    table[:, 1::2] = torch.cos(position * div)
    return table


def periodic_encoding(frames: int, width: int, period: int) -> torch.Tensor:
    """FaceFormer's periodic positional encoding: the sinusoidal table of one period, repeated."""
    return sinusoidal_table(period, width).repeat(math.ceil(frames / period), 1)[:frames]


def alibi_slopes(heads: int) -> list[float]:
    """ALiBi's head slopes (Press et al.; FaceFormer's ``get_slopes``)."""
    def power_of_two(n: int) -> list[float]:
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]

    if math.log2(heads).is_integer():
        return power_of_two(heads)
    closest = 2 ** math.floor(math.log2(heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: heads - closest]


def biased_causal_mask(frames: int, period: int, heads: int = 1) -> torch.Tensor:
    """(heads, T, T) additive mask: -inf for keys after the query, else -slope * floor((i - j) / period)."""
    i = torch.arange(frames)[:, None]
    j = torch.arange(frames)[None, :]
    distance = torch.div(i - j, period, rounding_mode="floor").float()
    slopes = torch.tensor(alibi_slopes(heads))[:, None, None]
    bias = -slopes * distance
    return bias.masked_fill((j > i)[None], float("-inf"))


def diagonal_mask(frames: int) -> torch.Tensor:
    """(T, T) bool, True where frame i may not read audio frame j (j != i): the alignment mask."""
    return ~torch.eye(frames, dtype=torch.bool)


def causal_mask(frames: int) -> torch.Tensor:
    """(T, T) bool, True above the diagonal: frame i sees frames <= i."""
    return torch.ones(frames, frames, dtype=torch.bool).triu(1)


def release_tvae_mask(frames: int) -> torch.Tensor:
    """The release's t-VAE "autoregressive" mask: a float 0/1 upper triangle, *added* to the logits."""
    return torch.ones(frames, frames).triu(1)


# ------------------------------------------------------------------------------------------ network
class AudioHead(nn.Module):
    """Audio -> (B, T, d). ``mel``: contexts (B, T, L, 80) flattened into MODA's 2-layer MLP head.
    ``wav2vec2``: raw 16 kHz windows (B, S) through wav2vec 2.0 (CNN frozen), then the MLP head."""

    def __init__(self, encoder: str, context: tuple[int, int], hidden: int, weights: str | None,
                 spec_augment: bool = False):
        super().__init__()
        self.encoder, self.spec_augment = encoder, spec_augment
        if encoder == "wav2vec2":
            self.speech = load_wav2vec2(weights, keep_mask_embedding=spec_augment)
            width = int(self.speech.config.hidden_size)
        else:
            self.speech = None
            width = context[0] * context[1]
        self.head = mlp([width, hidden, hidden])

    def forward(self, audio: torch.Tensor, frames: int) -> torch.Tensor:
        if self.speech is None:
            return self.head(audio.flatten(-2) / MAX_ABS_VALUE)
        speech = self.speech
        # zero mean, unit variance per window (Wav2Vec2Processor's normalisation)
        audio = (audio - audio.mean(-1, keepdim=True)) / torch.sqrt(audio.var(-1, keepdim=True) + 1e-7)
        with torch.no_grad():  # the CNN is frozen
            features = speech.feature_extractor(audio)  # (B, 512, T50)
        features = F.interpolate(features, size=frames, mode="linear", align_corners=True).transpose(1, 2)
        hidden = speech.feature_projection(features)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        if self.spec_augment and self.training:  # fixes.spec_augment: the release's time masking
            hidden = release.spec_augment(hidden, speech.masked_spec_embed, speech.config)
        return self.head(speech.encoder(hidden).last_hidden_state)


def load_wav2vec2(weights: str | None, keep_mask_embedding: bool = False) -> nn.Module:
    """wav2vec 2.0 from the registry (verified there), its convolutional feature encoder frozen; SpecAugment's
    learned mask embedding is kept only for ``fixes.spec_augment``."""
    import transformers

    from talking_head.toolkit import weights as registry

    entry = registry.get(weights or "wav2vec2-base-960h")
    registry.require(entry)
    check = registry.verify(entry)
    model = transformers.Wav2Vec2Model.from_pretrained(
        registry.path(entry), local_files_only=True, use_safetensors=check.path.suffix == ".safetensors")
    model.feature_extractor._freeze_parameters()
    if not keep_mask_embedding:  # unused without SpecAugment (the encoder is called directly)
        model.masked_spec_embed = None
    return model


class AlignedDecoder(nn.Module):
    """SpecAttn: a transformer decoder over PPE(s_a + v_s) with the biased causal mask, reading the audio
    through the diagonal alignment mask."""

    def __init__(self, hidden: int, heads: int, layers: int, ffn: int, period: int, dropout: float = 0.0):
        super().__init__()
        self.heads, self.period, self.hidden, self.dropout = heads, period, hidden, dropout
        layer = nn.TransformerDecoderLayer(hidden, heads, ffn, dropout=dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)

    def forward(self, audio: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        batch, frames, _ = audio.shape
        ppe = periodic_encoding(frames, self.hidden, self.period).to(audio)
        # MODA computes the mask for one head and replicates it for all heads
        mask = biased_causal_mask(frames, self.period, 1).to(audio).repeat(batch * self.heads, 1, 1)
        queries = audio + subject[:, None] + ppe
        if self.dropout:  # the release's PPE dropout (fixes.dropout); skipped at 0 so no random number is drawn
            queries = F.dropout(queries, self.dropout, self.training)
        return self.decoder(queries, audio, tgt_mask=mask, memory_mask=diagonal_mask(frames).to(audio.device))


class TemporalVAE(nn.Module):
    """ProbAttn: the temporal VAE branch (see the module docstring for the release/fixed differences)."""

    def __init__(self, hidden: int, heads: int, layers: int, ffn: int, posterior_width: int, release: bool,
                 dropout: float = 0.0):
        super().__init__()
        self.hidden, self.release, self.dropout = hidden, release, dropout
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(hidden, heads, ffn, dropout=dropout,
                                                                        batch_first=True), layers)
        self.mu, self.logvar = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)
        self.from_z = nn.Linear(hidden, hidden)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(hidden, heads, ffn, dropout=dropout,
                                                                        batch_first=True), layers)
        self.out = nn.Linear(hidden, hidden)
        # fixed: the posterior reads the target head and torso motion
        self.motion_in = None if release else nn.Linear(posterior_width, hidden)

    def position(self, batch: int, frames: int, device) -> torch.Tensor:
        if self.release:  # pe[:B] on (B, T, d): one vector per batch element, the same for every frame
            return sinusoidal_table(batch, self.hidden).to(device)[:, None].expand(batch, frames, self.hidden)
        return sinusoidal_table(frames, self.hidden).to(device)[None].expand(batch, frames, self.hidden)

    def forward(self, audio: torch.Tensor, subject: torch.Tensor, motion: torch.Tensor | None,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Returns (features (B, T, d), mu, logvar); mu/logvar None when sampling from the prior."""
        batch, frames, _ = audio.shape
        embedded = self.position(batch, frames, audio.device) + subject[:, None]
        if self.dropout:  # the release's PE dropout, on position + subject before the audio is added
            embedded = F.dropout(embedded, self.dropout, self.training)
        queries = embedded + audio
        if self.release:  # the additive 0/1 mask on the decoder's self-attention only; the encoder is unmasked
            mask = release_tvae_mask(frames).to(audio)
            memory_mask = None
        else:
            mask = memory_mask = causal_mask(frames).to(audio.device)
        noise = torch.randn(batch, frames, self.hidden, generator=generator, device=audio.device, dtype=audio.dtype)
        mu = logvar = None
        if self.release or motion is not None:
            source = queries if self.release else queries + self.motion_in(motion)
            h = self.encoder(source, mask=None if self.release else mask)
            mu, logvar = self.mu(h), self.logvar(h)
            z = mu + torch.exp(0.5 * logvar) * noise
        else:  # the fixed model's prior
            z = noise
        h = self.decoder(queries, self.from_z(z), tgt_mask=mask, memory_mask=memory_mask)
        return self.out(h), mu, logvar


class MODANetwork(nn.Module):
    """Audio head, subject head, dual attention and the four heads (docs/reference-models.md#moda-network)."""

    def __init__(self, config: dict, audio_context: tuple[int, int]):
        super().__init__()
        net, sizes = config["network"], point_sets()
        hidden, heads, layers, ffn = (int(net[k]) for k in ("hidden_size", "heads", "layers", "ffn_size"))
        is_release, switches = bool(config["faithful_to_release"]), release.fixes(config)
        dropout = float(switches["dropout"])
        self.audio = AudioHead(config["audio"]["encoder"], audio_context, hidden, config["audio"]["weights"],
                               bool(switches["spec_augment"]))
        self.subject = mlp([face_mesh.NUM_POINTS * 3, hidden, hidden, hidden])
        self.aligned = AlignedDecoder(hidden, heads, layers, ffn, int(net["period"]), dropout)
        self.tvae = TemporalVAE(hidden, heads, layers, ffn, 7 + 18 * 3, is_release, dropout)
        self.heads = nn.ModuleDict({
            "lips": mlp([2 * hidden, 512, len(sizes["lips"]) * 3]),
            "eyes": mlp([2 * hidden, 256, 256, len(sizes["eyes"]) * 3]),
            "head": mlp([2 * hidden, 256, 256, 7]),
            "torso": mlp([2 * hidden, 256, 256, 18 * 3]),
        })

    def forward(self, audio: torch.Tensor, frames: int, subject: torch.Tensor, motion: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor | None]:
        s_a = self.audio(audio, frames)
        v_s = self.subject(subject)
        aligned = self.aligned(s_a, v_s)
        probabilistic, mu, logvar = self.tvae(s_a, v_s, motion, generator)
        s_t = torch.cat([aligned, probabilistic], dim=-1)
        out: dict[str, torch.Tensor | None] = {name: head(s_t) for name, head in self.heads.items()}
        out["mu"], out["logvar"] = mu, logvar
        return out


# ------------------------------------------------------------------------------------------ model
@dataclasses.dataclass
class Motion:
    """Generated motion of one clip, absolute (means added back). ``mesh``: (T, 478, 3) canonical, the
    speaker's mean mesh with the generated lips and eyes in place (FaCo-Net composes the rest)."""

    lips: np.ndarray  # (T, 40, 3) canonical
    eyes: np.ndarray  # (T, 60, 3) canonical
    pose: np.ndarray  # (T, 7)
    torso: np.ndarray  # (T, 18, 3) crop px
    mesh: np.ndarray


class MODANet(checkpoint.PretrainedStage, nn.Module):
    """The MODA network as a trainable stage: targets, loss, save/load and generation."""

    MODEL_NAME, STAGE = MODEL_NAME, STAGE

    def __init__(self, config: dict):
        super().__init__()
        self.check_names(config)
        audio = config["audio"]
        if audio["encoder"] not in AUDIO_ENCODERS:
            raise ValueError(f"audio.encoder must be one of {AUDIO_ENCODERS}, got {audio['encoder']!r}")
        self.config = config
        self.fps = float(config["fps"])
        self.window = int(config["data"]["window"])
        self.audio_input = AudioInput(config)
        self.network = MODANetwork(config, self.audio_input.front_end.shape)
        targets = config["targets"]
        self.register_buffer("head_units", torch.tensor(targets["head_units"], dtype=torch.float32), persistent=False)
        self.mesh_scale, self.torso_scale = float(targets["mesh_scale"]), float(targets["torso_scale"])
        sets = point_sets()
        self.lips, self.eyes = list(sets["lips"]), list(sets["eyes"])

    @classmethod
    def from_config(cls, config: dict) -> "MODANet":
        return cls(config)


    # ------------------------------------------------------------------------- representation
    def subject_code(self, mesh: torch.Tensor) -> torch.Tensor:
        """(B, 478, 3) canonical mean mesh -> (B, 1434), centred and in inter-ocular units."""
        centre = torch.tensor(CANONICAL_CENTRE, dtype=mesh.dtype, device=mesh.device)
        return ((mesh - centre) / CANONICAL_IOD).flatten(-2)

    # ------------------------------------------------------------------------- training
    def training_loss(self, batch: dict, generator: torch.Generator | None = None):
        """MODA's loss: weighted MSE of the four heads + L1 of their velocities (+ the KL term when fixed)."""
        weights, velocity = self.config["loss"]["weights"], self.config["loss"]["velocity"]
        frames = batch["lips"].shape[1]
        motion = None if self.config["faithful_to_release"] else torch.cat(
            [batch["head"], batch["torso"].flatten(-2)], dim=-1)
        out = self.network(batch["audio"], frames, self.subject_code(batch["mesh"]), motion, generator)
        loss, terms = batch["lips"].new_zeros(()), {}
        torso_release = release.fixes(self.config)["torso_loss"] == "release"
        for name in HEADS:
            pred, target = out[name], batch[name].flatten(2)
            valid = batch["torso_valid"][:, None, None].to(pred) if name == "torso" else torch.ones_like(pred[:, :1, :1])
            count = (valid.expand_as(pred)).sum().clamp_min(1.0)
            mse = (((pred - target) ** 2) * valid).sum() / count
            if name == "torso" and torso_release:  # fixes.torso_loss: MaskedMSELoss's extra 1/D, velocity unmasked
                mse, valid = release.masked_mse(pred, target, batch["torso_valid"].to(pred), True), torch.ones_like(valid)
            vel_count = (valid.expand_as(pred[:, 1:])).sum().clamp_min(1.0)
            vel = ((torch.diff(pred, dim=1) - torch.diff(target, dim=1)).abs() * valid).sum() / vel_count
            loss = loss + float(weights[name]) * mse + float(velocity[name]) * vel
            terms[name] = float(mse.detach())
            terms[f"{name}_velocity"] = float(vel.detach())
        if not self.config["faithful_to_release"]:
            mu, logvar = out["mu"], out["logvar"]
            kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(-1).mean()
            loss = loss + float(self.config["loss"]["kl"]) * kl
            terms["kl"] = float(kl.detach())
        return loss, terms

    # ------------------------------------------------------------------------- generation
    @torch.no_grad()
    def predict(self, audio: torch.Tensor, frames: int, mesh: torch.Tensor,
                generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One window: (B, ...) audio input for `frames` frames and (B, 478, 3) mean meshes -> the four heads'
        outputs in target units (B, T, ·)."""
        out = self.network(audio, frames, self.subject_code(mesh), None, generator)
        return {name: out[name] for name in HEADS}

    def window_starts(self, num_frames: int) -> list[int]:
        """Windows of ``data.window`` frames every half window (MODA's 50% overlap), the last one at the end."""
        if num_frames <= self.window:
            return [0]
        hop = self.window // 2
        starts = list(range(0, num_frames - self.window + 1, hop))
        if starts[-1] + self.window < num_frames:
            starts.append(num_frames - self.window)
        return starts

    @torch.no_grad()
    def generate(self, wav: np.ndarray, subject: Subject, *, num_frames: int | None = None,
                 mel: np.ndarray | None = None, num_samples: int = 1, seed: int = 0,
                 source: str = "audio") -> list[Motion]:
        """Motion for 16 kHz float `wav` of any length: `num_samples` samples (t-VAE draws seeded by
        (seed, sample)). Long audio runs in windows with 50% overlap, blended with linear weights (MODA
        averages the overlapping halves; linear weights leave no step where a window ends), then each
        output is smoothed in time with the config's Gaussian sigmas (``smoothing``, in frames)."""
        from talking_head.baselines.training import derive_seed

        check_audio(wav, source, 1, self.fps)
        if num_frames is None:
            num_frames = int(round(len(wav) * self.fps / SAMPLE_RATE))
        device = next(self.parameters()).device
        audio = self.audio_input(wav, num_frames, mel)
        mesh = torch.from_numpy(np.asarray(subject.mesh, np.float32))[None].to(device)
        starts = self.window_starts(num_frames)
        length = min(self.window, num_frames)
        ramp = np.minimum(np.arange(1, length + 1), np.arange(length, 0, -1)).astype(np.float64)
        results = []
        for sample in range(num_samples):
            generator = torch.Generator(device=device).manual_seed(derive_seed(seed, sample))
            sums = {name: 0.0 for name in HEADS}
            total = np.zeros(num_frames)
            for start in starts:
                piece = self.audio_input.window(audio, start, length)
                out = self.predict(torch.from_numpy(piece)[None].to(device), length, mesh, generator)
                weight = ramp if len(starts) > 1 else np.ones(length)
                for name in HEADS:
                    values = np.zeros((num_frames, out[name].shape[-1]))
                    values[start:start + length] = out[name][0].double().cpu().numpy() * weight[:, None]
                    sums[name] = sums[name] + values
                total[start:start + length] += weight
            results.append(self._absolute({name: sums[name] / total[:, None] for name in HEADS}, subject))
        return results

    def _absolute(self, out: dict[str, np.ndarray], subject: Subject) -> Motion:
        """Target units -> smoothed absolute lips, eyes, pose and shoulders."""
        sigma = self.config["smoothing"]
        units = self.head_units.cpu().numpy().astype(np.float64)

        def smooth(x: np.ndarray, s: float) -> np.ndarray:
            return gaussian_filter1d(x, float(s), axis=0, mode="nearest") if float(s) > 0 else x

        lips = smooth(out["lips"], sigma["lips"]).reshape(-1, 40, 3) * self.mesh_scale + subject.mesh[self.lips]
        eyes = smooth(out["eyes"], sigma["eyes"]).reshape(-1, 60, 3) * self.mesh_scale + subject.mesh[self.eyes]
        head = out["head"] * units
        head = np.concatenate([smooth(head[:, :3], sigma["head_rotation"]),
                               smooth(head[:, 3:], sigma["head_translation"])], axis=1) + subject.pose
        torso = smooth(out["torso"], sigma["torso"]).reshape(-1, 18, 3) * self.torso_scale + subject.torso
        torso[..., 2] = 0.0  # the shoulders have no depth (baselines/moda/torso.py)
        mesh = np.repeat(subject.mesh[None], len(lips), axis=0).astype(np.float64)
        mesh[:, self.lips], mesh[:, self.eyes] = lips, eyes
        return Motion(lips=lips.astype(np.float32), eyes=eyes.astype(np.float32), pose=head.astype(np.float32),
                      torso=torso.astype(np.float32), mesh=mesh.astype(np.float32))


# ------------------------------------------------------------------------------------------ data
MotionWindows, build_dataset = motion_data.MotionWindows, motion_data.build_dataset  # the registry's names


def clip_subjects(dataset_dir: str | Path) -> tuple[list[Clip], dict[str, Subject]]:
    """The training clips and each speaker's means (what generation conditions on)."""
    clips = load_clips(dataset_dir, "train", torso=True)
    return clips, subjects(clips)
