"""The leaderboard rows that need no training (declared in :mod:`baselines.registry`):

``ground_truth``
    the reference clips themselves, as papers report them: every paired metric is at its ideal.
``static_reference``
    a floor: the reference frame repeated for the whole clip, with the clip's audio.
``mean_landmarks``
    a floor: the speaker's mean mesh (over its training clips) on every frame, at the reference's head
    pose (or the clip's), drawn by the renderer of a trained model's run folder: that model's own image
    quality with no motion from the audio.

Each function takes a :class:`baselines.generation.Request` and returns a
:class:`baselines.generation.Generator`.
"""

from __future__ import annotations

import numpy as np

from talking_head.baselines.generation import ClipJob, Generator, Request, identity_of, load_run_dir, renderer_record


def ground_truth(request: Request) -> Generator:
    return Generator(lambda job: [(None, job.video)] * request.num_samples)


def static_reference(request: Request) -> Generator:
    def static(job: ClipJob):
        frames = np.repeat(job.reference.frame[None], job.num_frames, axis=0)
        return [(np.repeat(job.reference.canonical[None], job.num_frames, axis=0), frames)] * request.num_samples

    return Generator(static)


def mean_landmarks(request: Request) -> Generator:
    from talking_head.toolkit import pose as pose_fit

    spec, pipeline, configs, means, drawn_by = load_run_dir(request)
    configs = {spec.renderer_stage: configs[spec.renderer_stage]}

    def floor(job: ClipJob):
        speaker = means.get(job.speaker)
        mesh = pipeline.mean_mesh(job.reference, speaker)
        canonical = np.repeat(np.asarray(mesh, np.float32)[None], job.num_frames, axis=0)
        poses = job.pose if request.pose == "clip" else np.repeat(job.reference.pose[None], job.num_frames, axis=0)
        landmarks = pose_fit.to_frame(canonical, poses).astype(np.float32)
        frames = pipeline.render_landmarks(job.reference, landmarks, seed=request.seed, speaker=speaker,
                                           **identity_of(drawn_by, job.speaker))
        return [(canonical, frames)] * request.num_samples

    return Generator(floor, pipeline.fps, configs, {"renderer": spec.name, "seed": request.seed,
                                                    **renderer_record(drawn_by, request)})
