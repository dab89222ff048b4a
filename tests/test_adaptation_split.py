"""Per-identity adaptation splits (MODA's protocol): each test clip cut into its first 80% (split ``adapt``, on
which a person's renderer trains) and the rest (the test split, which is generated and scored)."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from typer.testing import CliRunner

from talking_head.baselines.moda import load_config
from talking_head.baselines.moda.renderer_data import RendererFrames, identity_runs
from talking_head.leaderboards import recipe_training, reproduce
from talking_head.preprocessing.adaptation import ADAPT_SUFFIX, cut_for_adaptation
from talking_head.preprocessing.clip import ClipSource
from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate
from hdtf_stand_in import HDTF_TEST, HDTF_TRAIN, stand_in_hdtf

SECONDS, FPS = 2.0, 25  # 50 frames a clip: 40 adapt, 10 test


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt")
    clips = generate(root / "sample", speakers=3, clips=1, seconds=SECONDS, seed=3, show_progress=False)
    folder = root / "videos"
    for clip in clips:
        (folder / clip.speaker).mkdir(parents=True, exist_ok=True)
        shutil.copy(clip.video, folder / clip.speaker / "talk.mp4")
    return folder


@pytest.fixture(scope="module")
def adapted(videos):
    out = videos.parent / "dataset"
    run = CliRunner().invoke(app, ["preprocess", "--dataset", "folder", "--input", str(videos), "--out", str(out),
                                   "--size", "256", "--fps", str(FPS), "--test-fraction", "0.5",
                                   "--adapt-fraction", "0.8", "-q"])
    assert run.exit_code == 0, run.output
    return out


def _rows(dataset_dir, split):
    rows = schema.load_split(dataset_dir, split)
    return {r[schema.CLIP_ID]: r for r in rows.remove_columns([schema.VIDEO])}


def test_test_clips_are_cut_into_adapt_and_test_parts(adapted):
    train, test, adapt = (_rows(adapted, s) for s in ("train", "test", schema.ADAPT_SPLIT))
    assert train and test, "the 0.5 test fraction puts some of the 3 speakers on each side"
    assert set(adapt) == {clip + ADAPT_SUFFIX for clip in test}
    test_speakers = {r[schema.SPEAKER] for r in test.values()}
    assert {r[schema.SPEAKER] for r in adapt.values()} == test_speakers
    assert not test_speakers & {r[schema.SPEAKER] for r in train.values()}  # train stays identity-disjoint
    for clip, row in test.items():
        first = adapt[clip + ADAPT_SUFFIX]
        # 50 frames at 25 fps: the first 40 adapt, the last 10 are tested; the audio follows the frames
        assert (first[schema.NUM_FRAMES], row[schema.NUM_FRAMES]) == (40, 10)
        assert (len(first[schema.AUDIO]), len(row[schema.AUDIO])) == (40 * 640, 10 * 640)
        source, adapt_source = json.loads(row[schema.SOURCE]), json.loads(first[schema.SOURCE])
        assert adapt_source["end"] == pytest.approx(1.6) and source["start"] == pytest.approx(1.6)
        assert source["extra"]["adapted_on"] == clip + ADAPT_SUFFIX and adapt_source["extra"]["adapt_of"] == clip
    for row in train.values():
        assert row[schema.NUM_FRAMES] == 50
    card = (adapted / "README.md").read_text(encoding="utf-8")
    assert f"| {schema.ADAPT_SPLIT} | {len(adapt)} |" in card and '"adapt_fraction": 0.8' in card


def test_renderers_train_on_each_test_persons_adapt_part(adapted):
    config = load_config("tiny", "renderer", ["data.split=adapt", "data.speaker=null", "data.train_fraction=1.0"])
    runs = identity_runs(config, adapted)
    test_speakers = sorted({r[schema.SPEAKER] for r in _rows(adapted, "test").values()})
    assert [identity for identity, _ in runs] == test_speakers
    frames = RendererFrames(runs[0][1], adapted)
    assert [c["clip_id"] for c in frames.clips] == [f"{runs[0][0]}__talk{ADAPT_SUFFIX}"]
    clip = frames.clips[0]
    assert len(clip["frames"]) == 40 and not clip["validation"] and max(clip["train"]) < 40


def test_a_dataset_without_the_adapt_split_is_refused_before_any_work(preprocessed_sample, tmp_path):
    config = load_config("tiny", "renderer", ["data.split=adapt", "data.speaker=S01", "data.train_fraction=1.0"])
    with pytest.raises(ValueError, match=r"no split 'adapt'.*--adapt-fraction 0\.8"):
        RendererFrames(config, preprocessed_sample)
    missing = reproduce.missing_inputs(reproduce.RECIPES["moda-hdtf"], tmp_path,
                                       reproduce.Inputs(dataset=preprocessed_sample))
    lines = [f"{what} | {how}" for what, how in missing if "'adapt' split" in what]
    assert len(lines) == 1 and "--fps 30 --adapt-fraction 0.8" in lines[0], missing


def test_paper_renderer_follows_the_protocol():
    data = load_config("paper", "renderer")["data"]
    assert (data["split"], data["speaker"], data["train_fraction"]) == (schema.ADAPT_SPLIT, None, 1.0)
    assert reproduce.RECIPES["moda-hdtf"].data.adapt_fraction == 0.8


def test_cut_on_the_frame_grid_and_problems(videos, tmp_path):
    video = next(videos.rglob("*.mp4"))
    sources = [
        ClipSource("hdtf", "AdamSchiff", "WDA_AdamSchiff_000", video, start=30.0, end=60.0, split="test"),
        ClipSource("hdtf", "Radio", "RD_Radio11_000", video, start=0.0, end=10.0, split="train"),
        ClipSource("folder", "S9", "S9__whole", video, split="test"),  # no end: the container's duration
        ClipSource("folder", "S8", "S8__blink", video, start=0.0, end=0.04, split="test"),  # one frame: too short
    ]
    out, problems = cut_for_adaptation(sources, 0.8, 30.0)
    by_id = {s.clip_id: s for s in out}
    assert set(by_id) == {"WDA_AdamSchiff_000-adapt", "WDA_AdamSchiff_000", "RD_Radio11_000", "S9__whole-adapt",
                          "S9__whole"}
    first, rest = by_id["WDA_AdamSchiff_000-adapt"], by_id["WDA_AdamSchiff_000"]
    assert (first.start, first.end, first.split) == (30.0, 54.0, schema.ADAPT_SPLIT)  # 900 frames: 720 + 180
    assert (rest.start, rest.end, rest.split) == (54.0, 60.0, "test")
    assert by_id["RD_Radio11_000"] == sources[1]
    frames = round(media.probe(video).duration * 30)  # the container's duration on the 30 fps grid
    assert by_id["S9__whole-adapt"].end == math.floor(0.8 * frames) / 30 == by_id["S9__whole"].start
    assert len(problems) == 1 and problems[0].startswith("S8__blink: 1 frame(s) at 30 fps are too few")
    with pytest.raises(ValueError, match="between 0 and 1"):
        cut_for_adaptation(sources, 1.0, 30.0)


def test_cli_refuses_a_fraction_outside_zero_and_one(videos, tmp_path):
    run = CliRunner().invoke(app, ["preprocess", "--dataset", "folder", "--input", str(videos), "--out",
                                   str(tmp_path / "out"), "--adapt-fraction", "1.5", "-q"])
    assert run.exit_code == 2 and "must be between 0 and 1, got 1.5" in run.output


def test_moda_hdtf_plans_a_renderer_per_test_identity_on_a_stand_in_hdtf_tree(tmp_path):
    clips = generate(tmp_path / "sample", speakers=4, clips=1, seconds=SECONDS, seed=4, show_progress=False)
    annotations, raw = stand_in_hdtf(tmp_path, clips, int(SECONDS))
    recipe, work, steps = reproduce.RECIPES["moda-hdtf"], tmp_path / "work", []
    dataset = reproduce._prepare_dataset(recipe, work, reproduce.Inputs(raw=raw, annotations=annotations),
                                         steps.append, show_progress=False)
    # The shipped split lists 41 test clips this tree does not hold, and RD/WRA have no files: recorded, not fatal
    assert "preprocessed 6 clips" in steps[0] and "failed or skipped" in steps[0], steps
    train, test, adapt = (_rows(dataset, s) for s in ("train", "test", schema.ADAPT_SPLIT))
    assert sorted(train) == [f"WDA_{n}_000" for n in HDTF_TRAIN]
    assert sorted(test) == [f"WDA_{n}_000" for n in HDTF_TEST]
    assert sorted(adapt) == [f"WDA_{n}_000{ADAPT_SUFFIX}" for n in HDTF_TEST]
    for clip, row in test.items():  # 2 s at MODA's 30 fps: 48 frames fit the renderer, 12 are scored
        assert (adapt[clip + ADAPT_SUFFIX][schema.NUM_FRAMES], row[schema.NUM_FRAMES]) == (48, 12)
    plan = recipe_training.stage_runs(recipe, "moda", dataset, work / "checkpoints" / "moda")
    assert [label for label, *_ in plan] == ["motion", "faco", *(f"renderer [{n}]" for n in sorted(HDTF_TEST))]
    for label, folder, config, stage in plan[2:]:
        assert folder.parent.name == "renderer" and folder.name == config["data"]["speaker"]
        assert config["data"]["split"] == schema.ADAPT_SPLIT
