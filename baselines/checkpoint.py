"""``save_pretrained`` / ``from_pretrained`` for the reference models' stages: one folder holds
``model.safetensors`` (the weights, tagged with model and stage) and ``config.yaml`` (the whole stage
config, which names the model and stage too). Loading checks both tags and that every weight's name and
shape matches a model built from the config, and says which file is wrong when not.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from talking_head.toolkit.fileio import atomic_path

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.yaml"


class CheckpointError(ValueError):
    """A checkpoint folder that is not this model and stage, or whose weights do not fit its config."""


def save(directory: str | Path, module: torch.nn.Module, config: dict, model: str, stage: str,
         skip_prefixes: tuple[str, ...] = ()) -> Path:
    """Write `module`'s state (without the keys under `skip_prefixes`, e.g. frozen pretrained parts that are
    loaded from the registry) and `config` into `directory`, each file atomically."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()
             if not (skip_prefixes and k.startswith(skip_prefixes))}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"model": model, "stage": stage})
    with atomic_path(directory / CONFIG_NAME) as tmp:
        tmp.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return directory


def stage_folders(stage_dir: str | Path) -> dict[str | None, Path]:
    """The trained folders of a stage: ``{None: stage_dir}`` when it holds one model, ``{identity:
    stage_dir/<identity>}`` when it holds one model per identity (a stage trained per speaker, e.g. MODA's
    renderer under its release's protocol); empty when nothing is trained there yet."""
    stage_dir = Path(stage_dir)
    if (stage_dir / WEIGHTS_NAME).is_file():
        return {None: stage_dir}
    if not stage_dir.is_dir():
        return {}
    return {sub.name: sub for sub in sorted(stage_dir.iterdir()) if (sub / WEIGHTS_NAME).is_file()}


def read_config(directory: str | Path, model: str, stage: str) -> dict:
    """The config of a checkpoint folder, checked to be `model`'s `stage`."""
    directory = Path(directory)
    config_file = directory / CONFIG_NAME
    for file in (config_file, directory / WEIGHTS_NAME):
        if not file.is_file():
            raise CheckpointError(f"{file}: missing; not a {model} {stage} checkpoint folder")
    try:
        config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CheckpointError(f"{config_file}: not valid YAML ({exc})") from exc
    found = (config.get("model"), config.get("stage")) if isinstance(config, dict) else None
    if found != (model, stage):
        raise CheckpointError(f"{config_file}: a checkpoint of model/stage {found}, not {model}/{stage}")
    return config


def load_weights(directory: str | Path, module: torch.nn.Module, model: str, stage: str,
                 skip_prefixes: tuple[str, ...] = (), device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load ``model.safetensors`` of `directory` into `module` (built from the folder's config); every key
    but those under `skip_prefixes` must be there with the module's shape."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    weights_file = Path(directory) / WEIGHTS_NAME
    try:
        with safe_open(str(weights_file), framework="pt") as handle:
            meta = handle.metadata() or {}
        state = load_file(str(weights_file), device=str(device))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{weights_file}: not a readable safetensors file ({exc})") from exc
    if (meta.get("model"), meta.get("stage")) != (model, stage):
        raise CheckpointError(f"{weights_file}: weights of model {meta.get('model')!r} stage {meta.get('stage')!r}, "
                              f"not {model!r} stage {stage!r}")
    own = {k: v for k, v in module.state_dict().items() if not (skip_prefixes and k.startswith(skip_prefixes))}
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        details = "; ".join(f"{label}: {keys[:5]}{' ...' if len(keys) > 5 else ''}" for label, keys in
                            (("missing", missing), ("unexpected", unexpected), ("other shape", wrong)) if keys)
        raise CheckpointError(f"{weights_file} does not match {Path(directory) / CONFIG_NAME} "
                              f"(weights from another config?): {details}")
    module.load_state_dict(state, strict=not skip_prefixes)
    return module.to(device)


class PretrainedStage:
    """``save_pretrained`` / ``from_pretrained`` for a stage class (an ``nn.Module`` with ``config`` and
    ``from_config``). The class names its model and stage in ``MODEL_NAME`` and ``STAGE``; parts listed
    in ``SKIP_PREFIXES`` (frozen pretrained parts that come from the weights registry) are neither saved
    nor expected on load; ``check_config`` raises ValueError for a config the class cannot be built from."""

    MODEL_NAME: str
    STAGE: str
    SKIP_PREFIXES: tuple[str, ...] = ()

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in ("MODEL_NAME", "STAGE") if not isinstance(getattr(cls, name, None), str)]
        if missing:  # caught when the class is defined, not at the first save
            raise TypeError(f"{cls.__qualname__} must set {' and '.join(missing)} (a stage class of the checkpoint mixin)")

    @classmethod
    def check_config(cls, config: dict) -> None:
        """Raise ValueError naming what is wrong with `config` (default: nothing beyond model and stage)."""

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` (without ``SKIP_PREFIXES``) and ``config.yaml`` into `directory`."""
        return save(directory, self, self.config, self.MODEL_NAME, self.STAGE, skip_prefixes=self.SKIP_PREFIXES)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu"):
        """Load a folder written by :meth:`save_pretrained` (a run folder or one of its checkpoints), in
        eval mode on `device`; CheckpointError naming the file when it is another model or stage, or its
        weights do not fit its config."""
        config = read_config(directory, cls.MODEL_NAME, cls.STAGE)
        try:
            cls.check_config(config)
        except ValueError as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: {exc}") from exc
        model = cls.from_config(config)  # a missing registry file raises the registry's WeightsMissingError
        return load_weights(directory, model, cls.MODEL_NAME, cls.STAGE, skip_prefixes=cls.SKIP_PREFIXES,
                            device=device).eval()

    @classmethod
    def check_names(cls, config: dict) -> None:
        """CheckpointError unless `config` names this class's model and stage (a constructor's first check)."""
        if (config.get("model"), config.get("stage")) != (cls.MODEL_NAME, cls.STAGE):
            raise CheckpointError(f"expected a {cls.MODEL_NAME} {cls.STAGE} config, got model "
                                  f"{config.get('model')!r} stage {config.get('stage')!r}")
