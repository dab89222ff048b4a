"""`toolkit evaluate`: score generated videos against reference clips with any set of metrics.

One call, lm-evaluation-harness style: a registry of metrics by name (:data:`METRICS`), one runner
(:func:`evaluate`) that runs any combination, and results with full provenance::

    from talking_head.metrics.evaluate import evaluate
    result = evaluate("generated/", "data/sample", metrics=["fid", "lmd", "psnr"], out="runs/x")

Pairing (:func:`pair_videos`)
    ``generated`` and ``reference`` are each a folder of videos or a dataset saved by
    ``toolkit preprocess`` (its crop videos, split ``test`` by default). Videos pair by id: a
    folder video's id is its path relative to the folder without the extension (``spk/clip.mp4``
    -> ``spk/clip``; a flat folder gives the file stem), a dataset video's id is its ``clip_id``.
    Ids on one side only are listed in ``summary.json`` (``unpaired``) and not scored. Several samples
    drawn for one clip's audio, ``<clip_id>.sample<k>`` (:mod:`toolkit.video_ids`), each pair with
    ``<clip_id>``; together they give the cross-sample diversity (metric ``diversity``).

Mismatches, handled and recorded, never silently (``warnings`` column of ``per_video.csv``)
    * frame rate: both videos are read at the reference's frame rate (the generated one resampled
      the way ``ffmpeg -r`` does); LSE reads the generated video at 25 fps, as SyncNet was trained;
    * length: paired metrics use the first ``min(T_generated, T_reference)`` frames;
    * size: generated frames are resized to the reference size for paired pixel metrics (PSNR, SSIM,
      LPIPS, CSIM) with OpenCV ``INTER_AREA`` (down) or ``INTER_CUBIC`` (up); FID and NIQE see the
      generated frames as they are.

Decoding: every video is decoded once, in chunks, and each chunk goes to every requested metric
(memory does not grow with video length). The MediaPipe mesh runs once per video and feeds LMD, pose
diversity and blinks. LSE reads the generated video a second time at 25 fps only when its frame rate
is not 25.

Outputs in ``out``: ``per_video.csv`` (one row per pair: frames used, faces found, every metric's
per-video value, warnings), ``summary.json`` (aggregates, every knob, software versions, weight
hashes, skipped metrics and why). A metric whose weights are missing is skipped with the reason; the
others still run.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import cv2
import numpy as np

from talking_head.toolkit import dataset as schema
from talking_head.toolkit import face_mesh, media, weights
from talking_head.toolkit.fileio import atomic_path, write_json
from talking_head.toolkit.progress import progress_bar
from talking_head.toolkit.provenance import software_versions
from talking_head.toolkit.video_ids import parse_sample_id

CHUNK = 32  # frames decoded and scored at a time: constant memory, batches big enough for the models
DEFAULT_METRICS = ("fid", "lse", "lmd", "pose", "blink", "psnr", "ssim", "lpips", "csim", "niqe")
OPTIONAL_METRICS = ("beat_align", "diversity")  # run when asked for (--metrics)
DEFAULT_LSE_PRESET = "wav2lip_lrs"  # whole crop resized to 224: the toolkit's videos are face crops already
DEFAULT_LMD_PRESET = "dense"  # MediaPipe mesh, offline; atvgnet / vico need FAN 68-point weights
LSE_FPS = 25.0


# ------------------------------------------------------------------------------------- pairing
@dataclass(frozen=True)
class VideoPair:
    video_id: str
    generated: Path
    reference: Path
    sample: int | None = None  # k of a `<clip_id>.sample<k>` video (toolkit.video_ids), else None

    @property
    def clip_id(self) -> str:
        return parse_sample_id(self.video_id)[0] if self.sample is not None else self.video_id


def is_dataset(path: Path) -> bool:
    """A folder written by ``toolkit preprocess`` (``datasets`` save_to_disk layout)."""
    return (Path(path) / "dataset_dict.json").is_file()


def folder_videos(folder: Path) -> dict[str, Path]:
    """Videos under `folder` by id (relative path without extension, '/'-separated)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() in media.VIDEO_EXTENSIONS and path.is_file():
            video_id = path.relative_to(folder).with_suffix("").as_posix()
            if video_id in found:
                raise ValueError(f"{folder}: two videos share the id {video_id!r} ({found[video_id].name}, {path.name})")
            found[video_id] = path
    return found


def dataset_videos(dataset_dir: Path, split: str, cache: Path) -> dict[str, Path]:
    """The crop videos of one split of a preprocessed dataset, written once to `cache` as mp4 files."""
    rows = schema.load_split(dataset_dir, split).select_columns([schema.CLIP_ID, schema.VIDEO])
    return {row[schema.CLIP_ID]: schema.write_row_video(row[schema.VIDEO], cache / f"{row[schema.CLIP_ID]}.mp4")
            for row in rows}


def _videos(source: Path, split: str, cache: Path) -> dict[str, Path]:
    source = Path(source)
    if is_dataset(source):
        return dataset_videos(source, split, cache / source.name)
    if source.is_file() and source.suffix.lower() in media.VIDEO_EXTENSIONS:
        return {source.stem: source}
    return folder_videos(source)


def pair_videos(generated: Path, reference: Path, split: str = "test", cache: Path | None = None
                ) -> tuple[list[VideoPair], dict[str, list[str]]]:
    """Pairs by id, and the ids found on one side only (``{"generated_only": [...], "reference_only": [...]}``)."""
    cache = Path(cache) if cache is not None else Path(weights.cache_dir()) / "evaluate-videos"
    gen = _videos(generated, split, cache / "generated")
    ref = _videos(reference, split, cache / "reference")
    if not gen:
        raise ValueError(f"{generated}: no videos found ({', '.join(media.VIDEO_EXTENSIONS)})")
    if not ref:
        raise ValueError(f"{reference}: no videos found ({', '.join(media.VIDEO_EXTENSIONS)})")
    pairs, generated_only = [], []
    for video_id in sorted(gen):
        clip, sample = parse_sample_id(video_id)
        if video_id in ref:
            pairs.append(VideoPair(video_id, gen[video_id], ref[video_id]))
        elif sample is not None and clip in ref:  # one of several samples drawn for the clip's audio
            pairs.append(VideoPair(video_id, gen[video_id], ref[clip], sample=sample))
        else:
            generated_only.append(video_id)
    matched = {pair.clip_id for pair in pairs}
    unpaired = {"generated_only": generated_only, "reference_only": sorted(ref.keys() - matched)}
    if not pairs:
        raise ValueError(
            f"no video of {generated} has a reference of the same id in {reference} "
            f"(e.g. {sorted(gen)[:3]} vs {sorted(ref)[:3]}); ids are paths relative to the folder without extension"
        )
    return pairs, unpaired


# ------------------------------------------------------------------------------- per-video data
@dataclass
class VideoData:
    """What the runner gathered for one pair, handed to each metric when the pair is done."""

    pair: VideoPair
    fps: float
    frames_used: int
    warnings: list[str] = field(default_factory=list)


class Metric:
    """Adapter between the runner and one metric module. Subclasses set `name` and the flags."""

    name = ""
    paired_frames = False  # wants (generated, reference) chunks resized to the same size
    generated_frames = False  # wants the generated chunks as they are
    landmarks = False  # wants the MediaPipe meshes of both videos, chunk by chunk

    def start(self, video: "VideoData") -> None:
        """A new pair begins (its frame rate and length are known)."""

    def frames(self, generated: np.ndarray, reference: np.ndarray) -> None:
        """One chunk of frames of the current pair."""

    def landmark_chunk(self, generated: np.ndarray, reference: np.ndarray) -> None:
        """The meshes of one chunk of both videos, (n, 478, 3) crop pixels each, NaN rows without a face.
        Keep per-frame reductions, not the meshes: memory must not grow with the video's length."""

    def finish(self, video: VideoData) -> dict[str, Any]:
        """The pair is done: per-video values for per_video.csv."""
        return {}

    def compute(self) -> dict[str, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {}

    def weights_provenance(self) -> dict[str, str]:
        return {}


class _FID(Metric):
    name, paired_frames = "fid", True

    def __init__(self, device: str, **_: Any) -> None:
        from talking_head.metrics.fid import FID

        self.metric = FID(device=device)

    def frames(self, generated, reference):
        self.metric.update(generated)
        self.metric.update_reference(reference)

    def compute(self):
        return self.metric.compute()

    def config(self):
        return {**self.metric.config(), "protocol": "all paired frames of all videos, pooled (Wav2Lip); "
                                                    "frames as stored in the videos (crops for toolkit datasets)"}

    def weights_provenance(self):
        return self.metric.weights_provenance()


class _PixelPairs(Metric):
    """PSNR/SSIM, LPIPS and CSIM: paired frames, per-frame values averaged per video."""

    paired_frames = True

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self._start = 0

    def frames(self, generated, reference):
        self.metric.update(generated, reference)

    def finish(self, video):
        per_frame = self.metric.per_frame()
        values = per_frame if isinstance(per_frame, dict) else {self.name: per_frame}
        row = {}
        for key, array in values.items():
            part = np.asarray(array, dtype=np.float64)[self._start :]
            finite = part[np.isfinite(part)]
            row[key] = float(finite.mean()) if len(finite) else float("nan")
        self._start += video.frames_used
        return row

    def compute(self):
        return self.metric.compute()

    def config(self):
        return self.metric.config()

    def weights_provenance(self):
        return self.metric.weights_provenance()


def _psnr_ssim(**_: Any) -> Metric:
    from talking_head.metrics.psnr_ssim import PSNRSSIM

    adapter = _PixelPairs(PSNRSSIM())
    adapter.name = "psnr_ssim"
    return adapter


def _lpips(device: str, **_: Any) -> Metric:
    from talking_head.metrics.lpips import LPIPS

    adapter = _PixelPairs(LPIPS(device=device))
    adapter.name = "lpips"
    return adapter


def _csim(device: str, **_: Any) -> Metric:
    from talking_head.metrics.csim import CSIM

    adapter = _PixelPairs(CSIM(convention="paired", device=device))
    adapter.name = "csim"
    return adapter


class _NIQE(Metric):
    name, generated_frames = "niqe", True

    def __init__(self, **_: Any) -> None:
        from talking_head.metrics.niqe import NIQE

        self.metric = NIQE()
        self._start = 0

    def frames(self, generated, reference):
        self.metric.update(generated)

    def finish(self, video):
        scores = np.asarray(self.metric.per_frame(), dtype=np.float64)[self._start :]
        self._start += len(scores)
        finite = scores[np.isfinite(scores)]
        return {"niqe": float(finite.mean()) if len(finite) else float("nan")}

    def compute(self):
        return self.metric.compute()

    def config(self):
        return self.metric.config()

    def weights_provenance(self):
        return self.metric.weights_provenance()


class _LMD(Metric):
    """M-LMD / F-LMD and their LMD-v. The dense preset uses the runner's MediaPipe meshes; the 68-point
    presets (atvgnet, vico) run FAN on the paired frames (the generated ones resized to the reference
    size, so both are in the same pixel units)."""

    name = "lmd"

    def __init__(self, device: str = "cpu", lmd_preset: str = DEFAULT_LMD_PRESET, **_: Any) -> None:
        from talking_head.metrics.lmd import DEFAULT_BOX_SOURCE, LandmarkDistance, LandmarkExtractor, get_preset

        preset = get_preset(lmd_preset)
        self._extractor = None
        if preset.detectors[0] == "mediapipe":
            self.landmarks = True
        else:
            self.paired_frames = True
            self._extractor = LandmarkExtractor("fan", device=device,
                                                box_source=preset.fan_box_source or DEFAULT_BOX_SOURCE,
                                                flip_input=bool(preset.fan_flip_input))
        self.metric = LandmarkDistance(preset, detector=self._extractor or preset.detectors[0], truncate=True)
        self._video = None

    def frames(self, generated, reference):
        self._video.add(self._extractor(generated), self._extractor(reference))

    def start(self, video):
        from talking_head.metrics.lmd import VideoDistances

        self._video = VideoDistances(self.metric.preset)

    def landmark_chunk(self, generated, reference):
        self._video.add(generated, reference)

    def finish(self, video):
        row = self.metric.add_video(self._video)
        return {k: row[k] for k in ("mouth_lmd", "face_lmd", "mouth_lmd_v", "face_lmd_v")}

    def compute(self):
        return self.metric.compute()

    def config(self):
        if self._extractor is None:
            return self.metric.config()
        return {**self.metric.config(), "extractor": self._extractor.config(),
                "frames": "generated frames resized to the reference size first"}

    def weights_provenance(self):
        return self._extractor.weights_provenance() if self._extractor is not None else {}


class _BothSides(Metric):
    """A per-video statistic of the generated videos, and of the references next to it as the anchor."""

    landmarks = True
    keys: tuple[str, ...] = ()  # per-video values copied to per_video.csv

    def make(self, fps: float) -> Any:
        """The streaming metric for one side."""
        raise NotImplementedError

    def reduce(self, meshes: np.ndarray) -> np.ndarray:
        """Per-frame values of one chunk of meshes, all the metric needs of them."""
        raise NotImplementedError

    def update(self, metric: Any, per_frame: np.ndarray, path: Path, fps: float) -> dict[str, Any]:
        """Add one video's per-frame values to `metric` (`path`: the video, for its audio); its row."""
        raise NotImplementedError

    def __init__(self, **_: Any) -> None:
        self.generated = self.reference = None
        self._parts: tuple[list, list] = ([], [])

    def start(self, video):
        self._parts = ([], [])

    def landmark_chunk(self, generated, reference):
        self._parts[0].append(self.reduce(generated))
        self._parts[1].append(self.reduce(reference))

    def finish(self, video):
        if self.generated is None:  # the first pair's frame rate (the runner reads every pair at its reference's)
            self.generated, self.reference = self.make(video.fps), self.make(video.fps)
        gen, ref = (self.update(metric, np.concatenate(parts) if parts else np.zeros((0, 3)), path, video.fps)
                    for metric, parts, path in ((self.generated, self._parts[0], video.pair.generated),
                                                (self.reference, self._parts[1], video.pair.reference)))
        column = {k: k if k.startswith(self.name) else f"{self.name}_{k}" for k in self.keys}
        return {**{column[k]: gen[k] for k in self.keys}, **{f"reference_{column[k]}": ref[k] for k in self.keys}}

    def compute(self):
        if self.generated is None:
            return {}
        return {**self.generated.compute(), "reference": self.reference.compute()}

    def config(self):
        return (self.generated or self.make(LSE_FPS)).config()


class _Pose(_BothSides):
    name, keys = "pose", ("yaw_std", "pitch_std", "roll_std")

    def make(self, fps):
        from talking_head.metrics.head_motion import PoseDiversity

        return PoseDiversity()

    def reduce(self, meshes):
        from talking_head.metrics.head_motion import head_pose

        return head_pose(meshes)  # (n, 3) yaw, pitch, roll: the pose fit is per frame

    def update(self, metric, per_frame, path, fps):
        if len(per_frame) == 0:  # a video without frames is not counted (PoseDiversity rejects empty input)
            return {f"{angle}_std": float("nan") for angle in ("yaw", "pitch", "roll")}
        return metric.update(per_frame)


class _Blink(_BothSides):
    name, keys = "blink", ("blink_rate",)

    def make(self, fps):
        from talking_head.metrics.blink import BlinkRate

        return BlinkRate("mesh", fps=fps)

    def reduce(self, meshes):
        from talking_head.metrics.blink import eye_aspect_ratio

        return eye_aspect_ratio(meshes)  # (n,)

    def update(self, metric, per_frame, path, fps):
        return metric.update_ear(per_frame.reshape(-1))


def _beat_sample_rate(fps: float) -> int:
    """An audio rate near 16 kHz with a whole number of samples per video frame (the onset hop)."""
    if fps <= 0 or abs(fps - round(fps)) > 1e-6:
        raise ValueError(f"Beat Align needs an integer frame rate, got {fps:g}")
    return int(round(fps)) * math.ceil(16000 / round(fps))  # 16000 at 25 fps, 16020 at 30


class _BeatAlign(_Pose):
    """Bailando's Beat Align of head motion (yaw, pitch, roll velocity) to the video's own audio."""

    name, keys = "beat_align", ("beat_align",)

    def make(self, fps):
        from talking_head.metrics.head_motion import BeatAlign

        return BeatAlign(fps=fps, source="pose")

    def update(self, metric, per_frame, path, fps):
        if len(per_frame) < 2:
            return {"beat_align": float("nan")}
        rate = _beat_sample_rate(fps)
        return metric.update(per_frame, media.read_audio(path, sample_rate=rate), sample_rate=rate)

    def config(self):
        return {**super().config(), "audio": "each video's own audio track, at a whole number of samples per frame"}


class _Diversity(Metric):
    """Cross-sample diversity: the head poses of the samples generated for one clip's audio
    (``<clip_id>.sample<k>``), compared pairwise. Clips with a single video do not count."""

    name, landmarks = "diversity", True

    def __init__(self, **_: Any) -> None:
        from talking_head.metrics.head_motion import CrossSampleDiversity

        self.metric = CrossSampleDiversity()
        self._samples: dict[str, dict[int, np.ndarray]] = {}
        self._parts: list[np.ndarray] = []

    def start(self, video):
        self._parts = []

    def landmark_chunk(self, generated, reference):
        from talking_head.metrics.head_motion import head_pose

        self._parts.append(head_pose(generated))  # (n, 3): the poses are all a sample leaves behind

    def finish(self, video):
        if video.pair.sample is not None and self._parts:
            self._samples.setdefault(video.pair.clip_id, {})[video.pair.sample] = np.concatenate(self._parts)
        return {}

    def compute(self):
        self.metric.reset()
        per_clip = {}
        for clip, samples in sorted(self._samples.items()):
            if len(samples) < 2:
                continue
            poses = [samples[k] for k in sorted(samples)]
            n = min(len(p) for p in poses)  # samples of one audio have its length; trim encoder padding
            per_clip[clip] = self.metric.update([p[:n] for p in poses])["diversity"]
        out = self.metric.compute()
        out["per_clip"] = per_clip
        if not per_clip:
            out["note"] = "no clip has two or more generated samples named <clip_id>.sample<k>"
        return out

    def config(self):
        return {**self.metric.config(), "samples": "generated videos <clip_id>.sample<k> (toolkit.video_ids)",
                "pose": "talking_head.toolkit.pose.fit_pose on the runner's MediaPipe meshes"}


class _LSE(Metric):
    """LSE-D / LSE-C of the generated videos (and of the references, the usual anchor), Wav2Lip's LRS
    protocol: whole frames resized to 224 (the toolkit's videos are face-centred crops), read at 25 fps,
    embedded chunk by chunk (memory does not grow with length), mean over videos."""

    name, generated_frames = "lse", True
    preset = "wav2lip_lrs"

    def __init__(self, device: str, **_: Any) -> None:
        from talking_head.metrics.lse import LSE
        from talking_head.metrics.syncnet import SyncNet

        self.model = SyncNet.from_pretrained(device)
        self.generated, self.reference = LSE(self.model), LSE(self.model)
        self._streams: dict[str, Any] = {}
        self._errors: dict[str, str] = {}
        self._live = False

    @staticmethod
    def _resize(frames: np.ndarray) -> np.ndarray:
        from talking_head.metrics.syncnet import CROP_SIZE

        if frames.shape[1:3] == (CROP_SIZE, CROP_SIZE):
            return frames
        return np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])  # INTER_LINEAR, as Wav2Lip

    def start(self, video: "VideoData") -> None:
        from talking_head.metrics.lse import StreamingScorer

        # With the audio known first, each window is scored as its frames arrive (constant memory).
        self._streams, self._errors = {}, {}
        for side, path in (("generated", video.pair.generated), ("reference", video.pair.reference)):
            try:
                audio = media.read_audio(path, sample_rate=16000, dtype="int16")
                self._streams[side] = StreamingScorer(self.model, audio)
            except (ValueError, media.MediaError) as err:
                self._errors[side] = str(err).splitlines()[0]
        # At 25 fps the runner's chunks are SyncNet's frames; otherwise both are re-read at 25 fps in finish().
        self._live = video.fps == LSE_FPS

    def frames(self, generated, reference):
        if self._live:
            for side, chunk in (("generated", generated), ("reference", reference)):
                if side in self._streams:
                    self._streams[side].add(self._resize(chunk))

    def finish(self, video):
        row = {}
        for side, path, metric in (("generated", video.pair.generated, self.generated),
                                   ("reference", video.pair.reference, self.reference)):
            prefix = "" if side == "generated" else "reference_"
            try:
                if side in self._errors:
                    raise ValueError(self._errors[side])
                scorer = self._streams[side]
                if not self._live:
                    with media.VideoReader(path, fps=LSE_FPS) as reader:
                        for chunk in reader.iter_chunks(CHUNK):
                            scorer.add(self._resize(chunk))
                result = scorer.score()
            except (ValueError, media.MediaError) as err:
                reason = str(err).splitlines()[0]
                metric.update(video.pair.video_id, [], reason=reason)
                video.warnings.append(f"LSE {side}: {reason}")
                continue
            metric.update(video.pair.video_id, [result])
            row.update({f"{prefix}lse_d": result["lse_d"], f"{prefix}lse_c": result["lse_c"],
                        f"{prefix}lse_offset": result["offset"]})
        self._streams = {}
        return row

    def compute(self):
        generated, reference = self.generated.compute(self.preset), self.reference.compute(self.preset)
        drop = ("per_video", "config")
        return {**{k: v for k, v in generated.items() if k not in drop},
                "reference": {k: v for k, v in reference.items() if k not in drop}}

    def config(self):
        return {**self.generated.config(), "preset": self.preset,
                "crop": "whole frame resized to 224x224 (cv2 INTER_LINEAR), Wav2Lip calculate_scores_LRS.py",
                "fps": LSE_FPS, "audio": "the video's own audio track, 16 kHz mono int16"}

    def weights_provenance(self):
        return {k: v for k, v in self.model.weights_provenance().items() if v}


# The face tracks each LSE preset was computed on (metrics.lse_track presets).
TRACK_CONFIGS = {"wav2lip_real": "upstream", "mocha": "syncnet-python", "latentsync": "syncnet-python"}


class _LSETracks(Metric):
    """LSE on SyncNet's face-track crops (S3FD on every 25 fps frame, scene cuts, IoU tracks, smoothed
    224 crops: :mod:`metrics.lse_track`), for full-frame videos, aggregated by the preset
    (``wav2lip_real``, ``mocha``, ``latentsync``). The crops need each track's smoothed boxes, so the
    frames of one video are held until it ends: memory grows with the longest video, unlike the
    default ``wav2lip_lrs`` path."""

    name, generated_frames = "lse", True

    def __init__(self, device: str, lse_preset: str, **_: Any) -> None:
        from talking_head.metrics.lse import LSE
        from talking_head.metrics.lse_track import FaceTrackPipeline
        from talking_head.metrics.syncnet import SyncNet

        self.preset = lse_preset
        self.model = SyncNet.from_pretrained(device)
        self.generated, self.reference = LSE(self.model), LSE(self.model)
        self.pipelines = {side: FaceTrackPipeline(TRACK_CONFIGS[lse_preset], device=device)
                          for side in ("generated", "reference")}
        # Load S3FD now (missing weights skip the metric before any video), once for both sides.
        self.pipelines["reference"]._s3fd = self.pipelines["generated"]._s3fd_detector()
        self._live = False

    def start(self, video):
        for pipeline in self.pipelines.values():
            pipeline.reset()
        self._live = video.fps == LSE_FPS  # otherwise re-read at 25 fps in finish()

    def frames(self, generated, reference):
        if self._live:
            self.pipelines["generated"].update(generated)
            self.pipelines["reference"].update(reference)

    def finish(self, video):
        row: dict[str, Any] = {}
        for side, path, metric in (("generated", video.pair.generated, self.generated),
                                   ("reference", video.pair.reference, self.reference)):
            prefix = "" if side == "generated" else "reference_"
            pipeline = self.pipelines[side]
            try:
                if not self._live:
                    with media.VideoReader(path, fps=LSE_FPS) as reader:
                        for chunk in reader.iter_chunks(CHUNK):
                            pipeline.update(chunk)
                pipeline.set_audio(media.read_audio(path, sample_rate=16000, dtype="int16"))
                result = pipeline.compute()
            except (ValueError, media.MediaError) as err:
                reason = str(err).splitlines()[0]
                metric.update(video.pair.video_id, [], reason=reason)
                video.warnings.append(f"LSE {side}: {reason}")
                continue
            finally:
                pipeline.reset()  # drop the held frames
            tracks = metric.update(video.pair.video_id, [(t.crops, t.audio) for t in result.tracks],
                                   reason=result.reason)
            row[f"{prefix}lse_tracks"] = len(tracks)
            if not tracks:
                video.warnings.append(f"LSE {side}: {metric.videos[video.pair.video_id]['reason']}")
                continue
            d, c = [t["lse_d"] for t in tracks], [t["lse_c"] for t in tracks]
            best = self.preset == "mocha"  # mocha: best track per video; the others average tracks
            row[f"{prefix}lse_d"] = min(d) if best else float(np.mean(d))
            row[f"{prefix}lse_c"] = max(c) if best else float(np.mean(c))
        return row

    def compute(self):
        generated, reference = self.generated.compute(self.preset), self.reference.compute(self.preset)
        drop = ("per_video", "per_track", "config")
        return {**{k: v for k, v in generated.items() if k not in drop},
                "reference": {k: v for k, v in reference.items() if k not in drop}}

    def config(self):
        return {**self.generated.config(), "preset": self.preset, "fps": LSE_FPS,
                "tracks": self.pipelines["generated"].config(), "audio": "the video's own audio track, 16 kHz mono int16"}

    def weights_provenance(self):
        found = {**self.model.weights_provenance(), **self.pipelines["generated"].weights_provenance()}
        return {k: v for k, v in found.items() if v}


def _lse(lse_preset: str = DEFAULT_LSE_PRESET, **options: Any) -> Metric:
    return _LSE(**options) if lse_preset == "wav2lip_lrs" else _LSETracks(lse_preset=lse_preset, **options)


# name -> factory(device=..., options=...) ; "psnr" and "ssim" share one metric object
METRICS: dict[str, Callable[..., Metric]] = {
    "fid": _FID,
    "lse": _lse,
    "psnr": _psnr_ssim,
    "ssim": _psnr_ssim,
    "lpips": _lpips,
    "csim": _csim,
    "niqe": _NIQE,
    "lmd": _LMD,
    "pose": _Pose,
    "blink": _Blink,
    "beat_align": _BeatAlign,
    "diversity": _Diversity,
}


def build_metrics(names: Iterable[str], device: str = "cpu", lse_preset: str = DEFAULT_LSE_PRESET,
                  lmd_preset: str = DEFAULT_LMD_PRESET) -> tuple[list[Metric], dict[str, str]]:
    """Instantiate the named metrics; those that cannot start (weights missing or corrupt) are skipped with the reason."""
    from talking_head.metrics import lmd, lse

    if lse_preset not in lse.PRESETS:
        raise ValueError(f"unknown LSE preset {lse_preset!r}; choose one of {', '.join(lse.PRESETS)}")
    if lmd_preset not in lmd.PRESETS:
        raise ValueError(f"unknown LMD preset {lmd_preset!r}; choose one of {', '.join(lmd.PRESETS)}")
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    built: dict[Callable, Metric] = {}
    skipped: dict[str, str] = {}
    for name in names:
        factory = METRICS[name]
        if factory in built:
            continue
        try:
            built[factory] = factory(device=device, lse_preset=lse_preset, lmd_preset=lmd_preset)
        except (weights.WeightsMissingError, weights.WeightsCorruptError) as err:
            skipped[name] = str(err).splitlines()[0]
    return list(built.values()), skipped


# ---------------------------------------------------------------------------------------- runner
def _fit(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames
    shrink = frames.shape[1] * frames.shape[2] > height * width
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return np.stack([cv2.resize(f, (width, height), interpolation=method) for f in frames])


def _paired_chunks(gen: media.VideoReader, ref: media.VideoReader, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    gen_chunks, ref_chunks = gen.iter_chunks(CHUNK), ref.iter_chunks(CHUNK)
    gen_buf = ref_buf = np.empty((0,), np.uint8)
    done = 0
    while done < count:
        while len(gen_buf) < CHUNK and done + len(gen_buf) < count:
            gen_buf = next(gen_chunks) if len(gen_buf) == 0 else np.concatenate([gen_buf, next(gen_chunks)])
        while len(ref_buf) < CHUNK and done + len(ref_buf) < count:
            ref_buf = next(ref_chunks) if len(ref_buf) == 0 else np.concatenate([ref_buf, next(ref_chunks)])
        n = min(CHUNK, count - done, len(gen_buf), len(ref_buf))
        yield gen_buf[:n], ref_buf[:n]
        gen_buf, ref_buf = gen_buf[n:], ref_buf[n:]
        done += n


def score_pair(pair: VideoPair, metrics: list[Metric]) -> dict[str, Any]:
    """Decode one pair once, feed every metric, and return its per_video.csv row."""
    fps = float(media.probe(pair.reference).fps or LSE_FPS)  # header only: each video is indexed once below
    generated_fps = media.probe(pair.generated).fps
    ref = media.VideoReader(pair.reference, fps=fps)
    gen = media.VideoReader(pair.generated, fps=fps)
    video = VideoData(pair=pair, fps=fps, frames_used=min(len(gen), len(ref)))
    if generated_fps and abs(generated_fps - fps) > 1e-3:
        video.warnings.append(f"generated at {generated_fps:g} fps, read at the reference's {fps:g} fps")
    if len(gen) != len(ref):
        video.warnings.append(f"length differs: {len(gen)} generated vs {len(ref)} reference frames; "
                              f"the first {video.frames_used} are compared")
    if (gen.height, gen.width) != (ref.height, ref.width):
        video.warnings.append(f"size differs: {gen.width}x{gen.height} generated vs {ref.width}x{ref.height} "
                              f"reference; generated frames resized for paired pixel metrics")

    for metric in metrics:
        metric.start(video)
    landmark_metrics = [m for m in metrics if m.landmarks]
    faces = [0, 0]  # frames with a face: generated, reference
    meshes = (face_mesh.FaceMeshDetector(video=True), face_mesh.FaceMeshDetector(video=True)) if landmark_metrics else None
    try:
        for gen_chunk, ref_chunk in _paired_chunks(gen, ref, video.frames_used):
            fitted = _fit(gen_chunk, ref.height, ref.width)
            for metric in metrics:
                if metric.paired_frames:
                    metric.frames(fitted, ref_chunk)
                elif metric.generated_frames:
                    metric.frames(gen_chunk, ref_chunk)
            if meshes is not None:
                marks = []
                for side, (frames, detector) in enumerate(((gen_chunk, meshes[0]), (ref_chunk, meshes[1]))):
                    found = np.full((len(frames), face_mesh.NUM_POINTS, 3), np.nan, np.float32)
                    for i, frame in enumerate(frames):
                        mesh = detector.detect(frame)
                        if mesh is not None:
                            found[i] = mesh
                            faces[side] += 1
                    marks.append(found)
                for metric in landmark_metrics:
                    metric.landmark_chunk(*marks)
    finally:
        if meshes is not None:
            for detector in meshes:
                detector.close()
        gen.close()
        ref.close()

    row: dict[str, Any] = {"video_id": pair.video_id, "generated": str(pair.generated), "reference": str(pair.reference),
                           "fps": fps, "frames_generated": len(gen), "frames_reference": len(ref),
                           "frames_used": video.frames_used}
    if landmark_metrics:
        row["faces_generated"], row["faces_reference"] = faces
        if row["faces_generated"] < video.frames_used:
            video.warnings.append(f"no face in {video.frames_used - row['faces_generated']} generated frames (excluded from landmark metrics)")
    for metric in metrics:
        row.update(metric.finish(video))
    row["warnings"] = "; ".join(video.warnings)
    return row


def evaluate(
    generated: str | Path,
    reference: str | Path,
    metrics: Iterable[str] = DEFAULT_METRICS,
    out: str | Path | None = None,
    split: str = "test",
    device: str = "cpu",
    show_progress: bool = True,
    lse_preset: str = DEFAULT_LSE_PRESET,
    lmd_preset: str = DEFAULT_LMD_PRESET,
) -> dict[str, Any]:
    """Score every paired video with every metric; write per_video.csv and summary.json to `out`; return the summary.

    `lse_preset`: ``wav2lip_lrs`` (default: each frame resized to 224, right for face-crop videos) or a
    face-track preset for full-frame videos (``wav2lip_real``, ``mocha``, ``latentsync``; see
    :data:`metrics.lse.PRESETS`). `lmd_preset`: ``dense`` (default, MediaPipe mesh), ``atvgnet`` or
    ``vico`` (FAN 68 points, weights from the registry).
    """
    started = time.perf_counter()
    names = list(dict.fromkeys(metrics))
    out = Path(out) if out is not None else None
    cache = (out / "videos") if out is not None else None
    pairs, unpaired = pair_videos(Path(generated), Path(reference), split=split, cache=cache)
    active, skipped = build_metrics(names, device=device, lse_preset=lse_preset, lmd_preset=lmd_preset)
    rows = []
    frames = 0
    with progress_bar(len(pairs), "evaluate", unit="videos", enabled=show_progress) as advance:
        for pair in pairs:
            rows.append(score_pair(pair, active))
            frames += rows[-1]["frames_used"]
            elapsed = max(time.perf_counter() - started, 1e-9)
            advance(1, info=f"{frames / elapsed:.0f} frames/s")
    summary = {
        "generated": str(generated),
        "reference": str(reference),
        "split": split,
        "device": device,
        "metrics_requested": names,
        "options": {"lse_preset": lse_preset, "lmd_preset": lmd_preset, "chunk_frames": CHUNK},
        "results": {m.name: _plain(m.compute()) for m in active},
        "skipped": skipped,
        "config": {m.name: _plain(m.config()) for m in active},
        "weights": {k: v for m in active for k, v in m.weights_provenance().items()},
        "videos": len(rows),
        "frames": frames,
        "unpaired": unpaired,
        "pairing": "by id: folder path without extension, or dataset clip_id",
        "software": software_versions(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if out is not None:
        write_per_video(out / "per_video.csv", rows)
        write_json(out / "summary.json", summary)
    return summary


def write_per_video(path: Path, rows: list[dict[str, Any]]) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _cell(row.get(k)) for k in columns})


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars and arrays to Python, NaN and inf to None (JSON has neither)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Path):
        return str(value)
    return value
