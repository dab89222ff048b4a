"""A content-addressed cache of what a metric computed on one reference video.

Reference videos are scored again and again (every model evaluated on one test set meets the same
references), so a metric that scores the reference side on its own (the ground-truth anchor: NIQE of
the real frames, ...) keeps each video's result under ``<toolkit cache>/<name>/``, one JSON file per
key. The key is the sha256 of the video file's bytes together with everything else that changes the
result (the metric's config, weights, frame count), so a changed video or setting never reads a stale
entry. A damaged or unreadable entry is recomputed; a read-only cache never stops a run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from talking_head.toolkit import fileio, weights


def file_sha256(path: Any) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class ReferenceCache:
    """``get(video, facts)`` / ``put(video, facts, result)``; `facts`: JSON-able, everything but the video."""

    def __init__(self, name: str, enabled: bool = True) -> None:
        self.name = name
        self.enabled = enabled
        self.hits = self.misses = 0

    @property
    def folder(self) -> Path:
        return weights.cache_dir() / self.name

    def _entry(self, video: Any, facts: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
        key = json.loads(json.dumps({"video_sha256": file_sha256(video), **facts}, sort_keys=True, default=str))
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
        return self.folder / f"{digest}.json", key

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
