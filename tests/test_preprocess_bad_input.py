"""Every awkward input is either processed correctly or listed in failures.jsonl; the run goes on."""

from __future__ import annotations

import json
import re
import subprocess

import av
import numpy as np
import pytest
from datasets import load_from_disk
from typer.testing import CliRunner

from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate


def _ffmpeg(*args: str) -> None:
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *args], check=True)


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    clip = generate(root / "sample", speakers=1, clips=1, seconds=2.0, seed=5, show_progress=False)[0]
    frames = media.read_video(clip.video)
    audio = media.read_audio(clip.audio)
    videos = root / "videos" / "spk"
    videos.mkdir(parents=True)

    good = videos / "good.mp4"
    good.write_bytes(clip.video.read_bytes())
    (videos / "truncated.mp4").write_bytes(clip.video.read_bytes()[: clip.video.stat().st_size // 2])
    (videos / "not_a_video.mp4").write_text("this is not a video\n")
    media.write_video(videos / "no_audio.mp4", frames)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, size=frames.shape, dtype=np.uint8)
    media.write_video(videos / "no_face.mp4", noise, audio=audio)
    lost = frames.copy()
    lost[20:35] = 128
    media.write_video(videos / "face_lost.mp4", lost, audio=audio)
    two = np.concatenate([frames, np.repeat(frames[:1], len(frames), axis=0)], axis=2)  # talking left, still right
    media.write_video(videos / "two_faces.mp4", two, audio=audio)
    media.write_video(videos / "one_frame.mp4", frames[:1], audio=audio[:640])
    stereo = np.stack([audio, 0.5 * audio], axis=1)
    stereo_44k = np.repeat(stereo, 3, axis=0)[: int(len(audio) * 44100 / 16000)]  # crude 44.1 kHz stand-in
    media.write_video(videos / "stereo_44k.mp4", frames, audio=stereo_44k, sample_rate=44100)
    # Variable frame rate: irregular frame intervals (40 ms +- 10 ms), timestamps kept as they are.
    _ffmpeg("-i", str(good), "-vf", "setpts=(N/25+0.01*mod(N\\,3))/TB", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-c:a", "copy", str(videos / "vfr.mp4"))
    # A phone video: stored sideways with a display-rotation tag.
    _ffmpeg("-i", str(good), "-vf", "transpose=2", "-c:v", "libx264", "-c:a", "copy", str(root / "sideways.mp4"))
    _ffmpeg("-display_rotation", "-90", "-i", str(root / "sideways.mp4"), "-c", "copy", str(videos / "rotated.mp4"))
    _ffmpeg("-i", str(good), "-vf", "scale=513:287", "-c:v", "libx264", "-pix_fmt", "yuv444p", "-c:a", "copy",
            str(videos / "odd_513x287.mkv"))

    _damaged_copies(good, videos)

    out = root / "dataset"
    run = CliRunner().invoke(app, ["preprocess", "--dataset", "folder", "--input", str(root / "videos"),
                                   "--out", str(out), "--size", "256", "--workers", "2", "-q"])
    return run, out


def _damaged_copies(good, videos) -> None:
    """What real collections hold (issue 19): damaged copies of a good mp4 (faststart: ftyp, moov, free, mdat)."""
    data = good.read_bytes()
    rng = np.random.default_rng(1)
    (videos / "zero_byte.mp4").write_bytes(b"")
    (videos / "appended.mp4").write_bytes(data + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    middle = len(data) // 2
    (videos / "zeroed_block.mp4").write_bytes(data[:middle] + bytes(4096) + data[middle + 4096 :])
    chunks = [data[i : i + 8192] for i in range(0, len(data), 8192)]
    shuffled = chunks[:2] + [chunks[2:][i] for i in rng.permutation(len(chunks) - 2)]
    (videos / "shuffled.mp4").write_bytes(b"".join(shuffled))
    moov_end = 32 + int.from_bytes(data[32:36], "big")  # ftyp is 32 bytes, moov follows
    assert data[36:40] == b"moov"
    (videos / "duplicated_header.mp4").write_bytes(data[:moov_end] + data[32:moov_end] + data[moov_end:])
    with av.open(str(good)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    light, heavy = bytearray(data), bytearray(data)
    for pos, size in packets[10:12]:  # bits flipped in two frames: decoded with errors, under the threshold
        for offset in rng.integers(8, size, 30):
            light[pos + int(offset)] ^= 1 << int(rng.integers(0, 8))
    for pos, size in packets[1::4]:  # every fourth frame undecodable: far over it
        heavy[pos : pos + size] = bytes(size)
    (videos / "bitflip_light.mp4").write_bytes(bytes(light))
    (videos / "bitflip_heavy.mp4").write_bytes(bytes(heavy))


FAILING = {"spk__truncated", "spk__not_a_video", "spk__no_audio", "spk__no_face", "spk__zero_byte", "spk__shuffled",
           "spk__duplicated_header", "spk__bitflip_heavy"}
PROCESSED = {"spk__good", "spk__face_lost", "spk__two_faces", "spk__one_frame", "spk__stereo_44k", "spk__vfr",
             "spk__rotated", "spk__odd_513x287", "spk__appended", "spk__zeroed_block", "spk__bitflip_light"}
MEDIA_FAILURES = FAILING - {"spk__no_face"}  # refused by the media layer: a sentence plus the evidence apart


def test_run_reports_failures_and_continues(result):
    run, out = result
    assert run.exit_code == 2, run.output
    assert f"{len(PROCESSED)} clips done, {len(FAILING)} failed" in run.output, run.output[-3000:]
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert {f["clip_id"] for f in failures} == FAILING
    for failure in failures:
        assert failure["path"] and "\n" not in failure["reason"]
        assert failure["path"].split("/")[-1].split(".")[0] in failure["clip_id"]
    reasons = {f["clip_id"]: f["reason"].lower() for f in failures}
    assert "cut short" in reasons["spk__truncated"]
    assert "audio" in reasons["spk__no_audio"]
    assert "face" in reasons["spk__no_face"]
    assert "empty" in reasons["spk__zero_byte"]
    assert re.search(r"\d+ of its 50 video frames are damaged .* more than the 5%", reasons["spk__bitflip_heavy"])
    for failure in failures:  # one plain sentence; FFmpeg's words, offsets and timestamps only in the detail
        cause = failure["reason"].lower().removeprefix(failure["path"].lower())
        assert not re.search(r"errno|operation not permitted|invalid data|\bpts\b|box '", cause), failure
        if failure["clip_id"] in MEDIA_FAILURES and failure["clip_id"] not in {"spk__zero_byte", "spk__not_a_video"}:
            assert failure["detail"], failure


def test_awkward_inputs_are_processed(result):
    _, out = result
    dataset = load_from_disk(str(out))
    rows = {r["clip_id"]: r for split in dataset.values() for r in split.with_format("numpy")}
    assert set(rows) == PROCESSED
    for clip_id, row in rows.items():
        t = int(row["num_frames"])
        assert row["landmarks"].shape == (t, 478, 3) and len(row["audio"]) == round(t / 25 * 16000), clip_id
    assert int(rows["spk__one_frame"]["num_frames"]) == 1
    assert int(rows["spk__good"]["num_frames"]) == 50
    lost = rows["spk__face_lost"]
    assert 10 <= int(lost["frames_without_face"]) <= 20 and float(lost["face_fraction"]) < 1.0
    # The main (talking) face is the left one.
    assert np.nanmean(rows["spk__two_faces"]["boxes"][:, 2]) < 512 + 64
    for clip_id in ("spk__rotated", "spk__odd_513x287", "spk__vfr", "spk__stereo_44k"):
        assert float(rows[clip_id]["face_fraction"]) > 0.9, clip_id
    assert int(rows["spk__vfr"]["frames_dropped"]) >= 0
    # Damaged but playable: read as a player shows it, the damage counted; bytes after the last box change nothing.
    assert int(rows["spk__good"]["frames_damaged"]) == 0 and int(rows["spk__appended"]["frames_damaged"]) == 0
    assert np.array_equal(rows["spk__appended"]["landmarks"], rows["spk__good"]["landmarks"], equal_nan=True)
    for clip_id in ("spk__zeroed_block", "spk__bitflip_light"):
        assert 1 <= int(rows[clip_id]["frames_damaged"]) <= 2 and int(rows[clip_id]["num_frames"]) == 50, clip_id

