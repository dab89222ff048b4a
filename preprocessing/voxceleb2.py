"""VoxCeleb2 (Chung et al., Interspeech 2018): the official mp4 release -> one ClipSource per utterance.

Usage::

    from pathlib import Path
    from talking_head.preprocessing.voxceleb2 import voxceleb2_clips

    clips, problems = voxceleb2_clips(Path("vox2"), split="test")   # the extracted official archives
    problems.warnings                                              # notes about kept clips (not failures)
    clips[0].clip_id, clips[0].speaker, clips[0].split             # "id00017_<video_id>_00001", "id00017", "test"

Layout and metadata
-------------------

Layout of the official archives once extracted (``vox2_dev_mp4_parta*`` and ``vox2_test_mp4.zip``;
the txt archives ``vox2_{dev,test}_txt.zip`` mirror it with ``txt`` for ``mp4``)::

    root/dev/mp4/id00012/21Uxsk56VDQ/00001.mp4     224x224 face track, 25 fps, with audio
    root/dev/txt/id00012/21Uxsk56VDQ/00001.txt     its metadata (also accepted next to the mp4)
    root/test/mp4/id00017/...

``root/{dev,test}/idXXXXX/...``, ``root/mp4/idXXXXX/...`` and ``root/idXXXXX/...`` are accepted too.

Split
-----

VoxCeleb2's official split is by identity: 5,994 dev and 118 test identities, no identity in both.
Every clip of an identity gets that identity's split, decided in this order:

1. ``vox2_meta.csv`` (``root/vox2_meta.csv`` or ``meta_csv=``), when present and listing the identity.
   Its lines look like (the official copy pads the cells with spaces; copies on GitHub also have them
   stripped)::

       VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set
       id00012 ,n000012 ,m ,dev
       id00017 ,n000017 ,m ,test

2. The official test identity list shipped with the toolkit, ``splits/voxceleb2_test_identities.txt``
   (the 118 test rows of the official meta file; its header names the source), so the official split
   holds without ``vox2_meta.csv``: a VoxCeleb2 identity (``id0XXXX``) listed there is test, any other
   is dev. (The meta file lists two more test rows, id04170 and id05348, that have no released clips;
   they are test too.)
3. The ``dev``/``test`` folder, for an identity that is not a VoxCeleb2 one.
4. Otherwise the split is made up, by identity, never by clip: test iff
   ``int(sha256("voxceleb2-identity-split-v1:" + identity).hexdigest()[:8], 16) % 100 < 10``
   (:func:`identity_is_test`), with a warning.

A ``dev``/``test`` folder that disagrees with 1 or 2 is a warning and the list wins. Dev clips get
``split="train"`` (the toolkit's name), test clips ``"test"``; ``extra["official_split"]`` keeps
``dev``/``test`` (None for a made-up split). Clip id: ``idXXXXX_<video_id>_<NNNNN>``, speaker ``idXXXXX``.

Problems and warnings
---------------------

:func:`voxceleb2_clips` returns ``(clips, problems)``. ``problems`` is a list (a :class:`BuildProblems`)
of what went wrong (no clips found); the notes about clips that are kept (no txt metadata, a malformed
txt, a folder that disagrees with the list, a made-up split) are in ``problems.warnings``, not in the
list, so a caller that counts the list as failures does not count them.

Per-utterance txt (tab-separated after the colons; boxes are normalised to the frame size in
VoxCeleb2, pixels in VoxCeleb1; frame numbers assume 25 fps)::

    Identity  : \tid00012
    Reference : \t_raOc3-IRsw          (YouTube id of the source video)
    Offset    : \t2                    (SyncNet audio-video offset, frames)
    FV Conf   : \t20.230\t(1)          (face verification confidence)
    ASD Conf  : \t2.765                (active speaker detection confidence)

    FRAME \tX \tY \tW \tH
    000349 \t0.319 \t0.067 \t0.424 \t0.753

It goes into ``extra`` (reference video, offset, confidences, number and range of frames). A
malformed txt is one warning; the clip is kept without the metadata.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from talking_head.preprocessing.clip import ClipSource

__all__ = [
    "BuildProblems",
    "VoxTxt",
    "VoxTxtError",
    "identity_is_test",
    "official_split_of",
    "official_test_identities",
    "parse_vox_txt",
    "read_identity_list",
    "read_vox2_meta",
    "voxceleb2_clips",
]

OFFICIAL_SPLITS = ("dev", "test")
TOOLKIT_SPLIT = {"dev": "train", "test": "test"}
META_CSV = "vox2_meta.csv"
SPLITS_DIR = Path(__file__).resolve().parent / "splits"
TEST_IDENTITIES_FILE = SPLITS_DIR / "voxceleb2_test_identities.txt"
# Test rows of the official vox2_meta.csv with no clips in the released archives (not in the shipped list).
META_ONLY_TEST_IDENTITIES = frozenset({"id04170", "id05348"})
SPLIT_SALT = "voxceleb2-identity-split-v1"
TEST_PERCENT = 10
_IDENTITY = re.compile(r"id\d+")
_VOX2_IDENTITY = re.compile(r"id0\d{4}")  # VoxCeleb2: id00012 .. id09272 (VoxCeleb1's are id1XXXX)
_HEADER_KEYS = {"identity": "identity", "reference": "reference", "offset": "offset",
                "fv conf": "fv_conf", "asd conf": "asd_conf"}


class VoxTxtError(ValueError):
    """A malformed VoxCeleb txt or meta file; the message names the file and line."""


class BuildProblems(list):
    """The builder's problems (the list: something went wrong) and its ``warnings`` (clips kept).

    A list, so ``clips, problems = voxceleb2_clips(...)`` and callers that print or count the problems
    keep working; the warnings are only in ``.warnings`` and are not counted as failures.
    """

    def __init__(self, problems=(), warnings=()):
        super().__init__(problems)
        self.warnings: list[str] = list(warnings)


@dataclass(frozen=True)
class VoxTxt:
    """The parsed metadata of one utterance."""

    identity: str
    reference: str
    offset: int | None
    fv_conf: float | None
    asd_conf: float | None
    first_frame: int
    last_frame: int
    num_frames: int

    def to_extra(self) -> dict:
        return {"reference_video": self.reference, "offset": self.offset, "fv_conf": self.fv_conf,
                "asd_conf": self.asd_conf, "num_frames": self.num_frames,
                "first_frame": self.first_frame, "last_frame": self.last_frame}


def _number(text: str, kind: type, path: Path, number: int | None):
    try:
        return kind(text)
    except ValueError:
        where = f"{path}:{number}" if number else str(path)
        raise VoxTxtError(f"{where}: {text!r} is not a number") from None


def parse_vox_txt(path: Path) -> VoxTxt:
    """Parse one per-utterance txt; raises :class:`VoxTxtError` naming the line on any defect."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise VoxTxtError(f"{path}: cannot read ({exc})") from None
    header: dict[str, str] = {}
    frames: list[int] = []
    in_table = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if not in_table:
            if line.split()[0].upper() == "FRAME":
                in_table = True
                continue
            key, sep, value = line.partition(":")
            if not sep or key.strip().lower() not in _HEADER_KEYS:
                raise VoxTxtError(f"{path}:{number}: expected 'Key : value' or the FRAME table header: {line!r}")
            header[_HEADER_KEYS[key.strip().lower()]] = value.strip()
            continue
        fields = line.split()
        if len(fields) != 5:
            raise VoxTxtError(f"{path}:{number}: expected 'FRAME X Y W H': {line!r}")
        frames.append(_number(fields[0], int, path, number))
        for text in fields[1:]:
            _number(text, float, path, number)
    for required in ("identity", "reference"):
        if not header.get(required):
            raise VoxTxtError(f"{path}: no '{required.capitalize()} :' line")
    if not frames:
        raise VoxTxtError(f"{path}: no FRAME X Y W H rows")

    def first_token(key: str, kind: type):
        value = header.get(key)
        return _number(value.split()[0], kind, path, None) if value else None

    return VoxTxt(
        identity=header["identity"].split()[0],
        reference=header["reference"].split()[0],
        offset=first_token("offset", int),
        fv_conf=first_token("fv_conf", float),
        asd_conf=first_token("asd_conf", float),
        first_frame=min(frames),
        last_frame=max(frames),
        num_frames=len(frames),
    )


def read_vox2_meta(path: Path) -> dict[str, str]:
    """``vox2_meta.csv`` -> {VoxCeleb2 id: "dev" or "test"}. Comma or tab separated, cells stripped."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    delimiter = "\t" if "\t" in text.splitlines()[0] else ","
    rows = csv.reader(text.splitlines(), delimiter=delimiter)
    columns = [c.strip().lower().replace(" ", "") for c in next(rows, [])]
    if "voxceleb2id" not in columns or "set" not in columns:
        raise VoxTxtError(f"{path}:1: expected a header with 'VoxCeleb2 ID' and 'Set' columns")
    id_col, set_col = columns.index("voxceleb2id"), columns.index("set")
    splits: dict[str, str] = {}
    for number, row in enumerate(rows, start=2):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        complete = len(cells) > max(id_col, set_col)
        if not complete or cells[set_col] not in OFFICIAL_SPLITS or not _IDENTITY.fullmatch(cells[id_col]):
            raise VoxTxtError(f"{path}:{number}: expected 'idXXXXX,...,dev|test': {','.join(row)!r}")
        splits[cells[id_col]] = cells[set_col]
    return splits


def read_identity_list(path: Path) -> frozenset[str]:
    """A split file: one identity a line, ``#`` comment lines and blank lines ignored."""
    path = Path(path)
    identities = set()
    for number, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _IDENTITY.fullmatch(line):
            raise VoxTxtError(f"{path}:{number}: expected one identity idXXXXX a line: {line!r}")
        identities.add(line)
    return frozenset(identities)


@functools.lru_cache(maxsize=1)
def official_test_identities() -> frozenset[str]:
    """The 118 official VoxCeleb2 test identities shipped in ``splits/voxceleb2_test_identities.txt``."""
    return read_identity_list(TEST_IDENTITIES_FILE)


def official_split_of(identity: str) -> str | None:
    """"test" or "dev" for a VoxCeleb2 identity (``id0XXXX``) by the shipped list, None for any other."""
    if not _VOX2_IDENTITY.fullmatch(identity):
        return None
    if identity in official_test_identities() or identity in META_ONLY_TEST_IDENTITIES:
        return "test"
    return "dev"


def identity_is_test(identity: str) -> bool:
    """The made-up split's rule, by identity: about 10% of the identities, by a fixed hash of the id.

    ``int(sha256("voxceleb2-identity-split-v1:" + identity).hexdigest()[:8], 16) % 100 < 10``; used
    only for identities that neither ``vox2_meta.csv`` nor the shipped list nor a dev/test folder place.
    """
    digest = hashlib.sha256(f"{SPLIT_SALT}:{identity}".encode("utf-8")).hexdigest()
    return int(digest[:8], 16) % 100 < TEST_PERCENT


def _has_identities(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(e.is_dir() and _IDENTITY.fullmatch(e.name) for e in entries)


def _split_of_path(folder: Path) -> str | None:
    """``.../test/mp4`` or ``.../test`` -> "test"."""
    for part in (folder.name, folder.parent.name if folder.name == "mp4" else ""):
        if part in OFFICIAL_SPLITS:
            return part
    return None


def _bases(root: Path) -> list[tuple[Path, str | None]]:
    """The folders holding identity folders, each with the split its location implies."""
    bases = []
    for split in OFFICIAL_SPLITS:
        for folder in (root / split / "mp4", root / split):
            if _has_identities(folder):
                bases.append((folder, split))
                break
    for folder in (root / "mp4", root):
        if _has_identities(folder):
            bases.append((folder, _split_of_path(folder)))
    return bases


def _sorted_dirs(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if e.is_dir()), key=lambda e: e.name)


def _txt_for(mp4: Path, base: Path) -> Path | None:
    """The utterance's txt: next to the mp4, or in the parallel ``txt`` tree."""
    relative = mp4.relative_to(base).with_suffix(".txt")
    candidates = [mp4.with_suffix(".txt")]
    if base.name == "mp4":
        candidates.append(base.parent / "txt" / relative)
    candidates.append(base / "txt" / relative)
    return next((c for c in candidates if c.is_file()), None)


def _speaker_split(identity: str, folder_split: str | None, meta: dict[str, str],
                   meta_csv: Path | None) -> tuple[str, str | None, str | None]:
    """(split "dev"/"test", official split or None when made up, warning or None) for one identity."""
    if identity in meta:
        official, source = meta[identity], str(meta_csv)
    else:
        official, source = official_split_of(identity), "the official VoxCeleb2 test identity list"
    if official is not None:
        warning = None
        if folder_split and folder_split != official:
            warning = f"in the {folder_split} folder but {source} says {official}; {official} is used"
        return official, official, warning
    if folder_split:
        return folder_split, folder_split, None
    return ("test" if identity_is_test(identity) else "dev"), None, None


def voxceleb2_clips(
    root: Path,
    split: str | None = None,
    *,
    meta_csv: Path | None = None,
    read_metadata: bool = True,
) -> tuple[list[ClipSource], BuildProblems]:
    """Every utterance mp4 under ``root`` (``split``: "dev", "test" or None for both), and its problems.

    ``split="train"`` is read as "dev". Every clip gets its identity's split (see the module docstring:
    ``vox2_meta.csv``, the shipped official test list, the dev/test folder, else made up by identity).
    The second value is a :class:`BuildProblems`: a list of problems plus ``.warnings`` for the notes
    about clips that are kept. Raises FileNotFoundError when ``root`` holds no identity folders.
    """
    root = Path(root)
    if split == "train":
        split = "dev"
    if split not in (None, *OFFICIAL_SPLITS):
        raise ValueError(f"split must be 'dev', 'test' or None, got {split!r}")
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: VoxCeleb2 folder does not exist")
    bases = _bases(root)
    if not bases:
        raise FileNotFoundError(f"{root}: no VoxCeleb2 identity folders (idXXXXX) in {root}, "
                                f"{root}/{{dev,test}}/mp4 or {root}/mp4")
    if meta_csv is None and (root / META_CSV).is_file():
        meta_csv = root / META_CSV
    meta = read_vox2_meta(meta_csv) if meta_csv is not None else {}

    clips: list[ClipSource] = []
    problems = BuildProblems()
    warnings = problems.warnings
    missing_txt = 0
    made_up: dict[str, str] = {}
    for base, folder_split in bases:
        for speaker in _sorted_dirs(base):
            if not _IDENTITY.fullmatch(speaker.name):
                continue
            chosen, official, warning = _speaker_split(speaker.name, folder_split, meta, meta_csv)
            if warning:
                warnings.append(f"{speaker.path}: {warning}")
            if official is None:
                made_up[speaker.name] = chosen
            if split is not None and chosen != split:
                continue
            for video in _sorted_dirs(Path(speaker.path)):
                for mp4 in sorted(Path(video.path).glob("*.mp4")):
                    extra: dict = {"video_id": video.name, "utterance": mp4.stem, "official_split": official}
                    txt = _txt_for(mp4, base) if read_metadata else None
                    if txt is not None:
                        try:
                            parsed = parse_vox_txt(txt)
                        except VoxTxtError as exc:
                            warnings.append(f"{exc}; clip kept without its metadata")
                        else:
                            extra.update(parsed.to_extra())
                            if parsed.identity != speaker.name:
                                warnings.append(f"{txt}: Identity {parsed.identity} but the folder is {speaker.name}")
                    elif read_metadata:
                        missing_txt += 1
                    clips.append(ClipSource(
                        dataset="voxceleb2",
                        speaker=speaker.name,
                        clip_id=f"{speaker.name}_{video.name}_{mp4.stem}",
                        path=mp4,
                        split=TOOLKIT_SPLIT[chosen],
                        extra=extra,
                    ))
    if made_up:
        tested = sorted(i for i, s in made_up.items() if s == "test")
        warnings.append(
            f"{root}: {len(made_up)} identit{'y' if len(made_up) == 1 else 'ies'} not in VoxCeleb2 "
            f"(not id0XXXX) and not in a dev/test folder"
            + (f" or {meta_csv}" if meta_csv is not None else "")
            + f"; split made up by identity ({TEST_PERCENT}% by a hash of the id): "
            + (f"{len(tested)} test ({', '.join(tested[:10])}{', ...' if len(tested) > 10 else ''})"
               if tested else "none test"))
    if missing_txt:
        warnings.append(f"{root}: {missing_txt} clip(s) without a txt metadata file (vox2_*_txt.zip not "
                        "extracted?); they are kept without it")
    if not clips:
        problems.append(f"{root}: no VoxCeleb2 clips found" + (f" in the {split} split" if split else ""))
    return clips, problems
