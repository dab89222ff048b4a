"""CSIM: identity cosine similarity with ArcFace iResNet-100 (insightface ``arcface_torch``, MS1MV3).

One obvious entry point::

    from talking_head.metrics.csim import CSIM, csim
    metric = CSIM(convention="vico")          # or "paired", or "source"
    for gen, ref in pairs:                    # (T, H, W, 3) uint8 RGB; see conventions for ref
        metric.update(gen, ref)
    metric.compute()        # {"csim": ..., "num_frames": ..., "convention": "vico", ...}

Embedding (every convention): the whole frame, RGB uint8, ``cv2.resize`` to 112x112 (bilinear,
OpenCV's default), ``(x / 255 - 0.5) / 0.5`` in float32, iResNet-100, the 512-d output
(after the final BatchNorm1d, not L2-normalised; the cosine normalises). This is
``evaluations/arcface_torch/compute_csim.py`` of the ViCo challenge baseline
(dc3ea9f/vico_challenge_baseline). **No face detection or 5-point alignment** is done, in any
convention: frames must already be face crops for the number to mean identity (aligned
112x112 crops are passed through unchanged). Alignment is out of scope.

Conventions (the result names the one used):

* ``"vico"``: what ViCo's script computed as first published (``compute_csim.py`` at commit
  01dc5ce; its revision 16424c0 averages the time-aligned pairs instead, which is ``"paired"``).
  It stacks the embeddings of all reference frames G and of all generated frames P (over all
  videos) and prints
  ``sklearn.metrics.pairwise.cosine_similarity(G, P).mean()``: the mean over **every
  (reference frame, generated frame) pair**, not only the time-aligned ones. That equals the dot
  product of the mean unit embeddings, which is how it is accumulated here (streaming, exact).
  ``reference`` is the ground-truth clip (same number of frames as ``generated``, as ViCo
  requires).
* ``"paired"``: mean over frames of the cosine between generated frame t and reference frame t
  (what "CSIM between paired frames" usually means in papers, and what ViCo's current script does).
* ``"source"``: mean over generated frames of the cosine to one source/identity image
  (``reference`` is a single (H, W, 3) image, or (1, H, W, 3)), as in the many
  ``FaceAnalysis``-based scripts, but with this backbone and without their detection/alignment.

Weights: registry ``arcface-r100`` (``ms1mv3_arcface_r100_fp16/backbone.pth``), loaded strictly
into :class:`IResNet` (parameter names as insightface's ``iresnet100``). On CUDA, TF32 is off.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np
import torch
from torch import nn

from talking_head.toolkit.fp32 import strict_fp32
from talking_head.toolkit.frames import as_frames
from talking_head.metrics import registry
from talking_head.metrics.base import PerFrameMeans, batch_size_for
from talking_head.metrics.feature_cache import ReferenceRows, video_facts
from talking_head.toolkit import weights

__all__ = [
    "ARCFACE_INPUT_SIZE", "IRESNET100_LAYERS", "EMBEDDING_DIM", "BN_EPS", "INPUT_MEAN", "INPUT_STD",
    "WEIGHTS_NAME", "CONVENTIONS", "BATCH_SIZE", "IBasicBlock", "IResNet", "iresnet100", "preprocess", "CSIM", "csim",
]

Convention = Literal["vico", "paired", "source"]
CONVENTIONS: tuple[str, ...] = ("vico", "paired", "source")
DEFAULT_CONVENTION: Convention = registry.defaults("csim")["convention"]  # "paired", as the leaderboards

# ---------------------------------------------------------------------------------------- constants
ARCFACE_INPUT_SIZE = 112  # arcface_torch input side; ViCo resizes whole frames to (112, 112)
IRESNET100_LAYERS = (3, 13, 30, 3)  # insightface arcface_torch iresnet100
EMBEDDING_DIM = 512  # IResNet num_features
BN_EPS = 1e-5  # every BatchNorm in arcface_torch's iresnet.py
FC_SPATIAL = 7 * 7  # IResNet.fc_scale: 112 / 2^4 = 7
INPUT_MEAN = 0.5  # ViCo compute_csim.py: frames.div_(255).sub_(0.5).div_(0.5)
INPUT_STD = 0.5
WEIGHTS_NAME = "arcface-r100"
BATCH_SIZE = {"cpu": 32, "cuda": 256}  # frames per forward pass, by device


# --------------------------------------------------------------------------------------- network
def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    """Pre-activation-style block of arcface_torch: BN, conv3x3, BN, PReLU, conv3x3 (stride), BN, + shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=BN_EPS)
        self.conv1 = _conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.prelu = nn.PReLU(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=BN_EPS)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """insightface arcface_torch IResNet (no dilation, groups 1, width 64): (N, 3, 112, 112) -> (N, 512).

    Module names match insightface's so its ``backbone.pth`` loads with ``strict=True``. The fp16
    flag of the original only wraps the trunk in CUDA autocast; the weights are the same, so it
    is not modelled (inference here is fp32). Dropout (p=0 at inference) has no parameters and is omitted.
    """

    def __init__(self, layers: tuple[int, int, int, int] = IRESNET100_LAYERS, num_features: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=BN_EPS)
        self.prelu = nn.PReLU(64)
        inplanes = 64
        stages = []
        for planes, blocks in zip((64, 128, 256, 512), layers):
            # every stage halves the resolution in its first block, with a 1x1-conv + BN shortcut
            downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=2, bias=False),
                                       nn.BatchNorm2d(planes, eps=BN_EPS))
            stage = [IBasicBlock(inplanes, planes, 2, downsample)]
            stage += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
            stages.append(nn.Sequential(*stage))
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.bn2 = nn.BatchNorm2d(512, eps=BN_EPS)
        self.fc = nn.Linear(512 * FC_SPATIAL, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(x))


def iresnet100() -> IResNet:
    """The architecture of ``ms1mv3_arcface_r100_fp16/backbone.pth`` (random weights until loaded)."""
    return IResNet(IRESNET100_LAYERS)


# ----------------------------------------------------------------------------------------- input
def _as_frames(frames: Any, name: str) -> np.ndarray:
    array = as_frames(frames, name)
    if array.dtype != np.uint8:
        raise ValueError(f"{name}: frames must be uint8 RGB in [0, 255] (as decoded video), got dtype {array.dtype}")
    return array


def preprocess(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 3, 112, 112) float32 in [-1, 1], exactly as ViCo's compute_csim.py."""
    size = (ARCFACE_INPUT_SIZE, ARCFACE_INPUT_SIZE)
    resized = np.stack([f if f.shape[:2] == size else cv2.resize(f, size) for f in frames])  # INTER_LINEAR
    x = torch.from_numpy(resized).permute(0, 3, 1, 2).float()
    return x.div_(255).sub_(INPUT_MEAN).div_(INPUT_STD)  # same float32 operation order as the reference


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; zero rows stay zero (as sklearn.preprocessing.normalize)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm == 0, 1.0, norm)


# ---------------------------------------------------------------------------------------- metric
class CSIM:
    """Streaming identity similarity (higher is more similar, at most 1). See the module docstring."""

    def __init__(self, convention: Convention = DEFAULT_CONVENTION, device: str | torch.device = "cpu",
                 batch_size: int | None = None) -> None:
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, not {convention!r}")
        self.convention = convention
        self.device = torch.device(device)
        self.batch_size = batch_size_for(BATCH_SIZE, self.device, batch_size)
        self.net = iresnet100()
        state = weights.load_torch(WEIGHTS_NAME)
        try:
            self.net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise weights.WeightsCorruptError(
                f"{weights.weights_file(WEIGHTS_NAME)} does not hold arcface_torch iresnet100 weights: {err}"
            ) from None
        self.net.to(self.device).eval().requires_grad_(False)
        self._sha256 = weights.verify(WEIGHTS_NAME).actual_sha256
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._cosines: list[np.ndarray] = []  # paired / source: per generated frame
        self._sum_gen = np.zeros(EMBEDDING_DIM)  # vico: running sums of unit embeddings (float64)
        self._sum_ref = np.zeros(EMBEDDING_DIM)
        self._n_gen = 0
        self._n_ref = 0

    @torch.no_grad()
    def embed(self, frames: Any) -> np.ndarray:
        """ArcFace embeddings (T, 512) float32 of RGB uint8 frames (whole frame resized to 112x112)."""
        array = _as_frames(frames, "frames")
        out = []
        with strict_fp32():
            for s in range(0, len(array), self.batch_size):
                out.append(self.net(preprocess(array[s:s + self.batch_size]).to(self.device)).float().cpu().numpy())
        return np.concatenate(out)

    def update(self, generated: Any, reference: Any) -> None:
        """Add one generated clip and its reference (a paired clip, or one source image for "source")."""
        gen = _as_frames(generated, "generated")
        ref = _as_frames(reference, "reference")
        if self.convention == "source":
            if len(ref) != 1:
                raise ValueError(f"convention 'source' takes one reference image, got {len(ref)} frames")
        elif len(ref) != len(gen):
            raise ValueError(f"convention {self.convention!r} needs as many reference frames as generated ones, "
                             f"got {len(ref)} and {len(gen)}")
        self.add_embeddings(self.embed(gen), self.embed(ref))

    def add_embeddings(self, generated: np.ndarray, reference: np.ndarray) -> None:
        """Add embeddings computed before (:meth:`embed`; the reference's may come from a cache): as
        :meth:`update` with the frames they came from."""
        g = _unit(np.asarray(generated).astype(np.float64))
        r = _unit(np.asarray(reference).astype(np.float64))
        if self.convention == "vico":
            self._sum_gen += g.sum(axis=0)
            self._sum_ref += r.sum(axis=0)
            self._n_gen += len(g)
            self._n_ref += len(r)
        else:
            self._cosines.append(g @ r[0] if self.convention == "source" else np.einsum("td,td->t", g, r))
            self._n_gen += len(g)

    def compute(self) -> dict[str, Any]:
        """The CSIM over everything so far; raises ValueError before the first update."""
        if self._n_gen == 0:
            raise ValueError("CSIM.compute() called before any update()")
        if self.convention == "vico":
            # mean_{i,j} <r_i, g_j> over all pairs == <mean_i r_i, mean_j g_j> (unit vectors)
            value = float(np.dot(self._sum_ref / self._n_ref, self._sum_gen / self._n_gen))
        else:
            value = float(np.concatenate(self._cosines).mean())
        return {"csim": value, "num_frames": self._n_gen, "convention": self.convention}

    def per_frame(self) -> np.ndarray:
        """Per generated frame cosine ("paired" / "source" only; "vico" has no per-frame value)."""
        if self.convention == "vico":
            raise ValueError("convention 'vico' averages over all frame pairs; it has no per-frame values")
        return np.concatenate(self._cosines) if self._cosines else np.zeros(0)

    def config(self) -> dict[str, Any]:
        """Every setting that changes the number (for result provenance)."""
        aggregation = {
            "vico": "mean over all (reference frame, generated frame) pairs, pooled over updates "
                    "(sklearn cosine_similarity(G, P).mean() of ViCo compute_csim.py)",
            "paired": "mean over frames of cos(generated[t], reference[t])",
            "source": "mean over generated frames of cos(generated[t], source image)",
        }[self.convention]
        return {
            "metric": "csim",
            "convention": self.convention,
            "backbone": "arcface_torch iresnet100, MS1MV3 (ms1mv3_arcface_r100_fp16/backbone.pth)",
            "preprocessing": "whole RGB frame, cv2.resize to 112x112 (INTER_LINEAR), (x/255-0.5)/0.5",
            "alignment": "none (no face detection, no 5-point alignment)",
            "embedding": "512-d output of features BatchNorm1d, cosine similarity",
            "aggregation": aggregation,
            "dtype": "float32 (TF32 off on CUDA)",
        }

    def weights_provenance(self) -> dict[str, str]:
        """sha256 of the weights file used."""
        return {WEIGHTS_NAME: str(self._sha256)}


def csim(generated: Any, reference: Any, convention: Convention = DEFAULT_CONVENTION, device: str | torch.device = "cpu") -> dict[str, Any]:
    """One-off :class:`CSIM` of one generated clip against its reference: ``compute()``'s dict (see the
    class for the conventions)."""
    metric = CSIM(convention=convention, device=device)
    metric.update(generated, reference)
    return metric.compute()


class CSIMVideos(PerFrameMeans):
    """CSIM for the runner, on the paired frames (generated frames resized to the reference size), each video
    giving what :func:`csim` gives on its frames: "paired", the mean cosine of time-aligned frames; "source",
    the mean cosine to the reference video's first frame (the source image); "vico", ViCo's mean over every
    (reference frame, generated frame) pair of the video. ``compute()`` pools every frame of every video as
    :class:`CSIM` does (for "vico": over all videos' frames at once, ViCo's number).

    The reference embeddings a convention uses (every frame's, or the first frame's for "source") are cached
    per reference video by content (:mod:`metrics.feature_cache`), computed in the same batches either way."""

    name, direction = "csim", "higher"
    accumulators = ("_cosines", "_sum_gen", "_sum_ref", "_n_gen", "_n_ref")

    def __init__(self, device: str = "cpu", convention: Convention = DEFAULT_CONVENTION,
                 reference_cache: bool = True) -> None:
        super().__init__(CSIM(convention=convention, device=device))
        self.cache = ReferenceRows("csim-reference", enabled=reference_cache)
        self._vico: list[tuple[np.ndarray, int, np.ndarray, int]] = []  # "vico": each committed video's sums
        self._cached: np.ndarray | None = None
        self._computed: list[np.ndarray] = []

    def _facts(self, video: Any) -> dict[str, Any]:
        m = self.metric
        config = {k: v for k, v in m.config().items() if k not in ("convention", "aggregation")}
        rows = "the first frame" if m.convention == "source" else "every frame"
        return video_facts(video, m.device, config=config, weights=m.weights_provenance(), batch_size=m.batch_size,
                           rows=rows)

    def start_video(self, video: Any) -> None:
        super().start_video(video)
        m = self.metric
        count = 1 if m.convention == "source" else video.frames_used
        found = self.cache.look_up(video, self._facts(video),
                                   lambda a: a.get("embeddings", np.zeros(0)).shape == (count, EMBEDDING_DIM))
        self._cached = None if found is None else found["embeddings"]
        self._computed, self._done = [], 0
        self._sums = (m._sum_gen.copy(), m._n_gen, m._sum_ref.copy(), m._n_ref)  # "vico": this video's start

    def _reference_embeddings(self, frames: np.ndarray) -> np.ndarray:
        """The embeddings of this chunk's reference frames the convention uses: cached, or computed here."""
        if self.metric.convention == "source":
            if self._done == 0:
                self._source = self._cached if self._cached is not None else self._embed(frames[:1], real=True)
            return self._source
        if self._cached is not None:
            return self._cached[self._done:self._done + len(frames)]
        return self._embed(frames, real=True)

    def _embed(self, frames: np.ndarray, real: bool) -> np.ndarray:
        embeddings = self.metric.embed(frames)
        if real:
            self._computed.append(embeddings)
        return embeddings

    def update(self, chunk: Any) -> None:
        reference = self._reference_embeddings(chunk.reference)
        self.metric.add_embeddings(self._embed(chunk.fitted, real=False), reference)
        self._done += len(chunk.reference)

    def end_video(self) -> dict[str, Any]:
        if self._cached is None and self._computed:
            self.cache.store({"embeddings": np.concatenate(self._computed)})
        self._cached, self._computed = None, []
        if self.metric.convention != "vico":
            return super().end_video()
        m, (gen, n_gen, ref, n_ref) = self.metric, self._sums
        video = (m._sum_gen - gen, m._n_gen - n_gen, m._sum_ref - ref, m._n_ref - n_ref)
        self._vico.append(video)
        self._saved = {}
        return {"csim": _vico_value(*video)}

    def discard_video(self) -> None:
        super().discard_video()
        self._cached, self._computed = None, []

    def reset(self) -> None:
        super().reset()
        self._vico = []

    def resample(self, indices: np.ndarray) -> dict[str, float] | None:
        if self.metric.convention != "vico":
            return super().resample(indices)
        drawn = [self._vico[i] for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        if not drawn:
            return {"csim": float("nan")}
        return {"csim": _vico_value(*(sum(v[k] for v in drawn) for k in range(4)))}

    def state(self) -> dict[str, Any]:
        return {**super().state(), "vico": list(self._vico), "cache_hits": self.cache.hits}

    def merge(self, state: dict[str, Any]) -> None:
        super().merge({k: v for k, v in state.items() if k not in ("vico", "cache_hits")})
        self._vico += list(state["vico"])
        self.cache.hits += state["cache_hits"]

    def config(self) -> dict[str, Any]:
        runner = {"vico": "per video: its reference frames against its generated frames; pooled: all videos at once",
                  "paired": "per video: mean over its frames", "source": "the source image is the reference video's "
                  "first frame (as read)"}[self.metric.convention]
        return {**super().config(), "runner": runner, "reference_cache": self.cache.enabled,
                "reference_cache_hits": self.cache.hits}


def _vico_value(sum_gen: np.ndarray, n_gen: int, sum_ref: np.ndarray, n_ref: int) -> float:
    """ViCo's mean over all (reference, generated) frame pairs from the unit embeddings' sums (CSIM.compute)."""
    if n_gen == 0 or n_ref == 0:
        return float("nan")
    return float(np.dot(sum_ref / n_ref, sum_gen / n_gen))
