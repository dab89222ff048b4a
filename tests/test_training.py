"""The shared training loop (baselines/training.py) on a real stage: DreamHead A2L, shrunk to train in
seconds on the preprocessed sample. Resumption must give the weights of an uninterrupted run."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from talking_head.baselines import training
from talking_head.baselines.dreamhead import STAGES, load_config
from talking_head.baselines.dreamhead.a2l_diffusion import A2LDiffusion

STAGE = STAGES["a2l"]
SMALL = ["network.hidden_size=32", "network.layers=1", "network.heads=2", "data.window=10", "data.stride=5",
         "training.batch_size=4", "training.warmup_steps=3", "training.decay_steps=9", "training.steps=12",
         "training.log_every=2", "training.checkpoint_every=4", "training.keep_checkpoints=2"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def small_config(*extra: str) -> dict:
    return load_config("tiny", "a2l", [*SMALL, *extra])


def weights(run_dir) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(preprocessed_sample, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "straight"
    result = training.train(STAGE, small_config(), preprocessed_sample, run, show_progress=False)
    assert result.step == 12 and result.resumed_from == 0 and result.last_loss is not None
    return run


def test_run_folder_contents(uninterrupted) -> None:
    run = uninterrupted
    assert sorted(p.name for p in training.checkpoint_dirs(run)) == ["step-000008", "step-000012"]  # keep 2
    last = run / "checkpoints" / "step-000012"
    state = json.loads((last / "trainer_state.json").read_text())
    assert state["step"] == 12 and state["config"] == small_config()
    assert state["config_sha256"] == training.config_sha256(small_config())
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    optimizer = torch.load(last / "optimizer.pt", weights_only=True)  # loads without pickled objects
    assert optimizer["state"] and optimizer["param_groups"][0]["lr"] == pytest.approx(training.learning_rate(11, training.training_config(small_config())))
    for name in ("model.safetensors", "config.yaml"):  # the latest copy equals the newest checkpoint
        assert (run / name).read_bytes() == (last / name).read_bytes()
    model = A2LDiffusion.from_pretrained(run)
    assert model.config == small_config()

    with open(run / "loss.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [2, 4, 6, 8, 10, 12]
    assert list(rows[0]) == ["step", "loss", "mse", "velocity", "lr", "seconds"]
    assert all(float(r["loss"]) > 0 for r in rows)
    assert float(rows[0]["lr"]) == pytest.approx(1e-3 * 2 / 3)  # warmup: step index 1 of 3
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_learning_rate_schedule() -> None:
    cfg = training.training_config({"training": {"lr": 1.0, "warmup_steps": 4, "decay_steps": 10, "min_lr": 0.1}})
    assert [training.learning_rate(s, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert training.learning_rate(4, cfg) == pytest.approx(1.0)
    assert training.learning_rate(9, cfg) == pytest.approx(0.55)
    assert training.learning_rate(14, cfg) == pytest.approx(0.1) == training.learning_rate(100, cfg)


def test_extended_run_equals_uninterrupted(uninterrupted, tmp_path, preprocessed_sample) -> None:
    """Train 8 steps, then resume to 12 (a longer run of the same config): the same weights."""
    run = tmp_path / "extended"
    first = training.train(STAGE, small_config("training.steps=8"), preprocessed_sample, run, show_progress=False)
    assert first.step == 8
    second = training.train(STAGE, small_config(), preprocessed_sample, run, resume=True, show_progress=False)
    assert second.resumed_from == 8 and second.step == 12
    expected, got = weights(uninterrupted), weights(run)
    assert expected.keys() == got.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6, atol=1e-7, msg=key)
    with open(run / "loss.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [2, 4, 6, 8, 10, 12]


def test_crash_then_resume_equals_uninterrupted(uninterrupted, tmp_path, preprocessed_sample) -> None:
    """A run killed at step 7 (last checkpoint: 4) and resumed gives the uninterrupted weights; the loss
    rows written after the checkpoint are replaced, not duplicated."""
    run = tmp_path / "crashed"

    def crash(step: int, loss: float) -> None:
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train(STAGE, small_config(), preprocessed_sample, run, show_progress=False, on_step=crash)
    assert [p.name for p in training.checkpoint_dirs(run)] == ["step-000004"]
    result = training.train(STAGE, small_config(), preprocessed_sample, run, resume=True, show_progress=False)
    assert result.resumed_from == 4 and result.step == 12
    expected, got = weights(uninterrupted), weights(run)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-6, atol=1e-7, msg=key)
    with open(run / "loss.csv", newline="") as handle:
        assert [int(r["step"]) for r in csv.DictReader(handle)] == [2, 4, 6, 8, 10, 12]


def test_another_seed_gives_other_weights(uninterrupted, tmp_path, preprocessed_sample) -> None:
    run = tmp_path / "seed1"
    training.train(STAGE, small_config("seed=1", "training.steps=4"), preprocessed_sample, run, show_progress=False)
    early = load_file(str(uninterrupted / "checkpoints" / "step-000008" / "model.safetensors"))
    assert not torch.equal(weights(run)["network.projection_in.weight"], early["network.projection_in.weight"])


def test_run_folder_and_config_errors(uninterrupted, tmp_path, preprocessed_sample) -> None:
    run = tmp_path / "copy"
    shutil.copytree(uninterrupted, run)
    with pytest.raises(training.TrainingError, match="already holds checkpoints.*--resume"):
        training.train(STAGE, small_config(), preprocessed_sample, run, show_progress=False)
    with pytest.raises(training.TrainingError, match=r"config differs.*training\.lr: 0\.001 -> 0\.002"):
        training.train(STAGE, small_config("training.lr=0.002"), preprocessed_sample, run, resume=True,
                       show_progress=False)
    with pytest.raises(training.TrainingError, match=r"network\.hidden_size: 32 -> 64"):
        training.train(STAGE, small_config("network.hidden_size=64"), preprocessed_sample, run, resume=True,
                       show_progress=False)
    with pytest.raises(training.TrainingError, match="no checkpoint to resume from"):
        training.train(STAGE, small_config(), preprocessed_sample, tmp_path / "empty", resume=True, show_progress=False)
    with pytest.raises(training.TrainingError, match="unknown training keys.*'stpes'"):
        training.train(STAGE, {**small_config(), "training": {"stpes": 3}}, preprocessed_sample, tmp_path / "x",
                       show_progress=False)
    with pytest.raises(training.TrainingError, match="not 'dreamhead' stage 'l2i'"):
        training.train(STAGES["l2i"], small_config(), preprocessed_sample, tmp_path / "y", show_progress=False)


def test_checkpoints_without_optimizer_state_refuse_to_resume(tmp_path, preprocessed_sample) -> None:
    """save_optimizer: false writes weights, config and trainer state only; keep_checkpoints: 0 keeps every
    checkpoint; resuming from such a checkpoint is refused (new AdamW moments would give other weights)."""
    run = tmp_path / "lean"
    config = small_config("training.save_optimizer=false", "training.keep_checkpoints=0", "training.steps=4",
                          "training.checkpoint_every=2")
    training.train(STAGE, config, preprocessed_sample, run, show_progress=False)
    checkpoints = training.checkpoint_dirs(run)
    assert [p.name for p in checkpoints] == ["step-000002", "step-000004"]  # 0: none deleted
    for checkpoint in checkpoints:
        assert sorted(p.name for p in checkpoint.iterdir()) == ["config.yaml", "model.safetensors", "trainer_state.json"]
        assert json.loads((checkpoint / "trainer_state.json").read_text())["optimizer_saved"] is False
    assert A2LDiffusion.from_pretrained(run).config == config  # the weights still serve generation
    with pytest.raises(training.TrainingError, match=r"holds no optimizer state.*save_optimizer: false.*cannot continue"):
        training.train(STAGE, small_config("training.save_optimizer=false", "training.keep_checkpoints=0",
                                           "training.steps=6", "training.checkpoint_every=2"),
                       preprocessed_sample, run, resume=True, show_progress=False)
    assert [p.name for p in training.checkpoint_dirs(run)] == ["step-000002", "step-000004"]  # nothing touched


def test_save_optimizer_and_retention_may_change_on_resume(uninterrupted, tmp_path, preprocessed_sample) -> None:
    """Both keys only decide what is written, so a resumed run may change them (RESUMABLE_CHANGES)."""
    run = tmp_path / "resaved"
    shutil.copytree(uninterrupted, run)
    result = training.train(STAGE, small_config("training.save_optimizer=false", "training.keep_checkpoints=1",
                                                "training.steps=14"), preprocessed_sample, run, resume=True,
                            show_progress=False)
    assert result.resumed_from == 12 and result.step == 14
    (newest,) = training.checkpoint_dirs(run)
    assert newest.name == "step-000014" and not (newest / "optimizer.pt").exists()


def test_bf16_mixed_precision_trains(tmp_path, preprocessed_sample) -> None:
    """accelerate's bf16 autocast on the CPU: finite losses, fp32 weights saved."""
    run = tmp_path / "bf16"
    result = training.train(STAGE, small_config("training.mixed_precision=bf16", "training.steps=3"),
                            preprocessed_sample, run, show_progress=False)
    assert result.step == 3 and result.last_loss is not None and torch.isfinite(torch.tensor(result.last_loss))
    assert all(t.dtype == torch.float32 for t in weights(run).values())


def test_the_device_overrides_the_config_and_is_checked_first(tmp_path, preprocessed_sample) -> None:
    """device= decides where a run trains whatever training.cpu says, is recorded with the checkpoint, and an
    unusable one is refused before the run folder is made."""
    run = tmp_path / "on-cpu"
    training.train(STAGE, small_config("training.steps=2", "training.cpu=false"), preprocessed_sample, run,
                   show_progress=False, device="cpu")
    state = json.loads((training.checkpoint_dirs(run)[-1] / "trainer_state.json").read_text())
    assert state["distributed"]["device"] == "cpu"
    for device, said in (("tpu", "not one of cpu, cuda, cuda:N"), ("cuda:99", "'cuda:99'")):
        with pytest.raises(training.TrainingError, match=said):
            training.train(STAGE, small_config("training.steps=2"), preprocessed_sample, tmp_path / device,
                           show_progress=False, device=device)
        assert not (tmp_path / device).exists()


def test_batches_depend_only_on_seed_step_and_process() -> None:
    a = training.step_indices(0, 5, 0, 8, 100)
    assert a == training.step_indices(0, 5, 0, 8, 100)
    assert a != training.step_indices(0, 6, 0, 8, 100) and a != training.step_indices(0, 5, 1, 8, 100)
    batches = list(training.StepBatches(0, 3, 6, 0, 8, 100))
    assert batches == [training.step_indices(0, s, 0, 8, 100) for s in (3, 4, 5)]
