"""DreamHead L2I's denoising network: a UNet that also attends to reference frames.

Usage::

    from talking_head.baselines.dreamhead.reference_unet import ReferenceUNet

    unet = ReferenceUNet(in_channels=20, out_channels=4, block_out_channels=[64, 128], layers_per_block=1,
                         attention_levels=[1], mid_attention=True, attention_head_dim=32, norm_num_groups=32,
                         patch_size=1, zero_init=True)
    tokens = unet(reference_input, t, collect=True)       # the reference pass collects its attention tokens
    noise = unet(noisy_input, t, reference=tokens)        # the denoising pass attends to them too

The model around it (masks, noise schedule, sampling, training step) is
:mod:`baselines.dreamhead.l2i_diffusion`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


# ------------------------------------------------------------------------------------------ the UNet
class _ReferenceAttention(nn.Module):
    """Self-attention whose keys and values also hold the reference pass's tokens of this layer."""

    def __init__(self, channels: int, head_dim: int, groups: int):
        super().__init__()
        from diffusers.models.attention_processor import Attention

        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        heads = max(1, channels // head_dim)
        self.attn = Attention(channels, heads=heads, dim_head=channels // heads, bias=True, out_bias=True)

    def forward(self, h: torch.Tensor, reference: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, height, width = h.shape
        tokens = self.norm(h).flatten(2).transpose(1, 2)  # (B, HW, C)
        context = tokens
        if reference is not None:  # one reference for the whole batch is broadcast
            context = torch.cat([tokens, reference.expand(b, -1, -1)], dim=1)
        out = self.attn(tokens, encoder_hidden_states=context)
        return h + out.transpose(1, 2).reshape(b, c, height, width), tokens


class _Unit(nn.Module):
    """A ResNet block, optionally followed by reference attention."""

    def __init__(self, in_ch: int, out_ch: int, temb: int, groups: int, attention: bool, head_dim: int):
        super().__init__()
        from diffusers.models.resnet import ResnetBlock2D

        self.res = ResnetBlock2D(in_channels=in_ch, out_channels=out_ch, temb_channels=temb, groups=groups)
        self.attn = _ReferenceAttention(out_ch, head_dim, groups) if attention else None


class ReferenceUNet(nn.Module):
    """A UNet whose attention layers can attend to the tokens of a reference pass of itself.

    ``forward(x, t)`` predicts; ``forward(x, t, reference=tokens)`` predicts attending to the reference;
    ``forward(x, t, collect=True)`` returns the list of per-layer tokens (the reference pass).
    """

    def __init__(self, in_channels: int, out_channels: int, block_out_channels: list[int], layers_per_block: int,
                 attention_levels: list[bool], mid_attention: bool, attention_head_dim: int, norm_num_groups: int,
                 patch_size: int = 1, zero_init: bool = False):
        super().__init__()
        from diffusers.models.downsampling import Downsample2D
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps
        from diffusers.models.upsampling import Upsample2D

        if len(attention_levels) != len(block_out_channels):
            raise ValueError(f"unet.attention_levels needs one entry per level ({len(block_out_channels)}), "
                             f"got {attention_levels}")
        ch0, groups, head = block_out_channels[0], norm_num_groups, attention_head_dim
        temb = 4 * ch0
        self.patch_size = patch_size
        self.time_proj = Timesteps(ch0, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(ch0, temb)
        # patch_size p: p x p pixels become one position (pixel unshuffle), and back at the output.
        self.conv_in = nn.Conv2d(in_channels * patch_size**2, ch0, 3, padding=1)

        self.down, skips, ch = nn.ModuleList(), [ch0], ch0
        for level, out_ch in enumerate(block_out_channels):
            units = nn.ModuleList()
            for _ in range(layers_per_block):
                units.append(_Unit(ch, out_ch, temb, groups, attention_levels[level], head))
                ch = out_ch
                skips.append(ch)
            stage = nn.Module()
            stage.units = units
            stage.sample = Downsample2D(ch, use_conv=True, name="op") if level < len(block_out_channels) - 1 else None
            if stage.sample is not None:
                skips.append(ch)
            self.down.append(stage)

        self.mid = nn.ModuleList([_Unit(ch, ch, temb, groups, mid_attention, head), _Unit(ch, ch, temb, groups, False, head)])

        self.up = nn.ModuleList()
        for level in reversed(range(len(block_out_channels))):
            out_ch, units = block_out_channels[level], nn.ModuleList()
            for _ in range(layers_per_block + 1):
                units.append(_Unit(ch + skips.pop(), out_ch, temb, groups, attention_levels[level], head))
                ch = out_ch
            stage = nn.Module()
            stage.units = units
            stage.sample = Upsample2D(ch, use_conv=True) if level > 0 else None
            self.up.append(stage)

        self.norm_out = nn.GroupNorm(groups, ch, eps=1e-6)
        self.conv_out = nn.Conv2d(ch, out_channels * patch_size**2, 3, padding=1)
        self.num_attention = sum(isinstance(m, _ReferenceAttention) for m in self.modules())
        if zero_init:
            # Each residual branch and the output start at zero (as in ADM, Dhariwal & Nichol 2021): the
            # network starts as its skip paths, and learns the edits on top.
            for module in self.modules():
                if isinstance(module, _Unit):
                    nn.init.zeros_(module.res.conv2.weight), nn.init.zeros_(module.res.conv2.bias)
                if isinstance(module, _ReferenceAttention):
                    nn.init.zeros_(module.attn.to_out[0].weight), nn.init.zeros_(module.attn.to_out[0].bias)
            nn.init.zeros_(self.conv_out.weight), nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, reference: list[torch.Tensor] | None = None,
                collect: bool = False) -> Any:
        timestep = torch.as_tensor(timestep, device=x.device).reshape(-1).expand(x.shape[0])
        temb = self.time_embedding(self.time_proj(timestep).to(x.dtype))
        tokens: list[torch.Tensor] = []

        def run(unit: _Unit, h: torch.Tensor) -> torch.Tensor:
            h = unit.res(h, temb)
            if unit.attn is not None:
                h, own = unit.attn(h, None if reference is None else reference[len(tokens)])
                tokens.append(own)
            return h

        h = self.conv_in(F.pixel_unshuffle(x, self.patch_size) if self.patch_size > 1 else x)
        skips = [h]
        for stage in self.down:
            for unit in stage.units:
                h = run(unit, h)
                skips.append(h)
            if stage.sample is not None:
                h = stage.sample(h)
                skips.append(h)
        for unit in self.mid:
            h = run(unit, h)
        for stage in self.up:
            for unit in stage.units:
                if collect and len(tokens) == self.num_attention:
                    return tokens  # the reference pass needs nothing after the last attention layer
                h = run(unit, torch.cat([h, skips.pop()], dim=1))
            if stage.sample is not None:
                h = stage.sample(h)
        if collect:
            return tokens
        out = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(out, self.patch_size) if self.patch_size > 1 else out
