"""A trained model's `paper` config at its full size, or cut down to tiny sizes key for key.

    from talking_head.baselines.paper_scale import paper_config

    config = paper_config(model, stage, "cut", {"training.mixed_precision": "bf16"})   # model: a registry name

``cut`` replaces only the sizes (widths, depths, resolution, windows, batch and sampler step counts) listed by
the model's registry entry (``ModelSpec.cut_down``, one table per model in its own folder); every other key
keeps the paper's value, so a few steps on a CPU go through the same code as the paper's run. ``full`` is the
paper config as shipped. The bf16 smoke test (tests/test_paper_bf16.py) and benchmarks/paper_smoke.py use it.
"""

from __future__ import annotations

import copy
from typing import Any

from talking_head.baselines import registry

SCALES = ("full", "cut")


def set_key(config: dict, dotted: str, value: Any) -> None:
    """Set an existing key ``a.b.c`` of `config` in place; a ``training.*`` key may also be one the file leaves at
    its default (baselines/training.py TRAINING_DEFAULTS). ValueError for any other unknown key."""
    from talking_head.baselines.training import TRAINING_DEFAULTS

    *sections, key = dotted.split(".")
    node = config
    for section in sections:
        if not isinstance(node.get(section), dict):
            raise ValueError(f"{dotted}: {section!r} is not a section of the config")
        node = node[section]
    if key not in node and not (sections == ["training"] and key in TRAINING_DEFAULTS):
        raise ValueError(f"{dotted}: not a key of the {config.get('model')} {config.get('stage')} config")
    node[key] = copy.deepcopy(value)


def cut_down(config: dict) -> dict:
    """A copy of a `paper` stage config with its model's cut-down sizes (the keys must all be in it)."""
    spec = registry.get_trained(config["model"])
    if spec.cut_down is None:
        raise ValueError(f"{spec.name} declares no cut-down sizes (ModelSpec.cut_down)")
    table = registry.import_target(spec.cut_down)
    if config["stage"] not in table:
        raise ValueError(f"{spec.name} has no cut-down sizes for stage {config['stage']!r}")
    out = copy.deepcopy(config)
    for dotted, value in table[config["stage"]].items():
        set_key(out, dotted, value)
    return out


def paper_config(model: str, stage: str, scale: str = "full", settings: dict[str, Any] | None = None) -> dict:
    """`model`'s `paper` config of `stage` at `scale` (``full`` or ``cut``), then `settings` ({dotted key: value})."""
    if scale not in SCALES:
        raise ValueError(f"scale {scale!r} is not one of {', '.join(SCALES)}")
    config = registry.get_trained(model).load_package().load_config("paper", stage)
    if scale == "cut":
        config = cut_down(config)
    for dotted, value in (settings or {}).items():
        set_key(config, dotted, value)
    return config
