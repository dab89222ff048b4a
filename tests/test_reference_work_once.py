"""Issue 20, "reference work done once": a second evaluation of another model against the same reference videos
runs no network on the reference side (FID/KID's Inception, E-FID's Deep3DFaceRecon, CSIM's ArcFace, FVD's
I3D, LSE's SyncNet; NIQE's reference scores too), while the generated side still runs, and its results are
those of a run without a cache.

Each network's forward is wrapped by a counter of the inputs per call, attributed to a side by the caller
that asked for it (:func:`_side`). Random weights in the real formats (tests/weights_factory.py).
"""

from __future__ import annotations

import json
import math
import sys
from collections import defaultdict

import cv2
import numpy as np
import pytest

import weights_factory as factory
from nested_close import assert_nested_close
from talking_head.metrics import evaluate
from talking_head.toolkit import media
from test_metric_contract import all_weights, videos

__all__ = ["all_weights", "videos"]  # test_metric_contract's fixtures, used here by name

METRICS = ["fid", "kid", "efid", "csim", "fvd", "lse", "niqe"]
SIZE = 192  # frames side: small enough for seven metrics on CPU, big enough for MediaPipe's face
LENGTHS = (36, 24)  # two reference videos (FID batches 50: the generated side's batches span both)
# Cached reference rows are the bits an uncached run computes (each reference video's rows are computed in
# batches from its first frame, and the cached Inception rows enter the float64 sums in the same batches), so
# the second run's results equal an uncached run's exactly; measured: 0.0 difference on every number.
TOLERANCE = 0.0


# --------------------------------------------------------------------------------------------- counting
def _side(frame) -> str:
    """Which side a network call works for, from the nearest caller that says: an Inception accumulator's
    side, a ``real`` flag, a ``side`` name, or FVD's per-side state."""
    from talking_head.metrics.fid import _Accumulator

    while frame is not None:
        found = frame.f_locals
        me, side, real = found.get("self"), found.get("side"), found.get("real")
        if isinstance(me, _Accumulator):
            return "reference" if me.real else "generated"
        if isinstance(real, bool):
            return "reference" if real else "generated"
        if isinstance(side, str) and side in ("generated", "reference"):
            return side
        sides = getattr(me, "_sides", None)
        if side is not None and isinstance(sides, dict) and any(side is s for s in sides.values()):
            return "reference" if sides.get(True) is side else "generated"
        frame = frame.f_back
    return "unattributed"  # (the tests check that evaluate() leaves none)


class Counter:
    """Inputs per network call, by (network, side)."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], list[int]] = defaultdict(list)

    def wrap(self, monkeypatch, owner, attribute: str, network: str, size=lambda args: len(args[0]),
             side=None) -> None:
        original = getattr(owner, attribute)

        def counted(*args, **kwargs):
            inputs = args[1:] if not isinstance(owner, type(sys)) else args  # methods: drop self
            found = side(inputs) if side is not None else _side(sys._getframe(1))
            self.calls[(network, found)].append(int(size(inputs)))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, attribute, counted)

    def total(self, side: str) -> dict[str, int]:
        return {network: sum(n) for (network, s), n in self.calls.items() if s == side}


@pytest.fixture
def counter(monkeypatch) -> Counter:
    from talking_head.metrics import fvd, niqe
    from talking_head.metrics.csim import IResNet
    from talking_head.metrics.efid import ReconNet
    from talking_head.metrics.inception import FIDInceptionV3
    from talking_head.metrics.syncnet import SyncNet

    found = Counter()
    found.wrap(monkeypatch, FIDInceptionV3, "forward", "inception")
    found.wrap(monkeypatch, ReconNet, "forward", "deep3dfacerecon")
    found.wrap(monkeypatch, IResNet, "forward", "arcface")
    found.wrap(monkeypatch, fvd, "_clip_features", "i3d", size=lambda args: len(args[2]))  # clips
    found.wrap(monkeypatch, SyncNet, "lip_windows", "syncnet")  # frames (LSE's scorer runs the lips this way)
    # No network: NIQE's scores of the reference frames (cached as JSON), told apart by the name it is given.
    found.wrap(monkeypatch, niqe.NIQE, "scores", "niqe",
               side=lambda args: "reference" if args[1:2] == ("reference",) else "generated")
    return found


# --------------------------------------------------------------------------------------------- inputs
@pytest.fixture
def folders(shared_sample, isolated_caches, tmp_path):
    """Two reference videos (a sample clip and a mirrored one) with audio, and a blurred and a shifted copy of
    each."""

    clip = shared_sample(speakers=1, clips=1, seconds=2.0, seed=0)[0]
    frames = np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in media.read_video(clip.video)])
    audio = media.read_audio(clip.video)
    videos = {"a": frames[:LENGTHS[0]], "b": frames[::-1, :, ::-1][:LENGTHS[1]].copy()}
    made = {name: tmp_path / name for name in ("reference", "blurred", "shifted")}
    for name, video in videos.items():
        sound = audio[:len(video) * 16000 // 25]
        media.write_video(made["reference"] / f"{name}.mp4", video, fps=25, audio=sound)
        media.write_video(made["blurred"] / f"{name}.mp4", np.stack([cv2.GaussianBlur(f, (0, 0), 2) for f in video]),
                          fps=25, audio=sound)
        media.write_video(made["shifted"] / f"{name}.mp4", np.roll(video, 6, axis=2), fps=25, audio=sound)
    return made


@pytest.fixture
def seven_weights(folders, monkeypatch, tmp_path):
    """Random weights for the seven metrics, calibrated on the first reference video."""
    import torch

    decoded = media.read_video(folders["reference"] / "a.mp4")
    factory.place_default_metrics(monkeypatch, decoded, media.read_audio(folders["reference"] / "a.mp4", dtype="int16"))
    crops = torch.from_numpy(np.stack([cv2.resize(f, (224, 224)) for f in decoded[:16]])).float()
    factory.place(monkeypatch, "deep3dfacerecon", factory.deep3dfacerecon(crops[:4].permute(0, 3, 1, 2) / 255))
    clips = crops.permute(3, 0, 1, 2)[None] / 127.5 - 1
    factory.pin_to_own_digest(monkeypatch, "i3d-torchscript", factory.i3d_torchscript(
        torch.cat([clips, clips.flip(2)]), tmp_path / "made" / "i3d_torchscript.pt"))


def _run(generated, reference, out, counter, options=None):
    counter.calls.clear()
    summary = evaluate(generated, reference, metrics=METRICS, out=out, show_progress=False, bootstrap=20,
                       metric_options=options)
    assert summary["skipped"] == {} and summary["videos"] == 2, summary["skipped"]
    assert counter.total("unattributed") == {}
    return summary, counter.total("reference"), counter.total("generated")


def _rows(out):
    import csv

    with open(out / "per_video.csv", newline="") as handle:
        return [{k: v for k, v in row.items() if k != "warnings"} for row in csv.DictReader(handle)]


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.slow  # seven metrics, three evaluations, on CPU
@pytest.mark.filterwarnings("ignore::UserWarning")  # FID/E-FID/FVD on a few frames warn that they are biased
def test_second_model_does_no_reference_work(folders, seven_weights, counter, tmp_path, monkeypatch):
    first, ref_first, gen_first = _run(folders["blurred"], folders["reference"], tmp_path / "first", counter)
    assert set(ref_first) == set(gen_first) == {"inception", "deep3dfacerecon", "arcface", "i3d", "syncnet", "niqe"}
    assert ref_first["inception"] == ref_first["arcface"] == sum(LENGTHS)  # every reference frame, once

    second, ref_second, gen_second = _run(folders["shifted"], folders["reference"], tmp_path / "second", counter)
    assert ref_second == {}, ref_second  # nothing ran on the reference frames
    assert gen_second == gen_first  # the generated side ran as before (same frames, faces and clips)
    config = second["config"]
    for metric in ("fid", "efid", "csim", "niqe"):
        assert config[metric]["reference_cache_hits"] == 2, metric
    assert config["fvd"]["reference_cache_hits"] == 2 and config["lse"]["reference_cache"]["hits"] == 2

    # The same generated videos with an empty cache: every number as the cached run's.
    monkeypatch.setenv("TOOLKIT_CACHE_DIR", str(tmp_path / "empty-cache"))
    uncached, ref_uncached, _ = _run(folders["shifted"], folders["reference"], tmp_path / "uncached", counter)
    assert ref_uncached == ref_first
    assert uncached["config"]["fid"]["reference_cache_hits"] == 0
    assert_nested_close(second["results"], uncached["results"], TOLERANCE, where="results")
    assert_nested_close(second["intervals"], uncached["intervals"], TOLERANCE, where="intervals")
    assert _rows(tmp_path / "second") == _rows(tmp_path / "uncached")
    assert json.dumps(second["results"]) != json.dumps(first["results"])  # another model, other numbers


@pytest.mark.slow  # ArcFace's ResNet-100 on every frame, four evaluations a convention: 60-100 s each on 2 cores
@pytest.mark.parametrize("convention", ["vico", "source", "paired"])
def test_csim_conventions_run_through_the_runner(convention, folders, counter, monkeypatch, tmp_path):
    """Every CSIM convention through `evaluate` (vico and source used to fail at the first video's end): each
    video's value and the pooled number are what :func:`csim` gives on the same frames, and a second run
    reads the reference embeddings back."""
    from talking_head.metrics.csim import CSIM, csim

    factory.place(monkeypatch, "arcface-r100", factory.arcface())

    def run(out):
        counter.calls.clear()
        summary = evaluate(folders["blurred"], folders["reference"], metrics=["csim"], out=out, show_progress=False,
                           bootstrap=20, metric_options={"csim": {"convention": convention}})
        assert summary["skipped"] == {} and not summary["excluded"] and summary["videos"] == 2
        assert counter.total("unattributed") == {}
        return summary

    summary = run(tmp_path / "first")
    assert counter.total("reference")["arcface"] == (2 if convention == "source" else sum(LENGTHS))
    pooled = CSIM(convention=convention)
    rows = {row["video_id"]: float(row["csim"]) for row in _rows(tmp_path / "first")}
    for name in ("a", "b"):
        generated = media.read_video(folders["blurred"] / f"{name}.mp4")
        reference = media.read_video(folders["reference"] / f"{name}.mp4")
        reference = reference[:1] if convention == "source" else reference
        assert math.isclose(rows[name], csim(generated, reference, convention)["csim"], rel_tol=1e-6)
        pooled.update(generated, reference)
    result = summary["results"]["csim"]
    assert result["convention"] == convention and result["num_frames"] == sum(LENGTHS)
    assert math.isclose(result["csim"], pooled.compute()["csim"], rel_tol=1e-6)
    assert "csim" in summary["intervals"]

    again = run(tmp_path / "second")
    assert counter.total("reference") == {} and again["config"]["csim"]["reference_cache_hits"] == 2
    assert_nested_close(again["results"], summary["results"], TOLERANCE, where="results")


@pytest.mark.parametrize("convention", ["vico", "source"])
def test_csim_conventions_merge_as_one_instance(convention, videos, all_weights):
    """Distributed evaluation (state()/merge()) of the conventions the default run does not use, as
    tests/test_metric_merge.py checks the defaults: a merged instance gives one instance's rows and numbers."""
    from test_metric_contract import _first_frames
    from test_metric_merge import _check_merge

    _check_merge([("csim", {"convention": convention})], _first_frames(videos[2]))
