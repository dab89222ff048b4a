"""The errors of the media layer: each names the file and the cause."""

from __future__ import annotations

import errno
import os
from typing import Optional

from talking_head.toolkit.media.constants import PathLike


class MediaError(Exception):
    """A media file could not be read or written. ``str(exc) == f"{path}: {cause}"``.

    ``cause`` is one plain sentence for the person who owns the file (what is wrong, with which stream,
    what to do); ``detail`` is the technical evidence (FFmpeg's message, byte offsets, frame numbers),
    kept apart so failure records carry both without the reason reading like internals.
    """

    def __init__(self, path: PathLike, cause: str, detail: Optional[str] = None) -> None:
        self.path = os.fspath(path)
        self.cause = cause
        self.detail = detail
        super().__init__(self.path, cause)

    def __str__(self) -> str:
        return f"{self.path}: {self.cause}"

    def __reduce__(self):  # keep (path, cause, detail) when pickled, e.g. out of DataLoader workers
        return (type(self), (self.path, self.cause, self.detail))


class MediaNotFoundError(MediaError, FileNotFoundError):
    """The file does not exist."""

    def __init__(self, path: PathLike, cause: str = "the file does not exist", detail: Optional[str] = None) -> None:
        MediaError.__init__(self, path, cause, detail)
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


class DamagedVideoError(MediaError):
    """More video frames are lost or decoded with errors than the reader accepts (``max_damaged_fraction``)."""
