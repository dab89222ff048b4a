"""MODA's fixes over its release as named switches, and the release's versions of the pieces they replace.

Each switch is one key of a stage config's ``fixes`` section (docs/moda-release-differences.md lists every
difference, with the release's file and line). The default of a key is the toolkit's fix; the key alone turns
that one fix off; ``faithful_to_release: true`` sets every key of the stage to the release's value. Configs
saved before a key existed read as the default, so old runs load unchanged.

Usage::

    from talking_head.baselines.moda.release import fixes

    switches = fixes(config)          # {"dropout": 0.0, "spec_augment": False, ...} for a motion config
"""

from __future__ import annotations

import numpy as np
import torch

SECTION = "fixes"

# stage -> key -> (the toolkit's fix, the release's value)
FIXES: dict[str, dict[str, tuple]] = {
    "motion": {
        "dropout": (0.0, 0.1),  # transformer layers and the PPE / PE outputs (networks.py:415, 434, 487, 511, 515)
        "spec_augment": (False, True),  # wav2vec2 time masking in training (wav2vec.py:110-128)
        "torso_loss": ("masked_mean", "release"),  # MaskedMSELoss's extra 1/54, unmasked velocity (losses.py:99-106)
        "means": ("speaker", "clip"),  # the identity code and target origin (audio2repr_dataset.py:47, 128-133)
    },
    "faco": {
        "batch": ("frames", "windows"),  # items of 600-frame windows, 32 a batch (configs/train/faco.yaml:3-5)
        "gan_scores": ("all", "last"),  # GANLoss scores input[-1], the batch's last item (losses.py:43-53)
    },
    "renderer": {
        "gram": ("image", "batch"),  # one Gram over the batch, / B*C*H*W (losses.py:126-135)
        "vgg_input": ("imagenet", "raw"),  # [-1, 1] straight into VGG19 (losses.py:76, 260-290)
        "tpe_inference_offset": (1.0, 0.0),  # idx/1000 at inference, 1 + idx/1000 in training (util.py:285-289)
    },
}
CHOICES = {"torso_loss", "means", "gram", "vgg_input", "spec_augment", "batch", "gan_scores"}  # keys that take one of their two values


def release_values(stage: str) -> dict:
    """The release's value of every switch of `stage`."""
    return {key: pair[1] for key, pair in FIXES.get(stage, {}).items()}


def fixes(config: dict) -> dict:
    """The switches in effect for a stage config: the defaults, the config's ``fixes`` section over them, and
    with ``faithful_to_release: true`` the release's values over everything. Raises ValueError on an unknown
    key or a value that is neither the fix nor the release's."""
    stage = config.get("stage")
    table = FIXES.get(stage, {})
    given = config.get(SECTION) or {}
    unknown = sorted(set(given) - set(table))
    if unknown:
        raise ValueError(f"{SECTION}: unknown keys {unknown} for stage {stage!r}; known: {sorted(table)}")
    values = {key: given.get(key, pair[0]) for key, pair in table.items()}
    for key in CHOICES & set(values):
        if values[key] not in table[key]:
            raise ValueError(f"{SECTION}.{key} must be {table[key][0]!r} (the fix) or {table[key][1]!r} "
                             f"(the release's), got {values[key]!r}")
    if not 0.0 <= float(values.get("dropout", 0.0)) < 1.0:
        raise ValueError(f"{SECTION}.dropout must be in [0, 1), got {values['dropout']!r}")
    if config.get("faithful_to_release"):
        values.update(release_values(stage))
    return values


# ------------------------------------------------------------------------------------------ motion
def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, release: bool) -> torch.Tensor:
    """The torso position loss of (B, T, D) predictions, `valid` (B,) 0/1 per window. Fixed: the mean squared
    error over the valid windows. Release (``MaskedMSELoss``): each window's mean is divided by D once more, so
    the term is the fixed one / D (1/54 for 18 shoulder points). A batch without a valid window gives 0 here;
    the release raises there (``div.float()`` on an int, losses.py:104-105), so this one case is not reproduced."""
    per_window = ((pred - target) ** 2).flatten(1).mean(1)
    if release:
        per_window = per_window / pred.shape[-1]
    return (per_window * valid).sum() / valid.sum().clamp_min(1.0)


def spec_augment(hidden: torch.Tensor, embedding: torch.Tensor, config) -> torch.Tensor:
    """wav2vec2's SpecAugment time masking as the release applies it in training (``wav2vec.py:110-128``): spans
    of ``config.mask_time_length`` frames of the projected features (B, T, C), started with probability
    ``config.mask_time_prob``, at least 2 spans (the release's ``min_masks=2``), replaced by the learned
    `embedding`. HF draws the spans from numpy's global generator; it is seeded here from torch's, so a seeded
    run stays reproducible, and restored afterwards."""
    from transformers.models.wav2vec2.modeling_wav2vec2 import _compute_mask_indices

    batch, frames, _ = hidden.shape
    state = np.random.get_state()
    np.random.seed(int(torch.randint(0, 2**31 - 1, ())))
    try:
        mask = _compute_mask_indices((batch, frames), float(config.mask_time_prob), int(config.mask_time_length),
                                     min_masks=2)
    finally:
        np.random.set_state(state)
    mask = torch.from_numpy(mask).to(hidden.device)[..., None]
    return torch.where(mask, embedding.to(hidden.dtype), hidden)


# ------------------------------------------------------------------------------------------ renderer
def batch_gram(features: torch.Tensor) -> torch.Tensor:
    """The release's ``gram_matrix``: one (N*C, N*C) Gram over the whole batch of (N, C, H, W) features, cross-image
    products included, normalised by N*C*H*W (``losses.py:126-135``)."""
    n, c, h, w = features.shape
    flat = features.reshape(n * c, h * w)
    return flat @ flat.t() / (n * c * h * w)
