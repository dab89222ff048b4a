"""`--landmarks68` and `--audio-features` through the whole pipeline, with weights files the test creates.

The FAN/S3FD files are face-alignment's own networks with random weights and the wav2vec 2.0 model is a
tiny random one with the real layer geometry; they sit where the registry looks, under the registry's
names, unpinned (their digests cannot be the published ones). The models are real; only their weights
are random, so these tests check shapes, alignment, storage and provenance, not landmark accuracy.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from datasets import load_from_disk

from talking_head.toolkit import audio_features
from talking_head.preprocessing.builders import sample_clips
from talking_head.preprocessing.pipeline import PreprocessConfig
from talking_head.preprocessing.runner import preprocess
from talking_head.toolkit import weights as w

pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py

TINY_WAV2VEC2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                     conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=32)


def _unpin(monkeypatch: pytest.MonkeyPatch, name: str, **changes) -> w.WeightFile:
    entry = dataclasses.replace(w.REGISTRY[name], sha256=None, size=None, **changes)
    monkeypatch.setitem(w.REGISTRY, name, entry)
    return entry


def _place_fan(monkeypatch: pytest.MonkeyPatch) -> None:
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    torch.manual_seed(0)
    for name, network in (("fan-2d", FAN(4)), ("fan-s3fd", s3fd())):
        target = w.destination(_unpin(monkeypatch, name))
        target.parent.mkdir(parents=True, exist_ok=True)
        torch.save(network.state_dict(), target)


def _place_wav2vec2(monkeypatch: pytest.MonkeyPatch) -> int:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    name = audio_features.SPEECH_MODELS["wav2vec2"][0]
    entry = _unpin(monkeypatch, name)
    snapshot = w.hf_hub_cache() / ("models--" + entry.repo_id.replace("/", "--")) / "snapshots" / entry.revision
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**TINY_WAV2VEC2)).save_pretrained(snapshot, safe_serialization=True)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(snapshot)
    (snapshot.parents[1] / "refs").mkdir(exist_ok=True)
    (snapshot.parents[1] / "refs" / "main").write_text(entry.revision)
    return TINY_WAV2VEC2["hidden_size"]


@pytest.mark.slow  # ~14 CPU s: FAN and a speech model per frame
def test_landmarks68_and_speech_features_in_the_dataset(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    _place_fan(monkeypatch)
    width = _place_wav2vec2(monkeypatch)
    sources, _ = sample_clips(tmp_path / "raw", speakers=1, clips=1, seconds=1.0, seed=5)
    sources = [dataclasses.replace(sources[0], start=0.0, end=0.6)]  # 15 frames: FAN takes ~0.5 s a frame on CPU
    config = PreprocessConfig(size=256, landmarks68=True, audio_features="wav2vec2")
    dataset, summary = preprocess(sources, tmp_path / "out", config, test_fraction=0.0, show_progress=False)
    assert not summary.failed and len(summary.done) == 1

    loaded = load_from_disk(str(tmp_path / "out"))
    assert len(loaded["test"]) == 0  # an empty split (test_fraction 0) must load back, schema intact
    assert loaded["test"].features == loaded["train"].features
    (row,) = loaded["train"].with_format("numpy")
    frames = int(row["num_frames"])
    assert frames == 15
    assert row["landmarks68"].shape == (frames, 68, 2) and row["landmarks68"].dtype == np.float32
    assert np.all(np.isfinite(row["landmarks68"]))
    assert np.all((row["landmarks68"] >= 0) & (row["landmarks68"] <= 256))  # crop pixels, inside the crop
    assert row["audio_features"].shape == (frames, width) and np.all(np.isfinite(row["audio_features"]))

    meta = summary.done[0]
    assert meta["landmarks68_model"]["fan_sha256"] == w.verify(w.REGISTRY["fan-2d"]).actual_sha256
    assert meta["audio_features_model"]["model"] == "wav2vec2"
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "landmarks68" in card and "audio_features" in card
