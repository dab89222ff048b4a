"""Score generated videos against reference clips with the registered metrics (listed under --metrics below).
Videos that cannot be scored are listed as excluded, with the reason; the exit code is then 2.

With --model NAME the test split of the --reference dataset is generated first (dreamhead, moda, or the
baselines ground-truth, static-reference, mean-landmarks) and the run directory goes into the results
store --runs (RUNS/<model>-<hash>/: run.json, generated/, summary.json, per_video.csv); the same command
again reuses the finished run. `toolkit leaderboard --runs RUNS` tabulates them."""

from pathlib import Path
from typing import List, Optional

import typer

from talking_head.metrics import bootstrap as intervals, registry
from talking_head.toolkit.cli.output import OutputFormat, stdout_console, write_records

EXCLUDED_EXIT = 2  # some videos could not be scored (listed in summary.json); the others were
PRESETS = registry.preset_defaults()

EXAMPLE = (
    "Examples: toolkit evaluate --generated out/videos --reference data/hdtf --out runs/mine  |  "
    "toolkit evaluate --generated fake/ --reference real/ --metrics fid,lmd,psnr --out runs/x  |  "
    "toolkit evaluate --generated full_frames/ --reference real/ --metrics lse --preset mocha --out runs/y  "
    "(folders pair by file name; a dataset made by `toolkit preprocess` pairs by clip id, split test)  |  "
    "toolkit evaluate --model moda --checkpoint runs/moda --reference data/sample --runs results/  |  "
    "toolkit evaluate --model static-reference --reference data/sample --runs results/  |  "
    "toolkit evaluate --protocol hallo --generated fake/ --reference data/hdtf --out runs/hallo  "
    "(a published protocol by name: toolkit evaluate --list-protocols)  |  "
    "toolkit evaluate ... --format json > table.json  (csv: one row per metric.key; messages go to stderr)"
)

RESULT_FIELDS = ("metric", "key", "value", "low", "high", "ground_truth", "ground_truth_normalised")


def format_value(value: float, summary: dict, metric: str, key: str) -> str:
    """A summary number as printed: ``12.34`` or, with its confidence interval, ``12.34 [11.9, 12.8]``."""
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    found = (summary.get("intervals", {}).get(metric) or {}).get(key)
    if isinstance(found, dict) and found.get("low") is not None and found.get("high") is not None:
        text += f" [{found['low']:.4g}, {found['high']:.4g}]"
    return text


def evaluate(
    generated: Optional[Path] = typer.Option(None, "--generated", help="Folder of generated videos, or a preprocessed dataset."),
    reference: Optional[Path] = typer.Option(None, "--reference", help="Preprocessed dataset (its crop videos) or a folder of videos."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder: per_video.csv and summary.json are written there."),
    model: Optional[str] = typer.Option(None, "--model", help="Generate the split first with dreamhead, moda, "
                                        "ground-truth, static-reference or mean-landmarks (instead of --generated)."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="--model: the run folder of toolkit train "
                                              "(mean-landmarks: whose renderer draws the mean mesh)."),
    runs: Path = typer.Option(Path("results"), "--runs", help="--model: the results store; the run goes to "
                              "RUNS/<model>-<hash>/."),
    name: Optional[str] = typer.Option(None, "--name", help="--model: the run's label on leaderboards."),
    seed: int = typer.Option(0, "--seed", help="--model: sampling seed."),
    num_samples: int = typer.Option(1, "--num-samples", min=1, help="--model: samples per clip."),
    condition: Optional[List[str]] = typer.Option(None, "--condition", help="--model: KEY=VALUE, repeatable: a "
                                                  "model's conditioning choice, as toolkit generate --condition "
                                                  "(part of the run's key, and its leaderboard label)."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Run a published evaluation protocol exactly (its "
                                           "metrics, variants, frame rate and split; see --list-protocols): a name "
                                           "or a protocol .yaml file."),
    list_protocols: bool = typer.Option(False, "--list-protocols", help="List the protocols and exit."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help=(
        f"Comma-separated: {', '.join(registry.default_names())} (the default set)"
        + "".join(f", {n}" for n in registry.selectable_names() if n not in registry.default_names()) + ".")),
    preset: Optional[str] = typer.Option(None, "--preset", help=f"LSE protocol: {PRESETS['lse_preset']} (frames resized to 224; face-crop videos) or, for full-frame videos, S3FD face tracks aggregated as wav2lip_real, mocha or latentsync."),
    lse_frames: Optional[str] = typer.Option(None, "--lse-frames", help=f"LSE frames: {PRESETS['lse_frames']} (the reference's chain: ffmpeg dumps JPEGs, read back with cv2; reference videos cached by content) or decoded (the decoded frames: faster, not the reference's numbers)."),
    fvd_variant: Optional[str] = typer.Option(None, "--fvd-variant", help=f"FVD: {PRESETS['fvd_variant']} (StyleGAN-V's TorchScript I3D, 16-frame clips), videogpt (VideoGPT/TATS I3D, as cd-fvd), disco (DisCo's GIF sliding windows, as Hallo reports) or latentsync (LatentSync's face-crop frames 20-35)."),
    lmd_preset: Optional[str] = typer.Option(None, "--lmd-preset", help=f"LMD: {PRESETS['lmd_preset']} (MediaPipe mesh, % of inter-ocular distance), atvgnet or vico (FAN 68 points, pixels)."),
    split: Optional[str] = typer.Option(None, help="Dataset split to use when a side is a dataset (default: test, or "
                                        "the protocol's)."),
    device: str = typer.Option("cpu", help="cpu or cuda."),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (the pairs scored by Ray "
                               "workers with the metrics resident; the same numbers)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="ray: workers (default: one per CPU, or "
                                          "per GPU with --device cuda, of the cluster)."),
    address: Optional[str] = typer.Option(None, "--address", help="ray: address of an existing cluster (default: "
                                          "start one on this machine)."),
    reference_meshes: str = typer.Option("stored", "--reference-meshes", help="Against a dataset: stored (the "
                                         "meshes toolkit preprocess kept for the reference crops, no MediaPipe "
                                         "run) or mediapipe (run it on the decoded reference frames)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    bootstrap: int = typer.Option(intervals.RESAMPLES, "--bootstrap", min=0, help="Confidence intervals: resamples "
                                  "of the videos (percentile bootstrap, 95%) for the means of per-video values; 0: none."),
    bootstrap_set_level: int = typer.Option(intervals.SET_LEVEL_RESAMPLES, "--bootstrap-set-level", min=0,
                                            help="Resamples (the first of the same draws) for the set-level "
                                                 "statistics: FID, KID, frame-pooled means."),
    bootstrap_seed: int = typer.Option(intervals.SEED, "--bootstrap-seed", help="Seed of the bootstrap draws."),
    fmt: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", case_sensitive=False, help=(
        "The result table as table, json (one object: the numbers with their intervals, ground truth and "
        "GT-normalised score, skipped metrics, excluded videos, files) or csv (one row per metric.key). "
        "With json/csv nothing else goes to stdout; messages go to stderr.")),
) -> None:
    import contextlib
    import sys

    from rich.console import Console

    from talking_head.metrics.runner import evaluate as run

    machine = fmt is not OutputFormat.table
    console = Console(stderr=True) if machine else stdout_console()  # messages; json/csv keep stdout to themselves
    if list_protocols:
        print_protocols(stdout_console())
        return
    chosen = None
    if protocol is not None:
        from talking_head.metrics import protocols

        given = [flag for flag, value in (("--metrics", metrics), ("--preset", preset), ("--lse-frames", lse_frames),
                                          ("--fvd-variant", fvd_variant), ("--lmd-preset", lmd_preset)) if value]
        if given:
            raise typer.BadParameter(f"the protocol sets the metrics and their options; drop {', '.join(given)}",
                                     param_hint="--protocol")
        try:
            chosen = protocols.load(protocol)
        except ValueError as err:
            raise typer.BadParameter(str(err), param_hint="--protocol")
        if split is not None and split != chosen.split:
            raise typer.BadParameter(f"{chosen.heading} scores split {chosen.split!r}", param_hint="--split")
    names = [n.strip() for n in metrics.split(",") if n.strip()] if metrics else registry.default_names()
    flags = {"lse_preset": preset, "lse_frames": lse_frames, "lmd_preset": lmd_preset, "fvd_variant": fvd_variant}
    drawn = {"bootstrap": bootstrap, "bootstrap_set_level": bootstrap_set_level, "bootstrap_seed": bootstrap_seed}
    if reference is None:
        raise typer.BadParameter("give --reference DATASET|DIR (the real clips the videos are scored against)",
                                 param_hint="--reference")
    if (model is None) == (generated is None):
        raise typer.BadParameter("give either --generated DIR (videos to score) or --model NAME (generate, then score)")
    if model is None and out is None:
        raise typer.BadParameter("--generated needs --out RUN_DIR", param_hint="--out")
    if model is not None and out is not None:
        raise typer.BadParameter("with --model the run directory is RUNS/<model>-<hash>: give --runs, not --out",
                                 param_hint="--out")
    if model is not None and engine != "local":
        raise typer.BadParameter("--engine ray applies to --generated runs", param_hint="--engine")
    if model is None and condition:
        raise typer.BadParameter("--condition applies to --model runs", param_hint="--condition")
    from talking_head.toolkit.cli.generate import parse_conditions

    conditions = parse_conditions(condition)
    if model is not None and lse_frames not in (None, PRESETS["lse_frames"]):
        raise typer.BadParameter(f"--model runs score LSE with the default frames ({PRESETS['lse_frames']}); "
                                 "--lse-frames applies to --generated runs", param_hint="--lse-frames")
    # json/csv: whatever a library prints while scoring goes to stderr, so stdout parses
    quiet_stdout = contextlib.redirect_stdout(sys.stderr) if machine else contextlib.nullcontext()
    try:
        with quiet_stdout:
            summary, out = _score(run, console, model, generated, reference, out, runs, checkpoint, split, names, flags,
                                  drawn, chosen, preset, lmd_preset, fvd_variant, seed, num_samples, name, device, quiet,
                                  {"reference_meshes": reference_meshes, "engine": engine, "workers": workers,
                                   "address": address}, conditions)
    except (ValueError, FileNotFoundError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(1)
    if machine:
        write_records(result_records(summary), fmt, RESULT_FIELDS, document=result_document(summary, out))
    else:
        console.print(result_table(summary))
    console.print(throughput_line(summary), markup=False)
    if summary.get("intervals"):
        record = summary["bootstrap"]
        console.print(f"[low, high]: {100 * record['level']:g}% {record['method']}, {record['resamples']} resamples "
                      f"({record['set_level_resamples']} for set-level statistics), seed {record['seed']}", markup=False)
    for metric, reason in summary["skipped"].items():
        console.print(f"[yellow]skipped {metric}:[/yellow] {reason}")
    for video_id, reason in summary.get("excluded", {}).items():
        console.print(f"[yellow]excluded {video_id}:[/yellow] {reason}")
    console.print(f"per video: {out / 'per_video.csv'}\nsummary: {out / 'summary.json'}")
    if summary.get("excluded"):
        raise typer.Exit(EXCLUDED_EXIT)


def _score(run, console, model, generated, reference, out, runs, checkpoint, split, names, flags, drawn, chosen,
           preset, lmd_preset, fvd_variant, seed, num_samples, name, device, quiet, run_options, conditions=None):
    """Run the evaluation (or generate, then evaluate): (summary, run folder)."""
    if model is None:
        if chosen is not None:
            summary = run(generated, reference, out=out, device=device, show_progress=not quiet, protocol=chosen,
                          **run_options, **drawn)
        else:
            summary = run(generated, reference, metrics=names, out=out, split=split, device=device,
                          show_progress=not quiet, **run_options, **flags, **drawn)
    else:
        from talking_head.leaderboards.runs import evaluate_model

        result = evaluate_model(model, reference, runs, checkpoint=checkpoint, split=split or "test",
                                metrics=None if chosen else names, lse_preset=preset, lmd_preset=lmd_preset,
                                fvd_variant=fvd_variant, seed=seed, num_samples=num_samples, label=name,
                                device=device, show_progress=not quiet, bootstrap=drawn, protocol=chosen,
                                conditions=conditions or None)
        summary, out = result.summary, result.run_dir
        if result.reused:
            console.print(f"{out}: this run is complete already (same model, weights, data and metrics); reused")
    return summary, out


def result_table(summary: dict):
    """The printed table: headed by the protocol and its hash when one ran; each number with its interval,
    the ground truth's value of it and, where it applies, the ground-truth-normalised score."""
    from rich.table import Table

    heading = f"{summary['videos']} videos, {summary['frames']} frames"
    if summary.get("protocol"):
        heading = f"protocol {summary['protocol']['name']} (hash {summary['protocol']['hash']}) · {heading}"
    truths, normalised = summary.get("ground_truth") or {}, summary.get("ground_truth_normalised") or {}
    table = Table(title=heading)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("ground truth", justify="right")
    table.add_column("GT-normalised", justify="right")
    for metric, values in summary["results"].items():
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                truth = ((truths.get(metric) or {}).get(key) or {}).get("value")
                score = (normalised.get(metric) or {}).get(key)
                table.add_row(f"{metric}.{key}", format_value(value, summary, metric, key),
                              "" if truth is None else f"{truth:.4g}", "" if score is None else f"{score:.3f}")
    return table


def result_records(summary: dict) -> list[dict]:
    """The result table's rows as data, one per metric.key: value, interval (low, high; None without one),
    the ground truth's value and the GT-normalised score (None where they do not apply)."""
    truths, normalised = summary.get("ground_truth") or {}, summary.get("ground_truth_normalised") or {}
    rows = []
    for metric, values in summary["results"].items():
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found = (summary.get("intervals", {}).get(metric) or {}).get(key)
                found = found if isinstance(found, dict) else {}
                rows.append({"metric": metric, "key": key, "value": value, "low": found.get("low"),
                             "high": found.get("high"),
                             "ground_truth": ((truths.get(metric) or {}).get(key) or {}).get("value"),
                             "ground_truth_normalised": (normalised.get(metric) or {}).get(key)})
    return rows


def result_document(summary: dict, out=None) -> dict:
    """What --format json prints around the rows: the run's size, protocol, interval method, what was skipped
    or excluded and where the files are."""
    protocol = summary.get("protocol")
    record = summary.get("bootstrap") or {}
    return {
        "videos": summary.get("videos"), "frames": summary.get("frames"),
        "protocol": {"name": protocol["name"], "hash": protocol["hash"]} if protocol else None,
        "intervals": {k: record.get(k) for k in ("level", "method", "resamples", "set_level_resamples", "seed")}
        if summary.get("intervals") else None,
        "skipped": dict(summary.get("skipped") or {}), "excluded": dict(summary.get("excluded") or {}),
        "files": None if out is None else {"per_video": str(out / "per_video.csv"), "summary": str(out / "summary.json")},
    }


def throughput_line(summary: dict) -> str:
    """``throughput: 212 frames/s on cpu (2 cores, x86_64); decode 900, face_mesh 70, fid 310 frames/s``."""
    found = summary.get("throughput") or {}
    stages = ", ".join(f"{stage} {values['frames_per_second']:.0f}" for stage, values in (found.get("stages") or {}).items()
                       if values.get("frames_per_second") is not None)
    total = found.get("frames_per_second")
    return (f"throughput: {total:.1f} frames/s on {found.get('device')}" if total is not None else
            f"throughput on {found.get('device')}") + (f"; per stage {stages} frames/s" if stages else "")


def print_protocols(console) -> None:
    """Every shipped protocol: name, hash, title, metrics."""
    from rich.table import Table

    from talking_head.metrics import protocols

    table = Table(title="evaluation protocols (toolkit evaluate --protocol NAME)")
    for column in ("name", "hash", "title", "metrics", "silent knobs"):
        table.add_column(column)
    for name in protocols.available():
        found = protocols.load(name)
        table.add_row(name, found.hash, found.title,
                      ", ".join(f"{m}({', '.join(f'{k}={v}' for k, v in o.items())})" if o else m
                                for m, o in found.metrics.items()), str(len(found.silent_knobs())))
    console.print(table)
