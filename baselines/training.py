"""The training loop every baseline stage shares (DreamHead A2L / L2I, later MODA), read top to bottom.

Usage::

    from talking_head.baselines.dreamhead import STAGES, load_config
    from talking_head.baselines.training import train

    config = load_config("tiny", "a2l", ["training.steps=50"])
    result = train(STAGES["a2l"], config, "data/sample", "runs/dh/a2l")   # what `toolkit train` runs
    result.step, result.last_loss            # weights in runs/dh/a2l/model.safetensors

The loop
--------

    toolkit train dreamhead --stage a2l --config tiny --dataset data/sample --out runs/dh
    accelerate launch -m talking_head.toolkit.cli train dreamhead --stage l2i --config paper --dataset data/hdtf --out runs/dh

A stage is a model class and a dataset builder (:class:`Stage`). The model follows this protocol:

* ``config``: plain data (the resolved stage config), saved next to the weights;
* ``from_config(config)`` builds it; ``save_pretrained(dir)`` / ``from_pretrained(dir)`` write and read
  ``model.safetensors`` + ``config.yaml`` (which names the model and stage);
* ``training_loss(batch, generator)`` returns the loss, or ``(loss, {"term": float, ...})``; every random
  draw in it must come from `generator`.

The loop reads ``config["training"]`` (keys below in :data:`TRAINING_DEFAULTS`) and ``config["seed"]``.

Run folder::

    RUN_DIR/config.yaml, model.safetensors   the latest weights (what generation loads)
    RUN_DIR/checkpoints/step-000200/         model.safetensors, config.yaml, optimizer.pt (+ scaler.pt with
                                             fp16; neither with training.save_optimizer: false),
                                             trainer_state.json (baselines/run_checkpoints.py)
    RUN_DIR/loss.csv, loss.png               step, loss, extra terms, lr, seconds; the curve

Resuming gives the same weights as an uninterrupted run with the same seed: the batch indices and the
noise of step s come from generators seeded by (seed, s, process index), never from a stream that
runs across steps, and the optimizer state (AdamW moments, step counts) is restored exactly. The
learning rate is a pure function of the step. ``trainer_state.json`` also records the global torch,
numpy and Python RNG states (restored on resume, for any library code that draws from them).
"""

from __future__ import annotations

import csv
import dataclasses
import importlib
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from talking_head.baselines.run_checkpoints import (  # checkpoint folders live there; these names are the loop's API
    CHECKPOINTS, SCALER_FILE, STATE_FILE, TrainingError, checkpoint_dirs, config_sha256, load_trainer_state,
    optimizer_state_file, restore_rng_states, save_checkpoint)
from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.progress import progress_bar

__all__ = ["CHECKPOINTS", "Stage", "StepBatches", "TRAINING_DEFAULTS", "RESUMABLE_CHANGES", "TrainResult",
           "TrainingError", "checkpoint_dirs", "config_differences", "config_sha256", "derive_seed",
           "learning_rate", "load_trainer_state", "save_checkpoint", "step_indices", "train", "training_config"]
LOSS_CSV = "loss.csv"
LOSS_PNG = "loss.png"

TRAINING_DEFAULTS: dict[str, Any] = {
    "steps": 1000,  # optimizer steps in all
    "batch_size": 16,  # windows per step and process
    "lr": 1e-4,
    "weight_decay": 0.01,  # AdamW's default
    "betas": [0.9, 0.999],
    "warmup_steps": 0,  # linear warmup from 0 to lr
    "decay_steps": 0,  # > 0: cosine decay from lr to min_lr over this many steps after warmup
    "min_lr": 0.0,
    "grad_clip": 1.0,  # max global gradient norm; 0 turns clipping off
    "mixed_precision": "no",  # no | fp16 | bf16 (accelerate)
    "cpu": False,  # force the CPU even where a GPU is present
    "num_workers": 0,  # DataLoader workers
    "log_every": 10,  # steps between loss.csv rows
    "checkpoint_every": 500,  # steps between checkpoints (and one at the end)
    "keep_checkpoints": 3,  # newest checkpoints kept, older ones deleted; 0 keeps all, 1 only the newest (the final one at the end)
    # false: checkpoints hold weights, config and trainer state only (AdamW's moments are twice the weights: a
    # 642M-parameter UNet's checkpoint is 7.7 GB with them, 2.6 GB without); such a run cannot be resumed
    "save_optimizer": True,
}
# Keys that may change between an interrupted run and its resumption without changing the result of the
# steps both runs make: how long to train and how often to log or save.
RESUMABLE_CHANGES = ("training.steps", "training.log_every", "training.checkpoint_every",
                     "training.keep_checkpoints", "training.save_optimizer", "training.num_workers")


# ------------------------------------------------------------------------------------------ stages
@dataclasses.dataclass(frozen=True)
class Stage:
    """A trainable stage: ``model`` and ``dataset`` are "module:attr" strings, imported on first use.

    ``dataset(config, dataset_dir)`` returns a map-style ``torch.utils.data.Dataset`` whose items
    ``default_collate`` can batch.
    """

    model_name: str  # e.g. "dreamhead": written into config.yaml and checked on load
    name: str  # e.g. "a2l"
    model: str
    dataset: str
    # "module:attr" of ``runs(config, dataset_dir, speakers) -> [(identity, config)]`` for a stage trained
    # once per identity (run folder RUN_DIR/<stage>/<identity>/); None: one model for every speaker.
    identity_runs: str | None = None

    def model_class(self) -> type:
        return _import(self.model)

    def runs(self, config: dict, dataset_dir: Path, speakers: list[str] | None = None) -> list[tuple[str | None, dict]]:
        """What one ``toolkit train`` of this stage trains: (identity or None, config) per model, in order.
        `speakers` (``--speaker``) picks the identities of a per-identity stage."""
        if self.identity_runs is None:
            if speakers:
                raise TrainingError(f"{self.model_name} {self.name} trains one model for every speaker; "
                                    "--speaker applies to a stage trained per identity")
            return [(None, config)]
        return _import(self.identity_runs)(config, dataset_dir, speakers)

    def build_dataset(self, config: dict, dataset_dir: Path) -> torch.utils.data.Dataset:
        return _import(self.dataset)(config, dataset_dir)


def _import(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise TrainingError(f"cannot import {target}: {exc}") from exc


# ------------------------------------------------------------------------------------------ config
def training_config(config: dict) -> dict:
    """``config["training"]`` over :data:`TRAINING_DEFAULTS`; unknown keys are an error (typos)."""
    given = config.get("training") or {}
    unknown = sorted(set(given) - set(TRAINING_DEFAULTS))
    if unknown:
        raise TrainingError(f"unknown training keys {unknown}; known: {sorted(TRAINING_DEFAULTS)}")
    return {**TRAINING_DEFAULTS, **given}


def _flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def config_differences(old: dict, new: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two configs ("key: old -> new"), `ignore`d keys left out."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k, '<absent>')!r} -> {b.get(k, '<absent>')!r}"
            for k in sorted(set(a) | set(b)) if k not in ignore and a.get(k, "<absent>") != b.get(k, "<absent>")]


def write_yaml(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


# ------------------------------------------------------------------------------------- randomness
def derive_seed(*parts: int) -> int:
    """A 63-bit seed from integers (seed, step, process, stream): independent streams per step."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0]) >> 1


def step_indices(seed: int, step: int, process: int, batch_size: int, size: int) -> list[int]:
    """The dataset indices of one step's batch: uniform with replacement, a function of (seed, step, process)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, step, process, 0))
    return torch.randint(size, (batch_size,), generator=generator).tolist()


class StepBatches(torch.utils.data.Sampler):
    """Batches of indices for steps start..stop-1 (a batch sampler for DataLoader)."""

    def __init__(self, seed: int, start: int, stop: int, process: int, batch_size: int, size: int):
        self.seed, self.start, self.stop, self.process = seed, start, stop, process
        self.batch_size, self.size = batch_size, size

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self):
        for step in range(self.start, self.stop):
            yield step_indices(self.seed, step, self.process, self.batch_size, self.size)


# ------------------------------------------------------------------------------------------ lr
def learning_rate(step: int, cfg: dict) -> float:
    """Linear warmup over `warmup_steps`, then constant, or cosine down to `min_lr` over `decay_steps`."""
    base = float(cfg["lr"])
    warmup = int(cfg["warmup_steps"])
    if warmup and step < warmup:
        return base * (step + 1) / warmup
    decay = int(cfg["decay_steps"])
    if decay:
        progress = min(1.0, (step - warmup) / decay)
        return float(cfg["min_lr"]) + 0.5 * (base - float(cfg["min_lr"])) * (1.0 + math.cos(math.pi * progress))
    return base


# ------------------------------------------------------------------------------------------ logging
def _read_log(path: Path, up_to_step: int) -> list[dict]:
    """Rows of loss.csv with step <= up_to_step (a resumed run redoes the later ones)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if int(row["step"]) <= up_to_step]


def write_log(path: Path, rows: list[dict]) -> None:
    """loss.csv (atomically rewritten: it is small): step, loss, the extra terms, lr, seconds."""
    fields = ["step", "loss"]
    for row in rows:
        fields += [k for k in row if k not in fields and k not in ("lr", "seconds")]
    fields += ["lr", "seconds"]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(rows)


def plot_log(rows: list[dict], path: Path, title: str) -> None:
    """loss.png: the loss (log scale) and every extra term against the step."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    if not rows:
        return
    steps = [int(r["step"]) for r in rows]
    terms = [k for k in rows[0] if k not in ("step", "lr", "seconds")]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for term in terms:
        values = [float(r[term]) if r.get(term) not in (None, "") else float("nan") for r in rows]
        ax.plot(steps, values, label=term, linewidth=1.5 if term == "loss" else 1.0)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------ train
@dataclasses.dataclass
class TrainResult:
    run_dir: Path
    step: int  # steps done in all
    resumed_from: int  # 0 for a fresh run
    last_loss: float | None
    seconds: float


def train(stage: Stage, config: dict, dataset_dir: str | os.PathLike, run_dir: str | os.PathLike, *,
          resume: bool = False, show_progress: bool = True, device: str | None = None,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train `stage` with `config` on the dataset in `dataset_dir`, writing the run folder `run_dir`.

    `device`: ``cpu``, ``cuda`` or ``cuda:N`` (checked before any work); None follows the config's
    ``training.cpu`` (a GPU when there is one). Under ``accelerate launch`` each process takes its own GPU.
    `resume`: continue from the newest checkpoint in `run_dir`; its config must equal `config` except
    for :data:`RESUMABLE_CHANGES`. Without `resume`, a `run_dir` that already has checkpoints is an
    error (nothing is overwritten). `on_step(step, loss)` is called after every optimizer step.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    dataset_dir, run_dir = Path(dataset_dir), Path(run_dir)
    cfg = training_config(config)
    on_cpu = _on_cpu(cfg, device)
    seed = int(config.get("seed", 0))
    if config.get("model") != stage.model_name or config.get("stage") != stage.name:
        raise TrainingError(f"the config is for model {config.get('model')!r} stage {config.get('stage')!r}, "
                            f"not {stage.model_name!r} stage {stage.name!r}")

    # -------------------------------------------------------------- where do we start
    start_step, checkpoint = 0, None
    existing = checkpoint_dirs(run_dir)
    if existing and not resume:
        raise TrainingError(f"{run_dir} already holds checkpoints (newest {existing[-1].name}); "
                            "pass --resume to continue that run, or choose another --out")
    if resume:
        if not existing:
            raise TrainingError(f"--resume: {run_dir} has no checkpoint to resume from "
                                f"(expected {run_dir / CHECKPOINTS}/step-XXXXXX/{STATE_FILE})")
        checkpoint = existing[-1]
        state = load_trainer_state(checkpoint)
        diff = config_differences(state["config"], config, ignore=RESUMABLE_CHANGES)
        if diff:
            raise TrainingError(f"--resume: the config differs from the one {checkpoint} was trained with: "
                                + "; ".join(diff))
        start_step = int(state["step"])
        optimizer_file = optimizer_state_file(checkpoint, state)  # refused here, before any work

    # -------------------------------------------------------------- device, model, optimizer, data
    # accelerate keeps one process-wide state and refuses a second Accelerator with other settings; a
    # process that trains several runs (tests, notebooks) starts each from a clean state. The distributed
    # part (PartialState, set up by `accelerate launch`) is kept.
    AcceleratorState._reset_state(reset_partial_state=False)
    # DDP must look for parameters without a gradient: wav2vec 2.0's LayerDrop skips whole layers at random and
    # a GAN's loss terms leave one network out, so a step can leave parameters unused. On a machine without
    # CUDA, launched processes run as one gloo group (MULTI_CPU), not as copies that each train alone.
    accelerator = Accelerator(mixed_precision=cfg["mixed_precision"],
                              cpu=on_cpu,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    distributed = {"processes": accelerator.num_processes, "type": str(accelerator.distributed_type.value),
                   "device": str(accelerator.device)}
    set_seed(seed)  # model initialisation is the same on every process and every run
    model_class = stage.model_class()
    model = model_class.from_config(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), betas=tuple(cfg["betas"]),
                                  weight_decay=float(cfg["weight_decay"]))
    if checkpoint is not None:
        loaded = model_class.from_pretrained(checkpoint)
        model.load_state_dict(loaded.state_dict())
        optimizer.load_state_dict(torch.load(optimizer_file, map_location="cpu", weights_only=True))
        restore_rng_states(state["rng"])
    dataset = stage.build_dataset(config, dataset_dir)
    if len(dataset) == 0:
        raise TrainingError(f"{dataset_dir}: the {stage.name} dataset is empty")
    # The loss runs through a module's forward so that DDP (multi-GPU) sees it and all-reduces gradients.
    wrapper, optimizer = accelerator.prepare(_TrainingLoss(model), optimizer)
    if checkpoint is not None and accelerator.scaler is not None and (checkpoint / SCALER_FILE).is_file():
        accelerator.scaler.load_state_dict(torch.load(checkpoint / SCALER_FILE, weights_only=True))
    loader = torch.utils.data.DataLoader(
        dataset, num_workers=int(cfg["num_workers"]),
        batch_sampler=StepBatches(seed, start_step, int(cfg["steps"]), accelerator.process_index,
                                  int(cfg["batch_size"]), len(dataset)),
    )

    # -------------------------------------------------------------- the loop
    rows = _read_log(run_dir / LOSS_CSV, start_step) if accelerator.is_main_process else []
    seconds = float(rows[-1]["seconds"]) if rows else 0.0
    clock, last_loss, step = time.perf_counter(), None, start_step
    title = f"{stage.model_name} {stage.name}: {run_dir.name}"
    total = max(0, int(cfg["steps"]) - start_step)
    wrapper.train()
    with progress_bar(total, f"train {stage.name}", unit="steps",
                      enabled=show_progress and accelerator.is_main_process) as advance:
        for batch in loader:
            lr = learning_rate(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch = _to_device(batch, accelerator.device)
            generator = torch.Generator(device=accelerator.device)
            generator.manual_seed(derive_seed(seed, step, accelerator.process_index, 1))
            with accelerator.autocast():
                out = wrapper(batch, generator)
            loss, extras = out if isinstance(out, tuple) else (out, {})
            if not torch.isfinite(loss):
                raise TrainingError(f"step {step}: the loss is {loss.item()} (lower training.lr or use "
                                    "mixed_precision: no)")
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            if float(cfg["grad_clip"]) > 0:
                accelerator.clip_grad_norm_(wrapper.parameters(), float(cfg["grad_clip"]))
            optimizer.step()
            step += 1
            last_loss = float(accelerator.reduce(loss.detach(), reduction="mean").item())
            if on_step is not None:
                on_step(step, last_loss)
            advance(1, info=f"loss {last_loss:.4f}")

            if accelerator.is_main_process and (step % int(cfg["log_every"]) == 0 or step == int(cfg["steps"])):
                now = time.perf_counter()
                seconds, clock = seconds + now - clock, now
                rows.append({"step": step, "loss": f"{last_loss:.6g}",
                             **{k: f"{float(v):.6g}" for k, v in extras.items()},
                             "lr": f"{lr:.6g}", "seconds": f"{seconds:.2f}"})
                write_log(run_dir / LOSS_CSV, rows)
            if step % int(cfg["checkpoint_every"]) == 0 or step == int(cfg["steps"]):
                accelerator.wait_for_everyone()
                if accelerator.is_main_process:
                    save_checkpoint(run_dir, model, optimizer, step, config, int(cfg["keep_checkpoints"]),
                                    accelerator.scaler, distributed, save_optimizer=bool(cfg["save_optimizer"]),
                                    mixed_precision=str(accelerator.mixed_precision))
                    plot_log(rows, run_dir / LOSS_PNG, title)

    accelerator.end_training()
    return TrainResult(run_dir=run_dir, step=step, resumed_from=start_step, last_loss=last_loss, seconds=seconds)


class _TrainingLoss(torch.nn.Module):
    """``forward(batch, generator)`` = ``model.training_loss(batch, generator=generator)``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch: dict, generator: torch.Generator) -> Any:
        return self.model.training_loss(batch, generator=generator)


def _on_cpu(cfg: dict, device: str | None) -> bool:
    """Whether this run trains on the CPU; a ``cuda:N`` of a single process becomes the current CUDA device
    (Accelerate's ``cuda`` is the current one)."""
    from talking_head.toolkit.device import check_device

    if device is None:
        return bool(cfg["cpu"]) or not torch.cuda.is_available()
    try:
        kind, _, index = check_device(device).partition(":")
    except ValueError as exc:
        raise TrainingError(str(exc)) from None
    if index:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise TrainingError(f"device {device!r}: under accelerate launch each process takes its own GPU; "
                                "give cuda without an index")
        torch.cuda.set_device(int(index))
    return kind == "cpu"


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch
