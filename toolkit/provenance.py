"""What every result file records about the software that made it."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

# Distributions whose versions can change a number the toolkit writes.
TRACKED = (
    "talking-head-toolkit", "numpy", "scipy", "torch", "torchvision", "av", "opencv-contrib-python-headless",
    "mediapipe", "scikit-image", "datasets", "pytorch-fid", "lpips", "syncnet-python", "face-alignment",
    "transformers", "diffusers",
)


def software_versions(names: tuple[str, ...] = TRACKED) -> dict[str, str]:
    """Python, platform and the installed version of each tracked distribution (missing ones omitted)."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def device_description(device: str) -> str:
    """The hardware a run used, in words: ``cpu (2 cores, x86_64)`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``."""
    import os

    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
        return f"{device} (not available)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{device} ({cores} cores, {platform.machine() or 'unknown'})"
