"""FVD, each variant against its reference on the same clips and the same created weight files.

* ``videogpt``: the ``cd-fvd`` package itself (``cdfvd.fvd.cdfvd('i3d', ckpt_path=...)``), to 1e-4.
* ``styleganv``, ``disco``, ``latentsync``: no package carries them, so each is compared with a literal port
  of its reference function below (repository, commit, file and lines cited), to 1e-6.

The clips are frames of the built-in sample (a real face), downscaled to 96x96 so GIF writing and resizing
stay cheap; the I3D input is 224x224 whatever the source size. Weight files are created in the real formats:
``i3d_pretrained_400.pt`` as the state dict of cd-fvd's own InceptionI3d, and ``i3d_torchscript.pt`` as a
TorchScript file with StyleGAN-V's call signature (``tests/weights_factory.py``).
"""

from __future__ import annotations

import dataclasses
import subprocess
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import weights_factory as factory
from talking_head.metrics import fvd as fvd_module
from talking_head.metrics.fvd import FVD, fvd_from_features
from talking_head.metrics.fvd_variants import VARIANTS, ClipSampler, clip_starts
from talking_head.metrics.i3d import InceptionI3d
from talking_head.toolkit import media
from talking_head.toolkit import weights as w

SIZE = 96


# ----------------------------------------------------------------------------------------- inputs
@pytest.fixture(scope="module")
def videos(shared_sample):
    """Two reference videos of 40 frames (a real face) and their generated counterparts (blurred, shifted)."""
    clips = shared_sample(speakers=1, clips=2, seconds=1.6, seed=0)  # tests/conftest.py
    reference = [np.stack([cv2.resize(f, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
                           for f in media.read_video(c.video)]) for c in clips]
    generated = [np.stack([np.roll(cv2.GaussianBlur(f, (0, 0), 1.5), 3, axis=1) for f in v]) for v in reference]
    return generated, reference


@pytest.fixture(scope="module")
def weight_dir(tmp_path_factory, videos):
    """Both created weight files, built once for the module."""
    root = tmp_path_factory.mktemp("fvd-weights")
    frames = torch.from_numpy(np.concatenate([videos[1][0][:16], videos[1][1][16:32]])).float()  # (32, H, W, 3)
    clips = torch.nn.functional.interpolate(frames.permute(0, 3, 1, 2), size=(224, 224), mode="bilinear",
                                            align_corners=False).reshape(2, 16, 3, 224, 224).transpose(1, 2)
    clips = clips / 127.5 - 1
    torch.save(factory.i3d_kinetics400(clips), root / "i3d_pretrained_400.pt")
    factory.i3d_torchscript(clips, root / "i3d_torchscript.pt")
    return root


@pytest.fixture
def placed(weight_dir, isolated_caches, monkeypatch):
    """Both files at the registry's destinations, pinned to their own digests as a published file would be."""
    for name, file in (("i3d-kinetics400", "i3d_pretrained_400.pt"), ("i3d-torchscript", "i3d_torchscript.pt")):
        entry = dataclasses.replace(w.REGISTRY[name], git_blob_sha1=w.git_blob_sha1(weight_dir / file))
        monkeypatch.setitem(w.REGISTRY, name, entry)
        target = w.destination(entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((weight_dir / file).read_bytes())
    return weight_dir


def _clips(video: np.ndarray, starts: list[int], frames: int = 16) -> list[np.ndarray]:
    return [video[s:s + frames] for s in starts]


def _first_clip(videos_pair):
    """Each video cut to its first 16 frames: one clip a video, two a side (I3D passes are the cost here)."""
    return tuple([v[:16] for v in side] for side in videos_pair)


def _fvd(variant: str, generated, reference, **kwargs) -> tuple[float, FVD]:
    metric = FVD(variant=variant, device="cpu", use_cache=False, **kwargs)
    for gen, ref in zip(generated, reference):
        metric.update(gen)
        metric.update(ref, real=True)
    return metric.compute()["fvd"], metric


# -------------------------------------------------------------------------------- clip sampling
def test_clip_sampler_emits_each_variants_clips_from_a_stream():
    video = np.arange(70, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    for spec in VARIANTS.values():
        sampler = ClipSampler(spec)
        emitted = [clip for part in np.array_split(video, 7) for clip in sampler.push(part)]
        starts = clip_starts(spec, len(video))
        assert [int(c[0, 0, 0, 0]) for c in emitted] == starts, spec.name
        assert all(len(c) == 16 and int(c[-1, 0, 0, 0]) == s + 15 for c, s in zip(emitted, starts))
    assert clip_starts(VARIANTS["styleganv"], 70) == [0, 16, 32, 48]
    assert clip_starts(VARIANTS["disco"], 20) == [0, 1, 2, 3, 4]
    assert clip_starts(VARIANTS["latentsync"], 70) == [20] and clip_starts(VARIANTS["latentsync"], 35) == []


# ---------------------------------------------------------------------------------- the networks
def test_inception_i3d_is_pytorch_i3d_bit_for_bit(weight_dir):
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d as Reference

    state = torch.load(weight_dir / "i3d_pretrained_400.pt", weights_only=True)
    ours, theirs = InceptionI3d(), Reference(400, in_channels=3)
    ours.load_state_dict(state)
    theirs.load_state_dict(state)
    x = torch.rand(1, 3, 16, 224, 224) * 2 - 1
    with torch.no_grad():
        assert torch.equal(ours.eval()(x), theirs.eval()(x))


def test_git_blob_id_is_gits(weight_dir):
    file = weight_dir / "i3d_pretrained_400.pt"
    expected = subprocess.run(["git", "hash-object", str(file)], capture_output=True, text=True, check=True).stdout
    assert w.git_blob_sha1(file) == expected.strip()


def test_torchscript_is_loaded_only_against_a_pinned_digest(weight_dir, isolated_caches, monkeypatch):
    target = w.destination("i3d-torchscript")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes((weight_dir / "i3d_torchscript.pt").read_bytes())
    with pytest.raises(w.WeightsCorruptError, match="wrong git blob id"):  # the registry's published id
        w.load_torchscript("i3d-torchscript")
    monkeypatch.setitem(w.REGISTRY, "i3d-torchscript",
                        dataclasses.replace(w.REGISTRY["i3d-torchscript"], git_blob_sha1=None))
    with pytest.raises(w.WeightsCorruptError, match="pins no digest"):
        w.load_torchscript("i3d-torchscript")
    monkeypatch.setitem(w.REGISTRY, "i3d-torchscript", dataclasses.replace(
        w.REGISTRY["i3d-torchscript"], sha256=w.file_sha256(target)))
    assert w.load_torchscript("i3d-torchscript") is not None
    target.unlink()
    with pytest.raises(w.WeightsMissingError, match="i3d-torchscript"):
        FVD(variant="styleganv", device="cpu")


# ------------------------------------------------------------------------ videogpt: cd-fvd itself
def test_videogpt_equals_cd_fvd(videos, placed):
    from cdfvd.fvd import cdfvd

    generated, reference = _first_clip(videos)
    ours, metric = _fvd("videogpt", generated, reference)
    starts = clip_starts(VARIANTS["videogpt"], len(reference[0]))
    fake = np.stack([c for v in generated for c in _clips(v, starts)])  # (B, T, H, W, C) uint8, cd-fvd's input
    real = np.stack([c for v in reference for c in _clips(v, starts)])
    reference_tool = cdfvd("i3d", n_real="full", n_fake="full", ckpt_path=str(placed / "i3d_pretrained_400.pt"),
                           device="cpu")
    theirs = reference_tool.compute_fvd(real, fake)
    assert len(fake) == 2 and metric.compute()["num_clips_generated"] == 2
    assert ours == pytest.approx(float(theirs), rel=1e-4)
    assert ours > 0


# ------------------------------------------------------------- styleganv: literal port of StyleGAN-V
def _styleganv_reference(detector_file: Path, generated: np.ndarray, reference: np.ndarray) -> float:
    """universome/stylegan-v@3fecd69. Clips arrive as the dataset gives them, uint8 [B, T, H, W, C] here
    turned into its [B, T, C, H, W].
    src/metrics/frechet_video_distance.py:23  detector_kwargs = dict(rescale=True, resize=True, return_features=True)
    src/metrics/metric_utils.py:57           torch.jit.load(f).eval()
    src/metrics/metric_utils.py:231-246      images.permute(0, 2, 1, 3, 4).contiguous(); detector(images, **kwargs)
    src/metrics/metric_utils.py:86-127       FeatureStats.append (float64 sums) and get_mean_cov (divide by N)
    src/metrics/frechet_video_distance.py:54-57  the distance
    """
    import scipy.linalg

    detector = torch.jit.load(str(detector_file)).eval()
    detector_kwargs = dict(rescale=True, resize=True, return_features=True)

    def stats(clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raw_mean, raw_cov, num_items = 0.0, 0.0, 0
        # The original batches NUM_FRAMES_IN_BATCH[res] // 16 clips; one here, as ours batches one video's clips
        # (batch size moves features by float round-off only, which 2 clips a side would amplify past 1e-6).
        for start in range(0, len(clips), 1):
            images = torch.from_numpy(clips[start:start + 1]).permute(0, 1, 4, 2, 3)  # [B, T, C, H, W]
            images = images.permute(0, 2, 1, 3, 4).contiguous()  # [batch_size, c, t, h, w]
            with torch.no_grad():
                x = np.asarray(detector(images, **detector_kwargs).cpu().numpy(), dtype=np.float32)
            num_items += x.shape[0]
            x64 = x.astype(np.float64)
            raw_mean = raw_mean + x64.sum(axis=0)
            raw_cov = raw_cov + x64.T @ x64
        mean = raw_mean / num_items
        cov = raw_cov / num_items
        return mean, cov - np.outer(mean, mean)

    mu_real, sigma_real = stats(reference)
    mu_gen, sigma_gen = stats(generated)
    m = np.square(mu_gen - mu_real).sum()
    s, _ = scipy.linalg.sqrtm(np.dot(sigma_gen, sigma_real), disp=False)
    return float(np.real(m + np.trace(sigma_gen + sigma_real - s * 2)))


def test_styleganv_equals_the_port_of_stylegan_v(videos, placed):
    generated, reference = _first_clip(videos)
    ours, metric = _fvd("styleganv", generated, reference)
    starts = clip_starts(VARIANTS["styleganv"], len(reference[0]))
    theirs = _styleganv_reference(placed / "i3d_torchscript.pt",
                                  np.stack([c for v in generated for c in _clips(v, starts)]),
                                  np.stack([c for v in reference for c in _clips(v, starts)]))
    assert ours == pytest.approx(theirs, rel=1e-6)
    result = metric.compute()
    assert result["variant"] == "styleganv" and result["num_clips_reference"] == 2
    assert any("256" in m for m in result["warnings"]) and any("2048" in m for m in result["warnings"])


# ------------------------------------------------------------------------ disco: literal port of DisCo
def _disco_reference(i3d_file: Path, tmp: Path, generated: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """Wangt-CN/DisCo@c4fa48a, FVD-3DInception on GIF clips.
    tool/video/gen_gifs_for_fvd.py:33-49   one GIF of gif_frames frames per start frame: imageio.mimsave(path, images, fps=fps)
    tool/metrics/utils.py:339-343          gif_to_nparray: PIL ImageSequence, convert('RGB')
    tool/metrics/resize.py:46-57           make_resizer("PIL", False, "bicubic", (224, 224)): float32 'F' per channel
    tool/metrics/utils.py:394-417          resize, torch.as_tensor(video.copy()).float(), video / 127.5 - 1, (1, 3, T, H, W)
    tool/metrics/features.py:41-44         InceptionI3d(400, in_channels=3) with i3d_pretrained_400.pt
    tool/metrics/metric_center.py:470-483  one clip per batch, features averaged over segments (one here)
    tool/metrics/metric_center.py:192-195  fid_from_feats: np.mean / np.cov(rowvar=False)
    tool/metrics/metric_center.py:43-87    frechet_distance (sqrtm(sigma1.dot(sigma2)), eps retry, imaginary check)
    """
    import imageio
    import scipy.linalg
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d as Reference
    from PIL import Image, ImageSequence

    model = Reference(400, in_channels=3)
    model.load_state_dict(torch.load(str(i3d_file)))
    model.eval()

    def resize_single_channel(x_np):
        img = Image.fromarray(x_np.astype(np.float32), mode="F")
        img = img.resize((224, 224), resample=Image.BICUBIC)
        return np.asarray(img).reshape(224, 224, 1)

    def features(videos: list[np.ndarray], side: str) -> np.ndarray:
        l_feats = []
        for k, video in enumerate(videos):
            for idx in range(len(video) - 16 + 1):
                path = tmp / f"{side}_{k}_{idx:04d}.gif"
                with warnings.catch_warnings():  # imageio's note that fps is now given as duration
                    warnings.simplefilter("ignore")
                    imageio.mimsave(path, list(video[idx:idx + 16]), fps=25.0)
                gif = Image.open(path)
                frames = np.stack([np.array(frame.copy().convert("RGB"), dtype=np.uint8)
                                   for frame in ImageSequence.Iterator(gif)])
                frames = np.stack([np.concatenate([resize_single_channel(f[:, :, c]) for c in range(3)],
                                                  axis=2).astype(np.float32) for f in frames])
                clip = torch.as_tensor(frames.copy()).float()
                clip = clip / 127.5 - 1
                clip = clip.unsqueeze(0).permute(0, 4, 1, 2, 3).float()
                batch = torch.stack([clip]).squeeze(0)  # the DataLoader's batch of 1, squeezed back
                with torch.no_grad():
                    l_feats.append(model(batch).detach().cpu().numpy().mean(0, keepdims=True))
        return np.concatenate(l_feats)

    feats1, feats2 = features(generated, "gen"), features(reference, "gt")
    mu1, sigma1 = np.mean(feats1, axis=0), np.cov(feats1, rowvar=False)
    mu2, sigma2 = np.mean(feats2, axis=0), np.cov(feats2, rowvar=False)
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        assert np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3)
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def test_disco_equals_the_port_of_disco(videos, placed, tmp_path):
    generated, reference = ([v[:17] for v in side] for side in videos)  # 2 windows a video: 4 clips a side
    ours, metric = _fvd("disco", generated, reference)
    theirs = _disco_reference(placed / "i3d_pretrained_400.pt", tmp_path, generated, reference)
    assert metric.compute()["num_clips_generated"] == 4
    assert ours == pytest.approx(theirs, rel=1e-6)


# --------------------------------------------------------------- latentsync: literal port of LatentSync
def _latentsync_reference(detector_file: Path, generated: list[np.ndarray], reference: list[np.ndarray]) -> float:
    """bytedance/LatentSync@a229c39 (frames come as arrays instead of decord reads of files).
    eval/eval_fvd.py:27      mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
    eval/eval_fvd.py:30-52   detect_face: the first detection's relative box, int(), clipped to the frame
    eval/eval_fvd.py:54-68   frames [20:36], cv2.resize(..., INTER_AREA) to 224x224
    eval/eval_fvd.py:83,89-91  torch.stack(videos) / 255.0; compute_our_fvd(real_videos, fake_videos)
    eval/fvd.py:10-45        compute_fvd: np.cov stats, sqrtm(np.dot(sigma_gen, sigma_real)), the first argument
                             being the real videos here; I3D called with rescale=False, resize=False
    """
    import mediapipe as mp
    import scipy.linalg

    detector = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)

    def detect_face(image):
        height, width = image.shape[:2]
        results = detector.process(image)
        bounding_box = results.detections[0].location_data.relative_bounding_box
        xmin = int(bounding_box.xmin * width)
        ymin = int(bounding_box.ymin * height)
        face_width = int(bounding_box.width * width)
        face_height = int(bounding_box.height * height)
        xmin = max(0, xmin)
        ymin = max(0, ymin)
        xmax = min(width, xmin + face_width)
        ymax = min(height, ymin + face_height)
        return image[ymin:ymax, xmin:xmax]

    def detect_videos(videos):
        faces_list = []
        for video in videos:
            faces = [cv2.resize(detect_face(f), (224, 224), interpolation=cv2.INTER_AREA) for f in video[20:36]]
            faces_list.append(torch.from_numpy(np.stack(faces, axis=0)))
        return torch.stack(faces_list) / 255.0

    real_videos, fake_videos = detect_videos(reference), detect_videos(generated)
    detector.close()
    i3d_model = torch.jit.load(str(detector_file)).eval()
    i3d_kwargs = dict(rescale=False, resize=False, return_features=True)
    videos_fake, videos_real = real_videos, fake_videos  # compute_our_fvd(real_videos, fake_videos)
    with torch.no_grad():
        feats_fake = i3d_model(videos_fake.permute(0, 4, 1, 2, 3), **i3d_kwargs).cpu().numpy()
        feats_real = i3d_model(videos_real.permute(0, 4, 1, 2, 3), **i3d_kwargs).cpu().numpy()
    mu_gen, sigma_gen = feats_fake.mean(axis=0), np.cov(feats_fake, rowvar=False)
    mu_real, sigma_real = feats_real.mean(axis=0), np.cov(feats_real, rowvar=False)
    m = np.square(mu_gen - mu_real).sum()
    s, _ = scipy.linalg.sqrtm(np.dot(sigma_gen, sigma_real), disp=False)
    return float(np.real(m + np.trace(sigma_gen + sigma_real - s * 2)))


def test_latentsync_equals_the_port_of_latentsync(videos, placed):
    generated, reference = videos
    ours, metric = _fvd("latentsync", generated, reference)
    theirs = _latentsync_reference(placed / "i3d_torchscript.pt", generated, reference)
    assert metric.compute()["num_clips_generated"] == 2  # frames 20-35 of each video
    assert ours == pytest.approx(theirs, rel=1e-6)


def test_latentsync_video_without_a_face_gives_no_clip_and_says_why(videos, placed):
    metric = FVD(variant="latentsync", device="cpu", use_cache=False)
    metric.start_video()
    metric.push(np.zeros((40, SIZE, SIZE, 3), np.uint8))
    metric.push(videos[1][0], real=True)
    row = metric.end_video()
    assert row["fvd_clips_generated"] == 0 and row["fvd_clips_reference"] == 1
    assert "no face" in row["fvd_note"]


# ------------------------------------------------------------------------------- the distance rules
def test_too_few_clips_is_a_clear_error():
    with pytest.raises(ValueError, match="at least 2 clips"):
        fvd_from_features(np.zeros((1, 400)), np.zeros((5, 400)))


def test_resampled_videos_recompute_the_same_distance(videos, placed):
    generated, reference = _first_clip(videos)
    _, metric = _fvd("videogpt", generated, reference)
    full = metric.compute()["fvd"]
    assert metric.compute(indices=np.array([0, 1]))["fvd"] == pytest.approx(full, rel=1e-12)
    gen, ref = metric.features(), metric.features(real=True)
    twice = fvd_from_features(np.concatenate([gen[1], gen[1]]), np.concatenate([ref[1], ref[1]]), "videogpt")
    assert metric.compute(indices=np.array([1, 1]))["fvd"] == pytest.approx(twice, rel=1e-12)
    runner_side = fvd_module.FVDVideos.__new__(fvd_module.FVDVideos)  # the runner class around the same metric
    runner_side.metric, runner_side._resampler_key = metric, None
    for indices in ([0, 1], [1, 1], [1, 0]):  # the bootstrap's fast route, covariance divided by N as cd-fvd
        assert runner_side.resample(np.array(indices))["fvd"] == pytest.approx(
            metric.compute(indices=np.array(indices))["fvd"], rel=1e-6, abs=1e-6)


# ---------------------------------------------------------------------------- through the runner
def test_evaluate_scores_fvd_and_reuses_cached_reference_features(videos, placed, tmp_path, monkeypatch):
    from talking_head.metrics.runner import evaluate

    generated, reference = videos
    for folder, side in (("gen", generated), ("ref", reference)):
        (tmp_path / folder).mkdir()
        for k, video in enumerate(side):
            media.write_video(tmp_path / folder / f"clip{k}.mp4", video[:16], fps=25)  # one clip a video
    calls = []
    original_forward = InceptionI3d.forward

    def counting_forward(self, x):  # counts clips through the real network
        calls.append(len(x))
        return original_forward(self, x)

    monkeypatch.setattr(InceptionI3d, "forward", counting_forward)
    first = evaluate(tmp_path / "gen", tmp_path / "ref", metrics=["fvd"], out=tmp_path / "run1",
                     show_progress=False, fvd_variant="videogpt", bootstrap_set_level=20)
    clips_first = sum(calls)
    calls.clear()
    second = evaluate(tmp_path / "gen", tmp_path / "ref", metrics=["fvd"], out=tmp_path / "run2",
                      show_progress=False, fvd_variant="videogpt", bootstrap_set_level=20)
    assert clips_first == 4 and sum(calls) == 2  # the second run scores only the generated clips
    assert first["results"]["fvd"]["fvd"] == pytest.approx(second["results"]["fvd"]["fvd"], rel=1e-9)
    assert second["config"]["fvd"]["reference_cache_hits"] == 2
    interval = first["intervals"]["fvd"]["fvd"]  # a 95% bootstrap interval over the 2 videos, on the summary
    assert interval["resamples"] == 20 and interval["low"] <= interval["high"]
    assert first["config"]["fvd"]["variant"] == "videogpt" and first["config"]["fvd"]["frames"] == 16
    assert first["weights"]["i3d-kinetics400"] == w.file_sha256(w.destination("i3d-kinetics400"))
    per_video = (tmp_path / "run1" / "per_video.csv").read_text()
    assert "fvd_clips_generated" in per_video


def test_fvd_module_names_every_variant_once():
    assert set(VARIANTS) == {"styleganv", "videogpt", "disco", "latentsync"}
    assert fvd_module.DEFAULT_VARIANT == "styleganv"
