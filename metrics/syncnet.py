"""SyncNet v2 (the network behind LSE-D / LSE-C) in plain torch.

Usage::

    from talking_head.metrics.syncnet import SyncNet

    model = SyncNet.from_pretrained("cpu")           # registry name "syncnet" (syncnet_v2.model)
    lip = model.forward_lip(clips)                   # (N, 3, 5, 224, 224) BGR 0..255 -> (N, 1024)
    aud = model.forward_aud(mfcc)                    # (N, 1, 13, 20) MFCCs -> (N, 1024)
    dist = (lip - aud).norm(dim=1)                   # small = in sync

Fidelity notes
--------------

The architecture is syncnet_python's ``SyncNetModel.S(num_layers_in_fc_layers=1024)``
(joonson/syncnet_python, identical in the ``syncnet-python`` 0.2.3 wheel), with the same parameter
names (``netcnnaud.0.weight`` ...), so ``syncnet_v2.model`` loads into it unchanged.

``syncnet_v2.model`` is a plain state dict (an ``OrderedDict`` of tensors, saved by an old torch in the
legacy non-zip format; syncnet_python's ``loadParameters`` iterates ``.items()`` of it and the wheel's
pipeline passes it to ``load_state_dict``). It therefore loads with ``torch.load(weights_only=True)``
through :func:`toolkit.weights.load_torch`. Old torch versions did not store BatchNorm's
``num_batches_tracked`` counters; they are not needed in eval mode and may be absent.

Conventions:

* lip stream input: ``(N, 3, 5, 224, 224)`` float32, **BGR, 0..255, no normalisation** (what
  ``cv2.imread`` gives), five consecutive 25 fps frames. Only 224x224 works: the last conv layer
  expects a 6x6 map.
* audio stream input: ``(N, 1, 13, 20)`` float32 MFCCs (see :mod:`metrics.mfcc`): 20 frames at
  100 Hz = 0.2 s = the same five video frames.
* output: ``(N, 1024)`` embeddings; sync is judged by their Euclidean distance.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from talking_head.toolkit import weights

__all__ = [
    "WEIGHTS_NAME", "NUM_FEATURES", "WINDOW_FRAMES", "CROP_SIZE", "MFCC_BINS", "MFCC_WINDOW", "SyncNet",
]

WEIGHTS_NAME = "syncnet"  # toolkit.weights registry entry for syncnet_v2.model
NUM_FEATURES = 1024  # S(num_layers_in_fc_layers=1024): embedding size used by every LSE script
WINDOW_FRAMES = 5  # video frames per lip window (Conv3d temporal kernel 5)
CROP_SIZE = 224  # lip stream spatial size; the conv/pool arithmetic only works for 224
MFCC_BINS = 13  # cepstra per MFCC frame
MFCC_WINDOW = 20  # MFCC frames per audio window (4 per video frame at 25 fps / 100 Hz)


def _conv_bn(conv: nn.Module, channels: int, dims: int) -> list[nn.Module]:
    bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dims](channels)
    return [conv, bn, nn.ReLU(inplace=True)]


def _audio_cnn() -> nn.Sequential:
    # Input 1x13x20 -> 512x1x1. Module indices (and so parameter names) follow SyncNetModel.S.
    return nn.Sequential(
        *_conv_bn(nn.Conv2d(1, 64, 3, padding=1), 64, 2),  # 0-2
        nn.MaxPool2d(1, 1),  # 3 (a no-op kept for the indices)
        *_conv_bn(nn.Conv2d(64, 192, 3, padding=1), 192, 2),  # 4-6
        nn.MaxPool2d(3, stride=(1, 2)),  # 7: 13x20 -> 11x9
        *_conv_bn(nn.Conv2d(192, 384, 3, padding=1), 384, 2),  # 8-10
        *_conv_bn(nn.Conv2d(384, 256, 3, padding=1), 256, 2),  # 11-13
        *_conv_bn(nn.Conv2d(256, 256, 3, padding=1), 256, 2),  # 14-16
        nn.MaxPool2d(3, stride=2),  # 17: 11x9 -> 5x4
        *_conv_bn(nn.Conv2d(256, 512, (5, 4)), 512, 2),  # 18-20: -> 1x1
    )


def _lip_cnn() -> nn.Sequential:
    # Input 3x5x224x224 -> 512x1x1x1. After the first layer the temporal extent is 1.
    return nn.Sequential(
        *_conv_bn(nn.Conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2)), 96, 3),  # 0-2: -> 96x1x109x109
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),  # 3: -> 54
        *_conv_bn(nn.Conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), padding=(0, 1, 1)), 256, 3),  # 4-6: -> 26
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),  # 7: -> 13
        *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),  # 8-10
        *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),  # 11-13
        *_conv_bn(nn.Conv3d(256, 256, (1, 3, 3), padding=(0, 1, 1)), 256, 3),  # 14-16
        nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),  # 17: -> 6
        *_conv_bn(nn.Conv3d(256, 512, (1, 6, 6)), 512, 3),  # 18-20: -> 1x1
    )


def _head(num_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, num_features))


def _fold_bn(weight: torch.Tensor, bias: torch.Tensor, bn: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """A conv's (weight, bias) with the eval-mode BatchNorm after it folded in; weight channels-last."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    weight = weight * scale.view(-1, *[1] * (weight.dim() - 1))
    return weight.contiguous(memory_format=torch.channels_last), (bias - bn.running_mean) * scale + bn.bias


class SyncNet(nn.Module):
    """syncnet_python's ``S``: an audio and a lip stream mapping 0.2 s of input to 1024-d embeddings.

    ``forward_aud`` / ``forward_lip`` take the reference's tensor layouts. :meth:`lip_windows` is the
    fast path the scorer uses: all sliding 5-frame windows of a clip, batched, same numbers (to
    float32 rounding) without materialising the 5x-overlapping window tensor in NCDHW layout.
    """

    def __init__(self, num_features: int = NUM_FEATURES) -> None:
        super().__init__()
        self.num_features = int(num_features)
        self.netcnnaud = _audio_cnn()
        self.netfcaud = _head(self.num_features)
        self.netfclip = _head(self.num_features)
        self.netcnnlip = _lip_cnn()
        self._sha256: str | None = None
        self.eval()

    # ------------------------------------------------------------------ reference layouts
    def forward_aud(self, mfcc: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows -> (N, 1024)."""
        if mfcc.dim() != 4 or tuple(mfcc.shape[1:]) != (1, MFCC_BINS, MFCC_WINDOW):
            raise ValueError(f"forward_aud: expected (N, 1, {MFCC_BINS}, {MFCC_WINDOW}), got {tuple(mfcc.shape)}")
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def forward_lip(self, clips: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR 0..255 windows -> (N, 1024)."""
        expected = (3, WINDOW_FRAMES, CROP_SIZE, CROP_SIZE)
        if clips.dim() != 5 or tuple(clips.shape[1:]) != expected:
            raise ValueError(f"forward_lip: expected (N, {', '.join(map(str, expected))}), got {tuple(clips.shape)}")
        return self.netfclip(self.netcnnlip(clips).flatten(1))

    # ------------------------------------------------------------------ fast path
    def lip_windows(self, frames: torch.Tensor, batch_size: int = 20) -> torch.Tensor:
        """Embeddings of every window ``frames[v:v+5]``: (T, 224, 224, 3) BGR 0..255 -> (T-4, 1024).

        ``frames`` may be uint8 or float and on any device; each batch is converted to float32 on the
        model's device.

        Equivalent to ``forward_lip`` on the stacked windows (to float32 rounding). The first Conv3d
        spans all five frames, so it runs as a 2-D conv over 15 stacked input channels (channel
        ``c * 5 + k`` = colour c of frame k, the order of the flattened Conv3d kernel); every later
        layer has temporal extent 1 and runs as 2-D. Everything is channels-last, which oneDNN runs
        about 1.3x faster on CPU than the reference's NCDHW Conv3d / MaxPool3d, and each eval-mode
        BatchNorm is folded into the conv before it (:func:`_fold_bn`), another ~1.2x; the embeddings
        move by float32 round-off (docs/metrics-reference.md, "Batching and fast paths").
        """
        if frames.dim() != 4 or tuple(frames.shape[1:]) != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"lip_windows: expected (T, {CROP_SIZE}, {CROP_SIZE}, 3), got {tuple(frames.shape)}")
        n = frames.shape[0] - WINDOW_FRAMES + 1
        if n < 1:
            raise ValueError(f"lip_windows: need at least {WINDOW_FRAMES} frames, got {frames.shape[0]}")
        return torch.cat(list(self._lip_batches(frames, n, batch_size)), 0)

    def _lip_batches(self, frames: torch.Tensor, n: int, batch_size: int) -> Iterator[torch.Tensor]:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        L = self.netcnnlip
        # (96, 3, 5, 7, 7) -> (96, 15, 7, 7): in-channel c * 5 + k; later kernels lose their temporal axis.
        w = {0: _fold_bn(L[0].weight.flatten(1, 2), L[0].bias, L[1])}
        w.update({i: _fold_bn(L[i].weight.squeeze(2), L[i].bias, L[i + 1]) for i in (4, 8, 11, 14, 18)})
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            # Convert per batch: a long clip stays uint8 (and on the CPU) until its windows are needed.
            chunk = frames[start : stop + WINDOW_FRAMES - 1].to(device=w[0][0].device, dtype=torch.float32)
            # unfold appends the window axis last: (b, H, W, 3, 5) -> (b, H, W, 15), i.e. NHWC.
            x = chunk.unfold(0, WINDOW_FRAMES, 1).reshape(stop - start, CROP_SIZE, CROP_SIZE, 3 * WINDOW_FRAMES)
            x = x.permute(0, 3, 1, 2)  # logical NCHW, channels-last memory
            x = F.relu_(F.conv2d(x, *w[0], stride=2))
            x = F.max_pool2d(x, 3, stride=2)
            x = F.relu_(F.conv2d(x, *w[4], stride=2, padding=1))
            x = F.max_pool2d(x, 3, stride=2, padding=1)
            for conv in (8, 11, 14):
                x = F.relu_(F.conv2d(x, *w[conv], padding=1))
            x = F.max_pool2d(x, 3, stride=2)
            x = F.relu_(F.conv2d(x, *w[18]))
            yield self.netfclip(x.flatten(1))

    # ------------------------------------------------------------------ weights
    def load_reference_state_dict(self, state: Mapping[str, Any]) -> None:
        """Load a syncnet_v2.model state dict; every parameter and running statistic must be present.

        ``num_batches_tracked`` may be missing (files saved before torch 0.4.1 lack it); extra or
        misshaped entries raise ValueError.
        """
        if not isinstance(state, Mapping):
            raise ValueError(
                f"SyncNet weights must be a state dict (a mapping of names to tensors), got {type(state).__name__}"
            )
        own = self.state_dict()
        unexpected = sorted(set(state) - set(own))
        missing = sorted(k for k in set(own) - set(state) if not k.endswith("num_batches_tracked"))
        if unexpected or missing:
            raise ValueError(
                "SyncNet weights do not match syncnet_python's S: "
                f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}"
            )
        with torch.no_grad():
            for name, value in state.items():
                if not isinstance(value, torch.Tensor) or value.shape != own[name].shape:
                    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                    raise ValueError(f"SyncNet weights: {name} has shape {shape}, expected {tuple(own[name].shape)}")
                own[name].copy_(value)

    @classmethod
    def from_pretrained(cls, device: str | torch.device = "cpu") -> "SyncNet":
        """``syncnet_v2.model`` from the weights registry (sha256-verified), in eval mode on ``device``."""
        model = cls()
        model.load_reference_state_dict(weights.load_torch(WEIGHTS_NAME, map_location="cpu"))
        model._sha256 = weights.verify(WEIGHTS_NAME).actual_sha256
        return model.to(device).eval()

    def weights_provenance(self) -> dict[str, str | None]:
        """{registry name: sha256 of the loaded file}; None for a model not built by from_pretrained."""
        return {WEIGHTS_NAME: self._sha256}

    def config(self) -> dict[str, Any]:
        return {"architecture": "syncnet_python SyncNetModel.S", "num_features": self.num_features,
                "window_frames": WINDOW_FRAMES, "crop_size": CROP_SIZE, "mfcc_window": MFCC_WINDOW}
