"""Every model that ``toolkit train``, ``toolkit generate``, ``toolkit evaluate --model`` and the
leaderboard know, declared in one place.

Usage::

    from talking_head.baselines import registry

    registry.names()                         # ["dreamhead", "moda", "ground-truth", ...]
    spec = registry.get_trained("dreamhead")  # ModelSpec: stages ("a2l", "l2i"), configs, pipeline
    spec.pipeline_class()                    # DreamHeadPipeline

Entries
-------

Two kinds of entries:

:class:`ModelSpec`
    a trained reference model: its stages in training order, the stage that draws frames, its
    inference pipeline (a :class:`baselines.pipeline.Pipeline`) and the package holding its stage
    table and configs (``STAGES``, ``load_config``, ``ConfigError``).
:class:`BaselineSpec`
    a leaderboard row that needs no training: ground truth (the ideal) and the floor baselines, each
    made by one function of :mod:`baselines.floors`.

Everything is named by import path, so importing this module imports neither torch nor any model.
:func:`register` adds a model (a test, a third model). A model outside this package reaches the
command line without editing any file here: put the module that calls :func:`register` in the
environment variable ``TALKING_HEAD_MODELS`` (comma-separated module names); the registry imports those
modules the first time it is read.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from types import ModuleType
from typing import Any, Union

EXTRA_MODULES_VARIABLE = "TALKING_HEAD_MODELS"
# Leaderboard row order and the `sample` recipe's check: ground truth first, trained models, then floors.
KINDS = ("ground-truth", "trained", "floor")


class UnknownModelError(ValueError):
    """A model name the registry does not hold; the message lists the ones it does."""


def import_target(target: str) -> Any:
    """The object a ``"module:attribute"`` string names."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A trained reference model."""

    name: str  # as on the command line and in config.yaml, e.g. "moda"
    display_name: str  # as in the leaderboard
    package: str  # module with STAGES, load_config(name_or_file, stage, overrides), ConfigError, config_names
    stages: tuple[str, ...]  # in training order; RUN_DIR/<stage>/ each
    renderer_stage: str  # the stage that draws frames: left out for landmarks only, borrowed by the floors
    pipeline: str  # "module:Class" implementing baselines.pipeline.Pipeline
    kind: str = "trained"
    # "module:ATTR" of {stage: {dotted key: value}}: the `paper` configs cut down to tiny sizes, key for key
    # (baselines/paper_scale.py: the bf16 smoke test and benchmarks/paper_smoke.py --scale cut); None: none
    cut_down: str | None = None

    def __post_init__(self) -> None:
        if self.renderer_stage not in self.stages:
            raise ValueError(f"model {self.name}: renderer stage {self.renderer_stage!r} is not one of its stages "
                             f"{self.stages}")

    @property
    def needs_checkpoint(self) -> bool:
        return True

    def load_package(self) -> ModuleType:
        return importlib.import_module(self.package)

    def pipeline_class(self) -> type:
        return import_target(self.pipeline)


@dataclasses.dataclass(frozen=True)
class BaselineSpec:
    """A leaderboard row without training: made by `generator` (see :mod:`baselines.floors`)."""

    name: str
    display_name: str
    kind: str  # "ground-truth" or "floor"
    generator: str  # "module:function" returning a baselines.floors.Generator
    uses_renderer: bool = False  # draws with the renderer of a trained model's run folder (--checkpoint)
    renderer_label: str = ""  # display name when drawn by a model's renderer; {renderer}: its display name
    decodes_frames: bool = True  # needs the reference frame of each clip decoded

    @property
    def needs_checkpoint(self) -> bool:
        return self.uses_renderer


Spec = Union[ModelSpec, BaselineSpec]

_SPECS: dict[str, Spec] = {}
_extras_loaded: set[str] = set()


def register(spec: Spec, replace: bool = False) -> Spec:
    """Add `spec` to the registry (an error if its name is taken, unless `replace`)."""
    if spec.kind not in KINDS:
        raise ValueError(f"model {spec.name}: kind must be one of {KINDS}, not {spec.kind!r}")
    if spec.name in _SPECS and not replace and _SPECS[spec.name] != spec:
        raise ValueError(f"a model named {spec.name!r} is registered already")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a model that :func:`register` added (tests clean up after themselves)."""
    _SPECS.pop(name, None)


def _load_extra_modules() -> None:
    """Import the modules named in TALKING_HEAD_MODELS, once each: they register their models."""
    for module in filter(None, (m.strip() for m in os.environ.get(EXTRA_MODULES_VARIABLE, "").split(","))):
        if module not in _extras_loaded:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ImportError(f"{EXTRA_MODULES_VARIABLE} names {module!r}, which cannot be imported: {exc}") from exc
            _extras_loaded.add(module)


def all_specs() -> list[Spec]:
    _load_extra_modules()
    return list(_SPECS.values())


def names() -> list[str]:
    """Every model name: trained models, then ground truth and the floors (registration order)."""
    return [s.name for s in all_specs()]


def trained() -> list[ModelSpec]:
    return [s for s in all_specs() if isinstance(s, ModelSpec)]


def trained_names() -> list[str]:
    return [s.name for s in trained()]


def get(name: str) -> Spec:
    """The spec of model `name`; UnknownModelError naming the known ones otherwise."""
    specs = {s.name: s for s in all_specs()}
    if name not in specs:
        raise UnknownModelError(f"unknown model {name!r}; choose one of {', '.join(specs)}")
    return specs[name]


def get_trained(name: str) -> ModelSpec:
    """The spec of trained model `name`; UnknownModelError when it is unknown or not trained."""
    specs = {s.name: s for s in trained()}
    if name not in specs:
        problem = f"{name!r} is not a trained model" if name in names() else f"unknown model {name!r}"
        raise UnknownModelError(f"{problem}; choose one of {', '.join(specs)}")
    return specs[name]


def display_name(name: str) -> str:
    """The leaderboard name of `name` (the name itself for a model the registry does not hold)."""
    try:
        return get(name).display_name
    except UnknownModelError:
        return name


def kind(name: str) -> str | None:
    """``ground-truth``, ``trained`` or ``floor``; None for a model the registry does not hold."""
    try:
        return get(name).kind
    except UnknownModelError:
        return None


# ------------------------------------------------------------------------------------------ the entries
register(ModelSpec(
    name="dreamhead", display_name="DreamHead", package="talking_head.baselines.dreamhead", stages=("a2l", "l2i"),
    renderer_stage="l2i", pipeline="talking_head.baselines.dreamhead.pipeline:DreamHeadPipeline",
    cut_down="talking_head.baselines.dreamhead.cut_down:CUT_DOWN"))
register(ModelSpec(
    name="moda", display_name="MODA", package="talking_head.baselines.moda", stages=("motion", "faco", "renderer"),
    renderer_stage="renderer", pipeline="talking_head.baselines.moda.pipeline:MODAPipeline",
    cut_down="talking_head.baselines.moda.cut_down:CUT_DOWN"))
register(BaselineSpec(
    name="ground-truth", display_name="Ground truth", kind="ground-truth",
    generator="talking_head.baselines.floors:ground_truth", decodes_frames=False))
register(BaselineSpec(
    name="static-reference", display_name="Static reference (floor)", kind="floor",
    generator="talking_head.baselines.floors:static_reference"))
register(BaselineSpec(
    name="mean-landmarks", display_name="Mean landmarks (floor)", kind="floor",
    generator="talking_head.baselines.floors:mean_landmarks", uses_renderer=True,
    renderer_label="Mean landmarks (floor, {renderer} renderer)"))
