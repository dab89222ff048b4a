"""`toolkit reproduce`, `toolkit evaluate --model` and `toolkit leaderboard` on the preprocessed sample.

The models are the session's tiny runs (tests/conftest.py: the same training `reproduce sample` does,
shared with the acceptance tests), placed where `reproduce` looks for its own checkpoints, so the test
checks that finished steps are found and reused, then runs generation and scoring for real.
"""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from typer.testing import CliRunner

from golden_files import GOLDEN, assert_unchanged, leaderboard_values
from talking_head.leaderboards.reproduce import RECIPES, Inputs, MissingInputs, reproduce
from talking_head.leaderboards.runs import RUN_FILE, dataset_fingerprint, leaderboard_from_runs
from talking_head.toolkit.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

MODELS = {"dreamhead": ("a2l", "l2i"), "moda": ("motion", "faco", "renderer")}
LABELS = ["Ground truth", "DreamHead (setting dubbing, identity clip_mean)", "MODA", "Mean landmarks (floor, DreamHead renderer)",
          "Mean landmarks (floor, MODA renderer)", "Static reference (floor)"]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def work(preprocessed_sample, tiny_runs, tmp_path_factory):
    """A reproduce work folder holding the dataset and both models' finished stages: only generation,
    scoring and the leaderboard are left to do."""
    folder = tmp_path_factory.mktemp("reproduce") / "sample"
    shutil.copytree(preprocessed_sample, folder / "data")
    for model, stages in MODELS.items():
        for stage in stages:
            shutil.copytree(tiny_runs.stage(model, stage)[0], folder / "checkpoints" / model / stage)
    return folder


@pytest.fixture(scope="module")
def first(work):
    result = run("reproduce", "sample", "--work", work, "-q")
    assert result.exit_code == 0, result.output
    return result.output


def test_reproduce_sample_reuses_finished_steps_and_prints_the_table(first, work) -> None:
    record = json.loads((work / "reproduce.json").read_text())
    steps = record["steps"]
    assert steps[0] == f"dataset: reused {work / 'data'}"
    for model, stages in MODELS.items():
        for stage in stages:
            assert f"{model} {stage}: reused {work / 'checkpoints' / model / stage}" in steps
    scored = [s for s in steps if "generated and scored" in s]
    assert len(scored) == 6, steps
    for label in LABELS:
        assert label in first
    assert "M-LMD ↓" in first and "F-LMD ↓" in first
    assert first.count("ground truth beats every model: yes") == 2
    assert first.count("trained models beat the floor baselines: yes") == 2
    assert {p.name for p in (work / "leaderboard").iterdir()} == {"leaderboard.md", "leaderboard.csv", "index.html",
                                                                   "media"}  # media: the Videos section's meshes


def test_the_leaderboard_holds_every_row_with_its_provenance(first, work) -> None:
    board = leaderboard_from_runs(work / "runs")
    assert [r.label for r in board.rows] == LABELS  # ground truth, trained models, floors
    truth = board.rows[0]
    assert truth.values["m_lmd"] == 0.0 and truth.values["f_lmd"] == 0.0
    for row in board.rows[1:]:  # every model is measurably away from the reference
        assert row.values["m_lmd"] > 0.5 and row.values["f_lmd"] > 0.5
    assert "infinite PSNR" in truth.notes["psnr"]
    for row in board.rows:
        assert row.provenance["dataset sha256"] == dataset_fingerprint(work / "data", "test")[:16]
    weights = {r.model: r.provenance["weights"] for r in board.rows}
    assert weights["dreamhead"].startswith("a2l ") and "l2i " in weights["dreamhead"]
    assert weights["static-reference"] == "-"
    record = json.loads((work / "reproduce.json").read_text())
    checks = record["ordering"]
    assert set(checks) == {"m_lmd", "f_lmd"}
    for column, check in checks.items():  # the verdict printed is the one the numbers give
        trained = max(r.values[column] for r in board.rows if r.model in ("dreamhead", "moda"))
        floors = min(r.values[column] for r in board.rows if r.model in ("static-reference", "mean-landmarks"))
        assert check["trained_beat_floors"] == (trained < floors)
    # The sample's promise: ground truth < every trained model < every floor baseline, on M-LMD and F-LMD.
    assert all(c["ground_truth_best"] and c["trained_beat_floors"] for c in checks.values()), checks


def test_the_leaderboard_equals_the_golden_file(first, work) -> None:
    """Every row, value and stable provenance entry of the sample's leaderboard is what the code gave before
    the refactor (tests/golden_files.py; run ids and file hashes follow the temporary folders, so they are left out)."""
    board = leaderboard_values((work / "leaderboard" / "leaderboard.csv").read_text(encoding="utf-8"))
    golden = leaderboard_values((GOLDEN / "reproduce_sample.leaderboard.csv").read_text(encoding="utf-8"))
    assert_unchanged(board, golden, "leaderboard.csv")


def test_run_directories_are_self_describing(first, work) -> None:
    runs = sorted((work / "runs").iterdir())
    assert len(runs) == 6
    for folder in runs:
        record = json.loads((folder / RUN_FILE).read_text())
        assert record["run_id"] == folder.name and record["status"] == "complete"
        assert record["dataset"]["split"] == "test" and record["dataset"]["clips"] == 2
        assert len(record["dataset"]["sha256"]) == 64
        assert record["metrics"]["lmd_preset"] == "dense" and "lmd" in record["metrics"]["requested"]
        assert {"torch", "mediapipe", "talking-head-toolkit"} <= set(record["software"])
        assert set(record["timings"]) == {"generate_s", "evaluate_s", "total_s"}
        assert (folder / "summary.json").is_file() and (folder / "per_video.csv").is_file()
        generated = json.loads((folder / "generated" / "generation.json").read_text())
        assert generated["model"] == record["model"] and generated["clips"] == ["S01_002", "S02_002"]
        if record["model"] in ("dreamhead", "moda"):
            assert set(record["weights_sha256"]) == set(MODELS[record["model"]])
    mean_runs = [f for f in runs if f.name.startswith("mean-landmarks-")]
    assert len(mean_runs) == 2  # one model, two renderers: two runs told apart by their weights


def test_reproduce_again_does_nothing_new(first, work) -> None:
    before = {p: p.stat().st_mtime_ns for p in (work / "runs").rglob("summary.json")}
    again = run("reproduce", "sample", "--work", work, "-q")
    assert again.exit_code == 0, again.output
    steps = json.loads((work / "reproduce.json").read_text())["steps"]
    assert not [s for s in steps if "generated and scored" in s or "trained" in s]
    assert {p: p.stat().st_mtime_ns for p in (work / "runs").rglob("summary.json")} == before


def test_evaluate_model_writes_a_run_and_reuses_it(first, work, tmp_path) -> None:
    store = tmp_path / "results"
    one = run("evaluate", "--model", "static-reference", "--reference", work / "data", "--runs", store,
              "--metrics", "lmd,psnr", "-q")
    assert one.exit_code == 0, one.output
    (folder,) = list(store.iterdir())
    assert folder.name.startswith("static-reference-")
    two = run("evaluate", "--model", "static-reference", "--reference", work / "data", "--runs", store,
              "--metrics", "lmd,psnr", "-q")
    assert two.exit_code == 0 and "reused" in two.output
    assert list(store.iterdir()) == [folder]
    other = run("evaluate", "--model", "static-reference", "--reference", work / "data", "--runs", store,
                "--metrics", "lmd", "-q", "--name", "static, LMD only")
    assert other.exit_code == 0, other.output
    assert len(list(store.iterdir())) == 2  # other metrics: another run

    board = run("leaderboard", "--runs", store, "--out", tmp_path / "board")
    assert board.exit_code == 0, board.output
    rows = list(csv.DictReader((tmp_path / "board" / "leaderboard.csv").open()))
    # the ground truth's values as the runs recorded them (LMD 0 and PSNR infinite by definition), then the runs
    assert [r["label"] for r in rows] == ["Ground truth", "Static reference (floor)", "static, LMD only"]
    assert rows[0]["m_lmd"] == "0.0" and rows[0]["psnr"] == ""
    assert all(float(r["m_lmd"]) > 0 for r in rows[1:])

    for bad, message in ((["--model", "moda", "--reference", work / "data", "--runs", store], "needs a checkpoint"),
                         (["--model", "nobody", "--reference", work / "data", "--runs", store], "unknown model"),
                         (["--model", "ground-truth", "--reference", tmp_path, "--runs", store], "not a preprocessed")):
        result = run("evaluate", *bad, "-q")
        assert result.exit_code == 1 and message in result.output, result.output
    both = run("evaluate", "--model", "ground-truth", "--generated", tmp_path, "--reference", work / "data")
    assert both.exit_code == 2 and "either --generated" in both.output


@pytest.mark.usefixtures("isolated_caches")
def test_a_paper_table_without_its_data_stops_before_any_work(tmp_path) -> None:
    work = tmp_path / "moda-hdtf"
    with pytest.raises(MissingInputs) as caught:
        reproduce("moda-hdtf", work, Inputs(raw=tmp_path / "nowhere"))
    message = str(caught.value)
    assert "nothing was done" in message and "HDTF videos" in message and str(tmp_path / "nowhere") in message
    for name in RECIPES["moda-hdtf"].weights:
        assert f"pretrained weights {name} (missing)" in message and f"toolkit weights fetch {name}" in message
    assert not work.exists()
    result = run("reproduce", "dreamhead-hdtf", "--work", work, "--dataset", tmp_path)
    assert result.exit_code == 2 and "not a preprocessed dataset" in result.output
    assert not work.exists()
    listed = run("reproduce", "--list")
    assert listed.exit_code == 0 and all(name in listed.output for name in RECIPES)


def test_the_device_is_checked_first_and_reaches_generation(work, tmp_path, monkeypatch) -> None:
    """`--device` is refused before any work when unusable, and handed to every model's generation."""
    import torch

    from talking_head.baselines import generation

    for device, said in (("tpu", "not one of cpu, cuda, cuda:N"), ("cuda:99", "'cuda:99'")):
        refused = run("reproduce", "sample", "--work", tmp_path / "refused", "--device", device)
        assert refused.exit_code == 2 and said in refused.output, refused.output
    assert not (tmp_path / "refused").exists()

    seen = []

    def stop_at_generation(model, dataset, out, **kwargs):
        seen.append((model, kwargs["device"]))
        raise RuntimeError("generation reached")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # check_device accepts cuda on this CPU machine
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(generation, "generate_split", stop_at_generation)
    given = [a for m in MODELS for a in ("--checkpoint", f"{m}={work / 'checkpoints' / m}")]
    result = run("reproduce", "sample", "--work", tmp_path / "w", "--dataset", work / "data", *given, "--device",
                 "cuda", "-q")
    assert result.exit_code == 1 and "generation reached" in result.output, result.output
    assert seen == [("dreamhead", "cuda")]  # the first model of the recipe, on the device asked for

    # training gets the same device (in process: only one model is left to train)
    from talking_head.baselines import training

    def stop_at_training(stage, config, dataset, folder, **kwargs):
        seen.append((stage.model_name, kwargs["device"]))
        raise RuntimeError("training reached")

    monkeypatch.setattr(training, "train", stop_at_training)
    seen.clear()
    result = run("reproduce", "sample", "--work", tmp_path / "t", "--dataset", work / "data", "--checkpoint",
                 f"dreamhead={work / 'checkpoints' / 'dreamhead'}", "--device", "cuda", "-q")
    assert result.exit_code == 1 and "training reached" in result.output, result.output
    assert seen == [("moda", "cuda")] and "training: tiny configs, on cuda" in result.output


@pytest.mark.usefixtures("isolated_caches")
def test_scale_and_steps_are_checked_before_any_work(tmp_path) -> None:
    """--scale cut applies to the paper recipes only; --steps must be positive; both refused before any work."""
    for args, said in ((("sample", "--scale", "cut"), "sample trains the tiny configs; --scale cut cuts down the "
                        "paper configs"), (("moda-hdtf", "--scale", "half"), "scale 'half' is not one of full, cut")):
        refused = run("reproduce", *args, "--work", tmp_path / "w")
        assert refused.exit_code == 1 and said in refused.output, refused.output
    refused = run("reproduce", "sample", "--steps", "0", "--work", tmp_path / "w")
    assert refused.exit_code == 2 and "--steps" in refused.output
    assert not (tmp_path / "w").exists()
