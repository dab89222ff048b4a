"""Tests for preprocessing.hdtf on excerpts of the official annotation files.

The fixture lines are copied from MRzzm/HDTF, HDTF_dataset/*.txt (read at commits 428273f, be1ba97,
6720a98), including their quirks: the UTF-8 BOM before the first line of WDA_video_url.txt, trailing
spaces in WRA_annotion_time.txt, no final newline in WDA_annotion_time.txt, clips without a crop entry
(Radio15_0, MittRomney_1), the resolution 0 of KevinMcCarthy1, and one person under two names
(WhipJimClyburn / JamesClyburn1, the same YouTube video). No crop_ratio file is given for WDA/WRA.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from talking_head.preprocessing import hdtf
from talking_head.toolkit.media import write_video

OFFICIAL = {
    "RD_video_url.txt": (
        "Radio1 https://www.youtube.com/watch?v=CPCoMyuBRM0\n"
        "Radio11 https://www.youtube.com/watch?v=XtySvTwIOfw\n"
        "Radio15 https://www.youtube.com/watch?v=0EHNIWy8l3w\n"
        "Radio24 https://www.youtube.com/watch?v=cU0JPT3n9B4\n"
    ),
    "RD_resolution.txt": "Radio1.mp4 720\nRadio11.mp4 720\nRadio15.mp4 720\nRadio24.mp4 720\n",
    "RD_annotion_time.txt": (
        "Radio1.mp4 00:20-01:35\n"
        "Radio11.mp4 00:30-01:00 01:30-02:30\n"
        "Radio15.mp4 00:35-00:45\n"
    ),
    "RD_crop_wh.txt": (
        "Radio11_0.mp4 412 599 0 599\n"
        "Radio11_1.mp4 557 478 0 478\n"
        "Radio1_0.mp4 466 535 0 535\n"
    ),
    "RD_crop_ratio.txt": "Radio11_0.mp4 1.2\nRadio11_1.mp4 1.2\nRadio1_0.mp4 1.2\n",
    "WDA_video_url.txt": (
        "\ufeffCarolynMaloney2 https://www.youtube.com/watch?v=RApGxN-O9Qc\n"
        "CarolynMaloney1 https://www.youtube.com/watch?v=1Xn9v3fmLPs\n"
        "WhipJimClyburn https://www.youtube.com/watch?v=gh3YqnvNdio\n"
        "JamesClyburn1 https://www.youtube.com/watch?v=gh3YqnvNdio&t=5s\n"
        "XavierBecerra https://www.youtube.com/watch?v=ipRmriZTOEA"
    ),
    "WDA_resolution.txt": (
        "CarolynMaloney1.mp4 1080\nCarolynMaloney2.mp4 720\nJamesClyburn1.mp4 1080\n"
        "WhipJimClyburn.mp4 1080\nXavierBecerra.mp4 1080\n"
    ),
    "WDA_annotion_time.txt": (
        "CarolynMaloney1.mp4 00:05-05:40\n"
        "CarolynMaloney2.mp4 00:05-05:00\n"
        "JamesClyburn1.mp4 00:05-04:40\n"
        "WhipJimClyburn.mp4 00:05-04:40\n"
        "XavierBecerra.mp4 00:45-01:20 01:40-02:05 03:30-04:25"
    ),
    "WDA_crop_wh.txt": (
        "CarolynMaloney1_0.mp4 510 864 0 864\n"
        "CarolynMaloney2_0.mp4 363 564 0 564\n"
        "JamesClyburn1_0.mp4 575 808 0 808\n"
        "WhipJimClyburn_0.mp4 583 791 0 791\n"
        "XavierBecerra_0.mp4 600 659 0 659\n"
        "XavierBecerra_1.mp4 617 652 0 652\n"
        "XavierBecerra_2.mp4 588 707 0 707\n"
    ),
    "WRA_video_url.txt": (
        "AdamKinzinger2 https://www.youtube.com/watch?v=xObrQqUkBSo\n"
        "KevinMcCarthy1 https://www.youtube.com/watch?v=9Pjxcu2EZY4\n"
        "MittRomney https://www.youtube.com/watch?v=YFTuC5omdYA\n"
        "DianeBlack1 https://www.youtube.com/watch?v=m8tCZYJ7koo\n"
    ),
    "WRA_resolution.txt": "AdamKinzinger2.mp4 720\nKevinMcCarthy1.mp4 0\nMittRomney.mp4 1080\nDianeBlack1.mp4 1080\n",
    "WRA_annotion_time.txt": (
        "AdamKinzinger2.mp4 00:40-01:20 02:00-02:40 03:30-03:50 \n"
        "DianeBlack1.mp4 10:35-10:45 \n"
        "KevinMcCarthy1.mp4 00:22-00:45 01:05-01:20 \n"
        "MittRomney.mp4 08:10-08:30 00:33-08:53\n"
    ),
    "WRA_crop_wh.txt": (
        "AdamKinzinger2_0.mp4 397 513 0 513\n"
        "AdamKinzinger2_1.mp4 416 498 12 498\n"
        "AdamKinzinger2_2.mp4 396 465 32 465\n"
        "DianeBlack1_0.mp4 242 779 0 779\n"
        "KevinMcCarthy1_0.mp4 412 465 0 465\n"
        "KevinMcCarthy1_1.mp4 421 459 14 459\n"
        "MittRomney_0.mp4 614 964 0 964\n"
    ),
}

FIXTURE_CLIPS = [
    "RD_Radio1_000", "RD_Radio11_000", "RD_Radio11_001", "RD_Radio15_000",
    "WDA_CarolynMaloney1_000", "WDA_CarolynMaloney2_000", "WDA_JamesClyburn1_000", "WDA_WhipJimClyburn_000",
    "WDA_XavierBecerra_000", "WDA_XavierBecerra_001", "WDA_XavierBecerra_002",
    "WRA_AdamKinzinger2_000", "WRA_AdamKinzinger2_001", "WRA_AdamKinzinger2_002", "WRA_DianeBlack1_000",
    "WRA_KevinMcCarthy1_000", "WRA_KevinMcCarthy1_001", "WRA_MittRomney_000", "WRA_MittRomney_001",
]

# Published lists, excerpts: GAGAvatar's 19 test videos (xg-chu/GAGAvatar#40) and lines of DiffTalk's
# data/train_name.txt (sstzal/DiffTalk), which lists training clips as full paths.
GAGAVATAR_TEST = ["WRA_ReneeEllmers_000", "WRA_GeoffDavis_000", "WDA_MikeDoyle_000", "WRA_JoePitts_000",
                  "WRA_TimScott_000", "WRA_JohnThune_000", "WRA_ToddYoung_000", "WRA_RoyBlunt_000",
                  "WDA_CatherineCortezMasto_000", "WRA_ErikPaulsen_000", "WRA_TomPrice_000", "WRA_TomCotton_000",
                  "WRA_EricCantor_000", "WRA_RichardShelby_000", "WRA_RobPortman_000", "WDA_MartinHeinrich_000",
                  "WRA_DeanHeller_000", "WRA_VickyHartzler_000", "WRA_ReincePriebus_000"]
DIFFTALK_TRAIN_EXCERPT = (
    "/mnt/cfs/algorithm/public_data/HDTF/video_fps/RD_Radio11_000.mp4\n"
    "/mnt/cfs/algorithm/public_data/HDTF/video_fps/RD_Radio11_001.mp4\n"
    "/mnt/cfs/algorithm/public_data/HDTF/video_fps_/WRA_JohnKasich1_001.mp4\n"
)


def _write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    """2 s of a 64x48 moving pattern with a 440 Hz tone."""
    t = np.arange(50)[:, None, None, None]
    y, x = np.mgrid[0:48, 0:64]
    frames = ((x[None, :, :, None] * 4 + y[None, :, :, None] * 2 + t * 5) % 256).astype(np.uint8).repeat(3, axis=3)
    audio = 0.2 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000)
    return write_video(tmp_path_factory.mktemp("video") / "pattern.mp4", frames, fps=25, audio=audio)


@pytest.fixture()
def dataset(tmp_path, tiny_video) -> tuple[Path, Path]:
    """(annotation dir, raw video dir). Radio15 is not downloaded; WRA videos sit in a subset folder, one as .mkv."""
    annotations = _write_files(tmp_path / "HDTF_dataset", OFFICIAL)
    raw = tmp_path / "raw"
    (raw / "WRA").mkdir(parents=True)
    for name in ["Radio1", "Radio11", "CarolynMaloney1", "CarolynMaloney2", "JamesClyburn1", "WhipJimClyburn",
                 "XavierBecerra"]:
        shutil.copy(tiny_video, raw / f"{name}.mp4")
    for name in ["AdamKinzinger2", "KevinMcCarthy1", "MittRomney"]:
        shutil.copy(tiny_video, raw / "WRA" / f"{name}.mp4")
    shutil.copy(tiny_video, raw / "DianeBlack1.mkv")
    return annotations, raw


def _by_id(clips):
    return {c.clip_id: c for c in clips}


# ----------------------------------------------------------------------------- parsing


def test_bom_first_line_is_parsed(tmp_path):
    path = _write_files(tmp_path, OFFICIAL) / "WDA_video_url.txt"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    urls = hdtf.parse_video_urls(path)
    assert urls["CarolynMaloney2"] == "https://www.youtube.com/watch?v=RApGxN-O9Qc"
    assert not any("\ufeff" in name for name in urls)


def test_annotation_times_trailing_spaces_and_order(tmp_path):
    times = hdtf.parse_annotation_times(_write_files(tmp_path, OFFICIAL) / "WRA_annotion_time.txt")
    assert times["AdamKinzinger2"] == ((40, 80), (120, 160), (210, 230))
    assert times["DianeBlack1"] == ((635, 645),)
    assert times["MittRomney"] == ((490, 510), (33, 533))  # file order kept: clip k = k-th interval


def test_time_formats_and_optional_suffix(tmp_path):
    path = tmp_path / "X_annotion_time.txt"
    path.write_text("\n\nLong 1:02:03-1:02:04.5   \n  Short.mp4 0:05-00:07\n# comment\n", encoding="utf-8")
    assert hdtf.parse_annotation_times(path) == {"Long": ((3723.0, 3724.5),), "Short": ((5.0, 7.0),)}


@pytest.mark.parametrize(
    ("file", "line", "message"),
    [
        ("RD_annotion_time.txt", "Radio1.mp4 00:20-01:3x", "not mm:ss"),
        ("RD_annotion_time.txt", "Radio1.mp4 01:35-00:20", "ends before it starts"),
        ("RD_annotion_time.txt", "Radio1.mp4", "expected 'video.mp4 mm:ss-mm:ss"),
        ("RD_annotion_time.txt", "Radio1.mp4 00:20 01:35", "not start-end"),
        ("RD_crop_wh.txt", "Radio1_0.mp4 466 535 0", "expected 'video_k.mp4 x w y h'"),
        ("RD_crop_wh.txt", "Radio1.mp4 466 535 0 535", "expected a clip name"),
        ("RD_crop_wh.txt", "Radio11_0.mp4 1 2 3 4", "duplicate entry (first at line 1)"),
        ("RD_resolution.txt", "Radio1.mp4 720p", "expected 'video.mp4 height'"),
        ("RD_crop_ratio.txt", "Radio1_0.mp4 big", "expected 'video_k.mp4 ratio'"),
        ("RD_video_url.txt", "Radio1 youtube CPCoMyuBRM0", "expected 'video_name url'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, dataset, file, line, message):
    annotations, raw = dataset
    path = annotations / file
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(1, "")  # a blank line still counts for the line number
    lines.insert(2, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(hdtf.AnnotationError) as info:
        hdtf.hdtf_clips(annotations, raw)
    assert f"{file}:3: " in str(info.value)
    assert message in str(info.value)


def test_one_based_crop_indices_are_detected(tmp_path):
    files = dict(OFFICIAL)
    files["RD_crop_wh.txt"] = "Radio11_1.mp4 412 599 0 599\nRadio11_2.mp4 557 478 0 478\nRadio1_1.mp4 466 535 0 535\n"
    files["RD_crop_ratio.txt"] = "Radio11_2.mp4 0.9\n"
    annotations = hdtf.read_annotations(_write_files(tmp_path, files), ["RD"])
    assert annotations.crops[("RD", "Radio11", 1)] == (557, 0, 478, 478)
    assert annotations.crops[("RD", "Radio1", 0)] == (466, 0, 535, 535)
    assert annotations.crop_ratios[("RD", "Radio11", 1)] == 0.9


def test_crop_entry_without_interval_is_reported(tmp_path):
    extra = "Radio11_5.mp4 1 2 3 4\nRadio99_0.mp4 1 2 3 4\n"
    files = dict(OFFICIAL, **{"RD_crop_wh.txt": OFFICIAL["RD_crop_wh.txt"] + extra})
    problems = hdtf.read_annotations(_write_files(tmp_path, files), ["RD"]).problems
    assert any("Radio11_5 has no matching interval" in p for p in problems)
    assert any("Radio99_0 refers to a video without annotated intervals" in p for p in problems)


# ----------------------------------------------------------------------------- clips


def test_clips_from_official_excerpt(dataset):
    annotations, raw = dataset
    clips, problems = hdtf.hdtf_clips(annotations.parent, raw)  # the clone's root works too
    by_id = _by_id(clips)
    assert sorted(by_id) == sorted(set(FIXTURE_CLIPS) - {"RD_Radio15_000"})

    radio = by_id["RD_Radio11_001"]
    assert (radio.dataset, radio.speaker, radio.path) == ("hdtf", "Radio", raw / "Radio11.mp4")
    assert (radio.start, radio.end) == (90.0, 150.0)
    assert (radio.crop_box, radio.crop_box_height) == ((557, 0, 478, 478), 720)
    assert radio.extra == {"subset": "RD", "video": "Radio11", "interval": 1, "crop_ratio": 1.2,
                           "resolution": 720, "url": "https://www.youtube.com/watch?v=XtySvTwIOfw"}

    adam = by_id["WRA_AdamKinzinger2_002"]
    assert adam.speaker == "AdamKinzinger"
    assert adam.path == raw / "WRA" / "AdamKinzinger2.mp4"
    assert (adam.start, adam.end, adam.crop_box, adam.crop_box_height) == (210.0, 230.0, (396, 32, 465, 465), 720)
    assert adam.extra["crop_ratio"] is None  # no WRA_crop_ratio.txt given

    xavier = by_id["WDA_XavierBecerra_002"]
    assert (xavier.start, xavier.end) == (210.0, 265.0)
    assert (xavier.crop_box, xavier.crop_box_height) == ((588, 0, 707, 707), 1080)
    assert by_id["WDA_CarolynMaloney2_000"].extra["url"].endswith("RApGxN-O9Qc")  # the BOM line
    assert by_id["WDA_WhipJimClyburn_000"].speaker == by_id["WDA_JamesClyburn1_000"].speaker == "JamesClyburn"
    assert by_id["WRA_DianeBlack1_000"].path == raw / "DianeBlack1.mkv"
    assert all(c.split in ("train", "test") for c in clips)

    assert any(p.startswith("RD_Radio15: raw video not found") for p in problems)
    assert any(p.startswith("WRA_MittRomney_001: no crop entry MittRomney_1.mp4") for p in problems)
    assert by_id["WRA_MittRomney_001"].crop_box is None
    assert by_id["WRA_KevinMcCarthy1_000"].crop_box is None  # resolution 0: the box cannot be scaled
    assert any(p.startswith("WRA_KevinMcCarthy1_000: no usable height") for p in problems)
    assert any("WRA_crop_ratio.txt not found" in p for p in problems)
    assert not any("Radio15_000" in p for p in problems)  # its video is missing: one line, not two


def test_require_crop_drops_clips_without_official_box(dataset):
    clips, problems = hdtf.hdtf_clips(*dataset, require_crop=True)
    ids = {c.clip_id for c in clips}
    assert not ids & {"WRA_MittRomney_001", "WRA_KevinMcCarthy1_000", "WRA_KevinMcCarthy1_001"}
    assert all(c.crop_box is not None and c.crop_box_height for c in clips)
    assert any(p.endswith("; skipped") for p in problems)


def test_missing_subset_and_missing_folder(tmp_path, dataset):
    annotations, raw = dataset
    (annotations / "WDA_annotion_time.txt").unlink()
    clips, problems = hdtf.hdtf_clips(annotations, raw)
    assert not any(c.extra["subset"] == "WDA" for c in clips)
    assert any(p.startswith("WDA: WDA_annotion_time.txt not found") for p in problems)
    with pytest.raises(FileNotFoundError, match="no HDTF annotation files"):
        hdtf.hdtf_clips(tmp_path / "raw", raw)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        hdtf.hdtf_clips(tmp_path / "nowhere", raw)


# ----------------------------------------------------------------------------- splits


def _list_names(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def test_shipped_split_is_identity_disjoint_and_covers_the_official_clips():
    test = _list_names(hdtf.SPLITS_DIR / "hdtf_test.txt")
    train = _list_names(hdtf.SPLITS_DIR / "hdtf_train.txt")
    assert (len(test), len(train)) == (41, 395)
    everything = test + train
    assert len(set(everything)) == len(everything) == 436  # every official interval once
    per_subset = {s: sum(c.startswith(s + "_") for c in everything) for s in hdtf.SUBSETS}
    assert per_subset == {"RD": 66, "WDA": 195, "WRA": 175}
    assert set(FIXTURE_CLIPS) <= set(everything)

    def identity(clip: str) -> str:
        return hdtf.hdtf_identity(clip.split("_")[1])

    test_ids, train_ids = {identity(c) for c in test}, {identity(c) for c in train}
    assert not test_ids & train_ids
    assert len(test_ids) == 26 and len(test_ids | train_ids) == 220  # 219 named + the radio group
    assert all(hdtf.identity_is_test(i) for i in test_ids)
    assert not any(hdtf.identity_is_test(i) for i in train_ids)
    assert not any(c.startswith("RD_") for c in test)
    assert hdtf.read_split_file(hdtf.DEFAULT_SPLIT_FILE).lists == "test"
    assert hdtf.read_split_file(hdtf.SPLITS_DIR / "hdtf_train.txt").lists == "train"


def test_split_rule_regenerates_the_shipped_lines(dataset, tmp_path):
    annotations, _ = dataset
    assert hdtf.main(["make-split", str(annotations), "--out-dir", str(tmp_path / "splits")]) == 0
    shipped = set(_list_names(hdtf.DEFAULT_SPLIT_FILE))
    for split in ("test", "train"):
        made = _list_names(tmp_path / "splits" / f"hdtf_{split}.txt")
        assert (set(made) <= shipped) == (split == "test")
        assert set(made) & shipped == (set(made) if split == "test" else set())
    assert "# lists: test" in (tmp_path / "splits" / "hdtf_test.txt").read_text(encoding="utf-8")


def test_default_split_assignment(dataset):
    clips, problems = hdtf.hdtf_clips(*dataset)
    shipped = set(_list_names(hdtf.DEFAULT_SPLIT_FILE))
    assert all(c.split == ("test" if c.clip_id in shipped else "train") for c in clips)
    assert not any("both splits" in p for p in problems)


def test_split_file_of_test_clips_reports_unknown_names_and_leaks(dataset, tmp_path):
    annotations, raw = dataset
    listing = tmp_path / "gagavatar_test.txt"
    listing.write_text("# GAGAvatar test videos\n" + "\n".join(GAGAVATAR_TEST + ["WRA_AdamKinzinger2_000"]) + "\n",
                       encoding="utf-8")
    clips, problems = hdtf.hdtf_clips(annotations, raw, split_file=listing)
    splits = {c.clip_id: c.split for c in clips}
    assert [c for c, s in splits.items() if s == "test"] == ["WRA_AdamKinzinger2_000"]
    assert sum("matches no annotated HDTF clip" in p for p in problems) == len(GAGAVATAR_TEST)  # not in the excerpt
    assert any(f"{listing}:2: 'WRA_ReneeEllmers_000'" in p for p in problems)
    assert any("identity AdamKinzinger is in both splits (1 test, 2 train clips)" in p for p in problems)


def test_split_file_formats(dataset, tmp_path):
    annotations, raw = dataset
    listing = tmp_path / "mine.txt"
    listing.write_text(
        "# lists: train\n"
        "RD_Radio11_000.mp4\n"  # clip name with extension
        "Radio11_1\n"  # official video_k name
        "data/WRA_AdamKinzinger2.mp4 extra columns\n"  # subset_video: all its clips
        "XavierBecerra\n"  # bare video name
        "C:\\hdtf\\WDA_CarolynMaloney1_000.mp4\n",
        encoding="utf-8",
    )
    clips, problems = hdtf.hdtf_clips(annotations, raw, split_file=listing)
    train = sorted(c.clip_id for c in clips if c.split == "train")
    assert train == ["RD_Radio11_000", "RD_Radio11_001", "WDA_CarolynMaloney1_000", "WDA_XavierBecerra_000",
                     "WDA_XavierBecerra_001", "WDA_XavierBecerra_002", "WRA_AdamKinzinger2_000",
                     "WRA_AdamKinzinger2_001", "WRA_AdamKinzinger2_002"]
    assert not any("matches no" in p for p in problems)
    assert any("identity Radio is in both splits" in p for p in problems)  # Radio1 is left on the test side


def test_difftalk_train_list_needs_its_header_or_parameter(dataset, tmp_path):
    annotations, raw = dataset
    listing = tmp_path / "train_name.txt"
    listing.write_text(DIFFTALK_TRAIN_EXCERPT, encoding="utf-8")
    clips, problems = hdtf.hdtf_clips(annotations, raw, split_file=listing)
    assert {c.clip_id for c in clips if c.split == "test"} == {"RD_Radio11_000", "RD_Radio11_001"}
    assert any("no '# lists:' header; read as a list of test clips" in p for p in problems)
    assert any(f"{listing}:3: 'WRA_JohnKasich1_001' matches no annotated HDTF clip" in p for p in problems)

    clips, problems = hdtf.hdtf_clips(annotations, raw, split_file=listing, split_lists="train")
    assert {c.clip_id for c in clips if c.split == "train"} == {"RD_Radio11_000", "RD_Radio11_001"}
    assert not any("header" in p for p in problems)

    listing.write_text("# lists: test\n" + DIFFTALK_TRAIN_EXCERPT, encoding="utf-8")
    with pytest.raises(ValueError, match="the file says it lists test clips"):
        hdtf.read_split_file(listing, "train")
    listing.write_text("# lists: validation\nRD_Radio1_000\n", encoding="utf-8")
    with pytest.raises(hdtf.AnnotationError, match="train_name.txt:1: "):
        hdtf.read_split_file(listing)


# ----------------------------------------------------------------------------- download


def test_yt_dlp_command_merges_best_video_and_audio_at_the_listed_height():
    command = hdtf.yt_dlp_command("https://www.youtube.com/watch?v=XtySvTwIOfw", Path("raw/Radio11.mp4"), 720)
    assert command == [
        "yt-dlp", "--no-playlist",
        "--format", "bestvideo[height=720]+bestaudio/bestvideo[height<=720]+bestaudio",
        "--merge-output-format", "mp4", "--output", "raw/Radio11.mp4",
        "https://www.youtube.com/watch?v=XtySvTwIOfw",
    ]
    unknown = hdtf.yt_dlp_command("u", Path("o.mp4"), None, ["python", "-m", "yt_dlp"], ffmpeg="/bin/ffmpeg")
    assert unknown == ["python", "-m", "yt_dlp", "--no-playlist", "--format", "bestvideo+bestaudio",
                       "--merge-output-format", "mp4", "--output", "o.mp4", "--ffmpeg-location", "/bin/ffmpeg", "u"]


def test_download_without_yt_dlp_is_a_clear_error(dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(hdtf.shutil, "which", lambda name: None)
    monkeypatch.setattr(hdtf.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(hdtf.YtDlpNotFoundError, match="pip install yt-dlp"):
        hdtf.download(dataset[0], tmp_path / "out")
    assert hdtf.main(["download", str(dataset[0]), str(tmp_path / "out")]) == 2


def test_download_runs_one_command_per_video_and_records_failures(dataset, tmp_path):
    calls = []

    def fake_run(command, **kwargs):
        calls.append(command)
        output = Path(command[command.index("--output") + 1])
        if "Radio11" in output.name:
            output.write_bytes(b"mp4")
            return hdtf.subprocess.CompletedProcess(command, 0, "", "")
        return hdtf.subprocess.CompletedProcess(command, 1, "", "ERROR: Video unavailable\n")

    out = tmp_path / "out"
    failures = hdtf.download(dataset[0], out, subsets=["RD"], program=["yt-dlp"], run=fake_run)
    outputs = [c[c.index("--output") + 1] for c in calls]
    assert outputs == [str(out / f"{n}.mp4") for n in ("Radio1", "Radio11", "Radio15")]
    assert failures == ["RD_Radio1: yt-dlp exit code 1: ERROR: Video unavailable",
                        "RD_Radio15: yt-dlp exit code 1: ERROR: Video unavailable"]
    calls.clear()
    hdtf.download(dataset[0], out, subsets=["RD"], videos=["Radio11"], program=["yt-dlp"], run=fake_run)
    assert calls == []  # already downloaded


@pytest.mark.parametrize("name", ["../evil", "sub/Radio11", "a\\b", "%(title)s", "-o", ".hidden", "Radio..11", "Radio11{x}"])
def test_hostile_video_names_are_refused_with_their_line(tmp_path, name):
    """Annotation names become file names and yt-dlp output templates: nothing that could leave the folder,
    expand a template field or read as an option gets through (issue 19: safe names)."""
    cases = {
        "RD_video_url.txt": f"Radio1 https://www.youtube.com/watch?v=a\n{name} https://www.youtube.com/watch?v=b\n",
        "RD_resolution.txt": f"Radio1.mp4 720\n{name}.mp4 720\n",
        "RD_annotion_time.txt": f"Radio1.mp4 00:01-00:05\n{name}.mp4 00:01-00:05\n",
        "RD_crop_wh.txt": f"Radio1_0.mp4 1 2 3 4\n{name}_0.mp4 1 2 3 4\n",
    }
    parsers = {"RD_video_url.txt": hdtf.parse_video_urls, "RD_resolution.txt": hdtf.parse_resolutions,
               "RD_annotion_time.txt": hdtf.parse_annotation_times, "RD_crop_wh.txt": hdtf.parse_crop_wh}
    for file, text in cases.items():
        path = _write_files(tmp_path, {file: text}) / file
        with pytest.raises(hdtf.AnnotationError, match=rf"{file}:2: video name .* may hold only letters"):
            parsers[file](path)


def test_real_names_pass_and_the_output_path_is_literal_for_yt_dlp(tmp_path):
    path = _write_files(tmp_path, {"WDA_video_url.txt": "LucilleRoybal-Allard https://www.youtube.com/watch?v=c\n"
                                                         "JohnKasich1.mp4 https://www.youtube.com/watch?v=d\n"})
    assert sorted(hdtf.parse_video_urls(path / "WDA_video_url.txt")) == ["JohnKasich1", "LucilleRoybal-Allard"]
    # yt-dlp reads "%(...)s" in --output as a template field; "%%" is its literal "%"
    command = hdtf.yt_dlp_command("u", Path("raw 100%/Radio11.mp4"), 720)
    assert command[command.index("--output") + 1] == "raw 100%%/Radio11.mp4"
