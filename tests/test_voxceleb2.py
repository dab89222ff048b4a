"""Tests for preprocessing.voxceleb2: layout walk, per-utterance txt metadata, official split.

The shipped official test identity list (splits/voxceleb2_test_identities.txt) is the 'test' rows of
the official vox2_meta.csv as copied in kaneelgit/msi_voxceleb @ 7d57e8c1a95b05fc3dbba5f681b9c39711c90351
(120 rows) less id04170 and id05348 (no released clips), i.e. 118 identities, equal to TEST_PERSONS in
AliaksandrSiarohin/video-preprocessing @ ac40aac58657a3d8db85421cd4afcf465e86ead1 crop_vox.py.

The txt fixture is a real VoxCeleb2 dev utterance header as quoted in public code (id00012,
reference _raOc3-IRsw); the meta lines are the first rows of the official vox2_meta.csv in its two
circulating spellings (cells padded with a space, as in kaneelgit/msi_voxceleb, and stripped, as in
sin392/FaceEncoder).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from talking_head.preprocessing import voxceleb2
from talking_head.toolkit.media import write_video

REAL_TXT = (
    "Identity  : \tid00012\n"
    "Reference : \t_raOc3-IRsw\n"
    "Offset    : \t2\n"
    "FV Conf   : \t20.230\t(1)\n"
    "ASD Conf  : \t2.765\n"
    "\n"
    "FRAME \tX \tY \tW \tH \n"
    "000349 \t0.319 \t0.067 \t0.424 \t0.753 \n"
    "000350 \t0.319 \t0.067 \t0.424 \t0.753 \n"
    "000351 \t0.320 \t0.066 \t0.424 \t0.753 \n"
)
TEST_TXT = (
    "Identity  : \tid00017\n"
    "Reference : \t7t6lfzvVaTM\n"
    "Offset    : \t1\n"
    "FV Conf   : \t16.647\t(1)\n"
    "ASD Conf  : \t4.465\n"
    "\n"
    "FRAME \tX \tY \tW \tH\n"
    "000245 \t0.4 \t0.1 \t0.3 \t0.5\n"
)
META_PADDED = (
    "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set \n"
    "id00012 ,n000012 ,m ,dev \n"
    "id00015 ,n000015 ,m ,dev \n"
    "id00017 ,n000017 ,m ,test \n"
)
META_STRIPPED = "VoxCeleb2ID,VGGFace2ID,Gender,Set\nid00012,n000012,m,dev\nid00017,n000017,m,test\n"


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    """2 s of a 64x48 pattern with sound (VoxCeleb2 mp4s carry their audio)."""
    frames = (np.arange(50 * 48 * 64 * 3) % 251).astype(np.uint8).reshape(50, 48, 64, 3)
    audio = 0.2 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)
    return write_video(tmp_path_factory.mktemp("video") / "utterance.mp4", frames, fps=25, audio=audio)


def _place(video: Path, path: Path, txt: str | None = None, txt_path: Path | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(video, path)
    if txt is not None:
        target = txt_path or path.with_suffix(".txt")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(txt, encoding="utf-8")


@pytest.fixture()
def official(tmp_path, tiny_video) -> Path:
    """root/{dev,test}/mp4 with the txt tree beside it (dev) and next to the mp4 (test)."""
    root = tmp_path / "vox2"
    dev = root / "dev"
    _place(tiny_video, dev / "mp4/id00012/_raOc3-IRsw/00001.mp4", REAL_TXT, dev / "txt/id00012/_raOc3-IRsw/00001.txt")
    _place(tiny_video, dev / "mp4/id00012/_raOc3-IRsw/00002.mp4")  # no txt
    _place(tiny_video, dev / "mp4/id00015/0fQ3P8XNoK8/00001.mp4", "Identity  : \tid00015\nFRAME \tX\n0001 0.1\n",
           dev / "txt/id00015/0fQ3P8XNoK8/00001.txt")  # malformed table row
    _place(tiny_video, root / "test/mp4/id00017/7t6lfzvVaTM/00001.mp4", TEST_TXT)
    (root / "test/mp4/id00017/7t6lfzvVaTM/notes.md").write_text("not a clip")
    (root / "dev/mp4/README").write_text("not an identity")
    return root


def test_layout_walk_names_speakers_and_splits(official):
    clips, problems = voxceleb2.voxceleb2_clips(official)
    by_id = {c.clip_id: c for c in clips}
    assert list(by_id) == ["id00012__raOc3-IRsw_00001", "id00012__raOc3-IRsw_00002",
                           "id00015_0fQ3P8XNoK8_00001", "id00017_7t6lfzvVaTM_00001"]
    first = by_id["id00012__raOc3-IRsw_00001"]
    assert (first.dataset, first.speaker, first.split) == ("voxceleb2", "id00012", "train")
    assert first.path == official / "dev/mp4/id00012/_raOc3-IRsw/00001.mp4"
    assert (first.start, first.end, first.crop_box) == (None, None, None)
    assert first.extra == {"video_id": "_raOc3-IRsw", "utterance": "00001", "official_split": "dev",
                           "reference_video": "_raOc3-IRsw", "offset": 2, "fv_conf": 20.23, "asd_conf": 2.765,
                           "num_frames": 3, "first_frame": 349, "last_frame": 351}
    test = by_id["id00017_7t6lfzvVaTM_00001"]
    assert (test.split, test.extra["official_split"], test.extra["offset"]) == ("test", "test", 1)

    malformed = by_id["id00015_0fQ3P8XNoK8_00001"]
    assert "offset" not in malformed.extra
    # the clips are all kept: the notes are warnings, not problems a caller would count as failures
    assert list(problems) == []
    assert isinstance(problems, list) and isinstance(problems, voxceleb2.BuildProblems)
    warnings = problems.warnings
    assert any("id00015/0fQ3P8XNoK8/00001.txt" in w and "clip kept without its metadata" in w for w in warnings)
    assert any("1 clip(s) without a txt metadata file" in w for w in warnings)
    assert len(warnings) == 2


@pytest.mark.parametrize(
    ("split", "expected"),
    [("test", {"id00017"}), ("dev", {"id00012", "id00015"}), ("train", {"id00012", "id00015"}),
     (None, {"id00012", "id00015", "id00017"})],
)
def test_split_filter(official, split, expected):
    clips, _ = voxceleb2.voxceleb2_clips(official, split=split)
    assert {c.speaker for c in clips} == expected


def test_flat_layout_uses_the_official_meta_list(tmp_path, tiny_video):
    root = tmp_path / "flat"
    _place(tiny_video, root / "id00012/_raOc3-IRsw/00001.mp4", REAL_TXT)
    _place(tiny_video, root / "id00017/7t6lfzvVaTM/00001.mp4", TEST_TXT)
    # without vox2_meta.csv the shipped official list gives the same split
    clips, problems = voxceleb2.voxceleb2_clips(root)
    assert [(c.speaker, c.split, c.extra["official_split"]) for c in clips] == [
        ("id00012", "train", "dev"), ("id00017", "test", "test")]
    assert not problems and not problems.warnings
    clips, _ = voxceleb2.voxceleb2_clips(root, split="test")
    assert [c.clip_id for c in clips] == ["id00017_7t6lfzvVaTM_00001"]

    (root / "vox2_meta.csv").write_text(META_PADDED, encoding="utf-8")
    clips, problems = voxceleb2.voxceleb2_clips(root)
    assert [(c.speaker, c.split) for c in clips] == [("id00012", "train"), ("id00017", "test")]
    assert not problems and not problems.warnings
    clips, _ = voxceleb2.voxceleb2_clips(root, split="test")
    assert [c.clip_id for c in clips] == ["id00017_7t6lfzvVaTM_00001"]

    # with vox2_meta.csv present, the file's sets are used (here one that disagrees with the official list)
    (root / "vox2_meta.csv").write_text(META_PADDED.replace("id00017 ,n000017 ,m ,test", "id00017 ,n000017 ,m ,dev")
                                        .replace("id00012 ,n000012 ,m ,dev", "id00012 ,n000012 ,m ,test"),
                                        encoding="utf-8")
    clips, problems = voxceleb2.voxceleb2_clips(root)
    assert [(c.speaker, c.split) for c in clips] == [("id00012", "test"), ("id00017", "train")]
    assert not problems and not problems.warnings


def test_shipped_official_test_identities():
    """118 ids from the official meta file's test rows; the header cites where they were taken from."""
    path = voxceleb2.TEST_IDENTITIES_FILE
    assert path.parent.name == "splits" and path.name == "voxceleb2_test_identities.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    ids = [line for line in lines if line and not line.startswith("#")]
    assert len(ids) == 118 == len(set(ids)) == len(voxceleb2.official_test_identities())
    assert ids == sorted(ids) and all(len(i) == 7 and i.startswith("id0") and i[2:].isdigit() for i in ids)
    assert ids[:3] == ["id00017", "id00061", "id00081"] and ids[-3:] == ["id08701", "id08911", "id09017"]
    assert {"id00017", "id01224", "id02577", "id07874", "id09017"} <= set(ids)
    assert not voxceleb2.META_ONLY_TEST_IDENTITIES & set(ids)  # test rows of the meta file with no released clips
    header = "\n".join(line for line in lines if line.startswith("#"))
    assert "kaneelgit/msi_voxceleb @ 7d57e8c1a95b05fc3dbba5f681b9c39711c90351" in header
    assert "AliaksandrSiarohin/video-preprocessing @ ac40aac58657a3d8db85421cd4afcf465e86ead1" in header
    # shipped with the package (the splits folder is package data)
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    assert '"talking_head.preprocessing" = ["splits/*.txt"]' in pyproject.read_text(encoding="utf-8")

    assert voxceleb2.official_split_of("id00017") == "test"
    assert voxceleb2.official_split_of("id00012") == "dev"
    assert voxceleb2.official_split_of("id04170") == "test"
    assert voxceleb2.official_split_of("id10270") is None  # a VoxCeleb1 id


def test_copied_subset_without_meta_is_split_by_identity(tmp_path, tiny_video):
    """The issue's tree: root/idXXXXX/<video>/<clip>.mp4, no vox2_meta.csv, no txt files."""
    root = tmp_path / "subset"
    for clip in ("00001", "00002", "00003"):
        _place(tiny_video, root / f"id00017/5MkXgwdrmJw/{clip}.mp4")
    _place(tiny_video, root / "id00017/7t6lfzvVaTM/00001.mp4")
    _place(tiny_video, root / "id00012/_raOc3-IRsw/00001.mp4")
    _place(tiny_video, root / "id00012/21Uxsk56VDQ/00001.mp4")
    clips, problems = voxceleb2.voxceleb2_clips(root)
    assert len(clips) == 6
    splits = {c.clip_id: c.split for c in clips}
    assert splits["id00017_5MkXgwdrmJw_00001"] == splits["id00017_5MkXgwdrmJw_00002"] == "test"
    assert {c.split for c in clips if c.speaker == "id00017"} == {"test"}  # an official test identity
    assert {c.split for c in clips if c.speaker == "id00012"} == {"train"}
    by_split: dict[str, set[str]] = {}
    for c in clips:
        by_split.setdefault(c.split, set()).add(c.speaker)
    assert not by_split["train"] & by_split["test"]
    # the missing txt metadata is one warning, not a problem (a caller counting problems as failures counts 0)
    assert list(problems) == []
    assert problems.warnings == [f"{root}: 6 clip(s) without a txt metadata file (vox2_*_txt.zip not "
                                 "extracted?); they are kept without it"]


def test_folder_that_disagrees_with_the_official_list(tmp_path, tiny_video):
    root = tmp_path / "vox2"
    _place(tiny_video, root / "test/mp4/id00012/_raOc3-IRsw/00001.mp4", REAL_TXT)
    _place(tiny_video, root / "dev/mp4/id00017/7t6lfzvVaTM/00001.mp4", TEST_TXT)
    clips, problems = voxceleb2.voxceleb2_clips(root)
    assert {c.speaker: c.split for c in clips} == {"id00012": "train", "id00017": "test"}
    assert list(problems) == []
    assert len(problems.warnings) == 2
    assert any("id00017: in the dev folder but the official VoxCeleb2 test identity list says test" in w
               for w in problems.warnings)


def test_made_up_split_is_by_identity(tmp_path, tiny_video):
    """Identities the lists do not place (not id0XXXX, no dev/test folder): split by a hash of the id."""
    root = tmp_path / "other"
    identities = [f"id1{n:04d}" for n in range(1, 41)]
    for identity in identities:
        for clip in ("00001", "00002"):
            _place(tiny_video, root / f"{identity}/video/{clip}.mp4")
    clips, problems = voxceleb2.voxceleb2_clips(root, read_metadata=False)
    assert len(clips) == 80 and list(problems) == []
    speaker_splits: dict[str, set[str]] = {}
    for c in clips:
        speaker_splits.setdefault(c.speaker, set()).add(c.split)
        assert c.extra["official_split"] is None
    assert all(len(s) == 1 for s in speaker_splits.values())  # never split clip by clip

    def rule(identity: str) -> bool:
        digest = hashlib.sha256(f"voxceleb2-identity-split-v1:{identity}".encode()).hexdigest()
        return int(digest[:8], 16) % 100 < 10

    expected_test = sorted(i for i in identities if rule(i))
    assert expected_test  # the fixture exercises both sides
    assert sorted(i for i, s in speaker_splits.items() if s == {"test"}) == expected_test
    assert [voxceleb2.identity_is_test(i) for i in identities] == [rule(i) for i in identities]
    assert len(problems.warnings) == 1 and "40 identities not in VoxCeleb2" in problems.warnings[0]
    assert f"{len(expected_test)} test (" in problems.warnings[0]

    clips, _ = voxceleb2.voxceleb2_clips(root, split="test", read_metadata=False)
    assert sorted({c.speaker for c in clips}) == expected_test


def test_split_folder_given_directly(official):
    clips, _ = voxceleb2.voxceleb2_clips(official / "test" / "mp4")
    assert [(c.speaker, c.split) for c in clips] == [("id00017", "test")]


def test_meta_list_formats_and_disagreement(official, tmp_path):
    stripped = tmp_path / "meta.csv"
    stripped.write_text(META_STRIPPED, encoding="utf-8")
    padded = tmp_path / "vox2_meta.csv"
    padded.write_text(META_PADDED, encoding="utf-8")
    assert voxceleb2.read_vox2_meta(stripped) == {"id00012": "dev", "id00017": "test"}
    assert voxceleb2.read_vox2_meta(padded) == {"id00012": "dev", "id00015": "dev", "id00017": "test"}

    wrong = tmp_path / "wrong.csv"
    wrong.write_text(META_STRIPPED.replace("id00012,n000012,m,dev", "id00012,n000012,m,test"), encoding="utf-8")
    clips, problems = voxceleb2.voxceleb2_clips(official, meta_csv=wrong)
    assert {c.speaker: c.split for c in clips}["id00012"] == "test"
    assert any("in the dev folder but" in w and "wrong.csv says test" in w for w in problems.warnings)
    assert list(problems) == []

    wrong.write_text(META_STRIPPED + "id00099,n000099,m,valid\n", encoding="utf-8")
    with pytest.raises(voxceleb2.VoxTxtError, match="wrong.csv:4: "):
        voxceleb2.read_vox2_meta(wrong)
    wrong.write_text("id,set\n", encoding="utf-8")
    with pytest.raises(voxceleb2.VoxTxtError, match="'VoxCeleb2 ID' and 'Set'"):
        voxceleb2.read_vox2_meta(wrong)


def test_parse_txt(tmp_path):
    path = tmp_path / "00001.txt"
    path.write_text(REAL_TXT, encoding="utf-8")
    parsed = voxceleb2.parse_vox_txt(path)
    assert parsed == voxceleb2.VoxTxt("id00012", "_raOc3-IRsw", 2, 20.23, 2.765, 349, 351, 3)
    # VoxCeleb1-style header (comments after the values, pixel boxes) parses too
    path.write_text("Identity  : \tid10661\nReference : \tlSI69L4DidQ\nOffset    : \t-1\nFV Conf   : \t17.997\n"
                    "ASD Conf  : \t6.338\n\nFRAME \tX \tY \tW \tH\n002316 \t223 \t80 \t130 \t130\n", encoding="utf-8")
    assert voxceleb2.parse_vox_txt(path).offset == -1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (REAL_TXT.replace("Offset    : \t2", "Offset    : \ttwo"), "'two' is not a number"),
        (REAL_TXT.replace("000350 \t0.319", "000350 \tx"), ":9: 'x' is not a number"),
        (REAL_TXT.replace("000351 \t0.320 \t0.066 \t0.424 \t0.753 \n", "000351 \t0.320\n"),
         ":10: expected 'FRAME X Y W H'"),
        (REAL_TXT.replace("Reference : \t_raOc3-IRsw\n", ""), "no 'Reference :' line"),
        (REAL_TXT.split("FRAME")[0], "no FRAME X Y W H rows"),
        ("Speaker : x\n" + REAL_TXT, ":1: expected 'Key : value'"),
    ],
)
def test_malformed_txt(tmp_path, text, message):
    path = tmp_path / "00001.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(voxceleb2.VoxTxtError) as info:
        voxceleb2.parse_vox_txt(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_bad_roots(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        voxceleb2.voxceleb2_clips(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no VoxCeleb2 identity folders"):
        voxceleb2.voxceleb2_clips(tmp_path / "empty")
    with pytest.raises(ValueError, match="split must be"):
        voxceleb2.voxceleb2_clips(tmp_path / "empty", split="val")
