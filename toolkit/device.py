"""The `--device` of the commands: checked once, before any model loads, with one sentence when it cannot be used."""

from __future__ import annotations

KINDS = ("cpu", "cuda")


def check_device(device: str) -> str:
    """`device` ("cpu", "cuda" or "cuda:N") if this machine can run on it; ValueError otherwise."""
    import torch

    kind, _, index = str(device).partition(":")
    if kind not in KINDS or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise ValueError(f"device {device!r} is not one of cpu, cuda, cuda:N")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: CUDA is not available on this machine (torch {torch.__version__}, "
                             f"built for CUDA {torch.version.cuda or 'none'})")
        if index and int(index) >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return str(device)
