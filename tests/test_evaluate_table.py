"""The 2026 results table end to end: `toolkit evaluate --metrics fid,kid,fvd,lse,efid` on a folder of generated
videos against a dataset, with every value's interval and every metric's protocol recorded.

Weight files are created (tests/weights_factory.py); the dataset is the small preprocessed sample shared with
tests/test_evaluate_sample.py, whose weight fixture and perturbation this module reuses.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import weights_factory as factory
from talking_head.toolkit import media
from talking_head.toolkit.cli import app
from talking_head.toolkit.cli.evaluate import format_value
from test_evaluate_sample import _perturbed_copy, dataset, weights  # noqa: F401 (fixtures used by name)



@pytest.fixture
def table_weights(weights, dataset, monkeypatch, tmp_path):
    """test_evaluate_sample's weights plus the 2026 table's: Deep3DFaceRecon (E-FID) and the TorchScript I3D (FVD)."""
    import torch
    from datasets import load_from_disk

    row = load_from_disk(str(dataset))["test"][0]
    video = tmp_path / "row_table.mp4"
    video.write_bytes(row["video"])
    frames = torch.from_numpy(np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA)
                                        for f in media.read_video(video)[:16]])).float()
    factory.place(monkeypatch, "deep3dfacerecon", factory.deep3dfacerecon(frames[:4].permute(0, 3, 1, 2) / 255))
    clips = frames.permute(3, 0, 1, 2)[None] / 127.5 - 1
    factory.pin_to_own_digest(monkeypatch, "i3d-torchscript", factory.i3d_torchscript(
        torch.cat([clips, clips.flip(2)]), tmp_path / "made" / "i3d_torchscript.pt"))


@pytest.mark.slow  # FID, KID, FVD, LSE and E-FID on the sample's test split
def test_the_2026_results_table(dataset, table_weights, tmp_path):
    """`toolkit evaluate --metrics fid,kid,fvd,lse,efid` on a folder of generated videos against a dataset:
    every number has its interval, and the protocol of each metric is recorded. Two samples of the test clip
    (`<clip_id>.sample<k>.mp4`, two perturbations) make two pairs, so intervals exist, and the second pair
    finds its reference's FVD features and LSE scores in the caches."""
    _perturbed_copy(dataset, tmp_path / "perturbed")
    generated = tmp_path / "samples"
    generated.mkdir()
    for video in sorted((tmp_path / "perturbed").glob("*.mp4")):
        frames, audio = media.read_video(video), media.read_audio(video)
        # Short samples (pairs compare their common frames: FID and E-FID pass every frame through a network),
        # at least one 16-frame FVD clip each; the second finds its reference's LSE and FVD in the caches.
        for k, (count, shift) in enumerate(((24, 0), (20, 4))):
            media.write_video(generated / f"{video.stem}.sample{k}.mp4",
                              np.stack([np.roll(f, shift, axis=1) for f in frames[:count]]), fps=25,
                              audio=audio[:count * 16000 // 25])
    out = tmp_path / "table"
    run = CliRunner().invoke(app, ["evaluate", "--generated", str(generated), "--reference", str(dataset),
                                   "--metrics", "fid,kid,fvd,lse,efid", "--out", str(out)])
    assert run.exit_code == 0, run.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == {} and summary["videos"] == 2
    results, intervals = summary["results"], summary["intervals"]
    for metric, key in (("fid", "fid"), ("kid", "kid"), ("fvd", "fvd"), ("efid", "efid"), ("lse", "lse_c"),
                        ("lse", "lse_d")):
        value = results[metric][key]
        assert np.isfinite(value), (metric, key)
        interval = intervals[metric][key]
        assert interval["low"] <= interval["high"] and interval["resamples"] > 0 and "seed" in interval
        assert f"{metric}.{key}" in run.output  # a row of the printed table
    assert "95% percentile bootstrap" in run.output and "frames/s" in run.output  # intervals explained; progress
    config = summary["config"]
    assert config["fvd"]["variant"] == "styleganv" and config["fvd"]["frames"] == 16
    assert config["fvd"]["reference_cache_hits"] == 1  # the second sample's reference
    assert config["lse"]["frames"] == "ffmpeg_jpeg" and config["lse"]["ffmpeg"]
    assert summary["bootstrap"]["resamples"] > 0
    assert set(summary["weights"]) >= {"fid-inception", "syncnet", "i3d-torchscript", "deep3dfacerecon"}
    per_video = (out / "per_video.csv").read_text()
    assert "fvd_clips_generated" in per_video


@pytest.mark.slow  # FID, DisCo's FVD and face-track LSE on the sample's test split
def test_the_hallo_protocol_by_name(dataset, weights, monkeypatch, tmp_path):
    """`toolkit evaluate --protocol hallo`: the protocol's metrics and variants run, the table is headed by the
    protocol and its hash, and the ground truth's values stand beside ours."""
    import torch
    from syncnet_python.detectors.s3fd.nets import S3FDNet  # the reference's network: the file's keys

    from talking_head.metrics import protocols

    _perturbed_copy(dataset, tmp_path / "perturbed")
    (tmp_path / "generated").mkdir()
    for video in sorted((tmp_path / "perturbed").glob("*.mp4")):  # 20 frames: DisCo's windows and S3FD on each
        media.write_video(tmp_path / "generated" / video.name, media.read_video(video)[:20], fps=25,
                          audio=media.read_audio(video)[:20 * 16000 // 25])
    frames = media.read_video(next((tmp_path / "generated").glob("*.mp4")))[:16]
    clips = torch.from_numpy(np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA) for f in frames]))
    clips = clips.float().permute(3, 0, 1, 2)[None] / 127.5 - 1
    factory.pin_to_own_digest(monkeypatch, "i3d-kinetics400", factory.place(
        monkeypatch, "i3d-kinetics400", factory.i3d_kinetics400(torch.cat([clips, clips.flip(2)]))))
    torch.manual_seed(0)
    factory.place(monkeypatch, "syncnet-s3fd", S3FDNet(device="cpu").state_dict())

    out = tmp_path / "hallo"
    run = CliRunner(env={"COLUMNS": "200"}).invoke(app, [
        "evaluate", "--protocol", "hallo", "--generated", str(tmp_path / "generated"), "--reference", str(dataset),
        "--out", str(out), "--bootstrap", "20"])
    assert run.exit_code == 0, run.output
    hallo = protocols.load("hallo")
    assert f"protocol hallo (hash {hallo.hash})" in run.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["protocol"]["hash"] == hallo.hash and summary["protocol"]["content"] == hallo.data
    assert summary["metrics_requested"] == ["fid", "fvd", "lse"] and summary["skipped"] == {}
    config = summary["config"]
    assert config["fvd"]["variant"] == "disco" and config["lse"]["preset"] == "wav2lip_real"
    assert config["lse"]["frames"] == "ffmpeg_jpeg" and summary["options"]["fps"] == 25
    # ours beside the ground truth's: the comparisons' identity values, printed in the table's own column
    assert summary["ground_truth"]["fid"]["fid"]["value"] == 0.0 and summary["ground_truth"]["fvd"]["fvd"]["value"] == 0.0
    cells = next([c.strip() for c in line.split("│")] for line in run.output.splitlines() if "fid.fid" in line)
    assert cells[1:5] == ["fid.fid", format_value(summary["results"]["fid"]["fid"], summary, "fid", "fid"), "0", ""]
    assert np.isfinite(summary["results"]["fvd"]["fvd"]) and "frames/s on cpu" in run.output
