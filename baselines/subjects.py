"""Per-speaker statistics of a preprocessed dataset that the reference models condition on."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talking_head.toolkit import dataset as schema


def speaker_means(dataset_dir: str | Path, split: str = "train") -> dict[str, np.ndarray]:
    """P-bar per speaker: the mean canonical mesh (478, 3) over every frame (with a face) of the speaker's
    clips in `split` (the training clips)."""
    from talking_head.toolkit.windows import ArrowRows

    rows = schema.load_split(dataset_dir, split)
    views = ArrowRows(rows, (schema.CANONICAL_LANDMARKS,))  # one clip at a time: memory flat in the dataset
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for row, speaker in enumerate(rows[schema.SPEAKER]):
        canonical = np.asarray(views.view(schema.CANONICAL_LANDMARKS, row), dtype=np.float64)
        good = np.isfinite(canonical).all(axis=(1, 2))
        sums[speaker] = sums.get(speaker, 0.0) + canonical[good].sum(0)
        counts[speaker] = counts.get(speaker, 0) + int(good.sum())
    return {s: (sums[s] / counts[s]).astype(np.float32) for s in sums if counts[s]}
