"""Run the per-clip pipeline over many clips: a local process pool or Ray, resumable, failure-tolerant.

Every clip is independent. A finished clip is a complete folder under ``<out>/work/clips/`` (see
:mod:`preprocessing.pipeline`), so a run that is killed (even with SIGKILL) and started again with
the same command skips every finished clip and ends with the same dataset. A clip that fails is
recorded in ``<out>/failures.jsonl`` with its file, a one-line reason, the technical detail behind it and the
traceback, and the run goes on. When every clip fails with the same unexpected exception at the same place, the summary says it is
probably a bug (:meth:`RunSummary.probable_bug`), not bad data.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from talking_head.preprocessing.clip import ClipSource
from talking_head.preprocessing.pipeline import ClipFailed, Pipeline, PreprocessConfig
from talking_head.toolkit.progress import progress_bar

ENGINES = ("local", "ray")


@dataclass
class RunSummary:
    done: list[dict] = field(default_factory=list)  # meta records of finished clips
    failed: list[dict] = field(default_factory=list)  # {"clip_id", "path", "reason", "detail", "error", "where", "traceback"}
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        return sum(m["num_frames"] for m in self.done)

    def probable_bug(self) -> str | None:
        """A sentence when no clip finished and every clip failed with the same unexpected exception raised at
        the same place (two clips at least): that is the toolkit's bug or a broken install, not bad data."""
        crashes = [f for f in self.failed if f.get("clip_id") is not None]
        if self.done or len(crashes) < 2 or any(f.get("error") in (None, "ClipFailed") for f in crashes):
            return None
        kinds = {(f["error"], f.get("where")) for f in crashes}
        if len(kinds) != 1:
            return None
        error, where = kinds.pop()
        return (f"every clip ({len(crashes)}) failed with the same unexpected {error} at {where}: probably a bug "
                "or a broken installation rather than bad data; the traceback is in failures.jsonl")


def _limit_threads() -> None:
    """One worker = one core: libraries must not each start a thread per core inside every worker."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"  # read by torch / BLAS when they load later in this process
    import cv2

    cv2.setNumThreads(1)
    if "torch" in sys.modules:  # only when already loaded: importing it here costs seconds per worker
        sys.modules["torch"].set_num_threads(1)


# One resident pipeline per worker process (models load once, not once per clip).
_PIPELINE: Pipeline | None = None


def _init_worker(config: PreprocessConfig) -> None:
    global _PIPELINE
    _limit_threads()
    _PIPELINE = Pipeline(config)


def _run_one(source: ClipSource, work_dir: Path, config: PreprocessConfig) -> tuple[str, dict]:
    """Process one clip in this process; never raises for a bad clip ("failed", record) instead."""
    global _PIPELINE
    if _PIPELINE is None or _PIPELINE.config != config:
        _PIPELINE = Pipeline(config)
    try:
        return "done", _PIPELINE.process(source, work_dir)
    except ClipFailed as exc:
        return "failed", _failure(source, str(exc), exc)
    except Exception as exc:  # an unexpected error in one clip must not stop a long batch job
        return "failed", _failure(source, f"{type(exc).__name__}: {exc}", exc)


def _failure(source: ClipSource, message: str, exc: BaseException) -> dict:
    """A failures.jsonl record: the reason's first line, the exception's type, the innermost frame it was raised
    in, and the whole traceback (a programming error must not look like bad data)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return {"clip_id": source.clip_id, "path": str(source.path), "reason": (message.splitlines() or [""])[0],
            "detail": getattr(exc, "detail", None), "error": type(exc).__name__, "where": where,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def run(
    sources: Iterable[ClipSource],
    work_dir: Path,
    config: PreprocessConfig,
    workers: int = 1,
    engine: str = "local",
    address: str | None = None,
    show_progress: bool = True,
) -> RunSummary:
    """Process every clip (skipping finished ones) and return what finished and what failed."""
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {ENGINES}, got {engine!r}")
    sources = sorted(sources, key=lambda s: s.clip_id)
    ids = [s.clip_id for s in sources]
    if len(set(ids)) != len(ids):
        raise ValueError("clip ids must be unique")
    _remove_unfinished(Path(work_dir))
    summary = RunSummary()
    started = time.perf_counter()
    frames_done = 0
    with progress_bar(len(sources), "preprocess", unit="clips", enabled=show_progress) as advance:

        def collect(status: str, record: dict) -> None:
            nonlocal frames_done
            if status == "done":
                summary.done.append(record)
                frames_done += record["num_frames"]
            else:
                summary.failed.append(record)
            elapsed = max(time.perf_counter() - started, 1e-9)
            advance(1, info=f"{frames_done / elapsed:.0f} frames/s, {len(summary.failed)} failed")

        if engine == "ray":
            _run_ray(sources, work_dir, config, workers, address, collect)
        elif workers <= 1:
            _init_worker(config)
            for source in sources:
                collect(*_run_one(source, work_dir, config))
        else:
            _run_pool(sources, work_dir, config, workers, collect)
    summary.done.sort(key=lambda m: m["clip_id"])
    summary.failed.sort(key=lambda f: f["clip_id"])
    summary.seconds = time.perf_counter() - started
    return summary


def _remove_unfinished(work_dir: Path) -> None:
    """Delete half-built clip folders a killed run left behind (one run per output folder at a time)."""
    clips = work_dir / "clips"
    if clips.is_dir():
        for stale in clips.glob(".*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)


def _run_pool(sources, work_dir, config, workers, collect: Callable) -> None:
    # Not plain "fork": MediaPipe and PyTorch start threads, and forking a process that has them can
    # deadlock. A fork server is a fresh process that has imported the pipeline's modules and MediaPipe
    # (importing starts none of its threads; its graphs are built inside each worker), so a worker starts
    # in milliseconds instead of spending a second on imports.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["talking_head.preprocessing.pipeline", "mediapipe"])
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(config,)) as pool:
        pending = {pool.submit(_run_one, s, work_dir, config) for s in sources}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                collect(*future.result())


def _run_ray(sources, work_dir, config, workers, address, collect: Callable) -> None:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers, 1), include_dashboard=False, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=1)(_ray_task)
        pending = [task.remote(s, work_dir, config) for s in sources]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            collect(*ray.get(finished[0]))
    finally:
        if started_here:
            ray.shutdown()


def _ray_task(source: ClipSource, work_dir: Path, config: PreprocessConfig) -> tuple[str, dict]:
    """The same per-clip function as the pool runs; Ray reuses worker processes, so models stay resident."""
    if _PIPELINE is None:
        _limit_threads()
    return _run_one(source, work_dir, config)


def preprocess(
    sources: list[ClipSource],
    out: Path,
    config: PreprocessConfig,
    parameters: dict | None = None,
    problems: list[str] = (),
    workers: int = 1,
    engine: str = "local",
    address: str | None = None,
    test_fraction: float = 0.1,
    show_progress: bool = True,
    adapt_fraction: float | None = None,
):
    """Run every clip, write ``failures.jsonl``, and assemble the dataset in ``out``.

    ``adapt_fraction`` (e.g. 0.8): every test clip is cut into an ``adapt`` part (its first 80%) and a
    ``test`` part (the rest), for per-identity models (:mod:`preprocessing.adaptation`).

    Returns ``(DatasetDict | None, RunSummary)``; the dataset is None when no clip succeeded.
    """
    from talking_head.preprocessing.storage import build_dataset
    from talking_head.toolkit.fileio import atomic_path

    out = Path(out)
    work_dir = out / "work"
    if adapt_fraction is not None:
        from talking_head.preprocessing.adaptation import cut_for_adaptation

        sources, cut_problems = cut_for_adaptation(sources, adapt_fraction, config.fps, test_fraction)
        problems = [*problems, *cut_problems]
    summary = run(sources, work_dir, config, workers=workers, engine=engine, address=address, show_progress=show_progress)
    summary.failed = [{"clip_id": None, "path": None, "reason": p} for p in problems] + summary.failed
    with atomic_path(out / "failures.jsonl") as tmp:
        tmp.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n" for f in summary.failed), encoding="utf-8")
    params = {**(parameters or {}), "config": config.to_dict(), "test_fraction": test_fraction}
    if adapt_fraction is not None:
        params["adapt_fraction"] = adapt_fraction
    dataset = None
    if summary.done:
        dataset = build_dataset(summary.done, work_dir, out, params, summary.failed, test_fraction=test_fraction)
    return dataset, summary
