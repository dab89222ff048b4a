"""Constants of the media layer: the video suffixes the toolkit knows, default rates, encoder settings."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Union

PathLike = Union[str, "os.PathLike[str]"]
Rate = Union[int, float, str, Fraction]

# Every video suffix the toolkit lists in folders or looks files up by (compared lower-case). The
# first four are in the order a same-named file is preferred (HDTF downloads: mp4, then mkv ...).
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v", ".mpg", ".mpeg", ".flv")
DEFAULT_FPS = 25.0  # talking-head datasets and SyncNet work at 25 fps
DEFAULT_SAMPLE_RATE = 16000  # SyncNet / wav2vec / HuBERT input rate
DEFAULT_CHUNK_SIZE = 16  # frames per chunk: small chunks are recycled by malloc, big ones page-fault
# A video with at most this fraction of its frames lost or decoded with errors is read (and the count
# reported); above it, it is refused. A few bad packets in a long download leave the clip usable, as
# players show it; more means the file is damaged, and training or scoring on it would mislead.
MAX_DAMAGED_FRACTION = 0.05
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
MAX_RATE_DENOMINATOR = 1_001_000
AV_TIME_BASE = 1_000_000  # FFmpeg's internal microsecond time base (container.start_time)
