"""Generate the videos of a dataset split with a reference model or a floor baseline.

::

    from talking_head.baselines.generation import generate_split
    result = generate_split(name, "data/sample", "gen/x", checkpoint="runs/x")   # <clip_id>.mp4 + .npy

Models are looked up in :mod:`baselines.registry`: a trained model generates through its pipeline
(:class:`baselines.pipeline.Pipeline`, ``checkpoint`` = the run folder of ``toolkit train``); ground truth
and the floor baselines through their functions in :mod:`baselines.floors` (the mean-landmarks floor
with the renderer of ``checkpoint``).

Every clip's reference is its first frame with a face (the same for every model, so the floors are
honest); the speaker's means come from the training split. A model with named conditioning choices
(``conditions``, e.g. a dubbing or a one-shot setting) also gets the clip: its head poses, meshes and
frames, decoded from its video as the model reads them; the choices that ran are recorded. Outputs are named by clip id
(:mod:`toolkit.video_ids`) so ``toolkit evaluate`` pairs them, and ``generation.json`` records the
model, checkpoint hashes, configs and options.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from talking_head.baselines import registry
from talking_head.baselines.checkpoint import WEIGHTS_NAME, stage_folders
from talking_head.baselines.pipeline import Clip
from talking_head.baselines.reference import Reference, reference_from_row
from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media
from talking_head.toolkit.fileio import atomic_path, write_json
from talking_head.toolkit.progress import progress_bar
from talking_head.toolkit.provenance import software_versions
from talking_head.toolkit.video_ids import sample_id

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
    landmarks: np.ndarray | None = None  # (T, 478, 3) the clip's meshes in crop pixels, NaN where no face
    canonical: np.ndarray | None = None  # (T, 478, 3) the same without head pose

    def clip(self) -> Clip:
        """The clip as a pipeline with conditioning choices sees it; its frames are decoded as they are read."""
        def frames(size: int) -> Iterator[np.ndarray]:
            with schema.open_row_video(self.video) as reader:
                yield from reader.iter_chunks(size)

        return Clip(poses=self.pose, landmarks=self.landmarks, canonical=self.canonical, frames=frames)


@dataclasses.dataclass
class Request:
    """What to generate with: the model, its run folder and the sampling choices."""

    model: str
    checkpoint: Path | None
    dataset: Path | None = None
    pose: str = "reference"
    seed: int = 0
    num_samples: int = 1
    landmarks_only: bool = False
    steps: int | None = None
    render_steps: int | None = None
    guidance_scale: float | None = None
    device: str = "cpu"
    renderer_speaker: str | None = None  # draw every clip with this identity's renderer (a per-identity run)
    speakers: tuple[str, ...] = ()  # the speakers of the clips to generate
    conditions: dict[str, str] | None = None  # the model's named conditioning choices (Pipeline.condition_choices)


@dataclasses.dataclass
class Generator:
    """generate(job) -> [(canonical or None, frames or the clip's video bytes or None)] per sample; the fps
    (None: the dataset's), the configs by stage and the options generation.json records."""

    generate: Callable[[ClipJob], list]
    fps: float | None = None
    configs: dict = dataclasses.field(default_factory=dict)
    options: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class GenerationResult:
    clips: list[str]
    fps: float
    record: dict[str, Any]


def checkpoint_model(checkpoint: str | Path) -> registry.ModelSpec:
    """Which trained model a run folder holds, from its renderer stage's folder."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise FileNotFoundError(f"{checkpoint}: no such run folder")
    specs = registry.trained()
    found = [spec for spec in specs if (checkpoint / spec.renderer_stage).is_dir()]
    if len(found) != 1:
        expected = "; ".join(f"{spec.name}: {', '.join(spec.stages)}" for spec in specs)
        raise GenerationError(f"{checkpoint}: expected the stages of exactly one model ({expected}); found "
                              f"{', '.join(spec.name for spec in found) or 'none'}")
    return found[0]


def load_pipeline(model: str, checkpoint: str | Path, landmarks_only: bool = False, device: str = "cpu"):
    """The inference pipeline (:class:`baselines.pipeline.Pipeline`) of a trained model's run folder."""
    try:
        spec = registry.get_trained(model)
    except registry.UnknownModelError as exc:
        raise GenerationError(str(exc)) from None
    return spec.pipeline_class().from_run_dir(checkpoint, landmarks_only=landmarks_only, device=device)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_hashes(model: str, checkpoint: str | Path, landmarks_only: bool = False) -> dict[str, str]:
    """sha256 of each stage's weights that generating with `model` from `checkpoint` uses."""
    spec = registry.get(model)
    if not spec.needs_checkpoint:
        return {}
    if not Path(checkpoint).is_dir():
        raise FileNotFoundError(f"{checkpoint}: no such run folder")
    if isinstance(spec, registry.ModelSpec):
        trained, stages = spec, spec.stages
    else:  # a floor drawn by a trained model's renderer
        trained = checkpoint_model(checkpoint)
        stages = (trained.renderer_stage,)
    if landmarks_only:
        stages = tuple(s for s in stages if s != trained.renderer_stage)
    hashes = {}
    for stage in stages:
        folders = stage_folders(Path(checkpoint) / stage)
        if not folders:
            raise FileNotFoundError(f"{Path(checkpoint) / stage / WEIGHTS_NAME}: missing (train the stage with toolkit "
                                    f"train {trained.name} --stage {stage} --out {checkpoint})")
        for identity, folder in folders.items():  # one model, or one per identity (<stage>/<speaker>)
            hashes[stage if identity is None else f"{stage}/{identity}"] = sha256_file(folder / WEIGHTS_NAME)
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
                          mel=np.asarray(row[schema.MEL], np.float32), pose=pose, reference=reference, video=video,
                          landmarks=np.asarray(row[schema.LANDMARKS], np.float32),
                          canonical=np.asarray(row[schema.CANONICAL_LANDMARKS], np.float32))

    return ids, jobs


def generate_split(model: str, dataset: str | Path, out: str | Path, *, checkpoint: str | Path | None = None,
                   split: str = "test", clips: list[str] | None = None, pose: str = "reference", seed: int = 0,
                   num_samples: int = 1, landmarks_only: bool = False, steps: int | None = None,
                   render_steps: int | None = None, guidance_scale: float | None = None, device: str = "cpu",
                   renderer_speaker: str | None = None, conditions: dict[str, str] | None = None,
                   show_progress: bool = True) -> GenerationResult:
    """Generate every clip of `split` with `model` into `out` (see the module docstring); write generation.json.

    `pose`: ``reference`` (the model's own head pose: held still, generated, or the clip's where its
    `conditions` dub the clip) or ``clip`` (each clip's own poses). A run with one renderer per identity draws each clip with its speaker's and refuses a speaker
    without one, unless `renderer_speaker` names the identity whose renderer draws every clip (recorded). `num_samples` > 1 names the videos ``<clip_id>.sample<k>``. `steps`, `render_steps`,
    `guidance_scale`: the model's sampler settings where it has them (see its pipeline's
    ``sampling_options``); None keeps its config's. `conditions`: the model's named conditioning choices
    (:meth:`baselines.pipeline.Pipeline.condition_choices`; the others at their defaults, all recorded).
    """
    try:
        spec = registry.get(model)
    except registry.UnknownModelError as exc:
        raise GenerationError(str(exc)) from None
    if pose not in ("reference", "clip"):
        raise GenerationError(f"pose must be 'reference' or 'clip', got {pose!r}")
    if spec.needs_checkpoint and checkpoint is None:
        raise GenerationError(f"{model} needs a checkpoint: the run folder of toolkit train")
    if isinstance(spec, registry.BaselineSpec) and landmarks_only:
        raise GenerationError(f"{model} is a video baseline; it has no landmarks-only output")
    model_conditions(model, conditions)  # checked before any work (a baseline has none)
    out = Path(out)
    dataset = Path(dataset)
    weights = checkpoint_hashes(model, checkpoint, landmarks_only) if checkpoint is not None else {}
    decodes = not landmarks_only and getattr(spec, "decodes_frames", True)
    ids, jobs = dataset_jobs(dataset, split, clips, frames=decodes)
    rows = schema.load_split(dataset, split)
    speaker_of = dict(zip(map(str, rows[schema.CLIP_ID]), map(str, rows[schema.SPEAKER])))
    request = Request(model, Path(checkpoint) if checkpoint is not None else None, dataset, pose=pose, seed=seed,
                      num_samples=num_samples, landmarks_only=landmarks_only, steps=steps,
                      render_steps=render_steps, guidance_scale=guidance_scale, device=device,
                      renderer_speaker=renderer_speaker, speakers=tuple(sorted({speaker_of[i] for i in ids})),
                      conditions=conditions)
    maker = registry.import_target(spec.generator) if isinstance(spec, registry.BaselineSpec) else trained_generator
    generator = maker(request)
    generate, fps, configs, options = generator.generate, generator.fps, generator.configs, generator.options
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


def load_run_dir(request: Request):
    """(spec, pipeline, configs by stage, per-speaker conditions, whose renderer draws each speaker) of the
    trained model whose run folder `request` names: `request.model` itself, or for a floor the model whose
    stages the folder holds."""
    spec = registry.get(request.model)
    trained = spec if isinstance(spec, registry.ModelSpec) else checkpoint_model(request.checkpoint)
    pipeline = load_pipeline(trained.name, request.checkpoint, landmarks_only=request.landmarks_only,
                             device=request.device)
    drawn_by = {} if request.landmarks_only else renderer_identities(
        pipeline, trained, request.checkpoint, request.speakers, request.renderer_speaker)
    configs = {stage: pipeline.configs.get(stage) for stage in trained.stages
               if not (request.landmarks_only and stage == trained.renderer_stage)}
    means = pipeline.speaker_conditions(request.dataset) if _has_train(request.dataset) else {}
    return trained, pipeline, configs, means, drawn_by


def renderer_identities(pipeline, spec: registry.ModelSpec, checkpoint, speakers, renderer_speaker: str | None
                        ) -> dict[str, str]:
    """Whose renderer draws each of `speakers` ({} when one renderer draws every face). A run with one renderer
    per identity draws a speaker with its own; a speaker without one is refused before anything is generated,
    unless `renderer_speaker` names the identity whose renderer draws every clip."""
    known = pipeline.identities()
    where = Path(checkpoint) / spec.renderer_stage
    if known is None:
        if renderer_speaker is not None:
            raise GenerationError(f"{where}: one renderer draws every face in this run; a renderer speaker "
                                  f"({renderer_speaker!r}) does not apply")
        return {}
    if renderer_speaker is not None:
        if renderer_speaker not in known:
            raise GenerationError(f"{where}: no renderer for {renderer_speaker!r}; this run has one for "
                                  f"{', '.join(known)}")
        return {speaker: renderer_speaker for speaker in speakers}
    missing = [speaker for speaker in speakers if speaker not in known]
    if missing:
        raise GenerationError(
            f"{where}: no renderer for speaker(s) {', '.join(missing)}: this run has one renderer per identity, for "
            f"{', '.join(known)}. Train theirs (toolkit train {spec.name} --stage {spec.renderer_stage} --speaker "
            f"NAME --out {checkpoint}), or draw every clip with one identity's renderer (--renderer-speaker NAME, "
            "recorded in generation.json)")
    return {speaker: speaker for speaker in speakers}


def trained_generator(request: Request) -> Generator:
    """A trained model's pipeline, each clip conditioned on its speaker's means from the train split (and,
    for a model with conditioning choices, on the clip itself as they say)."""
    spec, pipeline, configs, means, drawn_by = load_run_dir(request)
    chosen = resolve_conditions(pipeline, request.conditions, clip=True, model=spec.name)
    options = pipeline.sampling_options(seed=request.seed, num_samples=request.num_samples,
                                        landmarks_only=request.landmarks_only, steps=request.steps,
                                        render_steps=request.render_steps, guidance_scale=request.guidance_scale)

    def animate(job: ClipJob):
        clip = {"clip": job.clip(), "conditions": chosen} if chosen else {}  # only to a model that has choices
        results = pipeline.generate(job.wav, job.reference, speaker=means.get(job.speaker),
                                    poses=job.pose if request.pose == "clip" else None, num_frames=job.num_frames,
                                    mel=job.mel, source=f"{request.dataset} [{job.clip_id}]",
                                    **identity_of(drawn_by, job.speaker), **clip,
                                    **{**options, "num_samples": request.num_samples})
        return [(r.canonical, r.frames) for r in results]

    return Generator(animate, pipeline.fps, configs,
                     {**options, **renderer_record(drawn_by, request), **conditions_record(chosen)})


def resolve_conditions(pipeline, given: dict[str, str] | None, *, clip: bool, model: str) -> dict[str, str]:
    """Every conditioning choice of `pipeline` (its class will do): `given` checked, the rest at their defaults
    ({} for a model without any). `clip`: a dataset clip is animated; False: a reference alone (``--audio``)."""
    allowed = pipeline.condition_choices(clip)
    given = dict(given or {})
    for key, value in given.items():
        if key not in allowed:
            raise GenerationError(f"{model} has no condition {key!r}" +
                                  (f" (it has {', '.join(allowed)})" if allowed else " (it has none)"))
        if value not in allowed[key] and not clip and value in pipeline.condition_choices(True).get(key, ()):
            raise GenerationError(f"{key}={value} needs a dataset clip (its frames, head poses and meshes), which "
                                  f"--audio input does not have; there {key} can only be {', '.join(allowed[key])}")
        if value not in allowed[key]:
            raise GenerationError(f"{model}: {key} must be one of {', '.join(allowed[key])}, got {value!r}")
    return {key: given.get(key, values[0]) for key, values in allowed.items()}


def model_conditions(model: str, given: dict[str, str] | None) -> dict[str, str]:
    """:func:`resolve_conditions` for dataset generation with `model` by name, before anything is loaded
    ({} for a baseline, which has no choices, and for a model without any)."""
    spec = registry.get(model)
    if not isinstance(spec, registry.ModelSpec):
        if given:
            raise GenerationError(f"{model} is a baseline; it has no conditioning choices")
        return {}
    return resolve_conditions(spec.pipeline_class(), given, clip=True, model=model)


def conditions_record(chosen: dict[str, str]) -> dict[str, Any]:
    """What generation.json says of the conditioning choices (nothing for a model without any)."""
    return {"conditions": dict(chosen)} if chosen else {}


def identity_of(drawn_by: dict[str, str], speaker: str | None) -> dict[str, Any]:
    """The ``identity`` keyword for a pipeline with one renderer per identity; nothing for any other (so a
    pipeline written without identities keeps working)."""
    return {"identity": drawn_by.get(speaker)} if drawn_by else {}


def renderer_record(drawn_by: dict[str, str], request: Request) -> dict[str, Any]:
    """What generation.json says of the renderers of a per-identity run (nothing for a shared renderer)."""
    if not drawn_by:
        return {}
    return {"renderer_speaker": request.renderer_speaker, "renderer_by_speaker": dict(sorted(drawn_by.items()))}


def _has_train(dataset: Path) -> bool:
    data = schema.load(dataset)
    return "train" in data and len(data["train"]) > 0


def generate_audio(model: str, checkpoint: Path, audio: Path, reference: Path, out: Path, *, landmarks_only: bool = False,
                   seed: int = 0, num_samples: int = 1, steps: int | None = None, render_steps: int | None = None,
                   guidance_scale: float | None = None, device: str = "cpu",
                   renderer_speaker: str | None = None, conditions: dict[str, str] | None = None
                   ) -> tuple[float, list[str]]:
    """One audio file and one reference image or video with a trained model: <audio stem>.mp4 (and .npy),
    generation.json. Returns the fps and the one id. A run with one renderer per identity needs
    `renderer_speaker`: the identity whose renderer draws the reference's face."""
    from talking_head.baselines.reference import reference_from_file

    spec = registry.get_trained(model)
    chosen = resolve_conditions(spec.pipeline_class(), conditions, clip=False, model=model)  # before loading
    pipeline = load_pipeline(model, checkpoint, landmarks_only=landmarks_only, device=device)
    request = Request(model, checkpoint, renderer_speaker=renderer_speaker)
    drawn_by = {} if landmarks_only else renderer_identities(
        pipeline, spec, checkpoint, (renderer_speaker,) if renderer_speaker else (), renderer_speaker)
    if not landmarks_only and pipeline.identities() is not None and renderer_speaker is None:
        raise GenerationError(f"{Path(checkpoint) / spec.renderer_stage}: this run has one renderer per identity "
                              f"({', '.join(pipeline.identities())}); name whose draws the reference with "
                              "--renderer-speaker NAME")
    renderer = pipeline.configs.get(spec.renderer_stage)
    if renderer is not None and "resolution" not in renderer:  # one config per identity
        renderer = renderer[drawn_by[renderer_speaker]]
    size = 512 if renderer is not None and int(renderer["resolution"]) > 256 else 256
    ref = reference_from_file(reference, size=size)
    try:
        wav = media.read_audio(audio)
    except media.MediaError as exc:
        raise ValueError(f"cannot read the audio: {exc}") from None
    options = pipeline.sampling_options(seed=seed, num_samples=num_samples, landmarks_only=landmarks_only, steps=steps,
                                        render_steps=render_steps, guidance_scale=guidance_scale)
    results = pipeline.generate(wav, ref, source=str(audio), **identity_of(drawn_by, renderer_speaker),
                                **({"conditions": chosen} if chosen else {}), **{**options, "num_samples": num_samples})
    for k, result in enumerate(results):
        name = sample_id(audio.stem, k) if num_samples > 1 else audio.stem
        with atomic_path(out / f"{name}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, result.canonical.astype(np.float32))
        if result.frames is not None:
            media.write_video(out / f"{name}.mp4", result.frames, fps=pipeline.fps, audio=wav)
    configs = {stage: pipeline.configs.get(stage) for stage in spec.stages
               if not (landmarks_only and stage == spec.renderer_stage)}
    write_json(out / RECORD, generation_record(
        model, checkpoint, checkpoint_hashes(model, checkpoint, landmarks_only), configs, pipeline.fps,
        num_samples, {"dataset": None, "split": None, "audio": str(audio), "reference": str(reference)},
        {**options, **renderer_record(drawn_by, request), **conditions_record(chosen), "pose": "reference",
         "num_samples": num_samples},
        [audio.stem]))
    return pipeline.fps, [audio.stem]
