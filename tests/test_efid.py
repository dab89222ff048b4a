"""metrics.efid against a literal port of Deep3DFaceRecon_pytorch's crop and regressor, on frames of the built-in
sample, with a created ``epoch_20.pth`` in the real layout (random weights, BatchNorm calibrated on aligned crops).

The real checkpoint cannot be downloaded here: these tests check the network definition and its parameter
names, the crop, the coefficient slice, the loading and the statistics, NOT that the coefficients mean
anything. ResNet-50 costs about 0.1 s a crop on one core, so every test sees a handful of frames.
"""

from __future__ import annotations

import csv
import hashlib
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

import weights_factory as factory
from talking_head.metrics import efid as E
from talking_head.metrics.base import Chunk, VideoInfo, VideoPair
from talking_head.metrics.runner import build_metrics, evaluate
from talking_head.toolkit import face_mesh, media
from talking_head.toolkit import weights as w

# =============================================================================================================
# Literal port of sicxu/Deep3DFaceRecon_pytorch at 9167c7136aebef0c54d3ac74f4b0396222a491c1 (file and lines
# named at each function). Branches the test path never takes (mask, use_last_fc, dilation, groups) are left out.
# =============================================================================================================
RESAMPLING_METHOD = Image.Resampling.BICUBIC  # util/preprocess.py lines 7-12


def ref_POS(xp, x):  # util/preprocess.py lines 24-46
    npts = xp.shape[1]

    A = np.zeros([2*npts, 8])

    A[0:2*npts-1:2, 0:3] = x.transpose()
    A[0:2*npts-1:2, 3] = 1

    A[1:2*npts:2, 4:7] = x.transpose()
    A[1:2*npts:2, 7] = 1

    b = np.reshape(xp.transpose(), [2*npts, 1])

    with warnings.catch_warnings():  # the module filters FutureWarning (line 20): lstsq without rcond
        warnings.simplefilter("ignore", FutureWarning)
        k, _, _, _ = np.linalg.lstsq(A, b)

    R1 = k[0:3]
    R2 = k[4:7]
    sTx = k[3]
    sTy = k[7]
    s = (np.linalg.norm(R1) + np.linalg.norm(R2))/2
    t = np.stack([sTx, sTy], axis=0)

    return t, s


def ref_resize_n_crop_img(img, lm, t, s, target_size=224.):  # util/preprocess.py lines 143-164 (mask left out)
    w0, h0 = img.size
    w = (w0*s).astype(np.int32)
    h = (h0*s).astype(np.int32)
    with warnings.catch_warnings():  # float() of a (1,) array: deprecated in numpy >= 1.25, same value
        warnings.simplefilter("ignore", DeprecationWarning)
        left = (w/2 - target_size/2 + float((t[0] - w0/2)*s)).astype(np.int32)
        right = left + target_size
        up = (h/2 - target_size/2 + float((h0/2 - t[1])*s)).astype(np.int32)
    below = up + target_size

    img = img.resize((w, h), resample=RESAMPLING_METHOD)
    img = img.crop((left, up, right, below))

    lm = np.stack([lm[:, 0] - t[0] + w0/2, lm[:, 1] -
                  t[1] + h0/2], axis=1)*s
    lm = lm - np.reshape(
            np.array([(w/2 - target_size/2), (h/2-target_size/2)]), [1, 2])

    return img, lm


def ref_extract_5p(lm):  # util/preprocess.py lines 167-172
    lm_idx = np.array([31, 37, 40, 43, 46, 49, 55]) - 1
    lm5p = np.stack([lm[lm_idx[0], :], np.mean(lm[lm_idx[[1, 2]], :], 0), np.mean(
        lm[lm_idx[[3, 4]], :], 0), lm[lm_idx[5], :], lm[lm_idx[6], :]], axis=0)
    lm5p = lm5p[[1, 2, 0, 3, 4], :]
    return lm5p


def ref_align_img(img, lm, lm3D, target_size=224., rescale_factor=102.):  # util/preprocess.py lines 175-204
    w0, h0 = img.size
    if lm.shape[0] != 5:
        lm5p = ref_extract_5p(lm)
    else:
        lm5p = lm

    t, s = ref_POS(lm5p.transpose(), lm3D.transpose())
    s = rescale_factor/s

    img_new, lm_new = ref_resize_n_crop_img(img, lm, t, s, target_size=target_size)
    # trans_params = np.array([w0, h0, s, t[0], t[1]]) (line 202) raises on numpy >= 1.24 (a ragged array); unused
    return (w0, h0, s, t), img_new, lm_new


def ref_load_lm3d(Lm3D):  # util/load_mats.py lines 105-116, given the "lm" array of BFM/similarity_Lm3D_all.mat
    lm_idx = np.array([31, 37, 40, 43, 46, 49, 55]) - 1
    Lm3D = np.stack([Lm3D[lm_idx[0], :], np.mean(Lm3D[lm_idx[[1, 2]], :], 0), np.mean(
        Lm3D[lm_idx[[3, 4]], :], 0), Lm3D[lm_idx[5], :], Lm3D[lm_idx[6], :]], axis=0)
    Lm3D = Lm3D[[1, 2, 0, 3, 4], :]
    return Lm3D


def ref_read_data(im, lm, lm3d_std):  # test.py lines 25-36; the image is given (not opened), lm as read from its txt
    W, H = im.size
    lm = lm.astype(np.float32)
    lm = lm.reshape([-1, 2])
    lm[:, -1] = H - 1 - lm[:, -1]
    _, im, lm = ref_align_img(im, lm, lm3d_std)
    im = torch.tensor(np.array(im)/255., dtype=torch.float32).permute(2, 0, 1).unsqueeze(0)
    lm = torch.tensor(lm).unsqueeze(0)
    return im, lm


def conv3x3(in_planes, out_planes, stride=1, groups=1, dilation=1):  # models/networks.py lines 146-149
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride,
                     padding=dilation, groups=groups, bias=False, dilation=dilation)


def conv1x1(in_planes, out_planes, stride=1, bias=False):  # models/networks.py lines 152-154
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=bias)


class Bottleneck(nn.Module):  # models/networks.py lines 206-261
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None, groups=1, base_width=64, dilation=1,
                 norm_layer=None):
        super(Bottleneck, self).__init__()
        if norm_layer is None:
            norm_layer = nn.BatchNorm2d
        width = int(planes * (base_width / 64.)) * groups
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = norm_layer(width)
        self.conv2 = conv3x3(width, width, stride, groups, dilation)
        self.bn2 = norm_layer(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x

        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)

        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)

        out = self.conv3(out)
        out = self.bn3(out)

        if self.downsample is not None:
            identity = self.downsample(x)

        out += identity
        out = self.relu(out)

        return out


class ResNet(nn.Module):  # models/networks.py lines 264-375 (use_last_fc=False; no dilation, one group)

    def __init__(self, block, layers, num_classes=1000, zero_init_residual=False, use_last_fc=False):
        super(ResNet, self).__init__()
        norm_layer = nn.BatchNorm2d
        self._norm_layer = norm_layer

        self.inplanes = 64
        self.dilation = 1
        self.use_last_fc = use_last_fc
        self.groups = 1
        self.base_width = 64
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3,
                               bias=False)
        self.bn1 = norm_layer(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        norm_layer = self._norm_layer
        downsample = None
        previous_dilation = self.dilation
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                norm_layer(planes * block.expansion),
            )

        layers = []
        layers.append(block(self.inplanes, planes, stride, downsample, self.groups,
                            self.base_width, previous_dilation, norm_layer))
        self.inplanes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.inplanes, planes, groups=self.groups,
                                base_width=self.base_width, dilation=self.dilation,
                                norm_layer=norm_layer))

        return nn.Sequential(*layers)

    def _forward_impl(self, x):
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)

        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)

        x = self.avgpool(x)
        return x

    def forward(self, x):
        return self._forward_impl(x)


class ReconNetWrapper(nn.Module):  # models/networks.py lines 69-104 (net_recon='resnet50', use_last_fc=False)
    fc_dim = 257

    def __init__(self):
        super(ReconNetWrapper, self).__init__()
        last_dim = 2048  # func_dict['resnet50'], lines 518-521
        backbone = ResNet(Bottleneck, [3, 4, 6, 3], num_classes=self.fc_dim)  # resnet50, lines 418-427
        self.backbone = backbone
        self.final_layers = nn.ModuleList([
            conv1x1(last_dim, 80, bias=True),  # id layer
            conv1x1(last_dim, 64, bias=True),  # exp layer
            conv1x1(last_dim, 80, bias=True),  # tex layer
            conv1x1(last_dim, 3, bias=True),  # angle layer
            conv1x1(last_dim, 27, bias=True),  # gamma layer
            conv1x1(last_dim, 2, bias=True),  # tx, ty
            conv1x1(last_dim, 1, bias=True)   # tz
        ])
        # (lines 93-95 zero these layers for training; the test gives them random values instead)

    def forward(self, x):
        x = self.backbone(x)
        output = []
        for layer in self.final_layers:
            output.append(layer(x))
        x = torch.flatten(torch.cat(output, dim=1), 1)
        return x


# The rows of BFM/similarity_Lm3D_all.mat ("lm", 68x3 float32) that load_lm3d reads: 1-based points 31, 37, 40,
# 43, 46, 49, 55, copied from the file in the repository.
LM3D_ROWS = {
    31: (0.003253498813137412, -0.04617932438850403, 0.5524424314498901),
    37: (-0.4309752285480499, 0.2919657528400421, 0.10403323173522949),
    40: (-0.19199791550636292, 0.2887558043003082, 0.16352581977844238),
    43: (0.1878506988286972, 0.28873613476753235, 0.16018015146255493),
    46: (0.43174704909324646, 0.290704607963562, 0.10341036319732666),
    49: (-0.25216928124427795, -0.3813391625881195, 0.22405731678009033),
    55: (0.24846619367599487, -0.38128235936164856, 0.22235769033432007),
}


def reference_expressions(net: ReconNetWrapper, frames: np.ndarray, points5: np.ndarray) -> np.ndarray:
    """test.py's path, frame by frame: read_data, then net_recon, then split_coeff's exp (models/bfm.py line 261)."""
    out = []
    with torch.no_grad():
        for frame, lm in zip(frames, points5):
            im, _ = ref_read_data(Image.fromarray(frame), lm, E.LM3D_5)
            out.append(net(im)[:, 80:144].numpy())
    return np.concatenate(out)


# =============================================================================================================
# Fixtures
# =============================================================================================================
@pytest.fixture(scope="module")
def sample(shared_sample):
    """Six frames of the built-in sample (tests/conftest.py) and their MediaPipe meshes, as the runner makes them."""
    clip = shared_sample(speakers=1, clips=1, seconds=1.0, seed=0)[0]
    frames = media.read_video(clip.video)[:24:4]  # (6, 512, 512, 3)
    with face_mesh.FaceMeshDetector(video=True) as detector:
        meshes = np.stack([detector.detect(frame) for frame in frames])
    return clip, frames, meshes


@pytest.fixture(scope="module")
def reference_net(sample) -> ReconNetWrapper:
    """The ported network with random weights, BatchNorm statistics calibrated on three aligned crops."""
    _, frames, meshes = sample
    torch.manual_seed(0)
    net = ReconNetWrapper()
    for layer in net.final_layers:
        layer.reset_parameters()  # PyTorch's default init instead of the training start's zeros
    crops = torch.cat([ref_read_data(Image.fromarray(f), p, E.LM3D_5)[0]
                       for f, p in zip(frames[::2], E.five_points(meshes[::2]))])
    factory._calibrate(net, lambda n: n(crops))
    return net.eval()


def _checkpoint(net: nn.Module) -> dict[str, Any]:
    """What models/base_model.py save_networks writes: net_recon, the optimizer's and the scheduler's state."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)
    return {"net_recon": net.state_dict(), "opt_00": optimizer.state_dict(), "sched_00": scheduler.state_dict()}


@pytest.fixture(scope="module")
def placed(reference_net, tmp_path_factory):
    """epoch_20.pth at the registry's place in a private cache, for the whole module."""
    root = tmp_path_factory.mktemp("efid-weights")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOOLKIT_WEIGHTS_DIR", str(root / "weights"))
        patch.setenv("TOOLKIT_CACHE_DIR", str(root / "toolkit-cache"))
        yield factory.place(patch, E.WEIGHTS_NAME, _checkpoint(reference_net))


@pytest.fixture(scope="module")
def metric(placed) -> E.EFID:
    """One crop a forward pass, as test.py runs the network: CPU kernels sum in another order for other batch
    sizes (differences of ~1e-5 on these coefficients), so the comparison is made at the reference's."""
    return E.EFID(device="cpu", batch_size=1)


@pytest.fixture(scope="module")
def coefficients(sample, reference_net, metric) -> tuple[np.ndarray, np.ndarray, int]:
    """Our expression coefficients of the six frames, the reference's, and how many frames had no face."""
    _, frames, meshes = sample
    ours, missing = metric.expressions(frames, meshes)
    return ours, reference_expressions(reference_net, frames, E.five_points(meshes)), missing


# =============================================================================================================
# Tests
# =============================================================================================================
def test_constants_are_the_references():
    lm = np.full((68, 3), np.nan, np.float32)
    for point, row in LM3D_ROWS.items():
        lm[point - 1] = row
    np.testing.assert_array_equal(ref_load_lm3d(lm), E.LM3D_5)  # float32, bit for bit
    assert E.COEFF_DIM == ReconNetWrapper.fc_dim == 257 and (E.EXP.start, E.EXP.stop) == (80, 144)
    rng = np.random.default_rng(0)
    fan = rng.uniform(0, 500, (68, 2))
    np.testing.assert_allclose(E.five_points(fan), ref_extract_5p(fan), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(E.five_points(fan[None, :5])[0], fan[:5])
    with pytest.raises(ValueError, match="478|68|5"):
        E.five_points(np.zeros((3, 10, 2)))


def test_parameter_names_and_shapes_are_the_references(reference_net, placed):
    with torch.device("meta"):  # names and shapes only
        ours = E.ReconNet().state_dict()
    theirs = reference_net.state_dict()
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    assert set(w.load_torch(E.WEIGHTS_NAME)) == {"net_recon", "opt_00", "sched_00"}  # weights_only=True reads it


def _flipped(points: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """Points as test.py read_data hands them to align_img: float32, y counted from the bottom."""
    lm = points.astype(np.float32)
    lm[:, 1] = frame.shape[0] - 1 - lm[:, 1]
    return lm


def test_alignment_equals_align_img(sample):
    _, frames, meshes = sample
    points = E.five_points(meshes)
    for frame, p in zip(frames, points):
        (_, _, s_ref, _), crop_ref, _ = ref_align_img(Image.fromarray(frame), _flipped(p, frame), E.LM3D_5)
        t_pos, s_pos = ref_POS(_flipped(p, frame).transpose(), E.LM3D_5.transpose())
        t, s = E.pos(_flipped(p, frame))
        np.testing.assert_allclose(t, t_pos.ravel(), rtol=1e-12)
        assert s == pytest.approx(float(s_pos), rel=1e-12) and 102.0 / s == pytest.approx(float(s_ref), rel=1e-12)
        np.testing.assert_array_equal(E.align(frame, p), np.asarray(crop_ref))
    # A crop reaching past the frame is black there, as PIL's crop; points that cannot be fitted give no crop.
    shifted = points[0] - [180, 0]
    crop = E.align(frames[0], shifted)
    crop_ref = ref_align_img(Image.fromarray(frames[0]), _flipped(shifted, frames[0]), E.LM3D_5)[1]
    np.testing.assert_array_equal(crop, np.asarray(crop_ref))
    assert (crop[:, :20] == 0).all()
    assert E.align(frames[0], np.full((5, 2), np.nan)) is None
    assert E.align(frames[0], np.full((5, 2), 100.0)) is None  # every point in one place: scale 0


def test_expression_coefficients_equal_the_reference(coefficients):
    ours, theirs, missing = coefficients
    print(f"max |ours - reference| {np.abs(ours - theirs).max():.2e}, coefficient std {theirs.std():.2f}")
    assert missing == 0 and ours.shape == (6, 64)
    assert theirs.std() > 0.05  # calibrated: the coefficients are not vanishingly small
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_identical_sets_score_zero(coefficients):
    ours, _, _ = coefficients
    with pytest.warns(E.SmallSampleWarning, match="fewer than the 65"):
        result = E.efid_from_expressions(ours, ours)
    scale = result["frechet"]["trace_sigma1"]
    assert scale > 0 and abs(result["efid"]) < 1e-9 * scale
    assert result["num_frames_generated"] == result["num_frames_reference"] == 6 and len(result["warnings"]) == 2
    assert E.efid_from_expressions(ours, ours[::-1], warn=False)["efid"] == pytest.approx(result["efid"], abs=1e-9 * scale)
    assert E.efid_from_expressions(ours, ours + 0.5, warn=False)["efid"] == pytest.approx(64 * 0.25, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2 frames"):
        E.efid_from_expressions(ours[:1], ours)


def _videos(frames: np.ndarray, meshes: np.ndarray) -> list[tuple[VideoInfo, list[Chunk]]]:
    """Three videos (two frames, one, one), one chunk each: reference frames against blurred copies with the same
    meshes; the first video's second generated frame has no face."""
    blurred = np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in frames])
    gen_meshes = meshes.copy()
    gen_meshes[1] = np.nan
    out = []
    for v, part in enumerate((slice(0, 2), slice(2, 3), slice(3, 4))):
        chunk = Chunk(blurred[part], frames[part], blurred[part], gen_meshes[part], meshes[part])
        pair = VideoPair(f"v{v}", Path(f"gen/v{v}.mp4"), Path(f"ref/v{v}.mp4"))
        out.append((VideoInfo(pair, fps=25.0, frames_used=len(chunk.reference)), [chunk]))
    return out


def _feed(metric: E.EFIDVideos, videos) -> list[dict]:
    rows = []
    for video, chunks in videos:
        metric.start_video(video)
        for chunk in chunks:
            metric.update(chunk)
        rows.append(metric.end_video())
    return rows


def test_runner_class_pools_whole_videos_in_any_order(sample, placed):
    _, frames, meshes = sample
    videos = _videos(frames, meshes)
    metric = E.EFIDVideos(device="cpu")
    rows = _feed(metric, videos)
    assert rows == [{"efid_frames_generated": 1, "efid_frames_reference": 2}] + \
        [{"efid_frames_generated": 1, "efid_frames_reference": 1}] * 2
    with pytest.warns(E.SmallSampleWarning):
        result = metric.compute()
    assert result["efid"] > 0 and result["videos"] == 3 and len(result["warnings"]) == 2
    assert (result["num_frames_generated"], result["frames_without_face_generated"]) == (3, 1)
    assert result["frames_without_face_reference"] == 0

    # A video that fails half-way leaves nothing behind (its frame went through the network first).
    video, chunks = videos[2]
    metric.start_video(video)
    metric.update(chunks[0])
    metric.discard_video()
    with pytest.warns(E.SmallSampleWarning):
        assert metric.compute() == result

    # The bootstrap hook: all videos once, in any order, is the pooled value; repeats weigh a video more.
    assert metric.resample(np.arange(3))["efid"] == pytest.approx(result["efid"], rel=1e-9)
    assert metric.resample(np.array([2, 0, 1]))["efid"] == pytest.approx(result["efid"], rel=1e-9)
    gen, ref = zip(*metric.video_rows())
    twice = E.efid_from_expressions(np.concatenate([gen[0], gen[0], gen[1]]), np.concatenate([ref[0], ref[0], ref[1]]),
                                    warn=False)
    assert metric.resample([0, 0, 1]) == {"efid": pytest.approx(twice["efid"], rel=1e-12)}
    assert np.isnan(metric.resample([])["efid"])
    with pytest.raises(IndexError):
        metric.resample([3])

    # Shuffled videos, scored again from the frames: the same E-FID.
    metric.reset()
    _feed(metric, [videos[2], videos[0], videos[1]])
    with pytest.warns(E.SmallSampleWarning):
        assert metric.compute()["efid"] == pytest.approx(result["efid"], rel=1e-9)


def test_missing_weights_give_the_registry_message(isolated_caches):
    with pytest.raises(w.WeightsMissingError) as info:
        E.EFID(device="cpu")
    message = str(info.value)
    assert message.startswith("Pretrained weights 'deep3dfacerecon' are missing:")
    assert w.REGISTRY[E.WEIGHTS_NAME].url in message and "toolkit weights fetch deep3dfacerecon" in message
    assert str(isolated_caches / "weights" / "face_recon_feat0.2_augment" / "epoch_20.pth") in message
    built, skipped = build_metrics(["efid"])
    assert built == [] and skipped == {"efid": message.splitlines()[0]}


def test_a_checkpoint_without_net_recon_is_refused(isolated_caches, monkeypatch):
    factory.place(monkeypatch, E.WEIGHTS_NAME, {"state_dict": {"conv.weight": torch.zeros(1)}})
    with pytest.raises(w.WeightsCorruptError, match="no 'net_recon' state dict"):
        E.EFID(device="cpu")


@pytest.mark.filterwarnings("ignore::talking_head.metrics.fid.SmallSampleWarning")
def test_evaluate_runs_efid(sample, placed, metric, tmp_path):
    clip, _, _ = sample
    frames = media.read_video(clip.video)[:2]
    reference = tmp_path / "ref" / "clip.mp4"
    generated = tmp_path / "gen" / "clip.mp4"
    for path, video in ((reference, frames), (generated, np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in frames]))):
        path.parent.mkdir()
        media.write_video(path, video, fps=25)  # E-FID reads no audio
    summary = evaluate(generated, reference, metrics=["efid"], out=tmp_path / "run", show_progress=False)
    assert summary["skipped"] == {} and summary["videos"] == 1
    result = summary["results"]["efid"]
    assert result["efid"] > 0 and result["num_frames_generated"] == result["num_frames_reference"] == 2
    assert any("fewer than the 65" in m for m in result["warnings"])
    assert summary["weights"] == metric.weights_provenance() and summary["config"]["efid"]["min_frames"] == 65
    sha256 = hashlib.sha256(w.weights_file(E.WEIGHTS_NAME).read_bytes()).hexdigest()
    assert summary["weights"] == {"deep3dfacerecon": sha256}
    with open(tmp_path / "run" / "per_video.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert int(row["efid_frames_generated"]) == int(row["efid_frames_reference"]) == 2

    # The library class on the same decoded frames and the same meshes: the same number, but for the float32
    # summation order of another batch size (the runner's two frames a pass against this one's one).
    metric.reset()
    for path, real in ((generated, False), (reference, True)):
        decoded = media.read_video(path)
        with face_mesh.FaceMeshDetector(video=True) as detector:
            metric.update(decoded, np.stack([detector.detect(f) for f in decoded]), real=real)
    assert metric.compute()["efid"] == pytest.approx(result["efid"], rel=1e-4)
