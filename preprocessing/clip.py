"""What a dataset builder hands to the per-clip pipeline: one source clip and how to cut it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ClipSource:
    """One clip to preprocess.

    `start`/`end` cut a clip out of a longer video (seconds; None = from the start / to the end).
    `crop_box` is a fixed square (x, y, w, h) in pixels of a frame `crop_box_height` pixels tall,
    e.g. HDTF's official crop, used instead of the tracked face box (scaled if the actual video has
    another height). `split` is set when the builder knows it (official lists); otherwise the
    runner assigns one deterministically by speaker.
    """

    dataset: str
    speaker: str
    clip_id: str
    path: Path
    start: float | None = None
    end: float | None = None
    crop_box: tuple[int, int, int, int] | None = None
    crop_box_height: int | None = None
    split: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        return d
