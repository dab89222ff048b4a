"""Build an audio/landmark/frame dataset (Hugging Face `datasets` on disk) from videos."""

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

EXAMPLE = (
    "Examples: toolkit preprocess --dataset sample --out data/sample  |  "
    "toolkit preprocess --dataset folder --input my_videos/ --out data/mine --workers 2  |  "
    "toolkit preprocess --dataset hdtf --annotations HDTF/HDTF_dataset --input raw/ --out data/hdtf --fps 25"
)


def preprocess(
    dataset: str = typer.Option(..., "--dataset", help="Builder: sample, folder, hdtf or voxceleb2."),
    out: Path = typer.Option(..., "--out", help="Output folder (load it with datasets.load_from_disk)."),
    input: Optional[Path] = typer.Option(None, "--input", help="Videos: a folder (folder), raw downloads (hdtf), the VoxCeleb2 root."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="hdtf: folder with the official annotation files."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="hdtf: another published list of test clips."),
    speakers_csv: Optional[Path] = typer.Option(None, "--speakers-csv", help="folder: CSV with columns file,speaker."),
    vox_split: Optional[str] = typer.Option(None, "--vox-split", help="voxceleb2: dev or test (default both)."),
    fps: float = typer.Option(25.0, help="Output frame rate (30 for MODA-style data)."),
    size: int = typer.Option(512, help="Crop size: 512 or 256."),
    workers: int = typer.Option(1, min=1, help="Worker processes (or Ray CPUs)."),
    engine: str = typer.Option("local", help="local (process pool) or ray."),
    address: Optional[str] = typer.Option(None, help="ray: address of an existing cluster (default: start one locally)."),
    landmarks68: bool = typer.Option(False, "--landmarks68", help="Also 68-point FAN landmarks (needs face-alignment's weights)."),
    audio_features: Optional[str] = typer.Option(None, "--audio-features", help="Also wav2vec2 or hubert hidden states."),
    test_fraction: float = typer.Option(0.1, help="Share of clips in the test split when the builder sets none."),
    adapt_fraction: Optional[float] = typer.Option(
        None, "--adapt-fraction",
        help="Cut every test clip into an 'adapt' split (its first FRACTION, e.g. 0.8) and the test rest, for "
             "models fitted to each test person (docs/architecture.md, 'Adaptation splits')."),
    sample_speakers: int = typer.Option(3, help="sample: speakers."),
    sample_clips: int = typer.Option(3, help="sample: clips per speaker."),
    sample_seconds: float = typer.Option(6.0, help="sample: seconds per clip."),
    seed: int = typer.Option(0, help="sample: generator seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    from talking_head.preprocessing.builders import BUILDERS
    from talking_head.preprocessing.pipeline import PreprocessConfig
    from talking_head.preprocessing.runner import preprocess as run_preprocess

    console = Console(stderr=True)
    if dataset not in BUILDERS:
        raise typer.BadParameter(f"unknown dataset {dataset!r}; choose one of {', '.join(BUILDERS)}", param_hint="--dataset")
    if adapt_fraction is not None and not 0 < adapt_fraction < 1:
        raise typer.BadParameter(f"must be between 0 and 1, got {adapt_fraction}", param_hint="--adapt-fraction")
    try:
        config = PreprocessConfig(fps=fps, size=size, landmarks68=landmarks68, audio_features=audio_features)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if dataset == "sample":
        sources, problems = BUILDERS["sample"](out / "raw_sample", sample_speakers, sample_clips, sample_seconds, seed)
        inputs = {"speakers": sample_speakers, "clips": sample_clips, "seconds": sample_seconds, "seed": seed}
    else:
        if input is None:
            raise typer.BadParameter(f"--dataset {dataset} needs --input", param_hint="--input")
        if dataset == "folder":
            sources, problems = BUILDERS["folder"](input, speakers_csv)
        elif dataset == "hdtf":
            if annotations is None:
                raise typer.BadParameter("--dataset hdtf needs --annotations", param_hint="--annotations")
            sources, problems = BUILDERS["hdtf"](annotations, input, split_file)
        else:
            sources, problems = BUILDERS["voxceleb2"](input, vox_split)
        inputs = {"input": str(input), "annotations": str(annotations) if annotations else None,
                  "split_file": str(split_file) if split_file else None}
    for problem in problems:
        console.print(f"[yellow]skipped:[/] {problem}")
    warnings = list(getattr(problems, "warnings", ()))  # notes (missing metadata), not failures
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    parameters = {"dataset": dataset, "inputs": inputs, "workers": workers, "engine": engine}
    result, summary = run_preprocess(
        sources, out, config, parameters=parameters, problems=problems, workers=workers, engine=engine,
        address=address, test_fraction=test_fraction, show_progress=not quiet, adapt_fraction=adapt_fraction,
    )
    failed = len(summary.failed)
    rate = summary.frames / summary.seconds if summary.seconds else 0.0
    print(f"{len(summary.done)} clips done, {failed} failed, {len(warnings)} warnings, {summary.frames} frames in "
          f"{summary.seconds:.1f} s ({rate:.1f} frames/s)")
    if result is not None:
        counts = ", ".join(f"{k}: {len(v)}" for k, v in result.items())
        print(f"dataset: {out} ({counts}); card: {out / 'README.md'}")
    if summary.probable_bug():
        console.print(f"[red]{summary.probable_bug()}[/]")
    if failed:
        print(f"failures: {out / 'failures.jsonl'}")
        raise typer.Exit(code=2)
