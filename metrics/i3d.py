"""Inception-v1 I3D (Carreira and Zisserman 2017) with the parameter names of pytorch-i3d, so the VideoGPT /
TATS / DisCo / cd-fvd file ``i3d_pretrained_400.pt`` loads into it unchanged.

Usage::

    from talking_head.metrics.i3d import InceptionI3d

    net = InceptionI3d.from_pretrained(device="cuda")    # registry entry "i3d-kinetics400"
    logits = net(clips)                                  # (B, 3, T, 224, 224) in [-1, 1] -> (B, 400)

What must match the reference for FVD to be reproduced (pytorch-i3d ``pytorch_i3d.py``, the copy cd-fvd
ships as ``cdfvd/third_party/i3d/pytorch_i3d.py``):
    * TensorFlow "SAME" padding computed from the input size at every convolution and max pool, with zeros
      (also before max pooling: the inputs there are ReLU outputs, so zeros never win);
    * convolutions without bias, BatchNorm eps 1e-5, ReLU; the logits layer a biased 1x1x1 convolution;
    * average pooling (2, 7, 7) with stride 1 after Mixed_5c, then the logits averaged over the remaining
      time steps: the output is the 400 pre-softmax logits, which FVD uses as features.
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from talking_head.toolkit import weights
from talking_head.toolkit.fp32 import strict_fp32

WEIGHTS = "i3d-kinetics400"
NUM_CLASSES = 400

# (name, in_channels, [b0, b1a, b1b, b2a, b2b, b3b]) of the nine Inception modules, in order.
INCEPTION_MODULES = (
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
)


def same_padding(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> tuple[int, ...]:
    """TensorFlow "SAME" padding of a (T, H, W) input as F.pad wants it: (w0, w1, h0, h1, t0, t1)."""
    pads: list[int] = []
    for s, k, st in zip(reversed(size), reversed(kernel), reversed(stride)):
        total = max(k - (st if s % st == 0 else s % st), 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class SamePadMaxPool3d(nn.Module):
    def __init__(self, kernel: Sequence[int], stride: Sequence[int]) -> None:
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))
        return F.max_pool3d(x, self.kernel, self.stride)


class Unit3D(nn.Module):
    """SAME-padded 3-D convolution, then BatchNorm and ReLU (the logits layer: biased, neither)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Sequence[int] = (1, 1, 1),
                 stride: Sequence[int] = (1, 1, 1), batch_norm: bool = True, relu: bool = True, bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = tuple(kernel), tuple(stride), relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel, self.stride, padding=0, bias=bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-5, momentum=0.001) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionModule(nn.Module):
    def __init__(self, in_channels: int, widths: Sequence[int]) -> None:
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.b0 = Unit3D(in_channels, b0)
        self.b1a, self.b1b = Unit3D(in_channels, b1a), Unit3D(b1a, b1b, (3, 3, 3))
        self.b2a, self.b2b = Unit3D(in_channels, b2a), Unit3D(b2a, b2b, (3, 3, 3))
        self.b3a, self.b3b = SamePadMaxPool3d((3, 3, 3), (1, 1, 1)), Unit3D(in_channels, b3b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


class InceptionI3d(nn.Module):
    """RGB I3D up to the Kinetics logits; ``forward`` returns (B, num_classes) logits averaged over time."""

    def __init__(self, num_classes: int = NUM_CLASSES, in_channels: int = 3) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, (7, 7, 7), (2, 2, 2))
        self.MaxPool3d_2a_3x3 = SamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3))
        self.MaxPool3d_3a_3x3 = SamePadMaxPool3d((1, 3, 3), (1, 2, 2))
        for name, channels, widths in INCEPTION_MODULES[:2]:
            self.add_module(name, InceptionModule(channels, widths))
        self.MaxPool3d_4a_3x3 = SamePadMaxPool3d((3, 3, 3), (2, 2, 2))
        for name, channels, widths in INCEPTION_MODULES[2:7]:
            self.add_module(name, InceptionModule(channels, widths))
        self.MaxPool3d_5a_2x2 = SamePadMaxPool3d((2, 2, 2), (2, 2, 2))
        for name, channels, widths in INCEPTION_MODULES[7:]:
            self.add_module(name, InceptionModule(channels, widths))
        self.logits = Unit3D(1024, num_classes, batch_norm=False, relu=False, bias=True)
        self.device: torch.device = torch.device("cpu")
        self.weights_path: Optional[str] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self.children():
            if module is self.logits:
                break
            x = module(x)
        x = F.avg_pool3d(x, (2, 7, 7), stride=1)  # dropout sits here in training; eval skips it
        return self.logits(x).squeeze(4).squeeze(3).mean(dim=2)

    @classmethod
    def from_pretrained(cls, device: str | torch.device = "cpu") -> "InceptionI3d":
        """The registry's ``i3d-kinetics400`` file, verified and loaded with ``weights_only=True``."""
        net = cls()
        state = weights.load_torch(WEIGHTS, map_location="cpu")
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            raise weights.WeightsCorruptError(
                f"'{WEIGHTS}' at {weights.path(WEIGHTS)} is not an InceptionI3d state dict: "
                f"{str(err).splitlines()[0]}") from None
        net.weights_path = str(weights.path(WEIGHTS))
        return net.to(device).eval()

    def to(self, *args: Any, **kwargs: Any) -> "InceptionI3d":  # type: ignore[override]
        module = super().to(*args, **kwargs)
        self.device = next(self.parameters()).device
        return module

    @torch.no_grad()
    def logits_of(self, clips: torch.Tensor) -> torch.Tensor:
        """Logits of (B, 3, T, H, W) float clips already in the network's range, in strict float32."""
        with strict_fp32():
            return self(clips.to(self.device, torch.float32)).float()


def expected_frames_ok(frames: int) -> bool:
    """The logits layer needs two time steps after three temporal halvings: at least 9 frames."""
    return math.ceil(math.ceil(math.ceil(frames / 2) / 2) / 2) >= 2
