"""Reading video: the demuxed frame index, VideoReader (streaming and random access) and read_video."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional

import av
import av.error
import numpy as np

from talking_head.toolkit.media.cfr import rescale_q, ffmpeg_cfr_indices
from talking_head.toolkit.media.constants import DEFAULT_CHUNK_SIZE, DEFAULT_FPS, MAX_DAMAGED_FRACTION, PathLike, Rate
from talking_head.toolkit.media.containers import as_rate, open_container, reason, select_video_stream
from talking_head.toolkit.media.errors import (
    DamagedVideoError, MediaError, NoVideoFramesError, TruncatedMediaError, UnsupportedCodecError,
)

LOST, CONCEALED = "lost", "concealed"  # the two kinds of damaged frame (VideoReader.damaged_frames)


def _rgb24_options() -> dict:
    """``to_ndarray`` arguments for RGB output. PyAV with a ``threads`` argument (18 here) gives each frame's
    conversion a new swscale context with ``threads=0`` ("auto"): a thread pool started and stopped for every
    frame, 0.5-1 ms of CPU a 512x512 frame against 0.1 ms on one thread, with identical pixels (the media tests
    compare them with the ffmpeg CLI's). A PyAV without the argument converts on one thread anyway."""
    options = {"format": "rgb24", "interpolation": "BICUBIC"}
    try:
        av.VideoFrame(16, 16, "yuv420p").to_ndarray(**options, threads=1)
    except TypeError:
        return options
    return {**options, "threads": 1}


_RGB24 = _rgb24_options()


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
            raise MediaError(path, "the video has no timestamps (a raw stream?); put it in a container first, e.g. "
                                   "`ffmpeg -i FILE -c copy out.mp4`", detail=f"video packet at byte {packet.pos}")
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
    fallback = rescale_q(1, 1 / Fraction(rate), stream.time_base) if rate else 0
    return np.array([d if d > 0 else fallback for d in packet_durations], dtype=np.int64)


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

    Damaged streams are read as players play them: a frame the decoder cannot produce shows the
    picture after it (the last one at the very end), and a frame decoded with errors is
    kept as the decoder patched it. Both are counted in :attr:`damaged_frames`; a pass that finds
    more than ``max_damaged_fraction`` of the source frames damaged raises DamagedVideoError.
    """

    def __init__(self, path: PathLike, fps: Optional[Rate] = DEFAULT_FPS, threads: Optional[int] = None,
                 max_damaged_fraction: float = MAX_DAMAGED_FRACTION) -> None:
        self.path = os.fspath(path)
        self._rate = None if fps is None else as_rate(fps)
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be None or >= 1, got {threads}")
        if not 0.0 <= max_damaged_fraction <= 1.0:
            raise ValueError(f"max_damaged_fraction must be in [0, 1], got {max_damaged_fraction}")
        self._threads = threads
        self._max_damaged = max_damaged_fraction
        self._damaged: dict[int, str] = {}  # source slot -> LOST or CONCEALED
        self._first_decode_error: Optional[str] = None
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
            raise NoVideoFramesError(self.path, "the video stream holds no frames")
        if self._rate is None:
            self._source_of = np.arange(len(index.pts), dtype=np.int64)
        else:
            self._source_of = ffmpeg_cfr_indices(
                index.pts, index.durations, index.time_base, self._rate, index.start_time, index.single_stream
            )
        self._used = np.zeros(len(index.pts), dtype=bool)
        self._used[self._source_of] = True
        self._pts = index.pts.tolist()
        self._slot_of_pts: dict[int, int] = {}  # pts -> its first slot (VFR files can repeat a timestamp)
        for j, p in enumerate(self._pts):
            self._slot_of_pts.setdefault(p, j)
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
    def damaged_frames(self) -> dict[str, int]:
        """Damaged source frames found so far: ``lost`` (no picture came out of the decoder; the
        previous one is shown) and ``concealed`` (decoded with errors the decoder patched over).
        Complete once every frame has been decoded (a full sequential pass)."""
        lost = sum(kind == LOST for kind in self._damaged.values())
        return {LOST: lost, CONCEALED: len(self._damaged) - lost}

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
        """Output frames in order; a repeated frame is yielded as the same array object."""
        source_of, used, n = self._source_of.tolist(), self._used.tolist(), len(self._source_of)
        container, stream = self._open()
        k = j = 0  # the next output frame; the next source slot the decoder should produce
        image = last = None  # RGB of slot j - 1 when an output shows it; its decoded frame

        def fill(upcoming=None) -> np.ndarray:
            """Output k shows slot j - 1, or a lost slot after it: that shows the next picture, as ffmpeg's
            frame-rate conversion repeats a frame that arrives late (the last one after the final picture)."""
            if source_of[k] == j - 1:
                return image
            return self._to_rgb(upcoming if upcoming is not None else last)

        try:
            with self._errors():
                for frame in self._decoded_frames(container, stream):
                    slot = self._slot(frame, j)
                    if slot < j:
                        continue  # a picture already shown (a damaged stream can repeat one)
                    for lost in range(j, slot):
                        self._mark(lost, LOST)
                    while k < n and source_of[k] < slot:
                        yield fill(frame)
                        k += 1
                    if frame.is_corrupt:
                        self._mark(slot, CONCEALED)
                    image = self._to_rgb(frame) if used[slot] else None
                    last, j = frame, slot + 1
        finally:
            container.close()
        if last is None:
            raise NoVideoFramesError(
                self.path, "none of the video frames can be decoded: the video stream is damaged; fetch the file again")
        for lost in range(j, len(self._index.pts)):
            self._mark(lost, LOST)
        self._check_damage()
        while k < n:
            yield fill()
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
        self._check_damage()
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
        raise MediaError(self.path, "the video frames at this point cannot be decoded: the stream is damaged; fetch the "
                                    "file again or re-encode it", detail=f"source frames {sources[0]}-{sources[-1]}")

    def _decode_from(self, key: Optional[int], by_dts: int, sources: list[int]) -> Optional[dict[int, np.ndarray]]:
        """The wanted source frames, decoding from keyframe ``key`` (None: from the start of the file);
        None when the seek landed after the keyframe or a wanted frame lies before the first picture."""
        index = self._index
        wanted = set(sources)
        last_slot = sources[-1]
        found: dict[int, np.ndarray] = {}
        previous, previous_slot = None, -1  # the last decoded frame and its slot
        with self._errors():
            if key is None:  # from the very beginning: reopen, so nothing depends on seeking
                self.close()
                container, stream = self._window_input()
                key_pos, key_slot = None, 0
            else:
                container, stream = self._window_input()
                key_pos, key_slot = index.keys[key][2], self._slot_of_pts.get(index.keys[key][0], 0)
                container.seek(index.keys[key][by_dts], backward=True, any_frame=False, stream=stream)
                stream.codec_context.flush_buffers()
            for frame in self._decoded_frames(container, stream, expect_pos=key_pos):
                if frame is None:  # the container landed after the keyframe
                    return None
                slot = self._slot(frame, previous_slot + 1)
                if slot <= previous_slot:
                    continue
                if slot >= key_slot:  # leading pictures of an open GOP, decoded after a seek, are not judged
                    self._fill_lost(found, wanted, range(max(previous_slot + 1, key_slot), slot), frame)
                    if frame.is_corrupt:
                        self._mark(slot, CONCEALED)
                if slot in wanted:
                    found[slot] = self._to_rgb(frame)
                previous, previous_slot = frame, slot
                if slot >= last_slot:  # frames come out in presentation order
                    return found if len(found) == len(wanted) else None
            if previous is not None:  # the stream ended first: the frames after the last picture are lost
                self._fill_lost(found, wanted, range(previous_slot + 1, len(index.pts)), previous)
        return found if len(found) == len(wanted) else None

    def _fill_lost(self, found: dict, wanted: set, lost: range, picture) -> None:
        """Record the slots in ``lost`` as damaged; a wanted one shows ``picture`` (see ``_iter_images``)."""
        for slot in lost:
            self._mark(slot, LOST)
            if slot in wanted:
                found[slot] = self._to_rgb(picture)

    # -- decoding helpers ------------------------------------------------------------------

    def _window_input(self):
        """The container kept open for random access (opened on first use)."""
        if self._container is None:
            self._container, self._stream = self._open()
        return self._container, self._stream

    def _open(self):
        """Open the file and ready its video stream (each sequential pass has its own)."""
        container = open_container(self.path)
        try:
            return container, self._video_stream(container)
        except BaseException:
            container.close()
            raise

    def _video_stream(self, container):
        stream = select_video_stream(container)
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
                first_error = first_error or reason(exc)
                self._first_decode_error = self._first_decode_error or first_error
                continue
            for frame in frames:
                decoded += 1
                yield frame
        if decoded == 0 and errors:
            raise NoVideoFramesError(
                self.path, "none of the video frames can be decoded: the video stream is damaged; fetch the file again",
                detail=f"{errors} video packets failed, first: {first_error}",
            )

    def _to_rgb(self, frame) -> np.ndarray:
        # to_ndarray honours the stream's colour matrix and range: 8-bit 4:2:0 video gives exactly
        # the pixels of `ffmpeg -pix_fmt rgb24`. Bicubic is ffmpeg's default scaler flag; it only
        # matters when chroma must be resampled (e.g. 10-bit), where libswscale versions differ.
        # One swscale thread (_RGB24): the same pixels at a fraction of the cost.
        image = frame.to_ndarray(**_RGB24)
        rotation = frame.rotation or 0
        turns = round(rotation / 90) % 4 if rotation % 90 == 0 else 0
        if turns:  # ffmpeg's default autorotation for rotated (phone) videos
            image = np.ascontiguousarray(np.rot90(image, turns))
        expected = (getattr(self, "height", None), getattr(self, "width", None))
        if expected[0] is not None and image.shape[:2] != expected:
            raise MediaError(
                self.path, "the frame size changes in the middle of the video, which is not supported; re-encode it "
                "at one size", detail=f"{image.shape[1]}x{image.shape[0]} after {expected[1]}x{expected[0]}"
            )
        return image

    @contextmanager
    def _errors(self):
        try:
            yield
        except MediaError:
            raise
        except av.error.DecoderNotFoundError as exc:
            raise UnsupportedCodecError(
                self.path, "the video uses a codec this FFmpeg build cannot decode; re-encode it (e.g. to H.264)",
                detail=reason(exc)) from None
        except av.error.FFmpegError as exc:
            raise TruncatedMediaError(
                self.path, "the video data is cut short or damaged; fetch or copy the file again",
                detail=reason(exc)) from None

    def _slot(self, frame, expected: int) -> int:
        """The source slot (presentation order) of a decoded frame; ``expected`` when its timestamp fits there
        (a timestamp shared by several frames belongs to the first of them not yet shown)."""
        if expected < len(self._pts) and self._pts[expected] == frame.pts:
            return expected
        slot = self._slot_of_pts.get(frame.pts)
        if slot is None:
            raise MediaError(
                self.path, "the video stream is damaged: a decoded frame has a timestamp the file's index does not "
                "list; fetch the file again or re-encode it",
                detail=f"decoded pts {frame.pts}, not among the {len(self._index.pts)} demuxed timestamps")
        return slot

    def _mark(self, slot: int, kind: str) -> None:
        self._damaged.setdefault(slot, kind)

    def _check_damage(self) -> None:
        """Refuse the file once more of its frames are damaged than the reader accepts."""
        total, damaged = len(self._index.pts), len(self._damaged)
        if damaged <= self._max_damaged * total:
            return
        counts = self.damaged_frames
        slots = sorted(self._damaged)
        raise DamagedVideoError(
            self.path,
            f"{damaged} of its {total} video frames are damaged ({counts[LOST]} cannot be decoded, "
            f"{counts[CONCEALED]} decode with errors), more than the {self._max_damaged:.0%} this toolkit accepts; "
            "fetch the file again or re-encode it from a good copy",
            detail=f"damaged source frames {slots[:20]}{' ...' if len(slots) > 20 else ''}"
                   + (f"; first decoder error: {self._first_decode_error}" if self._first_decode_error else ""),
        )

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
