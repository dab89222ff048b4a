"""Finished clip folders -> a Hugging Face ``DatasetDict`` on disk, with a dataset card.

One row per clip. Everything a row needs is inside it (the crop video as mp4 bytes, the 16 kHz
audio as int16 samples, every per-frame array), so the saved directory can be moved or copied
anywhere and ``datasets.load_from_disk(DIR)`` still works.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
from datasets import Array2D, Array3D, Dataset, DatasetDict, Features, List, Value

from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.provenance import software_versions

SPLITS = ("train", "test")

BASE_FEATURES = {
    "dataset": Value("string"),
    "speaker": Value("string"),
    "clip_id": Value("string"),
    "fps": Value("float32"),
    "num_frames": Value("int32"),
    "sample_rate": Value("int32"),
    "video": Value("binary"),  # the re-encoded crop, H.264 + AAC mp4 bytes
    "audio": List(Value("int16")),  # 16 kHz mono samples, exactly num_frames / fps seconds
    "boxes": Array2D(shape=(None, 4), dtype="float32"),  # crop box per frame, x0 y0 x1 y1 in source pixels
    "landmarks": Array3D(shape=(None, 478, 3), dtype="float32"),  # MediaPipe mesh in crop pixels (NaN: no face)
    "canonical_landmarks": Array3D(shape=(None, 478, 3), dtype="float32"),  # frontalised, canonical units
    "pose": Array2D(shape=(None, 7), dtype="float32"),  # yaw pitch roll (deg), tx ty tz, scale
    "mel": Array2D(shape=(None, 80), dtype="float32"),  # Wav2Lip log-mel, 80 frames per second
    "face_fraction": Value("float32"),
    "mean_face_size": Value("float32"),  # crop box side / source frame height
    "frames_dropped": Value("int32"),  # source frames dropped by the frame-rate conversion
    "frames_without_face": Value("int32"),
    "face_track": Value("string"),  # JSON: how the face was chosen (tracks seen, main track)
    "source": Value("string"),  # JSON: original file, cut, split origin
}
OPTIONAL_FEATURES = {
    "landmarks68": Array3D(shape=(None, 68, 2), dtype="float32"),  # face-alignment FAN, crop pixels
}


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
    features = dict(BASE_FEATURES)
    with np.load(Path(metas[0]["_dir"]) / "arrays.npz") as arrays:
        if "landmarks68" in arrays.files:
            features["landmarks68"] = OPTIONAL_FEATURES["landmarks68"]
        if "audio_features" in arrays.files:
            features["audio_features"] = Array2D(shape=(None, arrays["audio_features"].shape[1]), dtype="float32")
    return Features(features)


def _rows(metas: list[dict]):
    for meta in metas:
        folder = Path(meta["_dir"])
        with np.load(folder / "arrays.npz") as arrays:
            row = {key: arrays[key] for key in arrays.files}
        quality = meta["quality"]
        row.update(
            dataset=meta["dataset"], speaker=meta["speaker"], clip_id=meta["clip_id"], fps=meta["fps"],
            num_frames=meta["num_frames"], sample_rate=meta["sample_rate"],
            video=(folder / "crop.mp4").read_bytes(),
            face_fraction=quality["face_fraction"], mean_face_size=quality["mean_face_size"],
            frames_dropped=quality["frames_dropped"], frames_without_face=quality["frames_without_face"],
            face_track=json.dumps(meta["face_track"], sort_keys=True),
            source=json.dumps(meta["source"], sort_keys=True),
        )
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
    write_card(out, dataset, metas, parameters, failures)
    return dataset


def write_card(out: Path, dataset: DatasetDict, metas: list[dict], parameters: dict, failures: list[dict]) -> None:
    """README.md: features, splits, counts, hours, every parameter and software version."""
    by_id = {m["clip_id"]: m for m in metas}
    lines = ["# Talking-head dataset", "", "Built by `toolkit preprocess` (talking-head-toolkit).", "", "## Splits", "",
             "| split | clips | speakers | frames | hours |", "|---|---|---|---|---|"]
    for split, ds in dataset.items():
        ids = ds["clip_id"]
        frames = sum(by_id[i]["num_frames"] for i in ids)
        hours = sum(by_id[i]["num_frames"] / by_id[i]["fps"] for i in ids) / 3600
        speakers = len({by_id[i]["speaker"] for i in ids})
        lines.append(f"| {split} | {len(ids)} | {speakers} | {frames} | {hours:.4f} |")
    lines += ["", f"Failed clips: {len(failures)} (listed in `failures.jsonl`).", "", "## Features", "",
              "| name | type |", "|---|---|"]
    for name, feature in next(iter(dataset.values())).features.items():
        lines.append(f"| `{name}` | `{feature}` |")
    lines += ["", "## Parameters", "", "```json", json.dumps(parameters, indent=2, sort_keys=True), "```", "",
              "## Software", "", "```json", json.dumps(software_versions(), indent=2, sort_keys=True), "```", "",
              "Load with `datasets.load_from_disk(PATH)`; the directory is self-contained and can be moved.", ""]
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
