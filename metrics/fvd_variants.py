"""The published FVD variants as plain data, and what each does to a clip before the network sees it.

There is no single FVD. Four incompatible implementations are in use; each is reproduced here under its
own name (docs/metrics-reference.md#fvd says where each one comes from and where the numbers differ):

``styleganv`` (default)
    universome/stylegan-v ``src/metrics/frechet_video_distance.py``: the TorchScript I3D
    (``i3d_torchscript.pt``) called on uint8 clips with ``rescale=True, resize=True,
    return_features=True`` (the network maps 0..255 to its range and resizes to 224 itself), 16-frame
    clips, covariance divided by N (``metric_utils.FeatureStats.get_mean_cov``), ``sqrtm(sigma_gen @
    sigma_real)``.
``videogpt``
    VideoGPT / TATS / cd-fvd: pytorch-i3d's ``InceptionI3d`` with ``i3d_pretrained_400.pt``; frames resized
    bilinearly (align_corners False) to 224x224 and scaled to [-1, 1] (cd-fvd ``preprocess_i3d``), 400
    logits as features, covariance divided by N, ``sqrtm(sigma_real @ sigma_fake)``.
``disco``
    DisCo's "FVD-3DInception" (Wangt-CN/DisCo ``tool/metrics/metric_center.py``, the GIF clips of
    ``tool/video/gen_gifs_for_fvd.py``), as Hallo and StableAvatar report it: one 16-frame clip starting at
    every frame (sliding windows), each written as a GIF (palette-quantised) and read back, frames resized
    with PIL bicubic in float32 to 224, ``x / 127.5 - 1``, InceptionI3d logits (the mean over a clip's
    segments: one segment of 16 frames), ``np.cov`` (N - 1) and pytorch-fid-style ``sqrtm(sigma_gen @
    sigma_gt)`` with its eps retry.
``latentsync``
    bytedance/LatentSync ``eval/eval_fvd.py`` + ``eval/fvd.py``: frames 20-35 only (one clip a video),
    each cropped to its MediaPipe face box and resized to 224 with ``cv2.INTER_AREA``, fed as ``frames /
    255`` with ``rescale=False, resize=False`` (so the network sees [0, 1], not its [-1, 1]: non-standard,
    compare only with LatentSync's own numbers), ``np.cov`` (N - 1), ``sqrtm(sigma_real @ sigma_fake)``
    (its caller passes the real videos first).
"""

from __future__ import annotations

import io
import warnings
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Iterator, Literal, Optional

import numpy as np

Network = Literal["torchscript", "inception_i3d"]
Covariance = Literal["divide_by_n", "numpy_cov"]  # N (StyleGAN-V FeatureStats) or N - 1 (np.cov)
ProductOrder = Literal["generated_first", "reference_first"]  # which covariance leads inside sqrtm


@dataclass(frozen=True)
class FVDVariant:
    """Everything that makes one published FVD what it is; recorded with every result."""

    name: str
    network: Network
    weights: str  # registry entry of the network file
    frames: int  # frames per clip
    stride: int  # frames between the starts of consecutive clips of a video
    first_frame: int  # index of the first frame a clip may start at
    max_clips_per_video: Optional[int]  # None: every clip the stride allows
    preprocess: str  # what happens to a clip before the network (described)
    input_range: str
    covariance: Covariance
    product_order: ProductOrder
    frechet: str  # the distance function reproduced
    source: str  # repository and file
    min_videos: int = 256  # below this the estimate is unstable (the literature's figure)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


VARIANTS: dict[str, FVDVariant] = {
    v.name: v
    for v in (
        FVDVariant(
            "styleganv", "torchscript", "i3d-torchscript", frames=16, stride=16, first_frame=0,
            max_clips_per_video=None,
            preprocess="uint8 clip (B, 3, T, H, W) to the network with rescale=True, resize=True (it maps 0..255 "
                       "to [-1, 1] and resizes every frame to 224x224 itself)",
            input_range="uint8 0..255 (the network rescales)", covariance="divide_by_n",
            product_order="generated_first",
            frechet="np.real(|mu_g - mu_r|^2 + tr(S_g + S_r - 2 sqrtm(S_g S_r)))",
            source="universome/stylegan-v src/metrics/frechet_video_distance.py, src/metrics/metric_utils.py"),
        FVDVariant(
            "videogpt", "inception_i3d", "i3d-kinetics400", frames=16, stride=16, first_frame=0,
            max_clips_per_video=None,
            preprocess="float frames resized bilinearly (align_corners=False) to 224x224, 2 x / 255 - 1",
            input_range="[-1, 1]", covariance="divide_by_n", product_order="reference_first",
            frechet="np.real(|mu_r - mu_g|^2 + tr(S_g + S_r - 2 sqrtm(S_r S_g)))",
            source="songweige/content-debiased-fvd cdfvd/fvd.py, cdfvd/third_party/i3d/utils.py (VideoGPT/TATS I3D)"),
        FVDVariant(
            "disco", "inception_i3d", "i3d-kinetics400", frames=16, stride=1, first_frame=0,
            max_clips_per_video=None,
            preprocess="each clip written as a GIF with imageio (palette-quantised) and read back with PIL, frames "
                       "resized per channel with PIL bicubic in float32 to 224x224, x / 127.5 - 1",
            input_range="[-1, 1]", covariance="numpy_cov", product_order="generated_first",
            frechet="pytorch-fid style: sqrtm(S_g S_r), eps 1e-6 retry when not finite, imaginary check",
            source="Wangt-CN/DisCo tool/metrics/metric_center.py, tool/metrics/utils.py, tool/video/gen_gifs_for_fvd.py"),
        FVDVariant(
            "latentsync", "torchscript", "i3d-torchscript", frames=16, stride=16, first_frame=20,
            max_clips_per_video=1,
            preprocess="frames 20-35, each cropped to its first MediaPipe face detection (short range, confidence "
                       "0.5) and resized to 224x224 with cv2.INTER_AREA, frames / 255, rescale=False, resize=False",
            input_range="[0, 1] (the network expects [-1, 1]: LatentSync's own, non-standard range)",
            covariance="numpy_cov", product_order="reference_first",
            frechet="np.real(|mu_r - mu_g|^2 + tr(S_r + S_g - 2 sqrtm(S_r S_g)))",
            source="bytedance/LatentSync eval/eval_fvd.py, eval/fvd.py"),
    )
}
DEFAULT_VARIANT = "styleganv"
GIF_FPS = 25.0  # frame duration written into DisCo's GIFs; it does not change the pixels


def variant(name: str | FVDVariant) -> FVDVariant:
    if isinstance(name, FVDVariant):
        return name
    if name not in VARIANTS:
        raise ValueError(f"unknown FVD variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


# -------------------------------------------------------------------------------------- clip sampling
class ClipSampler:
    """Cuts a stream of frames into a variant's clips without holding more than one clip of frames."""

    def __init__(self, spec: FVDVariant) -> None:
        self.spec = spec
        self.reset()

    def reset(self) -> None:
        self.window: deque[np.ndarray] = deque(maxlen=self.spec.frames)
        self.seen = 0  # frames received so far
        self.clips = 0  # clips emitted so far

    def push(self, frames: np.ndarray) -> Iterator[np.ndarray]:
        """Feed consecutive (n, H, W, 3) frames; yields each completed (frames, H, W, 3) clip."""
        spec = self.spec
        for frame in frames:
            index = self.seen
            self.seen += 1
            if index < spec.first_frame:
                continue
            self.window.append(frame)
            start = index - spec.frames + 1 - spec.first_frame
            full = len(self.window) == spec.frames and start >= 0 and start % spec.stride == 0
            if full and (spec.max_clips_per_video is None or self.clips < spec.max_clips_per_video):
                self.clips += 1
                yield np.stack(self.window)


def clip_starts(spec: FVDVariant, num_frames: int) -> list[int]:
    """Start frames of the clips a video of `num_frames` frames gives (what :class:`ClipSampler` emits)."""
    starts = list(range(spec.first_frame, num_frames - spec.frames + 1, spec.stride))
    return starts if spec.max_clips_per_video is None else starts[:spec.max_clips_per_video]


# -------------------------------------------------------------------------------- per-variant inputs
def gif_round_trip(clip: np.ndarray, fps: float = GIF_FPS) -> np.ndarray:
    """The clip as DisCo's FVD reads it: written as a GIF by imageio (palette quantisation), read back with
    PIL and converted to RGB frame by frame."""
    import imageio
    from PIL import Image, ImageSequence

    buffer = io.BytesIO()  # the bytes DisCo's imageio.mimsave(path, images, fps=fps) writes (fps as duration in ms)
    imageio.v2.mimsave(buffer, list(clip), format="GIF", duration=1000.0 / fps)
    buffer.seek(0)
    with Image.open(buffer) as gif:
        return np.stack([np.array(frame.copy().convert("RGB"), dtype=np.uint8) for frame in ImageSequence.Iterator(gif)])


def pil_bicubic_float(frame: np.ndarray, size: int = 224) -> np.ndarray:
    """clean-fid's ``make_resizer("PIL", False, "bicubic", (size, size))``: each channel as a float32 image."""
    from PIL import Image

    channels = [np.asarray(Image.fromarray(frame[:, :, c].astype(np.float32), mode="F").resize(
        (size, size), resample=Image.BICUBIC)).reshape(size, size, 1) for c in range(3)]
    return np.concatenate(channels, axis=2).astype(np.float32)


class ClipRejected(ValueError):
    """A clip the variant's reference could not score (latentsync: a frame without a face)."""


class LatentSyncFaceCrop:
    """LatentSync's per-frame crop: the first detection of MediaPipe's short-range face detector (legacy
    solutions API, confidence 0.5), its relative box truncated to pixels, clipped to the frame, resized to
    224x224 with INTER_AREA. Raises ClipRejected when a frame has no face (LatentSync stops the whole run)."""

    def __init__(self, size: int = 224) -> None:
        import mediapipe as mp

        from talking_head.toolkit.face_mesh import start_solution

        self.size = size
        self.detector = start_solution(lambda: mp.solutions.face_detection.FaceDetection(
            model_selection=0, min_detection_confidence=0.5))  # its native start-up lines dropped (toolkit.quiet)
        self._first = True

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        from talking_head.toolkit import quiet

        height, width = frame.shape[:2]
        if self._first:  # the first inference logs natively too
            with quiet.native_logs():
                found = self.detector.process(frame)
            self._first = False
        else:
            found = self.detector.process(frame)
        if not found.detections:
            raise ClipRejected("no face detected (LatentSync's FVD needs a face in each of frames 20-35)")
        box = found.detections[0].location_data.relative_bounding_box
        x0, y0 = int(box.xmin * width), int(box.ymin * height)
        w, h = int(box.width * width), int(box.height * height)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(width, x0 + w), min(height, y0 + h)
        return cv2.resize(frame[y0:y1, x0:x1], (self.size, self.size), interpolation=cv2.INTER_AREA)

    def close(self) -> None:
        self.detector.close()


def prepare_clip(spec: FVDVariant, clip: np.ndarray, face_crop: Optional[LatentSyncFaceCrop] = None) -> np.ndarray:
    """One (T, H, W, 3) uint8 clip as the variant hands it to the network, channels last: uint8 for
    ``styleganv`` (the network rescales and resizes), float32 otherwise."""
    import torch
    import torch.nn.functional as F

    if spec.name == "styleganv":
        return clip
    if spec.name == "videogpt":
        frames = torch.from_numpy(clip).float().permute(0, 3, 1, 2)
        frames = F.interpolate(frames, size=(224, 224), mode="bilinear", align_corners=False)
        return (2.0 * frames / 255.0 - 1).permute(0, 2, 3, 1).numpy()
    if spec.name == "disco":
        frames = np.stack([pil_bicubic_float(f) for f in gif_round_trip(clip)])
        return (torch.as_tensor(frames).float() / 127.5 - 1).numpy()
    if spec.name == "latentsync":
        if face_crop is None:
            raise ValueError("the latentsync variant needs a LatentSyncFaceCrop")
        faces = torch.from_numpy(np.stack([face_crop(f) for f in clip]))
        return (faces / 255.0).numpy()
    raise ValueError(f"no clip preparation for FVD variant {spec.name!r}")


# ----------------------------------------------------------------------------------- the distance
def statistics(features: np.ndarray, covariance: Covariance) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of (N, D) features the way the variant's reference computes them."""
    features = np.asarray(features, dtype=np.float32)
    if covariance == "divide_by_n":  # StyleGAN-V / cd-fvd FeatureStats: float64 sums of float32 features
        x64 = features.astype(np.float64)
        mean = x64.sum(axis=0) / len(features)
        return mean, x64.T @ x64 / len(features) - np.outer(mean, mean)
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """``scipy.linalg.sqrtm(matrix, disp=False)[0]``, the call every reference makes; SciPy 1.17 deprecates
    ``disp`` (same result), which is not the user's concern."""
    import scipy.linalg

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*disp.*", category=DeprecationWarning)
        root, _ = scipy.linalg.sqrtm(matrix, disp=False)
    return root


def frechet_distance(spec: FVDVariant, generated: np.ndarray, reference: np.ndarray) -> float:
    """The variant's FVD between (N, D) generated and (M, D) reference clip features."""
    mu_g, sigma_g = statistics(generated, spec.covariance)
    mu_r, sigma_r = statistics(reference, spec.covariance)
    if spec.name == "disco":
        return _frechet_pytorch_fid_style(mu_g, sigma_g, mu_r, sigma_r)
    product = sigma_g @ sigma_r if spec.product_order == "generated_first" else sigma_r @ sigma_g
    root = _sqrtm(product)
    return float(np.real(np.square(mu_g - mu_r).sum() + np.trace(sigma_g + sigma_r - root * 2)))


def _frechet_pytorch_fid_style(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                               eps: float = 1e-6) -> float:
    import scipy.linalg

    diff = mu1 - mu2
    root = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(root).all():
        offset = np.eye(sigma1.shape[0]) * eps
        root = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ValueError(f"FVD (disco): imaginary component {np.max(np.abs(root.imag))} in the matrix square root")
        root = root.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root))
