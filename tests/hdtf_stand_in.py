"""A stand-in HDTF download for tests: sample clips laid out and annotated in HDTF's formats under real names.

Two identities of the shipped test split (preprocessing/splits/hdtf_test.txt) and two of train, in the WDA
subset: its five annotation files (one interval a video from 00:00, the whole 512-px frame as its crop) and
the raw videos, one per name, as `toolkit preprocess --dataset hdtf` and `toolkit reproduce moda-hdtf` read them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

HDTF_TEST, HDTF_TRAIN = ("AdamSchiff", "AndyLevin"), ("NancyPelosi", "TimKaine")


def stand_in_hdtf(root: Path, sources, seconds: int) -> tuple[Path, Path]:
    """(annotation folder, raw video folder) under `root`, from four sample clips `sources` (toolkit.sample
    clips, at least `seconds` long); each video's annotated interval is its first `seconds`."""
    names = (*HDTF_TEST, *HDTF_TRAIN)
    assert len(sources) == len(names) and 0 < seconds < 60
    annotations, raw = root / "HDTF_dataset", root / "raw"
    annotations.mkdir(parents=True)
    raw.mkdir()
    files = {
        "WDA_video_url.txt": "".join(f"{n} https://www.youtube.com/watch?v=stand-in-{k:02d}\n" for k, n in enumerate(names)),
        "WDA_resolution.txt": "".join(f"{n}.mp4 512\n" for n in names),
        "WDA_annotion_time.txt": "".join(f"{n}.mp4 00:00-00:{seconds:02d}\n" for n in names),
        "WDA_crop_wh.txt": "".join(f"{n}_0.mp4 0 512 0 512\n" for n in names),
        "WDA_crop_ratio.txt": "".join(f"{n}_0.mp4 1.0\n" for n in names),
    }
    for name, text in files.items():
        (annotations / name).write_text(text, encoding="utf-8")
    for name, clip in zip(names, sources):
        shutil.copy(clip.video, raw / f"{name}.mp4")
    return annotations, raw
