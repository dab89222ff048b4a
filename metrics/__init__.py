"""Every metric class, its one-off function, and the evaluation runner, imported on first use.

    from talking_head.metrics import FID, LSE, evaluate

Names resolve lazily (module ``__getattr__``), so ``import talking_head.metrics`` imports no torch.
One-off functions named like their module (``lmd``, ``lpips``, ``niqe``, ``csim``, ``psnr_ssim``) are
reached through the module (``from talking_head.metrics.lmd import lmd``): at package level those names
are the modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "base": ("Metric", "Chunk", "VideoInfo", "VideoPair"),
    "blink": ("BlinkRate", "BlinkVideos", "blinks"),
    "csim": ("CSIM", "CSIMVideos"),
    "fid": ("FID", "FIDVideos"),
    "fid_files": ("fid_from_videos",),
    "kid": ("KID", "KIDVideos", "kid_from_features"),
    "efid": ("EFID", "EFIDVideos"),
    "head_motion": ("PoseDiversity", "PoseVideos", "pose_diversity", "CrossSampleDiversity", "DiversityVideos",
                    "cross_sample_diversity"),
    "beat_align": ("BeatAlign", "BeatAlignVideos"),
    "lmd": ("LandmarkDistance", "LMDVideos"),
    "lpips": ("LPIPS", "LPIPSVideos"),
    "lse": ("LSE", "LSEVideos", "compute_lse"),
    "lse_track": ("LSETrackVideos", "FaceTrackPipeline", "track_video"),
    "niqe": ("NIQE", "NIQEVideos"),
    "pairing": ("pair_videos",),
    "psnr_ssim": ("PSNRSSIM", "PSNRSSIMVideos", "psnr", "ssim"),
    "registry": ("MetricEntry", "register"),
    "runner": ("evaluate", "VideoExcluded"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
