"""talking_head.baselines.face_crop: the face box both renderers see, and the paste-back of what they render."""

from __future__ import annotations

import numpy as np
import torch

from talking_head.baselines.face_crop import blend, crop_square, face_crop_box, feathered, model_view, to_box, to_frame


def face_landmarks(rng) -> np.ndarray:
    landmarks = np.zeros((3, 478, 3))
    landmarks[..., 0] = rng.uniform(100, 140, (3, 478))  # a 40 x 60 px face, centred on (120, 90)
    landmarks[..., 1] = rng.uniform(60, 120, (3, 478))
    landmarks[:, 0, :2], landmarks[:, 1, :2] = (100, 60), (140, 120)  # the extremes, in every frame
    landmarks[1] = np.nan  # a frame without a face does not move the box
    return landmarks


def test_face_crop_box_model_view_and_padding():
    rng = np.random.default_rng(0)
    landmarks = face_landmarks(rng)
    x0, y0, side = face_crop_box(landmarks, 1.5)
    assert side == 90 and (x0 + side / 2, y0 + side / 2) == (120, 90)

    # One bright pixel at a landmark lands where model_view says that landmark is.
    frames = np.zeros((3, 200, 180, 3), np.uint8)
    px, py = (int(v) for v in landmarks[0, 7, :2])
    frames[:, py - 1 : py + 2, px - 1 : px + 2] = 255
    view, moved, box = model_view(frames, landmarks, 45, 1.5)  # 90 px -> 45 px: a factor of 2
    assert box == (x0, y0, side)
    assert view.shape == (3, 45, 45, 3) and view.dtype == np.uint8
    bright = np.unravel_index(int(view[0, ..., 0].argmax()), (45, 45))
    np.testing.assert_allclose(moved[0, 7, :2], ((px + 0.5 - x0) / 2, (py + 0.5 - y0) / 2), atol=0.5)
    assert abs(bright[1] + 0.5 - moved[0, 7, 0]) <= 1 and abs(bright[0] + 0.5 - moved[0, 7, 1]) <= 1
    assert np.isnan(moved[1]).all()
    whole, scaled, none = model_view(frames, landmarks, 90, None)  # the whole frame, each axis scaled
    assert none is None and whole.shape == (3, 90, 90, 3)
    np.testing.assert_allclose(scaled[0, 7, :2], landmarks[0, 7, :2] * (90 / 180, 90 / 200))

    # A box reaching past the frame repeats the frame's edge pixels.
    image = rng.integers(0, 256, (1, 10, 12, 3), dtype=np.uint8)
    crop = crop_square(image, (-3, 4, 8))
    assert crop.shape == (1, 8, 8, 3)
    np.testing.assert_array_equal(crop[0, :6, 3:], image[0, 4:10, 0:5])  # inside the frame: the frame
    np.testing.assert_array_equal(crop[0, :6, :3], np.repeat(image[0, 4:10, :1], 3, axis=1))  # left of it: column 0
    np.testing.assert_array_equal(crop[0, 6:], np.repeat(crop[0, 5:6], 2, axis=0))  # below it: the last row


def test_a_view_goes_back_over_its_box_and_only_there():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    box = (44, 10, 12)  # reaches 6 px past the right edge
    flat = torch.full((2, 3, 6, 6), 0.5)  # a 6-px view, one colour: (0.5 + 1) * 127.5
    canvas = to_frame(flat, frame, box)
    assert canvas.shape == (2, 40, 50, 3)
    np.testing.assert_allclose(canvas[:, 10:22, 44:50], 191.25, atol=1e-3)  # the part of the box inside the frame
    outside = np.ones((40, 50), bool)
    outside[10:22, 44:50] = False
    np.testing.assert_array_equal(canvas[:, outside], np.repeat(frame[None, outside], 2, 0))
    whole = to_frame(flat, frame, None)
    assert whole.shape == (2, 40, 50, 3) and np.allclose(whole, 191.25, atol=1e-3)
    assert np.allclose(to_box(np.array([[44.0, 10.0], [56.0, 22.0]]), box, 6, (40, 50)), [[0, 0], [6, 6]])

    # Feathered weights: 1 deep inside the box, 0 far from it; blending keeps the frame where they are 0.
    weights = feathered(np.array([[5.0, 5.0, 35.0, 35.0]]), (40, 50), sigma=2.0, grow=-6.0)
    assert weights.shape == (1, 40, 50, 1) and weights[0, 20, 20, 0] > 0.99 and weights[0, 20, 45, 0] == 0
    assert weights[0, 5, 20, 0] < 0.01  # at the box's edge: shrunk by 3 sigma, the edge is ~0
    mixed = blend(np.full((1, 40, 50, 3), 7.0, np.float32), frame, weights)
    assert mixed.dtype == np.uint8 and (mixed[0, 20, 20] == 7).all()
    np.testing.assert_array_equal(mixed[0, :, 40:], frame[:, 40:])
    np.testing.assert_array_equal(blend(np.full((1, 40, 50, 3), 300.0), frame, None), np.full((1, 40, 50, 3), 255))
