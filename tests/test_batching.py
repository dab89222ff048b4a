"""Batching moves each network's output by float32 round-off only: benchmarks/batching.py measures, on the CPU,
items through a network together against one at a time, and each network is held to its row of the table in
docs/metrics-reference.md ("Batching")."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from talking_head.metrics import base
from talking_head.toolkit import media

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import batching  # noqa: E402

# The docs table's bounds (relative to the largest output value; float32's resolution is 1.2e-7). Measured on
# 2 CPU cores: Inception 0 (bit-identical), our lip stream 5.9e-6, syncnet_python's own 4.6e-6, ArcFace 1.8e-6,
# Deep3DFaceRecon 1.3e-6; ours against syncnet_python 2.1e-5.
BOUND = {"inception": 1e-5, "syncnet_lip": 2e-5, "syncnet_reference": 2e-5, "syncnet_vs_reference": 1e-4,
         "arcface": 1e-5, "deep3dfacerecon": 1e-5}


@pytest.fixture(scope="module")
def frames(shared_sample) -> np.ndarray:
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=3)[0]  # tests/conftest.py
    return media.read_video(clip.video)


def test_batch_size_for_reads_the_device_table() -> None:
    table = {"cpu": 20, "cuda": 256}
    assert base.batch_size_for(table, "cpu") == 20
    assert base.batch_size_for(table, torch.device("cuda:1")) == 256
    assert base.batch_size_for(table, "mps") == 20  # an unlisted device type gets the CPU's
    assert base.batch_size_for(table, "cuda", given=7) == 7
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        base.batch_size_for(table, "cpu", given=0)


def test_batched_outputs_within_the_documented_bounds(frames) -> None:
    measured = batching.measure(frames, "cpu")
    print("batched vs one at a time:", {name: f"{value:.1e}" for name, value in measured.items()})
    assert set(measured) == set(BOUND)
    for name, value in measured.items():
        assert np.isfinite(value) and value <= BOUND[name], (name, value)
    assert measured["syncnet_lip"] > 0  # the measurement sees round-off where there is some


def test_every_batching_metric_has_a_table_by_device() -> None:
    from talking_head.metrics import csim, efid, fid, lpips, lse, lse_score, s3fd

    for module in (fid, lse, csim, efid, lpips, s3fd):
        assert {"cpu", "cuda"} <= set(module.BATCH_SIZE), module.__name__
    assert fid.BATCH_SIZE["cpu"] == fid.DEFAULT_BATCH_SIZE == 50  # pytorch-fid's
    assert lse.DEFAULT_BATCH_SIZE == lse_score.AUDIO_BATCH_SIZE == 20  # syncnet_python's, for the audio stream
