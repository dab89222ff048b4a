"""S3FD face detector exactly as SyncNet's face-track pipeline runs it, batched, in plain torch.

The reference is ``detectors/s3fd`` of joonson/syncnet_python (identical network and post-processing
in the syncnet-python 0.2.3 wheel): a VGG-16 single-shot detector loading ``sfd_face.pth`` (registry
name ``syncnet-s3fd``). One obvious entry point::

    detector = S3FD.from_registry()                      # verified weights, strict load
    boxes = detector.detect_faces(frames)                # frames: (N, H, W, 3) RGB uint8
    boxes[k]                                             # (n_k, 5) float64: x0 y0 x1 y1 score

Conventions: input frames are **RGB** uint8 (what ``run_pipeline.py`` passes after
``cv2.cvtColor(BGR2RGB)``); boxes are in pixels of the input frame, corner convention, with the score
(softmax face probability) last. ``detect_faces`` reproduces ``S3FD.detect_faces(image, conf_th,
scales)`` of the reference bit for bit (see the tests), frame by frame, with one difference: frames of
the same size go through the network together (``batch_size`` at a time) instead of one by one.

The reference's colour handling, which is easy to get wrong: it transposes the RGB image to CHW,
swaps to BGR, subtracts the BGR means (104, 117, 123), and swaps *back* - so the network sees RGB
channel order with R-123, G-117, B-104. We feed the same.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talking_head.toolkit import weights
from talking_head.toolkit.fp32 import strict_fp32
from talking_head.toolkit.frames import as_frames

__all__ = [
    "WEIGHTS",
    "MEAN_BGR",
    "PRIOR_MIN_SIZES",
    "PRIOR_STEPS",
    "VARIANCE",
    "DETECT_TOP_K",
    "DETECT_NMS_THRESHOLD",
    "DETECT_CONF_THRESHOLD",
    "DETECT_NMS_TOP_K",
    "DEFAULT_CONF_THRESHOLD",
    "DEFAULT_SCALES",
    "FINAL_NMS_THRESHOLD",
    "DEFAULT_BATCH_SIZE",
    "BATCH_SIZE",
    "S3FDNet",
    "S3FD",
    "prior_boxes",
    "decode",
    "detect",
    "nms_boxes",
    "detect_faces",
]

WEIGHTS = "syncnet-s3fd"  # registry entry of sfd_face.pth (syncnet_python download_model.sh)

# syncnet_python detectors/s3fd/__init__.py: `img_mean`, BGR order.
MEAN_BGR = (104.0, 117.0, 123.0)
# detectors/s3fd/box_utils.py PriorBox defaults.
PRIOR_MIN_SIZES = (16, 32, 64, 128, 256, 512)
PRIOR_STEPS = (4, 8, 16, 32, 64, 128)
VARIANCE = (0.1, 0.2)
# detectors/s3fd/box_utils.py Detect defaults (the network's own output layer).
DETECT_TOP_K = 750  # boxes kept per image after NMS
DETECT_NMS_THRESHOLD = 0.3
DETECT_CONF_THRESHOLD = 0.05
DETECT_NMS_TOP_K = 5000  # candidates entering NMS (highest scores)
NUM_CLASSES = 2  # background, face
# run_pipeline.py inference_video: DET.detect_faces(image, conf_th=0.9, scales=[opt.facedet_scale=0.25]),
# and detect_faces' final `nms_(bboxes, 0.1)`.
DEFAULT_CONF_THRESHOLD = 0.9
DEFAULT_SCALES = (0.25,)
FINAL_NMS_THRESHOLD = 0.1
DEFAULT_BATCH_SIZE = 1  # frames per forward; 1 reproduces the reference bit for bit (see S3FD)
# What the LSE face-track pipeline uses, by device: on a GPU one frame per forward would leave it idle.
BATCH_SIZE = {"cpu": DEFAULT_BATCH_SIZE, "cuda": 32}

# Layer layout of the reference's `vgg` ModuleList: (in, out) convs, "M" max-pool, "C" ceil-mode max-pool.
# Indices matter: the checkpoint's keys are vgg.<index>.weight, with a ReLU after every conv.
_VGG = (
    (3, 64), (64, 64), "M",
    (64, 128), (128, 128), "M",
    (128, 256), (256, 256), (256, 256), "C",
    (256, 512), (512, 512), (512, 512), "M",
    (512, 512), (512, 512), (512, 512), "M",
)
# Where the L2-normalised sources are taken (after conv3_3, conv4_3, conv5_3 + ReLU), and their
# initial scales (the trained values are in the checkpoint).
_L2NORM = (("L2Norm3_3", 256, 10.0, 16), ("L2Norm4_3", 512, 8.0, 23), ("L2Norm5_3", 512, 5.0, 30))
_HEAD_CHANNELS = (256, 512, 512, 1024, 512, 256)


class _L2Norm(nn.Module):
    """Channel-wise L2 normalisation with a learned per-channel scale (ParseNet), as the reference."""

    def __init__(self, channels: int, scale: float) -> None:
        super().__init__()
        self.eps = 1e-10
        self.weight = nn.Parameter(torch.full((channels,), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.pow(2).sum(dim=1, keepdim=True).sqrt() + self.eps
        return self.weight.view(1, -1, 1, 1) * torch.div(x, norm)


class S3FDNet(nn.Module):
    """The S3FD network with the reference's parameter names, so ``sfd_face.pth`` loads strictly.

    ``forward(x)`` takes (N, 3, H, W) float32, mean-subtracted RGB (see module docstring) and returns
    ``(loc, conf, priors)``: box regressions (N, P, 4), softmax class scores (N, P, 2) and the prior
    boxes (P, 4) in normalised centre-size form. The reference's ``Detect`` layer is :func:`detect`.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for item in _VGG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            elif item == "C":
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(item[0], item[1], 3, 1, padding=1), nn.ReLU(inplace=True)]
        # fc6 (dilated) and fc7 as convolutions.
        layers += [nn.Conv2d(512, 1024, 3, 1, padding=6, dilation=6), nn.ReLU(inplace=True),
                   nn.Conv2d(1024, 1024, 1, 1), nn.ReLU(inplace=True)]
        self.vgg = nn.ModuleList(layers)
        for name, channels, scale, _ in _L2NORM:
            setattr(self, name, _L2Norm(channels, scale))
        self.extras = nn.ModuleList([
            nn.Conv2d(1024, 256, 1, 1), nn.Conv2d(256, 512, 3, 2, padding=1),
            nn.Conv2d(512, 128, 1, 1), nn.Conv2d(128, 256, 3, 2, padding=1),
        ])
        self.loc = nn.ModuleList([nn.Conv2d(c, 4, 3, 1, padding=1) for c in _HEAD_CHANNELS])
        # The first head predicts 3 background logits + 1 face logit ("max-out background label").
        self.conf = nn.ModuleList(
            [nn.Conv2d(_HEAD_CHANNELS[0], 4, 3, 1, padding=1)]
            + [nn.Conv2d(c, 2, 3, 1, padding=1) for c in _HEAD_CHANNELS[1:]]
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        height, width = int(x.shape[2]), int(x.shape[3])
        sources = []
        start = 0
        for name, _, _, stop in _L2NORM:
            for k in range(start, stop):
                x = self.vgg[k](x)
            sources.append(getattr(self, name)(x))
            start = stop
        for k in range(start, len(self.vgg)):
            x = self.vgg[k](x)
        sources.append(x)
        for k, layer in enumerate(self.extras):
            x = F.relu(layer(x), inplace=True)
            if k % 2 == 1:
                sources.append(x)

        locs, confs, feature_maps = [], [], []
        for k, source in enumerate(sources):
            loc = self.loc[k](source)
            conf = self.conf[k](source)
            if k == 0:
                background, _ = torch.max(conf[:, 0:3], dim=1, keepdim=True)
                conf = torch.cat((background, conf[:, 3:]), dim=1)
            feature_maps.append((int(loc.shape[2]), int(loc.shape[3])))
            locs.append(loc.permute(0, 2, 3, 1).contiguous())
            confs.append(conf.permute(0, 2, 3, 1).contiguous())
        n = x.shape[0]
        loc = torch.cat([o.view(n, -1) for o in locs], 1).view(n, -1, 4)
        conf = torch.softmax(torch.cat([o.view(n, -1) for o in confs], 1).view(n, -1, NUM_CLASSES), dim=-1)
        priors = prior_boxes((height, width), feature_maps).to(loc.device)
        return loc, conf, priors


def prior_boxes(image_size: tuple[int, int], feature_maps: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(P, 4) float32 prior boxes (cx, cy, w, h), normalised by the network input size (H, W).

    Row-major over each feature map, maps in order, as ``PriorBox.forward``; the arithmetic is done in
    float64 and rounded to float32 once, like the reference's Python floats -> ``FloatTensor``.
    """
    imh, imw = image_size
    out = []
    for (fh, fw), step, min_size in zip(feature_maps, PRIOR_STEPS, PRIOR_MIN_SIZES):
        i, j = np.meshgrid(np.arange(fh, dtype=np.float64), np.arange(fw, dtype=np.float64), indexing="ij")
        cx = (j + 0.5) / (imw / step)
        cy = (i + 0.5) / (imh / step)
        sizes = np.broadcast_to([min_size / imw, min_size / imh], (fh * fw, 2))
        out.append(np.concatenate([np.stack([cx.ravel(), cy.ravel()], 1), sizes], 1))
    return torch.from_numpy(np.concatenate(out, 0).astype(np.float32))


def decode(loc: torch.Tensor, priors: torch.Tensor, variances: Sequence[float] = VARIANCE) -> torch.Tensor:
    """SSD box decoding: (P, 4) regressions + (P, 4) priors -> (P, 4) x0 y0 x1 y1 (normalised).

    Same tensor operations in the same order as the reference's ``box_utils.decode`` (float32), so the
    rounding is identical.
    """
    boxes = torch.cat((priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:],
                       priors[:, 2:] * torch.exp(loc[:, 2:] * variances[1])), 1)
    boxes[:, :2] -= boxes[:, 2:] / 2
    boxes[:, 2:] += boxes[:, :2]
    return boxes


def _nms_keep(boxes: np.ndarray, scores: torch.Tensor, overlap: float, top_k: int) -> np.ndarray:
    """Greedy NMS of the ``Detect`` layer: indices kept, highest score first.

    The candidate order comes from the same ``scores.sort(0)`` call as the reference (so equal scores
    are ordered the same way); the IoU is computed in float32 with the reference's operation order and
    compared with the threshold rounded to float32, as torch compares a float32 tensor with a Python
    float.
    """
    order = scores.sort(0)[1].numpy()[-top_k:]  # ascending; the best is last
    x1, y1, x2, y2 = (boxes[:, c] for c in range(4))
    area = (x2 - x1) * (y2 - y1)
    limit = np.float32(overlap)
    keep = []
    while order.size:
        i = order[-1]
        keep.append(i)
        if order.size == 1:
            break
        rest = order[:-1]
        w = np.maximum(np.minimum(x2[rest], x2[i]) - np.maximum(x1[rest], x1[i]), np.float32(0.0))
        h = np.maximum(np.minimum(y2[rest], y2[i]) - np.maximum(y1[rest], y1[i]), np.float32(0.0))
        inter = w * h
        iou = inter / ((area[rest] - inter) + area[i])
        order = rest[iou <= limit]
    return np.asarray(keep, dtype=np.int64)


def detect(loc: torch.Tensor, conf: torch.Tensor, priors: torch.Tensor, *,
           top_k: int = DETECT_TOP_K, nms_threshold: float = DETECT_NMS_THRESHOLD,
           conf_threshold: float = DETECT_CONF_THRESHOLD, nms_top_k: int = DETECT_NMS_TOP_K,
           variances: Sequence[float] = VARIANCE) -> torch.Tensor:
    """The reference's ``Detect.forward``: (N, 2, top_k, 5) float32, rows (score, x0, y0, x1, y1).

    Per image and per non-background class: candidates scoring > ``conf_threshold``, greedy NMS at
    ``nms_threshold`` over the ``nms_top_k`` best, the first ``top_k`` kept in descending score order;
    unused rows are zero. Box coordinates are normalised to [0, 1] of the network input.
    """
    num, num_priors = loc.shape[0], priors.shape[0]
    loc, conf, priors = loc.cpu(), conf.cpu(), priors.cpu()
    conf_preds = conf.view(num, num_priors, NUM_CLASSES).transpose(2, 1)
    batch_priors = priors.view(-1, num_priors, 4).expand(num, num_priors, 4).contiguous().view(-1, 4)
    decoded = decode(loc.reshape(-1, 4), batch_priors, variances).view(num, num_priors, 4)
    output = torch.zeros(num, NUM_CLASSES, top_k, 5)
    for i in range(num):
        for cl in range(1, NUM_CLASSES):
            mask = conf_preds[i, cl].gt(conf_threshold)
            scores = conf_preds[i, cl][mask]
            if scores.numel() == 0:
                continue
            boxes = decoded[i][mask]
            keep = _nms_keep(boxes.numpy(), scores, nms_threshold, nms_top_k)[:top_k]
            index = torch.from_numpy(keep)
            output[i, cl, : len(keep)] = torch.cat((scores[index].unsqueeze(1), boxes[index]), 1)
    return output


def nms_boxes(dets: np.ndarray, threshold: float = FINAL_NMS_THRESHOLD) -> np.ndarray:
    """The reference's ``nms_`` (Girshick's py_cpu_nms) on (n, 5) float64 x0 y0 x1 y1 score: kept indices.

    Note the overlap is intersection over union *without* the +1 pixel convention, and a box is dropped
    when its overlap with a better one is > ``threshold`` (0.1 in the pipeline: faces barely overlap).
    Ties in score are ordered by NumPy's default ``argsort``, as in the reference.
    """
    x1, y1, x2, y2, scores = (dets[:, c] for c in range(5))
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        overlap = inter / (areas[i] + areas[rest] - inter)
        order = rest[np.where(overlap <= threshold)[0]]
    return np.asarray(keep, dtype=np.int64)


class S3FD:
    """S3FD face detection with the SyncNet pipeline's settings, batched.

    ``detect_faces(frames)`` returns one (n, 5) float64 array per frame (x0, y0, x1, y1, score in pixels
    of the input frame), identical to the reference's ``S3FD.detect_faces`` on each frame.

    ``batch_size``: frames per network forward. With 1 (the default) the network runs exactly the
    kernels the reference runs, and every output is bit-identical to it (tests). With more frames per
    forward, oneDNN (CPU) and cuDNN pick convolution algorithms by batch size, so the last bit of some
    activations can differ (measured here: up to 1e-5 in the Detect output, boxes within 1e-4 px,
    same detections): 2-3x faster on CPU, much more on GPU, but not bit-exact. Pre- and post-processing
    are vectorised over frames either way.
    """

    def __init__(self, net: S3FDNet, *, device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH_SIZE,
                 weights_sha256: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.batch_size = int(batch_size)
        self._weights_sha256 = weights_sha256

    @classmethod
    def from_registry(cls, name: str | weights.WeightFile = WEIGHTS, *, device: str | torch.device = "cpu",
                      batch_size: int = DEFAULT_BATCH_SIZE) -> "S3FD":
        """Load ``sfd_face.pth`` through the weights registry (sha256-verified, weights_only, strict)."""
        state = weights.load_torch(name, map_location="cpu")
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        net = S3FDNet()
        try:
            net.load_state_dict(state, strict=True)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise weights.WeightsCorruptError(
                f"'{weights.get(name).name}' at {weights.weights_file(name)} is not an S3FD state dict: "
                f"{' '.join(str(err).split())[:300]}"
            ) from err
        return cls(net, device=device, batch_size=batch_size, weights_sha256=weights.verify(name).actual_sha256)

    # ------------------------------------------------------------------ provenance
    def config(self) -> dict[str, Any]:
        """Every constant that changes the detections (the per-call ones are recorded by the caller)."""
        return {
            "detector": "s3fd (syncnet_python detectors/s3fd)",
            "input": "RGB uint8, cv2.resize INTER_LINEAR by scale, minus (R123, G117, B104)",
            "prior_min_sizes": list(PRIOR_MIN_SIZES),
            "prior_steps": list(PRIOR_STEPS),
            "variance": list(VARIANCE),
            "detect_top_k": DETECT_TOP_K,
            "detect_nms_threshold": DETECT_NMS_THRESHOLD,
            "detect_conf_threshold": DETECT_CONF_THRESHOLD,
            "detect_nms_top_k": DETECT_NMS_TOP_K,
            "final_nms_threshold": FINAL_NMS_THRESHOLD,
            "device": str(self.device),
        }

    def weights_provenance(self) -> dict[str, str | None]:
        return {WEIGHTS: self._weights_sha256}

    # ------------------------------------------------------------------ detection
    def _preprocess(self, frames: np.ndarray, scale: float) -> torch.Tensor:
        images = []
        for frame in frames:
            small = cv2.resize(frame, dsize=(0, 0), fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
            if small.ndim != 3 or small.shape[0] == 0 or small.shape[1] == 0:
                raise ValueError(f"scale {scale} leaves nothing of a {frame.shape[1]}x{frame.shape[0]} frame")
            images.append(small)
        batch = np.stack(images).astype(np.float32)
        batch -= np.asarray(MEAN_BGR[::-1], dtype=np.float32)  # RGB order: R-123, G-117, B-104
        return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))

    @torch.no_grad()
    def raw_detections(self, frames: Any, scale: float = DEFAULT_SCALES[0]) -> torch.Tensor:
        """The network's ``Detect`` output for frames at one scale: (N, 2, 750, 5) float32, normalised."""
        frames = as_frames(frames, "frames", uint8=True, allow_no_frames=True)
        outputs = []
        with strict_fp32():  # the reference detections were made in fp32, not TF32
            for start in range(0, len(frames), self.batch_size):
                x = self._preprocess(frames[start : start + self.batch_size], scale).to(self.device)
                outputs.append(detect(*self.net(x)))
        return torch.cat(outputs, 0)

    def detect_faces(self, frames: Any, conf_th: float = DEFAULT_CONF_THRESHOLD,
                     scales: Sequence[float] = DEFAULT_SCALES,
                     nms_threshold: float = FINAL_NMS_THRESHOLD) -> list[np.ndarray]:
        """Faces in each frame: a list of (n, 5) float64 arrays x0, y0, x1, y1, score (pixels).

        ``frames``: (N, H, W, 3) or (H, W, 3) RGB uint8. Per frame and scale, the Detect rows with a score
        above ``conf_th`` (compared in float32, as the reference's tensor comparison) are taken in order,
        scaled by the frame's (W, H, W, H) in float32; all scales together then go through
        :func:`nms_boxes` at ``nms_threshold``.
        """
        frames = as_frames(frames, "frames", uint8=True, allow_no_frames=True)
        if not 0.0 <= conf_th < 1.0:
            raise ValueError(f"conf_th must be in [0, 1), got {conf_th}")
        scales = [float(s) for s in scales]
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f"scales must be a non-empty list of positive numbers, got {scales}")
        height, width = frames.shape[1:3]
        to_pixels = torch.tensor([width, height, width, height], dtype=torch.float32)
        threshold = np.float32(conf_th)
        found: list[list[np.ndarray]] = [[] for _ in range(len(frames))]
        for scale in scales:
            raw = self.raw_detections(frames, scale)
            for n in range(len(frames)):
                for cl in range(NUM_CLASSES):
                    rows = raw[n, cl]
                    count = 0
                    scores = rows[:, 0].numpy()
                    while count < len(scores) and scores[count] > threshold:
                        count += 1
                    if count:
                        pixels = (rows[:count, 1:] * to_pixels).numpy().astype(np.float64)
                        found[n].append(np.concatenate([pixels, scores[:count, None].astype(np.float64)], 1))
        out = []
        for boxes in found:
            dets = np.concatenate(boxes, 0) if boxes else np.empty((0, 5), dtype=np.float64)
            out.append(dets[nms_boxes(dets, nms_threshold)] if len(dets) else dets)
        return out


def detect_faces(frames: Any, conf_th: float = DEFAULT_CONF_THRESHOLD, scales: Sequence[float] = DEFAULT_SCALES,
                 *, device: str | torch.device = "cpu", batch_size: int = DEFAULT_BATCH_SIZE) -> list[np.ndarray]:
    """One-off twin of :meth:`S3FD.detect_faces` (loads the registry weights on every call)."""
    return S3FD.from_registry(device=device, batch_size=batch_size).detect_faces(frames, conf_th, scales)
