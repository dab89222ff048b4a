"""Media I/O for the whole toolkit: probe files, read video and audio, write video and WAV.

One obvious entry point per job::

    info   = probe(path)                               # streams, duration, fps, size, audio format
    frames = read_video(path, fps=25.0)                # (T, H, W, 3) uint8 RGB at 25 fps
    reader = VideoReader(path, fps=25.0)               # streaming / random access at 25 fps
    audio  = read_audio(path, sample_rate=16000)       # 1-D mono float32 in [-1, 1] (or int16)
    write_video(path, frames, fps=25, audio=audio)     # H.264 + AAC mp4, atomic, deterministic
    write_wav(path, audio, sample_rate=16000)          # 16-bit PCM, atomic

Everything goes through PyAV (FFmpeg's libraries); decord is not used (unmaintained, and
returns wrong frames after some seeks). OpenCV only converts RGB to YUV before encoding.

Frame-rate conversion reproduces ``ffmpeg -i in.mp4 -r 25 out.mp4`` frame for frame: the
CFR duplicate/drop rule of fftools (``video_sync_process`` in ffmpeg_filter.c, including the
"-vsync vscfr" variant used for single-stream inputs and the end-of-stream repetition) is
re-implemented in :func:`_ffmpeg_cfr_indices` and checked against the ffmpeg binary in
tests/test_media.py. Audio is resampled and down-mixed by libswresample exactly like
``ffmpeg -i X -vn -ac 1 -ar 16000 -f s16le -`` (the SyncNet reference extraction).

Every failure raises a :class:`MediaError` subclass whose message names the file and the cause;
no ``av.error`` escapes from the public functions.
"""

from __future__ import annotations

import errno
import os
import wave
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Literal, Optional, Union

import av
import av.error
import cv2
import numpy as np

from talking_head.toolkit.fileio import atomic_path

__all__ = [
    "VIDEO_EXTENSIONS",
    "DEFAULT_FPS",
    "DEFAULT_SAMPLE_RATE",
    "MediaError",
    "MediaNotFoundError",
    "NotAMediaFileError",
    "TruncatedMediaError",
    "NoVideoFramesError",
    "NoAudioStreamError",
    "UnsupportedCodecError",
    "StreamInfo",
    "MediaInfo",
    "probe",
    "VideoReader",
    "read_video",
    "read_audio",
    "write_video",
    "write_wav",
]

PathLike = Union[str, "os.PathLike[str]"]
Rate = Union[int, float, str, Fraction]

# ----------------------------------------------------------------------------- constants

# Every video suffix the toolkit lists in folders or looks files up by (compared lower-case). The
# first four are in the order a same-named file is preferred (HDTF downloads: mp4, then mkv ...).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".flv")
DEFAULT_FPS = 25.0  # talking-head datasets and SyncNet work at 25 fps
DEFAULT_SAMPLE_RATE = 16000  # SyncNet / wav2vec / HuBERT input rate
DEFAULT_CHUNK_SIZE = 16  # frames per chunk: small chunks are recycled by malloc, big ones page-fault
DEFAULT_CRF = 18  # x264 constant rate factor: visually lossless for faces

X264_PRESET = "medium"
# x264's output depends on its thread count (frame threads constrain motion search), and the
# default ("auto") depends on the machine's core count. A fixed count makes write_video
# byte-identical for the same input on any machine.
X264_THREADS = 4
AAC_BITRATE = 128_000
AAC_FRAME_SIZE = 1024  # samples per AAC frame; the native encoder wants exactly this
MP4_OPTIONS = {"movflags": "+faststart"}  # moov box first, so files stream and seek well

# ffmpeg parses "-r 29.97" with av_d2q(x, 1001000); rates given as floats are read the same way.
_MAX_RATE_DENOMINATOR = 1_001_000
_AV_TIME_BASE = 1_000_000  # FFmpeg's internal microsecond time base (container.start_time)


# ----------------------------------------------------------------------------- errors


class MediaError(Exception):
    """A media file could not be read or written. ``str(exc) == f"{path}: {cause}"``."""

    def __init__(self, path: PathLike, cause: str) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        super().__init__(self.path, cause)

    def __str__(self) -> str:
        return f"{self.path}: {self.cause}"

    def __reduce__(self):  # keep (path, cause) when pickled, e.g. out of DataLoader workers
        return (type(self), (self.path, self.cause))


class MediaNotFoundError(MediaError, FileNotFoundError):
    """The file does not exist."""

    def __init__(self, path: PathLike, cause: str = "no such file") -> None:
        MediaError.__init__(self, path, cause)
        self.errno, self.strerror, self.filename = errno.ENOENT, cause, self.path


class NotAMediaFileError(MediaError):
    """The file exists but FFmpeg does not recognise it as audio or video."""


class TruncatedMediaError(MediaError):
    """The file was cut off (e.g. an interrupted download or copy)."""


class NoVideoFramesError(MediaError):
    """There is no video stream, or the video stream has no decodable frames."""


class NoAudioStreamError(MediaError):
    """Audio was required but the file has no audio stream."""


class UnsupportedCodecError(MediaError):
    """A stream uses a codec FFmpeg has no decoder for (unknown fourcc, missing decoder)."""


# ----------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # "video", "audio", "subtitle", "data", ...
    codec: str  # FFmpeg codec name, "unknown" when FFmpeg cannot identify it


@dataclass(frozen=True)
class MediaInfo:
    """What the container says about a file. Nothing here is decoded.

    ``frame_count_metadata`` is the count written in the container header; it is often wrong
    (stream-copy cuts, edit lists, VFR) and is never used by this module. The real count at a
    given rate is ``len(VideoReader(path, fps))``.
    """

    path: str
    format: str
    duration: Optional[float]  # seconds
    streams: list[StreamInfo] = field(default_factory=list)
    has_video: bool = False
    has_audio: bool = False
    fps: Optional[float] = None  # average frame rate of the video stream
    width: Optional[int] = None  # as coded; VideoReader applies the display rotation
    height: Optional[int] = None
    frame_count_metadata: Optional[int] = None  # untrustworthy, see above
    sample_rate: Optional[int] = None
    channels: Optional[int] = None


def probe(path: PathLike) -> MediaInfo:
    """Describe the streams of a media file without decoding it."""
    with _open_input(path) as container:
        streams = [StreamInfo(s.index, s.type, _codec_name(s)) for s in container.streams]
        video = _select_video_stream(container)
        audio = _select_audio_stream(container)
        duration = None
        if container.duration is not None:
            duration = container.duration / _AV_TIME_BASE
        info = dict(
            path=os.fspath(path),
            format=container.format.name,
            duration=duration,
            streams=streams,
            has_video=video is not None,
            has_audio=audio is not None,
        )
        if video is not None:
            rate = video.average_rate or video.guessed_rate
            ctx = video.codec_context
            info.update(
                fps=float(rate) if rate else None,
                width=ctx.width if ctx is not None else None,
                height=ctx.height if ctx is not None else None,
                frame_count_metadata=video.frames or None,
            )
        if audio is not None and audio.codec_context is not None:
            info.update(
                sample_rate=audio.codec_context.sample_rate or None,
                channels=audio.codec_context.channels or None,
            )
        return MediaInfo(**info)


# ----------------------------------------------------------------------------- opening files


def _open_container(path: str) -> "av.container.InputContainer":
    """Open a file for reading, turning every failure into a named MediaError."""
    if not os.path.exists(path):
        raise MediaNotFoundError(path)
    if os.path.isdir(path):
        raise NotAMediaFileError(path, "is a directory, not a media file")
    size = os.path.getsize(path)
    if size == 0:
        raise NotAMediaFileError(path, "empty file (0 bytes)")
    _check_iso_bmff_complete(path, size)
    try:
        return av.open(path, "r", metadata_errors="replace")
    except av.error.FileNotFoundError:
        raise MediaNotFoundError(path) from None
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise NotAMediaFileError(path, f"not a media file FFmpeg can read ({_reason(exc)})") from None
    except av.error.FFmpegError as exc:
        raise MediaError(path, f"cannot open: {_reason(exc)}") from None


@contextmanager
def _open_input(path: PathLike) -> Iterator["av.container.InputContainer"]:
    """``with _open_input(path) as container``: errors while reading become MediaErrors too."""
    path = os.fspath(path)
    container = _open_container(path)
    try:
        yield container
    except av.error.DecoderNotFoundError as exc:
        raise UnsupportedCodecError(path, f"no decoder available ({_reason(exc)})") from None
    except av.error.FFmpegError as exc:
        # Errors while reading packets: files cut short surface here for most containers.
        raise TruncatedMediaError(path, f"truncated or corrupt data ({_reason(exc)})") from None
    finally:
        container.close()


# Top-level boxes an ISO-BMFF (mp4/mov/m4a/3gp) file can start with.
_ISO_FIRST_BOXES = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}


def _check_iso_bmff_complete(path: str, size: int) -> None:
    """Raise TruncatedMediaError if an mp4/mov file was cut off.

    FFmpeg reads a cut mp4 silently when the index (moov) comes first (+faststart), and reports a
    cut file with the index at the end as "invalid data". Walking the top-level boxes catches
    both: in a complete file every box fits inside the file and there is a moov box.
    """
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[4:8] not in _ISO_FIRST_BOXES:
            return  # not ISO-BMFF; other formats are checked while reading
        pos, seen = 0, set()
        while pos + 8 <= size:
            f.seek(pos)
            header = f.read(16)
            box_size, box_type = int.from_bytes(header[:4], "big"), header[4:8]
            if box_size == 1:  # 64-bit size follows the type
                box_size = int.from_bytes(header[8:16], "big") if len(header) == 16 else 0
            elif box_size == 0:  # box runs to the end of the file
                box_size = size - pos
            name = box_type.decode("latin-1")
            if box_size < 8:
                raise TruncatedMediaError(path, f"corrupt mp4: box {name!r} at byte {pos} has size {box_size}")
            if pos + box_size > size:
                raise TruncatedMediaError(
                    path,
                    f"truncated mp4: box {name!r} at byte {pos} needs {box_size} bytes "
                    f"but the file ends after {size - pos}",
                )
            seen.add(box_type)
            pos += box_size
        if b"moov" not in seen:
            raise TruncatedMediaError(path, "truncated mp4: no 'moov' box (the writer never finished the file)")


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without PyAV's "[Errno N]" prefix and file name suffix."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _codec_name(stream: "av.stream.Stream") -> str:
    """The codec's own name ("av1"), not the decoder's ("libdav1d"); "unknown" without one."""
    ctx = stream.codec_context
    name = ctx.codec.canonical_name if ctx is not None else None
    return name if name and name != "none" else "unknown"


def _select_video_stream(container: "av.container.InputContainer") -> Optional["av.video.stream.VideoStream"]:
    """The stream ffmpeg would pick; cover art (attached pictures) is not video."""
    candidates = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not candidates:
        return None
    best = container.streams.best("video")
    return best if best in candidates else candidates[0]


def _select_audio_stream(container: "av.container.InputContainer") -> Optional["av.audio.stream.AudioStream"]:
    if not container.streams.audio:
        return None
    return container.streams.best("audio") or container.streams.audio[0]


def _as_rate(fps: Rate, what: str = "fps") -> Fraction:
    """25 -> 25/1, 29.97 -> 2997/100, "30000/1001" -> 30000/1001 (like ffmpeg's -r parser)."""
    rate = fps if isinstance(fps, Fraction) else Fraction(str(fps))
    rate = rate.limit_denominator(_MAX_RATE_DENOMINATOR)
    if rate <= 0:
        raise ValueError(f"{what} must be positive, got {fps!r}")
    return rate


# ----------------------------------------------------------------------------- ffmpeg's -r rule


def _rescale(a: int, b: int, c: int) -> int:
    """av_rescale_rnd(a, b, c, AV_ROUND_NEAR_INF): a*b/c rounded half away from zero."""
    if a < 0:
        return -_rescale(-a, b, c)
    return (a * b + c // 2) // c


def _rescale_q(a: int, src: Fraction, dst: Fraction) -> int:
    """av_rescale_q: convert a timestamp from time base ``src`` to ``dst``."""
    return _rescale(a, src.numerator * dst.denominator, dst.numerator * src.denominator)


def _llrintf(x: float) -> int:
    """C llrintf: round through single precision, ties to even (fftools uses the float variant)."""
    return int(np.rint(np.float32(x)))


def _ffmpeg_cfr_indices(
    pts: np.ndarray,
    durations: np.ndarray,
    time_base: Fraction,
    fps: Fraction,
    start_time: int = 0,
    keep_first_pts: bool = False,
) -> np.ndarray:
    """Which source frame each output frame of ``ffmpeg -i in -r fps out.mp4`` shows.

    ``pts``/``durations`` are the decoded frames in presentation order, in ``time_base`` units
    (durations as ffmpeg's filter graph sees them); ``start_time`` is the container start time in
    microseconds (ffmpeg shifts all inputs so that the file starts at 0); ``keep_first_pts`` selects
    ffmpeg's "vscfr" mode, which it uses when the input file has a single stream.

    Port of fftools ``video_sync_process`` (CFR/VSCFR) and the end-of-stream flush in
    ``fg_output_frame``. Returns a non-decreasing int array of indices into ``pts``.
    """
    tb_out = 1 / fps  # the encoder time base: one tick per output frame
    # ffmpeg computes the input position in ticks with 16 extra bits of precision (as a double).
    extra_bits = min(max(29 - (tb_out.denominator.bit_length() - 1), 0), 16)
    tb_fine = Fraction(tb_out.numerator, tb_out.denominator << extra_bits)
    ts_offset = _rescale_q(-start_time, Fraction(1, _AV_TIME_BASE), time_base)
    q_in = time_base.numerator / time_base.denominator
    q_out = tb_out.numerator / tb_out.denominator

    out: list[int] = []
    next_pts = 0  # position (in ticks) of the next output frame
    prev_hist = [0, 0, 0]  # how often the previous frame was repeated, for the last 3 inputs
    for i in range(len(pts)):
        duration = int(durations[i]) * q_in / q_out
        sync_ipts = _rescale_q(int(pts[i]) + ts_offset, time_base, tb_fine) / (1 << extra_bits)
        if sync_ipts != float(np.rint(sync_ipts)):  # fftools nudges off exact midpoints
            sync_ipts += (1.0 if sync_ipts > 0 else -1.0) / (1 << 17)
        delta0 = sync_ipts - next_pts  # drift of this frame from where the output is
        delta = delta0 + duration
        nb_prev, nb = 0, 1  # repeats of the previous frame, total frames emitted now
        if delta0 < 0 < delta:  # frame starts in the past: clip it
            sync_ipts = next_pts
            duration += delta0
            delta0 = 0.0
        if keep_first_pts and not out and delta0 >= 0.5:  # vscfr: do not pad the start
            delta = duration
            delta0 = 0.0
            next_pts = int(np.rint(sync_ipts))
        if delta < -1.1:
            nb = 0  # too late: drop
        elif delta > 1.1:
            nb = _llrintf(delta)  # covers several ticks: duplicate
            if delta0 > 1.1:
                nb_prev = _llrintf(delta0 - 0.6)  # gap before it: repeat the previous frame
        prev_hist = [nb_prev] + prev_hist[:2]
        for k in range(nb):
            out.append(i - 1 if (k < nb_prev and i > 0) else i)
        next_pts += nb
    if len(pts):
        # At EOF ffmpeg repeats the last frame by the median of the last three "previous" repeats.
        out.extend([len(pts) - 1] * sorted(prev_hist)[1])
    return np.asarray(out, dtype=np.int64)


# ----------------------------------------------------------------------------- video index


@dataclass
class _VideoIndex:
    """Source frames in presentation order, from demuxing (no decoding)."""

    pts: np.ndarray  # int64, stream time base
    durations: np.ndarray  # int64, each frame's duration as ffmpeg's rate conversion sees it
    seek_key: np.ndarray  # int64, per frame: index into keys of the keyframe to decode from
    keys: list[tuple[int, int, Optional[int]]]  # keyframes in decode order: (pts, dts, byte pos)
    time_base: Fraction
    start_time: int  # container start time, microseconds
    single_stream: bool  # input has one stream: ffmpeg then uses "vscfr"


def _build_index(path: str, container: "av.container.InputContainer", stream) -> _VideoIndex:
    """Read every packet header of ``stream`` once (no decoding) and index the frames."""
    keys: list[tuple[int, int, Optional[int]]] = []
    frames: list[tuple[int, int, int]] = []  # (pts, packet duration, key index)
    for packet in container.demux(stream):
        if packet.size == 0:  # the empty packet PyAV appends to flush the decoder
            continue
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            raise MediaError(path, "video packets carry no timestamps (raw elementary stream?); remux it first")
        if packet.is_keyframe or not keys:
            keys.append((ts, packet.dts if packet.dts is not None else ts, packet.pos))
        if packet.is_discard:  # outside the edit list: decoded for reference, never shown
            continue
        k = len(keys) - 1
        while k > 0 and keys[k][0] > ts:  # open GOP: leading frames need the previous keyframe
            k -= 1
        frames.append((ts, packet.duration or 0, k))
    frames.sort(key=lambda f: f[0])  # decode order -> presentation order
    pts = np.array([f[0] for f in frames], dtype=np.int64)
    return _VideoIndex(
        pts=pts,
        durations=_frame_durations([f[1] for f in frames], stream),
        seek_key=np.array([f[2] for f in frames], dtype=np.int64),
        keys=keys,
        time_base=stream.time_base,
        start_time=container.start_time or 0,
        single_stream=len(container.streams) == 1,
    )


def _frame_durations(packet_durations: list[int], stream) -> np.ndarray:
    """Frame durations as ffmpeg's filter graph sees them: the packet duration, or, when the
    container gives none (e.g. MPEG-TS), one frame at the guessed frame rate (buffersink rate)."""
    rate = stream.guessed_rate
    fallback = _rescale_q(1, 1 / Fraction(rate), stream.time_base) if rate else 0
    return np.array([d if d > 0 else fallback for d in packet_durations], dtype=np.int64)


# ----------------------------------------------------------------------------- video reading


class VideoReader:
    """Frames of a video as RGB uint8 (H, W, 3), resampled to ``fps`` like ``ffmpeg -r fps``.

    ``fps=None`` keeps every decoded frame (native rate). The frame count comes from the demuxed
    packets, never from the container header. Display rotation (phone videos) is applied the way
    ffmpeg does by default, so H and W may be swapped relative to the coded size.

    ``iter_frames`` / ``iter_chunks`` decode sequentially with constant memory; ``read_window``
    seeks to the keyframe at or before the window and decodes only what it needs. Both give the
    same frames. Readers can be pickled (e.g. into DataLoader workers); files reopen lazily.

    ``threads``: decoder threads. None lets FFmpeg choose (frame and slice threads, one per core);
    a process pool that already keeps every core busy passes 1. The pixels are the same either way.
    """

    def __init__(self, path: PathLike, fps: Optional[Rate] = DEFAULT_FPS, threads: Optional[int] = None) -> None:
        self.path = os.fspath(path)
        self._rate = None if fps is None else _as_rate(fps)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be None or >= 1, got {threads}")
        self._threads = threads
        self._container = self._stream = None  # kept open between read_window calls
        self._seek_by_dts = 0  # seek to keyframes by pts (mp4, mkv, avi) or by dts (MPEG-TS)
        container, stream = self._window_input()
        try:
            self._init_index(container, stream)
        except BaseException:
            self.close()
            raise

    def _init_index(self, container, stream) -> None:
        with self._errors():
            self._index = _build_index(self.path, container, stream)
        index = self._index
        if len(index.pts) == 0:
            raise NoVideoFramesError(self.path, "the video stream has no frames")
        if self._rate is None:
            self._source_of = np.arange(len(index.pts), dtype=np.int64)
        else:
            self._source_of = _ffmpeg_cfr_indices(
                index.pts, index.durations, index.time_base, self._rate, index.start_time, index.single_stream
            )
        self._used = np.zeros(len(index.pts), dtype=bool)
        self._used[self._source_of] = True
        self._slot_of_pts = {p: j for j, p in enumerate(index.pts.tolist())}
        self._native_rate = stream.average_rate or stream.guessed_rate
        # Decode the first frame now: it proves the stream decodes and fixes the output shape.
        first = self._decode_sources([0])[0]
        self.height, self.width = first.shape[:2]

    # -- sizes -------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._source_of)

    @property
    def num_frames(self) -> int:
        """Number of output frames at the target fps."""
        return len(self._source_of)

    @property
    def fps(self) -> Optional[float]:
        """Output frame rate (the source's average rate when reading natively)."""
        rate = self._rate if self._rate is not None else self._native_rate
        return float(rate) if rate else None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self), self.height, self.width, 3)

    @property
    def source_indices(self) -> np.ndarray:
        """For each output frame, the index of the source frame (presentation order) it shows."""
        view = self._source_of.view()
        view.flags.writeable = False
        return view

    # -- sequential reading --------------------------------------------------------------

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield every output frame (H, W, 3) in order; each is a separate array."""
        source_of = self._source_of.tolist()
        for k, image in enumerate(self._iter_images()):
            repeated = k + 1 < len(source_of) and source_of[k + 1] == source_of[k]
            yield image.copy() if repeated else image  # callers may modify what they get

    def iter_chunks(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[np.ndarray]:
        """Yield consecutive (n, H, W, 3) arrays of at most ``chunk_size`` output frames."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        total, done = len(self), 0
        chunk, filled = None, 0
        for image in self._iter_images():
            if chunk is None:
                chunk, filled = np.empty((min(chunk_size, total - done), *image.shape), np.uint8), 0
            chunk[filled] = image
            filled += 1
            if filled == len(chunk):
                done += filled
                yield chunk
                chunk = None

    def read_all(self) -> np.ndarray:
        """All output frames as one (T, H, W, 3) array."""
        out = np.empty(self.shape, dtype=np.uint8)
        for k, image in enumerate(self._iter_images()):
            out[k] = image
        return out

    def _iter_images(self) -> Iterator[np.ndarray]:
        """Output frames in order; a duplicated frame is yielded as the same array object."""
        source_of, used, pts = self._source_of.tolist(), self._used.tolist(), self._index.pts.tolist()
        container, stream = self._open()
        k, j, image = 0, 0, None
        try:
            with self._errors():
                for frame in self._decoded_frames(container, stream):
                    if j >= len(pts) or frame.pts != pts[j]:
                        raise self._mismatch(frame.pts, j)
                    while k < len(source_of) and source_of[k] < j:  # repeats of the previous frame
                        yield image
                        k += 1
                    image = self._to_rgb(frame) if used[j] else None
                    j += 1
        finally:
            container.close()
        if j < len(pts):
            raise self._mismatch(None, j)
        while k < len(source_of):
            yield image
            k += 1

    # -- random access -------------------------------------------------------------------

    def read_window(self, start: int, length: int) -> np.ndarray:
        """Output frames ``start .. start+length-1`` as (length, H, W, 3), equal to that slice of
        :meth:`read_all`, decoding only from the keyframe at or before the window."""
        if length < 0 or start < 0 or start + length > len(self):
            raise IndexError(f"{self.path}: window [{start}, {start + length}) outside 0..{len(self)}")
        out = np.empty((length, self.height, self.width, 3), dtype=np.uint8)
        if length == 0:
            return out
        wanted = self._source_of[start : start + length]
        images = self._decode_sources(np.unique(wanted).tolist())
        for k, j in enumerate(wanted.tolist()):
            out[k] = images[j]
        return out

    def __getitem__(self, k: int) -> np.ndarray:
        if not -len(self) <= k < len(self):
            raise IndexError(f"{self.path}: frame {k} outside 0..{len(self)}")
        return self.read_window(k % len(self), 1)[0]

    def _decode_sources(self, sources: list[int]) -> dict[int, np.ndarray]:
        """Decode the given source frames (sorted indices): seek to the keyframe at or before the
        first one and decode forward.

        Demuxers disagree on what a seek timestamp means (mp4/mkv/avi land exactly on the keyframe
        given its pts, MPEG-TS given its dts), so each landing is checked against the keyframe's
        byte position; if it is late, try the dts, then the previous keyframe, then the start.
        """
        key = int(self._index.seek_key[sources[0]])
        mode = self._seek_by_dts  # whichever worked last time goes first
        attempts = [(key, mode), (key, 1 - mode), (key - 1, 1), (None, 0)] if key > 0 else [(0, mode), (None, 0)]
        for key, by_dts in attempts:
            found = self._decode_from(key, by_dts, sources)
            if found is not None:
                if key:
                    self._seek_by_dts = by_dts
                return found
        raise MediaError(self.path, "could not decode the requested frames (damaged stream?)")

    def _decode_from(self, key: Optional[int], by_dts: int, sources: list[int]) -> Optional[dict[int, np.ndarray]]:
        index = self._index
        wanted = set(sources)
        last_pts = int(index.pts[sources[-1]])
        found: dict[int, np.ndarray] = {}
        with self._errors():
            if key is None:  # from the very beginning: reopen, so nothing depends on seeking
                self.close()
                container, stream = self._window_input()
                key_pos = None
            else:
                container, stream = self._window_input()
                key_pos = index.keys[key][2]
                container.seek(index.keys[key][by_dts], backward=True, any_frame=False, stream=stream)
                stream.codec_context.flush_buffers()
            for frame in self._decoded_frames(container, stream, expect_pos=key_pos):
                if frame is None:  # the container landed after the keyframe
                    return None
                j = self._slot_of_pts.get(frame.pts)
                if j is None:
                    raise self._mismatch(frame.pts, None)
                if j in wanted:
                    found[j] = self._to_rgb(frame)
                if frame.pts >= last_pts:  # frames come out in presentation order
                    return found if len(found) == len(wanted) else None
        return None

    # -- decoding helpers ------------------------------------------------------------------

    def _window_input(self):
        """The container kept open for random access (opened on first use)."""
        if self._container is None:
            self._container, self._stream = self._open()
        return self._container, self._stream

    def _open(self):
        """Open the file and ready its video stream (each sequential pass has its own)."""
        container = _open_container(self.path)
        try:
            return container, self._video_stream(container)
        except BaseException:
            container.close()
            raise

    def _video_stream(self, container):
        stream = _select_video_stream(container)
        if stream is None:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise NoVideoFramesError(self.path, f"no video stream (streams: {kinds})")
        if stream.codec_context is None:
            raise UnsupportedCodecError(
                self.path,
                f"no decoder for video stream #{stream.index} (unknown codec, or not in this FFmpeg build)",
            )
        for other in container.streams:
            if other is not stream:
                other.discard = av.stream.Discard.all  # do not even read their packets
        if self._threads is None:
            stream.thread_type = "AUTO"  # frame+slice threads: same pixels, several times faster
        else:
            stream.thread_count = self._threads
        return stream

    def _decoded_frames(self, container, stream, expect_pos: Optional[int] = None) -> Iterator:
        """Decode frames of ``stream`` from the current position. Packets FFmpeg cannot decode
        are skipped (as the ffmpeg CLI does); if nothing at all decodes, NoVideoFramesError.
        With ``expect_pos``, yields a single None if the first packet lies after that byte."""
        errors, decoded, first_error = 0, 0, None
        for packet in container.demux(stream):
            if expect_pos is not None:
                if packet.pos is not None and packet.pos > expect_pos >= 0:
                    yield None
                    return
                expect_pos = None
            try:
                frames = stream.decode(packet)
            except av.error.DecoderNotFoundError:
                raise
            except (av.error.InvalidDataError, av.error.PatchWelcomeError) as exc:
                errors += 1
                first_error = first_error or _reason(exc)
                continue
            for frame in frames:
                decoded += 1
                yield frame
        if decoded == 0 and errors:
            raise NoVideoFramesError(
                self.path, f"none of the video packets could be decoded ({errors} errors, first: {first_error})"
            )

    def _to_rgb(self, frame) -> np.ndarray:
        # to_ndarray honours the stream's colour matrix and range: 8-bit 4:2:0 video gives exactly
        # the pixels of `ffmpeg -pix_fmt rgb24`. Bicubic is ffmpeg's default scaler flag; it only
        # matters when chroma must be resampled (e.g. 10-bit), where libswscale versions differ.
        image = frame.to_ndarray(format="rgb24", interpolation="BICUBIC")
        rotation = frame.rotation or 0
        turns = round(rotation / 90) % 4 if rotation % 90 == 0 else 0
        if turns:  # ffmpeg's default autorotation for rotated (phone) videos
            image = np.ascontiguousarray(np.rot90(image, turns))
        expected = (getattr(self, "height", None), getattr(self, "width", None))
        if expected[0] is not None and image.shape[:2] != expected:
            raise MediaError(
                self.path, f"frame size changes mid-stream ({image.shape[1]}x{image.shape[0]}, "
                f"first frame {expected[1]}x{expected[0]}); not supported"
            )
        return image

    @contextmanager
    def _errors(self):
        try:
            yield
        except MediaError:
            raise
        except av.error.DecoderNotFoundError as exc:
            raise UnsupportedCodecError(self.path, f"no decoder for the video stream ({_reason(exc)})") from None
        except av.error.FFmpegError as exc:
            raise TruncatedMediaError(self.path, f"truncated or corrupt video data ({_reason(exc)})") from None

    def _mismatch(self, got_pts: Optional[int], slot: Optional[int]) -> MediaError:
        if got_pts is None:
            return MediaError(
                self.path, f"only {slot} of {len(self._index.pts)} video frames could be decoded (damaged stream)"
            )
        return MediaError(self.path, f"decoder returned a frame (pts {got_pts}) the container index does not list")

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._stream = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_container"] = state["_stream"] = None  # files do not pickle; reopened on first use
        return state

    def __repr__(self) -> str:
        return f"VideoReader({self.path!r}, fps={self.fps}, frames={len(self)}, size={self.width}x{self.height})"


def read_video(path: PathLike, fps: Optional[Rate] = DEFAULT_FPS) -> np.ndarray:
    """All frames of a video as (T, H, W, 3) uint8 RGB at ``fps`` (``None``: native rate)."""
    with VideoReader(path, fps=fps) as reader:
        return reader.read_all()


# ----------------------------------------------------------------------------- audio reading


def read_audio(
    path: PathLike,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    dtype: Literal["float32", "int16"] = "float32",
) -> np.ndarray:
    """Mono audio of any media file as a 1-D array at ``sample_rate``.

    Decoded, down-mixed and resampled by libswresample exactly like
    ``ffmpeg -i path -vn -ac 1 -ar 16000 -f s16le -`` (the SyncNet reference extraction): the
    ``int16`` result equals ffmpeg's output. ``float32`` is that signal divided by 32768, so the
    two views always agree and float values lie in [-1, 1). Raises NoAudioStreamError if the file
    has no audio.
    """
    if dtype not in ("float32", "int16"):
        raise ValueError(f"dtype must be 'float32' or 'int16', got {dtype!r}")
    if int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate!r}")
    path = os.fspath(path)
    pieces: list[np.ndarray] = []
    with _open_input(path) as container:
        stream = _select_audio_stream(container)
        if stream is None:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise NoAudioStreamError(path, f"no audio stream (streams: {kinds})")
        if stream.codec_context is None:
            raise UnsupportedCodecError(
                path, f"no decoder for audio stream #{stream.index} (unknown codec, or not in this FFmpeg build)"
            )
        for other in container.streams:
            if other is not stream:
                other.discard = av.stream.Discard.all
        resampler, setup = None, None
        for frame in _trimmed_audio_frames(path, container, stream):
            # ffmpeg rebuilds its filter graph when the input format changes mid-stream; so do we.
            frame_setup = (frame.format.name, frame.layout.name, frame.sample_rate)
            if frame_setup != setup:
                if resampler is not None:
                    pieces.extend(_s16_samples(resampler.resample(None)))
                resampler = av.AudioResampler(format="s16", layout="mono", rate=int(sample_rate))
                setup = frame_setup
            pieces.extend(_s16_samples(resampler.resample(frame)))
        if resampler is not None:
            pieces.extend(_s16_samples(resampler.resample(None)))
    samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
    if dtype == "int16":
        return samples
    return samples.astype(np.float32) / np.float32(32768.0)


def _trimmed_audio_frames(path: str, container, stream) -> Iterator["av.AudioFrame"]:
    """Decoded audio frames; the last one cut to its packet duration.

    The ffmpeg CLI drops the encoder padding at the end of AAC/mp4 audio (the last packet is
    shorter than the 1024 samples its frame decodes to); decoding through PyAV keeps it, so we
    cut it here. Undecodable packets are skipped, as the ffmpeg CLI does.
    """
    previous, errors, first_error = None, 0, None
    for packet in container.demux(stream):
        try:
            frames = stream.decode(packet)
        except av.error.DecoderNotFoundError:
            raise
        except (av.error.InvalidDataError, av.error.PatchWelcomeError) as exc:
            errors += 1
            first_error = first_error or _reason(exc)
            continue
        for frame in frames:
            if previous is not None:
                yield previous
            previous = frame
    if previous is not None:
        yield _trim_to_duration(previous)
    elif errors:
        raise TruncatedMediaError(path, f"no audio could be decoded ({errors} errors, first: {first_error})")


def _trim_to_duration(frame: "av.AudioFrame") -> "av.AudioFrame":
    if not frame.duration or frame.time_base is None:
        return frame
    keep = int(Fraction(frame.duration) * frame.time_base * frame.sample_rate)
    if not 0 < keep < frame.samples:
        return frame
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    data = data[:, :keep] if frame.format.is_planar else data[:, : keep * channels]
    trimmed = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(data), format=frame.format.name, layout=frame.layout.name
    )
    trimmed.sample_rate, trimmed.pts, trimmed.time_base = frame.sample_rate, frame.pts, frame.time_base
    return trimmed


def _s16_samples(frames: list) -> list[np.ndarray]:
    return [f.to_ndarray().reshape(-1) for f in frames]


# ----------------------------------------------------------------------------- writing


def write_video(
    path: PathLike,
    frames: Union[np.ndarray, Iterable[np.ndarray]],
    fps: Rate = 25,
    audio: Optional[np.ndarray] = None,
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    crf: float = DEFAULT_CRF,
    preset: str = X264_PRESET,
    threads: int = X264_THREADS,
) -> Path:
    """Write RGB uint8 frames as an H.264 (libx264, yuv420p) mp4 with +faststart, plus AAC audio.

    ``frames``: a (T, H, W, 3) uint8 array or any iterable of (H, W, 3) uint8 frames (consumed
    one at a time, so generators stream with constant memory). H and W must be even (yuv420p).
    ``audio``: float in [-1, 1] or int16, shape (N,) mono or (N, C). The file is written to a
    temporary name in the same directory and renamed at the end, so the destination never holds a
    half-written file. Identical input gives a byte-identical file (x264 threads are fixed).
    ``preset`` is x264's speed/size trade-off ("ultrafast" ... "veryslow"; quality is set by crf).
    ``threads``: x264's output depends on its thread count, so it is fixed (not "auto"); a caller
    that runs one encoder per core (a worker pool) passes 1.
    Returns the destination path.
    """
    dest = Path(os.fspath(path))
    rate = _as_rate(fps)
    crf_value = float(crf)
    if not 0 <= crf_value <= 51:
        raise ValueError(f"{dest}: crf must be in [0, 51], got {crf!r}")
    planar_audio = None if audio is None else _planar_float_audio(dest, audio)
    if planar_audio is not None and int(sample_rate) <= 0:
        raise ValueError(f"{dest}: sample_rate must be positive, got {sample_rate!r}")

    def write(tmp: str) -> None:
        with _translate_write_errors(dest):
            with av.open(tmp, "w", format="mp4", options=dict(MP4_OPTIONS)) as container:
                _encode_all(dest, container, frames, rate, planar_audio, int(sample_rate), crf_value, preset, threads)

    with atomic_path(dest) as tmp:
        write(str(tmp))
    return dest


def _planar_float_audio(dest: Path, audio: np.ndarray) -> np.ndarray:
    """(N,) or (N, C) float/int16 -> (C, N) float32 in [-1, 1], the layout AAC encodes from."""
    samples = np.asarray(audio)
    if samples.ndim == 1:
        samples = samples[:, None]
    if samples.ndim != 2 or samples.shape[1] < 1 or samples.shape[1] > 8:
        raise ValueError(f"{dest}: audio must have shape (N,) or (N, C) with C <= 8, got {np.shape(audio)}")
    if samples.dtype == np.int16:
        samples = samples.astype(np.float32) / np.float32(32768.0)
    elif np.issubdtype(samples.dtype, np.floating):
        samples = np.clip(samples.astype(np.float32), -1.0, 1.0)
    else:
        raise ValueError(f"{dest}: audio must be float (in [-1, 1]) or int16, got {samples.dtype}")
    return np.ascontiguousarray(samples.T)


def _encode_all(
    dest: Path, container, frames, rate: Fraction, audio, sample_rate: int, crf: float, preset: str, threads: int
) -> None:
    images = iter(frames)
    first = next(images, None)
    if first is None:
        raise ValueError(f"{dest}: no frames to write")
    first = np.asarray(first)
    video = _add_video_stream(dest, container, first, rate, crf, preset, threads)  # stream #0, as ffmpeg writes it
    audio_stream, audio_pts = None, 0
    if audio is not None:
        audio_stream = container.add_stream("aac", rate=sample_rate)
        audio_stream.layout = av.AudioLayout(f"{audio.shape[0]}c").name  # FFmpeg's default: mono, stereo, ...
        audio_stream.bit_rate = AAC_BITRATE

    def encode_audio_until(seconds: Optional[Fraction]) -> None:
        # Interleave audio with video as we go, so the muxer never buffers much.
        nonlocal audio_pts
        end = audio.shape[1] if seconds is None else min(audio.shape[1], int(seconds * sample_rate))
        while audio_pts < end and (seconds is None or audio_pts + AAC_FRAME_SIZE <= end):
            block = np.ascontiguousarray(audio[:, audio_pts : audio_pts + AAC_FRAME_SIZE])
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=audio_stream.layout.name)
            frame.sample_rate, frame.pts, frame.time_base = sample_rate, audio_pts, Fraction(1, sample_rate)
            container.mux(audio_stream.encode(frame))
            audio_pts += block.shape[1]

    count = 0
    for image in _chain_first(first, images):
        image = np.asarray(image)
        if image.shape != first.shape or image.dtype != np.uint8:
            raise ValueError(
                f"{dest}: frame {count} is {image.dtype} {image.shape}, expected uint8 {first.shape} like frame 0"
            )
        frame = _rgb_to_yuv420p(image)
        frame.pts, frame.time_base = count, 1 / rate
        container.mux(video.encode(frame))
        count += 1
        if audio_stream is not None:
            encode_audio_until(count / rate)
    container.mux(video.encode(None))
    if audio_stream is not None:
        encode_audio_until(None)
        container.mux(audio_stream.encode(None))


def _rgb_to_yuv420p(image: np.ndarray):
    """An RGB frame as a BT.601 limited-range yuv420p VideoFrame, the format x264 is given.

    OpenCV's converter uses libswscale's matrix (white 235, black 16; values within 1) at a tenth of
    its cost on rgb24 input, which has no SIMD path in libswscale: 0.14 vs 1.3 ms for 512x512.
    """
    return av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420), format="yuv420p")


def _chain_first(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _add_video_stream(dest: Path, container, image: np.ndarray, rate: Fraction, crf: float, preset: str, threads: int):
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"{dest}: frames must be uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        raise ValueError(
            f"{dest}: frame size {width}x{height} has an odd side; H.264 yuv420p needs even width and "
            f"height (crop or pad one pixel)"
        )
    stream = container.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.time_base = 1 / rate
    stream.codec_context.thread_count = threads  # fixed: see X264_THREADS
    stream.options = {"crf": f"{crf:g}", "preset": preset}
    return stream


def write_wav(path: PathLike, audio: np.ndarray, sample_rate: int = DEFAULT_SAMPLE_RATE) -> Path:
    """Write 16-bit PCM WAV (atomically). ``audio``: float in [-1, 1] or int16, (N,) or (N, C).

    Floats are scaled by 32768 and rounded, the inverse of ``read_audio(..., dtype="float32")``.
    """
    dest = Path(os.fspath(path))
    samples = np.asarray(audio)
    if samples.ndim not in (1, 2) or (samples.ndim == 2 and samples.shape[1] < 1):
        raise ValueError(f"{dest}: audio must have shape (N,) or (N, C), got {samples.shape}")
    if int(sample_rate) <= 0:
        raise ValueError(f"{dest}: sample_rate must be positive, got {sample_rate!r}")
    if samples.dtype != np.int16:
        if not np.issubdtype(samples.dtype, np.floating):
            raise ValueError(f"{dest}: audio must be float (in [-1, 1]) or int16, got {samples.dtype}")
        samples = np.clip(np.rint(samples.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    channels = 1 if samples.ndim == 1 else samples.shape[1]

    def write(tmp: str) -> None:
        with wave.open(tmp, "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(int(sample_rate))
            out.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())

    with atomic_path(dest) as tmp:
        write(str(tmp))
    return dest


@contextmanager
def _translate_write_errors(dest: Path) -> Iterator[None]:
    try:
        yield
    except av.error.FFmpegError as exc:
        raise MediaError(dest, f"cannot write video: {_reason(exc)}") from None
