"""Speed of each preprocessing stage and of the whole per-clip pipeline on the built-in sample.

Run with timings: ``.venv/bin/python -m pytest tests/test_benchmark_preprocess.py --benchmark-enable``
(also what ``make bench`` runs; ``make test`` leaves them out). Every benchmark stores the number of
frames it handled in ``extra_info["frames"]``; frames/s = frames / mean time.
"""

from __future__ import annotations

import shutil
import time

import cv2
import numpy as np
import pytest

from talking_head.preprocessing import face_track
from talking_head.toolkit import audio_features, face_box, face_detector, pose
from talking_head.preprocessing.builders import sample_clips
from talking_head.preprocessing.pipeline import Pipeline, PreprocessConfig
from talking_head.preprocessing.runner import run
from talking_head.toolkit import face_mesh, media

# Timings: `make bench` runs them; what the stages produce is checked in tests/test_preprocess.py.
pytestmark = pytest.mark.bench

SIZE = 512


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    sources, _ = sample_clips(root / "raw", speakers=2, clips=2, seconds=4.0, seed=11)
    frames = media.read_video(sources[0].path)
    detector = face_detector.FaceDetector()
    main, _ = face_track.select_main_track(face_track.track_faces([detector.detect(f) for f in frames]), len(frames))
    boxes = face_track.smooth_square_boxes(main, len(frames))
    crops = face_box.crop_frames(frames, boxes, SIZE)
    return {"root": root, "sources": sources, "frames": frames, "boxes": boxes, "crops": crops,
            "audio": media.read_audio(sources[0].path)}


def _frames(benchmark, n):
    benchmark.extra_info["frames"] = n


def test_decode(benchmark, clip):
    _frames(benchmark, len(clip["frames"]))
    benchmark(media.read_video, clip["sources"][0].path)


def test_detect(benchmark, clip):
    detector = face_detector.FaceDetector()
    _frames(benchmark, len(clip["frames"]))
    benchmark(lambda: [detector.detect(f) for f in clip["frames"]])


def test_crop(benchmark, clip):
    _frames(benchmark, len(clip["frames"]))
    benchmark(face_box.crop_frames, clip["frames"], clip["boxes"], SIZE)


def test_mesh(benchmark, clip):
    """The reference stage: the rest of the pipeline together should cost no more than this."""
    _frames(benchmark, len(clip["crops"]))

    def mesh():
        with face_mesh.FaceMeshDetector(video=True) as detector:
            return [detector.detect(c) for c in clip["crops"]]

    benchmark(mesh)


def test_pose(benchmark, clip):
    with face_mesh.FaceMeshDetector(video=True) as detector:
        landmarks = np.stack([detector.detect(c) for c in clip["crops"]])
    _frames(benchmark, len(landmarks))
    benchmark(pose.fit_pose, landmarks)


def test_mel(benchmark, clip):
    _frames(benchmark, len(clip["frames"]))
    benchmark(audio_features.log_mel, clip["audio"])


def test_write_crop_video(benchmark, clip, tmp_path):
    _frames(benchmark, len(clip["crops"]))
    config = PreprocessConfig()
    benchmark(media.write_video, tmp_path / "crop.mp4", clip["crops"], audio=clip["audio"], crf=config.crf,
              preset=config.x264_preset, threads=config.x264_threads, x264_params=config.x264_params)


def test_whole_pipeline(benchmark, clip, tmp_path):
    pipeline = Pipeline(PreprocessConfig(size=SIZE))
    source = clip["sources"][0]
    _frames(benchmark, len(clip["frames"]))

    def once():
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        return pipeline.process(source, tmp_path / "work")

    meta = benchmark(once)
    assert meta["num_frames"] == len(clip["frames"])


# The settings before issue 20 (BlazeFace on every frame, x264 superfast at crf 18), still configurable.
PREVIOUS = {"detect_every": 1, "x264_preset": "superfast", "crf": 18, "x264_params": None}


@pytest.mark.parametrize("settings", ["previous", "default"])
def test_mesh_alone_vs_whole_pipeline(benchmark, clip, tmp_path, settings):
    """Issue 20's measure, side by side in one run (the cores are shared, timings drift between tests): the
    mesh stage alone and the whole per-clip pipeline on the same clip, alternating, in ms a frame (wall and
    CPU, all threads), and mesh / pipeline (the goal: >= 0.5), with the previous settings and the defaults. The
    mesh alone is timed both ways: with a new detector per clip (the reference of issue 20's first pass) and
    with one resident detector reset per clip, as the pipeline now runs it (the stricter ratio). OpenCV runs on
    one thread, as in a worker process."""
    config = PreprocessConfig(size=SIZE, **(PREVIOUS if settings == "previous" else {}))
    pipeline, source, n = Pipeline(config), clip["sources"][0], len(clip["frames"])
    times: dict[str, list[tuple[float, float]]] = {"mesh": [], "mesh_resident": [], "pipeline": []}
    resident = face_mesh.FaceMeshDetector(video=True)

    def mesh():  # the reference since issue 20's first pass: a new detector for the clip
        with face_mesh.FaceMeshDetector(video=True) as detector:
            return [detector.detect(c) for c in clip["crops"]]

    def mesh_resident():  # stricter: the pipeline keeps one detector per worker and resets it between clips
        resident.reset()
        return [resident.detect(c) for c in clip["crops"]]

    def whole():
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        return pipeline.process(source, tmp_path / "work")

    def timed(name, run):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        times[name].append((time.perf_counter() - wall, time.process_time() - cpu))

    opencv_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # as in a worker (runner._limit_threads): one core; OpenCV's threads cost CPU time here
    try:
        mesh(), mesh_resident(), whole()  # first runs: models loaded, caches warm
        benchmark.pedantic(
            lambda: (timed("mesh", mesh), timed("mesh_resident", mesh_resident), timed("pipeline", whole)),
            rounds=5, iterations=1,
        )
    finally:
        cv2.setNumThreads(opencv_threads)
        resident.close()
    ms = {name: 1000 * np.median(np.array(found), axis=0) / n for name, found in times.items()}
    benchmark.extra_info.update({
        "frames": n,
        "mesh_ms_per_frame": round(ms["mesh"][0], 2),
        "pipeline_ms_per_frame": round(ms["pipeline"][0], 2),
        "mesh_over_pipeline": round(ms["mesh"][0] / ms["pipeline"][0], 3),
        "mesh_cpu_ms_per_frame": round(ms["mesh"][1], 2),
        "pipeline_cpu_ms_per_frame": round(ms["pipeline"][1], 2),
        "mesh_over_pipeline_cpu": round(ms["mesh"][1] / ms["pipeline"][1], 3),
        "mesh_resident_cpu_ms_per_frame": round(ms["mesh_resident"][1], 2),
        "mesh_resident_over_pipeline_cpu": round(ms["mesh_resident"][1] / ms["pipeline"][1], 3),
    })


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Eight 4-second clips: enough work per worker that pool start-up does not dominate."""
    sources, _ = sample_clips(tmp_path_factory.mktemp("batch") / "raw", speakers=2, clips=4, seconds=4.0, seed=12)
    return sources


@pytest.mark.parametrize("workers", [1, 2])
def test_workers(benchmark, batch, tmp_path, workers):
    """clips/s with 1 and 2 worker processes (the ratio is the scaling claim)."""
    benchmark.extra_info["clips"] = len(batch)
    _frames(benchmark, sum(len(media.VideoReader(s.path)) for s in batch))

    def once():
        shutil.rmtree(tmp_path / "work", ignore_errors=True)
        return run(batch, tmp_path / "work", PreprocessConfig(size=SIZE), workers=workers, show_progress=False)

    summary = benchmark.pedantic(once, rounds=2, iterations=1)
    assert len(summary.done) == len(batch)
