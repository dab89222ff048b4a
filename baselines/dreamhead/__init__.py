"""DreamHead (Hong et al., arXiv 2409.10281): hierarchical diffusion for audio-driven talking heads.

Stage ``a2l`` (:mod:`baselines.dreamhead.a2l_diffusion`): audio -> canonical dense landmarks.
Stage ``l2i`` (:mod:`baselines.dreamhead.l2i_diffusion`): landmarks + reference frame -> video frames.

Configs are plain YAML files, ``configs/<name>/<stage>.yaml`` (``tiny``: trains on the built-in sample
on a laptop CPU; ``paper``: full sizes, every assumption annotated), or any file path. Model classes
are imported only when a stage is used.
"""

from __future__ import annotations

from pathlib import Path

from talking_head.baselines import config as _config
from talking_head.baselines.config import ConfigError, apply_override
from talking_head.baselines.training import Stage

MODEL_NAME = "dreamhead"
CONFIG_DIR = Path(__file__).with_name("configs")
__all__ = ["MODEL_NAME", "STAGES", "ConfigError", "apply_override", "config_names", "load_config"]

STAGES: dict[str, Stage] = {
    "a2l": Stage(MODEL_NAME, "a2l", "talking_head.baselines.dreamhead.a2l_diffusion:A2LDiffusion",
                 "talking_head.baselines.dreamhead.a2l_data:build_dataset"),
    "l2i": Stage(MODEL_NAME, "l2i", "talking_head.baselines.dreamhead.l2i_diffusion:L2IDiffusion",
                 "talking_head.baselines.dreamhead.l2i_diffusion:training_dataset"),
}


def config_names() -> list[str]:
    """The shipped config names (folders under configs/)."""
    return _config.config_names(CONFIG_DIR)


def load_config(name_or_file: str | Path, stage: str, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The config of `stage`: a shipped name (``configs/<name>/<stage>.yaml``) or a YAML file, with
    ``key.sub=value`` overrides (see :func:`baselines.config.load_config`)."""
    return _config.load_config(CONFIG_DIR, MODEL_NAME, STAGES, name_or_file, stage, overrides)
