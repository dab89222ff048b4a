"""Per-speaker statistics of a preprocessed dataset that the reference models condition on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talking_head.toolkit import dataset as schema


def speaker_means(dataset_dir: str | Path, split: str = "train") -> dict[str, np.ndarray]:
    """P-bar per speaker: the mean canonical mesh (478, 3) over every frame (with a face) of the speaker's
    clips in `split` (the training clips)."""
    rows = schema.load_split(dataset_dir, split)
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for speaker, canonical in zip(rows[schema.SPEAKER], rows.select_columns([schema.CANONICAL_LANDMARKS])
                                  .with_format("numpy")[schema.CANONICAL_LANDMARKS]):
        canonical = np.asarray(canonical, dtype=np.float64)
        good = np.isfinite(canonical).all(axis=(1, 2))
        sums[speaker] = sums.get(speaker, 0.0) + canonical[good].sum(0)
        counts[speaker] = counts.get(speaker, 0) + int(good.sum())
    return {s: (sums[s] / counts[s]).astype(np.float32) for s in sums if counts[s]}
