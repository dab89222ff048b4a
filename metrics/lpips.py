"""LPIPS v0.1 with the AlexNet trunk, in plain torch (no torchvision), numerically as ``lpips.LPIPS(net='alex')``.

One obvious entry point::

    from talking_head.metrics.lpips import LPIPS, lpips
    metric = LPIPS()                          # loads both weight files, verified
    for gen, ref in pairs:                    # (T, H, W, 3) uint8 RGB each, same shape
        metric.update(gen, ref)
    metric.compute()                          # {"lpips": mean over frames, "num_frames": ...}

    lpips(gen, ref)                           # the same for one pair of clips

The network (richzhang/PerceptualSimilarity, lpips 0.1.4, ``version='0.1'``, ``spatial=False``):

1. input RGB in [-1, 1]; uint8 frames are mapped with ``x / 127.5 - 1`` (``lpips.im2tensor``);
   float frames are taken as already in [-1, 1];
2. ``ScalingLayer``: ``(x - shift) / scale`` with the constants below;
3. torchvision AlexNet ``features`` up to the 5th ReLU; the activations after ReLU 1-5
   (64, 192, 384, 256, 256 channels) are the five taps;
4. per tap: unit-normalise over channels, ``x / (sqrt(sum x^2) + 1e-10)``, squared difference,
   1x1 convolution without bias (the learned "lin" head), spatial mean;
5. sum over the five taps. A clip's score is the mean over its frames; ``compute()`` averages
   every frame of every update.

Weights: the trunk is torchvision's ``alexnet-owt-7be5be79.pth`` (registry ``lpips-alexnet``;
only ``features.{0,3,6,8,10}.{weight,bias}`` are used, ``classifier.*`` is ignored); the lin
heads are ``lpips/weights/v0.1/alex.pth`` from the installed lpips wheel, checked against its
published sha256 before loading. Both are loaded with ``torch.load(weights_only=True)``.
On CUDA, TF32 is switched off during the forward pass so results match fp32 references.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head.toolkit.fp32 import strict_fp32
from talking_head.metrics.base import PerFrameMeans, batch_size_for
from talking_head.toolkit.frames import as_frames
from talking_head.toolkit import weights

__all__ = [
    "LPIPS_SHIFT", "LPIPS_SCALE", "NORMALIZE_EPS", "ALEX_CHANNELS", "ALEX_FEATURE_LAYERS", "LIN_ALEX_SHA256",
    "WEIGHTS_NAME", "LIN_WEIGHTS_NAME", "BATCH_SIZE", "AlexNetLPIPS", "LPIPS", "lpips", "lin_weights_path",
]

# ---------------------------------------------------------------------------------------- constants
LPIPS_SHIFT = (-0.030, -0.088, -0.188)  # lpips.ScalingLayer (v0.1) shift, per RGB channel
LPIPS_SCALE = (0.458, 0.448, 0.450)  # lpips.ScalingLayer (v0.1) scale
NORMALIZE_EPS = 1e-10  # lpips.normalize_tensor
ALEX_CHANNELS = (64, 192, 384, 256, 256)  # channels at the five taps (lpips LPIPS.chns for 'alex')
ALEX_FEATURE_LAYERS = (0, 3, 6, 8, 10)  # conv indices inside torchvision's alexnet().features
TAP_AFTER = (1, 4, 7, 9, 11)  # lpips slices [0:2],[2:5],[5:8],[8:10],[10:12]: tap after these ReLUs
LIN_ALEX_SHA256 = "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0"  # lpips 0.1.4 weights/v0.1/alex.pth
UINT8_SCALE = 127.5  # lpips.im2tensor: image / (255 / 2) - 1
WEIGHTS_NAME = "lpips-alexnet"  # registry entry of the trunk
LIN_WEIGHTS_NAME = "lpips-lin-alex-v0.1"  # provenance label of the lin heads (shipped in the lpips wheel)
BATCH_SIZE = {"cpu": 16, "cuda": 128}  # frame pairs per forward pass, by device


def lin_weights_path() -> Path:
    """``weights/v0.1/alex.pth`` inside the installed lpips package (found without importing lpips,
    whose import pulls in torchvision)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise weights.WeightsMissingError(
            "LPIPS lin-layer weights are shipped in the lpips wheel (lpips/weights/v0.1/alex.pth), "
            "but the lpips package is not installed. Install lpips==0.1.4."
        )
    return Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / "alex.pth"


def _load_lin_weights() -> tuple[list[torch.Tensor], str]:
    path = lin_weights_path()
    if not path.is_file():
        raise weights.WeightsMissingError(f"LPIPS lin-layer weights not found at {path} (reinstall lpips==0.1.4)")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()  # 6 kB: hashing is free
    if digest != LIN_ALEX_SHA256:
        raise weights.WeightsCorruptError(
            f"LPIPS lin-layer weights at {path} have sha256 {digest}, expected {LIN_ALEX_SHA256} "
            f"(lpips 0.1.4 weights/v0.1/alex.pth); reinstall lpips==0.1.4"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)  # saved from CUDA tensors upstream
    lins = []
    for k, channels in enumerate(ALEX_CHANNELS):
        key = f"lin{k}.model.1.weight"  # lpips NetLinLayer: Sequential(Dropout, Conv2d(c, 1, 1, bias=False))
        tensor = state.get(key)
        if tensor is None or tuple(tensor.shape) != (1, channels, 1, 1):
            raise weights.WeightsCorruptError(f"{path}: expected {key} of shape (1, {channels}, 1, 1)")
        lins.append(tensor.float())
    return lins, digest


class AlexNetLPIPS(nn.Module):
    """LPIPS v0.1 / AlexNet as a module: ``forward(in0, in1)`` on (N, 3, H, W) float in [-1, 1] -> (N,)."""

    def __init__(self) -> None:
        super().__init__()
        # Same indices as torchvision's alexnet().features so the checkpoint keys load as they are.
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
        )
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE, dtype=torch.float32).view(1, 3, 1, 1))
        self.lins = nn.ParameterList(nn.Parameter(torch.zeros(1, c, 1, 1), requires_grad=False) for c in ALEX_CHANNELS)
        self.requires_grad_(False)
        self.eval()

    def load_trunk(self, state: dict[str, torch.Tensor], source: str) -> None:
        """Load torchvision AlexNet weights (``features.*``; ``classifier.*`` is ignored), strictly."""
        trunk = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        try:
            self.features.load_state_dict(trunk, strict=True)
        except RuntimeError as err:
            raise weights.WeightsCorruptError(f"{source} is not a torchvision AlexNet checkpoint: {err}") from None

    def load_lins(self, lins: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for param, value in zip(self.lins, lins):
                param.copy_(value)

    def taps(self, x: torch.Tensor) -> Iterator[torch.Tensor]:
        """Activations after ReLU 1-5 of the scaled input."""
        h = (x - self.shift) / self.scale
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in TAP_AFTER:
                yield h

    def forward(self, in0: torch.Tensor, in1: torch.Tensor) -> torch.Tensor:
        total = None
        for f0, f1, lin in zip(self.taps(in0), self.taps(in1), self.lins):
            n0 = f0 / (torch.sqrt(torch.sum(f0 ** 2, dim=1, keepdim=True)) + NORMALIZE_EPS)
            n1 = f1 / (torch.sqrt(torch.sum(f1 ** 2, dim=1, keepdim=True)) + NORMALIZE_EPS)
            layer = F.conv2d((n0 - n1) ** 2, lin).mean(dim=(2, 3), keepdim=True)
            total = layer if total is None else total + layer
        assert total is not None
        return total.flatten()


def _as_frames(frames: Any, name: str) -> np.ndarray:
    array = as_frames(frames, name)
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name}: dtype must be uint8 (0-255) or floating point in [-1, 1], got {array.dtype}")
    lo, hi = float(array.min()), float(array.max())
    if lo < -1.0 - 1e-6 or hi > 1.0 + 1e-6 or not np.isfinite([lo, hi]).all():
        raise ValueError(f"{name}: float frames must lie in [-1, 1] (LPIPS input range), got [{lo:.4g}, {hi:.4g}]")
    return array


def _to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    if frames.dtype == np.uint8:
        # lpips.im2tensor computes image / 127.5 - 1 in float64 and stores float32: same here
        frames = frames / UINT8_SCALE - 1.0
    return torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).permute(0, 3, 1, 2).to(device)


class LPIPS:
    """Streaming LPIPS (v0.1, AlexNet) over paired frames; lower is more similar.

    ``update(generated, reference)``: RGB (T, H, W, 3) or (H, W, 3), both the same shape; uint8
    [0, 255] or float in [-1, 1]. LPIPS does not resize: crop or resize both sides beforehand.
    """

    def __init__(self, device: str | torch.device = "cpu", batch_size: int | None = None) -> None:
        self.device = torch.device(device)
        self.batch_size = batch_size_for(BATCH_SIZE, self.device, batch_size)
        self.net = AlexNetLPIPS()
        self.net.load_trunk(weights.load_torch(WEIGHTS_NAME), str(weights.weights_file(WEIGHTS_NAME)))
        lins, self._lin_sha256 = _load_lin_weights()
        self.net.load_lins(lins)
        self.net.to(self.device)
        self._trunk_sha256 = weights.verify(WEIGHTS_NAME).actual_sha256
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._values: list[np.ndarray] = []

    @torch.no_grad()
    def distances(self, generated: Any, reference: Any) -> np.ndarray:
        """Per-frame LPIPS (float64 array of length T) without accumulating."""
        gen, ref = _as_frames(generated, "generated"), _as_frames(reference, "reference")
        if gen.shape != ref.shape:
            raise ValueError(f"generated and reference must have the same shape, got {gen.shape} and {ref.shape}")
        if (gen.dtype == np.uint8) != (ref.dtype == np.uint8):
            raise ValueError(f"generated and reference must use the same range: got {gen.dtype} and {ref.dtype}")
        if min(gen.shape[1:3]) < 32:
            raise ValueError(f"frames of {gen.shape[1]}x{gen.shape[2]} are too small for AlexNet (need >= 32 px)")
        out = []
        with strict_fp32():
            for s in range(0, len(gen), self.batch_size):
                d = self.net(_to_tensor(gen[s:s + self.batch_size], self.device),
                             _to_tensor(ref[s:s + self.batch_size], self.device))
                out.append(d.double().cpu().numpy())
        return np.concatenate(out)

    def update(self, generated: Any, reference: Any) -> None:
        """Add a batch of paired frames."""
        self._values.append(self.distances(generated, reference))

    def per_frame(self) -> np.ndarray:
        """Per-frame LPIPS of every frame so far, in update order."""
        return np.concatenate(self._values) if self._values else np.zeros(0)

    def compute(self) -> dict[str, float]:
        """Mean LPIPS over every frame so far; raises ValueError before the first update."""
        if not self._values:
            raise ValueError("LPIPS.compute() called before any update()")
        values = self.per_frame()
        return {"lpips": float(values.mean()), "num_frames": int(values.size)}

    def config(self) -> dict[str, Any]:
        """Every setting that changes the number (for result provenance)."""
        return {
            "metric": "lpips",
            "net": "alex",
            "version": "0.1",
            "reference": "lpips 0.1.4 LPIPS(net='alex', version='0.1', spatial=False)",
            "input": "RGB; uint8 mapped by x/127.5-1, float taken as [-1, 1]; no resizing",
            "shift": list(LPIPS_SHIFT),
            "scale": list(LPIPS_SCALE),
            "normalize_eps": NORMALIZE_EPS,
            "aggregation": "mean over frames",
            "dtype": "float32 (TF32 off on CUDA)",
        }

    def weights_provenance(self) -> dict[str, str]:
        """sha256 of each weights file used."""
        return {WEIGHTS_NAME: str(self._trunk_sha256), LIN_WEIGHTS_NAME: self._lin_sha256}


def lpips(generated: Any, reference: Any, device: str | torch.device = "cpu") -> dict[str, float]:
    """One-off :class:`LPIPS` of one pair of clips or frames: ``compute()``'s dict (``lpips``, ``num_frames``)."""
    metric = LPIPS(device=device)
    metric.update(generated, reference)
    return metric.compute()


class LPIPSVideos(PerFrameMeans):
    """LPIPS for the runner: per video the mean over its paired frames, overall over every frame."""

    name, direction = "lpips", "lower"
    accumulators = ("_values",)

    def __init__(self, device: str = "cpu") -> None:
        super().__init__(LPIPS(device=device))
