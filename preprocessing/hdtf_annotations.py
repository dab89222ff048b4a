"""HDTF's annotation files, parsed strictly: every malformed line is an error naming the file and line.

Usage::

    from talking_head.preprocessing.hdtf_annotations import read_annotations

    annotations = read_annotations(Path("HDTF/HDTF_dataset"))    # the five file kinds of the three subsets
    video = annotations.videos[0]                                  # VideoAnnotation, in file order
    video.subset, video.name, video.intervals, video.url           # "RD", "Radio11", ((30.0, 60.0), ...), ...
    annotations.clip_names()[0]                                    # "RD_Radio11_000"

The file kinds and the quirks of the published files are described in :mod:`preprocessing.hdtf`, which
turns the annotations into clips, splits and downloads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from talking_head.toolkit.media import VIDEO_EXTENSIONS

SUBSETS = ("RD", "WDA", "WRA")

Crop = tuple[int, int, int, int]  # x, y, w, h


def clip_name(subset: str, video: str, k: int) -> str:
    """``WRA``, ``AdamKinzinger2``, 1 -> ``WRA_AdamKinzinger2_001`` (universome/HDTF naming, k zero-based)."""
    return f"{subset}_{video}_{k:03d}"


class AnnotationError(ValueError):
    """A malformed line in an HDTF annotation or split file; the message names the file and line."""

    def __init__(self, path: Path, line_number: int | None, reason: str, line: str | None = None) -> None:
        where = f"{path}:{line_number}" if line_number else str(path)
        text = f"{where}: {reason}"
        if line is not None:
            text += f": {line.strip()!r}"
        super().__init__(text)



# ----------------------------------------------------------------------------- line-level parsing


def _records(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """(line number, fields, raw line) for every non-blank, non-comment line; BOMs removed."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace("\ufeff", "").strip()
        if line and not line.startswith("#"):
            yield number, line.split(), raw


def video_name(token: str) -> str:
    """``AdamSchiff.mp4`` or ``AdamSchiff`` -> ``AdamSchiff``."""
    for ext in VIDEO_EXTENSIONS:
        if token.lower().endswith(ext):
            return token[: -len(ext)]
    return token


# A video name becomes a file name and a yt-dlp output template: letters, digits, "_", "-" and single dots only,
# so no path separator, "..", template field ("%(title)s") or option-like leading "-" comes in from a file.
_SAFE_NAME = re.compile(r"\w(?:[\w-]|\.(?!\.))*")


def safe_video_name(token: str, path: Path, number: int, raw: str) -> str:
    """:func:`video_name` of an annotation token, or :class:`AnnotationError` naming the line when the name could
    reach outside its folder or into a download template."""
    name = video_name(token)
    if _SAFE_NAME.fullmatch(name) is None:
        raise AnnotationError(path, number, f"video name {name!r} may hold only letters, digits, '_', '-' and single "
                                            "'.' (no path separators, '..' or template characters)", raw)
    return name


_CLIP_TOKEN = re.compile(r"(?P<video>.+)_(?P<index>\d+)")
_TIME = re.compile(r"(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)")


def _parse_time(text: str) -> float:
    """``mm:ss``, ``hh:mm:ss`` (seconds may have decimals) -> seconds; ValueError if malformed."""
    match = _TIME.fullmatch(text)
    if match is None:
        raise ValueError(f"time {text!r} is not mm:ss or hh:mm:ss")
    hours, minutes, seconds = int(match["h"] or 0), int(match["m"]), float(match["s"])
    if seconds >= 60 or (match["h"] is not None and minutes >= 60):
        raise ValueError(f"time {text!r} has a field out of range")
    return hours * 3600 + minutes * 60 + seconds


def _parse_interval(text: str) -> tuple[float, float]:
    start_text, sep, end_text = text.partition("-")
    if not sep:
        raise ValueError(f"interval {text!r} is not start-end")
    start, end = _parse_time(start_text), _parse_time(end_text)
    if end <= start:
        raise ValueError(f"interval {text!r} ends before it starts")
    return start, end


def _unique(table: dict, key, value, seen_at: dict, path: Path, number: int, raw: str) -> None:
    if key in table:
        raise AnnotationError(path, number, f"duplicate entry (first at line {seen_at[key]})", raw)
    table[key] = value
    seen_at[key] = number


# ----------------------------------------------------------------------------- the five file kinds


def parse_video_urls(path: Path) -> dict[str, str]:
    """``*_video_url.txt``: video name -> YouTube URL."""
    urls: dict[str, str] = {}
    seen: dict = {}
    for number, fields, raw in _records(path):
        if len(fields) != 2 or not fields[1].startswith("http"):
            raise AnnotationError(path, number, "expected 'video_name url'", raw)
        _unique(urls, safe_video_name(fields[0], path, number, raw), fields[1], seen, path, number, raw)
    return urls


def parse_resolutions(path: Path) -> dict[str, int]:
    """``*_resolution.txt``: video name -> frame height the crop boxes refer to (0 = unknown)."""
    heights: dict[str, int] = {}
    seen: dict = {}
    for number, fields, raw in _records(path):
        if len(fields) != 2 or not fields[1].isdigit():
            raise AnnotationError(path, number, "expected 'video.mp4 height'", raw)
        _unique(heights, safe_video_name(fields[0], path, number, raw), int(fields[1]), seen, path, number, raw)
    return heights


def parse_annotation_times(path: Path) -> dict[str, tuple[tuple[float, float], ...]]:
    """``*_annotion_time.txt``: video name -> its talking intervals (start, end) in seconds, in order."""
    intervals: dict[str, tuple[tuple[float, float], ...]] = {}
    seen: dict = {}
    for number, fields, raw in _records(path):
        if len(fields) < 2:
            raise AnnotationError(path, number, "expected 'video.mp4 mm:ss-mm:ss [mm:ss-mm:ss ...]'", raw)
        try:
            parsed = tuple(_parse_interval(text) for text in fields[1:])
        except ValueError as exc:
            raise AnnotationError(path, number, str(exc), raw) from None
        _unique(intervals, safe_video_name(fields[0], path, number, raw), parsed, seen, path, number, raw)
    return intervals


def _clip_key(token: str, path: Path, number: int, raw: str) -> tuple[str, int]:
    match = _CLIP_TOKEN.fullmatch(safe_video_name(token, path, number, raw))
    if match is None:
        raise AnnotationError(path, number, "expected a clip name 'video_k.mp4'", raw)
    return match["video"], int(match["index"])


def parse_crop_wh(path: Path) -> dict[tuple[str, int], Crop]:
    """``*_crop_wh.txt``: (video name, k as written) -> (x, y, w, h). Columns are ``x w y h``."""
    crops: dict[tuple[str, int], Crop] = {}
    seen: dict = {}
    for number, fields, raw in _records(path):
        if len(fields) != 5 or not all(f.isdigit() for f in fields[1:]):
            raise AnnotationError(path, number, "expected 'video_k.mp4 x w y h' (non-negative integers)", raw)
        x, w, y, h = (int(f) for f in fields[1:])
        if w == 0 or h == 0:
            raise AnnotationError(path, number, "crop width and height must be positive", raw)
        _unique(crops, _clip_key(fields[0], path, number, raw), (x, y, w, h), seen, path, number, raw)
    return crops


def parse_crop_ratios(path: Path) -> dict[tuple[str, int], float]:
    """``*_crop_ratio.txt``: (video name, k as written) -> zoom of the landmark-union crop."""
    ratios: dict[tuple[str, int], float] = {}
    seen: dict = {}
    for number, fields, raw in _records(path):
        try:
            if len(fields) != 2:
                raise ValueError
            ratio = float(fields[1])
        except ValueError:
            raise AnnotationError(path, number, "expected 'video_k.mp4 ratio'", raw) from None
        if not ratio > 0:
            raise AnnotationError(path, number, "crop ratio must be positive", raw)
        _unique(ratios, _clip_key(fields[0], path, number, raw), ratio, seen, path, number, raw)
    return ratios


# ----------------------------------------------------------------------------- all files together


@dataclass(frozen=True)
class VideoAnnotation:
    """One annotated source video of the official lists."""

    subset: str
    name: str
    intervals: tuple[tuple[float, float], ...]
    resolution: int | None  # None: not listed, or listed as 0
    url: str | None


@dataclass
class HdtfAnnotations:
    """The parsed annotation files: videos in file order, crops keyed by (subset, video, k zero-based)."""

    videos: list[VideoAnnotation] = field(default_factory=list)
    crops: dict[tuple[str, str, int], Crop] = field(default_factory=dict)
    crop_ratios: dict[tuple[str, str, int], float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def clip_names(self) -> list[str]:
        """Every annotated interval's clip name, in file order."""
        return [clip_name(v.subset, v.name, k) for v in self.videos for k in range(len(v.intervals))]


def _annotation_file(folder: Path, subset: str, kind: str) -> Path:
    path = folder / f"{subset}_{kind}.txt"
    if kind == "annotion_time" and not path.is_file() and (folder / f"{subset}_annotation_time.txt").is_file():
        return folder / f"{subset}_annotation_time.txt"
    return path


def _index_base(keys: Sequence[tuple[str, int]], counts: dict[str, int]) -> int:
    """0 for the official zero-based ``video_k`` names; 1 when a file is visibly one-based."""
    indices = [k for _, k in keys]
    if not indices or 0 in indices:
        return 0
    return 1 if any(k == counts.get(video) for video, k in keys) else 0


def _rebase(table: dict, subset: str, counts: dict[str, int], path: Path, problems: list[str]) -> dict:
    base = _index_base(list(table), counts)
    rebased = {}
    for (video, k), value in table.items():
        if video not in counts:
            problems.append(f"{path.name}: {video}_{k} refers to a video without annotated intervals; ignored")
        elif not 0 <= k - base < counts[video]:
            problems.append(f"{path.name}: {video}_{k} has no matching interval ({counts[video]} annotated); ignored")
        else:
            rebased[(subset, video, k - base)] = value
    return rebased


def _annotation_folder(annotation_dir: Path) -> Path:
    folder = Path(annotation_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: HDTF annotation folder does not exist")
    nested = folder / "HDTF_dataset"  # the root of a clone of MRzzm/HDTF
    return nested if nested.is_dir() and not any(folder.glob("*_annotion_time.txt")) else folder


def read_annotations(annotation_dir: Path, subsets: Sequence[str] = SUBSETS) -> HdtfAnnotations:
    """Parse the annotation files of ``subsets`` in ``annotation_dir`` (or its ``HDTF_dataset/``).

    A subset without its ``*_annotion_time.txt`` is skipped and reported; a missing resolution,
    crop, ratio or URL file is reported once. Raises FileNotFoundError when no subset is there,
    AnnotationError for a malformed line.
    """
    folder = _annotation_folder(annotation_dir)
    result = HdtfAnnotations()
    found_any = False
    for subset in subsets:
        if subset not in SUBSETS:
            raise ValueError(f"unknown HDTF subset {subset!r}; choose from {', '.join(SUBSETS)}")
        times_path = _annotation_file(folder, subset, "annotion_time")
        if not times_path.is_file():
            result.problems.append(f"{subset}: {times_path.name} not found in {folder}; subset skipped")
            continue
        found_any = True
        intervals = parse_annotation_times(times_path)
        tables: dict[str, dict] = {}
        for kind, parser in (("resolution", parse_resolutions), ("video_url", parse_video_urls),
                             ("crop_wh", parse_crop_wh), ("crop_ratio", parse_crop_ratios)):
            path = _annotation_file(folder, subset, kind)
            if path.is_file():
                tables[kind] = parser(path)
            else:
                tables[kind] = {}
                result.problems.append(f"{subset}: {path.name} not found in {folder}; its values are missing")
        counts = {video: len(spans) for video, spans in intervals.items()}
        for kind, target in (("crop_wh", result.crops), ("crop_ratio", result.crop_ratios)):
            path = _annotation_file(folder, subset, kind)
            target.update(_rebase(tables[kind], subset, counts, path, result.problems))
        for video, spans in intervals.items():
            height = tables["resolution"].get(video) or None
            result.videos.append(VideoAnnotation(subset, video, spans, height, tables["video_url"].get(video)))
    if not found_any:
        raise FileNotFoundError(f"{folder}: no HDTF annotation files (*_annotion_time.txt) found")
    return result


