"""MODA (Liu et al., ICCV 2023, "Mapping-Once Audio-driven Portrait Animation with Dual Attentions").

Three stages, each trained on its own (docs/reference-models.md#the-three-stages):

``motion``    (:mod:`baselines.moda.moda_net`): audio + the speaker's mean mesh -> lip, eye, head and
              torso motion in one pass, through the dual attention (aligned transformer decoder and
              temporal VAE); several samples per audio differ in head motion.
``faco``      (:mod:`baselines.moda.faco_net`): lip + eye motion + the mean mesh -> the full 478-point mesh.
``renderer``  (:mod:`baselines.moda.renderer`, data in :mod:`baselines.moda.renderer_data`): the drawn mesh + shoulder lines, a reference image and
              the temporal positional encoding -> the frame (one model per identity).

Torso points come from :mod:`baselines.moda.torso`; inference chains the stages in
:mod:`baselines.moda.pipeline`. Configs are ``configs/<name>/<stage>.yaml`` (``tiny``: minutes on a CPU
with the built-in sample; ``paper``: the official values, 30 fps) or any file.
"""

from __future__ import annotations

from pathlib import Path

from talking_head.baselines import config as _config
from talking_head.baselines.config import ConfigError, apply_override
from talking_head.baselines.training import Stage

MODEL_NAME = "moda"
CONFIG_DIR = Path(__file__).with_name("configs")
__all__ = ["MODEL_NAME", "STAGES", "ConfigError", "apply_override", "config_names", "load_config"]

STAGES: dict[str, Stage] = {
    "motion": Stage(MODEL_NAME, "motion", "talking_head.baselines.moda.moda_net:MODANet", "talking_head.baselines.moda.moda_net:build_dataset"),
    "faco": Stage(MODEL_NAME, "faco", "talking_head.baselines.moda.faco_net:FaCoNet", "talking_head.baselines.moda.faco_net:build_dataset"),
    "renderer": Stage(MODEL_NAME, "renderer", "talking_head.baselines.moda.renderer:TemporalRenderer",
                      "talking_head.baselines.moda.renderer_data:build_dataset",
                      identity_runs="talking_head.baselines.moda.renderer_data:identity_runs"),
}


def config_names() -> list[str]:
    """The shipped config names (folders under configs/)."""
    return _config.config_names(CONFIG_DIR)


def load_config(name_or_file: str | Path, stage: str, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The config of `stage`: a shipped name (``configs/<name>/<stage>.yaml``) or a YAML file, with
    ``key.sub=value`` overrides (see :func:`baselines.config.load_config`)."""
    return _config.load_config(CONFIG_DIR, MODEL_NAME, STAGES, name_or_file, stage, overrides)
