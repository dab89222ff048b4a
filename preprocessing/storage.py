"""Finished clip folders -> a Hugging Face ``DatasetDict`` on disk, with a dataset card.

One row per clip, with the columns of :mod:`toolkit.dataset`, whose schema version is saved with it.
Everything a row needs is inside it (the crop video as mp4 bytes, the 16 kHz audio as int16 samples,
every per-frame array), so the saved directory can be moved or copied anywhere and
``toolkit.dataset.load(DIR)`` (or ``datasets.load_from_disk(DIR)``) still works.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, Features

from talking_head.toolkit import dataset as schema
from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.provenance import software_versions

SPLITS = ("train", "test")


def assign_splits(metas: list[dict], test_fraction: float = 0.1) -> dict[str, str]:
    """clip_id -> split. Builder-given splits win; the rest by a stable hash of the clip id.

    The hash makes the split independent of which other clips exist or finished; when no clip
    falls into the test split and there are at least two, the clip with the smallest hash does.
    """
    splits = {m["clip_id"]: m["split"] for m in metas if m.get("split") in SPLITS}
    rest = sorted((m["clip_id"] for m in metas if m["clip_id"] not in splits), key=_unit_hash)
    for clip_id in rest:
        splits[clip_id] = "test" if _unit_hash(clip_id) < test_fraction else "train"
    if rest and len(metas) >= 2 and "test" not in splits.values():
        splits[rest[0]] = "test"
    return splits


def _unit_hash(text: str) -> float:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16) / float(16**12)


def _features(metas: list[dict]) -> Features:
    with np.load(Path(metas[0]["_dir"]) / "arrays.npz") as arrays:
        landmarks68 = schema.LANDMARKS68 in arrays.files
        dim = arrays[schema.AUDIO_FEATURES].shape[1] if schema.AUDIO_FEATURES in arrays.files else None
    return schema.features(landmarks68=landmarks68, audio_features_dim=dim)


def _rows(metas: list[dict]):
    for meta in metas:
        folder = Path(meta["_dir"])
        with np.load(folder / "arrays.npz") as arrays:
            row = {key: arrays[key] for key in arrays.files}
        quality = meta["quality"]
        row.update({
            schema.DATASET: meta["dataset"], schema.SPEAKER: meta["speaker"], schema.CLIP_ID: meta["clip_id"],
            schema.FPS: meta["fps"], schema.NUM_FRAMES: meta["num_frames"], schema.SAMPLE_RATE: meta["sample_rate"],
            schema.VIDEO: (folder / "crop.mp4").read_bytes(),
            schema.FACE_FRACTION: quality["face_fraction"], schema.MEAN_FACE_SIZE: quality["mean_face_size"],
            schema.FRAMES_DROPPED: quality["frames_dropped"],
            schema.FRAMES_WITHOUT_FACE: quality["frames_without_face"],
            schema.FACE_TRACK: json.dumps(meta["face_track"], sort_keys=True),
            schema.SOURCE: json.dumps(meta["source"], sort_keys=True),
        })
        yield row


def build_dataset(
    metas: list[dict], work_dir: Path, out: Path, parameters: dict, failures: list[dict], test_fraction: float = 0.1
) -> DatasetDict:
    """Assemble finished clips into ``out`` (save_to_disk layout) and write the dataset card."""
    if not metas:
        raise ValueError("no clip was processed successfully; nothing to save")
    metas = sorted(metas, key=lambda m: m["clip_id"])
    for meta in metas:
        meta["_dir"] = str(Path(work_dir) / "clips" / meta["clip_id"])
    splits = assign_splits(metas, test_fraction)
    features = _features(metas)
    cache = Path(work_dir) / "arrow-cache"
    parts = {}
    for split in SPLITS:
        chosen = [m for m in metas if splits[m["clip_id"]] == split]
        if chosen:
            parts[split] = Dataset.from_generator(_rows, gen_kwargs={"metas": chosen}, features=features, cache_dir=str(cache))
        else:
            parts[split] = Dataset.from_dict({k: [] for k in features}, features=features)
    dataset = DatasetDict(parts)

    # Save next to the destination, then swap in: a reader never sees a half-written dataset.
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    # An empty split (one speaker, or --test-fraction 0) would be saved as zero shards, which
    # load_from_disk cannot read back; one empty shard keeps its schema.
    dataset.save_to_disk(str(staging), num_shards={name: 1 for name, part in parts.items() if len(part) == 0})
    for name in (*SPLITS, "dataset_dict.json"):
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        (staging / name).replace(target)
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    schema.write_schema_version(out)
    write_card(out, dataset, metas, parameters, failures)
    return dataset


def write_card(out: Path, dataset: DatasetDict, metas: list[dict], parameters: dict, failures: list[dict]) -> None:
    """README.md: features, splits, counts, hours, every parameter and software version."""
    by_id = {m["clip_id"]: m for m in metas}
    lines = ["# Talking-head dataset", "", "Built by `toolkit preprocess` (talking-head-toolkit).", "", "## Splits", "",
             "| split | clips | speakers | frames | hours |", "|---|---|---|---|---|"]
    for split, ds in dataset.items():
        ids = ds[schema.CLIP_ID]
        frames = sum(by_id[i]["num_frames"] for i in ids)
        hours = sum(by_id[i]["num_frames"] / by_id[i]["fps"] for i in ids) / 3600
        speakers = len({by_id[i]["speaker"] for i in ids})
        lines.append(f"| {split} | {len(ids)} | {speakers} | {frames} | {hours:.4f} |")
    lines += ["", f"Failed clips: {len(failures)} (listed in `failures.jsonl`).", "", "## Features", "",
              f"Schema version {schema.SCHEMA_VERSION} (`{schema.SCHEMA_FILE}`, read by `toolkit.dataset.load`).", "",
              "| name | type |", "|---|---|"]
    for name, feature in next(iter(dataset.values())).features.items():
        lines.append(f"| `{name}` | `{feature}` |")
    lines += ["", "## Parameters", "", "```json", json.dumps(parameters, indent=2, sort_keys=True), "```", "",
              "## Software", "", "```json", json.dumps(software_versions(), indent=2, sort_keys=True), "```", "",
              "Load with `datasets.load_from_disk(PATH)`; the directory is self-contained and can be moved.", ""]
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
