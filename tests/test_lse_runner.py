"""`toolkit evaluate --metrics lse` against syncnet-python 0.2.3's ``SyncNetInstance.evaluate``.

The runner's default frame chain (``--lse-frames ffmpeg_jpeg``) scores the JPEGs ffmpeg dumps, as the
reference does, so on the same crop video with the same ffmpeg binary it gives the reference's numbers;
each reference video is scored once and then read from the cache (counted on the real SyncNet's layers).
``--lse-frames decoded`` scores the decoded frames and says so. The weights are random but real in every
other respect (tests/test_lse.py explains them).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess

import numpy as np

import pytest
import torch
from typer.testing import CliRunner

import weights_factory as factory
from talking_head.metrics import lse as lse_module
from talking_head.metrics import lse_score
from talking_head.metrics.lse import LSEVideos, score_video
from talking_head.metrics.runner import evaluate
from talking_head.metrics.syncnet import SyncNet
from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from test_lse import _face_crops, _reference_evaluate

SECONDS = 2.0  # 50 frames -> 45 windows


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, shared_sample) -> dict:
    """A 224x224 25 fps crop video with audio, as the generated and the reference folder, and SyncNet weights."""
    root = tmp_path_factory.mktemp("lse-runner")
    clip = shared_sample(speakers=1, clips=1, seconds=3.0, seed=0)[0]  # the clip tests/test_lse.py crops
    frames = int(SECONDS * 25)
    crops = _face_crops(media.read_video(clip.video), clip.load_ground_truth()["landmarks"])[:frames]
    audio = media.read_audio(clip.audio)[: int(SECONDS * 16000)]
    video = media.write_video(root / "reference" / "crop.mp4", crops, fps=25, audio=audio, sample_rate=16000)
    (root / "generated").mkdir()
    shutil.copyfile(video, root / "generated" / "crop.mp4")
    state = factory.syncnet(crops, media.read_audio(video, dtype="int16"))
    weights_file = root / "syncnet_v2.model"
    torch.save(state, weights_file, _use_new_zipfile_serialization=False)  # legacy format, as the 2017 file
    return {"root": root, "video": video, "frames": frames, "weights": weights_file, "state": state}


@pytest.fixture
def weights(data, isolated_caches, monkeypatch: pytest.MonkeyPatch) -> None:
    factory.place(monkeypatch, "syncnet", data["state"])


@pytest.fixture
def ffmpeg_on_path(tmp_path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The reference shells out to `ffmpeg`: the binary the toolkit's chain runs, on PATH under that name."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(lse_score.ffmpeg_exe(), bin_dir / "ffmpeg")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return lse_score.ffmpeg_exe()


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> dict:
    """Rows through the real SyncNet's lip and audio heads, counted by forward hooks on every model loaded."""
    counts = {"lip": 0, "audio": 0}
    load = SyncNet.from_pretrained.__func__

    def counted(cls, device="cpu"):
        model = load(cls, device)
        model.netfclip.register_forward_hook(lambda m, args, out: counts.__setitem__("lip", counts["lip"] + len(out)))
        model.netfcaud.register_forward_hook(lambda m, args, out: counts.__setitem__("audio", counts["audio"] + len(out)))
        return model

    monkeypatch.setattr(SyncNet, "from_pretrained", classmethod(counted))
    return counts


def _rows(run) -> list[dict]:
    with open(run / "per_video.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # ~12 CPU s: the runner twice and the reference scorer with its JPEG round trip
def test_default_chain_equals_syncnet_instance_evaluate_and_caches_the_reference(
        data, weights, ffmpeg_on_path, embedded, tmp_path, monkeypatch) -> None:
    root = data["root"]
    first = evaluate(root / "generated", root / "reference", metrics=["lse"], out=tmp_path / "run1",
                     show_progress=False)
    used = dict(embedded)
    reference = _reference_evaluate(data["video"], tmp_path / "ref", data["weights"], monkeypatch)

    lse = first["results"]["lse"]
    print(f"runner {lse['lse_d']:.6f} / {lse['lse_c']:.6f}, SyncNetInstance.evaluate {reference['lse_d']:.6f} / "
          f"{reference['lse_c']:.6f}")
    for side in (lse, lse["reference"]):
        assert side["lse_d"] == pytest.approx(reference["lse_d"], rel=1e-4)
        assert side["lse_c"] == pytest.approx(reference["lse_c"], rel=1e-4)
    (row,) = _rows(tmp_path / "run1")
    assert int(row["lse_offset"]) == int(row["reference_lse_offset"]) == reference["offset"]

    # summary.json says which chain ran and which ffmpeg made the JPEGs, without its path.
    config = first["config"]["lse"]
    assert first["options"]["lse_frames"] == "ffmpeg_jpeg" and config["frames"] == "ffmpeg_jpeg"
    version = subprocess.run([ffmpeg_on_path, "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    with open(ffmpeg_on_path, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    assert config["ffmpeg"] == {"version": version, "sha256": digest}
    assert os.path.dirname(ffmpeg_on_path) not in json.dumps(first["config"])
    assert config["reference_cache"]["misses"] == 1 and config["reference_cache"]["hits"] == 0

    # Again against the same reference: only the generated video goes through SyncNet.
    embedded.update(lip=0, audio=0)
    second = evaluate(root / "generated", root / "reference", metrics=["lse"], out=tmp_path / "run2",
                      show_progress=False)
    assert second["results"]["lse"] == first["results"]["lse"]
    assert _rows(tmp_path / "run2")[0]["reference_lse_d"] == row["reference_lse_d"]
    assert second["config"]["lse"]["reference_cache"]["hits"] == 1
    assert embedded["lip"] == data["frames"] - 4 and embedded["audio"] == data["frames"] - 5  # one video's windows
    assert used == {"lip": 2 * embedded["lip"], "audio": 2 * embedded["audio"]}  # the first run scored both
    assert len(list(lse_module.default_cache_dir().glob("lse-*.json"))) == 1


def test_cache_key_follows_what_changes_the_number(data, weights) -> None:
    metric = LSEVideos()
    key, payload = metric._cache_key(data["video"])
    assert payload["video_sha256"] == hashlib.sha256(data["video"].read_bytes()).hexdigest()
    assert payload["weights"] == metric.weights_provenance() and payload["config"]["preset"] == "wav2lip_lrs"
    assert metric._cache_key(data["video"])[0] == key
    metric.ffmpeg = {**metric.ffmpeg, "version": "ffmpeg version 5.1"}  # another build makes other JPEGs
    assert metric._cache_key(data["video"])[0] != key
    assert LSEVideos(frames="decoded").reference_cache is False  # its reference scores follow the pair's length


def test_decoded_frames_option_runs_and_is_recorded(data, weights, tmp_path) -> None:
    root = data["root"]
    run = CliRunner().invoke(app, ["evaluate", "--generated", str(root / "generated"), "--reference",
                                   str(root / "reference"), "--metrics", "lse", "--lse-frames", "decoded",
                                   "--out", str(tmp_path / "run"), "-q"])
    assert run.exit_code == 0, run.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    config = summary["config"]["lse"]
    assert summary["options"]["lse_frames"] == "decoded" and config["frames"] == "decoded"
    assert config["ffmpeg"] is None and config["reference_cache"] == {"enabled": False}
    direct = score_video(data["video"], SyncNet.from_pretrained(), frame_source="decode")
    for side in (summary["results"]["lse"], summary["results"]["lse"]["reference"]):
        assert side["lse_d"] == pytest.approx(direct["lse_d"], abs=1e-4)
        assert side["lse_c"] == pytest.approx(direct["lse_c"], abs=1e-4)

    with pytest.raises(ValueError, match="unknown LSE frame source 'png'"):
        evaluate(root / "generated", root / "reference", metrics=["lse"], out=tmp_path / "bad", lse_frames="png",
                 show_progress=False)
    refused = CliRunner().invoke(app, ["evaluate", "--model", "ground-truth", "--reference", str(root),
                                       "--lse-frames", "decoded", "-q"])
    assert refused.exit_code != 0 and "--lse-frames" in refused.output


@pytest.mark.slow  # ~10 CPU s: both chains of the face-track pipeline, each scored three times
def test_face_track_presets_take_both_frame_sources(data, weights, monkeypatch, tmp_path) -> None:
    """--preset latentsync: the default chain is the track pipeline's reference_exact mode, decoded its
    in-memory mode; either way the runner's scores are those of the pipeline's crops. A fixed face box per
    frame stands in for S3FD (whose weights are random here)."""
    from syncnet_python.detectors.s3fd.nets import S3FDNet

    from talking_head.metrics import lse_track
    from talking_head.metrics.base import VideoPair
    from talking_head.metrics.lse import score_crops
    from talking_head.metrics.runner import build_metrics, score_pair

    torch.manual_seed(0)
    factory.place(monkeypatch, "syncnet-s3fd", S3FDNet(device="cpu").state_dict())
    box = np.array([[48.0, 40.0, 176.0, 200.0, 0.99]])

    def detector(frames):
        return [box] * len(frames)

    short = tmp_path / "short.mp4"  # 30 frames, 26 windows: a track of more than min_track=20 detections
    media.write_video(short, media.read_video(data["video"])[:30], fps=25,
                      audio=media.read_audio(data["video"], dtype="int16")[: 30 * 640], sample_rate=16000)
    model = SyncNet.from_pretrained()
    for frames, exact in (("decoded", False), ("ffmpeg_jpeg", True)):
        (metric,), skipped = build_metrics(["lse"], lse_preset="latentsync", lse_frames=frames)
        assert skipped == {} and metric.config()["frames"] == frames
        for pipeline in metric.pipelines.values():
            pipeline._detector = detector
            pipeline.cfg = dataclasses.replace(pipeline.cfg, min_track=20)
        row = score_pair(VideoPair("crop", short, short), [metric])
        assert metric.config()["tracks"]["reference_exact"] is exact
        expected = lse_track.track_video(short, "syncnet-python", detector=detector, min_track=20,
                                         reference_exact=exact)
        (track,) = expected.tracks
        direct = score_crops(track.crops, track.audio, model)
        assert row["lse_tracks"] == row["reference_lse_tracks"] == 1
        for key in ("lse_d", "lse_c"):
            assert row[key] == pytest.approx(direct[key], abs=1e-4) and row["reference_" + key] == row[key]
