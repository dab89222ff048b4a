"""DreamHead (Hong et al., arXiv 2409.10281): hierarchical diffusion for audio-driven talking heads.

Stage ``a2l`` (:mod:`baselines.dreamhead.a2l_diffusion`): audio -> canonical dense landmarks.
Stage ``l2i`` (:mod:`baselines.dreamhead.l2i_diffusion`): landmarks + reference frame -> video frames.

Configs are plain YAML files, ``configs/<name>/<stage>.yaml`` (``tiny``: trains on the built-in sample
on a laptop CPU; ``paper``: full sizes, every assumption annotated), or any file path. Model classes
are imported only when a stage is used.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from baselines.training import Stage

MODEL_NAME = "dreamhead"
CONFIG_DIR = Path(__file__).with_name("configs")

STAGES: dict[str, Stage] = {
    "a2l": Stage(MODEL_NAME, "a2l", "baselines.dreamhead.a2l_diffusion:A2LDiffusion",
                 "baselines.dreamhead.a2l_diffusion:build_dataset"),
    "l2i": Stage(MODEL_NAME, "l2i", "baselines.dreamhead.l2i_diffusion:L2IDiffusion",
                 "baselines.dreamhead.l2i_diffusion:training_dataset"),
}


class ConfigError(ValueError):
    """A config name, file or override that cannot be used."""


def config_names() -> list[str]:
    """The shipped config names (folders under configs/)."""
    return sorted(p.name for p in CONFIG_DIR.iterdir() if p.is_dir())


def load_config(name_or_file: str | Path, stage: str, overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The config of `stage`: a shipped name (``configs/<name>/<stage>.yaml``) or a YAML file, with
    ``key.sub=value`` overrides (values parsed as YAML; the key must exist and keep its type)."""
    if stage not in STAGES:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {sorted(STAGES)}")
    path = Path(name_or_file)
    if not path.is_file():
        if str(name_or_file) not in config_names():
            raise ConfigError(f"config {str(name_or_file)!r} is neither a file nor one of {config_names()}")
        path = CONFIG_DIR / str(name_or_file) / f"{stage}.yaml"
        if not path.is_file():
            raise ConfigError(f"config {str(name_or_file)!r} has no {stage} stage ({path} does not exist)")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if config.get("model") != MODEL_NAME or config.get("stage") != stage:
        raise ConfigError(f"{path} is a config for model {config.get('model')!r} stage {config.get('stage')!r}, "
                          f"not {MODEL_NAME!r} stage {stage!r}")
    for item in overrides:
        apply_override(config, item)
    return config


def apply_override(config: dict, item: str) -> None:
    """Set ``a.b.c=value`` in `config` in place (nanoGPT's configurator rule: existing keys, same type)."""
    key, sep, text = item.partition("=")
    if not sep:
        raise ConfigError(f"override {item!r}: expected key=value")
    parts = key.strip().split(".")
    node = config
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section of the config")
        node = node[part]
    if parts[-1] not in node:
        raise ConfigError(f"override {item!r}: unknown key {key!r}")
    value, old = yaml.safe_load(text), node[parts[-1]]
    same = (old is None or value is None or type(value) is type(old)
            or (isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool)))
    if not same:
        raise ConfigError(f"override {item!r}: {key} takes {type(old).__name__} values, got {type(value).__name__}")
    node[parts[-1]] = float(value) if isinstance(old, float) and isinstance(value, int) else value
