"""Shot cuts as SyncNet's face-track pipeline finds them: PySceneDetect 0.6.x ``ContentDetector`` on frames in memory.

Usage::

    from talking_head.metrics.scene_cuts import detect_scenes

    detect_scenes(frames)        # [(start, end), ...] frame ranges of the shots, end exclusive

The defaults (threshold 27 on the mean HSV difference, 15-frame minimum shot, MERGE flash filter, frames
auto-downscaled to >= 256 px on the longer side) and why they are kept: :mod:`metrics.lse_track`.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

import cv2
import numpy as np

from talking_head.toolkit.frames import as_frames

# PySceneDetect 0.6.7 ContentDetector() / SceneManager defaults.
SCENE_THRESHOLD = 27.0  # ContentDetector threshold on the mean |dH|, |dS|, |dV| (weights 1, 1, 1, edges 0)
SCENE_MIN_LENGTH = 15  # ContentDetector min_scene_len (FlashFilter MERGE length)
SCENE_MIN_WIDTH = 256  # scene_manager.DEFAULT_MIN_WIDTH: auto-downscale target for the longer side


def downscale_size(width: int, height: int, min_width: int = SCENE_MIN_WIDTH) -> Optional[tuple[int, int]]:
    """SceneManager's auto-downscale target (w, h) for a frame size, or None when frames stay as they are.

    ``compute_downscale_factor(max(frame_size))``: factor = longer side / 256 (no scaling below 256), and
    ``cv2.resize(frame, (max(1, round(w / f)), max(1, round(h / f))), INTER_LINEAR)`` when factor > 1.
    """
    longer = max(width, height)
    factor = 1 if longer < min_width else longer / float(min_width)
    if not factor > 1.0:
        return None
    return max(1, round(width / factor)), max(1, round(height / factor))


class SceneDetector:
    """PySceneDetect 0.6.7 ``ContentDetector()`` behind ``SceneManager`` (auto downscale), streaming.

    ``update(frames)`` takes consecutive RGB uint8 frames (n, H, W, 3); ``scenes()`` returns
    ``[(start, end), ...]`` frame ranges (end exclusive) covering the video, as the reference's scene
    list (``get_scene_list()``, or the whole video when it is empty).
    """

    def __init__(self, threshold: float = SCENE_THRESHOLD, min_scene_len: int = SCENE_MIN_LENGTH,
                 min_width: int = SCENE_MIN_WIDTH) -> None:
        self.threshold = float(threshold)
        self.min_scene_len = int(min_scene_len)
        self.min_width = int(min_width)
        self.reset()

    def reset(self) -> None:
        self.num_frames = 0
        self.cuts: list[int] = []
        self.scores: list[float] = []  # content_val per frame (0.0 for the first), for inspection
        self._frame_size: Optional[tuple[int, int]] = None
        self._last_hsv: Optional[np.ndarray] = None
        # FlashFilter (MERGE mode) state.
        self._last_above: Optional[int] = None
        self._merge_enabled = False
        self._merge_triggered = False
        self._merge_start: Optional[int] = None

    def config(self) -> dict[str, Any]:
        return {"detector": "PySceneDetect 0.6.7 ContentDetector (ported)", "threshold": self.threshold,
                "min_scene_len": self.min_scene_len, "weights_hsv_edges": [1.0, 1.0, 1.0, 0.0],
                "flash_filter": "merge", "auto_downscale_min_width": self.min_width,
                "downscale_interpolation": "INTER_LINEAR"}

    def update(self, frames: np.ndarray, channel_order: Literal["RGB", "BGR"] = "RGB") -> None:
        frames = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
        conversion = cv2.COLOR_RGB2HSV if channel_order == "RGB" else cv2.COLOR_BGR2HSV
        for frame in frames:
            size = (frame.shape[1], frame.shape[0])
            if self._frame_size is None:
                self._frame_size = size
            elif size != self._frame_size:
                raise ValueError(f"frame size changed from {self._frame_size} to {size} at frame {self.num_frames}")
            target = downscale_size(*size, self.min_width)
            if target is not None:
                frame = cv2.resize(frame, target, interpolation=cv2.INTER_LINEAR)
            hsv = cv2.cvtColor(frame, conversion)
            score = 0.0
            if self._last_hsv is not None:
                # ContentDetector._mean_pixel_distance per channel (integer sums, then / pixel count), and
                # the weighted mean with weights (1, 1, 1, 0) in its summation order.
                sums = cv2.absdiff(hsv, self._last_hsv).reshape(-1, 3).sum(0, dtype=np.int64)
                pixels = float(hsv.shape[0] * hsv.shape[1])
                d_hue, d_sat, d_lum = (int(v) / pixels for v in sums)
                score = (d_hue + d_sat + d_lum) / 3.0
            self._last_hsv = hsv
            self.scores.append(score)
            self.cuts += self._flash_filter(self.num_frames, score >= self.threshold)
            self.num_frames += 1

    def _flash_filter(self, frame_num: int, above: bool) -> list[int]:
        """scene_detector.FlashFilter in MERGE mode: cuts closer than min_scene_len are merged."""
        length = self.min_scene_len
        if not length > 0:
            return [frame_num] if above else []
        if self._last_above is None:
            self._last_above = frame_num
        min_length_met = (frame_num - self._last_above) >= length
        if above:
            self._last_above = frame_num
        if self._merge_triggered:
            merged = self._last_above - self._merge_start
            if min_length_met and not above and merged >= length:
                self._merge_triggered = False
                return [self._last_above]
            return []
        if not above:
            return []
        if min_length_met:
            self._merge_enabled = True
            return [frame_num]
        if self._merge_enabled:
            self._merge_triggered = True
            self._merge_start = frame_num
        return []

    def scenes(self) -> list[tuple[int, int]]:
        if self.num_frames == 0:
            return []
        cuts = sorted(set(self.cuts))
        bounds = [0, *cuts, self.num_frames]
        return [(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]


def detect_scenes(frames: np.ndarray, threshold: float = SCENE_THRESHOLD,
                  min_scene_len: int = SCENE_MIN_LENGTH) -> list[tuple[int, int]]:
    """One-off twin of :class:`SceneDetector`: scene frame ranges of RGB frames (n, H, W, 3)."""
    detector = SceneDetector(threshold, min_scene_len)
    detector.update(frames)
    return detector.scenes()

