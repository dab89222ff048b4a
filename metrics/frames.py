"""Input checks shared by the frame metrics: every metric takes RGB clips the same way."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_frames(frames: Any, name: str) -> np.ndarray:
    """A (T, H, W, 3) view of a clip, or of a single (H, W, 3) frame; uint8 or floating point.

    Raises ValueError naming `name` on anything else (wrong shape, no frames, empty images, integer
    types other than uint8); metrics with a narrower input range check it themselves.
    """
    try:
        array = np.asarray(frames)
    except Exception as err:  # e.g. a CUDA tensor
        raise ValueError(f"{name}: cannot be read as an array ({err})") from None
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"{name}: expected RGB frames shaped (T, H, W, 3) or (H, W, 3), got shape {array.shape}")
    if array.shape[0] == 0 or 0 in array.shape[1:3]:
        raise ValueError(f"{name}: no frames or empty frames (shape {array.shape})")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name}: dtype must be uint8 (0-255) or floating point, got {array.dtype}")
    return array
