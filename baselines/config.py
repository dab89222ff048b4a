"""Stage configs of the reference models: plain YAML files, ``<model>/configs/<name>/<stage>.yaml``.

A config is named (``tiny``, ``paper``: the folders under the model's ``configs/``) or given as a file,
and takes ``key.sub=value`` overrides. Every config names its ``model`` and ``stage``, and is checked
against the stage it is loaded for, so a DreamHead file cannot train a MODA stage by accident.
"""

from __future__ import annotations

from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A config name, file or override that cannot be used."""


def config_names(config_dir: Path) -> list[str]:
    """The shipped config names (folders under `config_dir`)."""
    return sorted(p.name for p in Path(config_dir).iterdir() if p.is_dir())


def load_config(config_dir: Path, model: str, stages, name_or_file: str | Path, stage: str,
                overrides: list[str] | tuple[str, ...] = ()) -> dict:
    """The config of `model`'s `stage` (one of `stages`): a shipped name (``config_dir/<name>/<stage>.yaml``)
    or a YAML file, with ``key.sub=value`` overrides (values parsed as YAML; the key must exist and keep
    its type)."""
    if stage not in stages:
        raise ConfigError(f"unknown stage {stage!r}; choose one of {sorted(stages)}")
    path = Path(name_or_file)
    if not path.is_file():
        names = config_names(config_dir)
        if str(name_or_file) not in names:
            raise ConfigError(f"config {str(name_or_file)!r} is neither a file nor one of {names}")
        path = Path(config_dir) / str(name_or_file) / f"{stage}.yaml"
        if not path.is_file():
            raise ConfigError(f"config {str(name_or_file)!r} has no {stage} stage ({path} does not exist)")
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if config.get("model") != model or config.get("stage") != stage:
        raise ConfigError(f"{path} is a config for model {config.get('model')!r} stage {config.get('stage')!r}, "
                          f"not {model!r} stage {stage!r}")
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
    if parts[:-1] == ["training"] and parts[-1] not in node:
        from talking_head.baselines.training import TRAINING_DEFAULTS

        if parts[-1] in TRAINING_DEFAULTS:  # a loop setting the file leaves at its default (training_config)
            node[parts[-1]] = TRAINING_DEFAULTS[parts[-1]]
    if parts[-1] not in node:
        raise ConfigError(f"override {item!r}: unknown key {key!r}")
    value, old = yaml.safe_load(text), node[parts[-1]]
    same = (old is None or value is None or type(value) is type(old)
            or (isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool)))
    if not same:
        raise ConfigError(f"override {item!r}: {key} takes {type(old).__name__} values, got {type(value).__name__}")
    node[parts[-1]] = float(value) if isinstance(old, float) and isinstance(value, int) else value
