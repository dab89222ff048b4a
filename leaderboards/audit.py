"""`toolkit audit`: how far re-encoding alone moves each metric, next to the metric's own confidence interval.

Re-encoding alone (H.264 -> H.265, AAC -> MP2) moves LSE by 0.4-1.2 (THEval, CVPR 2026), more than many of
the differences papers report. :func:`audit` scores the generated videos as given and after each re-encoding
variant (:data:`toolkit.media.VARIANTS`), with the same metrics against the same references, and reports per
leaderboard column the unmodified value, the half-width of its 95% bootstrap interval, each variant's delta,
the spread (the largest |delta|, and its variant) and whether that spread is larger than the interval::

    OUT/unmodified/                   evaluate() on the generated videos: summary.json, per_video.csv
    OUT/variants/<name>/generated/    the re-encoded videos, at their ids' relative paths (pairing still works)
    OUT/variants/<name>/              that variant's evaluate() run
    OUT/audit.csv  audit.json  audit.html

Only the videos the unmodified run scored are re-encoded, so every run scores the same set. The
re-encoded videos sit in ``generated/``, not ``videos/``: the runner caches a dataset's videos in
``RUN/videos/``, and a reference cached inside the generated folder would be paired as a generated video.

Resumable: a run whose folder holds ``summary.json`` and an ``audit_run.json`` with the same parameters
(inputs' content sha256, metrics, protocol, split, device, the variant's ffmpeg arguments and the ffmpeg
version) is read back, not redone; any other run folder is cleared and redone. Every file is written
atomically (the runner's, the re-encoded videos, the reports).
"""

from __future__ import annotations

import csv
import hashlib
import html
import inspect
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from talking_head.leaderboards.columns import COLUMNS
from talking_head.leaderboards.runs import dataset_fingerprint
from talking_head.metrics import registry
from talking_head.metrics.pairing import is_dataset
from talking_head.metrics.results import SCORED, plain
from talking_head.metrics.runner import evaluate
from talking_head.toolkit import media
from talking_head.toolkit.fileio import atomic_path, write_json
from talking_head.toolkit.media.reencode import ffmpeg_exe, find_variant, missing_encoders
from talking_head.toolkit.progress import progress_bar
from talking_head.toolkit.provenance import software_versions

SCHEMA = "talking-head-toolkit/audit/1"
UNMODIFIED, VARIANTS_DIR, GENERATED = "unmodified", "variants", "generated"
RUN_RECORD, SUMMARY = "audit_run.json", "summary.json"
LARGER, SMALLER = "larger", "smaller"  # the verdict: the codec spread vs the interval half-width
CSV_FIELDS = ("metric", "label", "better", "unmodified", "low", "high", "half_width", "variant", "value", "delta",
              "excluded", "spread", "spread_variant", "verdict")
HOW_TO_READ = (
    "Each cell is a variant's value minus the unmodified value: the same videos, re-encoded, scored the same way "
    "against the same references. Spread is the largest absolute delta over the variants; it is highlighted where "
    "it exceeds the half-width of the unmodified run's 95% bootstrap interval, i.e. where re-encoding alone moves "
    "the metric more than resampling the videos does. A difference between two methods smaller than a metric's "
    "spread may be the codec's doing, not the method's.")


def audit(generated: str | Path, reference: str | Path, out: str | Path, metrics: Optional[Iterable[str]] = None,
          variants: Optional[Iterable[str]] = None, protocol: Optional[str] = None, split: str = "test",
          device: str = "cpu", show_progress: bool = True,
          log: Callable[[str], Any] = lambda line: None) -> dict[str, Any]:
    """Score `generated` unmodified and re-encoded by each variant (default: all), write ``audit.csv``,
    ``audit.json`` and ``audit.html`` to `out`, and return the report (what ``audit.json`` holds).

    `metrics`: registry names (default: the runner's default set); `protocol`: a protocol name passed to
    :func:`metrics.runner.evaluate` (only when given). `log` receives one line per run as it starts or is reused.
    """
    started = time.perf_counter()
    generated, reference, out = Path(generated), Path(reference), Path(out)
    chosen = [find_variant(name) for name in dict.fromkeys(variants)] if variants is not None else list(media.VARIANTS)
    if not chosen:
        raise ValueError("no re-encoding variant chosen")
    names = list(dict.fromkeys(metrics)) if metrics is not None else None
    for name in names or ():
        registry.entry(name)  # an unknown name fails here, before any video is scored
    if protocol is not None and "protocol" not in inspect.signature(evaluate).parameters:
        raise ValueError(f"--protocol {protocol}: this toolkit's evaluate() takes no protocol yet")
    for side, path in (("generated", generated), ("reference", reference)):
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such {side} folder, dataset or video")
    for side, path in (("generated", generated), ("reference", reference)):
        if path.is_dir() and out.resolve().is_relative_to(path.resolve()):
            raise ValueError(f"--out {out} is inside the {side} folder {path}: the re-encoded videos would be "
                             f"paired as {side} videos")
    exe = ffmpeg_exe()
    lacking = missing_encoders(chosen, exe)
    if lacking:
        raise ValueError(f"{media.ffmpeg_version(exe)} lacks encoders: "
                         + "; ".join(f"{v} needs {', '.join(e)}" for v, e in lacking.items()))
    ffmpeg = {"path": exe, "version": media.ffmpeg_version(exe)}
    base = {"schema": SCHEMA, "generated": str(generated.resolve()), "reference": str(reference.resolve()),
            "inputs_sha256": {"generated": fingerprint(generated, split), "reference": fingerprint(reference, split)},
            "metrics": names, "protocol": protocol, "split": split, "device": device}
    options = {"metrics": names, "split": split, "device": device, "show_progress": show_progress,
               **({"protocol": protocol} if protocol is not None else {})}

    total = len(chosen) + 1
    runs = {UNMODIFIED: _run(f"1/{total} {UNMODIFIED}", out / UNMODIFIED, base, generated, reference, options, log)}
    sources = scored_videos(out / UNMODIFIED)
    if not sources:
        raise ValueError(f"{out / UNMODIFIED}: the unmodified run scored no video, so there is nothing to re-encode")
    for i, variant in enumerate(chosen, start=2):
        run_dir = out / VARIANTS_DIR / variant.name
        params = {**base, "variant": variant.to_dict(), "ffmpeg": ffmpeg["version"]}

        def encode(folder: Path, variant=variant) -> None:
            with progress_bar(len(sources), f"re-encode {variant.name}", unit="videos", enabled=show_progress) as advance:
                for video_id, source in sources.items():
                    media.reencode(source, folder / f"{video_id}{variant.suffix}", variant, exe=exe)
                    advance(1)

        runs[variant.name] = _run(f"{i}/{total} {variant.name}", run_dir, params, run_dir / GENERATED, reference,
                                  options, log, encode=encode)

    report = build_report(runs, chosen)
    report.update(parameters={**base, "out": str(out), "variants": [v.name for v in chosen]},
                  variants=[v.to_dict() for v in chosen], ffmpeg=ffmpeg, software=software_versions(),
                  weights={name: run["summary"].get("weights", {}) for name, run in runs.items()},
                  runs={name: {k: v for k, v in run.items() if k != "summary"} for name, run in runs.items()},
                  seconds=round(time.perf_counter() - started, 3))
    report = plain(report)
    write_reports(out, report)
    return report


def fingerprint(path: Path, split: str) -> str:
    """sha256 over the content of what `path` holds: a dataset's split (its Arrow files), a folder's videos
    (relative path and bytes) or one video, so a changed input is never answered with an old run."""
    if is_dataset(path):
        return dataset_fingerprint(path, split)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*")
                                                 if p.is_file() and p.suffix.lower() in media.VIDEO_EXTENSIONS)
    digest = hashlib.sha256()
    for file in files:
        digest.update((file.name if file == path else file.relative_to(path).as_posix()).encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def scored_videos(run_dir: Path) -> dict[str, Path]:
    """``{video id: generated file}`` of the videos a finished run scored (its ``per_video.csv``)."""
    with open(run_dir / "per_video.csv", newline="", encoding="utf-8") as handle:
        return {row["video_id"]: Path(row["generated"]) for row in csv.DictReader(handle) if row["status"] == SCORED}


def _run(label: str, run_dir: Path, params: dict[str, Any], generated: Path, reference: Path,
         options: dict[str, Any], log: Callable[[str], Any], encode: Optional[Callable[[Path], None]] = None
         ) -> dict[str, Any]:
    """One evaluate() run, or the finished one already in `run_dir` when it was made with the same `params`."""
    record, summary_file = run_dir / RUN_RECORD, run_dir / SUMMARY
    params = json.loads(json.dumps(params))  # as it reads back from disk: lists, not tuples
    started = time.perf_counter()
    if summary_file.is_file() and _read_record(record) == params:
        log(f"{label}: reused (a complete run with the same parameters)")
        summary, reused = json.loads(summary_file.read_text(encoding="utf-8")), True
    else:
        log(f"{label}: " + ("re-encoding and scoring" if encode else "scoring"))
        for name in (RUN_RECORD, SUMMARY, "per_video.csv"):  # what is left of another or an unfinished run
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / GENERATED, ignore_errors=True)
        if encode is not None:
            encode(run_dir / GENERATED)
        summary = evaluate(generated, reference, out=run_dir, **options)
        write_json(record, params)  # last: it marks the run complete
        reused = False
    return {"dir": str(run_dir), "reused": reused, "videos": summary.get("videos"),
            "excluded": summary.get("excluded", {}), "skipped": summary.get("skipped", {}),
            "seconds": round(time.perf_counter() - started, 3), "summary": summary}


def _read_record(path: Path) -> Optional[dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent or unreadable: the run is redone
        return None


def build_report(runs: dict[str, dict[str, Any]], variants: list) -> dict[str, Any]:
    """Per leaderboard column of the unmodified run: value, interval, each variant's value and delta, the
    spread and the verdict (``metrics``), and the same flattened to one row per column x variant (``rows``)."""
    unmodified = runs[UNMODIFIED]["summary"]
    columns, rows = [], []
    for column in COLUMNS.values():
        value = column.value(unmodified)
        if value is None:
            continue
        interval = column.interval(unmodified)
        half = (interval[1] - interval[0]) / 2 if interval else None
        per_variant = {}
        for variant in variants:
            summary = runs[variant.name]["summary"]
            moved = column.value(summary)
            per_variant[variant.name] = {"value": moved, "delta": None if moved is None else moved - value,
                                         "excluded": summary.get("num_excluded", 0)}
        moves = {name: abs(found["delta"]) for name, found in per_variant.items() if found["delta"] is not None}
        spread_variant = max(moves, key=moves.get) if moves else None
        spread = moves.get(spread_variant) if spread_variant else None
        verdict = None if half is None or spread is None else (LARGER if spread > half else SMALLER)
        entry = {"metric": column.id, "label": column.label, "better": column.better, "unit": column.unit,
                 "unmodified": value, "interval": list(interval) if interval else None, "half_width": half,
                 "variants": per_variant, "spread": spread, "spread_variant": spread_variant, "verdict": verdict,
                 "explanation": explain(column.label, spread, spread_variant, half)}
        columns.append(entry)
        for name, found in per_variant.items():
            rows.append({"metric": column.id, "label": column.label, "better": column.better, "unmodified": value,
                         "low": interval[0] if interval else None, "high": interval[1] if interval else None,
                         "half_width": half, "variant": name, **found, "spread": spread,
                         "spread_variant": spread_variant, "verdict": verdict})
    return {"schema": SCHEMA, "metrics": columns, "rows": rows, "how_to_read": HOW_TO_READ}


def explain(label: str, spread: Optional[float], variant: Optional[str], half: Optional[float]) -> str:
    if spread is None:
        return f"{label}: no variant gave a value"
    moved = f"re-encoding alone moves {label} by up to {spread:.3g} ({variant})"
    if half is None:
        return f"{moved}; the unmodified run has no interval to compare with"
    if spread > half:
        return f"{moved}, more than its 95% interval half-width {half:.3g}: a difference below {spread:.3g} may be the codec"
    return f"{moved}, within its 95% interval half-width {half:.3g}: the sampling of videos is the larger uncertainty"


# -- outputs ------------------------------------------------------------------------------------------------
def write_reports(out: Path, report: dict[str, Any]) -> dict[str, Path]:
    files = {"csv": out / "audit.csv", "json": out / "audit.json", "html": out / "audit.html"}
    with atomic_path(files["csv"]) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for row in report["rows"]:  # full precision: str(float) round-trips
                writer.writerow({k: "" if row.get(k) is None else row[k] for k in CSV_FIELDS})
    write_json(files["json"], report)
    with atomic_path(files["html"]) as tmp:
        tmp.write_text(render_html(report), encoding="utf-8")
    return files


def _num(value: Optional[float], signed: bool = False) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"  # not "+0": nothing moved
    return f"{value:+.3g}" if signed else f"{value:.4g}"


CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}thead th{background:#f3f3f3}td.over{background:#fde2b8}
td.spread.over{background:#f8b26a;font-weight:600}code{font-size:12px}.note{color:#555;max-width:60em}"""
OVER = ' class="over"'  # a delta beyond the interval half-width


def render_html(report: dict[str, Any]) -> str:
    """One self-contained page: the table of metrics x variants and how to read it; no script, no network."""
    esc = html.escape
    variants = [v["name"] for v in report["variants"]]
    head = "".join(f"<th title=\"{esc(v['description'])}\">{esc(v['name'])}</th>" for v in report["variants"])
    body = []
    for m in report["metrics"]:
        half = m["half_width"]
        arrow = {"lower": " ↓", "higher": " ↑"}.get(m["better"] or "", "")
        cells = []
        for name in variants:
            delta = m["variants"][name]["delta"]
            over = half is not None and delta is not None and abs(delta) > half
            cells.append(f"<td{OVER if over else ''}>{_num(delta, signed=True)}</td>")
        spread_class = "spread over" if m["verdict"] == LARGER else "spread"
        spread = f"{_num(m['spread'])} ({esc(m['spread_variant'] or '–')})"
        body.append(f"<tr><td>{esc(m['label'])}{arrow}</td><td>{_num(m['unmodified'])}</td><td>±{_num(half)}</td>"
                    + "".join(cells) + f"<td class='{spread_class}'>{spread}</td>"
                    f"<td>{esc(m['verdict'] or 'no interval')}</td></tr>")
    params = report["parameters"]
    scored = (f"metrics: {esc(', '.join(params['metrics']) if params['metrics'] else 'the default set')}"
              + (f"; protocol {esc(params['protocol'])}" if params["protocol"] else "")
              + f"; {report['runs'][UNMODIFIED]['videos']} videos")
    notes = "".join(f"<li>{esc(m['explanation'])}</li>" for m in report["metrics"])
    variant_list = "".join(f"<li><b>{esc(v['name'])}</b>: {esc(v['description'])}<br>"
                           + "<br>".join(f"<code>{esc(' '.join(command))}</code>" for command in v["commands"])
                           + "</li>" for v in report["variants"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Re-encoding audit</title><style>{CSS}</style></head>
<body><h1>How much does re-encoding alone move each metric?</h1>
<p class="note">{esc(report['how_to_read'])}</p>
<p>Generated: <code>{esc(params['generated'])}</code>; reference: <code>{esc(params['reference'])}</code>;
{scored}.</p>
<table><thead><tr><th>metric</th><th>unmodified</th><th>95% CI half-width</th>{head}<th>spread (variant)</th>
<th>spread vs interval</th></tr></thead>
<tbody>{''.join(body)}</tbody></table>
<ul class="note">{notes}</ul>
<h2>Variants</h2><ul>{variant_list}</ul>
<p class="note">{esc(report['ffmpeg']['version'])}. Parameters, software versions and weight hashes:
<code>audit.json</code>; every number at full precision: <code>audit.csv</code>.</p>
</body></html>
"""
