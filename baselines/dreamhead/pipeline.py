"""DreamHead inference: audio + reference face -> canonical landmarks (A2L) -> frames (L2I).

::

    pipeline = DreamHeadPipeline.from_run_dir("runs/dh")              # runs/dh/a2l and runs/dh/l2i
    reference = reference_from_file("face.jpg", size=256)             # crop, mesh, pose, canonical mesh
    out = pipeline(wav16k, reference)                                 # out.frames (T, S, S, 3), out.landmarks

Steps of :meth:`DreamHeadPipeline.__call__`:

1. audio contexts of the whole waveform (checked: at least one A2L window long, not silent);
2. A2L: canonical landmarks of every frame, driven by the audio, from P-bar (the identity mesh);
3. the canonical meshes are placed in the reference crop by a head pose per frame (the reference's pose
   held still by default: DreamHead drives expression from audio, not head motion);
4. L2I: one frame per mesh, showing the reference's face.

:meth:`DreamHeadPipeline.generate` picks P-bar, the poses and L2I's masked frames by the named conditions of
:mod:`baselines.dreamhead.conditions`: for a dataset clip by default the figure's dubbing setting (frame i
masked, frame i's head pose) and the clip's mean mesh; for a reference alone the one-shot setting.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from talking_head.baselines.dreamhead import conditions as conditioning
from talking_head.baselines.dreamhead.a2l_diffusion import A2LDiffusion
from talking_head.baselines.pipeline import Clip, Pipeline
from talking_head.baselines.reference import CROP_SIZES, Reference, ReferenceError, reference_from_file, reference_from_row
from talking_head.toolkit import pose as pose_fit

__all__ = ["CROP_SIZES", "DreamHeadOutput", "DreamHeadPipeline", "Reference", "ReferenceError", "reference_from_file",
           "reference_from_row"]

@dataclasses.dataclass
class DreamHeadOutput:
    """canonical: (T, 478, 3) A2L's meshes; landmarks: (T, 478, 3) in reference-crop pixels;
    frames: (T, S, S, 3) uint8, or None when only landmarks were asked for."""

    canonical: np.ndarray
    landmarks: np.ndarray
    frames: np.ndarray | None


class DreamHeadPipeline(Pipeline):
    """A2L (and, for frames, L2I) ready for inference. See the module docstring for the steps."""

    def __init__(self, a2l: A2LDiffusion, l2i=None):
        self.a2l = a2l.eval()
        self.l2i = l2i.eval() if l2i is not None else None

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, landmarks_only: bool = False, device: str = "cpu") -> "DreamHeadPipeline":
        """Load RUN_DIR/a2l (and RUN_DIR/l2i unless `landmarks_only`), as ``toolkit train`` writes them."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"{run_dir}: no such run folder")
        a2l = A2LDiffusion.from_pretrained(run_dir / "a2l", device=device)
        l2i = None
        if not landmarks_only:
            from talking_head.baselines.dreamhead.l2i_diffusion import L2IDiffusion

            if not (run_dir / "l2i").is_dir():
                raise FileNotFoundError(f"{run_dir / 'l2i'}: no L2I stage in this run folder (train it with "
                                        f"toolkit train dreamhead --stage l2i --out {run_dir}, or ask for landmarks only)")
            l2i = L2IDiffusion.from_pretrained(run_dir / "l2i", device=device)
        return cls(a2l, l2i)

    @property
    def fps(self) -> float:
        return self.a2l.fps

    @property
    def configs(self) -> dict:
        return {"a2l": self.a2l.config, "l2i": self.l2i.config if self.l2i is not None else None}

    @staticmethod
    def speaker_conditions(dataset: str | Path) -> dict:
        """P-bar of each speaker: its mean canonical mesh over the train split."""
        from talking_head.baselines.subjects import speaker_means

        return speaker_means(dataset)

    @classmethod
    def condition_choices(cls, clip: bool) -> dict[str, tuple[str, ...]]:
        """``setting`` (dubbing, one_shot) and ``identity`` (P-bar): :mod:`baselines.dreamhead.conditions`."""
        return conditioning.choices(clip)

    def sampling_options(self, *, seed: int = 0, num_samples: int = 1, landmarks_only: bool = False,
                         steps: int | None = None, render_steps: int | None = None,
                         guidance_scale: float | None = None) -> dict:
        """`steps`: A2L's sampler steps; `render_steps`: L2I's; `guidance_scale`: A2L's audio guidance."""
        return dict(seed=seed, a2l_steps=steps, l2i_steps=render_steps, guidance_scale=guidance_scale,
                    landmarks_only=landmarks_only)

    def generate(self, wav: np.ndarray, reference: Reference, *, num_samples: int = 1, seed: int = 0,
                 speaker: np.ndarray | None = None, identity: str | None = None, clip: Clip | None = None,
                 conditions: dict[str, str] | None = None, **kwargs) -> list[DreamHeadOutput]:
        """`num_samples` diffusion samples, sample k drawn with seed + k. `conditions`: ``setting`` and
        ``identity`` (default: the first of :meth:`condition_choices`); `clip`: the dataset clip (dubbing
        reads its frames and poses, ``identity=clip_mean`` its meshes); `speaker`: the speaker's mean over
        the train split (``identity=train_mean``). See :meth:`__call__` for the other arguments. `identity`
        is not needed: one L2I model draws any face."""
        allowed = self.condition_choices(clip is not None)
        chosen = {key: values[0] for key, values in allowed.items()} | dict(conditions or {})
        for key, value in chosen.items():
            if value not in allowed.get(key, ()):
                raise ValueError(f"condition {key}={value} is not one of {allowed.get(key, ())} here "
                                 f"({'a dataset clip' if clip is not None else 'a reference alone'})")
        mean = conditioning.identity_mesh(chosen["identity"], reference.canonical,
                                          clip.canonical if clip is not None else None, speaker,
                                          kwargs.get("source", "audio"))
        if chosen["setting"] == "dubbing":  # frame i's head pose places the landmarks drawn into frame i
            kwargs = {**kwargs, "poses": clip.poses, "clip": clip}
        return [self(wav, reference, mean_landmarks=mean, seed=seed + k, **kwargs) for k in range(num_samples)]

    def __call__(self, wav: np.ndarray, reference: Reference, *, mean_landmarks: np.ndarray | None = None,
                 poses: np.ndarray | None = None, num_frames: int | None = None, mel: np.ndarray | None = None,
                 seed: int = 0, source: str = "audio", landmarks_only: bool = False,
                 a2l_steps: int | None = None, l2i_steps: int | None = None,
                 guidance_scale: float | None = None, clip: Clip | None = None) -> DreamHeadOutput:
        """Animate `reference` with 16 kHz float `wav` (see the module docstring).

        `mean_landmarks`: P-bar (478, 3); default the reference's canonical mesh. `poses`: (T, 7) head
        poses in the reference crop; default the reference's pose on every frame. `clip`: dub this clip
        (L2I masks and draws into its frame i; give its poses too); None: one-shot. `source` names the
        audio in errors.
        """
        # 1-2. audio -> canonical landmarks
        contexts = self.a2l.audio_contexts(wav, source=source, num_frames=num_frames, mel=mel)
        mean = reference.canonical if mean_landmarks is None else mean_landmarks
        canonical = self.a2l.generate(contexts, mean, steps=a2l_steps, guidance_scale=guidance_scale,
                                      seed=seed).landmarks
        # 3. canonical -> reference-crop pixels
        if poses is None:
            poses = np.repeat(reference.pose[None], len(canonical), axis=0)
        if len(poses) < len(canonical):
            raise ValueError(f"{len(poses)} poses for {len(canonical)} frames")
        landmarks = pose_fit.to_frame(canonical, poses[:len(canonical)]).astype(np.float32)
        if landmarks_only:
            return DreamHeadOutput(canonical=canonical, landmarks=landmarks, frames=None)
        # 4. landmarks -> frames
        frames = self.render_landmarks(reference, landmarks, seed=seed, l2i_steps=l2i_steps, clip=clip)
        return DreamHeadOutput(canonical=canonical, landmarks=landmarks, frames=frames)

    def render_landmarks(self, reference: Reference, landmarks: np.ndarray, *, seed: int = 0, speaker=None,
                         identity: str | None = None, l2i_steps: int | None = None, clip: Clip | None = None
                         ) -> np.ndarray:
        """L2I alone: frames (T, S, S, 3) uint8 of the reference's face with the given (T, 478, 3) meshes in
        reference-crop pixels (also how the mean-landmarks floor baseline is rendered; `speaker` is not
        needed: the meshes carry the speaker's shape). `clip`: dub its frames (one-shot when None)."""
        import torch

        if self.l2i is None:
            raise RuntimeError("this pipeline was loaded without the L2I stage (landmarks only)")
        generator = torch.Generator().manual_seed(seed)
        if clip is None:
            return self.l2i.generate_frames(reference.frame, landmarks, reference_landmarks=reference.landmarks,
                                            generator=generator, num_inference_steps=l2i_steps)
        # The clip's frames, decoded one L2I batch at a time; closing the reader removes its temporary file.
        chunks = clip.frames(1 if self.l2i.config["sampler"]["previous_as_reference"]
                             else int(self.l2i.config["sampler"]["batch_size"]))
        try:
            return self.l2i.generate_frames(reference.frame, landmarks, reference_landmarks=reference.landmarks,
                                            generator=generator, num_inference_steps=l2i_steps, frames=chunks,
                                            frame_landmarks=clip.landmarks)
        finally:
            getattr(chunks, "close", lambda: None)()
