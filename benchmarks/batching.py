"""What batching does to each network's output, on one device: items through the network together vs one at a time.

    from batching import measure                  # with benchmarks/ and tests/ on sys.path
    measure(frames, device="cuda")                 # {"inception": 0.0, "syncnet_lip": 7.4e-06, ...}

The metrics batch frames (windows for SyncNet) per forward pass, by device (each metric module's ``BATCH_SIZE``
table). oneDNN on the CPU and cuDNN on a GPU pick kernels by batch size, so a batched output need not be the
bits of a batch of one; the reference tools batch too (pytorch-fid 50 frames, syncnet_python 20 windows) and
move in the same way. Each value is the largest absolute difference over every output value divided by the
largest absolute output value. Random weights in the real layouts (tests/weights_factory.py), BatchNorm
calibrated on ``frames``, so activations have a realistic scale. tests/test_batching.py holds the CPU values to
the table in docs/metrics-reference.md ("Batching"); benchmarks/gpu_suite.py reports them on the GPU.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

import weights_factory as factory
from talking_head.toolkit.fp32 import strict_fp32

ITEMS = 8  # items per batch: big enough for the batched kernels, small enough for a CPU test


def _relative(batched: torch.Tensor, single: torch.Tensor) -> float:
    batched, single = batched.double().cpu(), single.double().cpu()
    return float((batched - single).abs().max() / single.abs().max())


def _both(net, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad(), strict_fp32():
        return net(x), torch.cat([net(x[i : i + 1]) for i in range(len(x))])


def _faces(frames: np.ndarray, size: int) -> np.ndarray:
    """The sample's face region (a fixed box), resized."""
    return np.stack([cv2.resize(f[96:480, 64:448], (size, size)) for f in frames[:ITEMS]])


def inception(frames: np.ndarray, device: str) -> float:
    from talking_head.metrics.inception import FIDInceptionV3

    net = FIDInceptionV3()
    net.load_state_dict(factory.fid_inception(frames[::5]))
    net = net.to(device).eval()
    chosen = frames[:ITEMS]
    return _relative(net.extract(chosen), torch.cat([net.extract(chosen[i : i + 1]) for i in range(len(chosen))]))


def syncnet(frames: np.ndarray, device: str) -> dict[str, float]:
    """Our lip stream (``lip_windows``), syncnet_python's ``S`` in its own layout, and the two against each other."""
    from syncnet_python.SyncNetModel import S

    from talking_head.metrics.syncnet import SyncNet

    crops = np.stack([cv2.resize(f, (224, 224)) for f in frames[:25]])
    noise = np.random.default_rng(0).integers(-3000, 3000, 16000).astype(np.int16)  # calibrates the audio stream
    state = factory.syncnet(crops, noise)
    crops = crops[: ITEMS + 4]
    ours = SyncNet()
    ours.load_reference_state_dict(state)
    ours = ours.to(device)
    bgr = torch.from_numpy(np.ascontiguousarray(crops[..., ::-1]))
    reference = S()
    reference.load_state_dict(state, strict=False)
    windows = torch.stack([bgr[v : v + 5].float().permute(3, 0, 1, 2) for v in range(ITEMS)]).to(device)
    with torch.no_grad(), strict_fp32():
        batched, single = ours.lip_windows(bgr, batch_size=ITEMS), ours.lip_windows(bgr, batch_size=1)
    expected, one_by_one = _both(reference.to(device).eval().forward_lip, windows)
    return {"syncnet_lip": _relative(batched, single), "syncnet_reference": _relative(expected, one_by_one),
            "syncnet_vs_reference": _relative(batched, expected)}


def arcface(frames: np.ndarray, device: str) -> float:
    from talking_head.metrics.csim import iresnet100, preprocess

    net = iresnet100()
    net.load_state_dict(factory.arcface())
    return _relative(*_both(net.to(device).eval(), preprocess(_faces(frames, 112)).to(device)))


def deep3dfacerecon(frames: np.ndarray, device: str) -> float:
    from talking_head.metrics.efid import ReconNet

    x = torch.from_numpy(_faces(frames, 224)).permute(0, 3, 1, 2).float() / 255
    net = ReconNet()
    net.load_state_dict(factory.deep3dfacerecon(x)["net_recon"])
    return _relative(*_both(net.to(device).eval(), x.to(device)))


def measure(frames: np.ndarray, device: str = "cpu") -> dict[str, float]:
    """Every network's relative difference, batched vs one at a time, on ``device``."""
    return {"inception": inception(frames, device), **syncnet(frames, device), "arcface": arcface(frames, device),
            "deep3dfacerecon": deep3dfacerecon(frames, device)}
