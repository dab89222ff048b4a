"""A training set read on demand gives the items of the in-memory reader it replaced: checked item for item,
bit for bit, and through DataLoader workers (which open the dataset's memory map themselves)."""

from __future__ import annotations

import torch


def assert_same_items(dataset, expected: list[dict], batched: str = "audio") -> None:
    assert len(dataset) == len(expected) > 20
    for i, item in enumerate(expected):
        got = dataset[i]
        assert sorted(got) == sorted(item)
        for name in item:
            assert got[name].dtype == item[name].dtype and torch.equal(got[name], item[name]), (i, name)
    loader = torch.utils.data.DataLoader(dataset, batch_size=len(dataset), num_workers=2)
    assert torch.equal(next(iter(loader))[batched], torch.stack([item[batched] for item in expected]))
