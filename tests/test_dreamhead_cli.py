"""`toolkit train dreamhead` and `toolkit generate --model dreamhead` on the preprocessed sample: training,
--resume, landmark and video generation, and the errors for bad input (short or silent audio, a reference
without a face, a checkpoint of another model or config)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from datasets import load_from_disk
from PIL import Image
from typer.testing import CliRunner

from talking_head.toolkit import media
from talking_head.toolkit.cli import app

SMALL = ["--set", "network.hidden_size=32", "--set", "network.layers=1", "--set", "training.batch_size=4",
         "--set", "data.stride=5", "--set", "training.checkpoint_every=4", "--set", "training.log_every=2"]
TEST_CLIPS = ["S01_002", "S02_002"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def run(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "1000"})  # usage errors unwrapped


def train(dataset, out, *extra: str):
    return run("train", "dreamhead", "--stage", "a2l", "--config", "tiny", "--dataset", dataset, "--out", out, "-q",
               *SMALL, *extra)


@pytest.fixture(scope="module")
def run_dir(preprocessed_sample, tmp_path_factory):
    """A2L trained 6 steps, then resumed to 8, through the CLI."""
    out = tmp_path_factory.mktemp("cli") / "run"
    first = train(preprocessed_sample, out, "--steps", "6")
    assert first.exit_code == 0, first.output
    assert "dreamhead a2l: step 6, last loss" in first.output
    again = train(preprocessed_sample, out, "--steps", "6")
    assert again.exit_code == 1 and "already holds checkpoints" in again.output and "--resume" in again.output
    resumed = train(preprocessed_sample, out, "--steps", "8", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "step 8 (resumed at step 6)" in resumed.output
    return out


def test_train_writes_the_stage_folder(run_dir) -> None:
    stage = run_dir / "a2l"
    assert {p.name for p in stage.iterdir()} >= {"checkpoints", "config.yaml", "model.safetensors", "loss.csv", "loss.png"}
    state = json.loads((stage / "checkpoints" / "step-000008" / "trainer_state.json").read_text())
    assert state["step"] == 8 and state["config"]["network"]["hidden_size"] == 32
    assert [line.split(",")[0] for line in (stage / "loss.csv").read_text().splitlines()[1:]] == ["2", "4", "6", "8"]


def test_train_errors(run_dir, preprocessed_sample, tmp_path) -> None:
    changed = train(preprocessed_sample, run_dir, "--steps", "10", "--resume", "--set", "training.lr=0.01")
    assert changed.exit_code == 1 and "config differs" in changed.output and "training.lr: 0.001 -> 0.01" in changed.output
    unknown = train(preprocessed_sample, tmp_path / "x", "--config", "huge")
    assert unknown.exit_code == 2 and "'huge' is neither a file nor one of ['paper', 'tiny']" in unknown.output
    typo = train(preprocessed_sample, tmp_path / "x", "--set", "network.hiden=3")
    assert typo.exit_code == 2 and "unknown key 'network.hiden'" in typo.output
    wrong_type = train(preprocessed_sample, tmp_path / "x", "--set", "network.layers=two")
    assert wrong_type.exit_code == 2 and "network.layers takes int values, got str" in wrong_type.output
    stage = run("train", "dreamhead", "--stage", "renderer", "--dataset", preprocessed_sample, "--out", tmp_path / "x")
    assert stage.exit_code == 2 and "no stage 'renderer'" in stage.output
    model = run("train", "wav2lip", "--stage", "a2l", "--dataset", preprocessed_sample, "--out", tmp_path / "x")
    assert model.exit_code == 2 and "unknown model 'wav2lip'" in model.output
    not_data = train(tmp_path, tmp_path / "x")
    assert not_data.exit_code == 1 and "not a preprocessed dataset" in not_data.output


def test_generate_landmarks_for_the_test_split(run_dir, preprocessed_sample, tmp_path) -> None:
    out = tmp_path / "landmarks"
    result = run("generate", "--model", "dreamhead", "--checkpoint", run_dir, "--dataset", preprocessed_sample,
                 "--split", "test", "--landmarks-only", "--steps", "4", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["S01_002.npy", "S02_002.npy", "generation.json"]
    landmarks = np.load(out / "S01_002.npy")
    assert landmarks.shape == (125, 478, 3) and landmarks.dtype == np.float32 and np.isfinite(landmarks).all()
    record = json.loads((out / "generation.json").read_text())
    assert record["clips"] == TEST_CLIPS and record["options"]["a2l_steps"] == 4
    assert record["configs"]["a2l"]["network"]["hidden_size"] == 32
    assert set(record["weights_sha256"]) == {"a2l"} and len(record["weights_sha256"]["a2l"]) == 64


@pytest.fixture(scope="module")
def wavs(preprocessed_sample, tmp_path_factory):
    """A test clip's audio, and a short and a silent file."""
    folder = tmp_path_factory.mktemp("audio")
    row = load_from_disk(str(preprocessed_sample))["test"].with_format("numpy")[0]
    speech = np.asarray(row["audio"]).astype(np.float32) / 32768.0
    files = {"speech": folder / "speech.wav", "short": folder / "short.wav", "silent": folder / "silent.wav"}
    media.write_wav(files["speech"], speech)
    media.write_wav(files["short"], speech[:8000])  # 0.5 s: shorter than one 25-frame window (1 s)
    media.write_wav(files["silent"], np.zeros(32000, np.float32))
    return files


def test_generate_bad_input(run_dir, preprocessed_sample, wavs, tmp_path) -> None:
    face = preprocessed_sample.parent / "raw" / "S01" / "S01_002.mp4"  # a video works as the reference
    gray = tmp_path / "gray.png"
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(gray)

    def generate(checkpoint, audio, reference, *extra):
        return run("generate", "--model", "dreamhead", "--checkpoint", checkpoint, "--audio", audio,
                   "--reference", reference, "--landmarks-only", "--out", tmp_path / "out", "-q", *extra)

    short = generate(run_dir, wavs["short"], face)
    assert short.exit_code == 1
    assert f"{wavs['short']}: the audio is 0.50 s long, shorter than one window of 25 frames" in short.output
    silent = generate(run_dir, wavs["silent"], face)
    assert silent.exit_code == 1 and f"{wavs['silent']}: the audio is silent" in silent.output
    no_face = generate(run_dir, wavs["speech"], gray)
    assert no_face.exit_code == 1 and f"{gray}: no face found in the reference" in no_face.output
    not_audio = generate(run_dir, gray, face)
    assert not_audio.exit_code == 1 and "cannot read the audio" in not_audio.output and "no audio track" in not_audio.output

    other_model = tmp_path / "moda_run"
    shutil.copytree(run_dir, other_model)
    config = other_model / "a2l" / "config.yaml"
    config.write_text(config.read_text().replace("model: dreamhead", "model: moda"))
    wrong = generate(other_model, wavs["speech"], face)
    assert wrong.exit_code == 1 and "a checkpoint of model/stage ('moda', 'a2l'), not dreamhead/a2l" in wrong.output

    other_config = tmp_path / "other_config"
    shutil.copytree(run_dir, other_config)
    config = other_config / "a2l" / "config.yaml"
    config.write_text(config.read_text().replace("hidden_size: 32", "hidden_size: 128"))
    mismatch = generate(other_config, wavs["speech"], face)
    assert mismatch.exit_code == 1 and "does not match" in mismatch.output and "another config" in mismatch.output

    no_l2i = run("generate", "--model", "dreamhead", "--checkpoint", run_dir, "--audio", wavs["speech"],
                 "--reference", face, "--out", tmp_path / "out", "-q")
    assert no_l2i.exit_code == 1 and "no L2I stage in this run folder" in no_l2i.output
    no_reference = run("generate", "--model", "dreamhead", "--checkpoint", run_dir, "--audio", wavs["speech"],
                       "--out", tmp_path / "out")
    assert no_reference.exit_code == 2 and "--reference" in no_reference.output
    both = run("generate", "--model", "dreamhead", "--checkpoint", run_dir, "--audio", wavs["speech"],
               "--dataset", preprocessed_sample, "--out", tmp_path / "out")
    assert both.exit_code == 2
    assert not (tmp_path / "out").exists()  # nothing written by a failed run


def test_generate_videos_with_l2i(run_dir, preprocessed_sample, wavs, tmp_path) -> None:
    """Both stages in one run folder -> mp4s with the input audio, named by clip id (what toolkit evaluate
    pairs). L2I is trained for one step: this checks the plumbing, not the pictures."""
    full = tmp_path / "run"
    shutil.copytree(run_dir, full)
    l2i = run("train", "dreamhead", "--stage", "l2i", "--config", "tiny", "--dataset", preprocessed_sample,
              "--out", full, "--steps", "1", "-q")
    assert l2i.exit_code == 0, l2i.output
    out = tmp_path / "videos"
    result = run("generate", "--model", "dreamhead", "--checkpoint", full, "--dataset", preprocessed_sample,
                 "--clip", "S02_002", "--pose", "clip", "--steps", "2", "--l2i-steps", "1", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["S02_002.mp4", "S02_002.npy", "generation.json"]
    # The figure's dubbing setting by default for a dataset (frame i read from the clip's video), recorded.
    record = json.loads((out / "generation.json").read_text())
    assert record["options"]["conditions"] == {"setting": "dubbing", "identity": "clip_mean"}
    info = media.probe(out / "S02_002.mp4")
    assert info.has_audio and info.fps == 25.0 and (info.width, info.height) == (256, 256)
    assert len(media.read_video(out / "S02_002.mp4", fps=None)) == 125
    row = load_from_disk(str(preprocessed_sample))["test"].with_format("numpy")[1]
    audio = media.read_audio(out / "S02_002.mp4")
    assert abs(len(audio) - len(row["audio"])) < 1600  # the clip's own audio (AAC pads up to ~0.1 s)
    # End to end: toolkit evaluate pairs the generated video with its clip by id and scores it.
    scored = run("evaluate", "--generated", out, "--reference", preprocessed_sample, "--metrics", "psnr,lmd,pose",
                 "--out", tmp_path / "scores", "-q")
    assert scored.exit_code == 0, scored.output
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    assert summary["videos"] == 1 and summary["frames"] == 125
    assert summary["unpaired"]["reference_only"] == ["S01_002"]
    assert 5 < summary["results"]["psnr_ssim"]["psnr"] < 60
    lmd = summary["results"]["lmd"]  # a one-step L2I draws no face yet: the frames are excluded, and counted
    assert lmd["frames_used"] + lmd["frames_excluded"] == 125 and lmd["videos"] == 1

    from_files = run("generate", "--model", "dreamhead", "--checkpoint", full, "--audio", wavs["speech"],
                     "--reference", preprocessed_sample.parent / "raw" / "S01" / "S01_002.mp4", "--steps", "2",
                     "--l2i-steps", "1", "--out", out, "-q")
    assert from_files.exit_code == 0, from_files.output
    assert len(media.read_video(out / "speech.mp4", fps=None)) == 125 and media.probe(out / "speech.mp4").has_audio
    record = json.loads((out / "generation.json").read_text())
    assert record["options"]["conditions"] == {"setting": "one_shot", "identity": "reference_frame"}
    # --audio has no frame i to dub: refused in one sentence before anything is loaded or written.
    dubbing = run("generate", "--model", "dreamhead", "--checkpoint", full, "--audio", wavs["speech"],
                  "--reference", preprocessed_sample.parent / "raw" / "S01" / "S01_002.mp4",
                  "--condition", "setting=dubbing", "--out", tmp_path / "refused", "-q")
    assert dubbing.exit_code == 1 and "setting=dubbing needs a dataset clip" in dubbing.output
    assert not (tmp_path / "refused").exists()
    malformed = run("generate", "--model", "dreamhead", "--checkpoint", full, "--dataset", preprocessed_sample,
                    "--condition", "one_shot", "--out", tmp_path / "refused")
    assert malformed.exit_code == 2 and "KEY=VALUE" in malformed.output
