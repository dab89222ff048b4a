"""Fixtures shared by several test modules, and the `train` marker.

Tiers (markers registered in pyproject.toml, targets in the Makefile): `make test-fast` leaves out the
tests marked train, slow or bench; `make test` leaves out only bench; `make bench` runs the timings.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from filelock import FileLock

# Each pytest-xdist worker gets its share of the cores for OpenMP (torch): more threads than cores only spin
# and turn into system time. Set here, before any test module imports torch; an explicit setting wins.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
if _WORKERS:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

# A test that needs one of these fixtures (directly or through another fixture) trains a reference model
# or builds the dataset the trainings use: minutes of CPU. It is marked `train` at collection.
#
# `make test` runs two pytest-xdist workers, each a separate session, with `--dist loadfile` (a module's
# tests stay on one worker, so module fixtures are built once). What several modules share (the sample
# clips, the preprocessed sample, the tiny trainings) is built once per run through `build_once` into
# `shared_dir`, whichever worker asks first; the other waits for it and reads the files.
TRAINING_FIXTURES = frozenset({"preprocessed_sample", "tiny_runs"})


# The modules that cost most, in the order the two workers should start them (`make test` keeps collection
# order with --no-loadscope-reorder; a free worker takes the next module). Heaviest first, so both workers
# finish together; the trainings alternate with modules that need none, so a worker rarely waits for a
# training the other one is running (build_once, below); reproduce and the budget come after
# every training has finished or nearly. Every other module follows in its usual order.
HEAVY_MODULES_FIRST = (
    "test_dreamhead_l2i.py", "test_evaluate_sample.py", "test_moda_renderer.py", "test_evaluate_table.py",
    "test_dreamhead_a2l.py",
    "test_moda_motion.py", "test_metric_merge.py", "test_moda_faco.py", "test_benchmark_memory.py",
    "test_metric_contract.py", "test_gpu_suite.py", "test_evaluate_ray.py",
    "test_preprocess.py", "test_sample.py", "test_reproduce.py", "test_training_budget.py",
)


@pytest.hookimpl(tryfirst=True)  # the train marks must be there before `-m` deselects
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.train)
    rank = {name: i for i, name in enumerate(HEAVY_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """A folder every pytest-xdist worker of this run sees (each worker has its own base temp below it)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base if worker_id == "master" else base.parent) / "shared"
    folder.mkdir(exist_ok=True)
    return folder


def build_once(folder: Path, build) -> Path:
    """`build(folder)` unless this run already built `folder`, in this worker or another one.

    Workers wait for each other on a lock file; a build that raised leaves no marker, so the next
    request starts it again from an empty folder.
    """
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".built").touch()
    return folder


@pytest.fixture
def isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every cache the weights registry and the model libraries look at into tmp_path.

    Proxies are cleared too, so test servers on 127.0.0.1 are reached directly.
    """
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TOOLKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "toolkit-cache"))
    for var in ("HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "XDG_CACHE_HOME", "http_proxy", "HTTP_PROXY",
                "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def shared_sample(shared_dir: Path):
    """`shared_sample(speakers=, clips=, seconds=, seed=)`: the clips `toolkit.sample.generate` writes with those
    arguments, generated once per run and shared by every module that asks for the same arguments.
    Tests read these files and never write into their folder."""
    from talking_head.toolkit.sample import generate, load_sample

    def clips_of(*, speakers: int, clips: int, seconds: float, seed: int):
        key = (speakers, clips, repr(seconds), seed)  # 4 and 4.0 stay apart: the call is repeated exactly
        folder = build_once(shared_dir / "samples" / "_".join(map(str, key)), lambda out: generate(
            out, speakers=speakers, clips=clips, seconds=seconds, seed=seed, show_progress=False))
        return load_sample(folder)

    return clips_of


@pytest.fixture(scope="session")
def meshed_sample(shared_sample):
    """The built-in sample (8 s, seed 0: two blinks), its ground truth, and MediaPipe's meshes of its
    decoded frames (float64): the motion and blink tests share it."""
    import numpy as np

    from talking_head.toolkit import face_mesh, media

    clip = shared_sample(speakers=1, clips=1, seconds=8.0, seed=0)[0]
    with face_mesh.FaceMeshDetector(video=True) as detector:
        meshes = [detector.detect(frame) for frame in media.read_video(clip.video)]
    assert all(m is not None for m in meshes)
    return clip, clip.load_ground_truth(), np.stack(meshes).astype(np.float64)


@pytest.fixture(scope="session")
def preprocessed_sample(shared_dir: Path) -> Path:
    """A preprocessed dataset of the built-in sample: 2 speakers x 3 clips x 5 s, 256-px crops, seed 0; the
    last clip of each speaker is the test split (held out), the other four are train. The training tests
    of the reference models share it (about a minute to build)."""
    from talking_head.preprocessing.builders import sample_clips
    from talking_head.preprocessing.pipeline import PreprocessConfig
    from talking_head.preprocessing.runner import preprocess

    def build(root: Path) -> None:
        sources, _ = sample_clips(root / "raw", speakers=2, clips=3, seconds=5.0, seed=0)
        _, summary = preprocess(sources, root / "dataset", PreprocessConfig(size=256), show_progress=False)
        assert not summary.failed, summary.failed

    return build_once(shared_dir / "preprocessed_sample", build) / "dataset"


@pytest.fixture(scope="session")
def small_preprocessed_sample(shared_dir: Path) -> Path:
    """`toolkit preprocess --dataset sample` of 1 speaker x 2 clips x 2 s at 256 px (one test clip), run once
    per run through the command line; the evaluation tests score against it and never write into it."""
    from typer.testing import CliRunner

    from talking_head.toolkit.cli import app

    def build(root: Path) -> None:
        run = CliRunner().invoke(app, ["preprocess", "--dataset", "sample", "--out", str(root / "ds"), "--size",
                                       "256", "--sample-speakers", "1", "--sample-clips", "2", "--sample-seconds",
                                       "2", "-q"])
        assert run.exit_code == 0, run.output

    return build_once(shared_dir / "small_preprocessed_sample", build) / "ds"


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a training module: on 2 shared cores it is several times faster than
    two, and the sums are always split alike (resume-equality tests rely on that)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyRuns:
    """Every stage of both reference models, trained with its tiny config exactly as shipped on
    `preprocessed_sample`, each at most once per run (on first request, with one torch thread, in whichever
    worker asks first).

    Run folders are laid out as ``toolkit train`` writes them, ``root/<model>/<stage>/``, so a model's
    folder works with ``toolkit generate --checkpoint`` and ``toolkit reproduce``. The acceptance tests of
    each stage and the reproduce test share them: the training they check is the training `reproduce
    sample` does.
    """

    RECORD = "tiny_run.json"  # the TrainResult and the CPU seconds, for workers that did not train

    def __init__(self, root: Path, dataset: Path):
        self.root, self.dataset = root, dataset

    def run_dir(self, model: str) -> Path:
        return self.root / model

    def stage(self, model: str, stage: str):
        """(run folder, TrainResult, CPU seconds the training took) of `model`'s `stage`."""
        import json

        from talking_head.baselines.training import TrainResult

        run_dir = build_once(self.root / model / stage, lambda folder: self._train(model, stage, folder))
        record = json.loads((run_dir / self.RECORD).read_text())
        cpu = record.pop("cpu_seconds")
        return run_dir, TrainResult(run_dir=run_dir, **record), cpu

    def _train(self, model: str, stage: str, run_dir: Path) -> None:
        import importlib
        import json
        import time

        import torch

        from talking_head.baselines import training

        package = importlib.import_module(f"talking_head.baselines.{model}")
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            started = time.process_time()
            result = training.train(package.STAGES[stage], package.load_config("tiny", stage), self.dataset,
                                    run_dir, show_progress=False)
            cpu = time.process_time() - started
        finally:
            torch.set_num_threads(threads)
        print(f"tiny {model} {stage}: {result.step} steps, {cpu:.0f} CPU s, last loss {result.last_loss:.4f}")
        (run_dir / self.RECORD).write_text(json.dumps(
            {"step": result.step, "resumed_from": result.resumed_from, "last_loss": result.last_loss,
             "seconds": result.seconds, "cpu_seconds": cpu}))


@pytest.fixture(scope="session")
def tiny_runs(preprocessed_sample: Path, shared_dir: Path) -> TinyRuns:
    return TinyRuns(shared_dir / "tiny_runs", preprocessed_sample)
