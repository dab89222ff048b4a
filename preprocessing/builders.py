"""Dataset builders by name: each turns its input into a list of ClipSource (and a list of problems).

``sample``: generates the built-in synthetic sample, then lists its clips (last clip of each
speaker is the test split). ``folder``: any directory tree of videos; speaker = parent folder unless
a CSV maps files to speakers. ``hdtf`` and ``voxceleb2``: the official layouts
(:mod:`preprocessing.hdtf`, :mod:`preprocessing.voxceleb2`).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Callable

from talking_head.preprocessing.clip import ClipSource
from talking_head.toolkit.media import VIDEO_EXTENSIONS



def sample_clips(out: Path, speakers: int = 3, clips: int = 3, seconds: float = 6.0, seed: int = 0) -> tuple[list[ClipSource], list[str]]:
    """Generate the built-in sample under ``out`` (reused when already there) and list its clips."""
    from talking_head.toolkit.sample import generate

    generated = generate(out, speakers=speakers, clips=clips, seconds=seconds, seed=seed, show_progress=False)
    last = {}
    for clip in generated:
        last[clip.speaker] = clip.clip_id
    sources = [
        ClipSource(dataset="sample", speaker=c.speaker, clip_id=c.clip_id, path=c.video,
                   split="test" if clips > 1 and last[c.speaker] == c.clip_id else "train",
                   extra={"ground_truth": str(c.ground_truth)})
        for c in generated
    ]
    return sources, []


def folder_clips(root: Path, speakers_csv: Path | None = None) -> tuple[list[ClipSource], list[str]]:
    """Every video under ``root``. Speaker = parent folder name, or the CSV's ``speaker`` column.

    The CSV has columns ``file`` (path relative to ``root``) and ``speaker``. Clip ids are the path
    relative to ``root`` with separators and odd characters replaced, so they are unique and stable.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: input folder does not exist")
    mapping: dict[str, str] = {}
    if speakers_csv is not None:
        with open(speakers_csv, newline="", encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                mapping[Path(row["file"]).as_posix()] = row["speaker"]
    sources, problems = [], []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS):
        rel = path.relative_to(root).as_posix()
        if mapping and rel not in mapping:
            problems.append(f"{path}: not listed in {speakers_csv}; skipped")
            continue
        speaker = mapping.get(rel) or (path.parent.name if path.parent != root else "unknown")
        clip_id = re.sub(r"[^\w.-]+", "_", str(Path(rel).with_suffix("")).replace("/", "__"))
        sources.append(ClipSource(dataset=root.name or "folder", speaker=speaker, clip_id=clip_id, path=path))
    if not sources and not problems:
        problems.append(f"{root}: no video files ({', '.join(VIDEO_EXTENSIONS)}) found")
    return sources, problems


def hdtf_clips(annotations: Path, raw_videos: Path, split_file: Path | None = None):
    from talking_head.preprocessing import hdtf

    return hdtf.hdtf_clips(annotations, raw_videos, split_file=split_file)


def voxceleb2_clips(root: Path, split: str | None = None):
    from talking_head.preprocessing import voxceleb2

    return voxceleb2.voxceleb2_clips(root, split=split)


BUILDERS: dict[str, Callable[..., tuple[list[ClipSource], list[str]]]] = {
    "sample": sample_clips,
    "folder": folder_clips,
    "hdtf": hdtf_clips,
    "voxceleb2": voxceleb2_clips,
}
