"""Machine-readable listings (--format json|csv, untruncated tables when piped) and
`toolkit weights fetch --for METRIC / --protocol NAME`, whose file sets come from the metric registry.

Offline: weight files are written here (random contents, unpinned entries) and downloads come from the
local HTTP server of tests/test_weights.py.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import talking_head.toolkit.cli.weights as cli
from talking_head.metrics import protocols, registry
from talking_head.toolkit import weights as w
from talking_head.toolkit.cli import app
from talking_head.toolkit.cli.evaluate import RESULT_FIELDS, result_document, result_records, result_table
from test_weights import server, state_dict_bytes, toolkit_entry, write  # noqa: F401 (server is a fixture)

pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py
ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


def _subprocess(args: list[str], env_dir: Path) -> subprocess.CompletedProcess:
    """`toolkit ARGS` in a child process with stdout piped (not a terminal), caches under env_dir."""
    env = {**os.environ, "TORCH_HOME": str(env_dir / "torch"), "HF_HUB_CACHE": str(env_dir / "hf" / "hub"),
           "HF_HOME": str(env_dir / "hf"), "TOOLKIT_WEIGHTS_DIR": str(env_dir / "weights"),
           "TOOLKIT_CACHE_DIR": str(env_dir / "toolkit-cache")}
    env.pop("COLUMNS", None)
    code = "from talking_head.toolkit.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


# ------------------------------------------------------------------------------ weights list / verify
def test_weights_list_json_and_csv_carry_every_field_whole(isolated_caches: Path) -> None:
    write(isolated_caches / "weights" / "niqe_pris_params.npz", b"some bytes")  # present, not BasicSR's file
    done = _subprocess(["weights", "list", "--format", "json"], isolated_caches)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)  # nothing but the JSON on stdout
    assert [r["name"] for r in rows] == list(w.REGISTRY)
    by_name = {r["name"]: r for r in rows}
    for name, entry in w.REGISTRY.items():
        assert by_name[name]["url"] == entry.url and by_name[name]["sha256"] == entry.sha256
        assert by_name[name]["size"] == entry.size
    assert by_name["niqe-pristine"]["status"] == "corrupt" and by_name["syncnet"]["status"] == "missing"
    assert by_name["niqe-pristine"]["actual_size"] == len(b"some bytes")
    assert HEX64.fullmatch(by_name["fid-inception"]["sha256"])  # the full digest, not a cut one
    # `python -m json.tool` accepts it (the done-when)
    tool = subprocess.run([sys.executable, "-m", "json.tool"], input=done.stdout, capture_output=True, text=True)
    assert tool.returncode == 0

    as_csv = runner.invoke(cli.app, ["list", "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert tuple(table[0]) == cli.LIST_FIELDS
    assert [r["name"] for r in table] == list(w.REGISTRY)
    for row in table:
        entry = w.REGISTRY[row["name"]]
        assert row["url"] == entry.url and row["sha256"] == (entry.sha256 or "")
        assert row["sha256"] == "" or HEX64.fullmatch(row["sha256"])


def test_weights_list_long_is_not_truncated_when_piped(isolated_caches: Path) -> None:
    done = _subprocess(["weights", "list", "--long"], isolated_caches)
    assert done.returncode == 0, done.stderr
    for entry in w.REGISTRY.values():
        line = next(line for line in done.stdout.splitlines() if f" {entry.name} " in line)
        assert entry.url in line, f"{entry.name}: URL cut or folded in the piped table"
        if entry.sha256:
            assert entry.sha256 in line
        assert str(w.destination(entry)) in done.stdout.replace("\n", "") or entry.location == "hf_hub"
    assert "…" not in done.stdout


def test_weights_verify_formats(isolated_caches: Path) -> None:
    data = b"not the detector"
    write(isolated_caches / "weights" / "sfd_face.pth", data)
    as_json = runner.invoke(cli.app, ["verify", "--format", "json"])
    assert as_json.exit_code == 1  # corrupt file: same exit code as the table
    rows = {r["name"]: r for r in json.loads(as_json.stdout)}
    assert set(rows) == set(w.REGISTRY)
    assert rows["syncnet-s3fd"]["status"] == "corrupt" and rows["syncnet"]["status"] == "missing"
    assert rows["syncnet"]["expected_sha256"] == w.REGISTRY["syncnet"].sha256
    assert rows["syncnet-s3fd"]["actual_size"] == len(data)
    assert "sfd_face.pth" in as_json.stderr  # the explanation stays on stderr
    as_csv = runner.invoke(cli.app, ["verify", "syncnet-s3fd", "--format", "csv"])
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert tuple(parsed[0]) == cli.VERIFY_FIELDS and [r["name"] for r in parsed] == ["syncnet-s3fd"]
    assert runner.invoke(cli.app, ["verify", "--format", "xml"]).exit_code == 2


# --------------------------------------------------------------------------------- reproduce --list
def test_reproduce_list_formats(isolated_caches: Path) -> None:
    from talking_head.leaderboards.reproduce import RECIPES

    as_json = runner.invoke(app, ["reproduce", "--list", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.stdout)
    assert [r["id"] for r in rows] == list(RECIPES)
    assert rows[0]["models"] == list(next(iter(RECIPES.values())).models)
    as_csv = runner.invoke(app, ["reproduce", "--list", "--format", "csv"])
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["id"] for r in parsed] == list(RECIPES) and "title" in parsed[0]
    piped = _subprocess(["reproduce", "--list"], isolated_caches)
    assert piped.returncode == 0, piped.stderr
    for recipe in RECIPES.values():
        assert any(recipe.id in line and recipe.title in line for line in piped.stdout.splitlines())


# ------------------------------------------------------------------------------ evaluate result table
SUMMARY = {
    "videos": 3, "frames": 300, "protocol": {"name": "hallo", "hash": "0123456789ab"},
    "results": {"lse": {"lse_c": 7.25, "lse_d": 7.5, "videos": 3, "preset": "wav2lip_real"},
                "fid": {"fid": 12.5}},
    "intervals": {"lse": {"lse_c": {"low": 6.9, "high": 7.6}}},
    "bootstrap": {"level": 0.95, "method": "percentile", "resamples": 1000, "set_level_resamples": 200, "seed": 0},
    "ground_truth": {"lse": {"lse_c": {"value": 8.0}}},
    "ground_truth_normalised": {"lse": {"lse_c": 0.90625}},
    "skipped": {"fvd": "weights missing"}, "excluded": {},
}


def test_evaluate_records_match_the_table() -> None:
    rows = result_records(SUMMARY)
    assert [(r["metric"], r["key"]) for r in rows] == [("lse", "lse_c"), ("lse", "lse_d"), ("lse", "videos"),
                                                      ("fid", "fid")]
    assert rows[0] == {"metric": "lse", "key": "lse_c", "value": 7.25, "low": 6.9, "high": 7.6, "ground_truth": 8.0,
                       "ground_truth_normalised": 0.90625}
    assert rows[3]["low"] is None and rows[3]["ground_truth"] is None
    document = result_document(SUMMARY, Path("runs/x"))
    assert document["protocol"] == {"name": "hallo", "hash": "0123456789ab"}
    assert document["skipped"] == {"fvd": "weights missing"} and document["intervals"]["resamples"] == 1000
    assert len(result_table(SUMMARY).rows) == len(rows)


def test_evaluate_format_json_and_csv(tmp_path: Path) -> None:
    from talking_head.toolkit.sample import generate

    generate(tmp_path / "ref", speakers=1, clips=1, seconds=1.0, seed=3, show_progress=False)
    base = ["evaluate", "--generated", str(tmp_path / "ref"), "--reference", str(tmp_path / "ref"),
            "--metrics", "psnr", "--bootstrap", "20", "--bootstrap-set-level", "5"]
    as_json = runner.invoke(app, [*base, "--out", str(tmp_path / "run"), "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    keys = {(r["metric"], r["key"]) for r in document["rows"]}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert keys == {(r["metric"], r["key"]) for r in result_records(summary)} and ("psnr_ssim", "ssim") in keys
    assert document["videos"] == 1 and document["files"]["summary"].endswith("summary.json")
    assert "per video:" in as_json.stderr  # the messages moved to stderr
    as_csv = runner.invoke(app, [*base, "--out", str(tmp_path / "run2"), "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    parsed = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert tuple(parsed[0]) == RESULT_FIELDS
    assert {(r["metric"], r["key"]) for r in parsed} == keys


# --------------------------------------------------------------------- fetch --for / --protocol / --all
def _names(output: str, state: str) -> set[str]:
    return {line.split(":")[0] for line in output.splitlines() if re.match(rf"^[\w.-]+: {state}\b", line)}


def test_fetch_resolves_metric_and_protocol_file_sets() -> None:
    wanted = cli.resolve_targets(metrics=["lse"], protocols=["hallo"])
    assert set(wanted) == {"syncnet", "syncnet-s3fd", "fid-inception", "i3d-kinetics400"}
    assert set(cli.resolve_targets(metrics=["lse"])) == {"syncnet"}
    assert set(cli.resolve_targets(metrics=["lse:preset=mocha"])) == {"syncnet", "syncnet-s3fd"}
    assert set(cli.resolve_targets(metrics=["lmd"])) == set()
    assert set(cli.resolve_targets(metrics=["lmd:preset=vico", "fvd:variant=videogpt", "psnr"])) == {
        "fan-2d", "fan-s3fd", "i3d-kinetics400"}
    assert set(cli.resolve_targets(protocols=["latentsync"])) == {"syncnet", "syncnet-s3fd", "i3d-torchscript"}
    assert set(cli.resolve_targets(protocols=["echomimic"])) == {"fid-inception", "i3d-torchscript", "deep3dfacerecon"}
    assert set(cli.resolve_targets(protocols=["toolkit"])) == {
        "fid-inception", "i3d-torchscript", "deep3dfacerecon", "syncnet", "lpips-alexnet", "arcface-r100",
        "niqe-pristine"}
    assert list(cli.resolve_targets(all_=True)) == list(w.REGISTRY)
    for protocol in protocols.available():  # every shipped protocol resolves to registry files
        for name in cli.resolve_targets(protocols=[protocol]):
            w.get(name)


def test_fetch_for_lse_and_protocol_with_files_present(isolated_caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import weights_factory as factory

    for name in ("syncnet", "syncnet-s3fd", "fid-inception", "i3d-kinetics400"):
        factory.place(monkeypatch, name, {"x": torch.zeros(2)})
    done = runner.invoke(app, ["weights", "fetch", "--for", "lse", "--protocol", "hallo"])
    assert done.exit_code == 0, done.output
    assert _names(done.stdout, "already present") == {"syncnet", "syncnet-s3fd", "fid-inception", "i3d-kinetics400"}
    assert done.stdout.strip().splitlines()[-1] == "0 fetched, 4 already present, 0 failed"
    dry = runner.invoke(app, ["weights", "fetch", "--protocol", "echomimic", "--dry-run"])
    assert dry.exit_code == 0 and _names(dry.stdout, "present") == {"fid-inception"}
    assert _names(dry.stdout, "to fetch") == {"i3d-torchscript", "deep3dfacerecon"}


def test_fetch_downloads_what_is_missing_with_one_summary(server, isolated_caches: Path,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import weights_factory as factory

    base, root, handler = server
    _, data = state_dict_bytes()
    write(root / "sfd_face.pth", data)
    factory.place(monkeypatch, "syncnet", {"x": torch.zeros(2)})
    s3fd = dataclasses.replace(w.REGISTRY["syncnet-s3fd"], url=f"{base}/sfd_face.pth", size=len(data),
                               sha256=toolkit_entry(data=data).sha256)
    monkeypatch.setitem(w.REGISTRY, "syncnet-s3fd", s3fd)
    done = runner.invoke(app, ["weights", "fetch", "--for", "lse:preset=mocha"])
    assert done.exit_code == 0, done.output
    assert handler.requests == ["/sfd_face.pth"]
    assert "syncnet-s3fd: ok" in done.stdout and "syncnet: already present" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "1 fetched, 1 already present, 0 failed"
    assert "syncnet-s3fd (1/1)" in done.stderr or "1 file(s)" in done.stderr  # the one progress bar, on stderr

    monkeypatch.setitem(w.REGISTRY, "fid-inception", dataclasses.replace(
        w.REGISTRY["fid-inception"], url=f"{base}/missing.pth"))  # 404
    failed = runner.invoke(app, ["weights", "fetch", "--protocol", "hallo"])
    assert failed.exit_code == 1
    assert failed.stdout.strip().splitlines()[-1].endswith("2 already present, 2 failed")
    assert "fid-inception: FAILED" in failed.stderr


def test_fetch_errors_exit_2() -> None:
    for args, message in ((["--for", "nope"], "unknown metric 'nope'"),
                          (["--protocol", "nope"], "unknown protocol 'nope'"),
                          (["--for", "lse:bogus=1"], "has no option 'bogus'"),
                          (["--for", "lse:preset"], "OPTION=VALUE"),
                          (["nope"], "unknown weights name"),
                          ([], "give one or more NAMEs")):
        done = runner.invoke(app, ["weights", "fetch", *args])
        assert done.exit_code == 2, (args, done.output)
        assert message in done.stderr and done.stdout == ""


def test_fetch_for_an_unknown_option_value_names_the_known_ones() -> None:
    from talking_head.metrics import lse

    for spec, message in (("lse:preset=moca", f"metric 'lse' has no preset 'moca' (known: {', '.join(lse.PRESETS)})"),
                          ("fvd:variant=stylegan", "metric 'fvd' has no variant 'stylegan' (known: styleganv, "),
                          ("lse:preset=mocha,frames=jpeg", "metric 'lse' has no frames 'jpeg' (known: ffmpeg_jpeg, ")):
        done = runner.invoke(app, ["weights", "fetch", "--for", spec, "--dry-run"])
        assert done.exit_code == 2, (spec, done.output)
        assert message in done.stderr and done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert runner.invoke(app, ["weights", "fetch", "--for", "lse:preset=mocha", "--dry-run"]).exit_code == 0


# ------------------------------------------------------------------- the registry's declared files
def _option_values() -> dict[tuple[str, str], list]:
    from talking_head.metrics import csim, fvd_variants, lmd, lse

    return {("lse", "preset"): list(lse.PRESETS), ("lmd", "preset"): list(lmd.PRESETS),
            ("fvd", "variant"): list(fvd_variants.VARIANTS), ("csim", "convention"): list(csim.CONVENTIONS)}


def test_the_registry_knows_each_closed_option_s_values() -> None:
    """`MetricEntry.option_values` reads the metric modules' own tables: the same values as `_option_values`."""
    from talking_head.metrics import lse

    known = {**_option_values(), ("lse", "frames"): list(lse.FRAME_SOURCES)}
    entries = registry.REGISTRY.values()
    assert {(e.name, o): list(e.option_values(o) or ()) for e in entries for o in e.option_choices} == known
    for (name, option), values in known.items():
        entry = registry.REGISTRY[name]
        assert entry.defaults[option] in values and set(entry.option_weights.get(option, {})) <= set(values)
    assert registry.REGISTRY["fid"].option_values("variant") is None  # no closed set: not checked


def _cases() -> list[tuple[str, dict]]:
    cases = [(name, {}) for name in registry.REGISTRY]
    for (name, option), values in _option_values().items():
        cases += [(name, {option: value}) for value in values if value != registry.defaults(name)[option]]
    return cases


def _loadable(name: str, folder: Path) -> Path | None:
    """A file with real keys and shapes (random values) for the registry names that are cheap to make; None
    for the others (those get bytes that no loader accepts, so a build stops there)."""
    target = folder / name
    if target.exists():
        return target
    if name == "syncnet":
        from syncnet_python.SyncNetModel import S

        torch.save(S().state_dict(), target)
    elif name == "syncnet-s3fd":
        from talking_head.metrics.s3fd import S3FDNet

        torch.save(S3FDNet().state_dict(), target)
    elif name == "fid-inception":
        import weights_factory as factory

        torch.save(factory.pytorch_fid_skeleton().state_dict(), target)
    elif name == "niqe-pristine":
        from talking_head.metrics.niqe import FEATURE_DIM

        with open(target, "wb") as handle:
            np.savez(handle, mu_pris_param=np.zeros(FEATURE_DIM), cov_pris_param=np.eye(FEATURE_DIM),
                     gaussian_window=np.ones((7, 7)) / 49)
    else:
        return None
    return target


def test_registry_declares_the_weight_files_each_metric_asks_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Build every metric (and every option value that could change its files) with the registry recording
    which weight files are asked for. A missing file is placed (a loadable one where that is cheap, else bytes
    no loader accepts) and the metric built again, until it builds or stops on such bytes. What was asked for
    must be exactly what `MetricEntry.weights_for` declares."""
    from talking_head.metrics.runner import build_metrics

    made = tmp_path / "made"
    made.mkdir()
    original_get = w.get
    checked = 0
    for name, options in _cases():
        declared = set(registry.weights_for(name, options))
        asked: set[str] = set()

        def recording_get(name_or_entry, _asked=asked):
            entry = original_get(name_or_entry)
            _asked.add(entry.name)
            return entry

        cache = tmp_path / f"case{checked}"
        with pytest.MonkeyPatch.context() as patch:
            for var, sub in (("TORCH_HOME", "torch"), ("TOOLKIT_WEIGHTS_DIR", "weights"), ("HF_HOME", "hf"),
                             ("HF_HUB_CACHE", "hf/hub"), ("TOOLKIT_CACHE_DIR", "cache")):
                patch.setenv(var, str(cache / sub))
            patch.setattr(w, "get", recording_get)
            placed: set[str] = set()
            for _ in range(len(declared) + 2):
                built, skipped = build_metrics([name], metric_options={name: options} if options else None)
                if built:
                    break
                missing = sorted(n for n in asked - placed if w.verify(n).status == "missing")
                if not missing:
                    assert placed & asked, (name, options, skipped)
                    break  # stopped on a file no loader accepts: what it asked for so far is checked below
                for file in missing:
                    entry = dataclasses.replace(original_get(file), sha256=None, size=None, git_blob_sha1=None,
                                                sha256_prefix=None)
                    patch.setitem(w.REGISTRY, file, entry)
                    dest = w.destination(entry)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    source = _loadable(file, made)
                    if source is not None:
                        os.link(source, dest)
                    else:
                        dest.write_bytes(b"not a weights file")
                    placed.add(file)
            for metric in built:
                if hasattr(metric, "close"):
                    metric.close()
        assert asked == declared, f"{name} {options}: asks for {sorted(asked)}, registry declares {sorted(declared)}"
        checked += 1
    assert checked == len(_cases())


def test_every_declared_file_is_in_the_weights_registry() -> None:
    for entry in registry.REGISTRY.values():
        for name in entry.all_weights():
            assert name in w.REGISTRY, f"metric {entry.name} declares unknown weight file {name!r}"
        assert set(entry.option_weights) <= set(entry.defaults)
