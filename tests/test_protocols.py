"""Published evaluation protocols by name (metrics/protocols.py, metrics/protocols/*.yaml), and what every run
now records beside its numbers: the ground truth's values (metrics/ground_truth.py), the throughput
(metrics/throughput.py) and the meshes the landmark metrics saw.

The shipped protocols are checked as data (every knob sourced or marked silent, every option a real keyword
of its metric); a protocol file written here runs end to end on the small preprocessed sample.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from talking_head.metrics import protocols, registry
from talking_head.metrics.ground_truth import IDENTITY, MEASURED
from talking_head.metrics.runner import evaluate
from talking_head.toolkit.cli import app
from test_evaluate_sample import _perturbed_copy, dataset, weights  # noqa: F401 (fixtures used by name)

REQUIRED = ("wav2lip", "latentsync", "hallo", "echomimic", "moda", "toolkit")


def _protocol(**overrides) -> dict:
    data = {
        "schema": protocols.SCHEMA, "name": "cheap", "title": "A cheap protocol for tests",
        "description": "NIQE, PSNR/SSIM and pose on the sample.",
        "metrics": {"niqe": {}, "psnr_ssim": {"preset": "atvgnet"}, "pose": {}},
        "fps": 25, "split": "test", "inputs": "the sample's face crops",
        "knobs": [{"name": "psnr.preset", "value": "atvgnet", "source": "tests/test_protocols.py"},
                  {"name": "clip_count", "value": "every test clip", "silent": True, "choice": "all of them"}],
        "sources": ["tests/test_protocols.py"],
    }
    data.update(overrides)
    return data


def _write(folder, data) -> str:
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name", REQUIRED)
def test_every_shipped_protocol_is_complete_data(name):
    found = protocols.load(name)
    assert name in protocols.available() and found.name == name
    protocols.check_options(found)  # every option is a keyword of its metric's class
    assert found.metrics and found.split and found.inputs and found.sources
    for knob in found.knobs:
        assert knob.get("source") or (knob.get("silent") and knob.get("choice")), knob
    assert len(found.hash) == protocols.HASH_CHARS and found.heading == f"protocol {name} (hash {found.hash})"
    assert found.hash == protocols.content_hash(found.data)


def test_the_hash_follows_the_content_not_the_formatting(tmp_path):
    first = protocols.load(_write(tmp_path, _protocol()))
    path = tmp_path / "cheap.yaml"
    path.write_text("# a comment changes nothing\n" + path.read_text(), encoding="utf-8")
    assert protocols.load(path).hash == first.hash
    changed = protocols.load(_write(tmp_path, _protocol(fps=30)))
    assert changed.hash != first.hash


@pytest.mark.parametrize("override, message", [
    ({"knobs": [{"name": "crop", "value": "face"}]}, "give its source, or mark it silent"),
    ({"knobs": [{"name": "crop", "value": "face", "silent": True}]}, "says the choice made"),
    ({"metrics": {"nonsense": {}}}, "unknown metric 'nonsense'"),
    ({"fps": -1}, "fps must be a positive number"),
    ({"schema": "other/1"}, "schema must be"),
    ({"extra": 1}, "unknown field(s) extra"),
])
def test_a_malformed_protocol_is_refused_naming_the_file(tmp_path, override, message):
    path = _write(tmp_path, _protocol(**override))
    with pytest.raises(ValueError, match=r"cheap\.yaml: .*" + __import__("re").escape(message)):
        protocols.load(path)


def test_unknown_names_and_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown protocol 'nope'; known: .*hallo"):
        protocols.load("nope")
    bad = protocols.load(_write(tmp_path, _protocol(metrics={"lse": {"presett": "mocha"}})))
    with pytest.raises(ValueError, match=r"metrics\.lse: unknown option\(s\) presett; LSEVideos takes .*preset"):
        protocols.check_options(bad)


def test_a_protocol_missing_weights_stops_before_any_work(dataset, isolated_caches, tmp_path):
    """No weights were placed: NIQE cannot start, so the protocol refuses before pairing or decoding anything."""
    path = _write(tmp_path, _protocol())
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"protocol cheap \(hash [0-9a-f]{12}\) cannot run: niqe: "):
        evaluate(dataset, dataset, out=out, protocol=path, show_progress=False)
    assert not out.exists()  # nothing written: not even the dataset's videos


def test_a_protocol_sets_everything_and_conflicting_options_are_refused(dataset, tmp_path):
    path = _write(tmp_path, _protocol())
    for extra in ({"metrics": ["fid"]}, {"metric_options": {"lse": {}}}, {"fps": 30.0}, {"split": "train"}):
        with pytest.raises(ValueError, match="sets the metrics, their options, the frame rate and the split"):
            evaluate(dataset, dataset, protocol=path, show_progress=False, **extra)


@pytest.mark.slow  # NIQE on both sides, twice, and the mesh on the sample's test split
def test_a_protocol_run_records_protocol_ground_truth_throughput_and_meshes(dataset, weights, tmp_path):
    path = _write(tmp_path, _protocol())
    _perturbed_copy(dataset, tmp_path / "generated")
    out = tmp_path / "run"
    run = CliRunner().invoke(app, ["evaluate", "--protocol", path, "--generated", str(tmp_path / "generated"),
                                   "--reference", str(dataset), "--out", str(out), "--bootstrap", "50"])
    assert run.exit_code == 0, run.output
    summary = json.loads((out / "summary.json").read_text())
    chosen = protocols.load(path)
    assert f"protocol cheap (hash {chosen.hash})" in run.output and "ground truth" in run.output
    assert summary["protocol"]["name"] == "cheap" and summary["protocol"]["hash"] == chosen.hash
    assert summary["protocol"]["content"] == chosen.data and summary["split"] == "test"
    assert summary["metrics_requested"] == ["niqe", "psnr_ssim", "pose"] and summary["options"]["fps"] == 25
    assert summary["config"]["psnr_ssim"]["preset"] == "atvgnet"  # the protocol's option reached the metric

    results, truth = summary["results"], summary["ground_truth"]
    # measured on the real clips: NIQE of the reference frames, the references' pose std
    assert truth["niqe"]["niqe"] == {"value": results["niqe"]["niqe_reference"], "how": MEASURED}
    assert truth["pose"]["mean_std"] == {"value": results["pose"]["reference"]["mean_std"], "how": MEASURED}
    assert results["niqe"]["niqe_reference"] != results["niqe"]["niqe"]  # blurred frames score otherwise
    # comparisons give the reference against itself by definition
    assert truth["psnr_ssim"]["ssim"] == {"value": 1.0, "how": IDENTITY}
    # THEval's normalised score where the ideal is the ground truth's value, and only there
    m, gt = results["pose"]["mean_std"], results["pose"]["reference"]["mean_std"]
    assert summary["ground_truth_normalised"]["pose"]["mean_std"] == pytest.approx(1 - abs(m - gt) / abs(gt))
    assert "psnr_ssim" not in summary["ground_truth_normalised"]
    normalised_columns = {c.id for _, c in registry.columns() if c.normalised}
    assert normalised_columns == {"lse_c", "pose_std", "blink_rate"}

    speed = summary["throughput"]
    assert speed["device"].startswith("cpu (") and speed["frames"] == summary["frames"] > 0
    assert set(speed["stages"]) >= {"decode", "face_mesh", "niqe", "psnr_ssim", "pose", "bootstrap"}
    assert sum(s["seconds"] for s in speed["stages"].values()) <= speed["seconds"] + 1e-3
    assert speed["frames_per_second"] == pytest.approx(speed["frames"] / speed["seconds"], rel=1e-2)
    assert "throughput:" in run.output and "frames/s on cpu" in run.output

    rows = [r for r in (out / "per_video.csv").read_text().splitlines()[1:] if r]
    meshes = sorted((out / "landmarks").rglob("*.npz"))
    assert len(meshes) == len(rows) == summary["videos"]
    with np.load(meshes[0]) as saved:
        generated, reference = saved["generated"], saved["reference"]
        assert saved["fps"] == 25 and generated.dtype == np.float16
        assert generated.shape == reference.shape == (summary["frames"] // len(rows), 478, 2)
        inside = reference[np.isfinite(reference)]
        assert 0.0 <= inside.min() and inside.max() <= 1.0  # normalised by the frame size

    # The reference side's NIQE comes from the cache the second time, with the same numbers.
    again = evaluate(tmp_path / "generated", dataset, out=tmp_path / "again", protocol=path, show_progress=False,
                     bootstrap=0)
    assert again["config"]["niqe"]["reference_cache_hits"] == summary["videos"]
    assert again["config"]["niqe"]["reference_cache_hits"] > summary["config"]["niqe"]["reference_cache_hits"]
    assert again["results"]["niqe"] == results["niqe"]


def test_list_protocols_names_every_shipped_one():
    run = CliRunner().invoke(app, ["evaluate", "--list-protocols"])
    assert run.exit_code == 0, run.output
    for name in REQUIRED:
        assert name in run.output
    conflict = CliRunner().invoke(app, ["evaluate", "--protocol", "toolkit", "--metrics", "fid", "--generated", ".",
                                        "--reference", ".", "--out", "x"])
    assert conflict.exit_code != 0 and "drop --metrics" in conflict.output
