"""`toolkit evaluate`: score generated videos against reference clips with any set of registered metrics.

One call, lm-evaluation-harness style: the metrics by name (:mod:`metrics.registry`), one runner
(:func:`evaluate`) that runs any combination, and results with full provenance::

    from talking_head.metrics import evaluate
    result = evaluate("generated/", "data/sample", metrics=["fid", "lmd", "psnr"], out="runs/x")

Pairing by id: :mod:`metrics.pairing`.

Mismatches, handled and recorded, never silently (``warnings`` column of ``per_video.csv``)
    * frame rate: both videos are read at the reference's frame rate (the generated one resampled
      the way ``ffmpeg -r`` does); LSE reads the generated video at 25 fps, as SyncNet was trained;
    * length: paired metrics use the first ``min(T_generated, T_reference)`` frames;
    * size: generated frames are resized to the reference size for paired pixel metrics (PSNR, SSIM,
      LPIPS, CSIM) with OpenCV ``INTER_AREA`` (down) or ``INTER_CUBIC`` (up); FID and NIQE see the
      generated frames as they are.

Videos that cannot be scored (missing, empty, truncated or undecodable, no audio track where a metric
reads the audio) do not stop the run: each becomes a row with ``status`` ``excluded`` and its
``reason`` in ``per_video.csv`` and is listed in ``summary.json`` (``excluded``); the other videos are
scored. A video is checked before any metric sees it, and one that fails half-way is taken back out of
every metric (:meth:`metrics.base.Metric.discard_video`), so pooled numbers hold whole videos only.

Decoding: every video is decoded once, in chunks, and each chunk goes to every requested metric
(memory does not grow with video length). The MediaPipe mesh runs once per video and feeds every
metric that consumes landmarks. LSE (``lse_frames="ffmpeg_jpeg"``, the default) reads each video again
through the reference's chain, ffmpeg's JPEG dump, and caches each reference video's score by content;
with ``lse_frames="decoded"`` it uses the decoded chunks and reads a video again only when its frame
rate is not 25.

Outputs in ``out`` (:mod:`metrics.results`): ``per_video.csv`` (one row per pair: frames used, faces
found, every metric's per-video values, warnings, status) and ``summary.json`` (aggregates, every
knob, software versions, weight hashes, skipped metrics and excluded videos, with the reasons). A
metric whose weights are missing is skipped with the reason; the others still run.
"""

from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Union

import cv2
import numpy as np

from talking_head.metrics import bootstrap as bootstrap_intervals, ground_truth, protocols, registry, throughput
from talking_head.metrics.base import AUDIO, CHUNK, LANDMARKS, Chunk, Metric, VideoInfo, VideoPair
from talking_head.metrics.distributed import ENGINES
from talking_head.metrics.pairing import PAIRING, dataset_meshes, is_dataset, pair_videos, video_cache
from talking_head.metrics.results import EXCLUDED, SCORED, plain, write_run
from talking_head.metrics.throughput import Stopwatch
from talking_head.toolkit import face_mesh, fileio, media, weights
from talking_head.toolkit.prefetch import Prefetch
from talking_head.toolkit.progress import progress_bar
from talking_head.toolkit.provenance import device_description, software_versions

UNKNOWN_FPS = 25.0  # a reference whose header gives no frame rate is read at 25 fps
REFERENCE_MESHES = ("stored", "mediapipe")  # where a dataset reference's meshes come from (evaluate())
LANDMARKS_DIR = "landmarks"  # <out>/landmarks/<video id>.npz: the meshes the landmark metrics saw


class VideoExcluded(Exception):
    """A pair that cannot be scored; the message is the reason written to per_video.csv, ``detail`` the
    technical evidence behind a media error (FFmpeg's message, byte offsets, damaged frames)."""

    def __init__(self, reason: str, detail: Optional[str] = None) -> None:
        super().__init__(reason)
        self.detail = detail


def resolve_flags(flags: dict[str, Optional[str]]) -> dict[str, str]:
    """The preset flags (``lse_preset=...``) with the registry's defaults for those not given."""
    unknown = sorted(set(flags) - set(registry.PRESET_FLAGS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(registry.PRESET_FLAGS)}")
    return {**registry.preset_defaults(), **{k: v for k, v in flags.items() if v is not None}}


def build_metrics(names: Iterable[str], device: str = "cpu", metric_options: Optional[dict[str, dict[str, Any]]] = None,
                  **flags: Optional[str]) -> tuple[list[Metric], dict[str, str]]:
    """Instantiate the named metrics (aliases share one object); those that cannot start (weights missing
    or corrupt) are skipped with the reason. `flags`: the preset flags of :data:`registry.PRESET_FLAGS`;
    `metric_options`: keyword options by metric name (a protocol's), applied last.
    Metrics that declare the same ``shared_input`` get one instance of it (``shared=``), built once."""
    resolved = resolve_flags(flags)
    metric_options = {registry.entry(k).name: v for k, v in (metric_options or {}).items()}
    entries = {}
    for name in dict.fromkeys(names):
        entries.setdefault(registry.entry(name).name, (name, registry.entry(name)))
    built: list[Metric] = []
    skipped: dict[str, str] = {}
    shared: dict[type, Any] = {}  # shared_input class -> its one instance, or the error that stopped it
    for requested, entry in entries.values():
        options = dict(entry.defaults)
        options.update({option: resolved[flag] for flag, (metric, option) in registry.PRESET_FLAGS.items()
                        if metric == entry.name})
        options.update(metric_options.get(entry.name, {}))
        try:
            cls = entry.load()
            if cls.shared_input is not None:
                if cls.shared_input not in shared:
                    try:
                        shared[cls.shared_input] = cls.shared_input(device=device)
                    except (weights.WeightsMissingError, weights.WeightsCorruptError) as err:
                        shared[cls.shared_input] = err
                if isinstance(shared[cls.shared_input], Exception):
                    raise shared[cls.shared_input]
                options["shared"] = shared[cls.shared_input]
            built.append(cls(device=device, **options))
        except (weights.WeightsMissingError, weights.WeightsCorruptError) as err:
            skipped[requested] = str(err).splitlines()[0]
    return built, skipped


# ---------------------------------------------------------------------------------------- decoding
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


def _meshes(frames: np.ndarray, detector: face_mesh.FaceMeshDetector) -> tuple[np.ndarray, int]:
    """(n, 478, 3) meshes, NaN rows without a face, and how many frames had one."""
    found = np.full((len(frames), face_mesh.NUM_POINTS, 3), np.nan, np.float32)
    faces = 0
    for i, frame in enumerate(frames):
        mesh = detector.detect(frame)
        if mesh is not None:
            found[i] = mesh
            faces += 1
    return found, faces


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]


def _open(pair: VideoPair, needs_audio: bool, fps_override: Optional[float] = None
          ) -> tuple[media.VideoReader, media.VideoReader, VideoInfo]:
    """Both readers and the pair's facts, or :class:`VideoExcluded` naming the side and the cause.
    `fps_override`: both sides are read at this rate (a protocol's), else at the reference's."""
    readers: dict[str, media.VideoReader] = {}
    try:
        for side, path in (("reference", pair.reference), ("generated", pair.generated)):
            try:
                info = media.probe(path)  # header only: each video is indexed once by its reader below
                if needs_audio and not info.has_audio:
                    raise VideoExcluded(f"{side} video {path}: no audio track (a requested metric scores lip "
                                        "sync or beats against the video's own audio)")
                if side == "reference":
                    fps = float(fps_override or info.fps or UNKNOWN_FPS)
                else:
                    generated_fps = info.fps
                readers[side] = media.VideoReader(path, fps=fps)
            except (ValueError, media.MediaError) as err:
                raise VideoExcluded(f"{side} video: {_first_line(err)}", getattr(err, "detail", None)) from None
    except VideoExcluded:
        for reader in readers.values():
            reader.close()
        raise
    gen, ref = readers["generated"], readers["reference"]
    video = VideoInfo(pair=pair, fps=fps, frames_used=min(len(gen), len(ref)))
    if generated_fps and abs(generated_fps - fps) > 1e-3:
        video.warnings.append(f"generated at {generated_fps:g} fps, read at the reference's {fps:g} fps")
    if len(gen) != len(ref):
        video.warnings.append(f"length differs: {len(gen)} generated vs {len(ref)} reference frames; "
                              f"the first {video.frames_used} are compared")
    if (gen.height, gen.width) != (ref.height, ref.width):
        video.warnings.append(f"size differs: {gen.width}x{gen.height} generated vs {ref.width}x{ref.height} "
                              f"reference; generated frames resized for paired pixel metrics")
    return gen, ref, video


def _normalised_xy(meshes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(n, 478, 2) float16 x / width, y / height: what the leaderboard page draws over the video."""
    return (meshes[..., :2] / np.array([width, height], np.float32)).astype(np.float16)


def _save_landmarks(path: Path, sides: tuple[list[np.ndarray], list[np.ndarray]], fps: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    empty = np.zeros((0, face_mesh.NUM_POINTS, 2), np.float16)
    with fileio.atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, generated=np.concatenate(sides[0]) if sides[0] else empty,
                                reference=np.concatenate(sides[1]) if sides[1] else empty, fps=np.float32(fps))


def _stored_meshes(path: Optional[Path], ref: media.VideoReader, video: VideoInfo) -> Optional[np.ndarray]:
    """The reference meshes ``toolkit preprocess`` stored (:func:`metrics.pairing.dataset_meshes`), when they
    describe exactly the frames this run reads (same rate, size and count); else None, with a warning."""
    if path is None:
        return None
    with np.load(path) as stored:
        landmarks, stored_fps, size = stored["landmarks"], float(stored["fps"]), tuple(stored["size"].tolist())
    mismatch = [what for what, same in (
        (f"read at {video.fps:g} fps, stored at {stored_fps:g}", abs(stored_fps - video.fps) < 1e-6),
        (f"size {ref.width}x{ref.height}, stored {size[1]}x{size[0]}", size == (ref.height, ref.width)),
        (f"{len(ref)} frames, {len(landmarks)} stored", len(landmarks) == len(ref))) if not same]
    if mismatch:
        video.warnings.append(f"the dataset's stored reference meshes do not fit ({'; '.join(mismatch)}): "
                              "MediaPipe ran on the reference frames instead")
        return None
    return landmarks


def score_pair(pair: VideoPair, metrics: list[Metric], fps: Optional[float] = None,
               landmarks_dir: Optional[Path] = None, stopwatch: Optional[Stopwatch] = None,
               reference_meshes: Optional[Path] = None) -> dict[str, Any]:
    """Decode one pair once, feed every metric, and return its per_video.csv row. Raises
    :class:`VideoExcluded` (every metric left as it was before the pair) when the pair cannot be scored.
    `fps`: read both sides at this rate (default: the reference's); `landmarks_dir`: where the meshes the
    landmark metrics saw are written (``<video id>.npz``); `stopwatch`: collects the seconds of each stage;
    `reference_meshes`: the dataset's stored meshes of the reference video, used instead of MediaPipe when they
    fit the frames read (:func:`_stored_meshes`)."""
    clock = stopwatch or Stopwatch()
    with clock("decode"):
        gen, ref, video = _open(pair, needs_audio=any(AUDIO in m.consumes for m in metrics), fps_override=fps)
    landmarks = any(LANDMARKS in m.consumes for m in metrics)
    faces = [0, 0]  # frames with a face: generated, reference
    stored = _stored_meshes(reference_meshes, ref, video) if landmarks else None
    detectors = (face_mesh.FaceMeshDetector(video=True),
                 None if stored is not None else face_mesh.FaceMeshDetector(video=True)) if landmarks else ()
    done = 0  # frames of the pair handed to the metrics so far
    kept: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])  # the meshes, for the leaderboard page
    for metric in metrics:
        with clock(metric.name):
            metric.start_video(video)
    chunks = Prefetch(_paired_chunks(gen, ref, video.frames_used))  # the next chunk decodes while this one is scored
    try:
        while True:
            try:
                with clock("decode"):
                    gen_chunk, ref_chunk = next(chunks)
            except StopIteration:
                break
            except (ValueError, media.MediaError, RuntimeError) as err:  # RuntimeError: a stream ended early
                for metric in metrics:
                    metric.discard_video()
                raise VideoExcluded(f"decoding failed half-way: {_first_line(err)}", getattr(err, "detail", None)) from None
            meshes: list[Optional[np.ndarray]] = [None, None]
            with clock("face_mesh"):
                for side, (frames, detector) in enumerate(zip((gen_chunk, ref_chunk), detectors)):
                    if detector is None:  # the dataset's stored reference meshes
                        meshes[side] = stored[done : done + len(frames)]
                        found = int((~np.isnan(meshes[side][:, 0, 0])).sum())
                    else:
                        meshes[side], found = _meshes(frames, detector)
                    faces[side] += found
                    if landmarks_dir is not None:
                        kept[side].append(_normalised_xy(meshes[side], frames.shape[2], frames.shape[1]))
            with clock("decode"):
                chunk = Chunk(gen_chunk, ref_chunk, _fit(gen_chunk, ref.height, ref.width), *meshes)
            for metric in metrics:
                with clock(metric.name):
                    metric.update(chunk)
            done += len(gen_chunk)
    finally:
        chunks.close()  # before the readers it decodes from are closed
        for detector in detectors:
            if detector is not None:
                detector.close()
        gen.close()
        ref.close()

    row: dict[str, Any] = {"video_id": pair.video_id, "generated": str(pair.generated), "reference": str(pair.reference),
                           "status": SCORED, "reason": "", "fps": video.fps, "frames_generated": len(gen),
                           "frames_reference": len(ref), "frames_used": video.frames_used}
    for side, reader in (("generated", gen), ("reference", ref)):
        damaged = sum(reader.damaged_frames.values())
        if damaged:
            video.warnings.append(f"{damaged} damaged frames in the {side} video (lost or decoded with errors), read "
                                  "as a player shows them")
    if landmarks:
        row["faces_generated"], row["faces_reference"] = faces
        row["reference_meshes"] = "stored" if stored is not None else "mediapipe"
        if row["faces_generated"] < video.frames_used:
            video.warnings.append(f"no face in {video.frames_used - row['faces_generated']} generated frames "
                                  "(excluded from landmark metrics)")
    for metric in metrics:
        with clock(metric.name):
            row.update(metric.end_video())
    row["warnings"] = "; ".join(video.warnings)
    if landmarks and landmarks_dir is not None:
        _save_landmarks(Path(landmarks_dir) / f"{pair.video_id}.npz", kept, video.fps)
    return row


def excluded_row(pair: VideoPair, reason: str, trace: str = "", detail: Optional[str] = None) -> dict[str, Any]:
    return {"video_id": pair.video_id, "generated": str(pair.generated), "reference": str(pair.reference),
            "status": EXCLUDED, "reason": reason, "detail": detail or "", "traceback": trace}


def _traceback(err: VideoExcluded) -> str:
    """The traceback of what made the pair unscorable (the media error behind the reason), for per_video.csv."""
    cause = err.__cause__ or err.__context__ or err
    return "".join(traceback.format_exception(type(cause), cause, cause.__traceback__))


def _compute(metric: Metric, clock: Stopwatch) -> dict[str, Any]:
    try:
        with clock(metric.name):
            return metric.compute()
    except ValueError as err:  # e.g. every video excluded: nothing to aggregate
        return {"error": _first_line(err)}


def _protocol(protocol: Union[str, Path, protocols.Protocol, None]) -> Optional[protocols.Protocol]:
    if protocol is None or isinstance(protocol, protocols.Protocol):
        return protocol
    return protocols.load(protocol)


def _refuse_incomplete(protocol: protocols.Protocol, skipped: dict[str, str]) -> None:
    if skipped:
        raise ValueError(f"{protocol.heading} cannot run: " + "; ".join(f"{m}: {why}" for m, why in skipped.items())
                         + " (toolkit weights list shows every file and where it goes)")


def check_protocol(protocol: Union[str, Path, protocols.Protocol], device: str = "cpu") -> protocols.Protocol:
    """The protocol, once its options are valid and every metric it needs can start (weights present);
    ValueError otherwise. For callers with work to do before scoring (generating the videos first)."""
    chosen = _protocol(protocol)
    protocols.check_options(chosen)
    active, skipped = build_metrics(list(chosen.metrics), device=device, metric_options=chosen.metrics)
    _refuse_incomplete(chosen, skipped)
    del active
    return chosen


def evaluate(
    generated: str | Path,
    reference: str | Path,
    metrics: Optional[Iterable[str]] = None,
    out: str | Path | None = None,
    split: Optional[str] = None,
    device: str = "cpu",
    show_progress: bool = True,
    bootstrap: int = bootstrap_intervals.RESAMPLES,
    bootstrap_set_level: int = bootstrap_intervals.SET_LEVEL_RESAMPLES,
    bootstrap_seed: int = bootstrap_intervals.SEED,
    protocol: Union[str, Path, protocols.Protocol, None] = None,
    metric_options: Optional[dict[str, dict[str, Any]]] = None,
    fps: Optional[float] = None,
    reference_meshes: str = "stored",
    engine: str = "local",
    workers: Optional[int] = None,
    address: Optional[str] = None,
    **flags: Optional[str],
) -> dict[str, Any]:
    """Score every paired video with every metric; write per_video.csv and summary.json to `out`; return the summary.

    `metrics`: registry names (default: the registry's default set). `flags`: the presets of
    :data:`metrics.registry.PRESET_FLAGS`, e.g. ``lse_preset`` (``wav2lip_lrs`` by default: each
    frame resized to 224, right for face-crop videos; or a face-track preset for full-frame videos,
    ``wav2lip_real``, ``mocha``, ``latentsync``), ``lse_frames`` (``ffmpeg_jpeg`` by default: the
    frames syncnet_python scores, ffmpeg's JPEGs; ``decoded``: the decoded frames, faster, other
    numbers) and ``lmd_preset`` (``dense`` by default, MediaPipe
    mesh; ``atvgnet`` or ``vico``, FAN 68 points). `metric_options`: any metric's keyword options by name
    (``{"csim": {"convention": "vico"}}``), applied after the presets. `fps`: read both sides at this rate
    (default: the reference's). `split`: the dataset split when a side is a dataset (default ``test``).
    `reference_meshes`: against a dataset, ``stored`` uses the meshes ``toolkit preprocess`` stored for the
    reference crop videos where they fit the frames read, ``mediapipe`` runs the mesh on the decoded reference
    frames again (the same numbers; docs/metrics-reference.md).
    `engine`: ``local`` (this process) or ``ray`` (:mod:`metrics.distributed`: `workers` actors with the metrics
    resident, on a cluster started here or at `address`; the same rows and results as a local run).
    The summary's ``excluded`` lists the videos that could not be scored, with the reasons.

    `protocol`: a published evaluation protocol by name or path (:mod:`metrics.protocols`); it sets the
    metrics, their options, the frame rate and the split (giving `metrics`, `metric_options`, `fps` or a
    different `split` as well is an error), and a protocol whose metrics cannot all run (weights missing)
    stops before any video is read. The summary records it whole (``protocol``: name, hash, content).

    Confidence intervals (:mod:`metrics.bootstrap`): `bootstrap` resamples of the scored videos (seeded by
    `bootstrap_seed`) for the means of per-video values, the first `bootstrap_set_level` of them for the
    set-level statistics (FID, KID, frame-pooled means); ``bootstrap=0``: none. They go to the summary's
    ``intervals`` (``intervals[metric][key] = {"low", "high", "level", "resamples", "seed", "method", ...}``,
    a dotted key for a nested number), the settings and the seconds they took to ``bootstrap``.

    Beside every number the summary gives the ground truth's (``ground_truth``, and
    ``ground_truth_normalised`` where it applies: :mod:`metrics.ground_truth`) and what each stage cost
    (``throughput``: frames per second per metric and for the run, and the device: :mod:`metrics.throughput`).
    The meshes the landmark metrics saw are written to ``out/landmarks/<video id>.npz`` for the leaderboard page.
    """
    started = time.perf_counter()
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if reference_meshes not in REFERENCE_MESHES:
        raise ValueError(f"reference_meshes must be one of {', '.join(REFERENCE_MESHES)}, got {reference_meshes!r}")
    if bootstrap < 0 or bootstrap_set_level < 0:  # checked before any video is scored
        raise ValueError(f"bootstrap resamples must be >= 0 (0: no intervals), got {bootstrap} and {bootstrap_set_level}")
    chosen = _protocol(protocol)
    if chosen is not None:
        given = [name for name, value in (("metrics", metrics), ("metric_options", metric_options), ("fps", fps))
                 if value is not None]
        if split is not None and split != chosen.split:
            given.append(f"split {split!r}")
        if given:
            raise ValueError(f"{chosen.heading} sets the metrics, their options, the frame rate and the split; "
                             f"do not also give {', '.join(given)}")
        protocols.check_options(chosen)
        metrics, metric_options, fps, split = list(chosen.metrics), chosen.metrics, chosen.fps, chosen.split
    split = split or "test"
    names = list(dict.fromkeys(registry.default_names() if metrics is None else metrics))
    options = resolve_flags(flags)
    out = Path(out) if out is not None else None
    active, skipped = build_metrics(names, device=device, metric_options=metric_options, **options)
    if chosen is not None:
        _refuse_incomplete(chosen, skipped)
    cache = (out / "videos") if out is not None else None
    pairs, unpaired = pair_videos(Path(generated), Path(reference), split=split, cache=cache)
    stored_meshes: dict[str, Path] = {}
    if reference_meshes == "stored" and is_dataset(Path(reference)) and any(LANDMARKS in m.consumes for m in active):
        stored_meshes = dataset_meshes(Path(reference), split, video_cache(cache) / "reference")
    landmarks_dir = out / LANDMARKS_DIR if out is not None else None
    clock = Stopwatch()
    rows: list[dict[str, Any]] = []
    excluded: dict[str, str] = {}
    frames = 0
    with progress_bar(len(pairs), "evaluate", unit="videos", enabled=show_progress) as advance:

        def record(pair: VideoPair, result: dict[str, Any]) -> None:
            nonlocal frames
            for stage, seconds in result.get("seconds", {}).items():  # a worker's stage times
                clock.seconds[stage] += seconds
            if "row" in result:
                rows.append(result["row"])
                frames += result["row"]["frames_used"]
            else:
                reason, trace, detail = result["excluded"]
                excluded[pair.video_id] = reason
                rows.append(excluded_row(pair, reason, trace, detail))
            elapsed = max(time.perf_counter() - started, 1e-9)
            advance(1, info=f"{frames / elapsed:.0f} frames/s")

        if engine == "ray":
            from talking_head.metrics.distributed import score_on_ray

            build = {"names": names, "device": device, "metric_options": metric_options, "flags": options}
            workers = score_on_ray(pairs, active, build, fps=fps, landmarks_dir=landmarks_dir,
                                   stored_meshes=stored_meshes, workers=workers, address=address, on_result=record)
        for pair in pairs if engine == "local" else ():
            try:
                record(pair, {"row": score_pair(pair, active, fps=fps, landmarks_dir=landmarks_dir, stopwatch=clock,
                                                reference_meshes=stored_meshes.get(pair.clip_id))})
            except VideoExcluded as err:
                record(pair, {"excluded": (str(err), _traceback(err), err.detail)})
    results = {m.name: plain(_compute(m, clock)) for m in active}
    with clock("bootstrap"):
        intervals, bootstrap_record = bootstrap_intervals.run_intervals(
            active, [row for row in rows if row["status"] == SCORED], results, resamples=bootstrap,
            set_level_resamples=bootstrap_set_level, seed=bootstrap_seed)
    truths, normalised = ground_truth.anchor(results)
    seconds = time.perf_counter() - started
    summary = {
        "generated": str(generated),
        "reference": str(reference),
        "split": split,
        "device": device,
        "engine": {"name": engine, **({"workers": workers} if engine == "ray" else {})},
        **({"protocol": plain(chosen.record())} if chosen is not None else {}),
        "metrics_requested": names,
        "options": {**options, "chunk_frames": CHUNK, **({"fps": fps} if fps is not None else {}),
                    **({"reference_meshes": reference_meshes} if stored_meshes else {}),
                    **({"metric_options": plain(metric_options)} if metric_options else {})},
        "results": results,
        **({"intervals": plain(intervals)} if intervals else {}),
        "ground_truth": plain(truths),
        "ground_truth_normalised": plain(normalised),
        "bootstrap": plain(bootstrap_record),
        "skipped": skipped,
        "config": {m.name: plain(m.config()) for m in active},
        "weights": {k: v for m in active for k, v in m.weights_provenance().items()},
        "videos": len(rows) - len(excluded),
        "frames": frames,
        "excluded": excluded,
        "num_excluded": len(excluded),
        "unpaired": unpaired,
        "pairing": PAIRING,
        "throughput": plain(throughput.summary(clock, frames, seconds, device_description(device))),
        "software": software_versions(),
        "seconds": round(seconds, 3),
    }
    if out is not None:
        write_run(out, rows, summary)
    return summary
