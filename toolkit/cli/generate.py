"""Generate talking-head videos with a trained reference model: one mp4 (with the input audio) per clip,
named by clip id so `toolkit evaluate` pairs it with the reference, plus <id>.npy (the canonical landmarks).
With --num-samples K > 1 each clip gets K samples, <clip id>.sample<k>.mp4 (toolkit/video_ids.py)."""

import tempfile
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

EXAMPLE = (
    "Examples: toolkit generate --model dreamhead --checkpoint runs/dh --dataset data/sample --split test --out gen/  |  "
    "toolkit generate --model dreamhead --checkpoint runs/dh --audio speech.wav --reference face.jpg --out gen/  |  "
    "toolkit generate --model dreamhead --checkpoint runs/dh --dataset data/sample --landmarks-only --out lm/  |  "
    "toolkit generate --model moda --checkpoint runs/moda --dataset data/sample --num-samples 2 --out gen-moda/"
)
MODELS = ("dreamhead", "moda")
STAGES = {"dreamhead": ("a2l", "l2i"), "moda": ("motion", "faco", "renderer")}
POSES = ("reference", "clip")


def generate(
    model: str = typer.Option(..., "--model", help="Reference model: dreamhead or moda."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Run folder of toolkit train (dreamhead: RUN_DIR/a2l, "
                                    "l2i; moda: RUN_DIR/motion, faco, renderer)."),
    out: Path = typer.Option(..., "--out", help="Output folder: <clip id>.mp4 and <clip id>.npy."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Preprocessed dataset: animate every clip of --split."),
    split: str = typer.Option("test", "--split", help="--dataset: the split to generate."),
    clip: Optional[List[str]] = typer.Option(None, "--clip", help="--dataset: only these clip ids (repeatable)."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Driving audio (any audio or video file)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="--audio: the face to animate (image or video)."),
    landmarks_only: bool = typer.Option(False, "--landmarks-only", help="No frames: write <id>.npy only."),
    pose: str = typer.Option("reference", "--pose", help="Head pose: reference (dreamhead: held still; moda: "
                             "generated) or clip (--dataset: the clip's own)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    num_samples: int = typer.Option(1, "--num-samples", min=1, help="Samples per audio (moda: t-VAE draws; "
                                    "dreamhead: seeds seed..seed+K-1); K > 1 names them <id>.sample<k>."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="A2L sampler steps (default: the config's)."),
    l2i_steps: Optional[int] = typer.Option(None, "--l2i-steps", min=1, help="L2I sampler steps (default: the config's)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="A2L audio guidance scale (default: the config's)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    console = Console(stderr=True, soft_wrap=True)
    if model not in MODELS:
        raise typer.BadParameter(f"unknown model {model!r}; choose one of {', '.join(MODELS)}", param_hint="--model")
    if (dataset is None) == (audio is None):
        raise typer.BadParameter("give either --dataset DIR or --audio WAV --reference IMAGE_OR_VIDEO")
    if audio is not None and reference is None:
        raise typer.BadParameter("--audio needs --reference IMAGE_OR_VIDEO (the face to animate)", param_hint="--reference")
    if pose not in POSES or (pose == "clip" and dataset is None):
        raise typer.BadParameter(f"--pose must be one of {POSES} ('clip' only with --dataset)", param_hint="--pose")

    import numpy as np

    from baselines.audio import AudioInputError
    from baselines.checkpoint import CheckpointError as StageCheckpointError
    from baselines.dreamhead.a2l_diffusion import CheckpointError
    from baselines.reference import ReferenceError
    from toolkit import media
    from toolkit.fileio import atomic_path, write_json
    from toolkit.progress import progress_bar
    from toolkit.provenance import software_versions
    from toolkit.video_ids import sample_id

    def fail(message: object) -> None:
        console.print(f"[red]error:[/red] {message}")
        raise typer.Exit(1)

    try:
        if model == "moda":
            from baselines.moda.pipeline import MODAPipeline

            pipeline = MODAPipeline.from_run_dir(checkpoint, landmarks_only=landmarks_only)
            options = dict(seed=seed, landmarks_only=landmarks_only, num_samples=num_samples)
        else:
            from baselines.dreamhead.pipeline import DreamHeadPipeline

            pipeline = DreamHeadPipeline.from_run_dir(checkpoint, landmarks_only=landmarks_only)
            options = dict(seed=seed, a2l_steps=steps, l2i_steps=l2i_steps, guidance_scale=guidance,
                           landmarks_only=landmarks_only)
    except (CheckpointError, StageCheckpointError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    if model == "dreamhead" and num_samples > 1:  # diffusion samples: one seed each
        base_call = pipeline.__call__

        def sampled(*args, seed: int = 0, **kwargs):
            return [base_call(*args, seed=seed + k, **kwargs) for k in range(num_samples)]
    else:
        def sampled(*args, **kwargs):
            result = pipeline(*args, **kwargs)
            return result if isinstance(result, list) else [result]

    def save(clip_id: str, results: list, wav: np.ndarray) -> None:
        for k, result in enumerate(results):
            name = sample_id(clip_id, k) if num_samples > 1 else clip_id
            with atomic_path(out / f"{name}.npy") as tmp:
                with open(tmp, "wb") as handle:
                    np.save(handle, result.canonical.astype(np.float32))
            if result.frames is not None:
                media.write_video(out / f"{name}.mp4", result.frames, fps=pipeline.fps, audio=wav)

    try:
        if audio is not None:
            jobs = [audio.stem]
            ref = _reference(reference, pipeline)
            try:
                wav = media.read_audio(audio)
            except media.MediaError as exc:
                fail(f"cannot read the audio: {exc}")
            save(audio.stem, sampled(wav, ref, source=str(audio), **options), wav)
        else:
            jobs = _generate_dataset(model, pipeline, sampled, dataset, split, clip, pose, options, save, quiet,
                                     progress_bar, fail)
    except (AudioInputError, ReferenceError, CheckpointError, StageCheckpointError) as exc:
        fail(exc)
    stages = [stage for stage in STAGES[model] if not (landmarks_only and stage in ("l2i", "renderer"))]
    write_json(out / "generation.json", {
        "model": model, "checkpoint": str(checkpoint),
        "weights_sha256": {stage: _sha256(checkpoint / stage / "model.safetensors") for stage in stages},
        "configs": {stage: _stage_config(pipeline, stage) for stage in stages},
        "fps_written": pipeline.fps,
        "fps_note": (f"videos are written at the model's {pipeline.fps:g} fps; toolkit evaluate resamples them to "
                     "25 fps where a metric needs it (SyncNet)"),
        "num_samples": num_samples,
        "inputs": {"dataset": str(dataset) if dataset else None, "split": split if dataset else None,
                   "audio": str(audio) if audio else None, "reference": str(reference) if reference else None},
        "options": {**options, "pose": pose, "num_samples": num_samples}, "clips": jobs,
        "software": software_versions(),
    })
    kind = "landmark files" if landmarks_only else "videos"
    print(f"{len(jobs) * num_samples} {kind} ({len(jobs)} clips x {num_samples} samples) at {pipeline.fps:g} fps in {out}")


def _stage_config(pipeline, stage: str):
    """The config a loaded pipeline's `stage` was trained with."""
    if hasattr(pipeline, "configs"):
        return pipeline.configs.get(stage)
    return getattr({"a2l": pipeline.a2l, "l2i": pipeline.l2i}[stage], "config", None)


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reference(path: Path, pipeline):
    from baselines.reference import reference_from_file

    image_model = getattr(pipeline, "l2i", None) or getattr(pipeline, "renderer", None)
    size = 512 if image_model is not None and int(image_model.config["resolution"]) > 256 else 256
    return reference_from_file(path, size=size)


def _generate_dataset(model: str, pipeline, sampled, dataset: Path, split: str, only, pose: str, options: dict, save,
                      quiet: bool, progress_bar, fail) -> list:
    """Every clip of `split` (or the `only` ids): the speaker's means from its training clips (DreamHead: P-bar;
    MODA: mesh, pose, shoulders), the first frame with a face as the reference."""
    import numpy as np
    from datasets import load_from_disk

    from baselines.reference import reference_from_row
    from baselines.subjects import speaker_means
    from toolkit import media

    if not (dataset / "dataset_dict.json").is_file():
        fail(f"{dataset}: not a preprocessed dataset (no dataset_dict.json; make one with toolkit preprocess)")
    data = load_from_disk(str(dataset))
    if split not in data:
        fail(f"{dataset}: no split {split!r} (splits: {', '.join(data)})")
    rows = data[split]
    ids = list(rows["clip_id"])
    if only:
        unknown = sorted(set(only) - set(ids))
        if unknown:
            fail(f"{dataset} [{split}]: no clips {unknown}")
        ids = [i for i in ids if i in set(only)]
    has_train = "train" in data and len(data["train"]) > 0
    if model == "moda":
        from baselines.moda.data import load_clips, subjects

        means = subjects(load_clips(dataset, "train", torso=True)) if has_train else {}
    else:
        means = speaker_means(dataset) if has_train else {}
    columns = ["clip_id", "speaker", "fps", "num_frames", "audio", "mel", "landmarks", "canonical_landmarks", "pose"]
    table = rows.select_columns(columns).with_format("numpy")
    done = []
    with progress_bar(len(ids), "generate", unit="clips", enabled=not quiet) as advance, \
            tempfile.TemporaryDirectory() as tmp:
        for index, clip_id in enumerate(rows["clip_id"]):
            if clip_id not in ids:
                continue
            row = table[index]
            if abs(float(row["fps"]) - pipeline.fps) > 1e-3:
                fail(f"{dataset}: clip {clip_id} is at {float(row['fps']):g} fps, the model at {pipeline.fps:g}")
            faces = np.flatnonzero(np.isfinite(np.asarray(row["landmarks"])).all(axis=(1, 2)))
            if not len(faces):
                fail(f"{dataset}: clip {clip_id} has no frame with a face to use as the reference")
            first_face = int(faces[0])
            frame = np.zeros((8, 8, 3), np.uint8)
            if not options["landmarks_only"]:  # the reference is the clip's first frame with a face
                video = Path(tmp) / f"{clip_id}.mp4"
                video.write_bytes(rows.select_columns(["video"])[index]["video"])
                with media.VideoReader(video, fps=None) as reader:
                    frame = reader.read_window(first_face, 1)[0]
            ref = reference_from_row(row, frame, first_face)
            wav = np.asarray(row["audio"]).astype(np.float32) / 32768.0
            poses = None
            if pose == "clip":
                poses = np.asarray(row["pose"], dtype=np.float32).copy()
                poses[~np.isfinite(poses).all(axis=1)] = ref.pose  # frames without a face keep the reference pose
            speaker = means.get(str(row["speaker"]))
            condition = {"subject": speaker} if model == "moda" else {"mean_landmarks": speaker}
            results = sampled(wav, ref, poses=poses, num_frames=int(row["num_frames"]),
                              mel=np.asarray(row["mel"], np.float32), source=f"{dataset} [{split}] {clip_id}",
                              **condition, **options)
            save(clip_id, results, wav)
            done.append(clip_id)
            advance(1, info=clip_id)
    return done
