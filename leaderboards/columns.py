"""The columns a leaderboard can show: one per number `toolkit evaluate` writes, with the direction that is better.

A column reads one value from a run's ``summary.json`` (``results[metric][key]``). Paper tables name
their own metrics and say which column each one is compared with (``leaderboards/papers/*.yaml``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

LOWER, HIGHER = "lower", "higher"


@dataclasses.dataclass(frozen=True)
class Column:
    """One number per row. `better` is "lower", "higher" or None (a statistic to compare with the
    ground-truth row, such as the blink rate, where neither direction is better)."""

    id: str
    label: str
    better: Optional[str]
    metric: str  # the summary.json results entry ...
    key: str  # ... and the value in it
    unit: str = ""
    description: str = ""

    @property
    def arrow(self) -> str:
        return {LOWER: "↓", HIGHER: "↑"}.get(self.better or "", "")

    def value(self, summary: dict[str, Any]) -> Optional[float]:
        """This column's value in a summary.json (None when the metric did not run or gave no number)."""
        value = (summary.get("results", {}).get(self.metric) or {}).get(self.key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "arrow": self.arrow}


COLUMNS: dict[str, Column] = {c.id: c for c in (
    Column("m_lmd", "M-LMD", LOWER, "lmd", "mouth_lmd", description="mouth landmark distance to the reference clip"),
    Column("m_lmd_v", "M-LMD-v", LOWER, "lmd", "mouth_lmd_v", description="mouth landmark velocity distance"),
    Column("f_lmd", "F-LMD", LOWER, "lmd", "face_lmd", description="whole-face landmark distance"),
    Column("f_lmd_v", "F-LMD-v", LOWER, "lmd", "face_lmd_v", description="whole-face landmark velocity distance"),
    Column("lse_c", "LSE-C", HIGHER, "lse", "lse_c", description="SyncNet confidence (lip sync)"),
    Column("lse_d", "LSE-D", LOWER, "lse", "lse_d", description="SyncNet distance (lip sync)"),
    Column("fid", "FID", LOWER, "fid", "fid", description="Frechet Inception Distance to the reference frames"),
    Column("niqe", "NIQE", LOWER, "niqe", "niqe", description="no-reference image quality"),
    Column("psnr", "PSNR", HIGHER, "psnr_ssim", "psnr", "dB", "peak signal-to-noise ratio to the reference frames"),
    Column("ssim", "SSIM", HIGHER, "psnr_ssim", "ssim", description="structural similarity to the reference frames"),
    Column("lpips", "LPIPS", LOWER, "lpips", "lpips", description="learned perceptual distance (AlexNet)"),
    Column("csim", "CSIM", HIGHER, "csim", "csim", description="identity similarity (ArcFace cosine)"),
    Column("pose_std", "Pose std", None, "pose", "mean_std", "deg",
           "head-pose diversity: std of yaw, pitch, roll per video, averaged; compare with ground truth"),
    Column("blink_rate", "Blinks/min", None, "blink", "blink_rate", "1/min", "blink rate; compare with ground truth"),
)}
