"""Speed of reading training windows from HDTF-length (5-minute) clips.

Run with timings: ``.venv/bin/python -m pytest tests/test_benchmark_windows.py --benchmark-enable`` (also
what ``make bench`` runs). ``item arrays``: one 25-frame item's arrays (no frames) by TalkingHeadWindows
against the whole-row reader it replaced (tests/test_windows_scale.py ``reference_item``; same values,
checked there). ``loader``: windows/s through a DataLoader = ``extra_info["windows"]`` / mean time.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import test_windows_scale as scale
from talking_head.toolkit.windows import TalkingHeadWindows

# Timings: `make bench` runs them; the values are checked in tests/test_windows_scale.py. One torch thread,
# as DataLoader workers have: on 2 shared cores more only contend (in the batches' collation).
pytestmark = [pytest.mark.bench, pytest.mark.usefixtures("one_torch_thread")]

CLIPS = 2
LOADER_WINDOWS = 1024
BATCH = 16


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    rows = [scale.clip_row(f"hdtf{k}", scale.HDTF_FRAMES, seed=k) for k in range(CLIPS)]
    path = scale.save_dataset(tmp_path_factory.mktemp("bench_windows") / "dataset", {"train": rows})
    return TalkingHeadWindows(path, window=scale.WINDOW, stride=1, frames=False)


def _random_items(windows, read):
    """A callable reading a different random window each call (not the same pages every time)."""
    order = itertools.cycle(np.random.default_rng(0).permutation(len(windows)).tolist())
    return lambda: read(windows, next(order))


@pytest.mark.benchmark(group="item arrays")
def test_item_arrays(benchmark, windows):
    benchmark(_random_items(windows, TalkingHeadWindows.__getitem__))


@pytest.mark.benchmark(group="item arrays")
def test_item_arrays_whole_row_reader(benchmark, windows):
    arrays = scale.old_arrays(windows)
    read = _random_items(windows, lambda w, i: scale.reference_item(w, i, arrays))
    benchmark.pedantic(read, rounds=30, warmup_rounds=2)


@pytest.mark.benchmark(group="loader")
@pytest.mark.parametrize("workers", [0, 2])
def test_loader_windows_per_second(benchmark, windows, workers):
    sampler = torch.utils.data.RandomSampler(windows, num_samples=LOADER_WINDOWS,
                                             generator=torch.Generator().manual_seed(0))
    loader = torch.utils.data.DataLoader(windows, batch_size=BATCH, sampler=sampler, num_workers=workers,
                                         persistent_workers=workers > 0)
    benchmark.extra_info["windows"] = LOADER_WINDOWS
    benchmark.pedantic(lambda: sum(len(batch["start"]) for batch in loader), rounds=3, warmup_rounds=1)
