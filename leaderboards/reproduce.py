"""`toolkit reproduce TABLE`: every step from a dataset to a table row beside the paper's.

A recipe (:data:`RECIPES`) names the dataset, the models and their configs, the baselines, the metrics
and the paper table to compare with. :func:`reproduce` first checks that every input is there (data,
pretrained weights) and stops before any work with the list of what is missing and how to get it;
then it does each step that is not done yet, reusing what an earlier (or interrupted) run left in the
work folder::

    WORK/data/                   the preprocessed dataset (unless --dataset gives one)
    WORK/checkpoints/<model>/    toolkit train's run folders, one stage each (unless --checkpoint gives one);
                                 <model>-cut/ for the paper configs cut down (--scale cut)
    WORK/runs/<run id>/          one run directory per model (leaderboards.runs)
    WORK/leaderboard/            leaderboard.md, leaderboard.csv, index.html

and returns the leaderboard and the comparison with the paper (ours, the paper's number, the delta).

How the models are trained is a :class:`Training` (leaderboards/recipe_training.py, which trains them): the recipe's configs as shipped, or (``scale="cut"``) a
`paper` recipe's configs with their sizes cut down key for key (baselines/paper_scale.py) and a few ``steps``,
which runs the paper's whole protocol on a CPU in minutes: a check of the pipeline whose leaderboard says so.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Callable, Optional

from talking_head.baselines import registry
from talking_head.leaderboards.board import Leaderboard
from talking_head.leaderboards.columns import COLUMNS
from talking_head.leaderboards.recipe_training import Training, train_models
from talking_head.toolkit.dataset import ADAPT_SPLIT

LANDMARK_COLUMNS = ("m_lmd", "f_lmd")  # where `sample` checks ground truth < trained models < floors


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Where a recipe's dataset comes from and how it is preprocessed."""

    name: str  # sample, hdtf, lsp, mead
    fps: float
    size: int
    builder: str  # preprocessing.builders name
    how: str  # how to get the raw videos (printed when they are missing)
    needs_annotations: bool = False
    adapt_fraction: Optional[float] = None  # per-identity protocol: test clips cut into adapt + test parts


@dataclasses.dataclass(frozen=True)
class Recipe:
    id: str
    title: str
    data: DataSpec
    config: str  # tiny or paper: the configs the models are trained with
    models: tuple[str, ...]  # trained reference models
    floors: tuple[str, ...] = ("ground-truth", "static-reference", "mean-landmarks")
    metrics: Optional[tuple[str, ...]] = None  # None: toolkit evaluate's default set
    lse_preset: str = "wav2lip_lrs"
    lmd_preset: str = "dense"
    weights: tuple[str, ...] = ()  # registry names needed before any work starts
    paper_table: Optional[str] = None  # leaderboards/papers table id


SAMPLE = DataSpec("sample", fps=25.0, size=256, builder="sample", how="built in")
HDTF = DataSpec("hdtf", fps=25.0, size=512, builder="hdtf", needs_annotations=True, how=(
    "HDTF's videos, downloaded with the official lists (github.com/MRzzm/HDTF: HDTF_dataset/*_video_url.txt "
    "and the crop/time annotations): pass the video folder as --raw DIR and the HDTF_dataset folder as "
    "--annotations DIR, or a dataset already made by toolkit preprocess --dataset hdtf as --dataset DIR"))
# MODA works at 30 fps, and fits a renderer to each test person on the first 80% of their video, testing on
# the rest (the paper's protocol; preprocessing.adaptation).
HDTF30_ADAPT = dataclasses.replace(HDTF, fps=30.0, adapt_fraction=0.8)
LSP = DataSpec("lsp", fps=30.0, size=512, builder="folder", how=(
    "LiveSpeechPortraits' released videos of its 5 subjects (May, Obama1, Obama2, Nadella, McStay; "
    "github.com/YuanxunLu/LiveSpeechPortraits): pass the folder of videos, one sub-folder per subject, as "
    "--raw DIR, or a preprocessed dataset as --dataset DIR. MODA's exact test clips are not published"),
    adapt_fraction=0.8)  # the same per-identity renderers as on HDTF
MEAD = DataSpec("mead", fps=25.0, size=512, builder="folder", how=(
    "MEAD's frontal videos (wywu.github.io/projects/MEAD): pass a folder of videos, one sub-folder per "
    "speaker, as --raw DIR, or a preprocessed dataset as --dataset DIR"))
MODA_METRICS = ("niqe", "lmd", "lse")  # the paper's NIQE, LMD(-v), Sync; MA has no published definition
DREAMHEAD_METRICS = ("fid", "lse", "lmd", "niqe", "psnr", "ssim", "csim")

RECIPES: dict[str, Recipe] = {r.id: r for r in (
    Recipe("sample", "The built-in sample (tiny configs, 2 CPU cores)", SAMPLE, "tiny", ("dreamhead", "moda")),
    Recipe("moda-hdtf", "MODA (ICCV 2023), Testset B from HDTF", HDTF30_ADAPT, "paper", ("moda",), metrics=MODA_METRICS,
           weights=("wav2vec2-base-960h", "vgg19", "syncnet", "niqe-pristine"), paper_table="moda-hdtf"),
    Recipe("moda-lsp", "MODA (ICCV 2023), Testset A from LSP", LSP, "paper", ("moda",), metrics=MODA_METRICS,
           weights=("wav2vec2-base-960h", "vgg19", "syncnet", "niqe-pristine"), paper_table="moda-lsp"),
    Recipe("dreamhead-hdtf", "DreamHead (arXiv 2409.10281), HDTF", HDTF, "paper", ("dreamhead",),
           metrics=DREAMHEAD_METRICS, weights=("wav2vec2-base-960h", "sd-vae-ft-mse", "fid-inception", "syncnet",
                                               "niqe-pristine", "arcface-r100"), paper_table="dreamhead-hdtf"),
    Recipe("dreamhead-mead", "DreamHead (arXiv 2409.10281), MEAD", MEAD, "paper", ("dreamhead",),
           metrics=DREAMHEAD_METRICS, weights=("wav2vec2-base-960h", "sd-vae-ft-mse", "fid-inception", "syncnet",
                                               "niqe-pristine", "arcface-r100"), paper_table="dreamhead-mead"),
)}


class MissingInputs(RuntimeError):
    """What a recipe needs and does not have; raised before any work is done."""

    def __init__(self, recipe: Recipe, missing: list[tuple[str, str]]):
        self.recipe, self.missing = recipe, missing
        lines = [f"toolkit reproduce {recipe.id}: {len(missing)} input(s) missing; nothing was done."]
        for what, how in missing:
            lines.append(f"  - {what}\n      " + how.replace("\n", "\n      "))
        super().__init__("\n".join(lines))


@dataclasses.dataclass
class Inputs:
    """What the user gave: a preprocessed dataset, raw videos, annotations, trained run folders."""

    dataset: Optional[Path] = None
    raw: Optional[Path] = None
    annotations: Optional[Path] = None
    checkpoints: dict[str, Path] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Comparison:
    """One metric of one row: ours next to the paper's."""

    row: str
    metric: str
    paper: Optional[float]
    ours: Optional[float]
    note: str = ""

    @property
    def delta(self) -> Optional[float]:
        return None if self.paper is None or self.ours is None else self.ours - self.paper


@dataclasses.dataclass
class Outcome:
    recipe: Recipe
    work: Path
    board: Leaderboard
    files: dict[str, Path]
    comparisons: list[Comparison]
    ordering: dict[str, dict]  # per landmark column: ground truth < trained < floors? (see `ordering`)
    steps: list[str]  # what was done or reused, in order
    seconds: float
    training: Training = Training()


def missing_inputs(recipe: Recipe, work: Path, inputs: Inputs) -> list[tuple[str, str]]:
    """Every input `recipe` lacks, as (what, how to get it); empty when it can run."""
    from talking_head.toolkit import weights

    missing = []
    data = recipe.data
    if data.name != "sample" and not _dataset_ready(work / "data"):
        if inputs.dataset is not None:
            if not _dataset_ready(inputs.dataset):
                missing.append((f"{inputs.dataset}: not a preprocessed dataset (no dataset_dict.json)", data.how))

        elif inputs.raw is None or not inputs.raw.is_dir():
            missing.append((f"{data.name.upper()} videos" + (f" ({inputs.raw} does not exist)" if inputs.raw else ""),
                            data.how))
        elif data.needs_annotations and (inputs.annotations is None or not inputs.annotations.is_dir()):
            missing.append((f"{data.name.upper()} annotations (--annotations DIR)", data.how))
    given = inputs.dataset if inputs.dataset is not None else work / "data"
    if data.adapt_fraction and _dataset_ready(given) and ADAPT_SPLIT not in _splits(given):
        missing.append((f"{given}: no {ADAPT_SPLIT!r} split, on which {recipe.id}'s per-identity protocol trains "
                        "each test person's model",
                        f"toolkit preprocess ... --fps {data.fps:g} --adapt-fraction {data.adapt_fraction} cuts every "
                        "test clip into that part and the test part"))
    for model, folder in inputs.checkpoints.items():
        if model not in recipe.models:
            missing.append((f"--checkpoint {model}={folder}: {recipe.id} has no model {model}",
                            f"its models: {', '.join(recipe.models)}"))
        elif not folder.is_dir():
            missing.append((f"--checkpoint {model}={folder}: no such run folder", "give the folder toolkit train wrote"))
    for name in recipe.weights:
        result = weights.verify(name)
        if result.status != "ok":
            missing.append((f"pretrained weights {name} ({result.status}): {weights.get(name).description}",
                            f"toolkit weights fetch {name}, or put the file at {result.path} "
                            f"(toolkit weights path {name} tells more)"))
    return missing


def reproduce(table: str, work: str | Path, inputs: Optional[Inputs] = None, *, device: str = "cpu",
              scale: str = "full", steps: Optional[int] = None, show_progress: bool = True,
              log: Callable[[str], None] = print) -> Outcome:
    """Run every missing step of recipe `table` in `work` (see the module docstring) on `device`: training,
    generation and scoring. `scale` and `steps`: see :class:`Training`."""
    from talking_head.baselines.paper_scale import SCALES
    from talking_head.leaderboards.render import write_all
    from talking_head.leaderboards.runs import evaluate_model, leaderboard_from_runs

    if table not in RECIPES:
        raise KeyError(f"unknown table {table!r}; choose one of {', '.join(RECIPES)}")
    recipe, work, inputs = RECIPES[table], Path(work), inputs or Inputs()
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r} is not one of {', '.join(SCALES)}")
    if scale == "cut" and recipe.config != "paper":
        raise ValueError(f"{table} trains the {recipe.config} configs; --scale cut cuts down the paper configs")
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    training = Training(scale, steps, device)
    missing = missing_inputs(recipe, work, inputs)
    if missing:
        raise MissingInputs(recipe, missing)
    started = time.perf_counter()
    steps: list[str] = []

    def step(message: str) -> None:
        steps.append(message)
        log(f"[{time.perf_counter() - started:6.0f} s] {message}")

    dataset = _prepare_dataset(recipe, work, inputs, step, show_progress)
    checkpoints = {}
    for model in recipe.models:
        folder = model if training.scale == "full" else f"{model}-{training.scale}"  # never mixed with full size
        checkpoints[model] = inputs.checkpoints.get(model) or work / "checkpoints" / folder
        if model in inputs.checkpoints:
            step(f"{model}: the given checkpoint {checkpoints[model]}")
    todo = {m: checkpoints[m] for m in recipe.models if m not in inputs.checkpoints}
    if todo:
        slow = " (paper-size models on a CPU take days: --device cuda)" if (
            recipe.config == "paper" and training.scale == "full" and device == "cpu") else ""
        step(f"training: {training.describe(recipe)}, on {device}{slow}")
    train_models(recipe, todo, dataset, training, step, log, show_progress)
    runs = work / "runs"
    jobs = [(m, checkpoints[m]) for m in recipe.models]
    for floor in recipe.floors:
        jobs += [(floor, checkpoints[m]) for m in recipe.models] if registry.get(floor).uses_renderer else [(floor, None)]
    for model, checkpoint in jobs:
        result = evaluate_model(model, dataset, runs, checkpoint=checkpoint, metrics=list(recipe.metrics or ()) or None,
                                lse_preset=recipe.lse_preset, lmd_preset=recipe.lmd_preset, device=device,
                                show_progress=show_progress)
        step(f"{result.record['label']}: {'reused' if result.reused else 'generated and scored'} {result.run_dir}")
    title = recipe.title
    if training.shortened:
        title += f" ({training.describe(recipe)}: a check of the pipeline, not the paper's numbers)"
    board = leaderboard_from_runs(runs, title=title)
    files = write_all(board, work / "leaderboard", runs=runs)  # with the Videos section
    step(f"leaderboard: {files['html']}")
    comparisons = compare_with_paper(recipe, board) if recipe.paper_table else []
    return Outcome(recipe, work, board, files, comparisons, ordering(board), steps,
                   round(time.perf_counter() - started, 1), training)


def _dataset_ready(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file()


def _splits(folder: Path) -> list[str]:
    import json

    return list(json.loads((folder / "dataset_dict.json").read_text(encoding="utf-8")).get("splits", []))


def _prepare_dataset(recipe: Recipe, work: Path, inputs: Inputs, step, show_progress: bool) -> Path:
    from talking_head.preprocessing.builders import BUILDERS
    from talking_head.preprocessing.pipeline import PreprocessConfig
    from talking_head.preprocessing.runner import preprocess

    if inputs.dataset is not None:
        step(f"dataset: the given {inputs.dataset}")
        return inputs.dataset
    out = work / "data"
    if _dataset_ready(out):
        step(f"dataset: reused {out}")
        return out
    data = recipe.data
    if data.builder == "sample":
        sources, problems = BUILDERS["sample"](work / "raw_sample", 2, 3, 5.0, 0)
        parameters = {"dataset": "sample", "inputs": {"speakers": 2, "clips": 3, "seconds": 5.0, "seed": 0}}
    elif data.builder == "hdtf":
        sources, problems = BUILDERS["hdtf"](inputs.annotations, inputs.raw, None)
        parameters = {"dataset": "hdtf", "inputs": {"input": str(inputs.raw), "annotations": str(inputs.annotations)}}
    else:
        sources, problems = BUILDERS["folder"](inputs.raw, None)
        parameters = {"dataset": data.name, "inputs": {"input": str(inputs.raw)}}
    _, summary = preprocess(sources, out, PreprocessConfig(fps=data.fps, size=data.size), parameters=parameters,
                            problems=problems, show_progress=show_progress, adapt_fraction=data.adapt_fraction)
    # A real download always has gaps (videos gone from YouTube, annotated intervals without a crop): they are
    # recorded in failures.jsonl and the table is made from what was processed, as toolkit preprocess does.
    if not summary.done:
        raise RuntimeError(f"preprocessing processed no clip ({len(summary.failed)} failed or skipped); see "
                           f"{out / 'failures.jsonl'}")
    skipped = f"; {len(summary.failed)} failed or skipped, listed in {out / 'failures.jsonl'}" if summary.failed else ""
    step(f"dataset: preprocessed {len(summary.done)} clips into {out}{skipped}")
    return out


def ordering(board: Leaderboard) -> dict[str, dict]:
    """Per landmark column: does ground truth beat every other row, and every trained model beat every floor
    baseline? {column: {"ground_truth_best": bool, "trained_beat_floors": bool, "detail": text}}; empty
    unless the board holds all three kinds of rows."""
    kinds: dict[str, list] = {kind: [] for kind in registry.KINDS}
    for row in board.rows:
        kind = registry.kind(row.model)
        if kind:
            kinds[kind].append(row)
    if not all(kinds.values()):
        return {}
    result = {}
    for column in LANDMARK_COLUMNS:
        if not any(c.id == column for c in board.columns):
            continue
        value = {id(r): r.values.get(column) for rows in kinds.values() for r in rows}
        if any(v is None for v in value.values()):
            missing = [r.label for rows in kinds.values() for r in rows if value[id(r)] is None]
            result[column] = {"ground_truth_best": False, "trained_beat_floors": False,
                              "detail": f"no value for {', '.join(missing)}"}
            continue
        worst_truth = max(kinds["ground-truth"], key=lambda r: value[id(r)])
        best_other = min(kinds["trained"] + kinds["floor"], key=lambda r: value[id(r)])
        worst_trained = max(kinds["trained"], key=lambda r: value[id(r)])
        best_floor = min(kinds["floor"], key=lambda r: value[id(r)])
        truth_best = value[id(worst_truth)] < value[id(best_other)]
        trained_win = value[id(worst_trained)] < value[id(best_floor)]
        detail = (f"worst trained {worst_trained.label} {value[id(worst_trained)]:.3f} "
                  f"{'<' if trained_win else '>='} best floor {best_floor.label} {value[id(best_floor)]:.3f}")
        result[column] = {"ground_truth_best": truth_best, "trained_beat_floors": trained_win, "detail": detail}
    return result


def compare_with_paper(recipe: Recipe, board: Leaderboard) -> list[Comparison]:
    """For each paper row with a model of ours (ground truth, the reproduced model): the paper's number, ours
    and the delta per metric; the paper's other rows with their numbers alone."""
    from talking_head.leaderboards.papers import load_table

    paper = load_table(recipe.paper_table)
    ours = {}
    for row in board.rows:
        ours.setdefault(row.model, row)  # the first run of each model (runs are sorted by directory)
    out = []
    if not paper.numbers_available:  # nothing to compare with: our numbers alone, and why
        for prow in paper.rows:
            mine = ours.get(prow.model)
            for column_id in paper.compare_columns:
                value = mine.values.get(column_id) if mine is not None else None
                out.append(Comparison(prow.method, COLUMNS[column_id].label, None, value,
                                      f"paper: {paper.unavailable_reason}"))
        return out
    for prow in paper.rows:
        mine = ours.get(prow.model) if prow.model else None
        for metric in paper.metrics:
            column = COLUMNS.get(metric.toolkit_column) if metric.toolkit_column else None
            value = mine.values.get(column.id) if (mine is not None and column is not None) else None
            note = prow.missing.get(metric.id, "")
            if not metric.computable:
                note = f"not computable: {metric.reason}"
            elif mine is not None and value is None:
                note = mine.notes.get(column.id, "")
            out.append(Comparison(prow.method, metric.label, prow.values.get(metric.id), value, note))
    return out


def outcome_json(outcome: Outcome) -> dict:
    return {"table": outcome.recipe.id, "work": str(outcome.work), "seconds": outcome.seconds,
            "training": {"config": outcome.recipe.config, **dataclasses.asdict(outcome.training)},
            "steps": outcome.steps, "ordering": outcome.ordering, "files": {k: str(v) for k, v in outcome.files.items()},
            "comparisons": [{**dataclasses.asdict(c), "delta": c.delta} for c in outcome.comparisons],
            "leaderboard": outcome.board.to_dict()}


def write_outcome(outcome: Outcome) -> Path:
    from talking_head.toolkit.fileio import write_json

    return write_json(outcome.work / "reproduce.json", outcome_json(outcome))
