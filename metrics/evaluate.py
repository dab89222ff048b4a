"""`toolkit evaluate`: score generated videos against reference clips with any set of metrics.

One call, lm-evaluation-harness style: a registry of metrics by name (:data:`METRICS`), one runner
(:func:`evaluate`) that runs any combination, and results with full provenance::

    from metrics.evaluate import evaluate
    result = evaluate("generated/", "data/sample", metrics=["fid", "lmd", "psnr"], out="runs/x")

Pairing (:func:`pair_videos`)
    ``generated`` and ``reference`` are each a folder of videos or a dataset saved by
    ``toolkit preprocess`` (its crop videos, split ``test`` by default). Videos pair by id: a
    folder video's id is its path relative to the folder without the extension (``spk/clip.mp4``
    -> ``spk/clip``; a flat folder gives the file stem), a dataset video's id is its ``clip_id``.
    Ids on one side only are listed in ``summary.json`` (``unpaired``) and not scored.

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

from toolkit import face_mesh, media, weights
from toolkit.fileio import atomic_path, write_json
from toolkit.progress import progress_bar
from toolkit.provenance import software_versions

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm")
CHUNK = 32  # frames decoded and scored at a time: constant memory, batches big enough for the models
DEFAULT_METRICS = ("fid", "lse", "lmd", "pose", "blink", "psnr", "ssim", "lpips", "csim", "niqe")
LSE_FPS = 25.0


# ------------------------------------------------------------------------------------- pairing
@dataclass(frozen=True)
class VideoPair:
    video_id: str
    generated: Path
    reference: Path


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
        if path.suffix.lower() in VIDEO_EXTENSIONS and path.is_file():
            video_id = path.relative_to(folder).with_suffix("").as_posix()
            if video_id in found:
                raise ValueError(f"{folder}: two videos share the id {video_id!r} ({found[video_id].name}, {path.name})")
            found[video_id] = path
    return found


def dataset_videos(dataset_dir: Path, split: str, cache: Path) -> dict[str, Path]:
    """The crop videos of one split of a preprocessed dataset, written once to `cache` as mp4 files."""
    from datasets import load_from_disk

    dataset = load_from_disk(str(dataset_dir))
    if split not in dataset:
        raise ValueError(f"{dataset_dir}: no split {split!r} (splits: {', '.join(dataset)})")
    rows = dataset[split].select_columns(["clip_id", "video"])
    found = {}
    for row in rows:
        target = cache / f"{row['clip_id']}.mp4"
        data = row["video"]
        if not (target.is_file() and target.stat().st_size == len(data)):
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
        found[row["clip_id"]] = target
    return found


def _videos(source: Path, split: str, cache: Path) -> dict[str, Path]:
    source = Path(source)
    if is_dataset(source):
        return dataset_videos(source, split, cache / source.name)
    if source.is_file() and source.suffix.lower() in VIDEO_EXTENSIONS:
        return {source.stem: source}
    return folder_videos(source)


def pair_videos(generated: Path, reference: Path, split: str = "test", cache: Path | None = None
                ) -> tuple[list[VideoPair], dict[str, list[str]]]:
    """Pairs by id, and the ids found on one side only (``{"generated_only": [...], "reference_only": [...]}``)."""
    cache = Path(cache) if cache is not None else Path(weights.cache_dir()) / "evaluate-videos"
    gen = _videos(generated, split, cache / "generated")
    ref = _videos(reference, split, cache / "reference")
    if not gen:
        raise ValueError(f"{generated}: no videos found ({', '.join(VIDEO_EXTENSIONS)})")
    if not ref:
        raise ValueError(f"{reference}: no videos found ({', '.join(VIDEO_EXTENSIONS)})")
    pairs = [VideoPair(i, gen[i], ref[i]) for i in sorted(gen.keys() & ref.keys())]
    unpaired = {"generated_only": sorted(gen.keys() - ref.keys()), "reference_only": sorted(ref.keys() - gen.keys())}
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
    generated_landmarks: np.ndarray | None = None  # (T, 478, 3) crop pixels, NaN rows without a face
    reference_landmarks: np.ndarray | None = None
    warnings: list[str] = field(default_factory=list)


class Metric:
    """Adapter between the runner and one metric module. Subclasses set `name` and the flags."""

    name = ""
    paired_frames = False  # wants (generated, reference) chunks resized to the same size
    generated_frames = False  # wants the generated chunks as they are
    landmarks = False  # wants the MediaPipe meshes of both videos

    def start(self, video: "VideoData") -> None:
        """A new pair begins (its frame rate and length are known)."""

    def frames(self, generated: np.ndarray, reference: np.ndarray) -> None:
        """One chunk of frames of the current pair."""

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
        from metrics.fid import FID

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
    from metrics.psnr_ssim import PSNRSSIM

    adapter = _PixelPairs(PSNRSSIM())
    adapter.name = "psnr_ssim"
    return adapter


def _lpips(device: str, **_: Any) -> Metric:
    from metrics.lpips import LPIPS

    adapter = _PixelPairs(LPIPS(device=device))
    adapter.name = "lpips"
    return adapter


def _csim(device: str, **_: Any) -> Metric:
    from metrics.csim import CSIM

    adapter = _PixelPairs(CSIM(convention="paired", device=device))
    adapter.name = "csim"
    return adapter


class _NIQE(Metric):
    name, generated_frames = "niqe", True

    def __init__(self, **_: Any) -> None:
        from metrics.niqe import NIQE

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
    name, landmarks = "lmd", True

    def __init__(self, **_: Any) -> None:
        from metrics.lmd import LandmarkDistance

        self.metric = LandmarkDistance("dense", detector="mediapipe", truncate=True)

    def finish(self, video):
        row = self.metric.update(video.generated_landmarks, video.reference_landmarks)
        return {k: row[k] for k in ("mouth_lmd", "face_lmd", "mouth_lmd_v", "face_lmd_v")}

    def compute(self):
        return self.metric.compute()

    def config(self):
        return self.metric.config()


class _BothSides(Metric):
    """A per-video statistic of the generated videos, and of the references next to it as the anchor."""

    landmarks = True
    keys: tuple[str, ...] = ()  # per-video values copied to per_video.csv

    def make(self, fps: float) -> Any:
        raise NotImplementedError

    def __init__(self, **_: Any) -> None:
        self.generated = self.reference = None

    def finish(self, video):
        if self.generated is None:  # the first pair's frame rate (the runner reads every pair at its reference's)
            self.generated, self.reference = self.make(video.fps), self.make(video.fps)
        gen = self.generated.update(video.generated_landmarks)
        ref = self.reference.update(video.reference_landmarks)
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
        from metrics.head_motion import PoseDiversity

        return PoseDiversity()


class _Blink(_BothSides):
    name, keys = "blink", ("blink_rate",)

    def make(self, fps):
        from metrics.blink import BlinkRate

        return BlinkRate("mesh", fps=fps)


class _LSE(Metric):
    """LSE-D / LSE-C of the generated videos (and of the references, the usual anchor), Wav2Lip's LRS
    protocol: whole frames resized to 224 (the toolkit's videos are face-centred crops), read at 25 fps,
    embedded chunk by chunk (memory does not grow with length), mean over videos."""

    name, generated_frames = "lse", True
    preset = "wav2lip_lrs"

    def __init__(self, device: str, **_: Any) -> None:
        from metrics.lse import LSE
        from metrics.syncnet import SyncNet

        self.model = SyncNet.from_pretrained(device)
        self.generated, self.reference = LSE(self.model), LSE(self.model)
        self._streams = None

    @staticmethod
    def _resize(frames: np.ndarray) -> np.ndarray:
        from metrics.syncnet import CROP_SIZE

        if frames.shape[1:3] == (CROP_SIZE, CROP_SIZE):
            return frames
        return np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])  # INTER_LINEAR, as Wav2Lip

    def frames(self, generated, reference):
        if self._streams is not None:
            self._streams[0].add(self._resize(generated))
            self._streams[1].add(self._resize(reference))

    def start(self, video: "VideoData") -> None:
        from metrics.lse import StreamingScorer

        # At 25 fps the runner's chunks are SyncNet's frames; otherwise both are re-read at 25 fps in finish().
        self._streams = (StreamingScorer(self.model), StreamingScorer(self.model)) if video.fps == LSE_FPS else None

    def finish(self, video):
        row = {}
        for side, path, metric, stream in (("", video.pair.generated, self.generated, 0),
                                           ("reference_", video.pair.reference, self.reference, 1)):
            try:
                if self._streams is not None:
                    scorer = self._streams[stream]
                else:
                    from metrics.lse import StreamingScorer

                    scorer = StreamingScorer(self.model)
                    with media.VideoReader(path, fps=LSE_FPS) as reader:
                        for chunk in reader.iter_chunks(CHUNK):
                            scorer.add(self._resize(chunk))
                result = scorer.score(media.read_audio(path, sample_rate=16000, dtype="int16"))
            except (ValueError, media.MediaError) as err:
                reason = str(err).splitlines()[0]
                metric.update(video.pair.video_id, [], reason=reason)
                video.warnings.append(f"LSE {'reference' if side else 'generated'}: {reason}")
                continue
            metric.update(video.pair.video_id, [result])
            row.update({f"{side}lse_d": result["lse_d"], f"{side}lse_c": result["lse_c"],
                        f"{side}lse_offset": result["offset"]})
        self._streams = None
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


# name -> factory(device=..., options=...) ; "psnr" and "ssim" share one metric object
METRICS: dict[str, Callable[..., Metric]] = {
    "fid": _FID,
    "lse": _LSE,
    "psnr": _psnr_ssim,
    "ssim": _psnr_ssim,
    "lpips": _lpips,
    "csim": _csim,
    "niqe": _NIQE,
    "lmd": _LMD,
    "pose": _Pose,
    "blink": _Blink,
}


def build_metrics(names: Iterable[str], device: str = "cpu") -> tuple[list[Metric], dict[str, str]]:
    """Instantiate the named metrics; those that cannot start (weights missing or corrupt) are skipped with the reason."""
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
            built[factory] = factory(device=device)
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
    want_landmarks = any(m.landmarks for m in metrics)
    gen_marks, ref_marks = [], []
    meshes = (face_mesh.FaceMeshDetector(video=True), face_mesh.FaceMeshDetector(video=True)) if want_landmarks else None
    try:
        for gen_chunk, ref_chunk in _paired_chunks(gen, ref, video.frames_used):
            fitted = _fit(gen_chunk, ref.height, ref.width)
            for metric in metrics:
                if metric.paired_frames:
                    metric.frames(fitted, ref_chunk)
                elif metric.generated_frames:
                    metric.frames(gen_chunk, ref_chunk)
            if meshes is not None:
                for frames, detector, out in ((gen_chunk, meshes[0], gen_marks), (ref_chunk, meshes[1], ref_marks)):
                    for frame in frames:
                        found = detector.detect(frame)
                        out.append(found if found is not None else np.full((face_mesh.NUM_POINTS, 3), np.nan, np.float32))
    finally:
        if meshes is not None:
            for detector in meshes:
                detector.close()
        gen.close()
        ref.close()

    row: dict[str, Any] = {"video_id": pair.video_id, "generated": str(pair.generated), "reference": str(pair.reference),
                           "fps": fps, "frames_generated": len(gen), "frames_reference": len(ref),
                           "frames_used": video.frames_used}
    if want_landmarks:
        video.generated_landmarks = np.stack(gen_marks) if gen_marks else np.zeros((0, face_mesh.NUM_POINTS, 3), np.float32)
        video.reference_landmarks = np.stack(ref_marks) if ref_marks else np.zeros((0, face_mesh.NUM_POINTS, 3), np.float32)
        row["faces_generated"] = int(np.isfinite(video.generated_landmarks[:, 0, 0]).sum())
        row["faces_reference"] = int(np.isfinite(video.reference_landmarks[:, 0, 0]).sum())
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
) -> dict[str, Any]:
    """Score every paired video with every metric; write per_video.csv and summary.json to `out`; return the summary."""
    started = time.perf_counter()
    names = list(dict.fromkeys(metrics))
    out = Path(out) if out is not None else None
    cache = (out / "videos") if out is not None else None
    pairs, unpaired = pair_videos(Path(generated), Path(reference), split=split, cache=cache)
    active, skipped = build_metrics(names, device=device)
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
