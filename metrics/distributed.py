"""`toolkit evaluate --engine ray`: the pairs scored as Ray tasks, the results those of a local run.

Each worker is a Ray actor that builds the run's metrics once (models resident: one actor per CPU slot,
or per GPU with ``device="cuda"``) and scores one pair at a time from reset metrics, exactly as the local
runner does (:func:`metrics.runner.score_pair`). It sends back the pair's per-video row and the metrics'
committed state for that pair (:func:`metrics.merge.export_state`); the driver merges the states into its
own metric instances in pair order (:func:`metrics.merge.merge_state`), so compute(), the bootstrap
resamples and every per-video row are what a local run gives (pooled sums to round-off).

Reference-side caches (LSE scores, FVD features, NIQE of the real frames) are files keyed by content in
the toolkit cache folder, so every worker on a machine shares them; the meshes written for the
leaderboard page go to ``out/landmarks`` from the workers, so on a multi-machine cluster the run folder
and the toolkit cache must be on a shared filesystem (as for ``toolkit preprocess --engine ray``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from talking_head.metrics.base import Metric, VideoPair
from talking_head.metrics.merge import export_state, merge_state

ENGINES = ("local", "ray")


class PairScorer:
    """One worker: the run's metrics, built once, scoring one pair at a time (used as a Ray actor)."""

    def __init__(self, names: list[str], device: str, metric_options: Optional[dict], flags: dict[str, str]) -> None:
        from talking_head.metrics.runner import build_metrics

        if device == "cpu":
            _one_core()
        self.metrics, self.skipped = build_metrics(names, device=device, metric_options=metric_options, **flags)

    def score(self, pair: VideoPair, fps: Optional[float], landmarks_dir: Optional[Path],
              reference_meshes: Optional[Path]) -> dict[str, Any]:
        """``{"row", "state", "seconds"}`` for a scored pair, ``{"excluded": (reason, traceback, detail), "seconds"}``
        for one that cannot be scored."""
        from talking_head.metrics import runner
        from talking_head.metrics.throughput import Stopwatch

        for metric in self.metrics:
            metric.reset()
        clock = Stopwatch()
        try:
            row = runner.score_pair(pair, self.metrics, fps=fps, landmarks_dir=landmarks_dir, stopwatch=clock,
                                    reference_meshes=reference_meshes)
        except runner.VideoExcluded as err:
            return {"excluded": (str(err), runner._traceback(err), err.detail), "seconds": dict(clock.seconds)}
        return {"row": row, "state": export_state(self.metrics), "seconds": dict(clock.seconds)}

    def started(self) -> dict[str, str]:
        """The metrics this worker could not start, with the reasons (its weights are not the driver's)."""
        return self.skipped


def _one_core() -> None:
    """An actor holds one CPU slot: its libraries must not each start a thread per core."""
    import cv2
    import torch

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def score_on_ray(pairs: list[VideoPair], metrics: list[Metric], build: dict[str, Any], *, fps: Optional[float],
                 landmarks_dir: Optional[Path], stored_meshes: dict[str, Path], workers: Optional[int],
                 address: Optional[str], on_result: Callable[[VideoPair, dict[str, Any]], None]) -> int:
    """Score `pairs` on Ray workers and merge each scored pair's state into `metrics`, in pair order.
    `build`: the arguments :class:`PairScorer` builds the metrics with (the driver's own). `on_result` gets
    every pair's result in pair order, after its state is merged. Returns the number of workers used."""
    import ray
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=max(workers or 2, 1), include_dashboard=False, log_to_driver=False)
    try:
        gpu = build["device"].startswith("cuda")
        if workers is None:
            resources = ray.available_resources()
            workers = max(int(resources.get("GPU" if gpu else "CPU", 1)), 1)
        actor = ray.remote(num_cpus=0 if gpu else 1, num_gpus=1 if gpu else 0)(PairScorer)
        scorers = [actor.remote(**build) for _ in range(workers)]
        for skipped in ray.get([scorer.started.remote() for scorer in scorers]):
            missing = {name: why for name, why in skipped.items() if name in {m.name for m in metrics}}
            if missing:
                raise RuntimeError("a Ray worker cannot start " + "; ".join(f"{n}: {why}" for n, why in missing.items())
                                   + " (every worker needs the weights the driver has: a shared cache folder)")
        pool = ActorPool(scorers)
        jobs = ((pair, fps, landmarks_dir, stored_meshes.get(pair.clip_id)) for pair in pairs)
        for pair, result in zip(pairs, pool.map(lambda scorer, job: scorer.score.remote(*job), jobs)):
            if "state" in result:
                merge_state(metrics, result["state"])
            on_result(pair, result)
        return workers
    finally:
        if started_here:
            ray.shutdown()
