"""Fixtures shared by several test modules, and the `train` marker.

Tiers (markers registered in pyproject.toml, targets in the Makefile): `make test-fast` leaves out the
tests marked train, slow or bench; `make test` leaves out only bench; `make bench` runs the timings.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# A test that needs one of these fixtures (directly or through another fixture) trains a reference model
# or builds the dataset the trainings use: minutes of CPU. It is marked `train` at collection.
TRAINING_FIXTURES = frozenset({"preprocessed_sample", "tiny_runs"})


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks this adds
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if TRAINING_FIXTURES & fixtures:
            item.add_marker(pytest.mark.train)
        if "tiny_runs" in fixtures:
            # With pytest-xdist (`make test` runs two workers) every user of the session's tiny trainings goes to
            # one worker, so each stage is trained once; everything else spreads over both.
            item.add_marker(pytest.mark.xdist_group("tiny_runs"))


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
def shared_sample(tmp_path_factory: pytest.TempPathFactory):
    """`shared_sample(speakers=, clips=, seconds=, seed=)`: the clips `toolkit.sample.generate` writes with those
    arguments, generated once per session and shared by every module that asks for the same arguments.
    Tests read these files and never write into their folder."""
    from talking_head.toolkit.sample import generate

    made = {}

    def clips_of(*, speakers: int, clips: int, seconds: float, seed: int):
        key = (speakers, clips, repr(seconds), seed)  # 4 and 4.0 stay apart: the call is repeated exactly
        if key not in made:
            folder = tmp_path_factory.getbasetemp() / "samples" / "_".join(map(str, key))
            made[key] = generate(folder, speakers=speakers, clips=clips, seconds=seconds, seed=seed,
                                 show_progress=False)
        return list(made[key])

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
def preprocessed_sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A preprocessed dataset of the built-in sample: 2 speakers x 3 clips x 5 s, 256-px crops, seed 0; the
    last clip of each speaker is the test split (held out), the other four are train. The training tests
    of the reference models share it (about a minute to build)."""
    from talking_head.preprocessing.builders import sample_clips
    from talking_head.preprocessing.pipeline import PreprocessConfig
    from talking_head.preprocessing.runner import preprocess

    root = tmp_path_factory.mktemp("preprocessed_sample")
    sources, _ = sample_clips(root / "raw", speakers=2, clips=3, seconds=5.0, seed=0)
    _, summary = preprocess(sources, root / "dataset", PreprocessConfig(size=256), show_progress=False)
    assert not summary.failed, summary.failed
    return root / "dataset"


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
    `preprocessed_sample`, each at most once per session (on first request, with one torch thread).

    Run folders are laid out as ``toolkit train`` writes them, ``root/<model>/<stage>/``, so a model's
    folder works with ``toolkit generate --checkpoint`` and ``toolkit reproduce``. The acceptance tests of
    each stage and the reproduce test share them: the training they check is the training `reproduce
    sample` does.
    """

    def __init__(self, root: Path, dataset: Path):
        self.root, self.dataset = root, dataset
        self.trained: dict[tuple[str, str], tuple[Path, object, float]] = {}

    def run_dir(self, model: str) -> Path:
        return self.root / model

    def stage(self, model: str, stage: str):
        """(run folder, TrainResult, CPU seconds the training took) of `model`'s `stage`."""
        import importlib
        import time

        import torch

        from talking_head.baselines import training

        if (model, stage) not in self.trained:
            package = importlib.import_module(f"talking_head.baselines.{model}")
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                started = time.process_time()
                result = training.train(package.STAGES[stage], package.load_config("tiny", stage), self.dataset,
                                        self.root / model / stage, show_progress=False)
                cpu = time.process_time() - started
            finally:
                torch.set_num_threads(threads)
            print(f"tiny {model} {stage}: {result.step} steps, {cpu:.0f} CPU s, last loss {result.last_loss:.4f}")
            self.trained[(model, stage)] = (self.root / model / stage, result, cpu)
        return self.trained[(model, stage)]


@pytest.fixture(scope="session")
def tiny_runs(preprocessed_sample: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return TinyRuns(tmp_path_factory.mktemp("tiny_runs"), preprocessed_sample)
