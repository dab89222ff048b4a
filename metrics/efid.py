"""E-FID as EchoMimic defines it: the Fréchet distance between the 64 expression coefficients Deep3DFaceRecon
regresses from generated frames and from reference frames.

One obvious entry point::

    from talking_head.metrics.efid import EFID

    metric = EFID(device="cuda")
    metric.update(frames, landmarks)                  # (N, H, W, 3) uint8 RGB; points per frame, see below
    metric.update(ref_frames, ref_landmarks, real=True)
    metric.compute()      # {"efid": ..., "num_frames_generated": ..., "frames_without_face_generated": ..., ...}

``landmarks`` are per frame, in pixels of that frame (x right, y down): MediaPipe meshes (N, 478, 2|3) as
the runner gives them, FAN's 68 points (N, 68, 2) as :mod:`toolkit.landmarks68` gives them, or the five
points themselves (N, 5, 2). A frame whose points hold a NaN has no face: it is skipped and counted.

What is reproduced (sicxu/Deep3DFaceRecon_pytorch, docs/metrics-reference.md#e-fid):

* **Crop** (``util/preprocess.py`` ``align_img``): five image points (eye centres, nose tip, mouth corners;
  y flipped to point up, float32 as ``test.py`` reads them) are fitted by least squares to the five
  standard 3-D points :data:`LM3D_5` with a weak-perspective camera (``POS``: translation t, scale s =
  the mean norm of the two projection rows); the frame is resized by ``102 / s`` with PIL's bicubic filter
  (sizes truncated to integers) and the 224x224 box around t is cut out (``resize_n_crop_img``; outside
  the frame is black).
* **Regressor** (``models/networks.py`` ``ReconNetWrapper``, ``net_recon='resnet50'``, ``use_last_fc=False``):
  a torchvision ResNet-50 without its fc, average-pooled 2048 features, then seven 1x1 convolutions
  giving 80 id, 64 exp, 80 tex, 3 angle, 27 gamma, 2 + 1 translation coefficients, concatenated (257).
  Input: the RGB crop / 255 as float32, no mean or std normalisation (``test.py`` ``read_data``).
  The state dict is the checkpoint's ``net_recon`` entry, loaded strictly.
* **Expression** coefficients: columns 80-143 (``models/bfm.py`` ``split_coeff``).

What EchoMimic adds, and how it is read here: "E-FID ... calculates the FID of these extracted parameters"
(EchoMimic paper, Sec. 4.1; no code is published, antgroup/echomimic#177 asks whether Inception was applied to
the 64-d vectors and has no answer). Here the Fréchet distance is taken on the 64-d coefficients directly:
mean and unbiased covariance (N-1) in float64, :func:`metrics.frechet.frechet_distance`.

What differs from Deep3DFaceRecon: its five points come from a face detector's landmark file (MTCNN-style
``detections/*.txt``); here they come from landmarks the toolkit already has (:data:`MEDIAPIPE_5`:
midpoints of each eye's two corners, nose tip, mouth corners; :data:`FAN68_5`: ``extract_5p``'s 68-point
rule). Eye-corner midpoints are how the standard 3-D points themselves are defined (``load_lm3d``), while
a detector marks the pupils: expect crops shifted by a few pixels relative to the reference's.

Too few frames: a 64-d covariance has full rank only from 65 frames on (:data:`MIN_FRAMES`); with fewer
on a side, a :class:`SmallSampleWarning` is issued and the message recorded in ``"warnings"``.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from talking_head.metrics.base import GENERATED_FRAMES, LANDMARKS, Chunk, Metric, VideoInfo, batch_size_for
from talking_head.metrics.feature_cache import ReferenceRows, video_facts
from talking_head.metrics.fid import SmallSampleWarning
from talking_head.metrics.frechet import FrechetResult, frechet_distance
from talking_head.toolkit import face_mesh, weights
from talking_head.toolkit.fp32 import strict_fp32
from talking_head.toolkit.frames import as_frames

__all__ = [
    "WEIGHTS_NAME", "STATE_KEY", "LM3D_5", "RESCALE_FACTOR", "CROP_SIZE", "FINAL_LAYERS", "COEFF_DIM", "EXP",
    "EXP_DIM", "MIN_FRAMES", "MEDIAPIPE_5", "FAN68_5", "BATCH_SIZE", "SmallSampleWarning", "ReconNet", "five_points",
    "pos", "align", "efid_from_expressions", "EFID", "EFIDVideos",
]

# ---------------------------------------------------------------------------------------- constants
WEIGHTS_NAME = "deep3dfacerecon"  # toolkit/weight_files.py: checkpoints/face_recon_feat0.2_augment/epoch_20.pth
STATE_KEY = "net_recon"  # the checkpoint's entry holding the regressor (models/base_model.py save_networks)

# The five standard 3-D points of util/load_mats.py load_lm3d: from BFM/similarity_Lm3D_all.mat ("lm", 68x3
# float32), the means of points 37/40 and 43/46 (eye corners), point 31 (nose tip), points 49 and 55 (mouth
# corners), in the order image-left eye, image-right eye, nose, image-left mouth corner, image-right mouth
# corner. Computed in float32 as there; y points up.
LM3D_5 = np.array([
    [-0.3114865720272064, 0.29036077857017517, 0.13377952575683594],
    [0.30979886651039124, 0.289720356464386, 0.1317952573299408],
    [0.003253498813137412, -0.04617932438850403, 0.5524424314498901],
    [-0.25216928124427795, -0.3813391625881195, 0.22405731678009033],
    [0.24846619367599487, -0.38128235936164856, 0.22235769033432007],
], dtype=np.float32)
RESCALE_FACTOR = 102.0  # align_img's rescale_factor
CROP_SIZE = 224  # align_img's target_size

FINAL_LAYERS = (80, 64, 80, 3, 27, 2, 1)  # ReconNetWrapper.final_layers: id, exp, tex, angle, gamma, tx ty, tz
COEFF_DIM = sum(FINAL_LAYERS)  # 257
EXP = slice(80, 144)  # bfm.py split_coeff: coeffs[:, 80:144]
EXP_DIM = 64
MIN_FRAMES = EXP_DIM + 1  # fewer frames give a singular 64-d covariance

# The five image points, each the mean of the listed points, in LM3D_5's order.
MEDIAPIPE_5 = (
    (face_mesh.RIGHT_EYE_OUTER, 133),  # the subject's right eye (image left): outer and inner corner
    (362, face_mesh.LEFT_EYE_OUTER),  # the subject's left eye: inner and outer corner
    (face_mesh.NOSE_TIP,),
    (face_mesh.MOUTH_CORNERS[0],),
    (face_mesh.MOUTH_CORNERS[1],),
)
FAN68_5 = ((36, 39), (42, 45), (30,), (48,), (54,))  # util/preprocess.py extract_5p, 0-based
_FIVE = {face_mesh.NUM_POINTS: MEDIAPIPE_5, 68: FAN68_5, 5: tuple((k,) for k in range(5))}

# Crops per forward pass, by device; test.py runs one at a time (other sizes: float32 round-off, ~1e-5).
BATCH_SIZE = {"cpu": 32, "cuda": 128}
MAX_RESIZED_PIXELS = 50_000_000  # a larger resized frame means degenerate points: the frame counts as having no face


# -------------------------------------------------------------------------------------------- network
class ReconNet(nn.Module):
    """Deep3DFaceRecon's ReconNetWrapper('resnet50'): the same parameter names (``backbone.*``,
    ``final_layers.{0..6}.*``), so the checkpoint's ``net_recon`` state dict loads strictly.
    ``forward``: (N, 3, 224, 224) RGB in [0, 1] -> (N, 257) coefficients."""

    def __init__(self) -> None:
        super().__init__()
        import torchvision

        self.backbone = torchvision.models.resnet50(weights=None)
        del self.backbone.fc  # use_last_fc=False: the backbone ends at the average pool
        self.final_layers = nn.ModuleList(nn.Conv2d(2048, width, kernel_size=1, bias=True) for width in FINAL_LAYERS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.avgpool(b.layer4(b.layer3(b.layer2(b.layer1(x)))))  # (N, 2048, 1, 1)
        return torch.flatten(torch.cat([layer(x) for layer in self.final_layers], dim=1), 1)


# ------------------------------------------------------------------------------------------ alignment
def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(..., 5, 2) image points from (..., K, 2|3) landmarks, K = 478 (MediaPipe), 68 (FAN) or 5."""
    points = np.asarray(landmarks, dtype=np.float64)
    groups = _FIVE.get(points.shape[-2]) if points.ndim >= 2 else None
    if groups is None or points.shape[-1] not in (2, 3):
        raise ValueError(f"landmarks must be (..., 478|68|5, 2|3) image points, got shape {points.shape}")
    return np.stack([points[..., list(group), :2].mean(axis=-2) for group in groups], axis=-2)


def pos(points: np.ndarray, lm3d: np.ndarray = LM3D_5) -> tuple[np.ndarray, float]:
    """Weak-perspective fit ``points ~ P X + t`` (least squares, each image axis on its own): t (2,) and the
    scale s, the mean norm of P's two rows. `points` (5, 2) with y up, `lm3d` (5, 3)."""
    design = np.hstack([np.asarray(lm3d, np.float64), np.ones((len(lm3d), 1))])  # (5, 4): X, 1
    solution = np.linalg.lstsq(design, np.asarray(points, np.float64), rcond=None)[0]  # (4, 2): a column per axis
    scale = (np.linalg.norm(solution[:3, 0]) + np.linalg.norm(solution[:3, 1])) / 2
    return solution[3].copy(), float(scale)


def align(frame: np.ndarray, points: np.ndarray) -> Optional[np.ndarray]:
    """Deep3DFaceRecon's 224x224 crop of one RGB uint8 frame, from its five image points (y down, pixels).
    None when the points cannot be fitted (not finite, or a scale no face has)."""
    from PIL import Image

    h0, w0 = frame.shape[:2]
    up_points = np.asarray(points, np.float32).copy()  # float32 and flipped, as test.py read_data
    up_points[:, 1] = (h0 - 1) - up_points[:, 1]
    if not np.isfinite(up_points).all():
        return None
    t, s = pos(up_points)
    if not (np.isfinite(s) and s > 0):
        return None
    scale = RESCALE_FACTOR / s
    if not (w0 * scale >= 1 and h0 * scale >= 1 and w0 * h0 * scale * scale <= MAX_RESIZED_PIXELS):
        return None
    w, h = int(w0 * scale), int(h0 * scale)  # resize_n_crop_img: astype(int32), truncation
    left = int(w / 2 - CROP_SIZE / 2 + (t[0] - w0 / 2) * scale)
    top = int(h / 2 - CROP_SIZE / 2 + (h0 / 2 - t[1]) * scale)
    resized = Image.fromarray(np.ascontiguousarray(frame)).resize((w, h), resample=Image.Resampling.BICUBIC)
    return np.asarray(resized.crop((left, top, left + CROP_SIZE, top + CROP_SIZE)))


# ----------------------------------------------------------------------------------------- distance
def _small_sample(side: str, count: int) -> Optional[str]:
    if count >= MIN_FRAMES:
        return None
    return (f"the {side} set has {count} frames with a face, fewer than the {MIN_FRAMES} a full-rank {EXP_DIM}-d "
            "covariance needs: this E-FID is biased and not comparable with E-FIDs of more frames")


def efid_from_expressions(generated: Any, reference: Any, warn: bool = True) -> dict[str, Any]:
    """E-FID between two sets of expression coefficients, (N, 64) and (M, 64)."""
    gen, ref = (np.asarray(x, dtype=np.float64) for x in (generated, reference))
    if gen.ndim != 2 or ref.ndim != 2 or gen.shape[1] != EXP_DIM or ref.shape[1] != EXP_DIM:
        raise ValueError(f"E-FID needs two (N, {EXP_DIM}) coefficient arrays, got {gen.shape} and {ref.shape}")
    if len(gen) < 2 or len(ref) < 2:
        raise ValueError(f"E-FID needs at least 2 frames with a face a side, got {len(gen)} generated and "
                         f"{len(ref)} reference")
    messages = [m for m in (_small_sample("generated", len(gen)), _small_sample("reference", len(ref))) if m]
    if warn:
        for message in messages:
            warnings.warn(message, SmallSampleWarning, stacklevel=2)
    frechet = frechet_distance(gen.mean(0), np.cov(gen, rowvar=False), ref.mean(0), np.cov(ref, rowvar=False))
    return {"efid": frechet.fid, "num_frames_generated": len(gen), "num_frames_reference": len(ref),
            "warnings": messages, "frechet": frechet.as_dict()}


# --------------------------------------------------------------------------------------------- metric
class EFID:
    """Expression coefficients of each side, kept in memory (64 float64 a frame), and their E-FID."""

    def __init__(self, device: str | torch.device | None = None, batch_size: int | None = None) -> None:
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = batch_size_for(BATCH_SIZE, self.device, batch_size)
        checkpoint = weights.load_torch(WEIGHTS_NAME)  # verified, weights_only=True; missing: WeightsMissingError
        if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get(STATE_KEY), dict):
            found = ", ".join(map(str, list(checkpoint)[:6])) if isinstance(checkpoint, dict) else type(checkpoint).__name__
            raise weights.WeightsCorruptError(
                f"{weights.weights_file(WEIGHTS_NAME)} is not a Deep3DFaceRecon checkpoint: it has no '{STATE_KEY}' "
                f"state dict (found {found or 'nothing'}).")
        with torch.device("meta"):  # no random initialisation: every tensor comes from the checkpoint
            self.net = ReconNet()
        try:
            self.net.load_state_dict(checkpoint[STATE_KEY], strict=True, assign=True)
        except RuntimeError as err:
            raise weights.WeightsCorruptError(
                f"{weights.weights_file(WEIGHTS_NAME)} does not hold Deep3DFaceRecon's resnet50 regressor: "
                f"{str(err).splitlines()[0]}") from None
        self.net.to(self.device).eval().requires_grad_(False)
        self._sha256 = weights.verify(WEIGHTS_NAME).actual_sha256
        self.reset()

    def reset(self) -> None:
        """Forget every frame seen so far."""
        self._rows: dict[bool, list[np.ndarray]] = {False: [], True: []}
        self._no_face = {False: 0, True: 0}

    @torch.no_grad()
    def coefficients(self, crops: np.ndarray) -> np.ndarray:
        """All 257 coefficients (N, 257) float32 of aligned (N, 224, 224, 3) uint8 crops."""
        out = []
        with strict_fp32():
            for start in range(0, len(crops), self.batch_size):
                x = torch.tensor(crops[start:start + self.batch_size] / 255.0, dtype=torch.float32)  # as read_data
                # NCHW in memory, as read_data's (1, 3, H, W) tensor reaches the network: a channels-last input
                # would send the convolutions down other kernels (float32 round-off of ~1e-5 in the coefficients).
                x = x.permute(0, 3, 1, 2).contiguous()
                out.append(self.net(x.to(self.device)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, COEFF_DIM), np.float32)

    def crops(self, frames: Any, landmarks: Any) -> tuple[np.ndarray, np.ndarray]:
        """The aligned crops (M, 224, 224, 3) of the frames with a face, and which frames those are (N,) bool."""
        clip = as_frames(frames, "frames", uint8=True, single_frame=False, allow_no_frames=True)
        points = five_points(landmarks)
        if points.ndim != 3 or len(points) != len(clip):
            raise ValueError(f"landmarks: one set of points per frame expected, got {points.shape[:-2]} for "
                             f"{len(clip)} frames")
        aligned = [align(frame, p) for frame, p in zip(clip, points)]
        found = np.array([a is not None for a in aligned], dtype=bool)
        crops = [a for a in aligned if a is not None]
        return (np.stack(crops) if crops else np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)), found

    def expressions(self, frames: Any, landmarks: Any) -> tuple[np.ndarray, int]:
        """(M, 64) float64 expression coefficients of the frames with a face, and how many had none."""
        rows, found = self.expressions_found(frames, landmarks)
        return rows, int((~found).sum())

    def expressions_found(self, frames: Any, landmarks: Any) -> tuple[np.ndarray, np.ndarray]:
        """(M, 64) float64 expression coefficients of the frames with a face, and which frames those are (N,)."""
        crops, found = self.crops(frames, landmarks)
        return self.coefficients(crops)[:, EXP].astype(np.float64), found

    def update(self, frames: Any, landmarks: Any, real: bool = False) -> None:
        """Add generated frames (``real=True``: reference frames) with their landmarks (module docstring)."""
        rows, missing = self.expressions(frames, landmarks)
        self.add_rows(rows, missing, real)

    def add_rows(self, rows: np.ndarray, missing: int, real: bool = False) -> None:
        """Add expression rows computed before (a reference video's, from the cache) and the frames without a face."""
        self._rows[bool(real)].append(np.asarray(rows, dtype=np.float64).reshape(-1, EXP_DIM))
        self._no_face[bool(real)] += int(missing)

    def rows(self, real: bool = False) -> np.ndarray:
        """Every expression row of one side so far, (N, 64)."""
        parts = self._rows[bool(real)]
        return np.concatenate(parts) if parts else np.zeros((0, EXP_DIM))

    def compute(self) -> dict[str, Any]:
        """E-FID over everything so far; ValueError when a side has fewer than 2 frames with a face."""
        result = efid_from_expressions(self.rows(False), self.rows(True))
        return {**result, "frames_without_face_generated": self._no_face[False],
                "frames_without_face_reference": self._no_face[True]}

    def config(self) -> dict[str, Any]:
        """Every setting that changes the number (for result provenance)."""
        import PIL

        return {
            "metric": "efid",
            "recipe": "EchoMimic: Frechet distance of Deep3DFaceRecon expression coefficients (64-d, no Inception)",
            "regressor": "Deep3DFaceRecon_pytorch ReconNetWrapper resnet50, use_last_fc=False, checkpoint "
                         f"'{STATE_KEY}'; expression = coefficients[80:144] of 257",
            "input": "aligned 224x224 RGB crop / 255, float32, no normalisation",
            "alignment": f"align_img: POS fit of 5 points (y up, float32) to load_lm3d's standard 3-D points, "
                         f"resize by {RESCALE_FACTOR:g}/s (PIL bicubic, sizes truncated), {CROP_SIZE}x{CROP_SIZE} "
                         "crop (black outside the frame)",
            "five_points": "MediaPipe mesh: eye-corner midpoints (33/133, 362/263), nose tip 1, mouth corners 61/291; "
                           "FAN 68: extract_5p (eye-corner midpoints, 31, 49, 55); not the reference's detector",
            "no_face": "frames without landmarks are skipped and counted",
            "statistics": "mean, unbiased covariance (N-1), float64",
            "frechet": FrechetResult.method,
            "min_frames": MIN_FRAMES,
            "pillow": PIL.__version__,
            "dtype": "float32 (TF32 off on CUDA)",
            "batch_size": self.batch_size,
            "device": str(self.device),
        }

    def weights_provenance(self) -> dict[str, str]:
        """sha256 of the checkpoint used."""
        return {WEIGHTS_NAME: str(self._sha256)}


class EFIDVideos(Metric):
    """E-FID for the runner: every frame of every video, generated frames as stored with their MediaPipe meshes
    and reference frames with theirs, pooled. Each committed video's (n, 64) arrays are kept per side, so
    :meth:`resample` can recompute over any draw of videos; a video that fails half-way is taken back out.

    Each reference video's coefficients are cached by content (:mod:`metrics.feature_cache`) with the five
    points of every frame they came from: a chunk whose points equal the stored ones (the meshes the dataset
    stored or MediaPipe's, whichever this run used) takes its rows from the cache; from the first chunk that
    differs on, the regressor runs. Rows are computed chunk by chunk either way, so they are the same bits."""

    name, direction = "efid", "lower"
    consumes = frozenset({GENERATED_FRAMES, LANDMARKS})

    def __init__(self, device: str = "cpu", reference_cache: bool = True) -> None:
        self.metric = EFID(device=device)
        self.cache = ReferenceRows("efid-reference", enabled=reference_cache)
        self.reset()
        self._cached: Optional[dict[str, np.ndarray]] = None

    def _facts(self, video: VideoInfo) -> dict[str, Any]:
        config = {k: v for k, v in self.metric.config().items() if k != "device"}
        return video_facts(video, self.metric.device, config=config, weights=self.metric.weights_provenance())

    @staticmethod
    def _valid(video: VideoInfo, arrays: dict[str, np.ndarray]) -> bool:
        points, found, rows = (arrays.get(k) for k in ("points", "found", "rows"))
        return (points is not None and found is not None and rows is not None
                and points.shape == (video.frames_used, 5, 2) and found.shape == (video.frames_used,)
                and rows.shape == (int(found.sum()), EXP_DIM))

    def _side_rows(self, frames: np.ndarray, meshes: np.ndarray, real: bool) -> tuple[np.ndarray, np.ndarray]:
        """One chunk's expression rows of one side and which frames had a face."""
        return self.metric.expressions_found(frames, meshes)

    def reset(self) -> None:
        self.metric.reset()
        self._videos: list[tuple[np.ndarray, np.ndarray]] = []  # committed videos, (generated, reference) rows
        self._start = (0, 0, 0, 0)  # update lists' lengths and no-face counts when the current video began

    def _mark(self) -> tuple[int, int, int, int]:
        m = self.metric
        return len(m._rows[False]), len(m._rows[True]), m._no_face[False], m._no_face[True]

    def start_video(self, video: VideoInfo) -> None:
        self._start = self._mark()
        self._cached = self.cache.look_up(video, self._facts(video), lambda a: self._valid(video, a))
        self._seen: dict[str, list[np.ndarray]] = {"points": [], "found": [], "rows": []}  # this reference video's
        self._done = [0, 0]  # frames and rows of the cached entry used so far

    def update(self, chunk: Chunk) -> None:
        if chunk.generated_meshes is None or chunk.reference_meshes is None:
            raise ValueError("E-FID needs the MediaPipe meshes of both videos (the runner gives them to metrics "
                             "that consume landmarks)")
        rows, found = self._side_rows(chunk.generated, chunk.generated_meshes, real=False)
        self.metric.add_rows(rows, int((~found).sum()))
        points = five_points(chunk.reference_meshes)
        frame, row = self._done
        cached = self._cached
        if cached is not None and np.array_equal(cached["points"][frame:frame + len(points)], points, equal_nan=True):
            found = cached["found"][frame:frame + len(points)]
            rows = cached["rows"][row:row + int(found.sum())]
            self._done = [frame + len(points), row + len(rows)]
        else:
            self._cached = None  # other points than the stored ones: this chunk and the rest are computed
            rows, found = self._side_rows(chunk.reference, chunk.reference_meshes, real=True)
        self.metric.add_rows(rows, int((~found).sum()), real=True)
        for key, value in (("points", points), ("found", found), ("rows", rows)):
            self._seen[key].append(value)

    def end_video(self) -> dict[str, Any]:
        gen_start, ref_start = self._start[:2]
        sides = []
        for real, start in ((False, gen_start), (True, ref_start)):
            parts = self.metric._rows[real][start:]
            sides.append(np.concatenate(parts) if parts else np.zeros((0, EXP_DIM)))
        self._videos.append((sides[0], sides[1]))
        self._start = self._mark()
        if self._cached is None and self._seen["points"]:  # computed (in part) this run: stored for the next
            self.cache.store({key: np.concatenate(parts) for key, parts in self._seen.items()})
        self._cached = None
        return {"efid_frames_generated": len(sides[0]), "efid_frames_reference": len(sides[1])}

    def discard_video(self) -> None:
        self._cached = None
        gen_len, ref_len, gen_missing, ref_missing = self._start
        m = self.metric
        m._rows[False], m._rows[True] = m._rows[False][:gen_len], m._rows[True][:ref_len]
        m._no_face[False], m._no_face[True] = gen_missing, ref_missing

    def video_rows(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each committed video's (generated, reference) expression rows, in commit order (copies)."""
        return [(g.copy(), r.copy()) for g, r in self._videos]

    def resample(self, indices: np.ndarray) -> dict[str, float]:
        """The headline value over the committed videos at `indices` (positions in commit order, repeats
        allowed), for bootstrap intervals; NaN when a side of the draw has fewer than 2 frames with a face."""
        picked = np.asarray(indices, dtype=np.int64).reshape(-1)
        if picked.size and (picked.min() < -len(self._videos) or picked.max() >= len(self._videos)):
            raise IndexError(f"video indices must lie in [0, {len(self._videos)}), got {picked.min()}..{picked.max()}")
        gen = [self._videos[i][0] for i in picked]
        ref = [self._videos[i][1] for i in picked]
        gen_rows = np.concatenate(gen) if gen else np.zeros((0, EXP_DIM))
        ref_rows = np.concatenate(ref) if ref else np.zeros((0, EXP_DIM))
        if len(gen_rows) < 2 or len(ref_rows) < 2:
            return {"efid": float("nan")}
        return {"efid": efid_from_expressions(gen_rows, ref_rows, warn=False)["efid"]}

    def state(self) -> dict[str, Any]:
        """Each committed video's (generated, reference) expression rows, the frames without a face and the
        cache hits (config)."""
        return {"videos": self.video_rows(), "no_face": [self.metric._no_face[False], self.metric._no_face[True]],
                "cache_hits": self.cache.hits}

    def merge(self, state: dict[str, Any]) -> None:
        m = self.metric
        for generated, reference in state["videos"]:
            self._videos.append((generated, reference))
            m._rows[False].append(generated)
            m._rows[True].append(reference)
        m._no_face[False] += state["no_face"][0]
        m._no_face[True] += state["no_face"][1]
        self.cache.hits += state.get("cache_hits", 0)

    def compute(self) -> dict[str, Any]:
        return {**self.metric.compute(), "videos": len(self._videos)}

    def config(self) -> dict[str, Any]:
        return {**self.metric.config(), "protocol": "all frames of all videos with a face, pooled; generated frames "
                                                    "as stored with their own MediaPipe meshes",
                "reference_cache": self.cache.enabled, "reference_cache_hits": self.cache.hits}

    def weights_provenance(self) -> dict[str, Any]:
        return self.metric.weights_provenance()
