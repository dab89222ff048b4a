"""Registers the meanface model when imported (name this module in TALKING_HEAD_MODELS)."""

from talking_head.baselines import registry

from meanface_model import SPEC

registry.register(SPEC)
