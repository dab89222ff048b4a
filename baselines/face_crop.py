"""What a renderer sees of a frame, and how its output goes back into the frame.

Both reference models render at a fixed ``resolution``. Over a whole 256-px crop at 64 px the mouth is
a few pixels wide, so the small configs look at a square around the face instead (``crop.face_scale``
times the face's extent) and paste what they render back into the full-resolution reference frame
with a feathered edge. The paper configs see the whole frame (``face_scale: null``).

    views, points, box = model_view(frames, landmarks, 64, 1.3)  # what the model trains on; box: (x0, y0, side)
    canvas = to_frame(rendered, reference_frame, box)            # the model's output resized over the box
    frames = blend(canvas, reference_frame, feathered(...))      # only where the weights say, into the frame
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

Box = tuple[int, int, int]  # x0, y0, side in frame pixels; it may reach past the frame


def images_to_model(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float (N, 3, size, size) in [-1, 1] (antialiased resize when needed)."""
    x = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x


def model_to_images(x: torch.Tensor) -> torch.Tensor:
    """float (N, 3, H, W) in [-1, 1] -> uint8 (N, H, W, 3)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1)


def face_crop_box(landmarks: np.ndarray, scale: float) -> Box:
    """(x0, y0, side) in pixels of the square `scale` times the larger extent of the median of `landmarks`
    (N, 478, 2|3) over frames, centred on it. It may reach past the frame (:func:`crop_square` pads)."""
    points = np.asarray(landmarks, dtype=np.float64)[..., :2]
    points = points[None] if points.ndim == 2 else points
    faces = np.isfinite(points).all(axis=(1, 2))
    if not faces.any():
        raise ValueError("no frame with a face to centre the crop on")
    points = np.median(points[faces], axis=0)
    low, high = points.min(axis=0), points.max(axis=0)
    side = max(2, int(round(scale * float((high - low).max()))))
    x0, y0 = (int(v) for v in np.round((low + high) / 2 - side / 2))
    return x0, y0, side


def crop_square(frames: np.ndarray, box: Box) -> np.ndarray:
    """frames (N, H, W, C) -> (N, side, side, C), the frame's edge pixels repeated where the box reaches past it."""
    x0, y0, side = box
    h, w = frames.shape[1:3]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        frames = np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    return frames[:, y0 + pad : y0 + pad + side, x0 + pad : x0 + pad + side]


def to_box(points: np.ndarray, box: Box | None, size: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """Points (..., 2|3) in frame pixels -> pixels of the `size` model view (the box, or the whole frame)."""
    out = np.array(points, dtype=np.float64, copy=True)
    if box is None:
        h, w = frame_hw
        out[..., 0] *= size / w
        out[..., 1] *= size / h
        if out.shape[-1] > 2:
            out[..., 2] *= size / w
        return out
    x0, y0, side = box
    out[..., 0] -= x0
    out[..., 1] -= y0
    out *= size / side
    return out


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W, 3) -> uint8 (N, size, size, 3), antialiased, 64 frames at a time."""
    out = np.zeros((len(frames), size, size, 3), np.uint8)
    for s in range(0, len(frames), 64):
        out[s : s + 64] = model_to_images(images_to_model(torch.from_numpy(np.ascontiguousarray(frames[s : s + 64])),
                                                          size)).numpy()
    return out


def model_view(frames: np.ndarray, landmarks: np.ndarray, size: int, face_scale: float | None
               ) -> tuple[np.ndarray, np.ndarray, Box | None]:
    """What the model sees of a clip (or window): frames (N, H, W, 3) uint8 -> (N, size, size, 3) uint8 of
    the face box (`face_scale`, from the median of `landmarks`) or of the whole frame (None), `landmarks`
    (N, 478, 2|3) in those pixels, and the box (None: the whole frame)."""
    frames = np.asarray(frames)
    box = face_crop_box(landmarks, face_scale) if face_scale else None
    crops = crop_square(frames, box) if box is not None else frames
    return resize_frames(crops, size), to_box(landmarks, box, size, frames.shape[1:3]), box


def feathered(boxes: np.ndarray, hw: tuple[int, int], sigma: float, grow: float | None = None) -> np.ndarray:
    """(N, H, W, 1) float32 weights: 1 inside each box (x0, y0, x1, y1) grown by `grow` pixels (default
    2 sigma; negative shrinks it), with a Gaussian edge of `sigma` pixels."""
    import cv2

    h, w = hw
    grow = 2 * sigma if grow is None else grow
    out = np.zeros((len(boxes), h, w, 1), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        mask = np.zeros((h, w), np.float32)
        mask[max(0, int(np.floor(y0 - grow))) : max(0, int(np.ceil(y1 + grow))),
             max(0, int(np.floor(x0 - grow))) : max(0, int(np.ceil(x1 + grow)))] = 1.0
        out[i, ..., 0] = cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0 else mask
    return out


def to_frame(images: torch.Tensor, frame: np.ndarray, box: Box | None) -> np.ndarray:
    """Model-view images (N, 3, R, R) in [-1, 1] -> float32 (N, H, W, 3) in [0, 255]: resized (bicubic) over
    the box, which replaces the box's pixels in copies of `frame` (H, W, 3) or of each of `frame` (N, H, W, 3),
    or over the whole frame."""
    height, width = frame.shape[-3:-1]
    size = (box[2], box[2]) if box is not None else (height, width)
    images = images.clamp(-1, 1)
    if images.shape[-2:] != size:
        images = F.interpolate(images, size=size, mode="bicubic", align_corners=False,
                               antialias=size[0] < images.shape[-2])
    images = ((images.clamp(-1, 1) + 1) * 127.5).permute(0, 2, 3, 1).float().cpu().numpy()
    if box is None:
        return images
    canvas = np.broadcast_to(frame, (len(images), height, width, frame.shape[-1])).astype(np.float32)
    x0, y0, side = box  # the view's pixels that fall inside the frame
    fx0, fy0, fx1, fy1 = max(0, x0), max(0, y0), min(width, x0 + side), min(height, y0 + side)
    canvas[:, fy0:fy1, fx0:fx1] = images[:, fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    return canvas


def blend(canvas: np.ndarray, frame: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """weights * canvas + (1 - weights) * frame (H, W, 3) or frames (N, H, W, 3) (None: the canvas alone), as
    uint8 frames (N, H, W, 3)."""
    out = canvas if weights is None else weights * canvas + (1 - weights) * frame.astype(np.float32)
    return out.round().clip(0, 255).astype(np.uint8)
