"""What generation asks of a trained reference model: the inference pipeline contract.

A model's pipeline (named in :mod:`baselines.registry`) loads the run folder ``toolkit train`` wrote and
turns audio + a reference face into frames; :mod:`baselines.generation` and ``toolkit generate`` use
nothing else of the model::

    pipeline = spec.pipeline_class().from_run_dir("runs/x")
    speakers = pipeline.speaker_conditions("data/sample")           # per-speaker means of the train split
    options = pipeline.sampling_options(seed=0, num_samples=2, landmarks_only=False)
    samples = pipeline.generate(wav16k, reference, speaker=speakers.get("S01"), identity="S01", **options)
    frames = pipeline.render_landmarks(reference, meshes)           # the renderer alone (mean-landmarks floor)

A model with named test-time conditioning choices (:meth:`Pipeline.condition_choices`, e.g. a
``setting``: dubbing or one-shot) also gets ``conditions`` and, for a dataset, the clip itself (:class:`Clip`).
"""

from __future__ import annotations

import abc
import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Protocol

import numpy as np

from talking_head.baselines.reference import Reference


class Sample(Protocol):
    """One generated sample: canonical (T, 478, 3) meshes and frames (T, S, S, 3) uint8 or None."""

    canonical: np.ndarray
    frames: Optional[np.ndarray]


@dataclasses.dataclass
class Clip:
    """The dataset clip being re-animated, for a model whose :meth:`Pipeline.condition_choices` use more of it
    than its audio and reference frame."""

    poses: np.ndarray  # (T, 7) head poses in the crop (frames without a face: the reference's)
    landmarks: np.ndarray  # (T, 478, 3) MediaPipe meshes in crop pixels, NaN where no face
    canonical: np.ndarray  # (T, 478, 3) the meshes without head pose, NaN where no face
    frames: Callable[[int], Iterator[np.ndarray]]  # frames(n): the crop video in (n, S, S, 3) chunks, decoded as read


class Pipeline(abc.ABC):
    """A trained model's stages, loaded for inference."""

    @classmethod
    @abc.abstractmethod
    def from_run_dir(cls, run_dir: str | Path, landmarks_only: bool = False, device: str = "cpu") -> "Pipeline":
        """Load RUN_DIR/<stage> of every stage (all but the renderer stage when `landmarks_only`)."""

    @classmethod
    def from_pretrained(cls, run_dir: str | Path, landmarks_only: bool = False, device: str = "cpu") -> "Pipeline":
        """The same as :meth:`from_run_dir` (the name the stage classes use)."""
        return cls.from_run_dir(run_dir, landmarks_only=landmarks_only, device=device)

    @property
    @abc.abstractmethod
    def fps(self) -> float:
        """The frame rate the model generates at."""

    @property
    @abc.abstractmethod
    def configs(self) -> dict[str, Any]:
        """The config each stage was trained with, by stage name (None for a stage not loaded)."""

    @staticmethod
    def speaker_conditions(dataset: str | Path) -> dict[str, Any]:
        """What the model is conditioned on per speaker of `dataset`'s train split (default: nothing)."""
        return {}

    def mean_mesh(self, reference: Reference, speaker: Any = None) -> np.ndarray:
        """The canonical (478, 3) mesh the mean-landmarks floor draws: the speaker's mean when the model
        conditions on one (``speaker`` from :meth:`speaker_conditions`), else the reference's own."""
        return reference.canonical if speaker is None else speaker

    def identities(self) -> Optional[list[str]]:
        """The speakers of a run trained with one renderer per identity (then ``identity`` of :meth:`generate`
        picks whose renderer draws, and a speaker without one cannot be drawn); None (the default): one
        renderer draws any face."""
        return None

    @classmethod
    def condition_choices(cls, clip: bool) -> dict[str, tuple[str, ...]]:
        """The model's named test-time conditioning choices: option -> its values, the default first, for a
        dataset clip (`clip`: its frames, poses and meshes exist, :class:`Clip`) or a reference alone (``--audio``).
        A model with any gets ``conditions`` (option -> value) and, for a dataset, ``clip`` in :meth:`generate`.
        Default: none."""
        return {}

    def sampling_options(self, *, seed: int = 0, num_samples: int = 1, landmarks_only: bool = False,
                         steps: Optional[int] = None, render_steps: Optional[int] = None,
                         guidance_scale: Optional[float] = None) -> dict[str, Any]:
        """The keyword arguments of :meth:`generate` for these choices, as generation.json records them.
        Sampler settings the model does not have are left out (default: seed, landmarks only, samples)."""
        return dict(seed=seed, landmarks_only=landmarks_only, num_samples=num_samples)

    @abc.abstractmethod
    def generate(self, wav: np.ndarray, reference: Reference, *, num_samples: int = 1, seed: int = 0,
                 speaker: Any = None, poses: Optional[np.ndarray] = None, num_frames: Optional[int] = None,
                 mel: Optional[np.ndarray] = None, source: str = "audio", landmarks_only: bool = False,
                 identity: Optional[str] = None, **sampler: Any) -> list[Sample]:
        """`num_samples` samples animating `reference` with 16 kHz float `wav`. `speaker`: an entry of
        :meth:`speaker_conditions` (None: the reference's own); `poses`: (T, 7) head poses in the
        reference crop instead of the model's; `mel`: the dataset's log-mel; `source` names the audio in
        errors; `identity`: whose renderer draws (see :meth:`identities`; passed only to a pipeline that has
        identities); `sampler`: the rest of :meth:`sampling_options`."""

    @abc.abstractmethod
    def render_landmarks(self, reference: Reference, landmarks: np.ndarray, *, seed: int = 0,
                         speaker: Any = None, identity: Optional[str] = None) -> np.ndarray:
        """The renderer alone: frames (T, S, S, 3) uint8 of the reference's face with the given (T, 478, 3)
        meshes in reference-crop pixels (`identity` as in :meth:`generate`)."""
