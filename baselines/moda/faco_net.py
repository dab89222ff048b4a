"""MODA stage 2: FaCo-Net, the facial composer. Lip and eye motion + the speaker's mean mesh -> the full
478-point mesh of the frame (docs/reference-models.md#faco-net).

Per-frame MLPs, no temporal modelling, no BatchNorm, LeakyReLU(0.2), as in the release::

    h = LipEncoder(lips) ++ EyeEncoder(eyes)          120 -> 256 -> 256 -> 128, 180 -> 256 -> 256 -> 128
    h = h + SubjectEncoder(mean mesh)                  1434 -> 128 -> 128 -> 256
    full = Decoder(h)                                  256 -> 512 -> 512 -> 512 -> 1434

Trained on ground-truth lip and eye subsets of each training frame with the full mesh as the target:
``loss.l1`` (100) x L1 + an LSGAN point discriminator (an MLP on lips, eyes, the full mesh and the subject
code). D's loss is 0.5 x (fake + 2 x real), the release's weighting. G and D share the one optimizer of the
training loop (:mod:`baselines.gan`). Everything is a displacement from the speaker's mean in
``targets.mesh_scale`` units, like the motion stage.

At inference (:meth:`FaCoNet.compose`) the lips and eyes given stay exactly as given (FaCo-Net composes the
rest of the face around them), and the other points are smoothed in time (``smoothing.non_semantic``,
MODA's sigma 5 at 30 fps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from torch import nn

from talking_head.baselines import checkpoint
from talking_head.baselines.gan import frozen_call, lsgan
from talking_head.baselines.moda import release
from talking_head.baselines.moda.data import point_sets, speaker_means
from talking_head.toolkit.pose import CANONICAL_CENTRE, CANONICAL_IOD
from talking_head.toolkit import face_mesh

MODEL_NAME = "moda"
STAGE = "faco"
FULL = face_mesh.NUM_POINTS * 3


def mlp(sizes: list[int], last_activation: bool = False) -> nn.Sequential:
    """Linear + LeakyReLU(0.2) between layers (FaCo-Net has no normalisation)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class Composer(nn.Module):
    """The generator: lips (B, 120) + eyes (B, 180) + subject code (B, 1434) -> full mesh (B, 1434)."""

    def __init__(self, lips: int, eyes: int):
        super().__init__()
        self.lips = mlp([lips, 256, 256, 128], last_activation=True)
        self.eyes = mlp([eyes, 256, 256, 128], last_activation=True)
        self.subject = mlp([FULL, 128, 128, 256])
        self.decoder = mlp([256, 512, 512, 512, FULL])

    def forward(self, lips: torch.Tensor, eyes: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        h = torch.cat([self.lips(lips), self.eyes(eyes)], dim=-1) + self.subject(subject)
        return self.decoder(h)


class PointDiscriminator(nn.Module):
    """LSGAN critic of one frame: lips, eyes, full mesh and subject code -> a score."""

    def __init__(self, lips: int, eyes: int):
        super().__init__()
        self.subject = mlp([FULL, 128, 128], last_activation=True)
        self.score = mlp([lips + eyes + FULL + 128, 512, 256, 1])

    def forward(self, lips: torch.Tensor, eyes: torch.Tensor, full: torch.Tensor, subject: torch.Tensor) -> torch.Tensor:
        return self.score(torch.cat([lips, eyes, full, self.subject(subject)], dim=-1))


class FaCoNet(checkpoint.PretrainedStage, nn.Module):
    """FaCo-Net as a trainable stage: generator, discriminator, loss, save/load, inference."""

    MODEL_NAME, STAGE = MODEL_NAME, STAGE

    def __init__(self, config: dict):
        super().__init__()
        self.check_names(config)
        self.config = config
        sets = point_sets()
        self.lip_points, self.eye_points = list(sets["lips"]), list(sets["eyes"])
        self.scale = float(config["targets"]["mesh_scale"])
        self.generator = Composer(3 * len(self.lip_points), 3 * len(self.eye_points))
        self.discriminator = PointDiscriminator(3 * len(self.lip_points), 3 * len(self.eye_points))

    @classmethod
    def from_config(cls, config: dict) -> "FaCoNet":
        return cls(config)

    def subject_code(self, mesh: torch.Tensor) -> torch.Tensor:
        centre = torch.tensor(CANONICAL_CENTRE, dtype=mesh.dtype, device=mesh.device)
        return ((mesh - centre) / CANONICAL_IOD).flatten(-2)

    def training_loss(self, batch: dict, generator: torch.Generator | None = None):
        """G: LSGAN + l1 x L1(full); D: 0.5 x (fake + d_real x real). Displacements in mesh_scale units. A batch
        of frames (B, 40, 3) ... or of windows (B, T, 40, 3) ... (``fixes.batch: windows``, the release's)."""
        weights = self.config["loss"]
        lips, eyes, full = batch["lips"].flatten(-2), batch["eyes"].flatten(-2), batch["full"].flatten(-2)
        subject = self.subject_code(batch["mesh"])
        if lips.dim() == 3:  # windows: the subject code of every frame of its window
            subject = subject[:, None].expand(-1, lips.shape[1], -1)
        fake = self.generator(lips, eyes, subject)
        l1 = (fake - full).abs().mean()
        # fixes.gan_scores: last scores only the batch's last item, as the release's GANLoss (input[-1])
        scored = (lambda p: p[-1]) if release.fixes(self.config)["gan_scores"] == "last" else (lambda p: p)
        g_gan = lsgan(scored(frozen_call(self.discriminator, lips, eyes, fake, subject)), True)
        d_fake = lsgan(scored(self.discriminator(lips, eyes, fake.detach(), subject)), False)
        d_real = lsgan(scored(self.discriminator(lips, eyes, full, subject)), True)
        d_loss = 0.5 * (d_fake + float(weights["d_real"]) * d_real)
        loss = float(weights["gan"]) * g_gan + float(weights["l1"]) * l1 + d_loss
        return loss, {"l1": float(l1.detach()), "g_gan": float(g_gan.detach()), "d_fake": float(d_fake.detach()),
                      "d_real": float(d_real.detach())}

    @torch.no_grad()
    def compose(self, lips: np.ndarray, eyes: np.ndarray, mean_mesh: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """(T, 40, 3) lips + (T, 60, 3) eyes (canonical) + the speaker's (478, 3) mean mesh -> (T, 478, 3)."""
        device = next(self.parameters()).device
        mean = torch.from_numpy(np.asarray(mean_mesh, np.float32)).to(device)
        lips_t = (torch.from_numpy(np.asarray(lips, np.float32)).to(device) - mean[self.lip_points]) / self.scale
        eyes_t = (torch.from_numpy(np.asarray(eyes, np.float32)).to(device) - mean[self.eye_points]) / self.scale
        code = self.subject_code(mean)[None]
        out = []
        for start in range(0, len(lips_t), batch_size):
            l, e = lips_t[start:start + batch_size].flatten(1), eyes_t[start:start + batch_size].flatten(1)
            out.append(self.generator(l, e, code.expand(len(l), -1)))
        full = torch.cat(out).reshape(-1, face_mesh.NUM_POINTS, 3).double().cpu().numpy() * self.scale
        sigma = float(self.config["smoothing"]["non_semantic"])
        if sigma > 0 and len(full) > 1:
            full = gaussian_filter1d(full, sigma, axis=0, mode="nearest")
        mesh = full + np.asarray(mean_mesh, np.float64)
        mesh[:, self.lip_points], mesh[:, self.eye_points] = lips, eyes
        return mesh.astype(np.float32)


class MeshFrames(torch.utils.data.Dataset):
    """Every frame (with a face) of the training clips: lips, eyes and full mesh as displacements from the
    speaker's mean mesh, in ``targets.mesh_scale`` units, and the mean mesh itself.

    Read on demand: an item is one frame's mesh, a zero-copy view into the dataset's memory-mapped arrays
    (:class:`toolkit.windows.ArrowRows`); what is held is the index of frames and one mean per speaker, so
    memory does not grow with the dataset (HDTF's frames would take gigabytes as arrays)."""

    def __init__(self, config: dict, dataset_dir: str | Path, split: str = "train"):
        from talking_head.toolkit import dataset as schema
        from talking_head.toolkit.windows import ArrowRows

        sets = point_sets()
        self.scale = float(config["targets"]["mesh_scale"])
        means = speaker_means(dataset_dir, "train")
        rows = schema.load_split(dataset_dir, split)
        self.rows = ArrowRows(rows, (schema.CANONICAL_LANDMARKS, schema.POSE))
        names = sorted(means)
        self.means = np.stack([means[name].mesh for name in names]) if names else np.zeros((0, 478, 3), np.float32)
        index = []  # (row, frame, speaker) of every frame with a face, in clip order
        for row, speaker in enumerate(map(str, rows[schema.SPEAKER])):
            if speaker not in means:
                continue
            canonical = self.rows.view(schema.CANONICAL_LANDMARKS, row)
            good = np.isfinite(canonical).all(axis=(1, 2)) & np.isfinite(self.rows.view(schema.POSE, row)).all(axis=1)
            frames = np.flatnonzero(good)
            index.append(np.stack([np.full(len(frames), row), frames, np.full(len(frames), names.index(speaker))], 1))
        self.index = np.concatenate(index).astype(np.int64) if index else np.zeros((0, 3), np.int64)
        self.lips, self.eyes = list(sets["lips"]), list(sets["eyes"])

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        from talking_head.toolkit import dataset as schema

        row, t, speaker = (int(v) for v in self.index[i])
        mean = self.means[speaker]
        canonical = np.asarray(self.rows.view(schema.CANONICAL_LANDMARKS, row)[t], np.float32)
        full = torch.from_numpy(((canonical - mean) / self.scale).astype(np.float32))
        return {"lips": full[self.lips], "eyes": full[self.eyes], "full": full, "mesh": torch.from_numpy(mean.copy())}


class MeshWindows(MeshFrames):
    """The release's FaCo-Net items (``fixes.batch: windows``): windows of ``data.window`` consecutive frames
    with a face, starting every ``data.stride`` frames of a clip (the motion stage's rule), so a batch of 32 is
    32 x 600 frames as in the release's ``audio2repr`` batches. Items hold (T, ...) arrays and the mean mesh."""

    def __init__(self, config: dict, dataset_dir: str | Path, split: str = "train"):
        super().__init__(config, dataset_dir, split)
        self.window, stride = int(config["data"]["window"]), int(config["data"]["stride"])
        first = np.arange(max(0, len(self.index) - self.window + 1))
        last = first + self.window - 1
        rows, frames = self.index[:, 0], self.index[:, 1]
        # frames with a face are listed in clip order: a window is valid when its ends are window - 1 apart
        ok = (rows[first] == rows[last]) & (frames[last] - frames[first] == self.window - 1) & (frames[first] % stride == 0)
        self.starts = first[ok]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> dict:
        from talking_head.toolkit import dataset as schema

        row, t, speaker = (int(v) for v in self.index[self.starts[i]])
        mean = self.means[speaker]
        canonical = np.asarray(self.rows.view(schema.CANONICAL_LANDMARKS, row)[t:t + self.window], np.float32)
        full = torch.from_numpy(((canonical - mean) / self.scale).astype(np.float32))
        return {"lips": full[:, self.lips], "eyes": full[:, self.eyes], "full": full,
                "mesh": torch.from_numpy(mean.copy())}


def build_dataset(config: dict, dataset_dir: str | Path) -> MeshFrames:
    """FaCo-Net's training set (the stage registry's dataset builder): frames, or the release's windows."""
    windows = release.fixes(config)["batch"] == "windows"
    return (MeshWindows if windows else MeshFrames)(config, dataset_dir, "train")
