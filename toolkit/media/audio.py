"""Reading audio: mono, resampled by libswresample as ffmpeg does."""

from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterator, Literal

import av
import av.error
import numpy as np

from talking_head.toolkit.media.constants import DEFAULT_SAMPLE_RATE, PathLike
from talking_head.toolkit.media.containers import open_input, reason, select_audio_stream
from talking_head.toolkit.media.errors import NoAudioStreamError, TruncatedMediaError, UnsupportedCodecError


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
    with open_input(path) as container:
        stream = select_audio_stream(container)
        if stream is None:
            kinds = ", ".join(s.type for s in container.streams) or "none"
            raise NoAudioStreamError(path, "the file has no audio track, and the speech is needed",
                                     detail=f"streams: {kinds}")
        if stream.codec_context is None:
            raise UnsupportedCodecError(
                path, "the audio track uses a codec this FFmpeg build cannot decode; re-encode it (e.g. to AAC)",
                detail=f"no decoder for audio stream #{stream.index}",
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
            first_error = first_error or reason(exc)
            continue
        for frame in frames:
            if previous is not None:
                yield previous
            previous = frame
    if previous is not None:
        yield _trim_to_duration(previous)
    elif errors:
        raise TruncatedMediaError(path, "none of the audio track can be decoded: its data is damaged",
                                  detail=f"{errors} audio packets failed, first: {first_error}")


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
