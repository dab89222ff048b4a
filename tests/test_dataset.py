"""The dataset schema (toolkit.dataset): version written and checked, features, a row's video read back."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media


@pytest.fixture
def saved(tmp_path):
    """A one-row dataset with the schema's features, saved and versioned as preprocessing saves one."""
    frames = np.random.default_rng(0).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    video = media.write_video(tmp_path / "clip.mp4", frames, fps=25).read_bytes()
    features = schema.features()
    row = {name: None for name in features}
    row.update({schema.CLIP_ID: "S01_000", schema.VIDEO: video, schema.NUM_FRAMES: 6, schema.AUDIO: [0, 1]})
    part = Dataset.from_list([row], features=features)
    out = tmp_path / "dataset"
    DatasetDict({"train": part}).save_to_disk(str(out))
    schema.write_schema_version(out)
    return out, video


def test_load_checks_the_schema_version(saved) -> None:
    out, _ = saved
    assert json.loads((out / schema.SCHEMA_FILE).read_text()) == {"schema_version": schema.SCHEMA_VERSION}
    assert schema.load_split(out, "train")[0][schema.CLIP_ID] == "S01_000"
    with pytest.raises(ValueError, match=r"no split 'test' \(splits: train\)"):
        schema.load_split(out, "test")
    (out / schema.SCHEMA_FILE).write_text(json.dumps({"schema_version": schema.SCHEMA_VERSION + 1}))
    with pytest.raises(ValueError, match=f"schema version {schema.SCHEMA_VERSION + 1}, but this toolkit reads"):
        schema.load(out)
    (out / schema.SCHEMA_FILE).unlink()
    with pytest.raises(ValueError, match="predates schema version"):
        schema.load(out)
    with pytest.raises(ValueError, match="not a preprocessed dataset"):
        schema.load(out / "train")


def test_optional_features_follow_what_was_computed() -> None:
    assert schema.LANDMARKS68 not in schema.features() and schema.AUDIO_FEATURES not in schema.features()
    chosen = schema.features(landmarks68=True, audio_features_dim=768)
    assert chosen[schema.AUDIO_FEATURES].shape == (None, 768) and schema.LANDMARKS68 in chosen
    assert list(chosen) == [*schema.features(), schema.LANDMARKS68, schema.AUDIO_FEATURES]  # optional ones last


def test_row_video_reads_back_the_stored_frames(saved, tmp_path) -> None:
    out, video = saved
    stored = schema.load_split(out, "train")[0][schema.VIDEO]
    assert stored == video
    with schema.open_row_video(stored) as reader:
        frames = reader.read_all()
    assert frames.shape == (6, 32, 32, 3)
    cached = schema.write_row_video(stored, tmp_path / "cache" / "S01_000.mp4")
    before = cached.stat().st_mtime_ns
    assert schema.write_row_video(stored, cached) == cached and cached.stat().st_mtime_ns == before  # kept
    with media.VideoReader(cached, fps=None) as reader:
        np.testing.assert_array_equal(reader.read_all(), frames)
