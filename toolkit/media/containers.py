"""Opening media files (every failure a named MediaError), picking streams, parsing rates, and probing."""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Iterator, Optional

import av
import av.error

from talking_head.toolkit.media.constants import AV_TIME_BASE, MAX_RATE_DENOMINATOR, PathLike, Rate
from talking_head.toolkit.media.errors import (
    MediaError, MediaNotFoundError, NotAMediaFileError, TruncatedMediaError, UnsupportedCodecError,
)


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
    with open_input(path) as container:
        streams = [StreamInfo(s.index, s.type, codec_name(s)) for s in container.streams]
        video = select_video_stream(container)
        audio = select_audio_stream(container)
        duration = None
        if container.duration is not None:
            duration = container.duration / AV_TIME_BASE
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


def open_container(path: str) -> "av.container.InputContainer":
    """Open a file for reading, turning every failure into a named MediaError."""
    if not os.path.exists(path):
        raise MediaNotFoundError(path)
    if os.path.isdir(path):
        raise NotAMediaFileError(path, "this is a folder, not a media file")
    size = os.path.getsize(path)
    if size == 0:
        raise NotAMediaFileError(path, "the file is empty (0 bytes); the download or copy that made it did not finish")
    _check_iso_bmff_complete(path, size)
    try:
        return av.open(path, "r", metadata_errors="replace")
    except av.error.FileNotFoundError:
        raise MediaNotFoundError(path) from None
    except (av.error.InvalidDataError, av.error.EOFError) as exc:
        raise NotAMediaFileError(
            path, "this is not a video or audio file FFmpeg recognises (wrong file, or its start is damaged)",
            detail=reason(exc)) from None
    except av.error.FFmpegError as exc:
        raise MediaError(path, "FFmpeg cannot open the file", detail=reason(exc)) from None


@contextmanager
def open_input(path: PathLike) -> Iterator["av.container.InputContainer"]:
    """``with open_input(path) as container``: errors while reading become MediaErrors too."""
    path = os.fspath(path)
    container = open_container(path)
    try:
        yield container
    except av.error.DecoderNotFoundError as exc:
        raise UnsupportedCodecError(
            path, "a stream uses a codec this FFmpeg build cannot decode; re-encode the file (e.g. to H.264 and AAC)",
            detail=reason(exc)) from None
    except av.error.FFmpegError as exc:
        # Errors while reading packets: files cut short surface here for most containers.
        raise TruncatedMediaError(path, _CUT_OR_DAMAGED, detail=reason(exc)) from None
    finally:
        container.close()


_CUT_OR_DAMAGED = "the file is cut short or its data is damaged; fetch or copy it again"

# Top-level boxes an ISO-BMFF (mp4/mov/m4a/3gp) file can start with.
_ISO_FIRST_BOXES = {b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot"}
_FRAGMENT_BOXES = {b"moof", b"mdat"}  # a fragmented file's media: one of these cut short is a cut file


def _check_iso_bmff_complete(path: str, size: int) -> None:
    """Raise TruncatedMediaError if an mp4/mov file was cut off.

    FFmpeg reads a cut mp4 silently when the index (moov) comes first (+faststart), and reports a
    cut file with the index at the end as "invalid data". Walking the top-level boxes catches
    both: in a complete file every box fits inside the file and there is a moov box.

    Bytes after the last box (download tools and some muxers leave them) are not a cut: once the
    index and the media data are both whole, whatever follows that does not parse as a box is
    ignored, as FFmpeg ignores it, unless it is a movie fragment (moof, mdat) cut short.
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
            if {b"moov", b"mdat"} <= seen and box_type not in _FRAGMENT_BOXES and (
                    box_size < 8 or pos + box_size > size):
                return  # trailing data after a whole file
            if box_size < 8:
                raise TruncatedMediaError(path, _CUT_OR_DAMAGED,
                                          detail=f"mp4 box {name!r} at byte {pos} has size {box_size}")
            if pos + box_size > size:
                raise TruncatedMediaError(
                    path, "the mp4 file is cut short (an interrupted download or copy?); fetch or copy it again",
                    detail=f"mp4 box {name!r} at byte {pos} needs {box_size} bytes but the file ends after {size - pos}",
                )
            seen.add(box_type)
            pos += box_size
        if b"moov" not in seen:
            raise TruncatedMediaError(
                path, "the mp4 file has no index (its 'moov' box): the program writing it never finished; write it again",
                detail=f"top-level boxes: {', '.join(sorted(b.decode('latin-1') for b in seen)) or 'none'}")


def reason(exc: BaseException) -> str:
    """FFmpeg's message without PyAV's "[Errno N]" prefix and file name suffix."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return exc.strerror
    return str(exc)


def codec_name(stream: "av.stream.Stream") -> str:
    """The codec's own name ("av1"), not the decoder's ("libdav1d"); "unknown" without one."""
    ctx = stream.codec_context
    name = ctx.codec.canonical_name if ctx is not None else None
    return name if name and name != "none" else "unknown"


def select_video_stream(container: "av.container.InputContainer") -> Optional["av.video.stream.VideoStream"]:
    """The stream ffmpeg would pick; cover art (attached pictures) is not video."""
    candidates = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not candidates:
        return None
    best = container.streams.best("video")
    return best if best in candidates else candidates[0]


def select_audio_stream(container: "av.container.InputContainer") -> Optional["av.audio.stream.AudioStream"]:
    if not container.streams.audio:
        return None
    return container.streams.best("audio") or container.streams.audio[0]


def as_rate(fps: Rate, what: str = "fps") -> Fraction:
    """25 -> 25/1, 29.97 -> 2997/100, "30000/1001" -> 30000/1001 (like ffmpeg's -r parser)."""
    rate = fps if isinstance(fps, Fraction) else Fraction(str(fps))
    rate = rate.limit_denominator(MAX_RATE_DENOMINATOR)
    if rate <= 0:
        raise ValueError(f"{what} must be positive, got {fps!r}")
    return rate
