"""`toolkit audit` (leaderboards.audit) and the re-encodings it applies (toolkit.media.reencode), with the
real ffmpeg binary and the real runner, on the built-in sample.

Generated = the sample's two clips re-encoded at CRF 23, reference = the same frames near-lossless (CRF 0),
both scaled to 256 px so SSIM (the costly part) takes a quarter of the time; PSNR/SSIM and pose need no
weights. Measured on these inputs (2 clips x 40 frames, PSNR 37.9 dB unmodified, its 95% interval +-0.04):
h264_crf28 costs 3.4 dB of PSNR, h264_crf18 0.5 dB, and the audio-only variants move no video metric at all
(the video stream is copied).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from talking_head.leaderboards.audit import GENERATED, UNMODIFIED, VARIANTS_DIR, audit
from talking_head.leaderboards.columns import COLUMNS
from talking_head.metrics.runner import evaluate
from talking_head.toolkit import media
from talking_head.toolkit.cli import app

METRICS = ["psnr_ssim", "pose"]
VARIANTS = ["h264_crf18", "h264_crf28", "audio_mp2"]
SIZE = 256
IDS = ["S01/S01_000", "S01/S01_001"]


@pytest.fixture(scope="module")
def inputs(shared_sample, tmp_path_factory):
    """(generated folder, reference folder): the sample's clips, 256 px, at CRF 23 and CRF 0."""
    root = tmp_path_factory.mktemp("audit_inputs")
    clips = shared_sample(speakers=1, clips=2, seconds=1.6, seed=0)  # tests/conftest.py (test_fvd's clips)
    for clip, video_id in zip(clips, IDS):
        frames = np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for f in media.read_video(clip.video)])
        audio = media.read_audio(clip.video)
        media.write_video(root / "reference" / f"{video_id}.mp4", frames, fps=25, audio=audio, crf=0)
        media.write_video(root / "generated" / f"{video_id}.mp4", frames, fps=25, audio=audio, crf=23)
    return root / "generated", root / "reference"


@pytest.fixture(scope="module")
def audited(inputs, tmp_path_factory):
    """One audit of the inputs (3 variants), shared by the tests that read it: (out folder, report)."""
    out = tmp_path_factory.mktemp("audit") / "out"
    report = audit(*inputs, out, metrics=METRICS, variants=VARIANTS, show_progress=False)
    return out, report


def _run_files(out: Path) -> dict[str, int]:
    """mtime_ns of every file the runs wrote (re-encoded videos, summaries, records), by relative path."""
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in sorted(out.rglob("*"))
            if p.is_file() and not p.name.startswith("audit.")}


# ------------------------------------------------------------------------------------------ re-encoding
def test_reencode_makes_each_variant(inputs, tmp_path):
    source = inputs[0] / "S01" / "S01_000.mp4"
    frames = media.read_video(source)
    made = {v.name: media.reencode(source, tmp_path / f"{v.name}{v.suffix}", v) for v in media.VARIANTS}
    assert sorted(made) == sorted(["h264_crf18", "h264_crf28", "h265", "audio_mp2", "audio_opus", "fps_25_30_25",
                                   "crop_jitter_2px"])
    expected = {"h264_crf18": ("h264", "aac"), "h264_crf28": ("h264", "aac"), "h265": ("hevc", "aac"),
                "audio_mp2": ("h264", "mp2"), "audio_opus": ("h264", "opus"), "fps_25_30_25": ("h264", "aac"),
                "crop_jitter_2px": ("h264", "aac")}
    for name, path in made.items():
        info = media.probe(path)
        codecs = ({s.codec for s in info.streams if s.kind == "video"}, {s.codec for s in info.streams if s.kind == "audio"})
        assert codecs == ({expected[name][0]}, {expected[name][1]}), (name, info.streams)
        assert (info.fps, info.width, info.height) == (25.0, SIZE, SIZE), (name, info)
    assert made["audio_mp2"].suffix == ".mov"  # mp4 would tag MP2 as MPEG-1 audio, read back as "mp3"
    assert b"hvc1" in made["h265"].read_bytes()[:200_000]  # the sample entry Apple players need
    assert media.probe(made["audio_opus"]).sample_rate == 48000

    decoded = {name: media.read_video(path) for name, path in made.items()}
    for name in ("audio_mp2", "audio_opus"):  # the video stream is copied, bit for bit
        assert np.array_equal(decoded[name], frames), name
    assert abs(len(decoded["fps_25_30_25"]) - len(frames)) <= 1
    assert made["h264_crf28"].stat().st_size < made["h264_crf18"].stat().st_size

    def error(name):
        return float(np.abs(decoded[name].astype(np.int16) - frames.astype(np.int16)).mean())

    assert decoded["crop_jitter_2px"].shape == frames.shape and error("crop_jitter_2px") > 2 * error("h264_crf18") > 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary or intermediate file


def test_reencode_failure_names_the_file_and_ffmpeg_line(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(media.MediaError) as caught:
        media.reencode(bad, tmp_path / "out.mp4", "h264_crf18")
    assert str(bad) in str(caught.value) and "Invalid data" in str(caught.value) and "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.mp4"]  # nothing half-written left
    with pytest.raises(media.MediaNotFoundError):
        media.reencode(tmp_path / "missing.mp4", tmp_path / "out.mp4", "h265")
    with pytest.raises(ValueError, match="unknown re-encoding variant 'vp9'"):
        media.reencode(bad, tmp_path / "out.mp4", "vp9")


# ---------------------------------------------------------------------------------------------- the audit
def test_audit_writes_the_report(audited):
    out, report = audited
    assert [m["metric"] for m in report["metrics"]] == ["psnr", "ssim", "pose_std"]
    assert {p.name for p in out.iterdir()} >= {"audit.csv", "audit.json", "audit.html", UNMODIFIED, VARIANTS_DIR}
    for name in VARIANTS:
        videos = sorted(p.relative_to(out / VARIANTS_DIR / name / GENERATED).as_posix()
                        for p in (out / VARIANTS_DIR / name / GENERATED).rglob("*.*"))
        suffix = ".mov" if name == "audio_mp2" else ".mp4"
        assert videos == [f"{i}{suffix}" for i in IDS], name  # ids kept, so pairing still works
        assert report["runs"][name]["videos"] == 2 and report["runs"][name]["excluded"] == {}

    with open(out / "audit.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["metric"], r["variant"]) for r in rows] == [(m, v) for m in ("psnr", "ssim", "pose_std") for v in VARIANTS]
    by = {(r["metric"], r["variant"]): r for r in rows}
    for metric in report["metrics"]:
        for name, found in metric["variants"].items():
            row = by[(metric["metric"], name)]
            assert float(row["delta"]) == found["delta"] == found["value"] - metric["unmodified"]  # full precision
        assert metric["half_width"] > 0 and metric["spread"] == max(abs(v["delta"]) for v in metric["variants"].values())
        assert metric["verdict"] == ("larger" if metric["spread"] > metric["half_width"] else "smaller")

    deltas = {m["metric"]: {n: v["delta"] for n, v in m["variants"].items()} for m in report["metrics"]}
    # The audio re-encoding copies the video stream: no video metric moves.
    assert deltas["psnr"]["audio_mp2"] == deltas["ssim"]["audio_mp2"] == deltas["pose_std"]["audio_mp2"] == 0.0
    # CRF 28 loses more than CRF 18 (measured: -3.4 and -0.5 dB), and both lose something.
    assert deltas["psnr"]["h264_crf28"] < deltas["psnr"]["h264_crf18"] - 1.0 and deltas["psnr"]["h264_crf18"] < 0
    assert deltas["ssim"]["h264_crf28"] < deltas["ssim"]["h264_crf18"] < 0
    psnr = next(m for m in report["metrics"] if m["metric"] == "psnr")
    assert psnr["spread_variant"] == "h264_crf28" and psnr["verdict"] == "larger"

    record = json.loads((out / "audit.json").read_text())
    assert record["ffmpeg"]["version"].startswith("ffmpeg version ") and Path(record["ffmpeg"]["path"]).is_file()
    passes = {v["name"]: v["passes"] for v in record["variants"]}
    assert "libx264" in passes["h264_crf28"][0] and "28" in passes["h264_crf28"][0]
    assert passes["audio_mp2"] == [["-c:v", "copy", "-c:a", "mp2", "-b:a", "64k"]]
    assert record["software"]["numpy"] and set(record["weights"]) == {UNMODIFIED, *VARIANTS}
    assert record["parameters"]["metrics"] == METRICS and record["parameters"]["inputs_sha256"]["generated"]

    page = (out / "audit.html").read_text()
    assert "<table>" in page and "How much does re-encoding alone" in page and "spread" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # self-contained
    assert page.count("class='spread over'") == sum(m["verdict"] == "larger" for m in report["metrics"]) >= 1


def test_unmodified_run_is_a_plain_evaluate(audited, inputs, tmp_path):
    out, report = audited
    plain = evaluate(*inputs, metrics=METRICS, out=tmp_path / "plain", show_progress=False)
    unmodified = json.loads((out / UNMODIFIED / "summary.json").read_text())
    assert unmodified["results"] == json.loads(json.dumps(plain["results"]))
    assert unmodified["intervals"] == json.loads(json.dumps(plain["intervals"]))
    for metric in report["metrics"]:
        column = COLUMNS[metric["metric"]]
        assert metric["unmodified"] == column.value(plain)
        low, high = column.interval(plain)
        assert metric["interval"] == [low, high] and metric["half_width"] == (high - low) / 2


def test_cli_reuses_every_finished_run(audited, inputs):
    out, report = audited
    before = _run_files(out)
    assert len([name for name in before if name.endswith("audit_run.json")]) == 1 + len(VARIANTS)
    run = CliRunner().invoke(app, ["audit", "--generated", str(inputs[0]), "--reference", str(inputs[1]), "--out",
                                   str(out), "--metrics", ",".join(METRICS), "--variants", ",".join(VARIANTS), "-q"])
    assert run.exit_code == 0, run.output
    assert run.output.count("reused") == 1 + len(VARIANTS) and "re-encoding and" not in run.output
    assert "re-encoding audit: 2 videos" in run.output and "h264_crf28" in run.output and "PSNR" in run.output
    assert _run_files(out) == before  # nothing re-encoded, nothing re-scored
    again = json.loads((out / "audit.json").read_text())
    assert again["metrics"] == report["metrics"] and all(r["reused"] for r in again["runs"].values())


def test_an_unfinished_run_is_redone_and_the_others_reused(audited, inputs, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(audited[0], out)  # the runs' parameters name the inputs, not the folder: all reusable
    (out / VARIANTS_DIR / "h264_crf28" / "audit_run.json").unlink()  # as if stopped before it finished
    before = _run_files(out)
    lines: list[str] = []
    report = audit(*inputs, out, metrics=METRICS, variants=VARIANTS, show_progress=False, log=lines.append)
    assert [line.split(": ", 1)[1].split(" (")[0] for line in lines] == ["reused", "reused", "re-encoding and scoring",
                                                                       "reused"], lines
    after = _run_files(out)
    changed = sorted(name for name in before if after.get(name) != before[name])
    assert changed and all(name.startswith(f"{VARIANTS_DIR}/h264_crf28/") for name in changed)
    assert f"{VARIANTS_DIR}/h264_crf28/{GENERATED}/S01/S01_000.mp4" in changed
    assert report["metrics"] == audited[1]["metrics"]  # the same numbers again


def test_cli_errors_are_one_red_line(inputs, tmp_path):
    for args, message in ((["--variants", "h264_crf28,vp9"], "unknown re-encoding variant 'vp9'"),
                          (["--metrics", "psnr,nope"], "unknown metric 'nope'")):
        run = CliRunner().invoke(app, ["audit", "--generated", str(inputs[0]), "--reference", str(inputs[1]),
                                       "--out", str(tmp_path / "x"), *args, "-q"])
        assert run.exit_code == 1 and message in run.output and run.output.strip().startswith("error:"), run.output
        assert len(run.output.strip().splitlines()) == 1
    run = CliRunner().invoke(app, ["audit", "--generated", str(tmp_path / "missing"), "--reference", str(inputs[1]),
                                   "--out", str(tmp_path / "y"), "-q"])
    assert run.exit_code == 1 and "no such generated folder" in run.output and len(run.output.strip().splitlines()) == 1
    run = CliRunner().invoke(app, ["audit", "--generated", str(inputs[0]), "--reference", str(inputs[1]),
                                   "--out", str(inputs[0] / "audit"), "-q"])
    assert run.exit_code == 1 and "inside the generated folder" in run.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # stopped before any work
    assert not (inputs[0] / "audit").exists()
