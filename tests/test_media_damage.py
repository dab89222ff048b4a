"""Damaged files as real collections hold them (issue 19): what plays is read, the rest is refused plainly.

An mp4 with bytes after its last box plays and is read whole; a file cut anywhere is refused as cut short; a
stream with a few undecodable or error-concealed packets is read the way a player shows it, with the damaged
frames counted; more damage than ``MAX_DAMAGED_FRACTION`` is refused with the count. Every refusal is one plain
sentence (``cause``) with the technical evidence apart (``detail``).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import av
import numpy as np
import pytest

from talking_head.toolkit.media import (
    DamagedVideoError, MediaError, NotAMediaFileError, TruncatedMediaError, VideoReader, read_audio, read_video,
    write_video,
)
from talking_head.toolkit.media.constants import MAX_DAMAGED_FRACTION
from test_media import ffmpeg, smooth_frames, tone

FRAMES = 50


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    """50 frames at 25 fps with audio, one GOP (x264 defaults): P- and B-frames after one keyframe."""
    return write_video(tmp_path_factory.mktemp("damage") / "good.mp4", smooth_frames(FRAMES), audio=tone(2.0))


def _video_packets(path: Path) -> list[tuple[int, int, bool, int]]:
    """(byte offset, size, keyframe, pts) of every video packet, in decode order."""
    with av.open(str(path)) as container:
        return [(p.pos, p.size, p.is_keyframe, p.pts) for p in container.demux(video=0) if p.size]


def _damaged_copy(good: Path, out: Path, packets: list[int], how: str, seed: int = 0) -> Path:
    """A copy of ``good`` with the given video packets zeroed ("zero": the decoder cannot decode them) or with
    bits flipped inside them ("flip": it decodes them with errors and conceals the damage)."""
    data = bytearray(good.read_bytes())
    spans = _video_packets(good)
    rng = np.random.default_rng(seed)
    for k in packets:
        pos, size = spans[k][:2]
        if how == "zero":
            data[pos : pos + size] = bytes(size)
        else:
            for offset in rng.integers(8, size, 20):
                data[pos + int(offset)] ^= 1 << int(rng.integers(0, 8))
    out.write_bytes(bytes(data))
    return out


def _ffmpeg_frames(path: Path, fps: float) -> np.ndarray:
    raw = ffmpeg("-i", str(path), "-r", str(fps), "-pix_fmt", "rgb24", "-f", "rawvideo", "-")
    return np.frombuffer(raw, np.uint8).reshape(-1, 96, 128, 3)


@pytest.mark.parametrize("layout", ["faststart", "moov_at_end"])
def test_bytes_after_the_last_box_are_read_and_cuts_at_five_points_are_refused(tmp_path: Path, layout) -> None:
    """An mp4 with bytes appended after its last box plays in every player and is read whole; an mp4 cut
    anywhere is refused as cut short, naming the file."""
    good = write_video(tmp_path / "good.mp4", smooth_frames(25, 48, 64), audio=tone(1.0))  # +faststart
    if layout == "moov_at_end":
        ffmpeg("-i", str(good), "-c", "copy", str(tmp_path / "moov_last.mp4"))
        good = tmp_path / "moov_last.mp4"
    data = good.read_bytes()
    frames, audio = read_video(good), read_audio(good)
    rng = np.random.default_rng(0)
    for name, tail in (("garbage", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()),
                       ("zeros", bytes(100)), ("text", b"downloaded by a tool\n")):
        padded = tmp_path / f"{name}.mp4"
        padded.write_bytes(data + tail)
        assert np.array_equal(read_video(padded), frames) and np.array_equal(read_audio(padded), audio)
    for fraction in (0.1, 0.3, 0.5, 0.7, 0.95):
        cut = tmp_path / f"cut_{fraction}.mp4"
        cut.write_bytes(data[: int(len(data) * fraction)])
        with pytest.raises(TruncatedMediaError, match=re.escape(str(cut))) as info:
            read_video(cut)
        assert "cut short" in info.value.cause and "Errno" not in info.value.cause, info.value.cause


def test_a_lost_frame_is_shown_as_ffmpeg_shows_it(good: Path, tmp_path: Path) -> None:
    """One packet the decoder cannot decode: the frame count stays, the lost frame shows the next picture (what
    `ffmpeg -r 25` outputs, frame for frame), the frames decoded before it are the good file's, and the loss is
    counted. (Frames predicted from the lost one differ too, as in any player.)"""
    packets = _video_packets(good)
    middle = next(k for k in range(FRAMES // 2, FRAMES) if not packets[k][2])
    damaged = _damaged_copy(good, tmp_path / "lost.mp4", [middle], "zero")
    reader = VideoReader(damaged)
    frames = reader.read_all()
    assert reader.damaged_frames == {"lost": 1, "concealed": 0}
    assert np.array_equal(frames, _ffmpeg_frames(damaged, 25))
    reference = read_video(good)
    lost = sorted(p[3] for p in packets).index(packets[middle][3])  # the packet's frame, in presentation order
    assert np.array_equal(frames[lost], frames[lost + 1]) and not np.array_equal(frames[lost], reference[lost])
    assert np.array_equal(frames[: FRAMES // 4], reference[: FRAMES // 4])
    # Random access gives the same frames as the sequential pass, and counts the same loss when it meets it.
    windows = VideoReader(damaged)
    for start in range(0, FRAMES - 7, 6):
        assert np.array_equal(windows.read_window(start, 7), frames[start : start + 7]), start
    assert windows.damaged_frames == {"lost": 1, "concealed": 0}
    # At another rate the count of output frames still comes from the container's index.
    assert len(VideoReader(damaged, fps=30).read_all()) == len(read_video(good, fps=30))


def test_bit_flips_in_frame_data_are_read_and_counted(good: Path, tmp_path: Path) -> None:
    """Bits flipped inside one packet: the decoder conceals the errors; the file is read whole and the damaged
    frame is counted; frames before it are untouched."""
    packets = _video_packets(good)
    middle = next(k for k in range(FRAMES // 2, FRAMES) if not packets[k][2])
    damaged = _damaged_copy(good, tmp_path / "flipped.mp4", [middle], "flip", seed=1)
    reader = VideoReader(damaged)
    frames = reader.read_all()
    assert frames.shape == (FRAMES, 96, 128, 3)
    counts = reader.damaged_frames
    assert 1 <= counts["lost"] + counts["concealed"] <= MAX_DAMAGED_FRACTION * FRAMES, counts
    reference = read_video(good)
    first_differing = next(k for k in range(FRAMES) if not np.array_equal(frames[k], reference[k]))
    assert first_differing >= FRAMES // 4  # the damage is where the packet is, not everywhere
    assert np.array_equal(read_audio(damaged), read_audio(good))


@pytest.mark.parametrize("how", ["zero", "flip"])
def test_damage_above_the_threshold_is_refused_with_the_count(good: Path, tmp_path: Path, how: str) -> None:
    packets = [k for k, packet in enumerate(_video_packets(good)) if not packet[2]][3::5]  # 10 of 49
    damaged = _damaged_copy(good, tmp_path / f"{how}.mp4", packets, how, seed=2)
    with pytest.raises(DamagedVideoError) as info:
        read_video(damaged)
    err = info.value
    found = re.search(r"(\d+) of its 50 video frames are damaged \((\d+) cannot be decoded, (\d+) decode with errors\)",
                      err.cause)
    assert found, err.cause
    total, lost, concealed = map(int, found.groups())
    assert total == lost + concealed > MAX_DAMAGED_FRACTION * FRAMES
    assert "more than the 5%" in err.cause and str(damaged) in str(err) and "damaged source frames [" in err.detail
    # A looser threshold reads it, and reports the same count.
    reader = VideoReader(damaged, max_damaged_fraction=0.9)
    assert len(reader.read_all()) == FRAMES and sum(reader.damaged_frames.values()) == total
    # The error keeps its parts across processes (worker pools pickle it).
    again = pickle.loads(pickle.dumps(err))
    assert (type(again), again.cause, again.detail) == (DamagedVideoError, err.cause, err.detail)


def test_refusals_are_one_plain_sentence_with_the_evidence_apart(good: Path, tmp_path: Path) -> None:
    """The reason says what is wrong and what to do; FFmpeg's own words and byte offsets go to ``detail``."""
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 20)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    keyframe = _damaged_copy(good, tmp_path / "keyframe.mp4", [0], "zero")  # nothing after it can decode
    cases = {empty: (NotAMediaFileError, "empty"), text: (NotAMediaFileError, "not a video or audio file"),
             cut: (TruncatedMediaError, "cut short"), keyframe: (MediaError, "none of the video frames can be decoded")}
    for path, (error, words) in cases.items():
        with pytest.raises(error) as info:
            read_video(path)
        cause = info.value.cause
        assert words in cause and str(path) in str(info.value), cause
        assert "\n" not in cause and not re.search(r"Errno|pts|box '|\(Invalid|Operation not permitted", cause), cause
        if path is not empty:
            assert info.value.detail, path  # the evidence is kept, apart from the sentence
