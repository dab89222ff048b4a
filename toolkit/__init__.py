"""Shared core of the talking-head toolkit: media I/O, the weights registry, the built-in sample and the CLI."""

__version__ = "0.1.0"
