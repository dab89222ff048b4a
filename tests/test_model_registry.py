"""The model registry: a third model (tests/meanface_model, one stage) registered through
`baselines.registry.register` alone is trained, generated and scored by the `toolkit` commands, the
mean-landmarks floor draws with its renderer, and the registry's own entries match the model packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk
from typer.testing import CliRunner

from talking_head.baselines import registry
from talking_head.toolkit.cli import app

TEST_CLIPS = ["S01_002", "S02_002"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "1000"})


@pytest.fixture(scope="module")
def meanface():
    from meanface_model import SPEC

    registry.register(SPEC)
    yield SPEC
    registry.unregister(SPEC.name)


@pytest.fixture(scope="module")
def run_dir(meanface, preprocessed_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("meanface") / "run"
    result = run("train", "meanface", "--stage", "mesh", "--config", "tiny", "--dataset", preprocessed_sample,
                 "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert "meanface mesh: step 40" in result.output
    return out


def test_the_shipped_entries_match_their_packages():
    for spec in registry.trained():
        package = spec.load_package()
        assert tuple(package.STAGES) == spec.stages  # training order
        assert all(stage.model_name == spec.name for stage in package.STAGES.values())
        assert spec.pipeline_class().__abstractmethods__ == frozenset()
    assert registry.names()[:2] == registry.trained_names()
    assert {registry.kind(n) for n in registry.names()} == set(registry.KINDS)


def test_registering_checks_the_entry(meanface):
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.BaselineSpec(meanface.name, "Other", "floor", "x:y"))
    with pytest.raises(ValueError, match="renderer stage 'draw' is not one of its stages"):
        registry.ModelSpec("x", "X", "p", ("a",), "draw", "p:P")
    with pytest.raises(registry.UnknownModelError, match="unknown model 'nobody'; choose one of .*meanface"):
        registry.get("nobody")


def test_a_registered_model_trains_generates_and_is_scored(meanface, run_dir, preprocessed_sample, tmp_path):
    from talking_head.baselines.subjects import speaker_means

    weights = run_dir / "mesh" / "model.safetensors"
    assert weights.is_file()
    # The learned face is the training frames' mean, far nearer to it than where training started.
    from meanface_model.model import MeanFace

    learned = MeanFace.from_pretrained(run_dir / "mesh").mesh().detach().numpy()
    target = np.mean(list(speaker_means(preprocessed_sample).values()), axis=0)
    start = MeanFace(MeanFace.from_pretrained(run_dir / "mesh").config).mesh().detach().numpy()
    assert np.abs(learned - target).mean() < 0.5 * np.abs(start - target).mean()

    out = tmp_path / "gen"
    result = run("generate", "--model", "meanface", "--checkpoint", run_dir, "--dataset", preprocessed_sample,
                 "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert "2 videos (2 clips x 1 samples) at 25 fps" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{c}.{ext}" for c in TEST_CLIPS for ext in ("mp4", "npy")] + ["generation.json"])
    record = json.loads((out / "generation.json").read_text())
    assert record["model"] == "meanface" and set(record["weights_sha256"]) == {"mesh"}
    assert record["options"] == {"seed": 0, "landmarks_only": False, "num_samples": 1, "pose": "reference"}
    np.testing.assert_allclose(np.load(out / "S01_002.npy")[0], learned, atol=1e-4)

    runs = tmp_path / "runs"
    scored = run("evaluate", "--model", "meanface", "--checkpoint", run_dir, "--reference", preprocessed_sample,
                 "--runs", runs, "--metrics", "psnr", "-q")
    assert scored.exit_code == 0, scored.output
    (folder,) = [p for p in runs.iterdir() if p.name.startswith("meanface-")]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["videos"] == 2 and 5 < summary["results"]["psnr_ssim"]["psnr"] < 60
    assert json.loads((folder / "run.json").read_text())["label"] == "Mean face"

    # The floor that borrows a model's renderer finds this one's from the run folder's stages.
    floor = run("generate", "--model", "mean-landmarks", "--checkpoint", run_dir, "--dataset", preprocessed_sample,
                "--clip", "S01_002", "--out", tmp_path / "floor", "-q")
    assert floor.exit_code == 0, floor.output
    record = json.loads((tmp_path / "floor" / "generation.json").read_text())
    assert record["options"]["renderer"] == "meanface" and set(record["weights_sha256"]) == {"mesh"}
    # meanface conditions on no speaker (the contract's default), so the floor draws the reference's own mesh.
    row = load_from_disk(str(preprocessed_sample))["test"].with_format("numpy")[0]
    assert row["clip_id"] == "S01_002"
    first_face = int(np.flatnonzero(np.isfinite(row["landmarks"]).all(axis=(1, 2)))[0])
    np.testing.assert_allclose(np.load(tmp_path / "floor" / "S01_002.npy")[0],
                               row["canonical_landmarks"][first_face], atol=1e-4)


def test_an_environment_variable_registers_a_model_for_a_new_process(preprocessed_sample, tmp_path):
    """A subprocess `toolkit` sees the model through TALKING_HEAD_MODELS, with no file of the toolkit edited."""
    env = {**os.environ, registry.EXTRA_MODULES_VARIABLE: "meanface_model.registration", "COLUMNS": "1000",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    toolkit = [str(Path(sys.executable).with_name("toolkit"))]  # the console script of this environment
    trained = subprocess.run([*toolkit, "train", "meanface", "--stage", "mesh", "--dataset", str(preprocessed_sample),
                              "--out", str(tmp_path / "run"), "--steps", "2", "-q"], env=env, capture_output=True,
                             text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr
    assert (tmp_path / "run" / "mesh" / "model.safetensors").is_file()
    without = subprocess.run([*toolkit, "train", "meanface", "--stage", "mesh", "--dataset", str(preprocessed_sample),
                              "--out", str(tmp_path / "other")], env={**env, registry.EXTRA_MODULES_VARIABLE: ""},
                             capture_output=True, text=True, timeout=600)
    assert without.returncode == 2 and "unknown model 'meanface'; choose one of dreamhead, moda" in without.stderr
