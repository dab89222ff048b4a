"""How `toolkit reproduce` trains a recipe's models: each stage's config as the recipe and :class:`Training`
say (the configs as shipped, or a `paper` config cut down by baselines/paper_scale.py, another number of
steps), one run folder per stage or, for a stage trained per identity, per speaker; unfinished stages resume,
finished ones are reused, and several models train at once in worker processes when there are cores for them.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from talking_head.baselines import registry

if TYPE_CHECKING:
    from talking_head.leaderboards.reproduce import Recipe


@dataclasses.dataclass(frozen=True)
class Training:
    """How a recipe's models are trained: its configs at `scale` (``full``: as shipped; ``cut``: a `paper`
    config's sizes cut down, see baselines/paper_scale.py), `steps` instead of the configs' own when given,
    on `device` (cpu, cuda, cuda:N)."""

    scale: str = "full"
    steps: Optional[int] = None
    device: str = "cpu"

    @property
    def shortened(self) -> bool:
        """Not the configs as shipped: the numbers check the pipeline, they do not reproduce the paper."""
        return self.scale != "full" or self.steps is not None

    def describe(self, recipe: Recipe) -> str:
        parts = [f"{recipe.config} configs" + (" cut down to tiny sizes" if self.scale == "cut" else "")]
        if self.steps is not None:
            parts.append(f"{self.steps} training step{'s' if self.steps != 1 else ''} a stage")
        return ", ".join(parts)



def stages(recipe: Recipe, model: str, training: Training = Training()) -> list[tuple[str, dict]]:
    """(stage, config) of every stage of `model`, in training order, with the recipe's configs as `training`
    says (cut down, another number of steps)."""
    from talking_head.baselines.paper_scale import paper_config, set_key

    package = registry.get_trained(model).load_package()
    stages = []
    for stage in package.STAGES:
        if training.scale == "full":
            config = package.load_config(recipe.config, stage)
        else:
            config = paper_config(model, stage, training.scale)
        if training.steps is not None:
            set_key(config, "training.steps", training.steps)
        stages.append((stage, config))
    return stages


def stage_runs(recipe: Recipe, model: str, dataset: Path, run_dir: Path,
                training: Training = Training()) -> list[tuple[str, Path, dict, str]]:
    """(label, folder, config, stage) of every model `model`'s stages train, in order: one per stage, or for a
    stage trained per identity one per speaker (RUN_DIR/<stage>/<speaker>)."""
    package = registry.get_trained(model).load_package()
    runs = []
    for stage, config in stages(recipe, model, training):
        for identity, config_of in package.STAGES[stage].runs(config, dataset):
            if identity is None:
                runs.append((stage, run_dir / stage, config_of, stage))
            else:
                runs.append((f"{stage} [{identity}]", run_dir / stage / identity, config_of, stage))
    return runs


def _finished(folder: Path, config: dict) -> bool:
    from talking_head.baselines.training import checkpoint_dirs, load_trainer_state

    existing = checkpoint_dirs(folder)
    return bool(existing) and int(load_trainer_state(existing[-1])["step"]) >= int(config["training"]["steps"]) \
        and (folder / "model.safetensors").is_file()


def _train(recipe: Recipe, model: str, dataset: Path, run_dir: Path, training: Training, step,
           show_progress: bool) -> None:
    """Train every stage of `model` that is not finished (an interrupted stage resumes)."""
    from talking_head.baselines.training import checkpoint_dirs, train

    package = registry.get_trained(model).load_package()
    for label, folder, config, stage in stage_runs(recipe, model, dataset, run_dir, training):
        if _finished(folder, config):
            step(f"{model} {label}: reused {folder}")
            continue
        tic = time.perf_counter()
        result = train(package.STAGES[stage], config, dataset, folder, resume=bool(checkpoint_dirs(folder)),
                       show_progress=show_progress, device=training.device)
        how = f"resumed at step {result.resumed_from}" if result.resumed_from else "trained"
        step(f"{model} {label}: {how} to step {result.step} in {time.perf_counter() - tic:.0f} s")


def _train_in_process(recipe: Recipe, model: str, dataset: str, run_dir: str, training: Training,
                      threads: int) -> list[str]:
    """One model's stages in a worker process with `threads` torch threads; returns the step messages."""
    import torch

    torch.set_num_threads(threads)
    messages: list[str] = []
    _train(recipe, model, Path(dataset), Path(run_dir), training, messages.append, show_progress=False)
    return messages


def _training_status(recipe: Recipe, todo: dict[str, Path], dataset: Path, training: Training) -> str:
    """'model stage step/total' of the stage each model is training now (from its loss.csv)."""
    parts = []
    for model, run_dir in todo.items():
        for label, folder, config, _ in stage_runs(recipe, model, dataset, run_dir, training):
            if _finished(folder, config):
                continue
            lines = (folder / "loss.csv").read_text().splitlines() if (folder / "loss.csv").is_file() else []
            done = lines[-1].split(",")[0] if len(lines) > 1 else "0"
            parts.append(f"{model} {label} step {done}/{config['training']['steps']}")
            break
    return "; ".join(parts)


def train_models(recipe: Recipe, todo: dict[str, Path], dataset: Path, training: Training, step, log,
                  show_progress: bool) -> None:
    """Train the unfinished stages of every model in `todo`: one after another on one core; with more
    cores, the models at once in worker processes sharing the cores (their stages stay in order), with
    a status line every 30 s."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, wait

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    unfinished = {m: d for m, d in todo.items()
                  if not all(_finished(folder, c) for _, folder, c, _ in stage_runs(recipe, m, dataset, d, training))}
    if len(unfinished) < 2 or cores < 2:
        for model, run_dir in todo.items():
            _train(recipe, model, dataset, run_dir, training, step, show_progress)
        return
    for model in [m for m in todo if m not in unfinished]:
        _train(recipe, model, dataset, todo[model], training, step, show_progress)  # logs the reuse
    todo = unfinished
    threads = max(1, cores // len(todo))
    step(f"training {', '.join(todo)} at once, {threads} thread(s) each")
    with ProcessPoolExecutor(max_workers=len(todo), mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(_train_in_process, recipe, model, str(dataset), str(run_dir), training, threads)
                   for model, run_dir in todo.items()}
        while pending:
            done, pending = wait(pending, timeout=30)
            for future in done:
                for message in future.result():  # a worker's error is raised here
                    step(message)
            if pending and show_progress:
                log(f"         training: {_training_status(recipe, todo, dataset, training)}")
