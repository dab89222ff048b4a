"""Adversarial training inside the shared one-optimizer loop (:mod:`baselines.training`).

A stage with a discriminator returns G's and D's losses summed from one ``training_loss`` call:

* G's adversarial terms run the discriminator through :func:`frozen_call` (its parameters detached), so
  their gradients reach only the generator;
* D's terms see the generated sample detached, so their gradients reach only the discriminator.

One backward pass then gives each network exactly the gradient of its own loss, and one optimizer step
updates both: simultaneous updates rather than pix2pix's alternating ones (D then G), the usual
simplification when one optimizer drives both (same lr and betas for G and D, as in MODA's configs).
"""

from __future__ import annotations

import torch
from torch import nn


def frozen_call(module: nn.Module, *inputs, **kwargs):
    """``module(*inputs)`` with its parameters detached: gradients flow to the inputs only."""
    params = {name: p.detach() for name, p in module.named_parameters()}
    return torch.func.functional_call(module, params, inputs, kwargs)


def lsgan(prediction: torch.Tensor, real: bool) -> torch.Tensor:
    """LSGAN's least-squares loss (Mao et al. 2017): mean (D(x) - 1)^2 for real targets, D(x)^2 for fake."""
    return ((prediction - (1.0 if real else 0.0)) ** 2).mean()
