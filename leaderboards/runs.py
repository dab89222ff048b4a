"""Run directories: one model scored on one dataset split, self-describing, and the leaderboard rebuilt from them.

``toolkit evaluate --model NAME`` (:func:`evaluate_model`) generates the split with the model when needed,
scores it, and writes a run directory into a results store::

    RUNS/<model>-<key hash>/
        run.json          model, checkpoint hashes, dataset fingerprint, split, metric presets, software, timings
        generated/        the model's videos and generation.json
        summary.json      toolkit evaluate's aggregates, metric configs and weight hashes
        per_video.csv

The run id hashes everything that changes the numbers (model, checkpoint weights, dataset content, split,
metrics and presets, seed, samples; the bootstrap settings when they are not the defaults), so running the
same command again finds the finished run and does nothing, and two checkpoints of one model get two run
directories. :func:`leaderboard_from_runs` reads every run directory under a folder (a plain
``toolkit evaluate --out`` folder counts too).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Optional

from talking_head.baselines import registry
from talking_head.metrics import registry as metric_registry
from talking_head.leaderboards.board import REFERENCE_MODELS, Leaderboard, Row
from talking_head.leaderboards.columns import COLUMNS, Column
from talking_head.metrics import bootstrap as metric_bootstrap
from talking_head.toolkit.fileio import write_json
from talking_head.toolkit.provenance import software_versions

RUN_FILE, SUMMARY_FILE, GENERATED = "run.json", "summary.json", "generated"
SCHEMA = "talking-head-toolkit/run/1"
BOOTSTRAP_DEFAULTS = {"bootstrap": metric_bootstrap.RESAMPLES,  # evaluate()'s interval options
                      "bootstrap_set_level": metric_bootstrap.SET_LEVEL_RESAMPLES, "bootstrap_seed": metric_bootstrap.SEED}


@dataclasses.dataclass
class RunResult:
    run_dir: Path
    run_id: str
    reused: bool
    record: dict[str, Any]
    summary: dict[str, Any]


def dataset_fingerprint(dataset: str | Path, split: str) -> str:
    """sha256 over the content of the split's Arrow files: the same data gives the same fingerprint wherever
    it was built (the ``datasets`` fingerprint changes with every build)."""
    folder = Path(dataset) / split
    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise FileNotFoundError(f"{folder}: no Arrow files (is {dataset} a dataset saved by toolkit preprocess?)")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def run_key(model: str, weights: dict[str, str], fingerprint: str, split: str, metrics: list[str],
            lse_preset: str, lmd_preset: str, seed: int, num_samples: int,
            bootstrap: Optional[dict[str, int]] = None, fvd_variant: Optional[str] = None,
            protocol: Optional[str] = None, conditions: Optional[dict[str, str]] = None) -> dict:
    """Everything that changes a run's numbers; its hash names the run directory. `bootstrap` (the interval
    settings) enters the key only when it differs from the defaults, so runs made before intervals existed
    keep their ids; `conditions` (a model's conditioning choices, all of them) only for a model that has any."""
    key = {"model": model, "weights_sha256": dict(sorted(weights.items())), "dataset_sha256": fingerprint,
           "split": split, "metrics": sorted(metrics), "lse_preset": lse_preset, "lmd_preset": lmd_preset,
           "seed": seed, "num_samples": num_samples}
    if bootstrap and bootstrap != BOOTSTRAP_DEFAULTS:
        key["bootstrap"] = dict(sorted(bootstrap.items()))
    if "fvd" in metrics and fvd_variant:  # only runs that score FVD depend on it (older run ids stay)
        key["fvd_variant"] = fvd_variant
    if "lse" in metrics:  # LSE reads syncnet_python's JPEG chain since the 2026 table; older LSE runs are redone
        key["lse_frames"] = metric_registry.preset_defaults()["lse_frames"]
    if protocol:  # the protocol's content hash: it fixes every metric option
        key["protocol"] = protocol
    if conditions:
        key["conditions"] = dict(sorted(conditions.items()))
    return key


def run_id(key: dict) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
    return f"{key['model']}-{digest[:8]}"


def evaluate_model(model: str, dataset: str | Path, runs: str | Path, *, checkpoint: str | Path | None = None,
                   split: str = "test", metrics: Optional[list[str]] = None, lse_preset: Optional[str] = None,
                   lmd_preset: Optional[str] = None, seed: int = 0, num_samples: int = 1, label: Optional[str] = None,
                   device: str = "cpu", show_progress: bool = True, fvd_variant: Optional[str] = None,
                   bootstrap: Optional[dict[str, int]] = None, protocol: Any = None,
                   conditions: Optional[dict[str, str]] = None) -> RunResult:
    """Generate `split` of `dataset` with `model` (if not done yet), score it, and write the run directory
    ``runs/<run id>`` (see the module docstring). A finished run with the same key is returned as it is.
    `bootstrap`: the runner's interval options (``bootstrap``, ``bootstrap_set_level``, ``bootstrap_seed``;
    :data:`BOOTSTRAP_DEFAULTS` for those not given). `protocol`: a published protocol (name, path or
    :class:`metrics.protocols.Protocol`): it sets the metrics, their options and the split. `conditions`: the
    model's conditioning choices (the rest at the model's defaults; see ``toolkit generate --condition``)."""
    from talking_head.baselines import generation
    from talking_head.metrics import runner as scoring

    started = time.perf_counter()
    dataset, runs = Path(dataset), Path(runs)
    if protocol is not None:  # checked before generating: a protocol missing a metric's weights does no work
        protocol = scoring.check_protocol(protocol, device=device)
        metrics, split = list(protocol.metrics), protocol.split
    metrics = list(dict.fromkeys(metrics or metric_registry.default_names()))
    lse_preset = lse_preset or metric_registry.preset_defaults()["lse_preset"]
    lmd_preset = lmd_preset or metric_registry.preset_defaults()["lmd_preset"]
    fvd_variant = fvd_variant or metric_registry.preset_defaults()["fvd_variant"]
    if registry.get(model).needs_checkpoint and checkpoint is None:
        raise ValueError(f"{model} needs a checkpoint: the run folder of toolkit train")
    if not (dataset / "dataset_dict.json").is_file():
        raise FileNotFoundError(f"{dataset}: not a preprocessed dataset (no dataset_dict.json; make one with "
                                "toolkit preprocess)")
    weights = generation.checkpoint_hashes(model, checkpoint) if checkpoint is not None else {}
    conditions = generation.model_conditions(model, conditions)  # all of them, so the key names what ran
    fingerprint = dataset_fingerprint(dataset, split)
    bootstrap = {**BOOTSTRAP_DEFAULTS, **(bootstrap or {})}
    key = run_key(model, weights, fingerprint, split, metrics, lse_preset, lmd_preset, seed, num_samples, bootstrap,
                  fvd_variant=fvd_variant, protocol=protocol.hash if protocol is not None else None,
                  conditions=conditions)
    rid = run_id(key)
    run_dir = runs / rid
    if (run_dir / RUN_FILE).is_file():
        record = json.loads((run_dir / RUN_FILE).read_text())
        if record.get("key") == key and record.get("status") == "complete":
            return RunResult(run_dir, rid, True, record, json.loads((run_dir / SUMMARY_FILE).read_text()))

    generated = run_dir / GENERATED
    timings: dict[str, float] = {}
    previous = _read_json(generated / generation.RECORD)
    if previous is None or previous.get("weights_sha256") != weights or previous.get("num_samples") != num_samples \
            or (previous.get("options") or {}).get("conditions", {}) != conditions:
        tic = time.perf_counter()
        generation.generate_split(model, dataset, generated, checkpoint=checkpoint, split=split, seed=seed,
                                  num_samples=num_samples, device=device, show_progress=show_progress,
                                  conditions=conditions or None)
        timings["generate_s"] = round(time.perf_counter() - tic, 3)
    else:
        timings["generate_s"] = 0.0  # reused from an interrupted run of the same key
    tic = time.perf_counter()
    if protocol is not None:
        summary = scoring.evaluate(generated, dataset, out=run_dir, device=device, show_progress=show_progress,
                                   protocol=protocol, **bootstrap)
    else:
        summary = scoring.evaluate(generated, dataset, metrics=metrics, out=run_dir, split=split, device=device,
                                   show_progress=show_progress, lse_preset=lse_preset, lmd_preset=lmd_preset,
                                   fvd_variant=fvd_variant, **bootstrap)
    timings["evaluate_s"] = round(time.perf_counter() - tic, 3)
    timings["total_s"] = round(time.perf_counter() - started, 3)
    gen_record = _read_json(generated / generation.RECORD) or {}
    record = {
        "schema": SCHEMA,
        "run_id": rid,
        "status": "complete",
        "label": label or default_label(model, gen_record),
        "model": model,
        "key": key,
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "weights_sha256": weights,
        "dataset": {"path": str(dataset), "split": split, "sha256": fingerprint, "clips": len(gen_record.get("clips", []))},
        "protocol": {"name": protocol.name, "hash": protocol.hash} if protocol is not None else None,
        "metrics": {"requested": metrics, "lse_preset": lse_preset, "lmd_preset": lmd_preset, "fvd_variant": fvd_variant,
                    "skipped": summary.get("skipped", {}), "weights_sha256": summary.get("weights", {})},
        "generation": {k: gen_record.get(k) for k in ("options", "fps_written", "configs")},
        "software": software_versions(),
        "timings": timings,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    write_json(run_dir / RUN_FILE, record)  # last: a run.json means the run is complete
    return RunResult(run_dir, rid, False, record, summary)


def default_label(model: str, gen_record: dict) -> str:
    """The model's display name; the mean-landmarks floor says whose renderer drew it; a model with
    conditioning choices says which ran, e.g. "<Model> (setting dubbing, identity clip_mean)"."""
    renderer = (gen_record.get("options") or {}).get("renderer")
    spec = registry.get(model) if model in registry.names() else None
    if renderer and getattr(spec, "renderer_label", ""):
        return spec.renderer_label.format(renderer=registry.display_name(renderer))
    chosen = (gen_record.get("options") or {}).get("conditions") or {}
    suffix = f" ({', '.join(f'{key} {value}' for key, value in chosen.items())})" if chosen else ""
    return registry.display_name(model) + suffix


def row_order(model: str) -> int:
    """Ground truth first, then the trained models, then the floors, then runs of models the registry lacks."""
    kind = registry.kind(model)
    return registry.KINDS.index(kind) if kind else len(registry.KINDS)


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ------------------------------------------------------------------------------------------ leaderboard
def find_runs(root: str | Path) -> list[Path]:
    """Every run directory under `root` (a folder holding summary.json), `root` itself included, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of runs")
    return sorted({p.parent for p in root.rglob(SUMMARY_FILE)})


def run_row(run_dir: Path, columns: list[Column], root: Path) -> Row:
    """A leaderboard row of one run directory: its values, why some are missing, and its provenance."""
    summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    record = _read_json(run_dir / RUN_FILE) or {}
    gen = _read_json(Path(summary.get("generated", "")) / "generation.json") or {}
    model = record.get("model") or gen.get("model") or "external"
    label = record.get("label") or (default_label(model, gen) if model != "external" else run_dir.name)
    values = {c.id: c.value(summary) for c in columns}
    notes = {}
    for column in columns:
        if values[column.id] is None:
            reason = summary.get("skipped", {}).get(column.metric)
            if reason:
                notes[column.id] = f"skipped: {reason.split('. Needed by')[0]}"
            elif column.metric in summary.get("results", {}):
                notes[column.id] = "no finite value (identical videos have an infinite PSNR)" \
                    if column.id == "psnr" else "no finite value"
            else:
                notes[column.id] = f"{column.metric} was not run"
    lmd = summary.get("results", {}).get("lmd") or {}
    if lmd.get("frames_excluded"):  # frames where the mesh found no face are left out of the landmark metrics
        used, excluded = lmd.get("frames_used", 0), lmd["frames_excluded"]
        for column in columns:
            if column.metric != "lmd":
                continue
            if values[column.id] is not None:
                notes[column.id] = (f"over {used} of {used + excluded} frames: no face found in the others "
                                    f"({lmd.get('videos_without_frames', 0)} videos without any)")
            elif not used:  # an untrained or broken model: say why rather than "no finite value"
                notes[column.id] = f"no face found in any of the {excluded} generated frames"
    provenance = {
        "run": str(run_dir.relative_to(root)) if run_dir != root else run_dir.name,
        "model": model,
        "checkpoint": str(record.get("checkpoint") or gen.get("checkpoint") or "-"),
        "weights": ", ".join(f"{s} {h[:12]}" for s, h in (record.get("weights_sha256") or gen.get("weights_sha256")
                                                          or {}).items()) or "-",
        "dataset": f"{summary.get('reference')} [{summary.get('split')}]",
        "dataset sha256": (record.get("dataset") or {}).get("sha256", "-")[:16],
        "videos": f"{summary.get('videos')} videos, {summary.get('frames')} frames",
        "presets": ", ".join(f"{k} {v}" for k, v in (summary.get("options") or {}).items()),
        "metric weights": ", ".join(f"{k} {str(v)[:12]}" for k, v in (summary.get("weights") or {}).items()) or "-",
        "software": ", ".join(f"{k} {v}" for k, v in (summary.get("software") or {}).items()
                              if k in ("talking-head-toolkit", "torch", "mediapipe", "python")),
        "seconds": ", ".join(f"{k} {v}" for k, v in (record.get("timings") or {}).items())
        or f"evaluate_s {summary.get('seconds')}",
        "created": record.get("created", "-"),
    }
    intervals = {c.id: bounds for c in columns if values[c.id] is not None and (bounds := c.interval(summary))}
    normalised = {c.id: score for c in columns if (score := c.normalised(summary)) is not None}
    return Row(label=label, model=model, source="run", values=values, notes=notes, provenance=provenance,
               run_id=record.get("run_id") or run_dir.name, intervals=intervals, normalised=normalised)


def ground_truth_rows(run_dirs: list[Path], rows: list[Row], columns: list[Column]) -> list[Row]:
    """A "Ground truth" row per reference set that has no ground-truth run of its own: every column's value on
    the real clips as the runs recorded it (measured on the reference videos, or the identity value of a
    comparison, e.g. FID 0). Runs of one reference should agree; the first run (sorted) gives the values."""
    if any(row.model in REFERENCE_MODELS for row in rows):
        return []
    found: dict[tuple[str, str], tuple[Path, dict]] = {}
    for run_dir in run_dirs:
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        if summary.get("ground_truth"):
            # by the reference's folder name: one set given as a relative and as an absolute path is one set
            found.setdefault((Path(str(summary.get("reference"))).name, str(summary.get("split") or "test")),
                             (run_dir, summary))
    made = []
    for (reference, split), (run_dir, summary) in found.items():
        values = {c.id: c.ground_truth(summary) for c in columns}
        how = {c.id: ((summary["ground_truth"].get(c.metric) or {}).get(c.key) or {}).get("how", "") for c in columns}
        label = "Ground truth" if len(found) == 1 else f"Ground truth · {reference} [{split}]"
        made.append(Row(label=label, model=REFERENCE_MODELS[0], source="ground truth", values=values,
                        notes={k: "no ground-truth value recorded" for k, v in values.items() if v is None},
                        provenance={"reference": f"{summary.get('reference')} [{split}]", "values from": run_dir.name,
                                    "how": "; ".join(sorted({f"{h}: {', '.join(c for c in how if how[c] == h)}"
                                                             for h in set(how.values()) if h}))}))
    return made


def bootstrap_note(summary: dict) -> Optional[str]:
    """How a run's intervals were drawn, in words (None for a run without intervals)."""
    record = summary.get("bootstrap") or {}
    if not summary.get("intervals") or not record.get("resamples"):
        return None
    return (f"{100 * record.get('level', 0.95):g}% {record.get('method', 'percentile bootstrap over videos')}, "
            f"{record['resamples']} resamples ({record.get('set_level_resamples')} for set-level statistics: FID, "
            f"KID, frame-pooled means), seed {record.get('seed')}")


def leaderboard_from_runs(root: str | Path, title: Optional[str] = None,
                          columns: Optional[list[str]] = None) -> Leaderboard:
    """One row per run directory under `root`. Columns: `columns` (ids of :data:`COLUMNS`), else every
    column that has a value in some run. Labels shared by several runs get the run id appended."""
    root = Path(root)
    run_dirs = find_runs(root)
    if not run_dirs:
        raise FileNotFoundError(f"{root}: no run directories (folders with {SUMMARY_FILE}; make one with "
                                "toolkit evaluate)")
    chosen = [COLUMNS[c] for c in columns] if columns else list(COLUMNS.values())
    rows = [run_row(d, chosen, root) for d in run_dirs]
    rows = sorted(ground_truth_rows(run_dirs, rows, chosen) + rows, key=lambda r: (row_order(r.model), r.label))
    if not columns:
        chosen = [c for c in chosen if any(r.values[c.id] is not None for r in rows)]
        for row in rows:
            row.values = {c.id: row.values[c.id] for c in chosen}
            row.notes = {k: v for k, v in row.notes.items() if k in row.values}
            row.intervals = {k: v for k, v in row.intervals.items() if k in row.values}
            row.normalised = {k: v for k, v in row.normalised.items() if k in row.values}
    labels = [r.label for r in rows]
    for row in rows:
        if labels.count(row.label) > 1:
            row.label = f"{row.label} · {row.run_id}"
    notes = ["Ground truth is the reference clips scored against themselves (a ground-truth run), or the values the "
             "runs recorded for them (measured on the real clips: LSE, NIQE, pose std, blink rate; by definition for "
             "comparisons: FID 0, SSIM 1): the anchor, never marked best."]
    if any(row.normalised for row in rows):
        notes.append("(GT-norm x) after a value: THEval's ground-truth-normalised score 1 - |m - gt| / |gt| (1: the "
                     "ground truth's value), for statistics whose ideal is the ground truth's value.")
    presets = sorted({row.provenance["presets"] for row in rows if "presets" in row.provenance})
    notes.append(f"Metric presets: {'; '.join(presets)} (toolkit evaluate; landmark distances in % of the "
                 "inter-ocular distance for the dense preset, pixels for atvgnet/vico).")
    drawn = sorted({note for d in run_dirs if (note := bootstrap_note(json.loads((d / SUMMARY_FILE).read_text())))})
    if drawn:
        notes.append(f"[low, high] after a value: its confidence interval, {'; '.join(drawn)} (toolkit evaluate "
                     "--bootstrap); runs without one show none.")
    return Leaderboard(title=title or f"Leaderboard: {root.name}", columns=chosen, rows=rows, notes=notes,
                       created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                       software=software_versions(("talking-head-toolkit", "torch", "mediapipe", "numpy")))
