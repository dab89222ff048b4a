"""The leaderboard page's Videos section: each run's generated clips beside the reference clip they were scored
against, the clip's per-video values, and the MediaPipe meshes the landmark metrics saw.

:func:`collect` reads the run folders behind a board's rows and returns what the page embeds
(``page_data(...)["videos"]``); the page (``templates/videos.html``) plays each comparison in sync.

Where things come from, per run folder:

* ``per_video.csv``: one row per scored pair (``excluded`` rows are left out), its ``generated`` and
  ``reference`` paths as given to ``toolkit evaluate``, which may be relative to the folder it ran in, so a
  path is tried as it is, then against the run folder and each folder above it up to the runs root's parent,
  then the current directory; a run moved since falls back on its own copies (``generated/<video_id>.*``
  written by ``toolkit evaluate --model``, ``videos/reference/<dataset>/<clip_id>.*`` written by the pairing
  step). A video found nowhere is shown as "video not found: <path>".
* ``landmarks/<video_id>.npz`` (written by the runner when a metric consumed meshes): ``generated`` and
  ``reference``, (T, 478, 2) x / width and y / height of each side's decoded frames, NaN rows without a face,
  and ``fps``. Each becomes ``OUT/media/runs/<run>/<video_id>.mesh.js``: a script calling the page's
  :data:`REGISTER` with the coordinates quantised to uint16 (base64), which the page loads with a <script>
  tag when the overlay is switched on (Chromium refuses fetch/XHR of file:// URLs, not scripts).

Videos are referenced by paths relative to the page's folder; ``bundle=True`` copies them into
``OUT/media/`` so the folder plays on its own. A clip id's comparison groups every run that scored it
against the same reference file (by content), so two datasets that reuse an id stay apart.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import math
import os
import re
import shutil
import urllib.parse
from pathlib import Path
from typing import Any, Optional

import numpy as np

from talking_head.leaderboards.board import Leaderboard
from talking_head.leaderboards.columns import Column
from talking_head.leaderboards.runs import find_runs
from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.media import VIDEO_EXTENSIONS
from talking_head.toolkit.video_ids import parse_sample_id

MEDIA = "media"  # OUT/media/: the converted meshes and, with bundle=True, the videos
LANDMARKS = "landmarks"  # RUN/landmarks/<video_id>.npz
MESH_SUFFIX = ".mesh.js"
REGISTER = "leaderboardMesh"  # the page's global function a mesh file calls
NAN_CODE = 65535  # a uint16 coordinate that stands for "no face in this frame"
CONTOURS = ("face_oval", "lips", "right_eyebrow", "left_eyebrow", "right_eye", "left_eye", "right_iris", "left_iris")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


# -- run folders and their per_video.csv ------------------------------------------------------------------


def run_key(run_dir: Path, root: Path) -> str:
    """A run's name as its board row's provenance gives it ("run"): the path under the runs root."""
    return str(run_dir.relative_to(root)) if run_dir != root else run_dir.name


def run_folders(board: Leaderboard, root: Path) -> dict[int, Path]:
    """Board row index -> its run folder under `root` (rows of ours only, matched by provenance "run")."""
    by_key = {run_key(d, root): d for d in find_runs(root)}
    return {i: by_key[row.provenance["run"]] for i, row in enumerate(board.rows)
            if row.source == "run" and row.provenance.get("run") in by_key}


def scored_rows(run_dir: Path) -> tuple[list[dict[str, str]], list[str]]:
    """per_video.csv's rows that were scored (not ``excluded``) and its header; none when there is no file."""
    path = run_dir / "per_video.csv"
    if not path.is_file():
        return [], []
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if row.get("status", "scored") != "excluded"]
        return rows, list(reader.fieldnames or [])


def value_sources(columns: list[Column], header: list[str],
                  metrics_run: set[str]) -> list[tuple[Column, tuple[str, ...]]]:
    """For each board column, the per_video.csv columns its per-video value is read from: the column's own
    key when per_video.csv has it (``lse_c``, ``mouth_lmd``, ``psnr``), else the metric's ``video_means``
    (the columns its summary number is the mean of, e.g. Pose std's three angle columns, averaged). Set-level
    columns (FID, KID, FVD) have none."""
    found = []
    for column in columns:
        if column.key in header:
            found.append((column, (column.key,)))
        elif column.metric in metrics_run:
            means = _video_means(column.metric)
            source = means.get(column.key) or means.get(f"{column.key}_video_mean")
            names = (source,) if isinstance(source, str) else tuple(source or ())
            if names and all(name in header for name in names):
                found.append((column, names))
    return found


def _video_means(metric: str) -> dict[str, Any]:
    from talking_head.metrics import registry

    try:  # importing the class may import torch; a metric that cannot be imported has nothing to show
        return dict(getattr(registry.entry(metric).load(), "video_means", {}) or {})
    except Exception:  # noqa: BLE001 - any import failure means: no per-video mapping
        return {}


def _number(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def per_video_values(row: dict[str, str], sources: list[tuple[Column, tuple[str, ...]]],
                     decimals: dict[str, int]) -> list[dict[str, Any]]:
    """A generated clip's values, labelled: the mean of the column's per-video entries (NaN ones left out,
    as the bootstrap does), with the table's decimals for that column."""
    out = []
    for column, names in sources:
        numbers = [v for name in names if (v := _number(row.get(name))) is not None]
        value = sum(numbers) / len(numbers) if numbers else None
        out.append({"column": column.id, "label": f"{column.label} {column.arrow}".rstrip(), "unit": column.unit,
                    "value": value,
                    "text": "–" if value is None else f"{value:.{decimals.get(column.id, 3)}f}"})
    return out


# -- finding videos ---------------------------------------------------------------------------------------


def resolve_video(text: str, run_dir: Path, root: Path) -> Optional[Path]:
    """The file a per_video.csv path names: as it is when absolute, else under the run folder, each folder
    above it up to the runs root's parent (evaluate may have run there), then the current directory."""
    if not text:
        return None
    path = Path(text)
    if path.is_absolute():
        return path if path.is_file() else None
    bases = [run_dir, *[p for p in run_dir.parents if p == root.parent or root.parent in p.parents], Path.cwd()]
    return next((base / path for base in bases if (base / path).is_file()), None)


def _own_copy(run_dir: Path, kind: str, video_id: str) -> Optional[Path]:
    """The run folder's own copy of a video (a run moved since it was scored): ``generated/<video_id>.*`` or
    ``videos/reference/<dataset>/<clip_id>.*``."""
    if kind == "generated":
        candidates = [run_dir / "generated" / f"{video_id}{ext}" for ext in VIDEO_EXTENSIONS]
    else:
        clip = parse_sample_id(video_id)[0]
        folder = run_dir / "videos" / "reference"
        candidates = [p for ext in VIDEO_EXTENSIONS for p in sorted(folder.glob(f"*/{clip}{ext}"))]
    return next((p for p in candidates if p.is_file()), None)


def content_key(path: Path, cache: dict[Path, str]) -> str:
    """Which reference file this is, by content: its size and the sha256 of its first and last MiB (an mp4's
    header and sample tables are in them; hashing every reference of a large test set whole would take long)."""
    if path not in cache:
        size = path.stat().st_size
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            digest.update(handle.read(1 << 20))
            if size > 2 << 20:
                handle.seek(size - (1 << 20))
            digest.update(handle.read())
        cache[path] = f"{size}:{digest.hexdigest()}"
    return cache[path]


# -- files under OUT/media --------------------------------------------------------------------------------


def safe_parts(path: str) -> list[str]:
    """A '/'-separated name as path parts that stay inside their folder ("..", odd characters replaced)."""
    parts = [_UNSAFE.sub("_", part) for part in path.replace("\\", "/").split("/")]
    return [part if part.strip(".") else "_" for part in parts if part]


def url(path: Path, out_dir: Path) -> str:
    """`path` as a URL relative to the page's folder (percent-encoded, '/'-separated)."""
    return urllib.parse.quote(Path(os.path.relpath(path, out_dir)).as_posix())


def _stale(source: Path, dest: Path) -> bool:
    return not dest.is_file() or dest.stat().st_mtime < source.stat().st_mtime


def copy_file(source: Path, dest: Path) -> Path:
    """Copy `source` to `dest` atomically, unless `dest` is already a copy at least as new and as large."""
    if _stale(source, dest) or dest.stat().st_size != source.stat().st_size:
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
    return dest


def _quantised(points: np.ndarray) -> dict[str, Any]:
    """(T, 478, 2) coordinates as uint16 codes over the side's own [min, max] per axis (NaN: NAN_CODE),
    little-endian, base64: a 16-bit step of a face's extent is far below a pixel."""
    points = np.asarray(points, dtype=np.float64)
    finite = np.isfinite(points).all(axis=-1)
    low = np.nanmin(points[finite], axis=0) if finite.any() else np.zeros(2)
    span = np.maximum((np.nanmax(points[finite], axis=0) if finite.any() else np.ones(2)) - low, 1e-12)
    codes = np.full(points.shape, NAN_CODE, dtype="<u2")
    codes[finite] = np.rint((points[finite] - low) / span * (NAN_CODE - 1)).astype("<u2")
    return {"low": low.tolist(), "span": span.tolist(), "data": base64.b64encode(codes.tobytes()).decode("ascii")}


def write_mesh_js(npz: Path, dest: Path, key: str) -> bool:
    """Convert RUN/landmarks/<video_id>.npz into the mesh script `dest` (kept when it is newer than the npz);
    False when the npz cannot be read or holds no (T, points, 2) array."""
    if not _stale(npz, dest):
        return True
    try:
        with np.load(npz) as data:
            sides = {side: data[side] for side in ("generated", "reference") if side in data.files}
            fps = float(data["fps"])
    except (OSError, ValueError, KeyError):
        return False
    if not sides or any(a.ndim != 3 or a.shape[2] != 2 for a in sides.values()):
        return False
    mesh = {"fps": fps, "points": next(iter(sides.values())).shape[1],
            **{side: {"frames": len(a), **_quantised(a)} for side, a in sides.items()}}
    with atomic_path(dest) as tmp:
        tmp.write_text(f"{REGISTER}({json.dumps(key)}, {json.dumps(mesh)});\n", encoding="utf-8")
    return True


def connections() -> dict[str, list[list[int]]]:
    """MediaPipe's contour connections (face oval, lips, brows, eyes, irises) the overlay draws."""
    from talking_head.baselines.mesh_render import connections as mesh_connections

    return {part: edges.tolist() for part, edges in mesh_connections().items() if part in CONTOURS}


# -- the section's data -----------------------------------------------------------------------------------


def collect(board: Leaderboard, root: str | os.PathLike, out_dir: str | os.PathLike, decimals: dict[str, int],
            bundle: bool = False) -> dict[str, Any]:
    """What the page's Videos section shows: ``{"clips": [...], "register", "nan_code", "connections"}``, one clip
    per (clip id, reference file) with the reference and every run's generated videos of it, in board row
    order. Writes the mesh scripts under ``out_dir/media/runs/``; with `bundle` copies the videos there too."""
    out_dir = Path(out_dir).resolve()
    media = out_dir / MEDIA
    hashes: dict[Path, str] = {}
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    used: set[tuple[str, ...]] = set()  # run folders' names under media/runs/, each once
    # Matched as the board named them (a runs root of "." names its run ""), then resolved.
    for index, folder in sorted(run_folders(board, Path(root)).items()):
        run_dir, runs_root = folder.resolve(), Path(root).resolve()
        rows, header = scored_rows(run_dir)
        if not rows:
            continue
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        sources = value_sources(board.columns, header, set(summary.get("results", {})))
        run_parts = safe_parts(run_key(folder, Path(root))) or ["_"]
        if tuple(run_parts) in used:  # two names made alike by safe_parts ("a b", "a_b") keep apart
            run_parts[-1] += f".{index}"
        used.add(tuple(run_parts))
        for row in rows:
            video_id = row.get("video_id", "")
            if not safe_parts(video_id):
                continue  # not a row toolkit evaluate writes
            clip_id, sample = parse_sample_id(video_id)
            generated, reference = (resolve_video(row.get(kind, ""), run_dir, runs_root)
                                    or _own_copy(run_dir, kind, video_id) for kind in ("generated", "reference"))
            identity = content_key(reference, hashes) if reference else f"missing:{row.get('reference', '')}"
            group = groups.setdefault((clip_id, identity), {
                "id": clip_id, "fps": _number(row.get("fps")), "generated": [],
                "reference": {"path": reference, "text": row.get("reference", ""), "mesh": None}})
            parts = run_parts + safe_parts(video_id)
            target = media.joinpath("runs", *parts)
            mesh = None
            npz = run_dir / LANDMARKS / f"{video_id}.npz"
            script = target.with_name(target.name + MESH_SUFFIX)
            if npz.is_file() and write_mesh_js(npz, script, "/".join(parts)):
                mesh = {"key": "/".join(parts), "src": url(script, out_dir)}
                if group["reference"]["mesh"] is None:
                    group["reference"]["mesh"] = mesh  # the reference's mesh as the first run with one saw it
            if generated and bundle:
                generated = copy_file(generated, target.with_name(target.name + generated.suffix.lower()))
            group["generated"].append({
                "row": index, "label": board.rows[index].label, "video_id": video_id, "sample": sample,
                **_video(generated, row.get("generated", ""), out_dir), "mesh": mesh,
                "values": per_video_values(row, sources, decimals)})

    clips: list[dict[str, Any]] = []
    seen: dict[str, int] = {}  # clip id -> comparisons of it so far (several references share an id)
    for (clip_id, _), group in sorted(groups.items(), key=lambda item: item[0][0]):
        nth = seen[clip_id] = seen.get(clip_id, 0) + 1
        twins = sum(1 for other, _ in groups if other == clip_id)
        path = group["reference"]["path"]
        if path and bundle:
            name = safe_parts(clip_id)
            name[-1] += (f".{nth}" if twins > 1 else "") + path.suffix.lower()
            path = copy_file(path, media.joinpath("reference", *name))
        group["generated"].sort(key=lambda g: (g["row"], g["video_id"]))
        clips.append({"id": clip_id, "label": clip_id if twins == 1 else f"{clip_id} (reference {nth} of {twins})",
                      "fps": group["fps"], "generated": group["generated"],
                      "reference": {**_video(path, group["reference"]["text"], out_dir),
                                    "mesh": group["reference"]["mesh"]}})
    has_mesh = any(g["mesh"] for clip in clips for g in clip["generated"])
    return {"clips": clips, "register": REGISTER, "nan_code": NAN_CODE,
            "connections": connections() if has_mesh else {}}


def _video(path: Optional[Path], text: str, out_dir: Path) -> dict[str, Optional[str]]:
    """The page's reference to a video: its relative URL, or the path that was not found."""
    return {"src": url(path, out_dir), "missing": None} if path else {"src": None, "missing": text or "(no path)"}
