"""talking_head.leaderboards.videos and the page's Videos section, watched in headless Chromium (tests/browser.py).

Three real runs of `metrics.runner.evaluate` (pose and LMD: cheap, and they consume MediaPipe meshes) on the
built-in sample's two clips: "truth" (the reference clips themselves, in RUN/generated as `toolkit evaluate
--model` writes them), "shifted" (clip 0 moved 10 px right and 6 px down and re-encoded, clip 1 a truncated
file that the runner excludes; scored with paths relative to the folder evaluate ran in) and "moved" (scored,
then its generated folder deleted: "video not found"). The runner writes the meshes the landmark metrics saw
(RUN/landmarks/<video_id>.npz), which the page's overlay draws.
"""

from __future__ import annotations

import base64
import csv
import json
import math
import os
import shutil
import struct
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from browser import Browser, chromium_path
from talking_head.leaderboards import render, videos
from talking_head.leaderboards.runs import leaderboard_from_runs
from talking_head.toolkit import media

FPS = 25
SHIFT = (10, 6)  # x, y pixels: the shifted run's frames and hence its meshes
METRICS = ["pose", "lmd"]
CLIPS = ["S01_000", "S01_001"]
# The page's videos: every one loaded (readyState >= 2: the current frame is decoded).
VIDEOS = "[...document.querySelectorAll('#video-grid video')]"
STATE = f"{VIDEOS}.map((v) => ({{t: v.currentTime, paused: v.paused, ready: v.readyState, seeking: v.seeking}}))"
ALL_READY = f"{VIDEOS}.length && {VIDEOS}.every((v) => v.readyState >= 2)"
CANVASES = "[...document.querySelectorAll('#video-grid canvas')]"  # the landmark overlays, one per player


def _evaluate(generated, reference, out) -> None:
    from talking_head.metrics.runner import evaluate

    evaluate(generated, reference, metrics=METRICS, out=out, bootstrap=0, show_progress=False)


def _scored(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "per_video.csv", newline="", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["status"] == "scored"]


@pytest.fixture(scope="module")
def work(shared_sample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    clips = shared_sample(speakers=1, clips=2, seconds=1.6, seed=0)  # tests/conftest.py; test_fvd's clips
    work = tmp_path_factory.mktemp("work")
    reference = work / "reference"
    reference.mkdir()
    for clip in clips:
        shutil.copy(clip.video, reference / f"{clip.clip_id}.mp4")
    runs = work / "runs"

    truth = runs / "truth" / "generated"
    shutil.copytree(reference, truth)
    _evaluate(truth, reference, runs / "truth")

    shifted = work / "shifted"
    shifted.mkdir()
    frames = media.read_video(reference / "S01_000.mp4", fps=FPS)
    media.write_video(shifted / "S01_000.mp4", np.roll(frames, SHIFT[::-1], axis=(1, 2)), fps=FPS)
    (shifted / "S01_001.mp4").write_bytes((reference / "S01_001.mp4").read_bytes()[:2000])  # excluded
    cwd = os.getcwd()
    os.chdir(work)  # per_video.csv then holds paths relative to `work`, as when evaluate runs in a project
    try:
        _evaluate("shifted", "reference", "runs/shifted")
    finally:
        os.chdir(cwd)

    elsewhere = work / "elsewhere"
    shutil.copytree(reference, elsewhere)
    _evaluate(elsewhere, reference, runs / "moved")
    shutil.rmtree(elsewhere)
    for run in ("truth", "shifted", "moved"):  # the meshes the runner saw, one file per scored video
        assert sorted(p.stem for p in (runs / run / videos.LANDMARKS).glob("*.npz")) == \
            [row["video_id"] for row in _scored(runs / run)]
    return work


@pytest.fixture(scope="module")
def board(work: Path):
    return leaderboard_from_runs(work / "runs", title="Videos")


@pytest.fixture(scope="module")
def site(board, work: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    render.write_all(board, out, runs=work / "runs")
    return out


@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:  # the page test of test_leaderboard_render skips the same way
        pytest.fail("Chromium is not installed: apt-get install chromium")
    with Browser(flags=["--autoplay-policy=no-user-gesture-required"]) as browser:
        yield browser


def _page(browser: Browser, html: Path):
    page = browser.new_page(width=1280, height=900)
    page.goto(html.resolve().as_uri())
    page.wait_for(ALL_READY, timeout=15)
    return page


def _expected_values(row: dict[str, str]) -> dict[str, float]:
    """The board columns' per-video values, straight from per_video.csv: Pose std is the mean of the three
    angles' stds (PoseVideos.video_means), the LMD columns are per_video.csv's columns of the same key."""
    def mean(*names):
        values = [float(row[n]) for n in names if row[n] != ""]
        return sum(values) / len(values)
    return {"pose_std": mean("pose_yaw_std", "pose_pitch_std", "pose_roll_std"), "m_lmd": mean("mouth_lmd"),
            "f_lmd": mean("face_lmd"), "m_lmd_v": mean("mouth_lmd_v"), "f_lmd_v": mean("face_lmd_v")}


# -- what the page embeds ---------------------------------------------------------------------------------


def test_collect(board, work: Path, site: Path):
    data = json.loads((site / "index.html").read_text(encoding="utf-8")
                      .split('id="leaderboard-data">', 1)[1].split("</script>", 1)[0])["videos"]
    assert [c["id"] for c in data["clips"]] == CLIPS
    labels = [r.label for r in board.rows]
    by_clip = {c["id"]: c for c in data["clips"]}
    assert [labels[g["row"]] for g in by_clip["S01_000"]["generated"]] == ["moved", "shifted", "truth"]
    assert [labels[g["row"]] for g in by_clip["S01_001"]["generated"]] == ["moved", "truth"]  # shifted's: excluded
    for clip in data["clips"]:
        shown = (site / urllib.parse.unquote(clip["reference"]["src"])).resolve()
        assert shown == (work / "reference" / f"{clip['id']}.mp4").resolve()
        for entry in clip["generated"]:
            run = labels[entry["row"]]
            if run == "moved":
                assert entry["src"] is None and entry["missing"] == str(work / "elsewhere" / f"{clip['id']}.mp4")
                continue
            folder = {"truth": work / "runs" / "truth" / "generated", "shifted": work / "shifted"}[run]
            assert (site / urllib.parse.unquote(entry["src"])).resolve() == (folder / f"{clip['id']}.mp4").resolve()
            row = next(r for r in _scored(work / "runs" / run) if r["video_id"] == clip["id"])
            shown = {v["column"]: v["value"] for v in entry["values"]}
            assert shown.keys() == {c.id for c in board.columns}
            for column, value in _expected_values(row).items():
                assert shown[column] == pytest.approx(value, rel=1e-12), (run, column)

    # The mesh files hold the npz's coordinates (uint16 steps of the face's extent: well under a pixel).
    entry = by_clip["S01_000"]["generated"][1]
    script = (site / entry["mesh"]["src"]).read_text(encoding="utf-8")
    assert script.startswith(f"{data['register']}({json.dumps(entry['mesh']['key'])}, ")
    mesh = json.loads(script[script.index(", ") + 2:script.rindex(")")])
    with np.load(work / "runs" / "shifted" / "landmarks" / "S01_000.npz") as saved:
        for side in ("generated", "reference"):
            codes = np.frombuffer(base64.b64decode(mesh[side]["data"]), "<u2").reshape(saved[side].shape)
            decoded = np.where(codes == videos.NAN_CODE, np.nan,
                               mesh[side]["low"] + codes / (videos.NAN_CODE - 1.0) * np.asarray(mesh[side]["span"]))
            expected = saved[side].astype(np.float64)
            assert np.array_equal(np.isnan(decoded), np.isnan(expected))
            assert np.nanmax(np.abs(decoded - expected)) < 1e-4
    assert set(data["connections"]) == set(videos.CONTOURS)


# -- the page in Chromium ---------------------------------------------------------------------------------


def test_one_control_plays_pauses_and_seeks_every_player(browser: Browser, site: Path):
    page = _page(browser, site / "index.html")
    try:
        assert page.evaluate(f"{VIDEOS}.length") == 3  # S01_000: the reference, truth and shifted (moved: missing)
        assert page.evaluate(f"{VIDEOS}.every((v) => v.muted && v.paused && !v.controls)")
        assert all(url.startswith("file://") for url in page.requests)  # nothing from the network
        assert not [url for url in page.requests if url.endswith(videos.MESH_SUFFIX)]  # loaded only when asked

        page.click("#video-play")
        page.wait_for(f"{VIDEOS}.every((v) => !v.paused && v.currentTime > 0.2)", timeout=10)
        spread = []  # drift between the players while they play, read in one script turn
        for _ in range(8):
            times = [s["t"] for s in page.evaluate(STATE)]
            spread.append(max(times) - min(times))
            page.evaluate("new Promise((resolve) => setTimeout(resolve, 60))")
        print(f"spread while playing: median {np.median(spread) * 1000:.1f} ms, largest {max(spread) * 1000:.1f} ms")
        # The followers are steered towards the leader while playing (a stall of the loaded machine may show in
        # one sample: the median holds them to about two frames, the largest to the re-seek threshold).
        assert np.median(spread) < 0.08 and max(spread) < 0.25, spread

        page.click("#video-play")  # the same control pauses
        state = page.wait_for(f"{VIDEOS}.every((v) => v.paused && !v.seeking) && {STATE}")
        assert all(s["paused"] for s in state)
        assert max(s["t"] for s in state) - min(s["t"] for s in state) < 1e-3  # paused on the leader's frame
        assert page.evaluate("document.getElementById('video-play').textContent") == "▶ Play"

        page.click("#video-seek", at=(0.3, 0.5))  # a point along the slider, as a user would
        target = float(page.evaluate("document.getElementById('video-seek').value"))
        assert 0.2 < target < 1.0
        state = page.wait_for(f"{VIDEOS}.every((v) => !v.seeking && v.readyState >= 2) && {STATE}")
        errors = [abs(s["t"] - target) for s in state]
        print(f"sync error after seeking to {target:.3f} s: {max(errors) * 1000:.2f} ms")
        assert max(errors) <= 1 / FPS + 0.05, (target, state)
        frame = math.floor(target * FPS + 1e-6) + 1
        assert page.evaluate("document.getElementById('video-time').textContent") == \
            f"{target:.2f} / 1.60 s · frame {frame} / 40"
        assert all(s["paused"] for s in state)

        page.click("#video-forward")  # one frame on, every player
        state = page.wait_for(f"{VIDEOS}.every((v) => !v.seeking) && {STATE}")
        assert [round(s["t"] * FPS - 0.5) for s in state] == [frame] * 3
        assert browser.events("Runtime.exceptionThrown", page.session_id) == []
    finally:
        page.close()


def test_values_beside_each_generated_clip(browser: Browser, board, work: Path, site: Path):
    page = _page(browser, site / "index.html")
    read_tiles = """[...document.querySelectorAll('#video-grid figure')].map((f) => ({
        side: f.dataset.side, caption: f.querySelector('figcaption').textContent,
        missing: f.querySelector('.video-missing')?.textContent ?? null,
        values: Object.fromEntries([...f.querySelectorAll('dd')].map((dd) => [dd.dataset.column,
                                                                         [dd.textContent, dd.dataset.value]]))}))"""
    try:
        decimals = {c.id: render.column_decimals(board, c) for c in board.columns}
        for clip, runs in (("S01_000", ["moved", "shifted", "truth"]), ("S01_001", ["moved", "truth"])):
            page.evaluate(f"""(() => {{ const select = document.getElementById('video-clip');
                select.value = [...select.options].findIndex((o) => o.text.startsWith('{clip}'));
                select.dispatchEvent(new Event('change')); }})()""")
            page.wait_for(ALL_READY)
            tiles = page.evaluate(read_tiles)
            assert [t["side"] for t in tiles] == ["reference"] + ["generated"] * len(runs)
            assert [t["caption"] for t in tiles] == ["Ground truth (reference)", *runs]
            assert tiles[0]["values"] == {}
            for run, shown in zip(runs, tiles[1:]):
                row = next(r for r in _scored(work / "runs" / run) if r["video_id"] == clip)
                if run == "moved":
                    assert shown["missing"] == f"video not found: {row['generated']}"
                for column, value in _expected_values(row).items():
                    text, raw = shown["values"][column]
                    assert text == f"{value:.{decimals[column]}f}" and float(raw) == pytest.approx(value, rel=1e-12)
            assert page.evaluate(f"{VIDEOS}.length") == len(runs)  # the reference and the runs found
    finally:
        page.close()


def test_table_shows_ground_truth_normalised_scores(browser: Browser, board, site: Path):
    """A row's ground-truth-normalised scores (Row.normalised: Pose std here, a statistic to match with the ground
    truth) under its values in the table, and nothing where a row has none."""
    expected = {(row.label, column): f"GT-norm {score:.2f}" for row in board.rows
                for column, score in row.normalised.items() if score is not None}
    assert expected  # the runs' Pose std has one
    page = _page(browser, site / "index.html")
    try:
        shown = page.evaluate("""Object.fromEntries([...document.querySelectorAll("#leaderboard tbody td")]
            .filter((td) => td.querySelector(".normalised"))
            .map((td) => [td.parentElement.dataset.label + "|" + td.dataset.column,
                          td.querySelector(".normalised").textContent]))""")
    finally:
        page.close()
    assert shown == {f"{label}|{column}": text for (label, column), text in expected.items()}


def _drawn_box(page, index: int):
    """(pixels drawn, [x0, y0, x1, y1] of them) on the overlay canvas of the index-th player."""
    return page.evaluate(f"""(() => {{
        const canvas = document.querySelectorAll('#video-grid canvas')[{index}];
        const {{width, height}} = canvas;
        const alpha = canvas.getContext('2d').getImageData(0, 0, width, height).data;
        let count = 0, x0 = width, y0 = height, x1 = -1, y1 = -1;
        for (let i = 3; i < alpha.length; i += 4) {{
            if (!alpha[i]) continue;
            const x = ((i - 3) / 4) % width, y = Math.floor((i - 3) / 4 / width);
            count++; x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
        }}
        return [count, [x0, y0, x1, y1], Number(canvas.dataset.frame), canvas.hidden];
    }})()""")


def test_landmark_overlay(browser: Browser, work: Path, site: Path):
    page = _page(browser, site / "index.html")
    try:
        page.click("#video-seek", at=(0.55, 0.5))
        target = float(page.evaluate("document.getElementById('video-seek').value"))
        frame = math.floor(target * FPS + 1e-6)
        page.wait_for(f"{VIDEOS}.every((v) => !v.seeking)")
        assert page.evaluate(f"{CANVASES}.every((c) => c.hidden)")

        page.click("#video-landmarks")
        page.wait_for(f"{CANVASES}.every((c) => c.dataset.frame === '{frame}')")
        # Each player's own run's file, once: the reference's mesh is the first run's with one (moved's: its
        # generated video is gone, so that player draws nothing and loads nothing of its own).
        assert sorted("/".join(url.split("/")[-2:]) for url in page.requests if url.endswith(videos.MESH_SUFFIX)) == \
            ["moved/S01_000.mesh.js", "shifted/S01_000.mesh.js", "truth/S01_000.mesh.js"]
        with np.load(work / "runs" / "shifted" / "landmarks" / "S01_000.npz") as saved:
            meshes = {"reference": saved["reference"][frame], "shifted": saved["generated"][frame]}
        boxes = {}
        for index, side in ((0, "reference"), (1, "shifted")):  # players: reference, shifted, truth
            count, box, drawn_frame, hidden = _drawn_box(page, index)
            assert not hidden and drawn_frame == frame
            assert count > 500  # contours and 478 points, not an empty canvas
            points = meshes[side].astype(np.float64) * 512  # the sample is 512 x 512
            expected = [*points.min(axis=0), *points.max(axis=0)]
            assert np.allclose(box, expected, atol=4), (side, box, expected)  # the mesh of this frame, here
            boxes[side] = np.asarray(box)
        shift = (boxes["shifted"] - boxes["reference"]).reshape(2, 2).mean(axis=0)
        assert np.allclose(shift, SHIFT, atol=2), shift  # each player draws its own side's mesh

        page.click("#video-landmarks")  # off again
        assert page.evaluate(f"{CANVASES}.every((c) => c.hidden)")
        assert browser.events("Runtime.exceptionThrown", page.session_id) == []
    finally:
        page.close()


def test_screenshot_of_the_video_section(browser: Browser, site: Path, tmp_path: Path):
    page = _page(browser, site / "index.html")
    try:
        page.click("#video-seek", at=(0.4, 0.5))
        page.click("#video-landmarks")
        page.wait_for(f"{CANVASES}.every((c) => c.dataset.frame)")
        png = page.screenshot(tmp_path / "leaderboard-videos.png", selector="#videos").read_bytes()
    finally:
        page.close()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 300, (width, height)
    from PIL import Image

    image = np.asarray(Image.open(tmp_path / "leaderboard-videos.png").convert("RGB"))
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 2000  # video frames drawn, not a blank section


def test_bundle_plays_without_the_runs(browser: Browser, work: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from talking_head.toolkit.cli import app

    out = tmp_path / "bundle"
    result = CliRunner().invoke(app, ["leaderboard", "--runs", str(work / "runs"), "--out", str(out), "--bundle"])
    assert result.exit_code == 0, result.output
    copies = sorted(p.relative_to(out / "media").as_posix() for p in (out / "media").rglob("*.mp4"))
    assert copies == ["reference/S01_000.mp4", "reference/S01_001.mp4", "runs/shifted/S01_000.mp4",
                      "runs/truth/S01_000.mp4", "runs/truth/S01_001.mp4"]  # moved's videos are gone: none
    moved = work.with_name(work.name + "-away")
    work.rename(moved)  # the runs and every video they name are gone from where the page was made
    try:
        page = _page(browser, out / "index.html")
        try:
            sources = page.evaluate(f"{VIDEOS}.map((v) => v.currentSrc)")
            assert len(sources) == 3 and all(s.startswith((out / "media").as_uri() + "/") for s in sources)
            page.click("#video-play")
            page.wait_for(f"{VIDEOS}.every((v) => !v.paused && v.currentTime > 0.2)", timeout=10)
            page.click("#video-landmarks")  # the landmark files are in the bundle too
            page.wait_for(f"{CANVASES}.every((c) => c.dataset.frame)")
            assert browser.events("Runtime.exceptionThrown", page.session_id) == []
        finally:
            page.close()

        # Unbundled, from the moved folder: truth's videos are its own copy (RUN/generated), shifted's relative
        # paths hold under the runs' parent as they did, the absolute paths of the others point nowhere now. The
        # reference shifted found and the one the others name are two comparisons of S01_000.
        data = videos.collect(leaderboard_from_runs(moved / "runs"), moved / "runs", tmp_path / "again", {})
        relative = lambda path: os.path.relpath(moved / path, tmp_path / "again")  # noqa: E731
        shown = [(c["label"], c["reference"]["src"] and urllib.parse.unquote(c["reference"]["src"]),
                  {g["label"]: g["src"] and urllib.parse.unquote(g["src"]) for g in c["generated"]})
                 for c in data["clips"] if c["id"] == "S01_000"]
        truth, shifted = relative("runs/truth/generated/S01_000.mp4"), relative("shifted/S01_000.mp4")
        assert shown == [("S01_000 (reference 1 of 2)", None, {"moved": None, "truth": truth}),  # in row order
                         ("S01_000 (reference 2 of 2)", relative("reference/S01_000.mp4"), {"shifted": shifted})]
    finally:
        moved.rename(work)
