"""The errors of the media layer: each names the file and the cause."""

from __future__ import annotations

import errno
import os

from talking_head.toolkit.media.constants import PathLike


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
