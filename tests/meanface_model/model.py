"""The meanface stage: one learned (478, 3) canonical mesh, fitted to every training frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from talking_head.baselines.checkpoint import PretrainedStage
from talking_head.toolkit.pose import CANONICAL_CENTRE
from talking_head.toolkit import face_mesh


class MeanFace(PretrainedStage, nn.Module):
    """The mesh is CANONICAL_CENTRE + offset * scale; the loss is the mean squared distance to a frame's
    canonical mesh in `scale` units, so the optimum is the mean face of the training frames."""

    MODEL_NAME, STAGE = "meanface", "mesh"

    def __init__(self, config: dict):
        super().__init__()
        self.check_names(config)
        self.config = config
        self.fps = float(config["fps"])
        self.scale = float(config["scale"])
        self.offset = nn.Parameter(torch.zeros(face_mesh.NUM_POINTS, 3))

    @classmethod
    def from_config(cls, config: dict) -> "MeanFace":
        return cls(config)

    def mesh(self) -> torch.Tensor:
        return torch.tensor(CANONICAL_CENTRE, dtype=torch.float32) + self.offset * self.scale

    def training_loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        return (((self.mesh()[None] - batch["mesh"]) / self.scale) ** 2).mean()


class CanonicalFrames(torch.utils.data.Dataset):
    """Every frame with a face of the train split: its canonical mesh (478, 3)."""

    def __init__(self, dataset_dir: str | Path):
        from datasets import load_from_disk

        rows = load_from_disk(str(dataset_dir))["train"].select_columns(["canonical_landmarks"]).with_format("numpy")
        meshes = [np.asarray(m, np.float32) for m in rows["canonical_landmarks"]]
        frames = np.concatenate([m[np.isfinite(m).all(axis=(1, 2))] for m in meshes])
        self.meshes = torch.from_numpy(frames)

    def __len__(self) -> int:
        return len(self.meshes)

    def __getitem__(self, i: int) -> dict:
        return {"mesh": self.meshes[i]}


def build_dataset(config: dict, dataset_dir: str | Path) -> CanonicalFrames:
    return CanonicalFrames(dataset_dir)
