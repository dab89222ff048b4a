"""`toolkit train moda` (all three stages) and `toolkit generate --model moda` on the preprocessed sample:
checkpoints, --resume, loss curves, videos with the input audio named by clip id (and by sample with
--num-samples), generation.json, scoring by `toolkit evaluate`, and the errors for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from talking_head.toolkit import media
from talking_head.toolkit.cli import app

FAST = {  # a few steps of each stage: this file checks the command-line contract, the acceptance is elsewhere
    "motion": ["--set", "network.hidden_size=32", "--set", "network.layers=1", "--set", "training.batch_size=4",
               "--set", "data.stride=10"],
    "faco": ["--set", "training.batch_size=8"],
    "renderer": [],
}
COMMON = ["--set", "training.checkpoint_every=2", "--set", "training.log_every=1"]
TEST_CLIPS = ["S01_002", "S02_002"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "1000"})


def train(dataset, out, stage: str, *extra: str):
    return run("train", "moda", "--stage", stage, "--config", "tiny", "--dataset", dataset, "--out", out, "-q",
               *FAST[stage], *COMMON, *extra)


@pytest.fixture(scope="module")
def run_dir(preprocessed_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("moda-cli") / "run"
    for stage in ("motion", "faco", "renderer"):
        first = train(preprocessed_sample, out, stage, "--steps", "2")
        assert first.exit_code == 0, first.output
        assert f"moda {stage}: step 2, last loss" in first.output
    again = train(preprocessed_sample, out, "faco", "--steps", "2")
    assert again.exit_code == 1 and "already holds checkpoints" in again.output
    resumed = train(preprocessed_sample, out, "motion", "--steps", "4", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "step 4 (resumed at step 2)" in resumed.output
    return out


def test_train_writes_every_stage(run_dir) -> None:
    for stage in ("motion", "faco", "renderer"):
        folder = run_dir / stage
        assert {p.name for p in folder.iterdir()} >= {"checkpoints", "config.yaml", "model.safetensors", "loss.csv",
                                                      "loss.png"}
        state = json.loads(sorted((folder / "checkpoints").iterdir())[-1].joinpath("trainer_state.json").read_text())
        assert state["config"]["stage"] == stage and state["config"]["model"] == "moda"
    rows = (run_dir / "motion" / "loss.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in rows[1:]] == ["1", "2", "3", "4"]


def test_generate_samples_from_the_dataset_and_evaluate(run_dir, preprocessed_sample, tmp_path) -> None:
    out = tmp_path / "gen"
    result = run("generate", "--model", "moda", "--checkpoint", run_dir, "--dataset", preprocessed_sample,
                 "--num-samples", "2", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert "4 videos (2 clips x 2 samples) at 25 fps" in result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"{c}.sample{k}.{ext}" for c in TEST_CLIPS for k in (0, 1) for ext in ("mp4", "npy")]
                           + ["generation.json"])
    info = media.probe(out / "S01_002.sample0.mp4")
    assert info.has_audio and info.fps == 25.0 and (info.width, info.height) == (256, 256)
    assert len(media.read_video(out / "S01_002.sample0.mp4", fps=None)) == 125
    record = json.loads((out / "generation.json").read_text())
    assert set(record["weights_sha256"]) == {"motion", "faco", "renderer"}
    assert record["fps_written"] == 25.0 and record["num_samples"] == 2
    assert record["configs"]["motion"]["network"]["hidden_size"] == 32
    first, second = np.load(out / "S01_002.sample0.npy"), np.load(out / "S01_002.sample1.npy")
    assert first.shape == (125, 478, 3) and not np.array_equal(first, second)

    scored = run("evaluate", "--generated", out, "--reference", preprocessed_sample, "--split", "test",
                 "--metrics", "psnr,diversity", "--out", tmp_path / "scores", "-q")
    assert scored.exit_code == 0, scored.output
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    assert summary["videos"] == 4 and not summary["unpaired"]["reference_only"]  # every sample paired with its clip
    assert 5 < summary["results"]["psnr_ssim"]["psnr"] < 60 and "diversity" in summary["results"]


def test_generate_from_audio_and_reference(run_dir, preprocessed_sample, tmp_path) -> None:
    from datasets import load_from_disk

    row = load_from_disk(str(preprocessed_sample))["test"][0]
    (tmp_path / "clip.mp4").write_bytes(row["video"])
    with media.VideoReader(tmp_path / "clip.mp4", fps=None) as reader:
        Image.fromarray(reader.read_window(0, 1)[0]).save(tmp_path / "face.png")
    result = run("generate", "--model", "moda", "--checkpoint", run_dir, "--audio", tmp_path / "clip.mp4",
                 "--reference", tmp_path / "face.png", "--out", tmp_path / "gen", "-q")
    assert result.exit_code == 0, result.output
    assert len(media.read_video(tmp_path / "gen" / "clip.mp4", fps=None)) == 125

    landmarks = run("generate", "--model", "moda", "--checkpoint", run_dir, "--dataset", preprocessed_sample,
                    "--clip", "S02_002", "--landmarks-only", "--out", tmp_path / "lm", "-q")
    assert landmarks.exit_code == 0, landmarks.output
    assert sorted(p.name for p in (tmp_path / "lm").iterdir()) == ["S02_002.npy", "generation.json"]


def test_bad_input(run_dir, preprocessed_sample, tmp_path) -> None:
    silent = tmp_path / "silent.wav"
    media.write_wav(silent, np.zeros(32000, np.float32))
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    from datasets import load_from_disk

    row = load_from_disk(str(preprocessed_sample))["test"][0]
    (tmp_path / "clip.mp4").write_bytes(row["video"])
    with media.VideoReader(tmp_path / "clip.mp4", fps=None) as reader:
        Image.fromarray(reader.read_window(0, 1)[0]).save(tmp_path / "face.png")

    quiet = run("generate", "--model", "moda", "--checkpoint", run_dir, "--audio", silent, "--reference",
                tmp_path / "face.png", "--out", tmp_path / "a")
    assert quiet.exit_code == 1 and "silent" in quiet.output and "silent.wav" in quiet.output
    faceless = run("generate", "--model", "moda", "--checkpoint", run_dir, "--audio", tmp_path / "clip.mp4",
                   "--reference", blank, "--out", tmp_path / "b")
    assert faceless.exit_code == 1 and "no face" in faceless.output and "blank.png" in faceless.output
    missing = run("generate", "--model", "moda", "--checkpoint", tmp_path / "nothing", "--dataset",
                  preprocessed_sample, "--out", tmp_path / "c")
    assert missing.exit_code == 1 and "no such run folder" in missing.output
    (tmp_path / "wrong").mkdir()
    for stage in ("motion", "faco", "renderer"):  # a MODA run whose motion folder holds FaCo-Net weights
        target = tmp_path / "wrong" / stage
        target.mkdir()
        source = run_dir / ("faco" if stage == "motion" else stage)
        for name in ("config.yaml", "model.safetensors"):
            (target / name).write_bytes((source / name).read_bytes())
    wrong = run("generate", "--model", "moda", "--checkpoint", tmp_path / "wrong", "--dataset", preprocessed_sample,
                "--out", tmp_path / "d")
    assert wrong.exit_code == 1 and "not moda/motion" in wrong.output
    bad_stage = run("train", "moda", "--stage", "a2l", "--dataset", preprocessed_sample, "--out", tmp_path / "e")
    assert bad_stage.exit_code != 0 and "motion" in bad_stage.output


# ------------------------------------------------------------------------------ one renderer per identity
@pytest.fixture(scope="module")
def identity_run(run_dir, preprocessed_sample, tmp_path_factory):
    """The run's motion and FaCo-Net stages with one renderer, S01's, in renderer/S01/ (the release's protocol)."""
    import shutil

    out = tmp_path_factory.mktemp("moda-identity") / "run"
    for stage in ("motion", "faco"):
        shutil.copytree(run_dir / stage, out / stage)
    trained = train(preprocessed_sample, out, "renderer", "--steps", "2", "--speaker", "S01")
    assert trained.exit_code == 0, trained.output
    assert "moda renderer [S01]: step 2, last loss" in trained.output
    return out


def test_a_renderer_per_identity_draws_only_its_speaker(identity_run, run_dir, preprocessed_sample, tmp_path) -> None:
    assert (identity_run / "renderer" / "S01" / "model.safetensors").is_file()
    assert not (identity_run / "renderer" / "model.safetensors").exists()

    refused = run("generate", "--model", "moda", "--checkpoint", identity_run, "--dataset", preprocessed_sample,
                  "--out", tmp_path / "all", "-q")
    assert refused.exit_code == 1, refused.output
    assert "no renderer for speaker(s) S02" in refused.output and "one renderer per identity, for S01" in refused.output
    assert "--renderer-speaker NAME" in refused.output
    assert not (tmp_path / "all").exists()  # refused before anything was generated

    own = run("generate", "--model", "moda", "--checkpoint", identity_run, "--dataset", preprocessed_sample,
              "--clip", "S01_002", "--out", tmp_path / "own", "-q")
    assert own.exit_code == 0, own.output
    record = json.loads((tmp_path / "own" / "generation.json").read_text())
    assert record["options"]["renderer_by_speaker"] == {"S01": "S01"} and record["options"]["renderer_speaker"] is None
    assert set(record["weights_sha256"]) == {"motion", "faco", "renderer/S01"}
    assert record["configs"]["renderer"]["S01"]["data"]["speaker"] == "S01"

    borrowed = run("generate", "--model", "moda", "--checkpoint", identity_run, "--dataset", preprocessed_sample,
                   "--renderer-speaker", "S01", "--out", tmp_path / "borrowed", "-q")
    assert borrowed.exit_code == 0, borrowed.output
    record = json.loads((tmp_path / "borrowed" / "generation.json").read_text())
    assert record["options"]["renderer_speaker"] == "S01"
    assert record["options"]["renderer_by_speaker"] == {"S01": "S01", "S02": "S01"}
    # The same renderer, the same motion: S01's clip comes out the same either way.
    assert np.array_equal(media.read_video(tmp_path / "own" / "S01_002.mp4"),
                          media.read_video(tmp_path / "borrowed" / "S01_002.mp4"))

    unknown = run("generate", "--model", "moda", "--checkpoint", identity_run, "--dataset", preprocessed_sample,
                  "--renderer-speaker", "S07", "--out", tmp_path / "unknown", "-q")
    assert unknown.exit_code == 1 and "no renderer for 'S07'" in unknown.output
    shared = run("generate", "--model", "moda", "--checkpoint", run_dir, "--dataset", preprocessed_sample,
                 "--renderer-speaker", "S01", "--out", tmp_path / "shared", "-q")
    assert shared.exit_code == 1 and "one renderer draws every face" in shared.output


def test_a_per_identity_run_from_audio_names_whose_renderer(identity_run, preprocessed_sample, tmp_path) -> None:
    from datasets import load_from_disk

    row = load_from_disk(str(preprocessed_sample))["test"][0]
    (tmp_path / "clip.mp4").write_bytes(row["video"])
    with media.VideoReader(tmp_path / "clip.mp4", fps=None) as reader:
        Image.fromarray(reader.read_window(0, 1)[0]).save(tmp_path / "face.png")
    args = ["generate", "--model", "moda", "--checkpoint", identity_run, "--audio", tmp_path / "clip.mp4",
            "--reference", tmp_path / "face.png", "-q"]
    unnamed = run(*args, "--out", tmp_path / "a")
    assert unnamed.exit_code == 1 and "name whose draws the reference with --renderer-speaker" in unnamed.output
    named = run(*args, "--renderer-speaker", "S01", "--out", tmp_path / "b")
    assert named.exit_code == 0, named.output
    assert json.loads((tmp_path / "b" / "generation.json").read_text())["options"]["renderer_speaker"] == "S01"


def test_training_per_identity_plans_and_refusals(preprocessed_sample, tmp_path) -> None:
    from talking_head.baselines import moda

    stage = moda.STAGES["renderer"]
    paper = moda.load_config("tiny", "renderer", ["data.speaker=null"])
    assert [identity for identity, _ in stage.runs(paper, preprocessed_sample)] == ["S01", "S02"]  # every speaker
    assert [c["data"]["speaker"] for _, c in stage.runs(paper, preprocessed_sample)] == ["S01", "S02"]
    assert paper["data"]["speaker"] is None  # the plan copies the config
    tiny = moda.load_config("tiny", "renderer")
    assert stage.runs(tiny, preprocessed_sample) == [(None, tiny)]  # `all`: one renderer for every speaker
    assert [i for i, _ in stage.runs(tiny, preprocessed_sample, ["S02", "S01", "S02"])] == ["S02", "S01"]

    everyone = train(preprocessed_sample, tmp_path / "x", "renderer", "--speaker", "all")
    assert everyone.exit_code == 1 and "--speaker all is not an identity" in everyone.output
    nobody = train(preprocessed_sample, tmp_path / "y", "renderer", "--speaker", "S09")
    assert nobody.exit_code == 1 and "data.speaker 'S09' has no clip in the train split" in nobody.output
    shared = train(preprocessed_sample, tmp_path / "z", "faco", "--speaker", "S01")
    assert shared.exit_code == 1 and "moda faco trains one model for every speaker" in shared.output


def test_generate_device_is_checked_before_any_work(run_dir, preprocessed_sample, tmp_path) -> None:
    args = ["generate", "--model", "moda", "--checkpoint", run_dir, "--dataset", preprocessed_sample, "-q"]
    unknown = run(*args, "--device", "tpu", "--out", tmp_path / "a")
    assert unknown.exit_code == 2 and "device 'tpu' is not one of cpu, cuda, cuda:N" in unknown.output
    far = run(*args, "--device", "cuda:99", "--out", tmp_path / "b")  # no CUDA here; on a GPU, not 100 of them
    assert far.exit_code == 2 and ("CUDA is not available" in far.output or "CUDA device(s)" in far.output)
    cpu = run(*args, "--device", "cpu", "--clip", "S02_002", "--landmarks-only", "--out", tmp_path / "c")
    assert cpu.exit_code == 0, cpu.output


def test_train_device_is_checked_before_any_work(preprocessed_sample, tmp_path) -> None:
    for device, said in (("tpu", "device 'tpu' is not one of cpu, cuda, cuda:N"), ("cuda:99", "'cuda:99'")):
        refused = train(preprocessed_sample, tmp_path / device, "motion", "--device", device)
        assert refused.exit_code == 2 and said in refused.output, refused.output
        assert not (tmp_path / device).exists()
