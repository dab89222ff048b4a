"""`toolkit reproduce moda-hdtf` end to end on a stand-in HDTF tree (tests/hdtf_stand_in.py), with the paper
configs cut down (``--scale cut --steps 2``): HDTF's preprocessing at 30 fps with each test clip cut into its
adaptation part and its test part, MODA's motion and FaCo stages on the train identities, one renderer per
test identity trained on that person's adaptation part, generation with each person's own renderer, the
recipe's metrics (NIQE with BasicSR's real pristine model, LMD, LSE with a calibrated stand-in SyncNet), and
the leaderboard beside the paper's table, titled as the check it is."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from talking_head.leaderboards import recipe_training, reproduce
from talking_head.metrics.lse import CROP_SIZE
from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate

import weights_factory as factory
from hdtf_stand_in import HDTF_TEST, stand_in_hdtf

pytestmark = pytest.mark.train  # preprocesses and trains every stage (about 80 s): make test, not make test-fast

SECONDS = 5  # at 30 fps: 120 frames fit each test person's renderer, 30 are scored (enough for SyncNet's windows)


def _place_recipe_weights(monkeypatch, clip) -> None:
    """Every file moda-hdtf names (its `weights`), where the registry looks, pinned to its own digest as a
    published file is (the recipe accepts no unpinned file): BasicSR's real NIQE model, stand-ins for the rest."""
    recipe = reproduce.RECIPES["moda-hdtf"]
    for _, config in recipe_training.stages(recipe, "moda", recipe_training.Training("cut", 2)):
        factory.stage_stand_ins(monkeypatch, config)  # wav2vec 2.0 at the motion config's width, VGG19
    frames = media.read_video(clip.video)
    audio = media.read_audio(clip.video, sample_rate=16000, dtype="int16")
    crops = np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])
    factory.place(monkeypatch, "syncnet", factory.syncnet(crops, audio))
    factory.place_basicsr_niqe()
    for name in recipe.weights:
        if name != "niqe-pristine":
            factory.pin_placed(monkeypatch, name)


def test_moda_hdtf_trains_and_uses_a_renderer_per_test_identity(tmp_path, isolated_caches, monkeypatch):
    # seed 5: every clip speaks in its last second (a test part with silent audio is refused by generation)
    clips = generate(tmp_path / "sample", speakers=4, clips=1, seconds=SECONDS, seed=5, show_progress=False)
    annotations, raw = stand_in_hdtf(tmp_path, clips, SECONDS)
    _place_recipe_weights(monkeypatch, clips[0])
    work = tmp_path / "work"
    args = ["reproduce", "moda-hdtf", "--raw", str(raw), "--annotations", str(annotations), "--work", str(work),
            "--scale", "cut", "--steps", "2", "-q"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    record = json.loads((work / "reproduce.json").read_text())
    assert record["training"] == {"config": "paper", "scale": "cut", "steps": 2, "device": "cpu"}
    steps = record["steps"]

    # one renderer per test person, trained on that person's adaptation part and nothing else
    checkpoints = work / "checkpoints" / "moda-cut"
    for stage in ("motion", "faco"):
        assert f"moda {stage}: trained to step 2" in " ".join(steps), steps
    for name in HDTF_TEST:
        assert any(s.startswith(f"moda renderer [{name}]: trained to step 2") for s in steps), steps
        config = yaml.safe_load((checkpoints / "renderer" / name / "config.yaml").read_text())
        assert (config["data"]["split"], config["data"]["speaker"]) == (schema.ADAPT_SPLIT, name)
        assert config["resolution"] == 64 and config["training"]["steps"] == 2  # cut down, as asked
    assert sorted(p.name for p in (checkpoints / "renderer").iterdir() if p.is_dir()) == sorted(HDTF_TEST)
    adapt = schema.load_split(work / "data", schema.ADAPT_SPLIT)
    assert sorted(set(adapt[schema.SPEAKER])) == sorted(HDTF_TEST)

    # each test clip drawn by its own person's renderer, in the model's run and in the renderer floor's
    runs = {json.loads(p.read_text())["model"]: p.parent for p in (work / "runs").glob("*/run.json")}
    assert set(runs) == {"moda", "ground-truth", "static-reference", "mean-landmarks"}, runs
    for model in ("moda", "mean-landmarks"):
        generation = json.loads((runs[model] / "generated" / "generation.json").read_text())
        assert generation["options"]["renderer_by_speaker"] == {n: n for n in HDTF_TEST}, generation["options"]
        assert generation["options"]["renderer_speaker"] is None
        assert sorted(generation["clips"]) == [f"WDA_{n}_000" for n in HDTF_TEST]

    # the recipe's metrics on every row, and the board says what it is
    board = record["leaderboard"]
    assert "cut down to tiny sizes, 2 training steps a stage: a check of the pipeline" in board["title"]
    rows = {r["model"]: r for r in board["rows"]}
    for model in ("moda", "ground-truth", "static-reference", "mean-landmarks"):
        for column in ("niqe", "lse_c", "lse_d"):
            assert np.isfinite(rows[model]["values"][column]), (model, column, rows[model])
    for model in ("ground-truth", "static-reference"):
        assert np.isfinite(rows[model]["values"]["m_lmd"]), rows[model]
    # 2 steps of a 64-px renderer draw no face yet: the landmark columns say so instead of a number
    for model in ("moda", "mean-landmarks"):
        assert rows[model]["values"]["m_lmd"] is None
        assert rows[model]["notes"]["m_lmd"] == "no face found in any of the 60 generated frames", rows[model]["notes"]
    ours = {c["metric"]: c for c in record["comparisons"] if c["row"] == "MODA"}
    assert ours["NIQE"]["paper"] == 6.92 and np.isfinite(ours["NIQE"]["ours"]), ours
    assert "a check of the pipeline, not the paper's numbers" in run.output
    assert "Loading weights" not in run.output  # transformers' bar, imported before the command (quiet.py)
