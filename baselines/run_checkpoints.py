"""The checkpoints of a training run (RUN_DIR/checkpoints/step-XXXXXX/): writing, listing, pruning, and what a
resumption needs from them. The loop that calls these is baselines/training.py.

A checkpoint folder holds ``model.safetensors`` and ``config.yaml`` (the stage's ``save_pretrained``),
``trainer_state.json`` (step, config and its digest, the global RNG states, software versions, the process
layout, and whether the optimizer state was saved) and, unless ``training.save_optimizer`` is false,
``optimizer.pt`` (+ ``scaler.pt`` with fp16). Without the optimizer state a run cannot continue exactly
(AdamW's moments are gone), so resuming from such a checkpoint is refused rather than restarted silently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talking_head.toolkit.fileio import atomic_path, write_json
from talking_head.toolkit.provenance import software_versions

CHECKPOINTS = "checkpoints"
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.yaml"
OPTIMIZER_FILE = "optimizer.pt"
SCALER_FILE = "scaler.pt"
STATE_FILE = "trainer_state.json"


class TrainingError(RuntimeError):
    """A run folder, config or checkpoint that cannot be used as asked."""


def config_sha256(config: dict) -> str:
    """sha256 of the config as canonical JSON (sorted keys): equal configs give equal digests."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ------------------------------------------------------------------------------------- RNG states
def _b64(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def _from_b64(text: str) -> torch.Tensor:
    return torch.from_numpy(np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy())


def rng_states() -> dict[str, Any]:
    """Global RNG states (torch CPU and CUDA, numpy, Python) as JSON-able data for trainer_state.json."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, python_gauss = random.getstate()
    return {
        "torch": _b64(torch.get_rng_state()),
        "cuda": [_b64(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": [kind, base64.b64encode(np.asarray(keys, np.uint32).tobytes()).decode("ascii"), int(pos),
                  int(has_gauss), float(gauss)],
        "python": [version, list(internal), python_gauss],
    }


def restore_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(_from_b64(states["torch"]))
    if states["cuda"] and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([_from_b64(s) for s in states["cuda"]])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, np.frombuffer(base64.b64decode(keys), dtype=np.uint32).copy(), pos, has_gauss, gauss))
    version, internal, python_gauss = states["python"]
    random.setstate((version, tuple(internal), python_gauss))


# ------------------------------------------------------------------------------------- checkpoints
def checkpoint_dirs(run_dir: Path) -> list[Path]:
    """Complete checkpoint folders, oldest first (a folder is renamed into place only when complete)."""
    folder = Path(run_dir) / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-") and
                  p.name[5:].isdigit() and (p / STATE_FILE).is_file())


def save_checkpoint(run_dir: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    config: dict, keep: int, scaler: Any = None, distributed: dict | None = None,
                    save_optimizer: bool = True, mixed_precision: str = "no") -> Path:
    """Write checkpoints/step-XXXXXX/ (into a temporary folder, renamed when complete), refresh the latest
    RUN_DIR/model.safetensors + config.yaml, and delete all but the newest `keep` checkpoints (0: keep all).
    `save_optimizer` False leaves out the optimizer (and loss-scaler) state: the checkpoint is then a third
    of the size with AdamW, and cannot be resumed from."""
    final = Path(run_dir) / CHECKPOINTS / f"step-{step:06d}"
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp)
        if save_optimizer:
            torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
            if scaler is not None:  # fp16: the loss scale is part of the optimizer's state
                torch.save(scaler.state_dict(), tmp / SCALER_FILE)
        state = {"step": step, "config": config, "config_sha256": config_sha256(config),
                 "rng": rng_states(), "software": software_versions(), "distributed": distributed,
                 "optimizer_saved": bool(save_optimizer), "mixed_precision": mixed_precision}
        write_json(tmp / STATE_FILE, state)
        if final.exists():  # the same step saved again (a resumed run that made no progress)
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name in (MODEL_FILE, CONFIG_FILE):  # the "latest" copy that generation reads
        with atomic_path(Path(run_dir) / name) as target:
            shutil.copyfile(final / name, target)
    for old in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_trainer_state(checkpoint: Path) -> dict:
    try:
        return json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainingError(f"{checkpoint / STATE_FILE}: unreadable trainer state ({exc})") from exc


def optimizer_state_file(checkpoint: Path, state: dict) -> Path:
    """The optimizer state a resumption loads; TrainingError in one sentence when the checkpoint was saved without
    it (restarting AdamW's moments would silently give other weights than the uninterrupted run)."""
    if state.get("optimizer_saved") is False or not (checkpoint / OPTIMIZER_FILE).is_file():
        raise TrainingError(f"--resume: {checkpoint} holds no optimizer state (it was saved with "
                         "training.save_optimizer: false), so the run cannot continue exactly; start a new run "
                         "(its weights are in model.safetensors for generation)")
    return checkpoint / OPTIMIZER_FILE
