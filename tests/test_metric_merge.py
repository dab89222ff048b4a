"""Distributed evaluation's contract (metrics.base: state()/merge(); metrics.merge): a metric that scored pair 1
and merged the exported state of another instance that scored pair 2 gives the numbers of one instance that
scored both, for every registered metric (fed as tests/test_metric_contract.py feeds them)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from talking_head.metrics import registry
from talking_head.metrics.base import Metric, SharedInput
from talking_head.metrics.fid import InceptionVideos
from talking_head.metrics.merge import export_state, merge_state
from talking_head.metrics.results import plain
from test_metric_contract import HEAVY, _first_frames, all_weights, videos
from test_metric_contract_library import CASES as LIBRARY_CASES

__all__ = ["all_weights", "videos"]  # test_metric_contract's fixtures, used here by name

DRAW = np.array([0, 1, 1])  # one bootstrap draw, a video repeated

# Every registered metric at its defaults, and the options whose state differs in kind (cheap ones on CPU).
VARIANTS = [(name, {}) for name in registry.REGISTRY] + [
    ("lse", {"frames": "decoded"}), ("psnr_ssim", {"preset": "atvgnet"}), ("fvd", {"variant": "videogpt"})]


def _same(a, b, where="result"):
    """Equal, numbers to 1e-9 (absolute or relative), NaN equal to NaN."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{k}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9), (where, a, b)
    else:
        assert a == b, (where, a, b)


def _build(names_options, device="cpu"):
    """The metrics as the runner builds them: one shared input per run for the metrics that declare it."""
    shared, built = {}, []
    for name, options in names_options:
        entry = registry.entry(name)
        cls = entry.load()
        extra = {}
        if cls.shared_input is not None:
            extra["shared"] = shared.setdefault(cls.shared_input, cls.shared_input(device=device))
        built.append(cls(device=device, **{**entry.defaults, **options}, **extra))
    return built


def _score(metrics, pairs):
    """Each pair through every metric, as the runner feeds them; the per-video rows of each metric."""
    rows = [[] for _ in metrics]
    for video, chunks in pairs:
        for metric in metrics:
            metric.start_video(video)
        for chunk in chunks:
            for metric in metrics:
                metric.update(chunk)
        for metric, found in zip(metrics, rows):
            found.append(metric.end_video())
    return rows


def _check_merge(names_options, pairs):
    """One instance scores both pairs; another scores pair 1 and merges the state of a third that scored pair 2;
    a fresh one (the driver) merges both states, in pair order. The two merged ones give the first's numbers."""
    whole, first, second, driver = (_build(names_options) for _ in range(4))
    rows = _score(whole, pairs)
    rows_split = [a + b for a, b in zip(_score(first, pairs[:1]), _score(second, pairs[1:]))]
    _same(plain(rows_split), plain(rows), "per-video rows")
    states = [pickle.loads(pickle.dumps(export_state(metrics))) for metrics in (first, second)]
    for exported in states:
        merge_state(driver, exported)
    merge_state(first, states[1])
    for merged in (first, driver):
        for metric, alone in zip(merged, whole):
            _same(plain(metric.compute()), plain(alone.compute()), metric.name)
            _same(plain(metric.resample(DRAW)), plain(alone.resample(DRAW)), f"{metric.name} resample")
    return whole, first


@pytest.mark.filterwarnings("ignore::UserWarning")  # FID on 16 frames warns that it is biased; expected here
@pytest.mark.parametrize("name,options", VARIANTS, ids=[f"{n}-{'-'.join(map(str, o.values()))}".rstrip("-")
                                                        for n, o in VARIANTS])
def test_merged_state_equals_one_instance(name, options, videos, all_weights):
    pairs = _first_frames(videos[2]) if name in HEAVY else videos[2]
    _check_merge([(name, options)], pairs)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fid_and_kid_share_one_pass_merged_once(videos, all_weights):
    pairs = _first_frames(videos[2])
    whole, merged = _check_merge([("fid", {}), ("kid", {})], pairs)
    assert merged[0].shared is merged[1].shared and isinstance(merged[0].shared, InceptionVideos)
    assert merged[0].shared.videos == whole[0].shared.videos and len(merged[0].shared.videos) == 2
    fid, kid = _build([("fid", {}), ("kid", {})])
    _score([fid, kid], pairs)
    exported = export_state([fid, kid])
    assert list(exported["shared"]) == ["InceptionVideos"] and exported["metrics"] == {"fid": {}, "kid": {}}
    # Merged twice (a driver forwarding it through each metric) the frames would count twice.
    doubled, _ = _build([("fid", {}), ("kid", {})])
    doubled.shared.merge(exported["shared"]["InceptionVideos"])
    doubled.shared.merge(exported["shared"]["InceptionVideos"])
    assert doubled.compute()["num_frames_generated"] == 2 * whole[0].compute()["num_frames_generated"]


@pytest.mark.parametrize("case", list(LIBRARY_CASES))
def test_library_class_merges(case):
    make, updates = LIBRARY_CASES[case]
    whole, first, second = make(), make(), make()
    for k, (args, kwargs) in enumerate(updates):
        whole.update(*args, **kwargs)
        (first if k == 0 else second).update(*args, **kwargs)
    first.merge(pickle.loads(pickle.dumps(second.state())))
    _same(plain(first.per_video()), plain(whole.per_video()), case)
    _same(plain(first.compute()), plain(whole.compute()), case)


def test_state_and_merge_are_refused_while_a_video_is_open(videos):
    video, chunks = videos[2][0]
    metric, other = _build([("pose", {}), ("pose", {})])
    _score([other], videos[2][1:])
    metric.start_video(video)
    metric.update(chunks[0])
    for refused in (metric.state, lambda: metric.merge(other.state()),
                    lambda: merge_state([metric], export_state([other]))):
        with pytest.raises(ValueError, match="while a video is open"):
            refused()
    metric.discard_video()
    merge_state([metric], export_state([other]))  # closed again: accepted
    assert metric.compute()["videos"] == 1


def test_shared_state_and_merge_are_refused_while_a_video_is_open(videos, all_weights):
    video = _first_frames(videos[2])[0][0]
    shared = InceptionVideos()
    shared.start_video(video)
    for refused in (shared.state, lambda: shared.merge(InceptionVideos(model=shared.model).state())):
        with pytest.raises(ValueError, match="while a video is open"):
            refused()


def test_the_bases_name_the_class_that_lacks_state():
    class Bare(Metric):
        name = "bare"

    class BareInput(SharedInput):
        pass

    for call in (lambda: Bare().state(), lambda: Bare().merge({}), lambda: BareInput().state(),
                 lambda: BareInput().merge({})):
        with pytest.raises(NotImplementedError, match="Bare"):
            call()
    assert Bare().shared is None
