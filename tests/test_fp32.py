"""The shared TF32 guard (toolkit.fp32): off inside, restored after, and used by the S3FD detector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talking_head.metrics import s3fd
from talking_head.toolkit.fp32 import strict_fp32


def _flags() -> tuple[bool, bool]:
    return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32


@pytest.fixture
def tf32_on():
    before = _flags()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def test_guard_turns_tf32_off_and_restores_it_after_an_error(tf32_on) -> None:
    with pytest.raises(RuntimeError, match="inside"):
        with strict_fp32():
            assert _flags() == (False, False)
            raise RuntimeError("inside")
    assert _flags() == (True, True)


def test_s3fd_network_runs_in_fp32(tf32_on) -> None:
    seen = []
    net = s3fd.S3FDNet()
    net.register_forward_hook(lambda *_: seen.append(_flags()))
    s3fd.S3FD(net).raw_detections(np.zeros((1, 64, 64, 3), np.uint8), scale=1.0)
    assert seen == [(False, False)]
    assert _flags() == (True, True)
