"""Re-encoding a video the way real pipelines do (another codec, bitrate, frame rate or crop), through ffmpeg.

``toolkit audit`` (:mod:`leaderboards.audit`) scores such copies to show how far the codec alone moves each
metric: re-encoding alone moves LSE by 0.4-1.2 (THEval, CVPR 2026). Each variant is plain data
(:class:`Variant`: the ffmpeg output options of each encode, in order); :data:`VARIANTS` lists them::

    reencode("gen/S01_000.mp4", "out/S01_000.mp4", VARIANT_BY_NAME["h265"])

The ffmpeg binary is the one imageio-ffmpeg picks (``$IMAGEIO_FFMPEG_EXE``, else its bundled build, else
``ffmpeg`` on PATH), the same one the LSE reference chain runs; :func:`ffmpeg_version` names it for the
record. Every stream but the first video and the first audio is dropped (``-map``), so subtitles or data
tracks a container cannot hold never fail an encode.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any, Optional, Union

from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.media.constants import X264_THREADS, PathLike
from talking_head.toolkit.media.errors import MediaError, MediaNotFoundError


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way to re-encode: `passes` holds the ffmpeg output options of each encode (input, ``-map`` and
    output file are added by :func:`reencode`); several passes run one after the other on the previous
    output. `suffix` is the container the result is written in."""

    name: str
    description: str
    passes: tuple[tuple[str, ...], ...]
    suffix: str = ".mp4"

    @property
    def encoders(self) -> tuple[str, ...]:
        """The ffmpeg encoders the passes use (``copy`` is none)."""
        found = [args[i + 1] for args in self.passes for i, arg in enumerate(args[:-1]) if arg in ("-c:v", "-c:a")]
        return tuple(dict.fromkeys(name for name in found if name != "copy"))

    def commands(self, exe: str = "ffmpeg", src: str = "IN", dst: str = "OUT") -> list[list[str]]:
        """The whole ffmpeg command of each pass, as :func:`reencode` runs it (an intermediate file between passes)."""
        targets = [f"PASS{i + 1}{self.suffix}" for i in range(len(self.passes) - 1)] + [f"{dst}{self.suffix}"]
        return [ffmpeg_command(exe, source, target, args)
                for source, target, args in zip([src, *targets], targets, self.passes)]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "suffix": self.suffix,
                "passes": [list(args) for args in self.passes], "encoders": list(self.encoders),
                "commands": self.commands()}


def _x264(crf: int) -> tuple[str, ...]:
    # Threads fixed as in media.write: x264's output depends on its thread count.
    return ("-c:v", "libx264", "-crf", str(crf), "-preset", "medium", "-pix_fmt", "yuv420p",
            "-threads", str(X264_THREADS))


COPY_AUDIO = ("-c:a", "copy")
COPY_VIDEO = ("-c:v", "copy")

VARIANTS: tuple[Variant, ...] = (
    Variant("h264_crf18", "H.264 (libx264) CRF 18, audio copied", ((*_x264(18), *COPY_AUDIO),)),
    Variant("h264_crf28", "H.264 (libx264) CRF 28, audio copied", ((*_x264(28), *COPY_AUDIO),)),
    Variant("h265", "H.265 (libx265) CRF 28, its default, tagged hvc1 as Apple players want; audio copied",
            (("-c:v", "libx265", "-crf", "28", "-preset", "medium", "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
              *COPY_AUDIO),)),
    # The mp4 muxer takes MP2 but tags it as MPEG-1 audio, which demuxers report as mp3: .mov keeps "mp2".
    Variant("audio_mp2", "video copied, audio to MPEG-1 Layer II (mp2) at 64 kb/s, in a .mov",
            ((*COPY_VIDEO, "-c:a", "mp2", "-b:a", "64k"),), suffix=".mov"),
    Variant("audio_opus", "video copied, audio to Opus (libopus) at 64 kb/s (resampled to 48 kHz)",
            ((*COPY_VIDEO, "-c:a", "libopus", "-b:a", "64k"),)),
    Variant("fps_25_30_25", "frame rate to 30 fps and back to 25 (fps filter: frames duplicated, then dropped); "
            "each pass H.264 CRF 18, audio copied",
            (("-vf", "fps=30", *_x264(18), *COPY_AUDIO), ("-vf", "fps=25", *_x264(18), *COPY_AUDIO))),
    Variant("crop_jitter_2px", "2 pixels cropped off the left, scaled back to the original size (bicubic): "
            "a 2-px shift plus a slight stretch; H.264 CRF 18, audio copied",
            (("-vf", "crop=iw-2:ih:2:0,scale=iw+2:ih:flags=bicubic", *_x264(18), *COPY_AUDIO),)),
)
VARIANT_BY_NAME: dict[str, Variant] = {variant.name: variant for variant in VARIANTS}


def ffmpeg_exe() -> str:
    """The ffmpeg binary: imageio-ffmpeg's choice. MediaError when there is none."""
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as err:
        raise MediaError("ffmpeg", f"no ffmpeg binary found (imageio-ffmpeg: {err})") from None


@functools.lru_cache(maxsize=8)
def ffmpeg_version(exe: Optional[str] = None) -> str:
    """The first line of ``ffmpeg -version`` (``ffmpeg version n9.0.2-... Copyright ...``)."""
    exe = exe or ffmpeg_exe()
    done = subprocess.run([exe, "-version"], capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    if done.returncode != 0 or not lines:
        raise MediaError(exe, f"`ffmpeg -version` failed with status {done.returncode}: {_last_line(done.stderr)}")
    return lines[0].strip()


@functools.lru_cache(maxsize=8)
def ffmpeg_encoders(exe: Optional[str] = None) -> frozenset[str]:
    """The encoder names ``ffmpeg -encoders`` lists (libx264, libx265, mp2, libopus, ...)."""
    exe = exe or ffmpeg_exe()
    done = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise MediaError(exe, f"`ffmpeg -encoders` failed with status {done.returncode}: {_last_line(done.stderr)}")
    listing = done.stdout.split("------", 1)[-1]  # the legend above the dashes has flag letters, not encoders
    return frozenset(parts[1] for parts in (line.split() for line in listing.splitlines()) if len(parts) >= 2)


def missing_encoders(variants: tuple[Variant, ...] | list[Variant], exe: Optional[str] = None) -> dict[str, list[str]]:
    """``{variant name: encoders this ffmpeg lacks}`` for the variants that cannot run (empty: all can)."""
    have = ffmpeg_encoders(exe or ffmpeg_exe())
    return {v.name: lacking for v in variants if (lacking := [e for e in v.encoders if e not in have])}


def find_variant(name_or_variant: Union[str, Variant]) -> Variant:
    """A variant by name (ValueError naming the known ones), or the variant itself."""
    if isinstance(name_or_variant, Variant):
        return name_or_variant
    if name_or_variant not in VARIANT_BY_NAME:
        raise ValueError(f"unknown re-encoding variant {name_or_variant!r}; known: {', '.join(VARIANT_BY_NAME)}")
    return VARIANT_BY_NAME[name_or_variant]


def reencode(src: PathLike, dst: PathLike, variant: Union[str, Variant], exe: Optional[str] = None) -> Path:
    """Write `src` re-encoded as `variant` to `dst` (atomically: `dst` is complete or absent) and return `dst`.

    The container follows `dst`'s suffix (use ``variant.suffix``). Raises :class:`MediaError` naming `src`
    and ffmpeg's last error line when an encode fails, or the encoder this ffmpeg lacks.
    """
    chosen = find_variant(variant)
    src, dst = Path(os.fspath(src)), Path(os.fspath(dst))
    if not src.is_file():
        raise MediaNotFoundError(src)
    exe = exe or ffmpeg_exe()
    lacking = missing_encoders((chosen,), exe).get(chosen.name)
    if lacking:
        raise MediaError(src, f"cannot re-encode as {chosen.name}: {ffmpeg_version(exe)} has no "
                              f"{', '.join(lacking)} encoder")
    with atomic_path(dst) as tmp:
        current = src
        # Intermediate passes write next to dst (same file system), each removed once the next has read it.
        intermediates = [dst.with_name(f".{dst.stem}.{uuid.uuid4().hex[:12]}.pass{i}{dst.suffix}")
                         for i in range(len(chosen.passes) - 1)]
        try:
            for i, args in enumerate(chosen.passes):
                target = tmp if i == len(chosen.passes) - 1 else intermediates[i]
                _run_ffmpeg(exe, current, target, args, src, chosen.name)
                current = target
        finally:
            for path in intermediates:
                path.unlink(missing_ok=True)
    return dst


def ffmpeg_command(exe: str, source: Union[str, Path], target: Union[str, Path], args: tuple[str, ...]) -> list[str]:
    """One encode as an argument list: the first video and audio stream (if any) of `source`, `args`, `target`."""
    container = ("-movflags", "+faststart") if Path(target).suffix.lower() in (".mp4", ".mov", ".m4v") else ()
    return [exe, "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-map", "0:v:0", "-map", "0:a:0?",
            *args, *container, str(target)]


def _run_ffmpeg(exe: str, source: Path, target: Path, args: tuple[str, ...], named: Path, variant_name: str) -> None:
    command = ffmpeg_command(exe, source, target, args)
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as err:  # the binary vanished or is not executable
        raise MediaError(named, f"cannot re-encode as {variant_name}: cannot run {exe} ({err.strerror})") from None
    if done.returncode != 0:
        raise MediaError(named, f"ffmpeg could not re-encode it as {variant_name} "
                                f"({_last_line(done.stderr) or f'exit status {done.returncode}'})")


def _last_line(stderr: str) -> str:
    """ffmpeg's last message line, without the ``[component @ 0x55...]`` prefix (an address, different every run)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return re.sub(r"^\[[^\]]*@ 0x[0-9a-f]+\]\s*", "", lines[-1]) if lines else ""
