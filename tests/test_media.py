"""Tests for toolkit.media, checked against the ffmpeg binary bundled with imageio-ffmpeg.

Every clip is generated here. Video test clips show their own frame index as a 4x3 grid of
black/white 16-pixel blocks (12 bits), which survives lossy re-encoding, so after running
``ffmpeg -r 25`` we can read back which source frame each output frame shows.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest

from talking_head.toolkit.media import (
    MediaError,
    MediaNotFoundError,
    NoAudioStreamError,
    NotAMediaFileError,
    NoVideoFramesError,
    TruncatedMediaError,
    UnsupportedCodecError,
    VideoReader,
    probe,
    read_audio,
    read_video,
    write_video,
    write_wav,
)

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

H, W, BLOCK = 48, 64, 16  # 3 rows x 4 columns of blocks = 12 bits


# ----------------------------------------------------------------------------- helpers


def ffmpeg(*args: str, stdin: bytes | None = None) -> bytes:
    cmd = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    if stdin is not None:
        cmd.remove("-nostdin")
    result = subprocess.run(cmd, input=stdin, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout


def index_frame(i: int) -> np.ndarray:
    image = np.zeros((H, W, 3), np.uint8)
    for bit in range(12):
        if (i >> bit) & 1:
            r, c = divmod(bit, 4)
            image[r * BLOCK : (r + 1) * BLOCK, c * BLOCK : (c + 1) * BLOCK] = 255
    return image


def frame_index(image: np.ndarray) -> int:
    gray = image.astype(np.float32).mean(axis=2)
    value = 0
    for bit in range(12):
        r, c = divmod(bit, 4)
        if gray[r * BLOCK + 4 : (r + 1) * BLOCK - 4, c * BLOCK + 4 : (c + 1) * BLOCK - 4].mean() > 127:
            value |= 1 << bit
    return value


def indices(frames) -> list[int]:
    return [frame_index(f) for f in frames]


def decode_all(path: Path) -> list[np.ndarray]:
    """Every frame of the file, decoded plainly with PyAV (independent of toolkit.media)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def make_clip(
    path: Path,
    rate,
    n: int,
    *,
    times=None,
    audio: bool = False,
    gop: int | None = None,
    video_start: float = 0.0,
) -> Path:
    """H.264 mp4 whose frame i shows index i. ``times`` (seconds) makes it variable frame rate."""
    rate = Fraction(rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12"}
        if gop:
            stream.codec_context.gop_size = gop
        time_base = Fraction(1, 90000) if times is not None else 1 / rate
        if times is not None:
            stream.codec_context.time_base = time_base
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.layout = "mono"
            total = int((n / rate + video_start) * 16000)
            wave_ = (0.3 * np.sin(2 * np.pi * 440 * np.arange(total) / 16000)).astype(np.float32)
            for start in range(0, total, 1024):
                frame = av.AudioFrame.from_ndarray(wave_[None, start : start + 1024], format="flt", layout="mono")
                frame.sample_rate, frame.pts = 16000, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(index_frame(i), format="rgb24")
            seconds = times[i] if times is not None else i / rate
            frame.pts, frame.time_base = round((seconds + video_start) / time_base), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def vfr_times(n: int, seed: int = 0) -> list[float]:
    """Irregular frame times: bursts (dropped at 25 fps), long gaps (repeated), jitter."""
    rng = random.Random(seed)
    t, times = 0.0, []
    for _ in range(n):
        times.append(t)
        t += rng.choice([1 / 60, 1 / 30, 1 / 30, 1 / 24, 0.1, 0.013, 0.2, 0.045])
    return times


def smooth_frames(t: int, h: int = 96, w: int = 128) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        out[i, ..., 0] = 127.5 + 127 * np.sin(2 * np.pi * (xx + i / t))
        out[i, ..., 1] = 127.5 + 127 * np.cos(2 * np.pi * (yy + 0.5 * xx))
        out[i, ..., 2] = 127.5 + 80 * np.sin(2 * np.pi * (yy - i / t))
    return out


def tone(seconds: float, sample_rate: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    rng = np.random.default_rng(seed)
    columns = [
        0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + 0.05 * rng.standard_normal(n) for c in range(channels)
    ]
    samples = np.stack(columns, axis=1).astype(np.float32)
    return samples[:, 0] if channels == 1 else samples


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


# ----------------------------------------------------------------------------- frame rate conversion


def _clip_30_with_late_video(path: Path) -> Path:
    # Audio from 0 s, video from 0.3 s: ffmpeg pads the start by repeating the first frame.
    return make_clip(path, 30, 30, audio=True, video_start=0.3)


def _ts_remux(path: Path) -> Path:
    # MPEG-TS has no frame durations; ffmpeg falls back to the guessed frame rate.
    src = make_clip(path.with_suffix(".src.mp4"), 30, 40, times=vfr_times(40, seed=3))
    ffmpeg("-i", str(src), "-c", "copy", str(path))
    return path


def _stream_copy_cut(path: Path) -> Path:
    # Cut inside a GOP: the mp4 keeps the GOP start as "discard" packets behind an edit list.
    src = make_clip(path.with_suffix(".src.mp4"), 30, 60, audio=True)
    ffmpeg("-ss", "0.77", "-i", str(src), "-t", "0.6", "-c", "copy", str(path))
    return path


SOURCES = {
    "30fps": lambda p: make_clip(p, 30, 47),
    "24fps": lambda p: make_clip(p, 24, 41),
    "50fps": lambda p: make_clip(p, 50, 53),
    "29.97fps": lambda p: make_clip(p, Fraction(30000, 1001), 61),
    "12.5fps": lambda p: make_clip(p, Fraction(25, 2), 23),
    "60fps": lambda p: make_clip(p, 60, 71),
    "25fps": lambda p: make_clip(p, 25, 30),
    "1frame": lambda p: make_clip(p, 30, 1),
    "vfr": lambda p: make_clip(p, 30, 60, times=vfr_times(60)),
    "vfr_with_audio": lambda p: make_clip(p, 30, 45, times=vfr_times(45, seed=1), audio=True),
    "late_video_with_audio": _clip_30_with_late_video,
    "vfr_mpegts": _ts_remux,
    "stream_copy_cut": _stream_copy_cut,
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_fps_conversion_matches_ffmpeg(tmp_path: Path, name: str) -> None:
    suffix = ".ts" if name == "vfr_mpegts" else ".mp4"
    src = SOURCES[name](tmp_path / f"src{suffix}")
    ref = tmp_path / "ref.mp4"
    ffmpeg("-i", str(src), "-r", "25", str(ref))
    expected = indices(decode_all(ref))  # which source frame each ffmpeg output frame shows

    reader = VideoReader(src)  # default fps=25.0
    got = indices(reader.read_all())
    assert len(reader) == len(expected)
    assert got == expected  # exact, including how many frames are repeated at the start and end


@pytest.mark.parametrize(("source_rate", "target"), [(24, Fraction(30000, 1001)), (50, 30), (30, 12.5)])
def test_other_target_rates_match_ffmpeg(tmp_path: Path, source_rate, target) -> None:
    src = make_clip(tmp_path / "src.mp4", source_rate, 40)
    ref = tmp_path / "ref.mp4"
    ffmpeg("-i", str(src), "-r", str(target), str(ref))
    assert indices(read_video(src, fps=target)) == indices(decode_all(ref))


def test_native_fps_keeps_every_frame(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "vfr.mp4", 30, 40, times=vfr_times(40))
    reader = VideoReader(src, fps=None)
    assert len(reader) == 40
    assert indices(reader.read_all()) == list(range(40))


# ----------------------------------------------------------------------------- streaming and windows


@pytest.fixture(scope="module")
def gop_clip(tmp_path_factory) -> Path:
    """30 fps, keyframe every 12 frames, B-frames (x264 default): windows start mid-GOP."""
    return make_clip(tmp_path_factory.mktemp("gop") / "gop.mp4", 30, 150, gop=12, audio=True)


def test_chunks_and_frames_equal_full_read(gop_clip: Path) -> None:
    reader = VideoReader(gop_clip)
    full = read_video(gop_clip)
    assert full.shape == reader.shape == (len(reader), H, W, 3) and full.dtype == np.uint8
    chunks = list(reader.iter_chunks(7))
    assert all(1 <= len(c) <= 7 for c in chunks) and all(len(c) == 7 for c in chunks[:-1])
    assert np.array_equal(np.concatenate(chunks), full)
    frames = list(reader.iter_frames())
    assert np.array_equal(np.stack(frames), full)
    assert len({id(f) for f in frames}) == len(frames)  # repeated frames are separate arrays


@pytest.mark.parametrize("fps", [25.0, None])
def test_read_window_equals_slice_of_full_read(gop_clip: Path, fps) -> None:
    reader = VideoReader(gop_clip, fps=fps)
    full = reader.read_all()
    n = len(reader)
    windows = [(0, 1), (0, n), (5, 7), (11, 2), (13, 20), (40, 1), (n // 2, 9), (n - 9, 9), (n - 1, 1), (7, 0)]
    rng = random.Random(0)
    windows += [(s, rng.randint(1, n - s)) for s in (rng.randrange(n) for _ in range(10))]
    for start, length in windows:
        window = reader.read_window(start, length)
        assert window.shape == (length, H, W, 3)
        assert np.array_equal(window, full[start : start + length]), (start, length)
    for start, length in reversed(windows):  # seeking backwards too
        assert np.array_equal(reader.read_window(start, length), full[start : start + length])
    assert np.array_equal(reader[n - 1], full[-1]) and np.array_equal(reader[-n], full[0])
    with pytest.raises(IndexError):
        reader.read_window(n - 2, 3)


@pytest.mark.parametrize("container", ["mp4", "mkv", "ts"])
def test_read_window_on_vfr_clip(tmp_path: Path, container: str) -> None:
    src = make_clip(tmp_path / "vfr.mp4", 30, 90, times=vfr_times(90, seed=5), gop=10, audio=True)
    if container != "mp4":  # mkv seeks by pts, MPEG-TS by dts: both must land on the keyframe
        src, mp4 = tmp_path / f"vfr.{container}", src
        ffmpeg("-i", str(mp4), "-c", "copy", str(src))
    reader = VideoReader(src)
    full = reader.read_all()
    for start in range(0, len(reader), 7):
        length = min(5, len(reader) - start)
        assert np.array_equal(reader.read_window(start, length), full[start : start + length])


def test_read_window_decodes_only_from_the_keyframe_before(gop_clip: Path, monkeypatch) -> None:
    with av.open(str(gop_clip)) as container:
        stream = container.streams.video[0]
        keyframes = sorted(round(p.pts * stream.time_base * 30) for p in container.demux(stream) if p.is_keyframe)
    gop_start = max(k for k in keyframes if k <= 147)
    reader = VideoReader(gop_clip, fps=None)
    decoded = []
    original = VideoReader._decoded_frames

    def counting(self, *args, **kwargs):
        for frame in original(self, *args, **kwargs):
            decoded.append(frame)
            yield frame

    monkeypatch.setattr(VideoReader, "_decoded_frames", counting)
    window = reader.read_window(len(reader) - 3, 3)
    assert indices(window) == [147, 148, 149]
    assert len(decoded) <= (150 - gop_start) + 3  # from the keyframe before the window, not all 150


def test_reader_pickles_and_reopens(gop_clip: Path) -> None:
    reader = VideoReader(gop_clip)
    clone = pickle.loads(pickle.dumps(reader))
    assert np.array_equal(clone.read_window(10, 4), reader.read_window(10, 4))
    reader.close()
    assert np.array_equal(reader.read_window(10, 4), clone.read_window(10, 4))  # reopens lazily


def test_frame_count_comes_from_decoding_not_metadata(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "src.mp4", 30, 60, audio=True)
    cut = tmp_path / "cut.mp4"
    ffmpeg("-ss", "0.5", "-i", str(src), "-t", "0.6", "-c", "copy", str(cut))
    shown = decode_all(cut)
    info = probe(cut)
    # The header counts the hidden GOP-start packets too: the metadata is wrong here ...
    assert info.frame_count_metadata is not None and info.frame_count_metadata != len(shown)
    # ... and we do not use it: native count == frames actually decoded, 25 fps count == ffmpeg's.
    assert len(VideoReader(cut, fps=None)) == len(shown)
    assert len(read_video(cut, fps=None)) == len(shown)
    ref = tmp_path / "ref.mp4"
    ffmpeg("-i", str(cut), "-r", "25", str(ref))
    assert len(VideoReader(cut)) == len(decode_all(ref))


def test_probe_fields(gop_clip: Path) -> None:
    info = probe(gop_clip)
    assert info.has_video and info.has_audio
    assert [(s.kind, s.codec) for s in info.streams] == [("video", "h264"), ("audio", "aac")]
    assert info.fps == pytest.approx(30.0) and (info.width, info.height) == (W, H)
    assert info.duration == pytest.approx(5.0, abs=0.1)
    assert info.sample_rate == 16000 and info.channels == 1


def test_display_rotation_is_applied_like_ffmpeg(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "src.mp4", 25, 5)
    rotated = tmp_path / "rot.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(src), "-c", "copy", str(rotated))
    raw = ffmpeg("-i", str(rotated), "-f", "rawvideo", "-pix_fmt", "rgb24", "-")
    expected = np.frombuffer(raw, np.uint8).reshape(-1, W, H, 3)  # ffmpeg turns it upright
    got = read_video(rotated)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


# ----------------------------------------------------------------------------- audio


def _audio_source(path: Path, sample_rate: int, channels: int, codec: str | None = None) -> Path:
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    samples = tone(1.3, sample_rate, channels).reshape(-1)
    args = ["-f", "f32le", "-ar", str(sample_rate), "-ch_layout", layout, "-i", "-"]
    ffmpeg(*args, *(["-c:a", codec] if codec else []), str(path), stdin=samples.tobytes())
    return path


AUDIO_SOURCES = {
    "44k1_stereo.wav": (44100, 2, None),
    "44k1_stereo.m4a": (44100, 2, "aac"),
    "48k_5.1.wav": (48000, 6, None),
    "48k_5.1.m4a": (48000, 6, "aac"),
    "8k_mono.wav": (8000, 1, None),
    "16k_mono.wav": (16000, 1, None),
}


@pytest.mark.parametrize("name", list(AUDIO_SOURCES))
def test_read_audio_matches_ffmpeg_cli(tmp_path: Path, name: str) -> None:
    src = _audio_source(tmp_path / name, *AUDIO_SOURCES[name])
    cli = ffmpeg("-i", str(src), "-vn", "-ac", "1", "-ar", "16000", "-f", "s16le", "-")  # SyncNet's extraction
    expected = np.frombuffer(cli, np.int16)
    got = read_audio(src, sample_rate=16000, dtype="int16")
    assert got.dtype == np.int16 and got.ndim == 1
    assert len(got) == len(expected)
    assert np.abs(got.astype(np.int32) - expected).max() <= 1
    as_float = read_audio(src)
    assert as_float.dtype == np.float32 and np.array_equal(as_float, got / np.float32(32768))


def test_read_audio_of_video_file_and_other_rate(gop_clip: Path) -> None:
    cli = ffmpeg("-i", str(gop_clip), "-vn", "-ac", "1", "-ar", "22050", "-f", "s16le", "-")
    expected = np.frombuffer(cli, np.int16)
    got = read_audio(gop_clip, sample_rate=22050, dtype="int16")
    assert len(got) == len(expected) and np.abs(got.astype(np.int32) - expected).max() <= 1


def test_read_audio_float_view_stays_in_range(tmp_path: Path) -> None:
    loud = np.clip(3.0 * tone(0.5, 44100, 2), -1, 1)  # full-scale, clipped
    src = tmp_path / "loud.wav"
    ffmpeg("-f", "f32le", "-ar", "44100", "-ch_layout", "stereo", "-i", "-", str(src), stdin=loud.tobytes())
    audio = read_audio(src)
    assert audio.min() >= -1.0 and audio.max() <= 1.0 and np.abs(audio).max() > 0.9
    with pytest.raises(ValueError):
        read_audio(src, dtype="float64")


# ----------------------------------------------------------------------------- writing


def test_write_read_roundtrip(tmp_path: Path) -> None:
    frames = smooth_frames(50)
    audio = tone(2.0)  # 50 frames at 25 fps = 2 s
    out = write_video(tmp_path / "out.mp4", frames, fps=25, audio=audio)
    assert out == tmp_path / "out.mp4"
    back = read_video(out, fps=25)
    assert back.shape == frames.shape
    assert psnr(back, frames) > 35
    assert np.array_equal(read_video(out, fps=None), back)
    heard = read_audio(out)
    assert len(heard) == len(audio)  # encoder delay and padding are removed again
    info = probe(out)
    assert [s.codec for s in info.streams] == ["h264", "aac"]
    assert info.duration == pytest.approx(2.0, abs=0.05) and info.fps == 25.0
    # Written like ffmpeg would: yuv420p, moov box before mdat (+faststart).
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == "yuv420p"
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_write_video_is_deterministic(tmp_path: Path) -> None:
    frames = smooth_frames(30)
    audio = tone(1.2, channels=2)
    a = write_video(tmp_path / "a.mp4", frames, fps=25, audio=audio)
    b = write_video(tmp_path / "b.mp4", iter(frames), fps=25, audio=audio)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_write_video_streams_any_iterable_and_audio_layouts(tmp_path: Path) -> None:
    frames = smooth_frames(20, 64, 96)
    generator = (f for f in frames)  # consumed once, never materialised
    stereo_int16 = (tone(0.8, channels=2) * 32767).astype(np.int16)
    out = write_video(tmp_path / "gen.mp4", generator, fps=Fraction(30000, 1001), audio=stereo_int16, crf=10)
    info = probe(out)
    assert info.fps == pytest.approx(30000 / 1001) and info.channels == 2
    assert len(read_video(out, fps=None)) == 20
    assert len(read_audio(out)) == 16000 * 8 // 10


def test_write_video_rejects_odd_size_and_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "odd.mp4"
    with pytest.raises(ValueError, match="odd"):
        write_video(dest, np.zeros((3, 47, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        write_video(dest, np.zeros((3, 48, 64, 3), np.float32))
    with pytest.raises(ValueError):
        write_video(dest, [])
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_on_failure(tmp_path: Path) -> None:
    dest = tmp_path / "clip.mp4"
    dest.write_bytes(b"previous version")

    def frames_then_crash():
        yield from smooth_frames(10)
        raise RuntimeError("producer died")

    with pytest.raises(RuntimeError, match="producer died"):
        write_video(dest, frames_then_crash())
    assert dest.read_bytes() == b"previous version"  # old file intact, no partial mp4
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # temporary file removed


def test_write_wav_roundtrip(tmp_path: Path) -> None:
    audio = tone(0.7)
    out = write_wav(tmp_path / "a.wav", audio, sample_rate=16000)
    expected = np.clip(np.rint(audio * 32768), -32768, 32767).astype(np.int16)
    assert np.array_equal(read_audio(out, dtype="int16"), expected)
    assert np.array_equal(np.frombuffer(ffmpeg("-i", str(out), "-f", "s16le", "-"), np.int16), expected)
    info = probe(out)
    assert info.sample_rate == 16000 and info.channels == 1 and [s.codec for s in info.streams] == ["pcm_s16le"]
    stereo = write_wav(tmp_path / "s.wav", (tone(0.2, 8000, 2) * 20000).astype(np.int16), sample_rate=8000)
    assert probe(stereo).channels == 2


# ----------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("bad")
    files: dict[str, Path] = {"missing": d / "missing.mp4"}
    (d / "text.mp4").write_text("this is not a video\n" * 20)
    files["text"] = d / "text.mp4"
    good = write_video(d / "good.mp4", smooth_frames(25, 48, 64), audio=tone(1.0))  # +faststart
    moov_last = d / "moov_last.mp4"
    ffmpeg("-i", str(good), "-c", "copy", str(moov_last))  # ffmpeg's default: moov after mdat
    for name, src in [("truncated_faststart", good), ("truncated_moov_at_end", moov_last)]:
        data = src.read_bytes()
        files[name] = d / f"{name}.mp4"
        files[name].write_bytes(data[: len(data) // 2])
    files["audio_only"] = d / "audio_only.m4a"
    ffmpeg("-i", str(good), "-vn", "-c:a", "copy", str(files["audio_only"]))
    files["video_only"] = d / "video_only.mp4"
    ffmpeg("-i", str(good), "-an", "-c:v", "copy", str(files["video_only"]))
    # A video stream whose packets are all zeros: it demuxes, but no frame decodes.
    files["undecodable_video"] = d / "undecodable.mp4"
    files["undecodable_video"].write_bytes(good.read_bytes())
    with av.open(str(good)) as container:
        spans = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    with open(files["undecodable_video"], "r+b") as f:
        for pos, size in spans:
            f.seek(pos)
            f.write(bytes(size))
    # Stream copy under a fourcc FFmpeg has no decoder for.
    files["unknown_codec"] = d / "unknown.avi"
    unknown = ["-an", "-c:v", "copy", "-tag:v", "XXXX", "-strict", "unofficial"]
    ffmpeg("-i", str(good), *unknown, str(files["unknown_codec"]))
    return files


def _video(path):
    return read_video(path)


def _reader(path):
    return VideoReader(path)


def _audio(path):
    return read_audio(path)


BAD_CASES = [
    ("missing", [probe, _video, _reader, _audio], MediaNotFoundError),
    ("text", [probe, _video, _reader, _audio], NotAMediaFileError),
    ("truncated_faststart", [probe, _video, _reader, _audio], TruncatedMediaError),
    ("truncated_moov_at_end", [probe, _video, _reader, _audio], TruncatedMediaError),
    ("audio_only", [_video, _reader], NoVideoFramesError),
    ("undecodable_video", [_video, _reader], NoVideoFramesError),
    ("video_only", [_audio], NoAudioStreamError),
    ("unknown_codec", [_video, _reader], UnsupportedCodecError),
]


@pytest.mark.parametrize(
    ("case", "call", "error"),
    [(case, call, error) for case, calls, error in BAD_CASES for call in calls],
    ids=[f"{case}-{call.__name__.strip('_')}" for case, calls, _ in BAD_CASES for call in calls],
)
def test_bad_input_raises_specific_error_naming_the_file(bad_files, case, call, error) -> None:
    path = bad_files[case]
    with pytest.raises(error) as info:
        call(path)
    exc = info.value
    assert isinstance(exc, MediaError) and not isinstance(exc, av.error.FFmpegError)
    assert exc.path == str(path) and str(path) in str(exc)
    assert str(exc) == f"{path}: {exc.cause}" and exc.cause


def test_bad_files_still_probe_when_readable(bad_files) -> None:
    assert probe(bad_files["unknown_codec"]).streams[0].codec == "unknown"
    assert not probe(bad_files["audio_only"]).has_video
    assert read_audio(bad_files["undecodable_video"]).size > 0  # its audio is fine


def test_error_types_behave(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError):  # MediaNotFoundError is a FileNotFoundError
        probe(missing)
    exc = pickle.loads(pickle.dumps(TruncatedMediaError(missing, "cut short")))  # survives workers
    assert type(exc) is TruncatedMediaError and str(exc) == f"{missing}: cut short"
    with pytest.raises(NotAMediaFileError):
        probe(tmp_path)  # a directory


# ----------------------------------------------------------------------------- odd paths


def test_paths_with_spaces_and_non_ascii(tmp_path: Path) -> None:
    folder = tmp_path / "dir with spaces ü"
    folder.mkdir()
    clip = folder / "clip ä 東京.mp4"
    frames = smooth_frames(12, 48, 64)
    assert write_video(clip, frames, fps=25, audio=tone(0.48)) == clip
    info = probe(clip)
    assert info.has_video and info.has_audio and info.path == str(clip)
    assert read_video(clip).shape == (12, 48, 64, 3)
    reader = VideoReader(str(clip))
    assert np.array_equal(reader.read_window(4, 3), reader.read_all()[4:7])
    assert len(read_audio(clip)) == int(0.48 * 16000)
    wav = write_wav(folder / "ton é 音.wav", tone(0.1))
    assert len(read_audio(wav)) == 1600
    truncated = folder / "kaputt ß 壊れた.mp4"
    truncated.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(TruncatedMediaError, match="kaputt ß 壊れた"):
        read_video(truncated)
    assert sorted(p.name for p in folder.iterdir()) == sorted([clip.name, wav.name, truncated.name])
