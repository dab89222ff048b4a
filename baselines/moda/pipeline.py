"""MODA inference: audio + reference face -> motion (stage 1) -> full mesh (stage 2) -> frames (stage 3).

::

    pipeline = MODAPipeline.from_run_dir("runs/moda")        # runs/moda/{motion,faco,renderer}
    reference = reference_from_file("face.jpg", size=256)     # crop, mesh, pose, canonical mesh
    samples = pipeline(wav16k, reference, num_samples=2)      # one MODAOutput per t-VAE sample

Steps of :meth:`MODAPipeline.__call__`:

1. the MODA network maps the audio once to lip, eye, head and torso motion around the subject's means,
   once per sample (different t-VAE draws: different head motion, the same lips);
2. FaCo-Net composes the full canonical mesh from the lips and eyes;
3. the head motion places the mesh in the reference crop (:func:`toolkit.pose.to_frame`);
4. the renderer draws each frame from the mesh, the shoulder lines, the reference image and the frame's
   temporal encoding.

The subject's means are the speaker's over its training clips when known (``subject``), else the
reference's own: its canonical mesh, its pose, and the shoulder points of its frame.

Renderers: a run holds one renderer for every face (``RUN_DIR/renderer``, trained with ``data.speaker:
all``) or, as the release, one per identity (``RUN_DIR/renderer/<speaker>/``); then each clip is drawn by
its own speaker's renderer (``identity``), and asking for a speaker without one is an error that names
the speakers the run has.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from talking_head.baselines.checkpoint import read_config, stage_folders
from talking_head.baselines.moda import MODEL_NAME
from talking_head.baselines.moda.data import Subject
from talking_head.baselines.moda.faco_net import FaCoNet
from talking_head.baselines.moda.moda_net import MODANet
from talking_head.baselines.moda.torso import shoulder_points
from talking_head.baselines.pipeline import Pipeline
from talking_head.baselines.reference import Reference
from talking_head.toolkit import pose as pose_fit


@dataclasses.dataclass
class MODAOutput:
    """One sample. canonical: (T, 478, 3) FaCo-Net's meshes; landmarks: (T, 478, 3) in reference-crop
    pixels; pose: (T, 7); torso: (T, 18, 3) crop px; frames: (T, S, S, 3) uint8 or None (landmarks only)."""

    canonical: np.ndarray
    landmarks: np.ndarray
    pose: np.ndarray
    torso: np.ndarray
    frames: np.ndarray | None


class MODAPipeline(Pipeline):
    """The three stages ready for inference (the renderer is optional: landmarks only)."""

    def __init__(self, motion: MODANet, faco: FaCoNet, renderer=None, renderers: dict[str, Path] | None = None,
                 device: str = "cpu"):
        """`renderer`: one renderer for every face; or `renderers`: the folder of each identity's renderer
        (loaded on first use, on `device`)."""
        self.motion, self.faco = motion.eval(), faco.eval()
        self.renderer = renderer.eval() if renderer is not None else None
        self._renderer_folders = dict(renderers or {})
        self._loaded: dict[str, object] = {}
        self._device = device

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, landmarks_only: bool = False, device: str = "cpu") -> "MODAPipeline":
        """Load RUN_DIR/motion, RUN_DIR/faco (and RUN_DIR/renderer unless `landmarks_only`), as ``toolkit train``
        writes them."""
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise FileNotFoundError(f"{run_dir}: no such run folder")
        for stage in ("motion", "faco") + (() if landmarks_only else ("renderer",)):
            if not (run_dir / stage).is_dir():
                raise FileNotFoundError(f"{run_dir / stage}: no MODA {stage} stage in this run folder (train it with "
                                        f"toolkit train moda --stage {stage} --out {run_dir}"
                                        + (", or ask for landmarks only)" if stage == "renderer" else ")"))
        motion = MODANet.from_pretrained(run_dir / "motion", device=device)
        faco = FaCoNet.from_pretrained(run_dir / "faco", device=device)
        if landmarks_only:
            return cls(motion, faco, device=device)
        from talking_head.baselines.moda.renderer import ALL_SPEAKERS, STAGE, TemporalRenderer

        folders = stage_folders(run_dir / "renderer")
        if not folders:
            raise FileNotFoundError(f"{run_dir / 'renderer'}: no trained renderer (toolkit train moda --stage renderer "
                                    f"--out {run_dir})")
        if None in folders:  # one renderer: for every face, or for the one speaker it was trained on
            speaker = read_config(folders[None], MODEL_NAME, STAGE)["data"]["speaker"]
            if speaker == ALL_SPEAKERS:
                return cls(motion, faco, TemporalRenderer.from_pretrained(folders[None], device=device), device=device)
            if speaker is None:
                raise FileNotFoundError(f"{folders[None]}: this renderer's config does not say whose it is "
                                        "(data.speaker: null); train it again with toolkit train moda --stage renderer")
            folders = {str(speaker): folders[None]}
        return cls(motion, faco, renderers=folders, device=device)

    @property
    def fps(self) -> float:
        return self.motion.fps

    @property
    def configs(self) -> dict:
        """The config of each stage; the renderer's by identity when the run has one per identity."""
        renderer = getattr(self.renderer, "config", None)
        if self._renderer_folders:
            from talking_head.baselines.moda.renderer import STAGE

            renderer = {name: read_config(folder, MODEL_NAME, STAGE) for name, folder in self._renderer_folders.items()}
        return {"motion": self.motion.config, "faco": self.faco.config, "renderer": renderer}

    def identities(self) -> list[str] | None:
        """The speakers of a run with one renderer per identity; None when one renderer draws every face."""
        return sorted(self._renderer_folders) if self._renderer_folders else None

    def renderer_for(self, identity: str | None):
        """The renderer that draws `identity`'s frames (see the module docstring)."""
        if not self._renderer_folders:
            if self.renderer is None:
                raise RuntimeError("this pipeline was loaded without the renderer (landmarks only)")
            return self.renderer
        if identity not in self._renderer_folders:
            raise ValueError(f"no renderer for speaker {identity!r}: this run has one per identity, for "
                             f"{', '.join(self.identities())}")
        if identity not in self._loaded:
            from talking_head.baselines.moda.renderer import TemporalRenderer

            self._loaded[identity] = TemporalRenderer.from_pretrained(self._renderer_folders[identity],
                                                                      device=self._device).eval()
        return self._loaded[identity]

    @staticmethod
    def speaker_conditions(dataset: str | Path) -> dict[str, Subject]:
        """Each speaker's means (mesh, pose, shoulders) over the train split."""
        from talking_head.baselines.moda.data import load_clips, subjects

        return subjects(load_clips(dataset, "train", torso=True))

    def mean_mesh(self, reference: Reference, speaker: Subject | None = None) -> np.ndarray:
        return reference.canonical if speaker is None else speaker.mesh

    def generate(self, wav: np.ndarray, reference: Reference, *, num_samples: int = 1, seed: int = 0,
                 speaker: Subject | None = None, **kwargs) -> list[MODAOutput]:
        """`num_samples` t-VAE samples from one pass; `speaker` is the subject's means (see :meth:`__call__`)."""
        return self(wav, reference, subject=speaker, num_samples=num_samples, seed=seed, **kwargs)

    def subject_of(self, reference: Reference, subject: Subject | None = None) -> Subject:
        """The means the motion is generated around: `subject` when given, else the reference's own."""
        if subject is not None:
            return subject
        torso = shoulder_points(reference.frame, reference.landmarks)
        if not np.isfinite(torso).all():
            torso = np.zeros_like(torso)
        return Subject(mesh=reference.canonical, pose=reference.pose, torso=torso)

    def __call__(self, wav: np.ndarray, reference: Reference, *, subject: Subject | None = None,
                 poses: np.ndarray | None = None, num_frames: int | None = None, mel: np.ndarray | None = None,
                 num_samples: int = 1, seed: int = 0, source: str = "audio",
                 landmarks_only: bool = False, identity: str | None = None) -> list[MODAOutput]:
        """Animate `reference` with 16 kHz float `wav`: `num_samples` samples (see the module docstring).

        `poses`: (T, 7) head poses in the reference crop replacing the generated head motion (e.g. a clip's
        own); `source` names the audio in errors; `identity`: whose renderer draws (a run with one per identity).
        """
        if not landmarks_only:
            self.renderer_for(identity)  # a missing renderer fails before the motion is generated
        subject = self.subject_of(reference, subject)
        motions = self.motion.generate(wav, subject, num_frames=num_frames, mel=mel, num_samples=num_samples,
                                       seed=seed, source=source)
        outputs = []
        for motion in motions:
            canonical = self.faco.compose(motion.lips, motion.eyes, subject.mesh)
            pose = motion.pose if poses is None else np.asarray(poses[:len(canonical)], np.float32)
            if len(pose) < len(canonical):
                raise ValueError(f"{len(pose)} poses for {len(canonical)} frames")
            landmarks = pose_fit.to_frame(canonical, pose).astype(np.float32)
            frames = None if landmarks_only else self.render_landmarks(reference, landmarks, torso=motion.torso,
                                                                       identity=identity)
            outputs.append(MODAOutput(canonical=canonical, landmarks=landmarks, pose=pose, torso=motion.torso,
                                      frames=frames))
        return outputs

    def render_landmarks(self, reference: Reference, landmarks: np.ndarray, *, seed: int = 0,
                         speaker: Subject | None = None, torso: np.ndarray | None = None,
                         identity: str | None = None) -> np.ndarray:
        """The renderer alone: frames (T, S, S, 3) uint8 of the reference's person with the given (T, 478, 3)
        meshes and (T, 18, 3) shoulder points in reference-crop pixels, frame i encoded as time i (also how
        the mean-landmarks floor baseline is rendered). Without `torso`, the shoulders of `speaker`'s means
        (else the reference's) on every frame. `seed` is unused: the renderer is deterministic."""
        renderer = self.renderer_for(identity)
        if torso is None:
            still = self.subject_of(reference, speaker).torso
            torso = np.repeat(np.asarray(still, np.float32)[None], len(landmarks), axis=0)
        return renderer.render(reference.frame, landmarks, torso, np.arange(len(landmarks)))
