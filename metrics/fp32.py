"""Full fp32 on GPUs while a reference network runs.

PyTorch lets cuDNN convolutions use TF32 on Ampere and later GPUs (A100, H100, H200) by default,
which changes features in the 3rd-4th significant digit; reference numbers were made in fp32.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def strict_fp32(device: torch.device | str) -> Iterator[None]:
    """No TF32 in cuDNN convolutions or CUDA matmuls inside the block; the previous flags after it."""
    if torch.device(device).type != "cuda":
        yield
        return
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
