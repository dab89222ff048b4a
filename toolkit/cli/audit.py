"""How much does re-encoding alone move each metric? Scores the generated videos as given and re-encoded
(H.264 CRF 18 and 28, H.265, audio to MP2 or Opus, 25 -> 30 -> 25 fps, a 2-px crop jitter), with the same
metrics against the same references, and reports per metric each variant's delta, the spread (the largest
|delta|) and whether it exceeds the half-width of the metric's 95% bootstrap interval: a difference between
two methods smaller than the spread may be the codec's doing. Writes OUT/audit.csv, audit.json (with
provenance: ffmpeg and its version, each variant's ffmpeg arguments, software, weight hashes) and audit.html;
the runs go to OUT/unmodified and OUT/variants/<name>, and the same command again reuses every finished run."""

from pathlib import Path
from typing import Optional

import typer

EXAMPLE = (
    "Examples: toolkit audit --generated out/videos --reference data/hdtf --out audits/mine  |  "
    "toolkit audit --generated fake/ --reference real/ --metrics psnr,lmd,pose --variants h264_crf28,h265,audio_mp2 "
    "--out audits/x  |  toolkit audit --generated fake/ --reference real/ --protocol hallo --out audits/y"
)


def _names(text: Optional[str]) -> Optional[list[str]]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else None


def audit(
    generated: Path = typer.Option(..., "--generated", help="Folder of generated videos (or a preprocessed dataset)."),
    reference: Path = typer.Option(..., "--reference", help="Preprocessed dataset (its crop videos) or a folder of videos."),
    out: Path = typer.Option(..., "--out", help="Audit folder: the runs, audit.csv, audit.json and audit.html."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Comma-separated metric names, as for "
                                          "`toolkit evaluate` (default: its default set)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="A published evaluation protocol by name "
                                           "(sets the metrics and their options), as for `toolkit evaluate`."),
    variants: Optional[str] = typer.Option(None, "--variants", help="Comma-separated re-encodings (default all): "
                                           "h264_crf18, h264_crf28, h265, audio_mp2, audio_opus, fps_25_30_25, "
                                           "crop_jitter_2px."),
    split: str = typer.Option("test", help="Dataset split to use when a side is a dataset."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    from rich.console import Console
    from rich.markup import escape

    from talking_head.leaderboards.audit import audit as run
    from talking_head.toolkit.media import MediaError

    console = Console()
    try:
        report = run(generated, reference, out, metrics=_names(metrics), variants=_names(variants), protocol=protocol,
                     split=split, device=device, show_progress=not quiet,
                     log=lambda line: console.print(line, markup=False))
    except (ValueError, FileNotFoundError, MediaError) as err:
        # soft_wrap: one line however narrow the terminal, so it greps and pastes whole
        console.print(f"[red]error:[/red] {escape((str(err).splitlines() or [type(err).__name__])[0])}", soft_wrap=True)
        raise typer.Exit(1)
    console.print(report_table(report))
    for line in (m["explanation"] for m in report["metrics"]):
        console.print(line, markup=False)
    for name, run_info in report["runs"].items():
        for metric, reason in run_info["skipped"].items():
            console.print(f"[yellow]{escape(name)}: skipped {escape(metric)}:[/yellow] {escape(reason)}")
        for video_id, reason in run_info["excluded"].items():
            console.print(f"[yellow]{escape(name)}: excluded {escape(video_id)}:[/yellow] {escape(reason)}")
    console.print(f"report: {out / 'audit.html'}  (numbers: {out / 'audit.csv'}, provenance: {out / 'audit.json'})",
                  markup=False)


def report_table(report: dict):
    """The audit as a rich table: one row per metric, the variants' deltas, the spread and the verdict."""
    from rich.table import Table

    def num(value, signed=False):
        if value is None or value == 0:
            return "–" if value is None else "0"
        return f"{value:+.3g}" if signed else f"{value:.4g}"

    variants = [v["name"] for v in report["variants"]]
    table = Table(title=f"re-encoding audit: {report['runs']['unmodified']['videos']} videos "
                        "(cells: variant - unmodified)")
    for name in ("metric", "unmodified", "95% CI ±", *variants, "spread", "vs CI"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    for m in report["metrics"]:
        deltas = [num(m["variants"][name]["delta"], signed=True) for name in variants]
        spread = f"{num(m['spread'])} {m['spread_variant'] or ''}".strip()
        verdict = {"larger": "[bold red]larger[/bold red]", "smaller": "smaller"}.get(m["verdict"], "no interval")
        table.add_row(m["label"], num(m["unmodified"]), num(m["half_width"]), *deltas, spread, verdict)
    return table
