"""The library classes fed one whole video per update follow the metric contract: ``update()`` returns
nothing, ``per_video()`` gives one dict per update, ``compute()`` a dict (tiny synthetic inputs, no weights)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from talking_head.metrics import registry
from talking_head.metrics.beat_align import BeatAlign
from talking_head.metrics.blink import BlinkRate
from talking_head.metrics.head_motion import CrossSampleDiversity, PoseDiversity
from talking_head.metrics.lmd import LandmarkDistance
from talking_head.metrics.lse import LSE
from talking_head.metrics.results import plain

METRICS_DIR = Path(__file__).resolve().parents[1] / "metrics"


def _poses(seed: int, frames: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 5, (frames, 3))


def _faces68(seed: int, frames: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 100, (frames, 68, 2))


# (metric, the positional and keyword arguments of each update: one video each); LSE takes scored rows,
# so it needs no SyncNet weights.
CASES = {
    "LSE": (LSE, [(("a", [{"offset": 1, "lse_d": 7.0, "lse_c": 3.0}]), {}),
                  (("b", []), {"reason": "no face"})]),
    "LandmarkDistance": (lambda: LandmarkDistance("vico"), [((_faces68(1), _faces68(2)), {}),
                                                           ((_faces68(3), _faces68(4)), {})]),
    "PoseDiversity": (PoseDiversity, [((_poses(1),), {}), ((_poses(2),), {}), ((np.full((3, 3), np.nan),), {})]),
    "CrossSampleDiversity": (CrossSampleDiversity, [(([_poses(1), _poses(2)],), {}),
                                                    (([_poses(3), _poses(4), _poses(5)],), {})]),
    "BeatAlign": (BeatAlign, [((_poses(1),), {"audio_beats": [10, 20, 30]}), ((_poses(2),), {"audio_beats": [500]})]),
    "BlinkRate": (lambda: BlinkRate("ear68"), [((_faces68(1, 30),), {}), ((_faces68(2, 30),), {})]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_library_class_follows_the_contract(case):
    make, updates = CASES[case]
    metric = make()
    for args, kwargs in updates:
        assert metric.update(*args, **kwargs) is None
    rows = metric.per_video()
    assert len(rows) == len(updates) and all(isinstance(row, dict) and row for row in rows)
    assert metric.per_video(-1) == rows[-1:]  # the last video alone, as the runner classes read it
    rows[0].clear()  # copies: the caller's changes do not reach the metric
    assert metric.per_video()[0]
    result = metric.compute()
    assert isinstance(result, dict) and result
    json.dumps(plain(result))
    assert isinstance(metric.config(), dict) and isinstance(metric.weights_provenance(), dict)
    entry = registry.entry(metric.name)
    assert metric.direction == entry.direction
    metric.reset()
    assert metric.per_video() == []


def test_lse_per_video_keeps_tracks_and_reasons():
    lse = LSE()
    lse.update("a", [{"offset": 1, "lse_d": 7.0, "lse_c": 3.0}, {"offset": 0, "lse_d": 6.0, "lse_c": 2.0}])
    lse.update("b", [], reason="no face")
    a, b = lse.per_video()
    assert (a["video_id"], a["num_tracks"], a["reason"]) == ("a", 2, None)
    assert [t["lse_d"] for t in a["tracks"]] == [7.0, 6.0]
    assert (b["video_id"], b["num_tracks"], b["tracks"], b["reason"]) == ("b", 0, [], "no face")


def test_no_update_method_returns_a_value():
    """Per-video values come through per_video() (or a runner class's end_video()) only."""
    found = []
    for path in sorted(METRICS_DIR.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and (method.name == "update" or method.name.startswith("update_")):
                    if any(isinstance(n, ast.Return) and n.value is not None for n in ast.walk(method)):
                        found.append(f"{path.name}: {node.name}.{method.name}")
    assert not found, found
