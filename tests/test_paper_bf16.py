"""bf16 smoke of every `paper`-shaped stage of both reference models (issue 21).

Each stage's `paper` config keeps every key and value but its sizes (baselines/paper_scale.py: widths, depths,
resolution, windows, batch), and trains 2 steps with ``training.mixed_precision: bf16`` on the CPU through
``toolkit train`` on the preprocessed sample, with random stand-ins for the pretrained files it loads
(wav2vec 2.0, VGG19, the SD VAE). The loss must stay finite and the run must record bf16.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
import yaml
from typer.testing import CliRunner

import weights_factory as factory
from talking_head.baselines import registry
from talking_head.baselines.checkpoint import stage_folders
from talking_head.baselines.paper_scale import paper_config
from talking_head.baselines.training import _flatten, checkpoint_dirs
from talking_head.toolkit.cli import app

STAGES = [(model, stage) for model in registry.trained_names() for stage in registry.get_trained(model).stages]
SAMPLE_FPS = 25.0  # the preprocessed_sample fixture's frame rate (the paper's MODA configs say 30)
SMOKE = {"training.mixed_precision": "bf16", "training.cpu": True, "training.steps": 2, "training.log_every": 1,
         "training.checkpoint_every": 2}

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.mark.parametrize(("model", "stage"), STAGES)
def test_cut_down_keeps_every_key_of_the_paper_config(model: str, stage: str) -> None:
    paper, cut = paper_config(model, stage), paper_config(model, stage, "cut")
    assert _flatten(cut).keys() == _flatten(paper).keys()
    changed = {k for k, v in _flatten(cut).items() if _flatten(paper)[k] != v}
    assert changed and all(not k.startswith(("loss.", "noise.", "diffusion.", "fixes.")) for k in changed), changed


@pytest.mark.usefixtures("isolated_caches")
@pytest.mark.parametrize(("model", "stage"), STAGES)
def test_paper_shaped_stage_trains_in_bf16(model: str, stage: str, preprocessed_sample, tmp_path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    config = paper_config(model, stage, "cut", SMOKE)
    if "fps" in config:
        config["fps"] = SAMPLE_FPS
    if (config.get("data") or {}).get("split") == "adapt":  # the fixture has no adapt split; train is the same code
        config["data"]["split"] = "train"
    factory.stage_stand_ins(monkeypatch, config)
    file = tmp_path / f"{stage}.yaml"
    file.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", model, "--stage", stage, "--config", str(file), "--dataset",
                                      str(preprocessed_sample), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    folders = stage_folders(out / stage)  # one model, or one per identity
    assert folders
    for folder in folders.values():
        state = json.loads((checkpoint_dirs(folder)[-1] / "trainer_state.json").read_text())
        assert state["step"] == 2 and state["mixed_precision"] == "bf16"
        assert state["config"]["training"]["mixed_precision"] == "bf16"
        with open(folder / "loss.csv", newline="") as handle:
            losses = [float(row["loss"]) for row in csv.DictReader(handle)]
        assert len(losses) == 2 and all(math.isfinite(x) for x in losses), losses
