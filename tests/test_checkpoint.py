"""baselines.checkpoint.PretrainedStage: the one save_pretrained / from_pretrained of every stage class,
on the tests' one-stage model (tests/meanface_model) so that no training is needed."""

from __future__ import annotations

import pytest
import torch
import yaml
from safetensors import safe_open

from talking_head.baselines.checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError, PretrainedStage

from meanface_model import load_config
from meanface_model.model import MeanFace


@pytest.fixture
def saved(tmp_path):
    model = MeanFace.from_config(load_config("tiny", "mesh"))
    with torch.no_grad():
        model.offset.copy_(torch.linspace(-1, 1, model.offset.numel()).reshape(model.offset.shape))
    model.save_pretrained(tmp_path / "ckpt")
    return model, tmp_path / "ckpt"


def test_round_trip_keeps_weights_config_and_tags(saved):
    model, folder = saved
    with safe_open(str(folder / WEIGHTS_NAME), framework="pt") as handle:
        assert handle.metadata() == {"model": "meanface", "stage": "mesh"}
    assert yaml.safe_load((folder / CONFIG_NAME).read_text()) == model.config
    loaded = MeanFace.from_pretrained(folder, device="cpu")
    assert not loaded.training and torch.equal(loaded.offset, model.offset)


def test_other_stages_and_other_shapes_are_refused_naming_the_file(saved, tmp_path):
    _, folder = saved
    config = yaml.safe_load((folder / CONFIG_NAME).read_text())
    (folder / CONFIG_NAME).write_text(yaml.safe_dump({**config, "stage": "renderer"}))
    with pytest.raises(CheckpointError, match=r"config\.yaml: a checkpoint of model/stage \('meanface', 'renderer'\)"):
        MeanFace.from_pretrained(folder)
    (folder / CONFIG_NAME).write_text(yaml.safe_dump(config))
    from safetensors.torch import save_file

    save_file({"offset": torch.zeros(3, 3)}, str(folder / WEIGHTS_NAME), metadata={"model": "meanface", "stage": "mesh"})
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not match .*other shape: \['offset'\]"):
        MeanFace.from_pretrained(folder)
    with pytest.raises(CheckpointError, match=r"config\.yaml: missing"):
        MeanFace.from_pretrained(tmp_path / "empty")


def test_a_stage_class_must_name_its_model_and_stage():
    with pytest.raises(TypeError, match="Nameless must set MODEL_NAME and STAGE"):
        class Nameless(PretrainedStage, torch.nn.Module):
            pass
    with pytest.raises(CheckpointError, match="expected a meanface mesh config, got model 'moda'"):
        MeanFace({**load_config("tiny", "mesh"), "model": "moda"})
