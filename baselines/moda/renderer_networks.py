"""MODA renderer's networks: the ResUNet generator, the multi-scale PatchGAN discriminator and the frozen
VGG19 feature taps of the perceptual and style losses.

Usage::

    from talking_head.baselines.moda.renderer_networks import MultiscalePatchGAN, ResUNetGenerator, VGG19Features

    generator = ResUNetGenerator(in_channels, 3, ngf=64, n_downsample=4, max_channels=512)
    fake = generator(conditions)

The stage that trains and runs them is :mod:`baselines.moda.renderer`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VGG_WEIGHTS = "vgg19"  # registry entry (toolkit/weights.py)
VGG_TAPS = (1, 6, 11, 20, 29)  # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 in torchvision's vgg19().features
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LEAKY_SLOPE = 0.2  # PatchGAN's LeakyReLU
D_KERNEL, D_PADDING = 4, 2  # pix2pixHD's PatchGAN: 4 x 4 kernels, padding ceil(3 / 2)
D_MAX_CHANNELS = 512  # PatchGAN's channel cap


# ------------------------------------------------------------------------------------- generator
class _ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input, then ReLU (the release's ResidualBlock)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.block(x))


class _Level(nn.Module):
    """One ResUNet level (the release's ResUnetSkipConnectionBlock_small): down (3x3 stride-2 conv, BN, ReLU,
    residual block), the inner levels, up (nearest x2, 3x3 conv, BN, ReLU, residual block); the output is
    the input concatenated with the up path (the skip connection), except at the outermost level."""

    def __init__(self, outer: int, inner: int, in_channels: int | None = None, inner_level: "_Level | None" = None,
                 outermost: bool = False):
        super().__init__()
        in_channels = outer if in_channels is None else in_channels
        innermost = inner_level is None
        self.outermost = outermost
        down: list[nn.Module] = [nn.Conv2d(in_channels, inner, 3, 2, 1, bias=False)]
        if not (outermost or innermost):  # the release normalises neither the first nor the last down conv
            down.append(nn.BatchNorm2d(inner))
        down += [nn.ReLU(inplace=True), _ResidualBlock(inner)]
        up_in = inner if innermost else 2 * inner  # inner levels return [x, up(x)]
        up: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest"),
                               nn.Conv2d(up_in, outer, 3, 1, 1, bias=False)]
        if not outermost:  # the outermost up conv goes straight to tanh
            up += [nn.BatchNorm2d(outer), nn.ReLU(inplace=True), _ResidualBlock(outer)]
        self.model = nn.Sequential(*down, *([inner_level] if inner_level is not None else []), *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class ResUNetGenerator(nn.Module):
    """MODA's RenderGenerator_normal: a ResUNet of `n_downsample` levels with min(ngf * 2^k, max_channels)
    channels at level k (the release: ngf, 2, 4, 8 ngf, then 8 ngf), BatchNorm, ReLU, tanh output."""

    def __init__(self, in_channels: int, out_channels: int, ngf: int, n_downsample: int, max_channels: int):
        super().__init__()
        if n_downsample < 2:
            raise ValueError(f"generator.n_downsample must be >= 2, got {n_downsample}")
        widths = [min(ngf * 2**k, max_channels) for k in range(n_downsample)]
        level = None
        for k in reversed(range(1, n_downsample)):  # built from the innermost level outwards
            level = _Level(widths[k - 1], widths[k], inner_level=level)
        self.model = _Level(out_channels, widths[0], in_channels=in_channels, inner_level=level, outermost=True)
        self.widths = widths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.model(x))


# --------------------------------------------------------------------------------- discriminator
class PatchGAN(nn.Module):
    """pix2pixHD's NLayerDiscriminator with InstanceNorm; ``forward`` returns every layer's output (the
    last is the patch prediction), for feature matching."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(in_channels, ndf, D_KERNEL, 2, D_PADDING), nn.LeakyReLU(LEAKY_SLOPE, True))]
        channels = ndf
        for n in range(1, n_layers + 1):  # n_layers - 1 stride-2 layers, then one stride-1 layer
            previous, channels = channels, min(channels * 2, D_MAX_CHANNELS)
            layers.append(nn.Sequential(nn.Conv2d(previous, channels, D_KERNEL, 2 if n < n_layers else 1, D_PADDING),
                                        nn.InstanceNorm2d(channels), nn.LeakyReLU(LEAKY_SLOPE, True)))
        layers.append(nn.Sequential(nn.Conv2d(channels, 1, D_KERNEL, 1, D_PADDING)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscalePatchGAN(nn.Module):
    """`num_D` PatchGANs on the input at 1x, 1/2, 1/4 ... scale (3x3 average pooling, stride 2)."""

    def __init__(self, in_channels: int, ndf: int, n_layers: int, num_D: int):
        super().__init__()
        self.nets = nn.ModuleList(PatchGAN(in_channels, ndf, n_layers) for _ in range(num_D))
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for k, net in enumerate(self.nets):
            if k:
                x = self.downsample(x)
            out.append(net(x))
        return out


# ------------------------------------------------------------------------------------------ VGG
class VGG19Features(nn.Module):
    """Frozen torchvision VGG19 ``features`` up to relu5_1, on ImageNet-normalised input; ``forward`` on
    images in [-1, 1] returns the activations at :data:`VGG_TAPS`."""

    def __init__(self):
        super().__init__()
        import torchvision

        self.features = torchvision.models.vgg19().features[: VGG_TAPS[-1] + 1]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_registry(cls, name: str = VGG_WEIGHTS) -> "VGG19Features":
        """Load registry entry `name` (verified, ``torch.load(weights_only=True)``); a missing file raises
        WeightsMissingError naming ``toolkit weights fetch vgg19``."""
        from talking_head.toolkit import weights

        state = weights.load_torch(name)  # require() (missing / corrupt errors), then weights_only load
        net = cls()
        keep = {f"features.{k}" for k in net.features.state_dict()}
        trunk = {k[len("features."):]: v for k, v in state.items() if k in keep}
        try:
            net.features.load_state_dict(trunk, strict=True)
        except RuntimeError as err:
            raise weights.WeightsCorruptError(f"{weights.weights_file(name)} is not a torchvision VGG19 "
                                              f"checkpoint: {str(err).splitlines()[0]}") from None
        return net

    def train(self, mode: bool = True) -> "VGG19Features":
        return super().train(False)  # frozen: always in inference mode

    def forward(self, x: torch.Tensor, imagenet: bool = True) -> list[torch.Tensor]:
        """`imagenet`: normalise as the weights expect; False feeds the [-1, 1] images as they are (the
        release's ``Vgg19``, ``fixes.vgg_input: raw``)."""
        h = ((x + 1) / 2 - self.mean) / self.std if imagenet else x
        taps = []
        for index, layer in enumerate(self.features):
            h = layer(h)
            if index in VGG_TAPS:
                taps.append(h)
        return taps


def gram(features: torch.Tensor) -> torch.Tensor:
    """Per-image Gram matrices (N, C, C) of (N, C, H, W) features, normalised by C * H * W."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)
