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


def parse_conditions(values: Optional[List[str]], hint: str = "--condition") -> dict:
    """KEY=VALUE pairs (repeated --condition) as a dict; a malformed or repeated key is a usage error."""
    parsed = {}
    for item in values or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip() or key.strip() in parsed:
            raise typer.BadParameter(f"expected KEY=VALUE, each key once, got {item!r}", param_hint=hint)
        parsed[key.strip()] = value.strip()
    return parsed


def generate(
    model: str = typer.Option(..., "--model", help="A model of baselines/registry.py: a trained one, or with --dataset "
                              "also ground truth and the floor baselines (mean-landmarks is drawn by --checkpoint's "
                              "renderer)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="Run folder of toolkit train (RUN_DIR/<stage> "
                                              "for every stage of the model)."),
    out: Path = typer.Option(..., "--out", help="Output folder: <clip id>.mp4 and <clip id>.npy."),
    dataset: Optional[Path] = typer.Option(None, "--dataset", help="Preprocessed dataset: animate every clip of --split."),
    split: str = typer.Option("test", "--split", help="--dataset: the split to generate."),
    clip: Optional[List[str]] = typer.Option(None, "--clip", help="--dataset: only these clip ids (repeatable)."),
    audio: Optional[Path] = typer.Option(None, "--audio", help="Driving audio (any audio or video file)."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="--audio: the face to animate (image or video)."),
    landmarks_only: bool = typer.Option(False, "--landmarks-only", help="No frames: write <id>.npy only."),
    pose: str = typer.Option("reference", "--pose", help="Head pose: reference (the model's own: held still, "
                             "generated, or with DreamHead's dubbing setting frame i's) or clip (--dataset: the "
                             "clip's own)."),
    condition: Optional[List[str]] = typer.Option(None, "--condition", help="KEY=VALUE, repeatable: a model's named "
                                                  "test-time conditioning choice, recorded in generation.json. "
                                                  "DreamHead: setting=dubbing|one_shot (I_mask from frame i with its "
                                                  "head pose, the --dataset default; or the reference frame, held "
                                                  "pose: the only one for --audio), identity=clip_mean|train_mean|"
                                                  "reference_frame (P-bar; --dataset default clip_mean)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    num_samples: int = typer.Option(1, "--num-samples", min=1, help="Samples per audio (a model's sampler draws, "
                                    "e.g. seeds seed..seed+K-1); K > 1 names them <id>.sample<k>."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Sampler steps of a diffusion model's landmark "
                                        "stage (default: the config's)."),
    render_steps: Optional[int] = typer.Option(None, "--l2i-steps", "--render-steps", min=1,
                                               help="Sampler steps of a diffusion renderer (default: the config's)."),
    guidance: Optional[float] = typer.Option(None, "--guidance", help="Audio guidance scale of a diffusion model "
                                             "(default: the config's)."),
    renderer_speaker: Optional[str] = typer.Option(None, "--renderer-speaker", help="A run with one renderer per "
                                                   "identity (MODA's protocol): draw every clip with this speaker's "
                                                   "renderer (recorded in generation.json); by default each clip is "
                                                   "drawn by its own speaker's and a speaker without one is refused. "
                                                   "With --audio: whose renderer draws the reference."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or cuda:N: where the model runs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    from talking_head.baselines import generation, registry
    from talking_head.toolkit.device import check_device

    console = Console(stderr=True, soft_wrap=True)
    try:
        spec = registry.get(model)
    except registry.UnknownModelError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from None
    if (dataset is None) == (audio is None):
        raise typer.BadParameter("give either --dataset DIR or --audio WAV --reference IMAGE_OR_VIDEO")
    if audio is not None and spec.kind != "trained":
        raise typer.BadParameter(f"--audio needs a trained model ({', '.join(registry.trained_names())})",
                                 param_hint="--model")
    if audio is not None and reference is None:
        raise typer.BadParameter("--audio needs --reference IMAGE_OR_VIDEO (the face to animate)", param_hint="--reference")
    if checkpoint is None and spec.needs_checkpoint:
        raise typer.BadParameter(f"{model} needs --checkpoint RUN_DIR (the run folder of toolkit train)",
                                 param_hint="--checkpoint")
    if pose not in POSES or (pose == "clip" and dataset is None):
        raise typer.BadParameter(f"--pose must be one of {POSES} ('clip' only with --dataset)", param_hint="--pose")
    try:
        check_device(device)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--device") from None
    conditions = parse_conditions(condition)

    try:
        if audio is not None:
            fps, clips = generation.generate_audio(model, checkpoint, audio, reference, out,
                                                   landmarks_only=landmarks_only, seed=seed, num_samples=num_samples,
                                                   steps=steps, render_steps=render_steps, guidance_scale=guidance,
                                                   device=device, renderer_speaker=renderer_speaker,
                                                   conditions=conditions)
        else:
            result = generation.generate_split(model, dataset, out, checkpoint=checkpoint, split=split, clips=clip,
                                               pose=pose, seed=seed, num_samples=num_samples,
                                               landmarks_only=landmarks_only, steps=steps, render_steps=render_steps,
                                               guidance_scale=guidance, device=device,
                                               renderer_speaker=renderer_speaker, conditions=conditions,
                                               show_progress=not quiet)
            fps, clips = result.fps, result.clips
    except (ValueError, FileNotFoundError) as exc:  # bad audio, reference, checkpoint or dataset: the message names it
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    kind = "landmark files" if landmarks_only else "videos"
    print(f"{len(clips) * num_samples} {kind} ({len(clips)} clips x {num_samples} samples) at {fps:g} fps in {out}")
