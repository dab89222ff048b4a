"""LSE-D / LSE-C scorer against syncnet-python 0.2.3's ``SyncNetInstance.evaluate``.

The SyncNet weights are random (the published file cannot be downloaded here) but real in every other
respect: syncnet_python's own ``SyncNetModel.S``, BatchNorm statistics calibrated on the sample so the
activations have a realistic scale, saved as a legacy-format (pre-zip, like the 2017 file) state dict
where the registry looks (unpinned) and loaded by the reference's own ``loadParameters``. With random
weights the scores carry no lip-sync meaning; the tests check that both implementations compute the
same numbers from the same inputs.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import python_speech_features
import torch
from scipy.io import wavfile

import weights_factory as factory
from talking_head.metrics import lse_score
from talking_head.metrics.lse import LSE, PRESETS, compute_lse, score_crops, score_video
from talking_head.metrics import mfcc as mfcc_mod
from talking_head.metrics.mfcc import mfcc
from talking_head.metrics.syncnet import SyncNet
from talking_head.toolkit import media
from talking_head.toolkit import weights as w

CLIP_SECONDS = 3.0  # 75 frames -> 70 windows


# ------------------------------------------------------------------------------------ fixtures
def _face_crops(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A fixed SyncNet-style crop (box centre, half size s; rows y-s..y+1.8s, cols x-1.4s..x+1.4s) -> 224."""
    lo = np.median(landmarks[:, :, :2].min(1), 0)
    hi = np.median(landmarks[:, :, :2].max(1), 0)
    (cx, cy), s = (lo + hi) / 2, float(max(hi - lo)) / 2
    pad = int(2 * s)
    padded = np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=110)
    y0, y1, x0, x1 = int(cy - s) + pad, int(cy + 1.8 * s) + pad, int(cx - 1.4 * s) + pad, int(cx + 1.4 * s) + pad
    return np.stack([cv2.resize(f[y0:y1, x0:x1], (224, 224)) for f in padded])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, shared_sample) -> dict:
    """The sample as a 224x224 25 fps crop video with audio, and a random SyncNet weights file."""
    root = tmp_path_factory.mktemp("lse")
    clip = shared_sample(speakers=1, clips=1, seconds=CLIP_SECONDS, seed=0)[0]  # tests/conftest.py
    crops = _face_crops(media.read_video(clip.video), clip.load_ground_truth()["landmarks"])
    audio = media.read_audio(clip.audio)
    crop_video = media.write_video(root / "crop.mp4", crops, fps=25, audio=audio, sample_rate=16000)
    audio16 = media.read_audio(crop_video, dtype="int16")
    weights_file = root / "syncnet_v2.model"
    # Legacy (non-zip) serialisation, as the published 2017 file.
    torch.save(factory.syncnet(crops, audio16), weights_file, _use_new_zipfile_serialization=False)
    return {"root": root, "crops": crops, "crop_video": crop_video, "audio16": audio16, "weights": weights_file}


@pytest.fixture
def syncnet_entry(data, isolated_caches, monkeypatch: pytest.MonkeyPatch) -> w.WeightFile:
    """The random weights at the registry's place for 'syncnet', unpinned (tests/test_preprocess_optional.py)."""
    entry = dataclasses.replace(w.REGISTRY["syncnet"], sha256=None, size=None)
    monkeypatch.setitem(w.REGISTRY, "syncnet", entry)
    target = w.destination(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data["weights"], target)
    return entry


@pytest.fixture
def model(syncnet_entry) -> SyncNet:
    return SyncNet.from_pretrained("cpu")


@pytest.fixture
def ffmpeg_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference shells out to `ffmpeg`: put imageio-ffmpeg's binary on PATH under that name."""
    import imageio_ffmpeg

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(imageio_ffmpeg.get_ffmpeg_exe(), bin_dir / "ffmpeg")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")


def _reference_evaluate(video: Path, work: Path, weights_file: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """syncnet-python 0.2.3 on one crop video, as its SyncNetPipeline.inference step 8 runs it.

    Frames and audio are extracted with the pipeline's own ffmpeg-python calls, then
    ``SyncNetInstance.evaluate`` runs with ``loadParameters`` weights. ``calc_pdist``'s return value
    is recorded (not changed) to compare the whole distance curve, not only its minimum.
    """
    import importlib

    import ffmpeg
    from syncnet_python.SyncNetModel import S

    # The package re-exports the class under the module's name, so fetch the module itself.
    reference = importlib.import_module("syncnet_python.SyncNetInstance")

    work.mkdir(parents=True)
    ffmpeg.input(str(video)).output(str(work / "%06d.jpg"), f="image2", threads=1).overwrite_output().run(quiet=True)
    ffmpeg.input(str(video)).output(
        str(work / "audio.wav"), ac=1, vn=None, acodec="pcm_s16le", ar=16000, af="aresample=async=1"
    ).overwrite_output().run(quiet=True)

    recorded = {}
    original = reference.calc_pdist

    def recording_calc_pdist(feat1, feat2, vshift=10):
        recorded["dists"] = original(feat1, feat2, vshift=vshift)
        return recorded["dists"]

    monkeypatch.setattr(reference, "calc_pdist", recording_calc_pdist)
    instance = reference.SyncNetInstance(net=S(), device="cpu")
    instance.loadParameters(str(weights_file))

    class Opt:
        tmp_dir, batch_size, vshift = str(work), 20, 15

    offset, conf, dist = instance.evaluate(Opt())
    mdist = torch.stack(recorded["dists"], 1).mean(1).numpy()
    return {"offset": offset, "lse_c": conf, "lse_d": dist, "mdist": mdist}


# ------------------------------------------------------------------------------------ exactness
@pytest.mark.slow  # ~16 CPU s: the reference scorer with its JPEG round trip
def test_matches_syncnet_instance_evaluate(data, model, ffmpeg_on_path, tmp_path, monkeypatch) -> None:
    """Same crop video: offset, LSE-D, LSE-C and all 31 mean distances equal the reference's to 1e-4."""
    ref = _reference_evaluate(data["crop_video"], tmp_path / "ref", data["weights"], monkeypatch)

    # Fed the reference's own inputs: its JPEG frames read back with cv2.imread (BGR -> RGB) and its WAV.
    jpeg_frames = np.stack([cv2.imread(f)[:, :, ::-1] for f in sorted(glob.glob(str(tmp_path / "ref" / "*.jpg")))])
    _, wav = wavfile.read(tmp_path / "ref" / "audio.wav")
    ours = score_crops(jpeg_frames, wav, model)
    print(f"same inputs, ours - reference: LSE-D {ours['lse_d'] - ref['lse_d']:.2e}, "
          f"LSE-C {ours['lse_c'] - ref['lse_c']:.2e}, max |mdist| {np.abs(ours['mdist'] - ref['mdist']).max():.2e}")
    assert ours["offset"] == ref["offset"]
    assert ours["num_windows"] == len(data["crops"]) - 5
    assert abs(ours["lse_d"] - ref["lse_d"]) < 1e-4
    assert abs(ours["lse_c"] - ref["lse_c"]) < 1e-4
    np.testing.assert_allclose(ours["mdist"], ref["mdist"], rtol=0, atol=1e-4)

    # score_video's reference-exact path makes the same JPEGs (same ffmpeg, same command); its audio
    # (read_audio) is the reference's `ffmpeg ... -af aresample=async=1` WAV sample for sample.
    np.testing.assert_array_equal(lse_score._ffmpeg_jpeg_frames(str(data["crop_video"]), 25.0), jpeg_frames)
    np.testing.assert_array_equal(media.read_audio(data["crop_video"], dtype="int16"), wav)

    # Decoded straight from the mp4 (no JPEG round trip): documented drift, not an identity.
    decoded = score_video(data["crop_video"], model)
    drift = {"lse_d": decoded["lse_d"] - ref["lse_d"], "lse_c": decoded["lse_c"] - ref["lse_c"]}
    pixel_drift = np.abs(media.read_video(data["crop_video"]).astype(int) - jpeg_frames).mean()
    print(f"decoded frames vs reference JPEG frames: {drift}, mean |pixel diff| {pixel_drift:.2f}")
    assert 0 < pixel_drift < 10  # the reference's default-quality JPEGs are lossy
    assert abs(drift["lse_d"]) < 1.0 and abs(drift["lse_c"]) < 1.0


def test_mfcc_equals_python_speech_features(data) -> None:
    rng = np.random.default_rng(0)
    signals = [data["audio16"]] + [
        (rng.standard_normal(n) * 4000).astype(np.int16) for n in (1, 399, 400, 401, 641, 16_000, 23_457)
    ]
    # Longer than one block of metrics.mfcc.BLOCK_FRAMES frames, ending on and off a block boundary.
    step = 160
    for n in (mfcc_mod.BLOCK_FRAMES * step + 240, 2 * mfcc_mod.BLOCK_FRAMES * step + 241 + 999):
        signals.append((rng.standard_normal(n) * 4000).astype(np.int16))
    signals.append((rng.standard_normal(mfcc_mod.BLOCK_FRAMES * step + 5000) * 4000).astype(np.float32))
    signals.append(np.zeros(1000, np.int16))  # zero energy: the eps floor before the log
    for signal in signals:
        reference = python_speech_features.mfcc(signal, 16000)
        ours = mfcc(signal, 16000)
        assert ours.shape == reference.shape
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)
    # int16 scale matters: float audio shifts only c0, by 2 ln 32768 (frames with zero energy aside,
    # where both hit the same log floor).
    x = data["audio16"]
    int_scale, float_scale = mfcc(x), mfcc(x.astype(np.float64) / 32768.0)
    audible = int_scale[:, 0] > np.log(np.finfo(float).eps) + 1
    assert audible.sum() > 100
    np.testing.assert_allclose(int_scale[audible, 0] - float_scale[audible, 0], 2 * np.log(32768.0), atol=1e-6)
    np.testing.assert_allclose(int_scale[audible, 1:], float_scale[audible, 1:], atol=1e-6)


def test_network_matches_syncnet_model(data, model) -> None:
    """Our SyncNet loads the reference's file and gives the reference S's embeddings."""
    from syncnet_python.SyncNetModel import S

    reference = S()
    reference.load_state_dict(torch.load(data["weights"], weights_only=True))
    reference.eval()
    bgr = torch.from_numpy(data["crops"][20:29, ..., ::-1].copy()).float()
    windows = torch.stack([bgr[v : v + 5].permute(3, 0, 1, 2) for v in range(5)])
    cepstra = torch.from_numpy(mfcc(data["audio16"]).T.astype(np.float32))
    audio_windows = torch.stack([cepstra[:, 4 * v : 4 * v + 20] for v in range(8)])[:, None]
    with torch.inference_mode():
        expected = reference.forward_lip(windows)
        np.testing.assert_allclose(model.lip_windows(bgr, batch_size=2), expected, atol=2e-4)
        np.testing.assert_allclose(model.forward_lip(windows), expected, atol=1e-5)
        np.testing.assert_allclose(model.forward_aud(audio_windows), reference.forward_aud(audio_windows), atol=1e-5)
    assert model.weights_provenance() == {"syncnet": w.file_sha256(w.destination(w.REGISTRY["syncnet"]))}


# ------------------------------------------------------------------------------------ weights
def test_loader_accepts_files_without_batchnorm_counters(data, syncnet_entry) -> None:
    """Files saved before torch 0.4.1 have no num_batches_tracked; a module pickle is refused."""
    state = torch.load(data["weights"], weights_only=True)
    old_style = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(old_style, w.destination(syncnet_entry), _use_new_zipfile_serialization=False)
    model = SyncNet.from_pretrained()
    assert torch.equal(model.netcnnlip[0].weight, state["netcnnlip.0.weight"])
    assert torch.equal(model.netfcaud[1].running_var, state["netfcaud.1.running_var"])

    with pytest.raises(ValueError, match="missing"):
        SyncNet().load_reference_state_dict({k: v for k, v in state.items() if not k.startswith("netfclip")})

    from syncnet_python.SyncNetModel import S

    torch.save(S(), w.destination(syncnet_entry))  # a whole pickled module: weights_only refuses it
    with pytest.raises(w.WeightsCorruptError, match="not a plain weights file"):
        SyncNet.from_pretrained()


# ------------------------------------------------------------------------------------ videos
def test_30fps_video_is_resampled_to_25(data, model, tmp_path) -> None:
    """MODA-style 30 fps render: score_video reads it at 25 fps (like ffmpeg -r 25) before scoring."""
    seconds = 0.8
    frames30 = data["crops"][np.round(np.arange(int(30 * seconds)) * 25 / 30).astype(int)]
    audio = data["audio16"][: int(16000 * seconds)]
    path = media.write_video(tmp_path / "render30.mp4", frames30, fps=30, audio=audio, sample_rate=16000)
    result = score_video(path, model)
    expected_frames = len(media.VideoReader(path, fps=25))
    # 24 frames at 30 fps; ffmpeg -r 25 gives 20 plus its end-of-stream repetition.
    assert len(frames30) == 24 and result["num_frames"] == expected_frames and 20 <= expected_frames <= 22
    direct = score_crops(media.read_video(path, fps=25), media.read_audio(path, dtype="int16"), model)
    assert (result["offset"], result["lse_d"], result["lse_c"]) == (direct["offset"], direct["lse_d"], direct["lse_c"])


def test_resize_to_224_whole_frames(data, model, tmp_path) -> None:
    """Wav2Lip's LRS protocol: whole frames cv2.resize'd to 224 (bilinear), no detection."""
    frames = np.stack([cv2.resize(f, (256, 256)) for f in data["crops"][:14]])
    path = media.write_video(tmp_path / "whole.mp4", frames, fps=25, audio=data["audio16"][: 14 * 640])
    with pytest.raises(ValueError, match="224x224"):
        score_video(path, model)
    result = score_video(path, model, resize_to_224=True)
    resized = np.stack([cv2.resize(f, (224, 224)) for f in media.read_video(path)])
    direct = score_crops(resized, media.read_audio(path, dtype="int16"), model)
    assert result["num_windows"] == 9
    assert (result["lse_d"], result["lse_c"]) == (direct["lse_d"], direct["lse_c"])


# ------------------------------------------------------------------------------------ bad input
def test_bad_input_raises_clear_errors(data, model) -> None:
    crops, audio = data["crops"], data["audio16"]
    with pytest.raises(ValueError, match="too short.*at least 6 frames"):
        score_crops(crops[:5], audio, model)
    with pytest.raises(ValueError, match="too short"):
        score_crops(crops[:30], audio[: 5 * 640], model)  # enough frames, 0.2 s of audio
    with pytest.raises(ValueError, match="int16"):
        score_crops(crops[:10], audio.astype(np.float32) / 32768, model)
    with pytest.raises(ValueError, match=r"\(T, 224, 224, 3\)"):
        score_crops(crops[:10, :200], audio, model)
    with pytest.raises(ValueError, match="uint8"):
        score_crops(crops[:10].astype(np.float32), audio, model)
    with pytest.raises(ValueError, match="empty"):
        score_crops(crops[:10], audio[:0], model)
    with pytest.raises(ValueError, match="1-D"):
        score_crops(crops[:10], np.stack([audio, audio], 1), model)
    # The shortest valid input: 6 frames -> one window.
    assert score_crops(crops[:6], audio, model)["num_windows"] == 1


# ------------------------------------------------------------------------------------ aggregation
def _row(d: float, c: float, offset: int = 0) -> dict:
    return {"lse_d": d, "lse_c": c, "offset": offset}


def test_presets_aggregate_hand_made_tracks() -> None:
    lse = LSE(min_track=50)
    lse.update("a", [_row(8.0, 2.0, 1), _row(6.0, 1.0, 4)])  # best conf and min dist from different tracks
    lse.update("b", [_row(7.0, 5.0, -2)])
    lse.update("c", [], reason="no face detected")
    lse.update("d", [])

    mocha = lse.compute("mocha")
    assert mocha["lse_c"] == pytest.approx((2.0 + 5.0) / 2)  # max per video
    assert mocha["lse_d"] == pytest.approx((6.0 + 7.0) / 2)  # min per video
    assert mocha["excluded"] == {"c": "no face detected", "d": "no face track"}
    assert (mocha["num_videos"], mocha["num_scored"], mocha["num_rows"]) == (4, 2, 3)

    latent = lse.compute("latentsync")
    assert latent["lse_c"] == pytest.approx(((2.0 + 1.0) / 2 + 5.0) / 2)
    assert latent["lse_d"] == pytest.approx(((8.0 + 6.0) / 2 + 7.0) / 2)
    assert [v["offset"] for v in latent["per_video"]] == [2, -2]  # int(mean) of 1 and 4

    real = lse.compute("wav2lip_real")  # one row per track, mean over rows
    assert real["lse_c"] == pytest.approx((2.0 + 1.0 + 5.0) / 3)
    assert real["lse_d"] == pytest.approx((8.0 + 6.0 + 7.0) / 3)
    assert len(real["per_track"]) == 3

    with pytest.raises(ValueError, match="one row per video"):
        lse.compute("wav2lip_lrs")
    assert lse.config()["min_track"] == 50 and PRESETS["latentsync"]["min_track"] == 50
    with pytest.raises(ValueError, match="already added"):
        lse.update("a", [])
    with pytest.raises(ValueError, match="unknown preset"):
        lse.compute("fid")

    lrs = compute_lse({"x": [_row(6.0, 8.0)], "y": [_row(7.0, 6.0)]}, preset="wav2lip_lrs")
    assert (lrs["lse_d"], lrs["lse_c"]) == (pytest.approx(6.5), pytest.approx(7.0))

    lse.reset()
    empty = lse.compute("mocha")
    assert empty["num_videos"] == 0 and np.isnan(empty["lse_d"])


def test_streaming_scores_tracks_and_records_failures(data, model) -> None:
    crops, audio = data["crops"][:12], data["audio16"][: 12 * 640]
    lse = LSE(model, on_error="exclude")
    lse.update("v1", [(crops, audio)])
    rows = lse.per_video()[0]["tracks"]
    direct = score_crops(crops, audio, model)
    assert rows[0]["lse_d"] == direct["lse_d"] and rows[0]["lse_c"] == direct["lse_c"]
    assert len(rows[0]["mdist"]) == 31
    lse.update("v2", [(crops[:4], audio)])  # too short: recorded, not raised
    result = lse.compute("mocha")
    assert result["num_scored"] == 1 and "too short" in result["excluded"]["v2"]
    assert result["lse_d"] == direct["lse_d"]
    assert lse.weights_provenance() == model.weights_provenance()

    strict = LSE(model)
    with pytest.raises(ValueError, match="'v2' track 0: too short"):
        strict.update("v2", [(crops[:4], audio)])


@pytest.mark.slow  # ~14 CPU s: several full scorings
def test_streaming_scorer_equals_score_crops(data, model) -> None:
    """Chunked embedding (constant memory for long videos) gives the one-shot numbers."""
    crops, audio = data["crops"], data["audio16"]
    expected = score_crops(crops, audio, model)
    for chunk in (3, 32):  # chunks shorter and longer than a window
        scorer = lse_score.StreamingScorer(model)
        for start in range(0, len(crops), chunk):
            scorer.add(crops[start : start + chunk])
        got = scorer.score(audio)
        assert got["offset"] == expected["offset"] and got["num_windows"] == expected["num_windows"]
        np.testing.assert_allclose(got["mdist"], expected["mdist"], rtol=1e-5, atol=1e-5)
        assert got["lse_d"] == pytest.approx(expected["lse_d"], abs=1e-4)
        assert got["lse_c"] == pytest.approx(expected["lse_c"], abs=1e-4)
    with pytest.raises(ValueError, match="too short"):
        short = lse_score.StreamingScorer(model)
        short.add(crops[:4])
        short.score(audio)


@pytest.mark.slow  # ~40 CPU s: seven scorings
def test_streaming_scorer_with_audio_up_front_keeps_little(data, model) -> None:
    """With the audio given first, windows are compared as they arrive: the numbers stay those of
    score_crops and only about vshift + one chunk or batch of embeddings (and one batch of frames) is
    held, whatever the length."""
    crops, audio = data["crops"], data["audio16"]
    cases = [(crops, audio, (3, 16)), (crops, audio[: len(audio) * 2 // 3], (16,)),
             (crops[: len(crops) * 2 // 3], audio, (3,))]
    for frames, samples, chunks in cases:  # equal lengths, audio shorter, video shorter
        expected = score_crops(frames, samples, model)
        for chunk in chunks:
            scorer = lse_score.StreamingScorer(model, samples)
            held = 0
            for start in range(0, len(frames), chunk):
                scorer.add(frames[start : start + chunk])
                held = max(held, sum(len(p) for p in scorer._pending), len(scorer._audio_feat))
                assert len(scorer._frames) < lse_score.DEFAULT_BATCH_SIZE + 4 + chunk
            got = scorer.score()
            assert got["offset"] == expected["offset"] and got["num_windows"] == expected["num_windows"]
            np.testing.assert_allclose(got["mdist"], expected["mdist"], rtol=1e-5, atol=1e-5)
            assert got["lse_d"] == pytest.approx(expected["lse_d"], abs=1e-4)
            assert got["lse_c"] == pytest.approx(expected["lse_c"], abs=1e-4)
            assert held <= 2 * lse_score.VSHIFT + max(chunk, lse_score.DEFAULT_BATCH_SIZE) + 1, (held, len(frames))
    assert len(crops) > 4 * lse_score.VSHIFT  # long enough for the bound to mean something
    with pytest.raises(ValueError, match="already given"):
        lse_score.StreamingScorer(model, audio).score(audio)
