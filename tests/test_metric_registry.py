"""The metric package's surface: lazy exports, the registry, and a metric added by registering it."""

from __future__ import annotations

import csv
import inspect
import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from talking_head.metrics import registry
from talking_head.metrics.base import DIRECTIONS, INPUTS
from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate


def test_package_exports_lazily_without_importing_torch():
    code = ("import sys, talking_head.metrics as m\n"
            "assert 'torch' not in sys.modules, 'import talking_head.metrics imported torch'\n"
            "from talking_head.metrics import FID, LSE, evaluate, registry\n"
            "assert FID.__module__.endswith('.fid') and LSE.__module__.endswith('.lse') and callable(evaluate)\n"
            "from talking_head.metrics import lmd\n"
            "assert lmd.__name__.endswith('metrics.lmd'), 'a module name stays the module'\n"
            "missing = [n for n in m.__all__ if getattr(m, n, None) is None]\n"
            "assert not missing, missing\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_registry_entries_are_complete_and_defaults_are_the_library_defaults():
    from talking_head.metrics.csim import CSIM, csim
    from talking_head.metrics.lmd import LandmarkDistance
    from talking_head.metrics.lse import LSE, compute_lse

    names = registry.selectable_names()
    assert len(names) == len(set(names)) and set(registry.default_names()) <= set(names)
    for entry in registry.REGISTRY.values():
        assert entry.direction in DIRECTIONS and entry.label
        cls = entry.load()
        assert cls.name == entry.name and cls.direction == entry.direction
        assert cls.consumes and cls.consumes <= set(INPUTS)
        signature = inspect.signature(cls)
        assert "device" in signature.parameters
        assert all(option in signature.parameters for option in entry.defaults), entry.name
    # One default each: the library's own defaults are the runner's.
    lse, lmd, convention = registry.defaults("lse")["preset"], registry.defaults("lmd")["preset"], \
        registry.defaults("csim")["convention"]
    assert (lse, lmd, convention) == ("wav2lip_lrs", "dense", "paired")
    assert inspect.signature(LSE.compute).parameters["preset"].default == lse
    assert inspect.signature(compute_lse).parameters["preset"].default == lse
    assert inspect.signature(LandmarkDistance).parameters["preset"].default == lmd
    assert inspect.signature(CSIM).parameters["convention"].default == convention
    assert inspect.signature(csim).parameters["convention"].default == convention
    with pytest.raises(ValueError, match="unknown metric 'nope'"):
        registry.entry("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.REGISTRY["fid"])


def test_help_lists_the_registered_metrics_and_defaults():
    run = CliRunner().invoke(app, ["evaluate", "--help"], env={"COLUMNS": "400", "TERM": "dumb"})
    assert run.exit_code == 0, run.output
    text = " ".join(run.output.split())
    for name in registry.selectable_names():
        assert name in text
    assert registry.preset_defaults()["lse_preset"] in text


@pytest.fixture
def tiny_metric():
    from tiny_metric import MeanBrightness

    entry = registry.register(registry.MetricEntry(
        "mean_brightness", MeanBrightness, "Brightness", None, defaults={"scale": 2.0}, default_run=False,
        columns=(registry.ResultColumn("brightness", "brightness", "Brightness", None),)))
    yield entry
    registry.unregister(entry.name)


def test_a_registered_metric_runs_end_to_end(tiny_metric, tmp_path):
    clips = generate(tmp_path / "ref", speakers=1, clips=2, seconds=1.0, seed=3, show_progress=False)
    run = CliRunner().invoke(app, ["evaluate", "--generated", str(tmp_path / "ref"), "--reference",
                                   str(tmp_path / "ref"), "--metrics", "mean_brightness", "--out",
                                   str(tmp_path / "run"), "-q"])
    assert run.exit_code == 0, run.output
    expected = [2.0 * media.read_video(c.video).astype(np.float64).mean() for c in clips]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["results"]["mean_brightness"]["videos"] == 2
    assert summary["results"]["mean_brightness"]["brightness"] == pytest.approx(np.mean(expected), rel=1e-9)
    assert summary["config"]["mean_brightness"] == {"scale": 2.0}
    with open(tmp_path / "run" / "per_video.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["brightness"]) for r in rows] == pytest.approx(expected, rel=1e-5)
    assert all(r["status"] == "scored" for r in rows)
    assert ("mean_brightness", "brightness") in [(e.name, c.key) for e, c in registry.columns()]
