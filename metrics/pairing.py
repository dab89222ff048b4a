"""Which generated video is scored against which reference: pairing by id.

``generated`` and ``reference`` are each a folder of videos, one video, or a dataset saved by
``toolkit preprocess`` (its crop videos, split ``test`` by default). Videos pair by id: a folder
video's id is its path relative to the folder without the extension (``spk/clip.mp4`` -> ``spk/clip``;
a flat folder gives the file stem), a dataset video's id is its ``clip_id``. Ids on one side only are
returned apart (``unpaired``) and not scored. Several samples drawn for one clip's audio,
``<clip_id>.sample<k>`` (:mod:`toolkit.video_ids`), each pair with ``<clip_id>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from talking_head.metrics.base import VideoPair
from talking_head.toolkit import dataset as schema
from talking_head.toolkit import fileio, weights
from talking_head.toolkit.media import VIDEO_EXTENSIONS
from talking_head.toolkit.video_ids import parse_sample_id

PAIRING = "by id: folder path without extension, or dataset clip_id"


def video_cache(cache: Path | None = None) -> Path:
    """Where a dataset's crop videos (and stored meshes) are written for the runner: `cache`, or the toolkit's."""
    return Path(cache) if cache is not None else Path(weights.cache_dir()) / "evaluate-videos"


def is_dataset(path: Path) -> bool:
    """A folder written by ``toolkit preprocess`` (``datasets`` save_to_disk layout)."""
    return (Path(path) / "dataset_dict.json").is_file()


def folder_videos(folder: Path) -> dict[str, Path]:
    """Videos under `folder` by id (relative path without extension, '/'-separated)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            video_id = path.relative_to(folder).with_suffix("").as_posix()
            if video_id in found:
                raise ValueError(f"{folder}: two videos share the id {video_id!r} ({found[video_id].name}, {path.name})")
            found[video_id] = path
    return found


def dataset_videos(dataset_dir: Path, split: str, cache: Path) -> dict[str, Path]:
    """The crop videos of one split of a preprocessed dataset, written once to `cache` as mp4 files."""
    rows = schema.load_split(dataset_dir, split).select_columns([schema.CLIP_ID, schema.VIDEO])
    return {row[schema.CLIP_ID]: schema.write_row_video(row[schema.VIDEO], cache / f"{row[schema.CLIP_ID]}.mp4")
            for row in rows}


def dataset_meshes(dataset_dir: Path, split: str, cache: Path) -> dict[str, Path]:
    """The 478-point meshes ``toolkit preprocess`` stored for each crop video of one split, written once to
    `cache` as ``<clip_id>.meshes.npz`` (``landmarks`` (T, 478, 3) crop pixels, NaN without a face; ``fps``;
    ``size``: height and width of the crops; ``video_sha256``: the crop video they belong to), so the runner
    can skip MediaPipe on the reference side."""
    rows = schema.load_split(dataset_dir, split)
    cache = Path(cache) / Path(dataset_dir).name
    found: dict[str, Path] = {}
    arrays = None  # the landmark column, read only for clips not cached yet
    for i, row in enumerate(rows.select_columns([schema.CLIP_ID, schema.VIDEO])):
        clip_id, digest = row[schema.CLIP_ID], hashlib.sha256(row[schema.VIDEO]).hexdigest()
        path = found[clip_id] = cache / f"{clip_id}.meshes.npz"
        if stored_video_sha256(path) == digest:
            continue
        if arrays is None:
            arrays = rows.select_columns([schema.LANDMARKS, schema.FPS]).with_format("numpy")
        with schema.open_row_video(row[schema.VIDEO]) as reader:
            size = (reader.height, reader.width)
        path.parent.mkdir(parents=True, exist_ok=True)
        with fileio.atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, landmarks=np.asarray(arrays[i][schema.LANDMARKS], np.float32),
                         fps=np.float64(arrays[i][schema.FPS]), size=np.array(size, np.int64),
                         video_sha256=np.array(digest))
    return found


def stored_video_sha256(path: Path) -> str | None:
    """The ``video_sha256`` of a stored-meshes file, None when it is absent or unreadable."""
    try:
        with np.load(path) as stored:
            return str(stored["video_sha256"])
    except (OSError, ValueError, KeyError):
        return None


def _videos(source: Path, split: str, cache: Path) -> dict[str, Path]:
    source = Path(source)
    if is_dataset(source):
        return dataset_videos(source, split, cache / source.name)
    if source.is_file() and source.suffix.lower() in VIDEO_EXTENSIONS:
        return {source.stem: source}
    return folder_videos(source)


def pair_videos(generated: Path, reference: Path, split: str = "test", cache: Path | None = None
                ) -> tuple[list[VideoPair], dict[str, list[str]]]:
    """Pairs by id, and the ids found on one side only (``{"generated_only": [...], "reference_only": [...]}``)."""
    cache = video_cache(cache)
    gen = _videos(generated, split, cache / "generated")
    ref = _videos(reference, split, cache / "reference")
    if not gen:
        raise ValueError(f"{generated}: no videos found ({', '.join(VIDEO_EXTENSIONS)})")
    if not ref:
        raise ValueError(f"{reference}: no videos found ({', '.join(VIDEO_EXTENSIONS)})")
    pairs, generated_only = [], []
    for video_id in sorted(gen):
        clip, sample = parse_sample_id(video_id)
        if video_id in ref:
            pairs.append(VideoPair(video_id, gen[video_id], ref[video_id]))
        elif sample is not None and clip in ref:  # one of several samples drawn for the clip's audio
            pairs.append(VideoPair(video_id, gen[video_id], ref[clip], sample=sample))
        else:
            generated_only.append(video_id)
    matched = {pair.clip_id for pair in pairs}
    unpaired = {"generated_only": generated_only, "reference_only": sorted(ref.keys() - matched)}
    if not pairs:
        raise ValueError(
            f"no video of {generated} has a reference of the same id in {reference} "
            f"(e.g. {sorted(gen)[:3]} vs {sorted(ref)[:3]}); ids are paths relative to the folder without extension"
        )
    return pairs, unpaired
