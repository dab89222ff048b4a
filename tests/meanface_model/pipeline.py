"""meanface inference: the learned mean face on every frame, posed like the reference, drawn over it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from talking_head.baselines.mesh_render import render_mesh
from talking_head.baselines.pipeline import Pipeline
from talking_head.baselines.reference import Reference
from talking_head.toolkit import pose as pose_fit

from meanface_model.model import MeanFace


@dataclasses.dataclass
class MeanFaceOutput:
    canonical: np.ndarray
    landmarks: np.ndarray
    frames: np.ndarray | None


class MeanFacePipeline(Pipeline):
    def __init__(self, stage: MeanFace):
        self.stage = stage.eval()

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, landmarks_only: bool = False, device: str = "cpu") -> "MeanFacePipeline":
        return cls(MeanFace.from_pretrained(Path(run_dir) / "mesh", device=device))

    @property
    def fps(self) -> float:
        return self.stage.fps

    @property
    def configs(self) -> dict:
        return {"mesh": self.stage.config}

    def generate(self, wav, reference: Reference, *, num_samples: int = 1, seed: int = 0, speaker=None, poses=None,
                 num_frames=None, mel=None, source: str = "audio", landmarks_only: bool = False, **sampler):
        if num_frames is None:
            num_frames = int(round(len(wav) / 16000 * self.fps))
        with torch.no_grad():
            mesh = self.stage.mesh().numpy()
        canonical = np.repeat(mesh[None], num_frames, axis=0)
        poses = np.repeat(reference.pose[None], num_frames, axis=0) if poses is None else poses[:num_frames]
        landmarks = pose_fit.to_frame(canonical, poses).astype(np.float32)
        frames = None if landmarks_only else self.render_landmarks(reference, landmarks, seed=seed)
        return [MeanFaceOutput(canonical, landmarks, frames)] * num_samples

    def render_landmarks(self, reference: Reference, landmarks: np.ndarray, *, seed: int = 0, speaker=None) -> np.ndarray:
        drawn = render_mesh(landmarks, reference.frame.shape[0])
        return np.where(drawn.any(axis=-1, keepdims=True), drawn, reference.frame[None])
