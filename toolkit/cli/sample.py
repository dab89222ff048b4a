"""Generate the built-in synthetic talking-head sample (videos, audio and per-frame ground truth)."""

from pathlib import Path

import typer
from rich.console import Console

EXAMPLE = "Example: toolkit sample --out outputs/sample --speakers 2 --clips 3 --seconds 6 --seed 0"


def sample(
    out: Path = typer.Option(..., "--out", help="Folder to write the sample to (created if needed)."),
    speakers: int = typer.Option(3, min=1, max=32, help="Number of speakers derived from the photo."),
    clips: int = typer.Option(3, min=1, help="Clips per speaker."),
    seconds: float = typer.Option(6.0, min=1.0, help="Length of each clip in seconds."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same sample."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    from talking_head.toolkit.sample import generate

    clips_written = generate(out, speakers=speakers, clips=clips, seconds=seconds, seed=seed, show_progress=not quiet)
    console = Console()
    console.print(f"Wrote {len(clips_written)} clips ({speakers} speakers x {clips} clips x {seconds:g} s, seed {seed}) to {out}/")
    console.print(f"  manifest: {out / 'sample.json'}")
    console.print(f"  first clip: {clips_written[0].video} (+ .wav, .npz ground truth, .timeline.json)")
