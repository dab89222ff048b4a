"""Every stage of both models trains under DDP: `accelerate launch` with 2 CPU processes on the gloo backend (issue 21).

wav2vec 2.0's LayerDrop skips whole transformer layers at random in training mode, and the stages' GANs
leave a network out of one of their loss terms, so some parameters get no gradient in a step; DDP then
fails unless it is told to look for unused parameters. Each stage runs here for three steps on the
preprocessed sample (MODA's motion stage with a small random wav2vec 2.0 whose LayerDrop skips every layer),
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import weights_factory as factory
from talking_head.toolkit import weights as w

pytestmark = pytest.mark.slow  # five 2-process trainings: about 4 minutes on 2 cores

# The launched processes unpin the random weights (as weights_factory does in-process), then run the CLI.
DRIVER = """
import dataclasses, sys
from talking_head.toolkit import weights as w
for name in sys.argv[1].split(","):
    if name != "none":
        w.REGISTRY[name] = dataclasses.replace(w.REGISTRY[name], size=None, sha256=None, sha256_prefix=None,
                                               git_blob_sha1=None)
from talking_head.toolkit.cli import app
app(sys.argv[2:], standalone_mode=True)
"""

RUNS = {  # stage -> (model, overrides): small networks
    "motion": ("moda", ["--set", "audio.encoder=wav2vec2", "--set", "network.hidden_size=32", "--set",
                        "network.layers=1", "--set", "training.batch_size=4", "--set", "data.stride=10"]),
    "faco": ("moda", ["--set", "training.batch_size=8"]),
    "renderer": ("moda", ["--set", "loss.vgg=1.0", "--set", "training.batch_size=2"]),  # a frozen VGG19 inside
    "a2l": ("dreamhead", ["--set", "network.hidden_size=32", "--set", "network.layers=1",
                          "--set", "training.batch_size=4", "--set", "data.stride=10"]),
    "l2i": ("dreamhead", ["--set", "training.batch_size=2"]),
}


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.usefixtures("isolated_caches")
@pytest.mark.parametrize("stage", sorted(RUNS))
def test_two_process_ddp_training(stage, preprocessed_sample, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch
    from safetensors.torch import load_file

    model, overrides = RUNS[stage]
    unpinned = "none"
    if stage == "motion":
        entry = factory.tiny_wav2vec2(monkeypatch)  # written where the registry looks (this test's caches)
        config = w.path(entry) / "config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "layerdrop": 1.0}))  # every layer skipped
        unpinned = entry.name
    if stage == "renderer":
        factory.place(monkeypatch, "vgg19", factory.vgg19())
        unpinned = "vgg19"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    launch = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or "accelerate"
    out = tmp_path / "run"
    # --multi_gpu on a machine without CUDA: torchrun starts 2 processes, accelerate runs them as MULTI_CPU on gloo
    # (--cpu would start one process).
    command = [launch, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision",
               "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()), str(driver), unpinned, "train", model, "--stage", stage, "--config", "tiny",
               "--dataset", str(preprocessed_sample), "--out", str(out), "-q", "--steps", "3",
               "--set", "training.checkpoint_every=3", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    run = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert run.returncode == 0, (run.stdout[-2000:], run.stderr[-4000:])
    assert f"{model} {stage}: step 3" in run.stdout
    checkpoints = list((out / stage / "checkpoints").iterdir())
    assert [c.name for c in checkpoints] == ["step-000003"]
    state = json.loads((checkpoints[0] / "trainer_state.json").read_text())
    # one gloo group of two, not two copies; the checkpoint is written by rank 0
    assert state["distributed"] == {"processes": 2, "type": "MULTI_CPU", "device": "cpu:0"}
    weights = load_file(out / stage / "model.safetensors")
    assert weights and all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())
