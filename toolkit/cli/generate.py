"""Generate talking-head videos with a trained reference model: one mp4 (with the input audio) per clip,
named by clip id so `toolkit evaluate` pairs it with the reference, plus <id>.npy (the canonical landmarks)."""

import tempfile
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

EXAMPLE = (
    "Examples: toolkit generate --model dreamhead --checkpoint runs/dh --dataset data/sample --split test --out gen/  |  "
    "toolkit generate --model dreamhead --checkpoint runs/dh --audio speech.wav --reference face.jpg --out gen/  |  "
    "toolkit generate --model dreamhead --checkpoint runs/dh --dataset data/sample --landmarks-only --out lm/"
)
MODELS = ("dreamhead",)
POSES = ("reference", "clip")


def generate(
    model: str = typer.Option(..., "--model", help="Reference model: dreamhead."),
    checkpoint: Path = typer.Option(..., "--checkpoint", help="Run folder of toolkit train (RUN_DIR with a2l/, l2i/)."),
    out: Path = typer.Option(..., "--out", help="Output folder: <clip id>.mp4 and <clip id>.npy."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Preprocessed dataset: animate every clip of --split."),
    split: str = typer.Option("test", "--split", help="--dataset: the split to generate."),
    clip: Optional[List[str]] = typer.Option(None, "--clip", help="--dataset: only these clip ids (repeatable)."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Driving audio (any audio or video file)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="--audio: the face to animate (image or video)."),
    landmarks_only: bool = typer.Option(False, "--landmarks-only", help="Only A2L: write <id>.npy, no video."),
    pose: str = typer.Option("reference", "--pose", help="Head pose: reference (held still) or clip (--dataset: the clip's own)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
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

    from baselines.dreamhead.a2l_diffusion import CheckpointError
    from baselines.dreamhead.audio_encoder import AudioInputError
    from baselines.dreamhead.pipeline import DreamHeadPipeline, ReferenceError
    from toolkit import media
    from toolkit.fileio import atomic_path, write_json
    from toolkit.progress import progress_bar
    from toolkit.provenance import software_versions

    def fail(message: object) -> None:
        console.print(f"[red]error:[/red] {message}")
        raise typer.Exit(1)

    try:
        pipeline = DreamHeadPipeline.from_run_dir(checkpoint, landmarks_only=landmarks_only)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        fail(exc)
    options = dict(seed=seed, a2l_steps=steps, l2i_steps=l2i_steps, guidance_scale=guidance, landmarks_only=landmarks_only)

    def save(clip_id: str, result, wav: np.ndarray) -> None:
        with atomic_path(out / f"{clip_id}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, result.canonical.astype(np.float32))
        if result.frames is not None:
            media.write_video(out / f"{clip_id}.mp4", result.frames, fps=pipeline.fps, audio=wav)

    try:
        if audio is not None:
            jobs = [audio.stem]
            ref = _reference(reference, pipeline)
            try:
                wav = media.read_audio(audio)
            except media.MediaError as exc:
                fail(f"cannot read the audio: {exc}")
            result = pipeline(wav, ref, source=str(audio), **options)
            save(audio.stem, result, wav)
        else:
            jobs = _generate_dataset(pipeline, dataset, split, clip, pose, options, save, quiet, progress_bar, fail)
    except (AudioInputError, ReferenceError, CheckpointError) as exc:
        fail(exc)
    write_json(out / "generation.json", {
        "model": model, "checkpoint": str(checkpoint),
        "weights_sha256": {stage: _sha256(checkpoint / stage / "model.safetensors")
                           for stage in ("a2l", "l2i") if (stage == "a2l" or not landmarks_only)},
        "a2l_config": pipeline.a2l.config,
        "l2i_config": getattr(pipeline.l2i, "config", None),
        "inputs": {"dataset": str(dataset) if dataset else None, "split": split if dataset else None,
                   "audio": str(audio) if audio else None, "reference": str(reference) if reference else None},
        "options": {**options, "pose": pose}, "clips": jobs, "software": software_versions(),
    })
    kind = "landmark files" if landmarks_only else "videos"
    print(f"{len(jobs)} {kind} in {out}")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _reference(path: Path, pipeline):
    from baselines.dreamhead.pipeline import reference_from_file

    size = 512 if pipeline.l2i is not None and int(pipeline.l2i.resolution) > 256 else 256
    return reference_from_file(path, size=size)


def _generate_dataset(pipeline, dataset: Path, split: str, only, pose: str, options: dict, save, quiet: bool,
                      progress_bar, fail) -> list:
    """Every clip of `split` (or the `only` ids): P-bar from the speaker's training clips, the first frame with a
    face as the reference."""
    import numpy as np
    from datasets import load_from_disk

    from baselines.dreamhead.a2l_diffusion import speaker_means
    from baselines.dreamhead.pipeline import reference_from_row
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
    means = speaker_means(dataset) if "train" in data and len(data["train"]) else {}
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
            result = pipeline(wav, ref, mean_landmarks=means.get(str(row["speaker"])), poses=poses,
                              num_frames=int(row["num_frames"]), mel=np.asarray(row["mel"], np.float32),
                              source=f"{dataset} [{split}] {clip_id}", **options)
            save(clip_id, result, wav)
            done.append(clip_id)
            advance(1, info=clip_id)
    return done
