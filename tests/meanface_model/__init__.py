"""A third model for the registry tests: "meanface", one stage ("mesh") that learns the mean canonical
face of the training clips and draws it, at the reference's head pose, with the shared mesh renderer.

It lives outside the toolkit and reaches the command line only through :func:`register` (or the
``TALKING_HEAD_MODELS`` variable naming :mod:`meanface_model.registration`): no toolkit file names it.
"""

from __future__ import annotations

from pathlib import Path

from talking_head.baselines import config as _config
from talking_head.baselines.config import ConfigError
from talking_head.baselines.registry import ModelSpec
from talking_head.baselines.training import Stage

MODEL_NAME = "meanface"
CONFIG_DIR = Path(__file__).with_name("configs")
__all__ = ["MODEL_NAME", "SPEC", "STAGES", "ConfigError", "config_names", "load_config"]

STAGES: dict[str, Stage] = {
    "mesh": Stage(MODEL_NAME, "mesh", "meanface_model.model:MeanFace", "meanface_model.model:build_dataset"),
}
SPEC = ModelSpec(name=MODEL_NAME, display_name="Mean face", package="meanface_model", stages=tuple(STAGES),
                 renderer_stage="mesh", pipeline="meanface_model.pipeline:MeanFacePipeline")


def config_names() -> list[str]:
    return _config.config_names(CONFIG_DIR)


def load_config(name_or_file: str | Path, stage: str, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    return _config.load_config(CONFIG_DIR, MODEL_NAME, STAGES, name_or_file, stage, overrides)
