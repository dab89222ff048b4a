"""Generate talking-head videos with a trained reference model: one mp4 (with the input audio) per clip,
named by clip id so `toolkit evaluate` pairs it with the reference, plus <id>.npy (the canonical landmarks).
With --num-samples K > 1 each clip gets K samples, <clip id>.sample<k>.mp4 (toolkit/video_ids.py).
With --dataset, the floor baselines ground-truth, static-reference and mean-landmarks generate too."""

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

EXAMPLE = (
    "Examples: toolkit generate --model dreamhead --checkpoint runs/dh --dataset data/sample --split test --out gen/  |  "
    "toolkit generate --model dreamhead --checkpoint runs/dh --audio speech.wav --reference face.jpg --out gen/  |  "
    "toolkit generate --model dreamhead --checkpoint runs/dh --dataset data/sample --landmarks-only --out lm/  |  "
    "toolkit generate --model moda --checkpoint runs/moda --dataset data/sample --num-samples 2 --out gen-moda/  |  "
    "toolkit generate --model mean-landmarks --checkpoint runs/moda --dataset data/sample --out floor/"
)
POSES = ("reference", "clip")


def generate(
    model: str = typer.Option(..., "--model", help="dreamhead or moda; with --dataset also the floor baselines "
                              "ground-truth, static-reference, mean-landmarks (rendered by --checkpoint's renderer)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Run folder of toolkit train (dreamhead: "
                                              "RUN_DIR/a2l, l2i; moda: RUN_DIR/motion, faco, renderer)."),
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
    from talking_head.baselines import generation

    console = Console(stderr=True, soft_wrap=True)
    if model not in generation.MODELS:
        raise typer.BadParameter(f"unknown model {model!r}; choose one of {', '.join(generation.MODELS)}",
                                 param_hint="--model")
    if (dataset is None) == (audio is None):
        raise typer.BadParameter("give either --dataset DIR or --audio WAV --reference IMAGE_OR_VIDEO")
    if audio is not None and model not in generation.TRAINED:
        raise typer.BadParameter(f"--audio needs a trained model ({', '.join(generation.TRAINED)})", param_hint="--model")
    if audio is not None and reference is None:
        raise typer.BadParameter("--audio needs --reference IMAGE_OR_VIDEO (the face to animate)", param_hint="--reference")
    if checkpoint is None and model not in ("ground-truth", "static-reference"):
        raise typer.BadParameter(f"{model} needs --checkpoint RUN_DIR (the run folder of toolkit train)",
                                 param_hint="--checkpoint")
    if pose not in POSES or (pose == "clip" and dataset is None):
        raise typer.BadParameter(f"--pose must be one of {POSES} ('clip' only with --dataset)", param_hint="--pose")

    try:
        if audio is not None:
            fps, clips = _generate_audio(model, checkpoint, audio, reference, out, landmarks_only=landmarks_only,
                                         seed=seed, num_samples=num_samples, a2l_steps=steps, l2i_steps=l2i_steps,
                                         guidance_scale=guidance)
        else:
            result = generation.generate_split(model, dataset, out, checkpoint=checkpoint, split=split, clips=clip,
                                               pose=pose, seed=seed, num_samples=num_samples,
                                               landmarks_only=landmarks_only, a2l_steps=steps, l2i_steps=l2i_steps,
                                               guidance_scale=guidance, show_progress=not quiet)
            fps, clips = result.fps, result.clips
    except (ValueError, FileNotFoundError) as exc:  # bad audio, reference, checkpoint or dataset: the message names it
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    kind = "landmark files" if landmarks_only else "videos"
    print(f"{len(clips) * num_samples} {kind} ({len(clips)} clips x {num_samples} samples) at {fps:g} fps in {out}")


def _generate_audio(model: str, checkpoint: Path, audio: Path, reference: Path, out: Path, *, landmarks_only: bool,
                    seed: int, num_samples: int, a2l_steps, l2i_steps, guidance_scale) -> tuple[float, list[str]]:
    """One audio file and one reference image or video: <audio stem>.mp4 (and .npy), generation.json."""
    import numpy as np

    from talking_head.baselines import generation
    from talking_head.baselines.reference import reference_from_file
    from talking_head.toolkit import media
    from talking_head.toolkit.fileio import atomic_path, write_json
    from talking_head.toolkit.video_ids import sample_id

    pipeline = generation.load_pipeline(model, checkpoint, landmarks_only=landmarks_only)
    image_model = getattr(pipeline, "l2i", None) or getattr(pipeline, "renderer", None)
    size = 512 if image_model is not None and int(image_model.config["resolution"]) > 256 else 256
    ref = reference_from_file(reference, size=size)
    try:
        wav = media.read_audio(audio)
    except media.MediaError as exc:
        raise ValueError(f"cannot read the audio: {exc}") from None
    if model == "moda":
        options = dict(seed=seed, landmarks_only=landmarks_only, num_samples=num_samples)
        results = pipeline(wav, ref, source=str(audio), **options)
    else:
        options = dict(seed=seed, a2l_steps=a2l_steps, l2i_steps=l2i_steps, guidance_scale=guidance_scale,
                       landmarks_only=landmarks_only)
        results = [pipeline(wav, ref, source=str(audio), **{**options, "seed": seed + k}) for k in range(num_samples)]
    for k, result in enumerate(results):
        name = sample_id(audio.stem, k) if num_samples > 1 else audio.stem
        with atomic_path(out / f"{name}.npy") as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, result.canonical.astype(np.float32))
        if result.frames is not None:
            media.write_video(out / f"{name}.mp4", result.frames, fps=pipeline.fps, audio=wav)
    configs = {stage: generation.stage_config(pipeline, stage) for stage in generation.STAGES[model]
               if not (landmarks_only and stage == generation.RENDERER_STAGE[model])}
    write_json(out / generation.RECORD, generation.generation_record(
        model, checkpoint, generation.checkpoint_hashes(model, checkpoint, landmarks_only), configs, pipeline.fps,
        num_samples, {"dataset": None, "split": None, "audio": str(audio), "reference": str(reference)},
        {**options, "pose": "reference", "num_samples": num_samples}, [audio.stem]))
    return pipeline.fps, [audio.stem]
