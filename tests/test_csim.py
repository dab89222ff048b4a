"""talking_head.metrics.csim: the iResNet-100 definition, strict weight loading, the three aggregation conventions.

The real ArcFace weights cannot be downloaded, so a state dict of our iResNet-100 with random weights
(and random BatchNorm statistics) is saved under the registry's file name. With random weights the
embeddings carry no identity: these tests check the architecture, the loading, the preprocessing and
the aggregation, NOT that a different person scores lower than the same person (untestable here).
iResNet-100 costs about a second per frame on a laptop CPU, so every test uses one or two frames.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage import data
from sklearn.metrics.pairwise import cosine_similarity

from talking_head.metrics.csim import CSIM, WEIGHTS_NAME, iresnet100, preprocess
from talking_head.toolkit import weights as w

TOL = 1e-6


@pytest.fixture(scope="module")
def backbone_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    net = iresnet100()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("arcface") / "backbone.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture
def arcface(isolated_caches, monkeypatch, backbone_file) -> Path:
    entry = dataclasses.replace(w.REGISTRY[WEIGHTS_NAME], sha256=None, size=None)
    monkeypatch.setitem(w.REGISTRY, WEIGHTS_NAME, entry)
    target = w.destination(entry)
    assert target.parts[-2:] == ("ms1mv3_arcface_r100_fp16", "backbone.pth")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(backbone_file)
    return target


def _faces() -> np.ndarray:
    """Two different RGB uint8 crops of a photo (not 112x112: the metric resizes whole frames)."""
    photo = data.astronaut()
    return np.stack([photo[30:270, 100:340], photo[200:440, 250:490]])


def test_architecture_has_the_published_checkpoint_layout(backbone_file):
    state = torch.load(backbone_file, map_location="cpu", weights_only=True)
    assert len(state) == 925  # 7 tensors per BatchNorm, convs, PReLUs, fc, features
    assert state["conv1.weight"].shape == (64, 3, 3, 3)
    assert state["layer1.0.downsample.0.weight"].shape == (64, 64, 1, 1)
    assert state["layer3.29.conv2.weight"].shape == (256, 256, 3, 3)  # 30 blocks in stage 3
    assert state["layer4.2.prelu.weight"].shape == (512,)
    assert state["fc.weight"].shape == (512, 512 * 7 * 7) and state["features.running_var"].shape == (512,)
    assert "layer2.13.bn1.weight" not in state and "layer2.12.bn1.weight" in state  # [3, 13, 30, 3]
    # Same parameter count as the published 261,223,796-byte backbone.pth: fp32 tensors plus a zip
    # container; any architecture difference would move the size by megabytes.
    published = 261_223_796  # insightface's ms1mv3 r100 backbone.pth as published (the registry leaves the size unpinned)
    assert abs(backbone_file.stat().st_size - published) / published < 1e-3


def test_preprocessing_is_vicos(arcface):
    frames = _faces()
    x = preprocess(frames)
    resized = np.stack([cv2.resize(f, (112, 112)) for f in frames]).astype(np.float32)
    expected = ((resized / np.float32(255)) - np.float32(0.5)) / np.float32(0.5)
    assert x.shape == (2, 3, 112, 112) and x.dtype == torch.float32
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), expected)


@pytest.mark.slow  # ~17 CPU s: ArcFace on every frame
def test_identical_frames_give_one_paired_and_source(arcface):
    faces = _faces()
    paired = CSIM("paired")
    paired.update(faces[:1], faces[:1])
    result = paired.compute()
    assert abs(result["csim"] - 1.0) < TOL and result["convention"] == "paired" and result["num_frames"] == 1
    assert paired.weights_provenance() == {WEIGHTS_NAME: hashlib.sha256(arcface.read_bytes()).hexdigest()}
    assert paired.config()["alignment"].startswith("none")

    source = CSIM("source")
    source.update(faces[1], faces[1])  # one source image, one generated frame
    assert abs(source.compute()["csim"] - 1.0) < TOL
    assert source.per_frame().shape == (1,)


@pytest.mark.slow  # ~23 CPU s: ArcFace on every frame pair
def test_vico_is_the_mean_over_all_frame_pairs(arcface):
    faces = _faces()
    reference = faces
    generated = np.stack([cv2.GaussianBlur(f, (0, 0), 2.0) for f in faces])
    metric = CSIM("vico", batch_size=1)
    embeddings = metric.embed(np.concatenate([reference, generated]))  # (4, 512)
    assert embeddings.shape == (4, 512) and np.isfinite(embeddings).all()
    gt_feats, pd_feats = embeddings[:2], embeddings[2:]
    metric.update(generated[:1], reference[:1])  # streaming: pooled over updates, like ViCo's concatenation
    metric.update(generated[1:], reference[1:])
    result = metric.compute()
    expected = cosine_similarity(gt_feats, pd_feats).mean()  # ViCo compute_csim.py, last line
    assert abs(result["csim"] - expected) < TOL
    assert result["num_frames"] == 2 and result["convention"] == "vico"
    paired = float(np.mean(np.diag(cosine_similarity(gt_feats, pd_feats))))
    assert abs(result["csim"] - paired) > 1e-3  # all pairs != time-aligned pairs
    with pytest.raises(ValueError, match="no per-frame"):
        metric.per_frame()


def test_bad_input_and_weights(arcface, monkeypatch):
    metric = CSIM("paired")
    face = _faces()[0]
    with pytest.raises(ValueError, match="uint8"):
        metric.update(face.astype(np.float32), face)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        metric.update(face[..., 0], face[..., 0])
    with pytest.raises(ValueError, match="empty"):
        metric.update(np.zeros((0, 112, 112, 3), np.uint8), np.zeros((0, 112, 112, 3), np.uint8))
    with pytest.raises(ValueError, match="as many reference frames"):
        metric.update(np.stack([face, face]), face)
    with pytest.raises(ValueError, match="before any update"):
        metric.compute()
    with pytest.raises(ValueError, match="convention"):
        CSIM("cosface")

    source = CSIM("source")
    with pytest.raises(ValueError, match="one reference image"):
        source.update(face, np.stack([face, face]))

    # a checkpoint that is not iresnet100 is refused by the strict load
    arcface.unlink()
    torch.save({"conv1.weight": torch.zeros(64, 3, 3, 3)}, arcface)
    with pytest.raises(w.WeightsCorruptError, match="iresnet100"):
        CSIM()
    arcface.unlink()
    with pytest.raises(w.WeightsMissingError, match="backbone.pth"):
        CSIM()
