"""The one check of the RGB frame contract: every metric, detector and cropper takes clips the same way."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_frames(
    frames: Any, name: str, *, uint8: bool = False, single_frame: bool = True, allow_no_frames: bool = False
) -> np.ndarray:
    """A (T, H, W, 3) view of a clip, or of a single (H, W, 3) frame; uint8 or floating point.

    Raises ValueError naming `name` on anything else (wrong shape, no frames, empty images, integer
    types other than uint8); metrics with a narrower input range check it themselves. ``uint8``
    admits uint8 only (decoded video, what the detectors take); ``single_frame=False`` refuses a
    lone (H, W, 3) frame; ``allow_no_frames`` admits a (0, H, W, 3) clip (a streamed chunk may be empty).
    """
    try:
        array = np.asarray(frames)
    except Exception as err:  # e.g. a CUDA tensor
        raise ValueError(f"{name}: cannot be read as an array ({err})") from None
    if array.ndim == 3 and single_frame:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] != 3:
        expected = "(T, H, W, 3) or (H, W, 3)" if single_frame else "(T, H, W, 3)"
        raise ValueError(f"{name}: expected RGB frames shaped {expected}, got shape {array.shape}")
    if (array.shape[0] == 0 and not allow_no_frames) or 0 in array.shape[1:3]:
        raise ValueError(f"{name}: no frames or empty frames (shape {array.shape})")
    if uint8 and array.dtype != np.uint8:
        raise ValueError(f"{name}: dtype must be uint8 (0-255, as decoded video), got {array.dtype}")
    if array.dtype != np.uint8 and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name}: dtype must be uint8 (0-255) or floating point, got {array.dtype}")
    return array
