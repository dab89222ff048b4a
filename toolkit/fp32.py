"""Full fp32 while a reference network runs: the one TF32 guard every network here goes through.

PyTorch lets cuDNN convolutions use TF32 on Ampere and later GPUs (A100, H100, H200) by default,
which changes features in the 3rd-4th significant digit; reference numbers were made in fp32.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch


@contextlib.contextmanager
def strict_fp32() -> Iterator[None]:
    """No TF32 in cuDNN convolutions or CUDA matmuls inside the block; the previous flags after it.

    Unconditional: the flags only matter on CUDA, and setting them on any device keeps the guard
    testable on a CPU. The legacy flags exist in every supported torch (>= 2.9 maps them onto its
    ``fp32_precision`` settings).
    """
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
