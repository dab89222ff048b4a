"""Generated videos with known landmark motion, for tests that score against a preprocessed dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talking_head.metrics.pairing import dataset_videos
from talking_head.toolkit import media


def shifted_crop_videos(dataset: Path, folder: Path, pixels: int = 3, split: str = "test") -> Path:
    """The split's crop videos shifted right by `pixels`, with their audio, as `folder/<clip_id>.mp4`."""
    videos = dataset_videos(dataset, split, folder.with_name(folder.name + "-crops"))
    folder.mkdir(parents=True)
    for clip_id, video in videos.items():
        frames = np.roll(media.read_video(video), pixels, axis=2)
        media.write_video(folder / f"{clip_id}.mp4", frames, fps=25, audio=media.read_audio(video))
    return folder
