"""Generate the videos of a dataset split with a reference model or a floor baseline.

::

    from talking_head.baselines.generation import generate_split
    result = generate_split("moda", "data/sample", "gen/moda", checkpoint="runs/moda")   # <clip_id>.mp4 + .npy

Models (:data:`MODELS`):

``dreamhead``, ``moda``
    the trained reference models (``checkpoint`` = the run folder of ``toolkit train``).
``ground-truth``
    the reference clips themselves, as papers report them: every paired metric is at its ideal.
``static-reference``
    a floor: the reference frame repeated for the whole clip, with the clip's audio.
``mean-landmarks``
    a floor: the speaker's mean mesh (over its training clips) on every frame, at the reference's head
    pose, rendered by the renderer of ``checkpoint`` (DreamHead's L2I or MODA's renderer): the model's
    own image quality with no motion from the audio.

Every clip's reference is its first frame with a face (the same for every model, so the floors are
honest); the speaker's means come from the training split. Outputs are named by clip id
(:mod:`toolkit.video_ids`) so ``toolkit evaluate`` pairs them, and ``generation.json`` records the
model, checkpoint hashes, configs and options.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from talking_head.baselines.reference import Reference, reference_from_row
from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media
from talking_head.toolkit.fileio import atomic_path, write_json
from talking_head.toolkit.progress import progress_bar
from talking_head.toolkit.provenance import software_versions
from talking_head.toolkit.video_ids import sample_id

TRAINED = ("dreamhead", "moda")
FLOORS = ("ground-truth", "static-reference", "mean-landmarks")
MODELS = TRAINED + FLOORS
STAGES = {"dreamhead": ("a2l", "l2i"), "moda": ("motion", "faco", "renderer")}
RENDERER_STAGE = {"dreamhead": "l2i", "moda": "renderer"}
RECORD = "generation.json"


class GenerationError(ValueError):
    """A dataset, split or checkpoint that cannot be generated from; the message names it."""


@dataclasses.dataclass
class ClipJob:
    """One clip of a dataset split, ready to animate."""

    clip_id: str
    speaker: str
    fps: float
    num_frames: int
    wav: np.ndarray  # 16 kHz float32
    mel: np.ndarray  # (M, 80)
    pose: np.ndarray  # (T, 7) the clip's own head poses (frames without a face: the reference's)
    reference: Reference  # the clip's first frame with a face
    video: bytes  # the clip's crop video (mp4)


@dataclasses.dataclass
class GenerationResult:
    clips: list[str]
    fps: float
    record: dict[str, Any]


def checkpoint_model(checkpoint: str | Path) -> str:
    """Which trained model a run folder holds (``dreamhead`` or ``moda``), from its stage folders."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"{checkpoint}: no such run folder")
    found = [model for model, stage in RENDERER_STAGE.items() if (checkpoint / stage).is_dir()]
    if len(found) != 1:
        raise GenerationError(f"{checkpoint}: expected the stages of exactly one model (dreamhead: a2l, l2i; moda: "
                              f"motion, faco, renderer); found {', '.join(found) or 'none'}")
    return found[0]


def load_pipeline(model: str, checkpoint: str | Path, landmarks_only: bool = False, device: str = "cpu"):
    """The inference pipeline of a trained model's run folder."""
    if model == "moda":
        from talking_head.baselines.moda.pipeline import MODAPipeline

        return MODAPipeline.from_run_dir(checkpoint, landmarks_only=landmarks_only, device=device)
    if model == "dreamhead":
        from talking_head.baselines.dreamhead.pipeline import DreamHeadPipeline

        return DreamHeadPipeline.from_run_dir(checkpoint, landmarks_only=landmarks_only, device=device)
    raise GenerationError(f"{model!r} is not a trained model; choose one of {', '.join(TRAINED)}")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_hashes(model: str, checkpoint: str | Path, landmarks_only: bool = False) -> dict[str, str]:
    """sha256 of each stage's weights that generating with `model` from `checkpoint` uses."""
    if model in FLOORS and model != "mean-landmarks":
        return {}
    if not Path(checkpoint).is_dir():
        raise FileNotFoundError(f"{checkpoint}: no such run folder")
    trained = checkpoint_model(checkpoint) if model == "mean-landmarks" else model
    stages = (RENDERER_STAGE[trained],) if model == "mean-landmarks" else STAGES[trained]
    if landmarks_only:
        stages = tuple(s for s in stages if s not in RENDERER_STAGE.values())
    hashes = {}
    for stage in stages:
        weights = Path(checkpoint) / stage / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{weights}: missing (train the stage with toolkit train {trained} --stage {stage} "
                                    f"--out {checkpoint})")
        hashes[stage] = sha256_file(weights)
    return hashes


def dataset_jobs(dataset: str | Path, split: str = "test", only: list[str] | None = None,
                 frames: bool = True) -> tuple[list[str], Callable[[], Iterator[ClipJob]]]:
    """The clip ids of `split` (or `only`) and a function iterating their :class:`ClipJob`s. Without
    `frames` the references carry a blank image (landmarks-only generation never decodes the videos)."""
    dataset = Path(dataset)
    try:
        rows = schema.load_split(dataset, split)
    except ValueError as err:  # not a dataset, another schema version, no such split
        raise GenerationError(str(err)) from None
    ids = [str(i) for i in rows[schema.CLIP_ID]]
    if only:
        unknown = sorted(set(only) - set(ids))
        if unknown:
            raise GenerationError(f"{dataset} [{split}]: no clips {unknown}")
        ids = [i for i in ids if i in set(only)]
    wanted = set(ids)
    columns = [schema.CLIP_ID, schema.SPEAKER, schema.FPS, schema.NUM_FRAMES, schema.AUDIO, schema.MEL, schema.LANDMARKS,
               schema.CANONICAL_LANDMARKS, schema.POSE]

    def jobs() -> Iterator[ClipJob]:
        table = rows.select_columns(columns).with_format("numpy")
        videos = rows.select_columns([schema.VIDEO])
        for index in range(len(rows)):
            row = table[index]
            clip_id = str(row[schema.CLIP_ID])
            if clip_id not in wanted:
                continue
            faces = np.flatnonzero(np.isfinite(np.asarray(row[schema.LANDMARKS])).all(axis=(1, 2)))
            if not len(faces):
                raise GenerationError(f"{dataset}: clip {clip_id} has no frame with a face to use as the reference")
            first_face = int(faces[0])
            video = videos[index][schema.VIDEO]
            frame = np.zeros((8, 8, 3), np.uint8)
            if frames:
                with schema.open_row_video(video) as reader:
                    frame = reader.read_window(first_face, 1)[0]
            reference = reference_from_row(row, frame, first_face)
            pose = np.asarray(row[schema.POSE], dtype=np.float32).copy()
            pose[~np.isfinite(pose).all(axis=1)] = reference.pose  # frames without a face keep the reference pose
            yield ClipJob(clip_id=clip_id, speaker=str(row[schema.SPEAKER]), fps=float(row[schema.FPS]),
                          num_frames=int(row[schema.NUM_FRAMES]),
                          wav=np.asarray(row[schema.AUDIO]).astype(np.float32) / 32768.0,
                          mel=np.asarray(row[schema.MEL], np.float32), pose=pose, reference=reference, video=video)

    return ids, jobs


def generate_split(model: str, dataset: str | Path, out: str | Path, *, checkpoint: str | Path | None = None,
                   split: str = "test", clips: list[str] | None = None, pose: str = "reference", seed: int = 0,
                   num_samples: int = 1, landmarks_only: bool = False, a2l_steps: int | None = None,
                   l2i_steps: int | None = None, guidance_scale: float | None = None, device: str = "cpu",
                   show_progress: bool = True) -> GenerationResult:
    """Generate every clip of `split` with `model` into `out` (see the module docstring); write generation.json.

    `pose`: ``reference`` (DreamHead holds the reference's pose; MODA generates head motion) or ``clip``
    (each clip's own poses). `num_samples` > 1 names the videos ``<clip_id>.sample<k>``.
    """
    if model not in MODELS:
        raise GenerationError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
    if pose not in ("reference", "clip"):
        raise GenerationError(f"pose must be 'reference' or 'clip', got {pose!r}")
    if (model in TRAINED or model == "mean-landmarks") and checkpoint is None:
        raise GenerationError(f"{model} needs a checkpoint: the run folder of toolkit train")
    if model in FLOORS and landmarks_only:
        raise GenerationError(f"{model} is a video baseline; it has no landmarks-only output")
    out = Path(out)
    dataset = Path(dataset)
    weights = checkpoint_hashes(model, checkpoint, landmarks_only) if checkpoint is not None else {}
    ids, jobs = dataset_jobs(dataset, split, clips, frames=not landmarks_only and model != "ground-truth")
    generate, fps, configs, options = _generator(model, checkpoint, dataset, pose=pose, seed=seed,
                                                 num_samples=num_samples, landmarks_only=landmarks_only,
                                                 a2l_steps=a2l_steps, l2i_steps=l2i_steps,
                                                 guidance_scale=guidance_scale, device=device)
    done, fps_written = [], fps
    with progress_bar(len(ids), f"generate {model}", unit="clips", enabled=show_progress) as advance:
        for job in jobs():
            clip_fps = fps if fps is not None else job.fps
            if abs(job.fps - clip_fps) > 1e-3:
                raise GenerationError(f"{dataset}: clip {job.clip_id} is at {job.fps:g} fps, the model at {clip_fps:g}")
            outputs = generate(job)
            for k, (canonical, frames) in enumerate(outputs):
                name = sample_id(job.clip_id, k) if num_samples > 1 else job.clip_id
                if canonical is not None:
                    with atomic_path(out / f"{name}.npy") as tmp:
                        with open(tmp, "wb") as handle:
                            np.save(handle, canonical.astype(np.float32))
                if isinstance(frames, bytes):  # ground truth: the clip's own video, bit for bit
                    with atomic_path(out / f"{name}.mp4") as tmp:
                        tmp.write_bytes(frames)
                elif frames is not None:
                    media.write_video(out / f"{name}.mp4", frames, fps=clip_fps, audio=job.wav)
            done.append(job.clip_id)
            fps_written = clip_fps
            advance(1, info=job.clip_id)
    record = generation_record(model, checkpoint, weights, configs, fps_written, num_samples,
                               {"dataset": str(dataset), "split": split, "audio": None, "reference": None},
                               {**options, "pose": pose, "num_samples": num_samples}, done)
    write_json(out / RECORD, record)
    return GenerationResult(clips=done, fps=fps_written, record=record)


def generation_record(model: str, checkpoint, weights: dict, configs: dict, fps: float | None, num_samples: int,
                      inputs: dict, options: dict, clips: list[str]) -> dict[str, Any]:
    """What generation.json records: enough to regenerate the same videos and to tell two runs apart."""
    return {
        "model": model,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "weights_sha256": weights,
        "configs": configs,
        "fps_written": fps,
        "fps_note": "toolkit evaluate resamples videos to 25 fps where a metric needs it (SyncNet)",
        "num_samples": num_samples,
        "inputs": inputs,
        "options": options,
        "clips": clips,
        "software": software_versions(),
    }


def _generator(model: str, checkpoint, dataset: Path, *, pose: str, seed: int, num_samples: int, landmarks_only: bool,
               a2l_steps, l2i_steps, guidance_scale, device: str):
    """(generate(job) -> [(canonical or None, frames or video bytes or None)] per sample, fps or None for the
    dataset's, configs by stage, options to record)."""
    if model == "ground-truth":
        return (lambda job: [(None, job.video)] * num_samples), None, {}, {}
    if model == "static-reference":
        def static(job: ClipJob):
            frames = np.repeat(job.reference.frame[None], job.num_frames, axis=0)
            return [(np.repeat(job.reference.canonical[None], job.num_frames, axis=0), frames)] * num_samples

        return static, None, {}, {}

    trained = checkpoint_model(checkpoint) if model == "mean-landmarks" else model
    pipeline = load_pipeline(trained, checkpoint, landmarks_only=landmarks_only, device=device)
    configs = {stage: stage_config(pipeline, stage) for stage in STAGES[trained]
               if not (landmarks_only and stage == RENDERER_STAGE[trained])}
    has_train = _has_train(dataset)
    if trained == "moda":
        from talking_head.baselines.moda.data import load_clips, subjects

        means = subjects(load_clips(dataset, "train", torso=True)) if has_train else {}
    else:
        from talking_head.baselines.subjects import speaker_means

        means = speaker_means(dataset) if has_train else {}

    if model == "mean-landmarks":
        from talking_head.toolkit import pose as pose_fit

        configs = {RENDERER_STAGE[trained]: configs[RENDERER_STAGE[trained]]}

        def floor(job: ClipJob):
            speaker = means.get(job.speaker)
            mesh = job.reference.canonical if speaker is None else (speaker.mesh if trained == "moda" else speaker)
            canonical = np.repeat(np.asarray(mesh, np.float32)[None], job.num_frames, axis=0)
            poses = job.pose if pose == "clip" else np.repeat(job.reference.pose[None], job.num_frames, axis=0)
            landmarks = pose_fit.to_frame(canonical, poses).astype(np.float32)
            extra = {}
            if trained == "moda":
                torso = pipeline.subject_of(job.reference, speaker).torso
                extra = {"torso": np.repeat(np.asarray(torso, np.float32)[None], job.num_frames, axis=0)}
            frames = pipeline.render_landmarks(job.reference, landmarks, seed=seed, **extra)
            return [(canonical, frames)] * num_samples

        return floor, pipeline.fps, configs, {"renderer": trained, "seed": seed}

    if trained == "moda":
        options = dict(seed=seed, landmarks_only=landmarks_only, num_samples=num_samples)
    else:
        options = dict(seed=seed, a2l_steps=a2l_steps, l2i_steps=l2i_steps, guidance_scale=guidance_scale,
                       landmarks_only=landmarks_only)

    def animate(job: ClipJob):
        condition = {"subject": means.get(job.speaker)} if trained == "moda" else \
            {"mean_landmarks": means.get(job.speaker)}
        common = dict(poses=job.pose if pose == "clip" else None, num_frames=job.num_frames, mel=job.mel,
                      source=f"{dataset} [{job.clip_id}]", **condition)
        if trained == "moda":
            results = pipeline(job.wav, job.reference, **common, **options)
        else:  # diffusion samples: one seed each
            results = [pipeline(job.wav, job.reference, **common, **{**options, "seed": seed + k})
                       for k in range(num_samples)]
        return [(r.canonical, r.frames) for r in results]

    return animate, pipeline.fps, configs, options


def _has_train(dataset: Path) -> bool:
    data = schema.load(dataset)
    return "train" in data and len(data["train"]) > 0


def stage_config(pipeline, stage: str):
    """The config a loaded pipeline's `stage` was trained with."""
    if hasattr(pipeline, "configs"):
        return pipeline.configs.get(stage)
    return getattr({"a2l": pipeline.a2l, "l2i": pipeline.l2i}[stage], "config", None)
