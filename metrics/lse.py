"""LSE-D and LSE-C: SyncNet lip-sync error, exactly as ``SyncNetInstance.evaluate`` computes it.

One obvious entry point per job (scoring one track is :mod:`metrics.lse_score`, re-exported here)::

    model  = SyncNet.from_pretrained("cpu")
    result = score_crops(crops, audio_int16, model)       # one face track (224x224 crops, 25 fps)
    result = score_video("clip.mp4", model)                # a crop video (or whole frames, resize_to_224)
    lse = LSE(model); lse.update("vid", [(crops, audio)]); lse.compute("mocha")   # a data set (lse.per_video())

How one track is scored (the reference's steps, and what differs) is described in :mod:`metrics.lse_score`.

Aggregation over a data set differs between papers; :data:`PRESETS` reproduces the known scripts
and :class:`LSE` reports which videos each one leaves out, and why.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Optional, Union

import cv2
import numpy as np
import torch

from talking_head.metrics import lse_score, registry
from talking_head.metrics.base import (
    AUDIO, CHUNK, GENERATED_FRAMES, Chunk, Metric, PerVideoRows, VideoInfo, batch_size_for,
)
from talking_head.metrics.lse_score import (
    BATCH_SIZE, DEFAULT_BATCH_SIZE, MFCC_PER_FRAME, PAIRWISE_EPS, SAMPLE_RATE, SAMPLES_PER_FRAME, VIDEO_FPS, VSHIFT, StreamingScorer,
    model_device, score_crops, score_video,
)
from talking_head.metrics.syncnet import CROP_SIZE, WINDOW_FRAMES, SyncNet
from talking_head.metrics.reference_cache import file_sha256
from talking_head.toolkit import fileio, media, weights
from talking_head.toolkit.prefetch import Prefetch

__all__ = [
    "VSHIFT", "BATCH_SIZE", "DEFAULT_BATCH_SIZE", "VIDEO_FPS", "SAMPLE_RATE", "SAMPLES_PER_FRAME", "MFCC_PER_FRAME", "PAIRWISE_EPS",
    "PRESETS", "score_crops", "score_video", "LSE", "compute_lse",
]

PathLike = Union[str, "os.PathLike[str]"]
Preset = Literal["wav2lip_lrs", "wav2lip_real", "mocha", "latentsync"]

# ------------------------------------------------------------------------------------ presets
PRESETS: dict[str, dict[str, Any]] = {
    # Wav2Lip evaluation/scores_LSE/calculate_scores_LRS.py: no face detection, every frame
    # cv2.resize'd to 224x224; one score per video; arithmetic mean over videos.
    "wav2lip_lrs": {
        "source": "Rudrabha/Wav2Lip evaluation/scores_LSE/calculate_scores_LRS.py",
        "tracks": "whole frame resized to 224 (score_video(..., resize_to_224=True)), one per video",
        "per_video": "the single score", "across_videos": "mean over videos", "min_track": None,
    },
    # Wav2Lip calculate_scores_real_videos.sh: run_pipeline.py face tracks, one "<LSE-D> <LSE-C>" line
    # per track appended to all_scores.txt, averaged by the user: a mean over track rows.
    "wav2lip_real": {
        "source": "Rudrabha/Wav2Lip evaluation/scores_LSE/calculate_scores_real_videos.{sh,py}",
        "tracks": "run_pipeline.py face tracks", "per_video": "none (one row per track)",
        "across_videos": "mean over all track rows", "min_track": 100,
    },
    # MoChaBench / syncnet-python wheel: per video max(conf) and min(dist) over tracks (possibly
    # different tracks); mean over videos with a face (has_face); the rest are left out.
    "mocha": {
        "source": "congwei1230/MoChaBench eval-lipsync/script/run_syncnet_pipeline_on_your_own_model_results.py",
        "tracks": "syncnet_pipeline face tracks", "per_video": "LSE-C = max over tracks, LSE-D = min over tracks",
        "across_videos": "mean over videos with at least one track", "min_track": 50,
    },
    # LatentSync eval/eval_sync_conf.py: per video fmean over tracks (offset int(fmean)); fmean over
    # videos; videos that raise (no face) are skipped. LatentSync itself prints only the confidence.
    "latentsync": {
        "source": "bytedance/LatentSync eval/eval_sync_conf.py",
        "tracks": "LatentSync SyncNetDetector face tracks", "per_video": "mean over tracks (offset: int(mean))",
        "across_videos": "mean over videos with at least one track", "min_track": 50,
    },
}

DEFAULT_PRESET: str = registry.defaults("lse")["preset"]  # whole frames resized to 224: toolkit videos are face crops


# ------------------------------------------------------------------------------------ data sets
_RESULT_KEYS = ("offset", "lse_d", "lse_c")


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


class LSE(PerVideoRows):
    """Streaming LSE over a data set: per-track rows, aggregated by a preset at ``compute``.

    ``update(video_id, tracks)``: ``tracks`` is a list with one entry per face track of the video,
    each either ``(crops, audio_int16)`` (scored here with ``model``) or a result dict of
    :func:`score_crops` / :func:`score_video` (at least ``offset``, ``lse_d``, ``lse_c``). An empty
    list records a video without a usable track (``reason`` says why, e.g. "no face"); such videos
    are left out of every average and listed by ``compute``. ``on_error="exclude"`` records a track
    that cannot be scored (too short) instead of raising.

    ``min_track`` is the face-track pipeline's knob (tracks shorter than this were never produced);
    it is not applied here, only recorded in ``config()`` for provenance.

    ``per_video()``: per ``update`` (one video), ``video_id``, ``tracks`` (the rows added, one per scored
    track: ``offset``, ``lse_d``, ``lse_c``, ``num_windows``, ``mdist``), ``num_tracks``, ``failures`` and
    ``reason`` (why it has no scored track, else None), before any preset's per-video rule
    (:meth:`video_result`).
    """

    name = "lse"
    direction = registry.entry(name).direction  # the registry is the one place for directions
    merged_attributes = ("rows", "videos", "_per_video_rows")

    def __init__(
        self,
        model: Optional[SyncNet] = None,
        *,
        device: str | torch.device = "cpu",
        vshift: int = VSHIFT,
        batch_size: int | None = None,
        min_track: Optional[int] = None,
        on_error: Literal["raise", "exclude"] = "raise",
    ) -> None:
        if on_error not in ("raise", "exclude"):
            raise ValueError(f"on_error must be 'raise' or 'exclude', got {on_error!r}")
        self._model = model
        self.device = torch.device(device) if model is None else model_device(model)
        self.vshift, self.batch_size = int(vshift), batch_size_for(BATCH_SIZE, self.device, batch_size)
        self.min_track = min_track
        self.on_error = on_error
        self.reset()

    @property
    def model(self) -> SyncNet:
        if self._model is None:  # loaded on first use: pre-scored rows need no weights
            self._model = SyncNet.from_pretrained(self.device)
        return self._model

    def reset(self) -> None:
        self.rows: list[dict[str, Any]] = []  # one per scored track
        self.videos: dict[str, dict[str, Any]] = {}  # video_id -> {"num_tracks", "failures", "reason"}
        self._per_video_rows = []

    def update(self, video_id: str, tracks: Sequence[Any], reason: Optional[str] = None) -> None:
        """Add one video's tracks (the rows added: ``per_video()``). A video id may be added once."""
        video_id = str(video_id)
        if video_id in self.videos:
            raise ValueError(f"video {video_id!r} was already added")
        if isinstance(tracks, (str, bytes, Mapping)) or not isinstance(tracks, Sequence):
            raise ValueError(f"tracks for {video_id!r} must be a list of (crops, audio) pairs or result dicts")
        added, failures = [], []
        for index, track in enumerate(tracks):
            if isinstance(track, Mapping):
                missing = [k for k in _RESULT_KEYS if k not in track]
                if missing:
                    raise ValueError(f"{video_id!r} track {index}: result dict lacks {missing}")
                result = dict(track)
            elif isinstance(track, (tuple, list)) and len(track) == 2:
                try:
                    result = score_crops(track[0], track[1], self.model, vshift=self.vshift, batch_size=self.batch_size)
                except ValueError as err:
                    if self.on_error == "raise":
                        raise ValueError(f"{video_id!r} track {index}: {err}") from err
                    failures.append(f"track {index}: {err}")
                    continue
            else:
                raise ValueError(f"{video_id!r} track {index}: expected (crops, audio) or a result dict")
            row = {"video_id": video_id, "track": index, "offset": int(result["offset"]),
                   "lse_d": float(result["lse_d"]), "lse_c": float(result["lse_c"]),
                   "num_windows": result.get("num_windows")}
            if "mdist" in result:
                row["mdist"] = [float(v) for v in np.asarray(result["mdist"]).ravel()]
            added.append(row)
        if not added:
            reason = reason or ("; ".join(failures) if failures else "no face track")
        self.videos[video_id] = {"num_tracks": len(added), "failures": failures, "reason": None if added else reason}
        self.rows.extend(added)
        self._per_video_rows.append({"video_id": video_id, "tracks": added, **self.videos[video_id]})

    def video_result(self, video_id: str, preset: Preset = DEFAULT_PRESET) -> Optional[dict[str, Any]]:
        """One video's value under a preset's per-video rule (None when it has no scored track);
        ``wav2lip_real``, which keeps no per-video value, averages the video's tracks."""
        rows = [r for r in self.rows if r["video_id"] == video_id]
        if not rows:
            return None
        offsets = [r["offset"] for r in rows]
        if preset == "wav2lip_lrs":
            if len(rows) != 1:
                raise ValueError(
                    f"preset wav2lip_lrs scores whole frames, one row per video; "
                    f"{video_id!r} has {len(rows)} tracks"
                )
            d, c, off = rows[0]["lse_d"], rows[0]["lse_c"], offsets[0]
        elif preset == "mocha":
            d, c, off = min(r["lse_d"] for r in rows), max(r["lse_c"] for r in rows), None
        else:  # latentsync
            d, c = _mean([r["lse_d"] for r in rows]), _mean([r["lse_c"] for r in rows])
            off = int(statistics.fmean(offsets))
        return {"video_id": video_id, "lse_d": d, "lse_c": c, "offset": off, "offsets": offsets,
                "num_tracks": len(rows)}

    def _video_results(self, preset: str) -> list[dict[str, Any]]:
        found = (self.video_result(video_id, preset) for video_id in self.videos)
        return [result for result in found if result is not None]

    def compute(self, preset: Preset = DEFAULT_PRESET) -> dict[str, Any]:
        """Aggregate with a preset (see :data:`PRESETS`).

        Returns ``lse_d``, ``lse_c`` (NaN when nothing was scored), ``num_videos`` (all added),
        ``num_scored`` (videos contributing), ``num_rows`` (track rows contributing), ``excluded``
        ({video_id: reason}), ``per_video`` (or per-track rows for ``wav2lip_real``), ``preset``
        and ``config``.
        """
        if preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        excluded = {v: info["reason"] for v, info in self.videos.items() if info["num_tracks"] == 0}
        if preset == "wav2lip_real":
            items = [dict(r) for r in self.rows]
        else:
            items = self._video_results(preset)
        return {
            "preset": preset,
            "lse_d": _mean([i["lse_d"] for i in items]),
            "lse_c": _mean([i["lse_c"] for i in items]),
            "num_videos": len(self.videos),
            "num_scored": len(self.videos) - len(excluded),
            "num_rows": len(self.rows),
            "excluded": excluded,
            "per_video" if preset != "wav2lip_real" else "per_track": items,
            "preset_definition": dict(PRESETS[preset]),
            "config": self.config(),
        }

    def config(self) -> dict[str, Any]:
        """Every knob that changes the numbers."""
        return {
            "metric": "LSE (SyncNet, syncnet_python SyncNetInstance.evaluate)",
            "vshift": self.vshift, "video_fps": VIDEO_FPS, "sample_rate": SAMPLE_RATE,
            "mfcc": "python_speech_features.mfcc defaults on int16 samples", "pairwise_eps": PAIRWISE_EPS,
            "window_frames": WINDOW_FRAMES, "crop_size": CROP_SIZE, "network_input": "BGR 0..255 float32, no normalisation",
            "min_track": self.min_track, "on_error": self.on_error, "precision": "float32 (no TF32)",
            "windows_per_batch": self.batch_size, "audio_windows_per_batch": lse_score.AUDIO_BATCH_SIZE,
            "batchnorm": "folded into the convolutions (lip stream)",
        }

    def weights_provenance(self) -> dict[str, Optional[str]]:
        return self.model.weights_provenance() if self._model is not None else {"syncnet": None}


def compute_lse(
    videos: Mapping[str, Sequence[Any]], preset: Preset = DEFAULT_PRESET, model: Optional[SyncNet] = None, **kwargs: Any
) -> dict[str, Any]:
    """One-off twin of :class:`LSE`: ``{video_id: tracks}`` -> ``LSE(model, **kwargs)`` updated and computed."""
    metric = LSE(model, **kwargs)
    for video_id, tracks in videos.items():
        metric.update(video_id, tracks)
    return metric.compute(preset)


def _resize_224(frames: np.ndarray) -> np.ndarray:
    if frames.shape[1:3] == (CROP_SIZE, CROP_SIZE):
        return frames
    return np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])  # INTER_LINEAR, as Wav2Lip


# ------------------------------------------------------------------------------------ the runner
# Where the runner's LSE takes its frames from (--lse-frames): "ffmpeg_jpeg" is the reference's chain, the
# JPEGs ffmpeg dumps read back with cv2.imread; "decoded" is the runner's own decoded chunks (faster, but
# not the reference's numbers: its JPEGs are lossy).
FRAME_SOURCES = ("ffmpeg_jpeg", "decoded")
DEFAULT_FRAMES: str = registry.defaults("lse")["frames"]
REFERENCE_CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``<toolkit cache>/lse-reference`` (``$TOOLKIT_CACHE_DIR`` or ``~/.cache/talking-head-toolkit``): the
    reference videos' LSE scores, one JSON file per video content and scoring chain."""
    return weights.cache_dir() / "lse-reference"


def plain_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """A scorer's result as JSON values (``mdist`` a list of floats), the same whether scored or cached."""
    out = {}
    for key, value in result.items():
        if isinstance(value, np.ndarray):
            value = [float(v) for v in value.ravel()]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


class LSEVideos(Metric):
    """LSE-D / LSE-C for the runner, of the generated videos and of the references (the usual anchor).

    Preset ``wav2lip_lrs`` (here): Wav2Lip's LRS protocol, whole frames resized to 224 (the toolkit's
    videos are face-centred crops), read at 25 fps, mean over videos. The face-track presets
    (``wav2lip_real``, ``mocha``, ``latentsync``) build :class:`metrics.lse_track.LSETrackVideos` instead.

    ``frames`` (``--lse-frames``): ``"ffmpeg_jpeg"`` (default) scores the frames the reference scores: each
    video is dumped to JPEGs by ffmpeg (:func:`metrics.lse_score.ffmpeg_exe`, recorded by version and sha256)
    with the reference's command and read back with cv2.imread, chunk by chunk (memory does not grow with
    length); ``"decoded"`` embeds the runner's decoded chunks (faster, no JPEG round trip, other numbers).

    With ``ffmpeg_jpeg`` each reference video's result is cached by content (``reference_cache``, under
    :func:`default_cache_dir`): keyed by the file's sha256, the preset, the frame chain, the ffmpeg identity,
    the weights' sha256 and everything else in :meth:`config`, so a reference set is scored once.
    """

    name, direction = LSE.name, LSE.direction
    consumes = frozenset({GENERATED_FRAMES, AUDIO})
    # Bootstrap (metrics.base): LSE-D/C are means over videos of the per-video scores (videos without one left out).
    video_means = {"lse_d": "lse_d", "lse_c": "lse_c", "reference.lse_d": "reference_lse_d",
                   "reference.lse_c": "reference_lse_c"}
    SIDES = ("generated", "reference")
    CHAINS = {  # what each frame source does, for config()
        "ffmpeg_jpeg": "ffmpeg -i VIDEO -threads 1 -f image2 %06d.jpg (-r 25 added when the video is not at 25 fps), "
                       "each JPEG read back with cv2.imread, as SyncNetInstance.evaluate reads its frames",
        "decoded": "the runner's decoded frames (PyAV at 25 fps, no JPEG round trip: not the reference's pixels)",
    }

    def __new__(cls, device: str = "cpu", preset: str = DEFAULT_PRESET, frames: str = DEFAULT_FRAMES,
                reference_cache: bool = True) -> "LSEVideos":
        if preset not in PRESETS:
            raise ValueError(f"unknown LSE preset {preset!r}; choose one of {', '.join(PRESETS)}")
        if frames not in FRAME_SOURCES:
            raise ValueError(f"unknown LSE frame source {frames!r}; choose one of {', '.join(FRAME_SOURCES)}")
        if cls is LSEVideos and preset != "wav2lip_lrs":
            from talking_head.metrics.lse_track import LSETrackVideos

            return super().__new__(LSETrackVideos)
        return super().__new__(cls)

    def __init__(self, device: str = "cpu", preset: str = DEFAULT_PRESET, frames: str = DEFAULT_FRAMES,
                 reference_cache: bool = True) -> None:
        self.preset, self.frames, self.device = preset, frames, device
        # The binary and its identity first: a missing ffmpeg stops the run before any video.
        self.ffmpeg = lse_score.ffmpeg_identity() if frames == "ffmpeg_jpeg" else None
        self.model = SyncNet.from_pretrained(device)
        self.sides = {side: LSE(self.model) for side in self.SIDES}
        self.batch_size = self.sides["generated"].batch_size  # windows per forward, by device
        self.reference_cache = bool(reference_cache) and frames == "ffmpeg_jpeg"
        self.cache_hits = self.cache_misses = 0  # reference videos read from / added to the cache
        self._video: Optional[VideoInfo] = None
        self._streams: dict[str, StreamingScorer] = {}
        self._errors: dict[str, str] = {}
        self._live = False

    def _paths(self) -> dict[str, Any]:
        assert self._video is not None
        return {"generated": self._video.pair.generated, "reference": self._video.pair.reference}

    def start_video(self, video: VideoInfo) -> None:
        self._video, self._streams, self._errors = video, {}, {}
        if self.frames == "ffmpeg_jpeg":
            self._live = False  # each video is read again through ffmpeg at the end
            return
        # With the audio known first, each window is scored as its frames arrive (constant memory).
        for side, path in self._paths().items():
            try:
                audio = media.read_audio(path, sample_rate=SAMPLE_RATE, dtype="int16")
                self._streams[side] = StreamingScorer(self.model, audio, batch_size=self.batch_size)
            except (ValueError, media.MediaError) as err:
                self._errors[side] = str(err).splitlines()[0]
        # At 25 fps the runner's chunks are SyncNet's frames; otherwise both are re-read at 25 fps at the end.
        self._live = video.fps == VIDEO_FPS

    def update(self, chunk: Chunk) -> None:
        if self._live:
            for side, frames in (("generated", chunk.generated), ("reference", chunk.reference)):
                if side in self._streams:
                    self._streams[side].add(_resize_224(frames))

    def _jpeg_frames(self, path: Any) -> Prefetch:
        """The reference chain's frames of a video, made ahead on a background thread (ffmpeg's JPEG dump, then
        the JPEGs read back chunk by chunk) while SyncNet runs on what came before."""
        return Prefetch(lse_score.ffmpeg_jpeg_chunks(path, media.probe(path).fps, CHUNK))

    def _score(self, side: str, path: Any, ahead: Optional[Prefetch] = None) -> dict[str, Any]:
        """One side's result (:func:`plain_result` of the scorer's); ``ahead``: its frames, started earlier."""
        if self.frames == "ffmpeg_jpeg":
            audio = media.read_audio(path, sample_rate=SAMPLE_RATE, dtype="int16")
            scorer = StreamingScorer(self.model, audio, batch_size=self.batch_size)
            with ahead or self._jpeg_frames(path) as chunks:
                for frames in chunks:
                    scorer.add(_resize_224(frames))
            return plain_result(scorer.score())
        if side in self._errors:
            raise ValueError(self._errors[side])
        scorer = self._streams[side]
        if not self._live:
            with media.VideoReader(path, fps=VIDEO_FPS) as reader:
                for frames in reader.iter_chunks(CHUNK):
                    scorer.add(_resize_224(frames))
        return plain_result(scorer.score())

    # ---------------------------------------------------------------- the reference side's cache
    def _cache_key(self, path: Any) -> tuple[str, dict[str, Any]]:
        """Everything that changes a reference video's score, and its sha256."""
        import av

        config = {k: v for k, v in self.config().items() if k != "reference_cache"}
        payload = {
            "cache_version": REFERENCE_CACHE_VERSION,
            "video_sha256": file_sha256(path),
            "config": config,  # preset, frame chain, ffmpeg version and sha256, vshift, crops, tracks ...
            "weights": self.weights_provenance(),  # SyncNet's sha256 (and S3FD's for face tracks)
            "software": {"torch": torch.__version__, "numpy": np.__version__, "av": av.__version__,
                         "opencv": cv2.__version__,
                         "opencv_build": hashlib.sha256(cv2.getBuildInformation().encode()).hexdigest()},
            "device": torch.device(self.device).type,
        }
        text = json.dumps(payload, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest(), json.loads(text)

    def _cache_valid(self, result: Any) -> bool:
        return isinstance(result, dict) and all(k in result for k in _RESULT_KEYS)

    def _cached(self, path: Any) -> tuple[Path, dict[str, Any], Optional[dict[str, Any]]]:
        """A reference video's cache file, its key, and the result stored there (None: absent or damaged)."""
        key, payload = self._cache_key(path)
        file = default_cache_dir() / f"lse-{key}.json"
        try:
            entry = json.loads(file.read_text(encoding="utf-8"))
            if entry.get("key") == payload and self._cache_valid(entry.get("result")):
                return file, payload, entry["result"]
        except (OSError, ValueError, AttributeError):
            pass  # absent or damaged: score it and (re)write the entry
        return file, payload, None

    def _frames_ahead(self, path: Any) -> Optional[Prefetch]:
        """A video's frames, started now on a background thread; None for a chain that reads them later."""
        return self._jpeg_frames(path) if self.frames == "ffmpeg_jpeg" else None

    def _record(self, side: str, result: dict[str, Any]) -> dict[str, Any]:
        """Add one side's score of the current video; its per-video values."""
        assert self._video is not None
        self.sides[side].update(self._video.pair.video_id, [result])
        return {"lse_d": result["lse_d"], "lse_c": result["lse_c"], "lse_offset": result["offset"]}

    def end_video(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        paths = self._paths()
        # With the ffmpeg_jpeg chain each reference video is scored once, then read from the cache.
        cache = self._cached(paths["reference"]) if self.reference_cache else None
        ahead = None
        if cache is None or cache[2] is None:
            # The reference's frames are made (ffmpeg's JPEG dump) while SyncNet scores the generated side.
            with contextlib.suppress(ValueError, media.MediaError):  # raised again when it is scored
                ahead = self._frames_ahead(paths["reference"])
        try:
            for side, path in paths.items():
                try:
                    if side == "reference" and cache is not None and cache[2] is not None:
                        self.cache_hits += 1
                        result = cache[2]
                    else:
                        result = self._score(side, path, ahead if side == "reference" else None)
                        if side == "reference" and cache is not None:
                            self.cache_misses += 1
                            with contextlib.suppress(OSError):  # a read-only cache must not stop the run
                                fileio.write_json(cache[0], {"key": cache[1], "result": result})
                except (ValueError, media.MediaError) as err:
                    self._exclude(side, str(err).splitlines()[0])
                    continue
                prefix = "" if side == "generated" else "reference_"
                row.update({prefix + key: value for key, value in self._record(side, result).items()})
        finally:
            if ahead is not None:
                ahead.close()
        self.discard_video()
        return row

    def _exclude(self, side: str, reason: str) -> None:
        """A side of the current video gives no score: recorded in the LSE results and the video's warnings."""
        assert self._video is not None
        self.sides[side].update(self._video.pair.video_id, [], reason=reason)
        self._video.warnings.append(f"LSE {side}: {reason}")

    def discard_video(self) -> None:
        self._streams, self._errors = {}, {}

    def state(self) -> dict[str, Any]:  # both sides' LSE rows, and the reference cache's counts (config)
        return {**{side: lse.state() for side, lse in self.sides.items()}, "cache": [self.cache_hits, self.cache_misses]}

    def merge(self, state: dict[str, Any]) -> None:
        for side, metric in self.sides.items():
            metric.merge(state[side])
        self.cache_hits, self.cache_misses = self.cache_hits + state["cache"][0], self.cache_misses + state["cache"][1]

    def compute(self) -> dict[str, Any]:
        generated, reference = (self.sides[side].compute(self.preset) for side in self.SIDES)
        drop = ("per_video", "per_track", "config")
        return {**{k: v for k, v in generated.items() if k not in drop},
                "reference": {k: v for k, v in reference.items() if k not in drop}}

    def _chain_config(self) -> dict[str, Any]:
        """Which frames SyncNet saw: the frame source (``frames``, the option), its chain and (ffmpeg_jpeg) the
        ffmpeg binary's identity."""
        return {"frames": self.frames, "frame_chain": self.CHAINS[self.frames],
                "ffmpeg": dict(self.ffmpeg) if self.ffmpeg is not None else None,
                "reference_cache": self._cache_config()}

    def _cache_config(self) -> dict[str, Any]:
        if not self.reference_cache:
            return {"enabled": False}
        return {"enabled": True, "key": "sha256 of the file, preset, frame chain, ffmpeg version and sha256, "
                                        "weights sha256, every setting here, torch/numpy/av/opencv versions, device",
                "hits": self.cache_hits, "misses": self.cache_misses}

    def config(self) -> dict[str, Any]:
        return {**self.sides["generated"].config(), "preset": self.preset,
                "crop": "whole frame resized to 224x224 (cv2 INTER_LINEAR), Wav2Lip calculate_scores_LRS.py",
                "fps": float(VIDEO_FPS), "audio": "the video's own audio track, 16 kHz mono int16",
                **self._chain_config()}

    def weights_provenance(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.weights_provenance().items() if v}

    def reset(self) -> None:
        for metric in self.sides.values():
            metric.reset()
        self.cache_hits = self.cache_misses = 0
        self.discard_video()
