"""The FID Inception-v3 (pool3, 2048-d) exactly as pytorch-fid 0.3.0 runs it, in plain torch.

One obvious entry point::

    from talking_head.metrics.inception import FIDInceptionV3
    model = FIDInceptionV3.from_pretrained("cuda")       # registry name "fid-inception"
    feats = model.extract(frames)                       # (N, H, W, 3) uint8 RGB -> (N, 2048) float32

What it reproduces (pytorch-fid ``InceptionV3([3])`` with ``resize_input=True``,
``normalize_input=True``, ``use_fid_inception=True``; see docs/metrics-reference.md#pytorch-fid):

* input: RGB, float in [0, 1] (``ToTensor``: uint8 / 255 in float32), NCHW;
* ``F.interpolate(x, (299, 299), mode="bilinear", align_corners=False)``, no antialias;
* ``x = 2 * x - 1``;
* torchvision's Inception-v3 trunk (BasicConv2d = conv without bias + BatchNorm eps 1e-3 + ReLU)
  with the FID patches: TensorFlow-style average pooling (``count_include_pad=False``) in the
  A / C / E_1 blocks (Mixed_5b-5d, Mixed_6b-6e, Mixed_7b) and **max** pooling in Mixed_7c;
* global average pool of the 8x8 map -> 2048 features ("pool3").

Module and parameter names equal pytorch-fid's, so its checkpoint
``pt_inception-2015-12-05-6726825d.pth`` loads with ``strict=True`` (the unused 1008-class ``fc``
included) and no torchvision import is needed.

On CUDA, cuDNN / cuBLAS would run fp32 convolutions in TF32 on Ampere and later (cuDNN's default),
which moves the features by ~1e-3 relative; :func:`toolkit.fp32.strict_fp32` turns TF32 off while features
are extracted and restores the previous flags afterwards.

Memory layout (:data:`MEMORY_FORMAT`): on the CPU the network runs channels-last, where oneDNN's kernels
are about 1.5x faster than in pytorch-fid's NCHW layout; the resize still runs in NCHW, so only the
convolutions' summation order changes (features within about 1e-4 of pytorch-fid's, the FID within
float round-off; docs/metrics-reference.md, "FID on the CPU"). ``memory_format="contiguous"`` gives
pytorch-fid's bits on the CPU. On CUDA the layout is pytorch-fid's.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head.toolkit.fp32 import strict_fp32

__all__ = [
    "WEIGHTS_NAME", "FEATURE_DIM", "INPUT_SIZE", "NUM_CLASSES", "BN_EPS", "FIDInceptionV3",
    "frames_to_tensor", "MEMORY_FORMAT",
]

# ---------------------------------------------------------------------------------------- constants
WEIGHTS_NAME = "fid-inception"  # toolkit.weights registry entry (pytorch-fid's FID_WEIGHTS_URL file)
FEATURE_DIM = 2048  # pytorch-fid --dims default: pool3 ("final average pooling features")
INPUT_SIZE = 299  # pytorch-fid InceptionV3.forward: F.interpolate(x, size=(299, 299), ...)
NUM_CLASSES = 1008  # pytorch-fid fid_inception_v3(): inception_v3(num_classes=1008, aux_logits=False)
BN_EPS = 1e-3  # torchvision inception.BasicConv2d: nn.BatchNorm2d(out_channels, eps=0.001)
RESIZE_MODE = "bilinear"  # pytorch-fid: mode='bilinear', align_corners=False (no antialias)
# The trunk's memory layout by device type; "contiguous" is pytorch-fid's (NCHW). Any other device: NCHW.
MEMORY_FORMAT = {"cpu": "channels_last", "cuda": "contiguous"}
_LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}

Frames = Union[np.ndarray, torch.Tensor, Sequence[np.ndarray], Sequence[torch.Tensor]]


# ------------------------------------------------------------------------------------ building blocks
class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3, the TF port's value) + ReLU: torchvision's BasicConv2d."""

    def __init__(self, in_channels: int, out_channels: int, **conv: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **conv)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    # TensorFlow's 3x3 average pool ignores the zero padding at borders (pytorch-fid's FID patch).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d (pytorch-fid FIDInceptionA): 1x1 | 5x5 | double 3x3 | TF avg pool + 1x1."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Mixed_6a (torchvision InceptionB, unpatched): grid reduction 35 -> 17."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class InceptionC(nn.Module):
    """Mixed_6b..6e (pytorch-fid FIDInceptionC): factorised 7x7 branches | TF avg pool + 1x1."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_tf_avg_pool(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Mixed_7a (torchvision InceptionD, unpatched): grid reduction 17 -> 8."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """Mixed_7b (pool="avg": FIDInceptionE_1, TF avg pool) and Mixed_7c (pool="max": FIDInceptionE_2).

    The max pool in Mixed_7c is how the TF graph the weights come from was built; pytorch-fid keeps it.
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = _tf_avg_pool(x) if self.pool == "avg" else F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], 1)


# ------------------------------------------------------------------------------------------ model
class FIDInceptionV3(nn.Module):
    """pytorch-fid's FID Inception-v3 up to pool3. ``forward``: (N, 3, H, W) float RGB in [0, 1] -> (N, 2048).

    ``weights_sha256`` is set by :meth:`from_pretrained` (None for a model built by hand).
    ``memory_format``: "contiguous" (pytorch-fid's layout and bits), "channels_last", or None for
    :data:`MEMORY_FORMAT` of the device the input is on.
    """

    def __init__(self, memory_format: str | None = None) -> None:
        super().__init__()
        if memory_format is not None and memory_format not in _LAYOUTS:
            raise ValueError(f"memory_format must be one of {sorted(_LAYOUTS)} or None, got {memory_format!r}")
        self.memory_format = memory_format
        self._weights_layout = "contiguous"
        # Names and channel counts as torchvision's Inception3 with pytorch-fid's patched blocks.
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        # Never used for features; present so the checkpoint loads strictly, as in pytorch-fid.
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.weights_sha256: str | None = None
        self.eval()
        self.requires_grad_(False)

    # -- loading -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, device: str | torch.device = "cpu", memory_format: str | None = None) -> "FIDInceptionV3":
        """Load ``fid-inception`` through the weights registry (sha256-verified), strictly.

        Raises ``toolkit.weights.WeightsMissingError`` if the file is absent and
        ``WeightsCorruptError`` if it is damaged or is not the FID Inception checkpoint.
        """
        from talking_head.toolkit import weights

        state = weights.load_torch(WEIGHTS_NAME, map_location="cpu")
        model = cls(memory_format)
        model.load_checkpoint(state, source=str(weights.weights_file(WEIGHTS_NAME)))
        model.weights_sha256 = weights.verify(WEIGHTS_NAME).actual_sha256
        return model.to(device)

    def load_checkpoint(self, state: object, source: str = "checkpoint") -> None:
        """``load_state_dict(strict=True)`` with an error that names what does not fit."""
        from talking_head.toolkit.weights import WeightsCorruptError

        if not isinstance(state, dict):
            raise WeightsCorruptError(f"{source}: expected a state dict, got {type(state).__name__}")
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as err:
            own = set(self.state_dict())
            given = set(state)
            missing = sorted(own - given - {k for k in own if k.endswith("num_batches_tracked")})
            unexpected = sorted(given - own)
            parts = []
            if missing:
                parts.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:5])})")
            if unexpected:
                parts.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:5])})")
            if not parts:  # same keys, so some shape is wrong
                parts.append(str(err).splitlines()[-1].strip())
            raise WeightsCorruptError(
                f"{source} is not pytorch-fid's FID Inception checkpoint (pt_inception-2015-12-05): "
                + "; ".join(parts)
            ) from err

    def weights_provenance(self) -> dict[str, str | None]:
        """``{registry name: sha256 of the file the weights came from}`` (None if not loaded from one)."""
        return {WEIGHTS_NAME: self.weights_sha256}

    def config(self) -> dict[str, object]:
        """Every fixed choice of the feature extractor that changes the numbers."""
        return {
            "model": "pytorch-fid 0.3.0 InceptionV3([3]) (FID Inception, pool3)",
            "feature_dim": FEATURE_DIM,
            "input_size": INPUT_SIZE,
            "resize": f"{RESIZE_MODE}, align_corners=False, antialias=False",
            "normalize": "x/255 then 2x-1",
            "precision": "fp32 (TF32 off)",
            "memory_format": self.layout(self.device),
        }

    # -- running -----------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.Conv2d_1a_3x3.conv.weight.device

    def layout(self, device: torch.device) -> str:
        """The trunk's memory layout on ``device``: "contiguous" (pytorch-fid's) or "channels_last"."""
        return self.memory_format or MEMORY_FORMAT.get(device.type, "contiguous")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float RGB in [0, 1] -> (N, 2048) pool3 features (float32)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N, 3, H, W) float tensor, got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"expected a float tensor in [0, 1], got dtype {x.dtype}")
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = resize_299(x.contiguous())  # in NCHW, as pytorch-fid: the resize's bits do not move
        layout = self.layout(x.device)
        if self._weights_layout != layout:  # once, and again only if the model moves to another device type
            self.to(memory_format=_LAYOUTS[layout])
            self._weights_layout = layout
        return self._trunk((2 * x - 1).contiguous(memory_format=_LAYOUTS[layout]))  # TF Inception expects [-1, 1]

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        # adaptive_avg_pool2d (not .mean) so the summation order, hence the bits, match pytorch-fid.
        return F.adaptive_avg_pool2d(x, output_size=(1, 1)).flatten(1)

    @torch.no_grad()
    def extract(self, frames: Frames) -> torch.Tensor:
        """RGB uint8 frames -> (N, 2048) float32 features on the model's device.

        ``frames``: an (N, H, W, 3) uint8 array/tensor, or a sequence of (H, W, 3) uint8 frames whose
        sizes may differ (each is resized to 299x299 on its own, exactly as in a batch). Runs in eval
        mode, without autograd, with TF32 disabled.
        """
        with strict_fp32():
            return self(frames_to_tensor(frames, self.device))


def resize_299(x: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's input resize: bilinear to 299x299, align_corners=False, no antialias."""
    return F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode=RESIZE_MODE, align_corners=False)


def _uint8_nchw_float(batch: torch.Tensor) -> torch.Tensor:
    # torchvision ToTensor: CHW made contiguous, then float32 .div(255) (a true division). Contiguous
    # matters for the resize: its channels-last kernel rounds differently.
    return batch.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)


def frames_to_tensor(frames: Frames, device: str | torch.device = "cpu") -> torch.Tensor:
    """RGB uint8 frames -> (N, 3, 299, 299) float32 in [0, 1] on ``device`` (values as pytorch-fid feeds them).

    Conversion happens on ``device`` (uint8 crosses the bus, 4x less than float). A sequence of
    differently sized frames is grouped into runs of equal size; each run is resized in one call.
    """
    device = torch.device(device)
    if isinstance(frames, (np.ndarray, torch.Tensor)):
        _check_batch(frames)
        batch = torch.as_tensor(frames).to(device, non_blocking=True)
        return resize_299(_uint8_nchw_float(batch))
    items = list(frames)
    if not items:
        raise ValueError("no frames: got an empty sequence")
    out: list[torch.Tensor] = []
    start = 0
    for end in range(1, len(items) + 1):
        if end == len(items) or tuple(items[end].shape) != tuple(items[start].shape):
            run = [torch.as_tensor(np.asarray(f) if not isinstance(f, torch.Tensor) else f) for f in items[start:end]]
            for k, f in enumerate(run):
                _check_frame(f, start + k)
            batch = torch.stack(run).to(device, non_blocking=True)
            out.append(resize_299(_uint8_nchw_float(batch)))
            start = end
    return torch.cat(out)


def _check_frame(frame: torch.Tensor, index: int) -> None:
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame {index}: expected an (H, W, 3) RGB frame, got shape {tuple(frame.shape)}")
    if frame.dtype != torch.uint8:
        raise ValueError(f"frame {index}: expected uint8 RGB in [0, 255], got dtype {frame.dtype}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"frame {index}: empty image of shape {tuple(frame.shape)}")


def _check_batch(frames: np.ndarray | torch.Tensor) -> None:
    shape = tuple(frames.shape)
    if len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"expected (N, H, W, 3) RGB frames, got shape {shape}")
    if frames.dtype not in (np.uint8, torch.uint8):
        raise ValueError(f"expected uint8 RGB frames in [0, 255], got dtype {frames.dtype}")
    if shape[0] == 0:
        raise ValueError("no frames: got an empty (0, H, W, 3) batch")
    if shape[1] == 0 or shape[2] == 0:
        raise ValueError(f"frames are empty images: shape {shape}")
