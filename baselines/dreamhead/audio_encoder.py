"""DreamHead A2L's trainable audio encoder over per-frame audio contexts (:mod:`baselines.audio`).

DreamHead's figure shows a raw-waveform audio window A^[i-l:i]; the feature extractor is not published
(docs/reference-models.md#what-is-not-published). The front-ends (``audio.encoder``: mel, wav2vec2,
hubert) are in :mod:`baselines.audio`;
the speech models are frozen here (MODA fine-tunes its transformer; frozen is the assumption for
DreamHead: cheap, and no audio model weights in our checkpoints).
"""

from __future__ import annotations

import torch
from torch import nn

from talking_head.baselines.audio import (
    ENCODERS, AudioFrontEnd, AudioInputError, check_audio, frame_contexts, mel_context_length, mel_contexts,
)
from talking_head.toolkit.audio_features import MAX_ABS_VALUE

__all__ = ["ENCODERS", "AudioEncoder", "AudioFrontEnd", "AudioInputError", "check_audio", "frame_contexts",
           "mel_context_length", "mel_contexts"]


class AudioEncoder(nn.Module):
    """Trainable per-frame encoder: (B, T, L, D) contexts -> (B, T, hidden).

    Each of the L context steps is projected to `step_width` channels, the L steps are concatenated (their
    order is time, so position within the context is kept) and mapped to `hidden` by a 2-layer MLP.
    Mel values are scaled from [-4, 4] to [-1, 1] (their level carries loudness, so no per-frame
    normalisation); speech features are layer-normalised per step (their scale differs by layer).
    """

    def __init__(self, encoder: str, context: tuple[int, int], hidden: int, step_width: int):
        super().__init__()
        length, width = context
        self.encoder = encoder
        self.norm = nn.Identity() if encoder == "mel" else nn.LayerNorm(width, elementwise_affine=False)
        self.step = nn.Sequential(nn.Linear(width, step_width), nn.GELU())
        self.mlp = nn.Sequential(nn.Linear(length * step_width, hidden), nn.GELU(), nn.Linear(hidden, hidden))

    def forward(self, contexts: torch.Tensor) -> torch.Tensor:
        x = contexts / MAX_ABS_VALUE if self.encoder == "mel" else self.norm(contexts)
        x = self.step(x)
        return self.mlp(x.flatten(-2))
