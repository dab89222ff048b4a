"""How generated videos are named, so `toolkit evaluate` can pair them with their reference clips.

A generated video is named by the clip id it was generated for: ``<clip_id>.mp4``. A model that
draws several samples for one audio (``--num-samples K``) writes ``<clip_id>.sample<k>.mp4``,
k = 0..K-1: each sample is scored against the clip like a single video, and the samples of one
clip together give the cross-sample diversity.
"""

from __future__ import annotations

import re

SAMPLE_PATTERN = re.compile(r"^(?P<clip>.+)\.sample(?P<k>\d+)$")


def sample_id(clip_id: str, k: int) -> str:
    """The video id (file name without extension) of sample `k` of `clip_id`."""
    if k < 0:
        raise ValueError(f"sample index must be >= 0, got {k}")
    return f"{clip_id}.sample{k}"


def parse_sample_id(video_id: str) -> tuple[str, int | None]:
    """(clip id, sample index) of a video id; the index is None for a plain ``<clip_id>``."""
    match = SAMPLE_PATTERN.match(video_id)
    if match is None:
        return video_id, None
    return match["clip"], int(match["k"])
