"""The built-in synthetic talking-head sample: a real face photo animated by procedural speech.

It is the embedded default for the demo and the end-to-end tests; it is generated on demand and
never committed. See :mod:`toolkit.sample.generate` for the files it writes.
"""

from talking_head.toolkit.sample.generate import SampleClip, generate, load_sample

__all__ = ["SampleClip", "generate", "load_sample"]
