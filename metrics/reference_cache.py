"""A content-addressed cache of what a metric computed on one reference video.

Reference videos are scored again and again (every model evaluated on one test set meets the same
references), so a metric that scores the reference side on its own (the ground-truth anchor: NIQE of
the real frames, ...) or runs a network on the reference frames (FID/KID's Inception rows, E-FID's
expression coefficients, CSIM's ArcFace embeddings) keeps each video's result under
``<toolkit cache>/<name>/``, one file per key: JSON (``get``/``put``) or named float arrays
(``get_arrays``/``put_arrays``, an ``.npz`` with the key beside them). The key is the sha256 of the video
file's bytes together with everything else that changes the result (the metric's config, weights, frame
count, frame rate), so a changed video or setting never reads a stale entry. A damaged or unreadable
entry is recomputed; a read-only cache never stops a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

from talking_head.toolkit import fileio, weights

_DIGESTS: dict[tuple[Any, ...], str] = {}  # (path, inode, size, mtime) -> sha256: each metric asks per pair


def file_sha256(path: Any) -> str:
    stat = os.stat(path)
    memo = (os.path.realpath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if memo not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _DIGESTS[memo] = digest.hexdigest()
    return _DIGESTS[memo]


class ReferenceCache:
    """``get(video, facts)`` / ``put(video, facts, result)``; `facts`: JSON-able, everything but the video.
    ``get_arrays`` / ``put_arrays``: the same for a dict of numpy arrays."""

    def __init__(self, name: str, enabled: bool = True) -> None:
        self.name = name
        self.enabled = enabled
        self.hits = self.misses = 0

    @property
    def folder(self) -> Path:
        return weights.cache_dir() / self.name

    def _entry(self, video: Any, facts: dict[str, Any], suffix: str = ".json") -> tuple[Path, dict[str, Any]]:
        key = json.loads(json.dumps({"video_sha256": file_sha256(video), **facts}, sort_keys=True, default=str))
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.folder / f"{digest}{suffix}", key

    def get(self, video: Any, facts: dict[str, Any]) -> Optional[Any]:
        if not self.enabled:
            return None
        file, key = self._entry(video, facts)
        try:
            entry = json.loads(file.read_text(encoding="utf-8"))
            if entry.get("key") == key and "result" in entry:
                self.hits += 1
                return entry["result"]
        except (OSError, ValueError, AttributeError):
            pass  # absent or damaged: the caller computes it
        return None

    def put(self, video: Any, facts: dict[str, Any], result: Any) -> None:
        if not self.enabled:
            return
        self.misses += 1
        file, key = self._entry(video, facts)
        try:
            fileio.write_json(file, {"key": key, "result": result})
        except OSError:
            pass  # read-only cache: scored again next time

    def get_arrays(self, video: Any, facts: dict[str, Any]) -> Optional[dict[str, np.ndarray]]:
        """The arrays :meth:`put_arrays` stored under this video and these facts, or None (counted a hit)."""
        if not self.enabled:
            return None
        try:
            file, key = self._entry(video, facts, ".npz")
            with np.load(file, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
            if json.loads(str(arrays.pop("__key__"))) == key:
                self.hits += 1
                return arrays
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # no such video file, no entry, or a damaged one: computed again
        return None

    def put_arrays(self, video: Any, facts: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        if not self.enabled:
            return
        self.misses += 1
        try:
            file, key = self._entry(video, facts, ".npz")
            file.parent.mkdir(parents=True, exist_ok=True)
            with fileio.atomic_path(file) as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, __key__=np.array(json.dumps(key, sort_keys=True)), **arrays)
        except OSError:
            pass  # read-only cache: computed again next time
