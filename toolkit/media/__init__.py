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
re-implemented in :func:`toolkit.media.cfr.ffmpeg_cfr_indices` and checked against the ffmpeg binary in
tests/test_media.py. Audio is resampled and down-mixed by libswresample exactly like
``ffmpeg -i X -vn -ac 1 -ar 16000 -f s16le -`` (the SyncNet reference extraction).

Every failure raises a :class:`MediaError` subclass whose message names the file and the cause;
no ``av.error`` escapes from the public functions.

Modules: ``constants`` (suffixes, default rates, encoder settings), ``errors``, ``containers`` (opening
files, picking streams, ``probe``), ``cfr`` (ffmpeg's -r rule), ``video`` (``VideoReader``), ``audio``,
``write`` and ``reencode`` (re-encoding variants through the ffmpeg binary, for ``toolkit audit``).
Import from the package: ``from talking_head.toolkit.media import read_video``.
"""

from talking_head.toolkit.media.audio import read_audio
from talking_head.toolkit.media.constants import DEFAULT_FPS, DEFAULT_SAMPLE_RATE, VIDEO_EXTENSIONS
from talking_head.toolkit.media.containers import MediaInfo, StreamInfo, probe
from talking_head.toolkit.media.errors import (
    DamagedVideoError,
    MediaError,
    MediaNotFoundError,
    NoAudioStreamError,
    NotAMediaFileError,
    NoVideoFramesError,
    TruncatedMediaError,
    UnsupportedCodecError,
)
from talking_head.toolkit.media.reencode import VARIANTS, Variant, ffmpeg_version, find_variant, reencode
from talking_head.toolkit.media.video import VideoReader, read_video
from talking_head.toolkit.media.write import write_video, write_wav

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
    "DamagedVideoError",
    "StreamInfo",
    "MediaInfo",
    "probe",
    "VideoReader",
    "read_video",
    "read_audio",
    "write_video",
    "write_wav",
    "Variant",
    "VARIANTS",
    "find_variant",
    "reencode",
    "ffmpeg_version",
]
