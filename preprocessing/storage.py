"""Finished clip folders -> a Hugging Face ``DatasetDict`` on disk, with a dataset card.

One row per clip, with the columns of :mod:`toolkit.dataset`, whose schema version is saved with it.
Everything a row needs is inside it (the crop video as mp4 bytes, the 16 kHz audio as int16 samples,
every per-frame array), so the saved directory can be moved or copied anywhere and
``toolkit.dataset.load(DIR)`` (or ``datasets.load_from_disk(DIR)``) still works.

Replacing a dataset is atomic. The new dataset (every split, ``dataset_dict.json``, the schema version, the
card) is written into a sibling folder ``DIR.tmp-<pid>`` together with everything else ``DIR`` holds (the
preprocess work folder ``DIR/work`` with its finished clips, ``failures.jsonl``, any other file), which is
hard-linked there (copied where the filesystem has no hard links), so ``DIR`` stays whole meanwhile. Then
the two folders are exchanged in one step (Linux ``renameat2(RENAME_EXCHANGE)``), and the old dataset, now
at the temporary name, is deleted. A process killed at any point leaves ``DIR`` holding the whole old or
the whole new dataset, never a mix, with its work folder (a rerun resumes); the next save deletes the
temporary folders a killed save left behind. Where the exchange is not available (not Linux, or a
filesystem without it) ``DIR`` is renamed aside and the new folder renamed into place: two steps, with a
moment without ``DIR``, after which ``DIR.old-<pid>`` is what a killed save leaves (still never a mix).
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, Features

from talking_head.toolkit import dataset as schema
from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.provenance import software_versions

SPLITS = ("train", "test")  # every dataset has both (an empty one is saved as one empty shard)
ADAPT_SPLIT = schema.ADAPT_SPLIT  # saved only when a clip is in it (preprocessing.adaptation)
# The files of a saved dataset in its folder (everything else there, e.g. work/ and failures.jsonl, is kept).
DATASET_FILES = (*SPLITS, ADAPT_SPLIT, "dataset_dict.json", schema.SCHEMA_FILE, "README.md", ".staging")
# The steps of a save, in order. For tests: with TALKING_HEAD_STORAGE_KILL_AT=<step> in the environment the
# process kills itself (SIGKILL) right after that step, as a crash there would.
KILL_AT_ENV = "TALKING_HEAD_STORAGE_KILL_AT"
STEPS = ("cleaned", "kept", "saved", "schema", "card", "synced", "swapped", "done")


UNKNOWN_SPEAKERS = ("", "unknown")  # a clip whose builder knows no speaker is its own identity


def identity(meta: dict) -> str:
    """Who a clip shows, for splitting: its speaker, or the clip itself when the builder knows no speaker."""
    speaker = str(meta.get("speaker") or "")
    return f"clip:{meta['clip_id']}" if speaker in UNKNOWN_SPEAKERS else f"speaker:{speaker}"


def assign_splits(metas: list[dict], test_fraction: float = 0.1) -> dict[str, str]:
    """clip_id -> split. Builder-given splits win; the rest by a stable hash of the clip's identity (its
    speaker), so no person is in both splits: a test score never measures a face the model trained on.

    The hash makes the split independent of which other clips exist or finished; when no identity
    falls into the test split and there are at least two, the identity with the smallest hash does.
    A set of one identity cannot be split without sharing it, so all its clips stay in train.
    """
    splits = {m["clip_id"]: m["split"] for m in metas if m.get("split") in (*SPLITS, ADAPT_SPLIT)}
    rest = [m for m in metas if m["clip_id"] not in splits]
    people = sorted({identity(m) for m in rest}, key=_unit_hash)
    chosen = {person for person in people if _unit_hash(person) < test_fraction}
    given = {identity(m) for m in metas if m["clip_id"] in splits}
    if people and not chosen and "test" not in splits.values() and len(set(people) | given) >= 2:
        chosen = {people[0]}
    for meta in rest:
        splits[meta["clip_id"]] = "test" if identity(meta) in chosen else "train"
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
            schema.FRAMES_DAMAGED: quality["frames_damaged"],
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
    adapt = [m for m in metas if splits[m["clip_id"]] == ADAPT_SPLIT]
    if adapt:
        parts[ADAPT_SPLIT] = Dataset.from_generator(_rows, gen_kwargs={"metas": adapt}, features=features,
                                                    cache_dir=str(cache))
    dataset = DatasetDict(parts)

    # The whole folder is written beside the destination, then swapped in (module docstring): a reader, or
    # a run after a crash, finds the whole old or the whole new dataset, never a mix.
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if out.is_symlink():  # swap the folder it points to (the link stays), not the link
        out = out.resolve()
    remove_leftovers(out)
    _step("cleaned")
    staging = out.parent / f"{out.name}.tmp-{os.getpid()}"
    staging.mkdir()
    _keep_others(out, staging, skip={Path(cache).resolve()})
    _step("kept")
    # An empty split (one speaker, or --test-fraction 0) would be saved as zero shards, which
    # load_from_disk cannot read back; one empty shard keeps its schema.
    dataset.save_to_disk(str(staging), num_shards={name: 1 for name, part in parts.items() if len(part) == 0})
    _step("saved")
    schema.write_schema_version(staging)
    _step("schema")
    write_card(staging, dataset, metas, parameters, failures)
    _step("card")
    _sync_tree(staging)
    _step("synced")
    old = swap_dirs(staging, out)
    _step("swapped")
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)  # not carried into the new folder; gone with the old one unless elsewhere
    _step("done")
    return dataset


def _step(name: str) -> None:
    """A step of a save is complete; a test's TALKING_HEAD_STORAGE_KILL_AT=<name> kills the process here."""
    assert name in STEPS, name
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


def remove_leftovers(out: Path) -> None:
    """Delete the temporary folders of saves into `out` that were killed (their process is gone).

    ``DIR.tmp-<pid>`` is a new dataset never swapped in, or an old one whose deletion was cut short;
    ``DIR.old-<pid>`` (fallback without an exchange) the old dataset renamed aside: put back where ``DIR``
    itself is missing, deleted otherwise.
    """
    out = Path(out)
    for kind in ("old", "tmp"):
        for leftover in sorted(out.parent.glob(f"{out.name}.{kind}-*")):
            pid = leftover.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or (int(pid) != os.getpid() and _alive(int(pid))):
                continue  # a save running now in another process
            if kind == "old" and not out.exists():
                os.rename(leftover, out)
            else:
                shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _keep_others(out: Path, staging: Path, skip: set[Path]) -> None:
    """Everything in `out` that is not the dataset's own files (work/, failures.jsonl, ...), hard-linked
    into `staging` (copied where hard links fail), so the folder swapped in holds it too."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for entry in sorted(out.iterdir()):
        if entry.name in DATASET_FILES or entry.resolve() in skip:
            continue
        target = staging / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry), target)
        elif entry.is_dir():
            shutil.copytree(entry, target, symlinks=True, copy_function=link,
                            ignore=lambda folder, names: [n for n in names if (Path(folder) / n).resolve() in skip])
        else:
            link(str(entry), str(target))


def _sync_tree(folder: Path) -> None:
    """Flush every file and folder under `folder` to disk, so the swap never publishes unwritten data."""
    for root, dirs, files in os.walk(folder):
        for name in (*files, *dirs, "."):
            path = os.path.join(root, name)
            if name != "." and os.path.islink(path):
                continue
            _fsync(path)


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap the two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # glibc < 2.28, or another libc without the wrapper
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV):
        return False  # the filesystem (or kernel) cannot exchange
    raise OSError(code, f"cannot swap {a} and {b}: {os.strerror(code)}")


def swap_dirs(new: Path, out: Path) -> Path:
    """Put folder `new` at `out` and return where the old `out` now is (to delete).

    One atomic exchange where the system has it; otherwise `out` is renamed aside to ``out.old-<pid>``
    and `new` renamed into place (recoverable by :func:`remove_leftovers`)."""
    if _exchange(new, out):
        _sync_parent(out)
        return new
    aside = out.parent / f"{out.name}.old-{os.getpid()}"
    os.rename(out, aside)
    os.rename(new, out)
    _sync_parent(out)
    return aside


def _sync_parent(path: Path) -> None:
    _fsync(path.parent)


def _fsync(path: str | Path) -> None:
    """Flush one file or folder to disk; a file that cannot be opened or synced is left as it is."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
