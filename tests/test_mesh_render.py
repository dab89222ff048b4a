"""talking_head.baselines.mesh_render: the mesh lands where the landmarks are, each part in its colour, any input is safe."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from talking_head.baselines.mesh_render import PARTS, connections, render_mesh
from talking_head.toolkit import face_mesh

SIZE = 128


@pytest.fixture(scope="module")
def mesh() -> np.ndarray:
    """MediaPipe's mesh of a frame of the built-in sample's face, (478, 3) in pixels of a 128 x 128 image."""
    from talking_head.toolkit.sample.face import photo

    image = photo()
    with face_mesh.FaceMeshDetector() as detector:
        found = detector.detect(image)
    assert found is not None
    return found * np.float32(SIZE / image.shape[1])


def _colour_mask(image: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(image == np.array(colour, np.uint8), axis=-1)


def test_shapes_dtypes_and_batching(mesh):
    one = render_mesh(mesh, SIZE)
    assert one.shape == (SIZE, SIZE, 3) and one.dtype == np.uint8
    assert render_mesh(mesh[:, :2], (SIZE, 96)).shape == (SIZE, 96, 3)  # x, y only; height, width
    many = render_mesh(np.stack([mesh, mesh + 5.0, mesh]), SIZE)
    assert many.shape == (3, SIZE, SIZE, 3)
    np.testing.assert_array_equal(many[0], one)  # a frame's drawing does not depend on its neighbours
    np.testing.assert_array_equal(many[2], one)
    assert not np.array_equal(many[1], one)
    np.testing.assert_array_equal(render_mesh(mesh, SIZE), one)  # deterministic
    assert render_mesh(np.zeros((0, 478, 3)), SIZE).shape == (0, SIZE, SIZE, 3)


def test_pixels_land_on_the_landmarks(mesh):
    image = render_mesh(mesh, SIZE, antialias=False)
    drawn = image.any(axis=-1)
    # Every vertex of a drawn edge (all but the two iris centres) is within a pixel of a coloured
    # pixel's centre (pixel (i, j) is centred at (i + 0.5, j + 0.5)), and most lie in a coloured pixel.
    vertices = np.unique(np.concatenate([edges.ravel() for edges in connections().values()]))
    assert len(vertices) == 476 and 468 not in vertices and 473 not in vertices
    centres = np.argwhere(drawn)[:, ::-1] + 0.5
    distance, _ = cKDTree(centres).query(mesh[vertices, :2])
    assert distance.max() <= 1.0
    cols, rows = np.floor(mesh[vertices, 0]).astype(int), np.floor(mesh[vertices, 1]).astype(int)
    assert drawn[rows, cols].mean() > 0.99
    # Nothing is drawn outside the landmarks' bounding box (plus the one-pixel line width).
    x0, y0 = np.floor(mesh[:, :2].min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil(mesh[:, :2].max(axis=0)).astype(int) + 1
    outside = drawn.copy()
    outside[y0 : y1 + 1, x0 : x1 + 1] = False
    assert not outside.any()
    # A shifted mesh moves the drawing by the same number of pixels.
    shifted = render_mesh(mesh + np.array([7.0, -3.0, 0.0]), SIZE, antialias=False)
    np.testing.assert_array_equal(shifted[10 - 3 : SIZE - 10 - 3, 10 + 7 : SIZE - 10 + 7], image[10 : SIZE - 10, 10 : SIZE - 10])


def test_parts_are_drawn_in_their_colours(mesh):
    image = render_mesh(mesh, SIZE, antialias=False)
    lips = _colour_mask(image, PARTS["lips"][1])
    ys, xs = np.nonzero(lips)
    lip_points = mesh[list(face_mesh.LIPS), :2]
    assert len(xs) > 20
    # The lip-coloured pixels are the lips: inside the lip landmarks' box, and covering its extent.
    assert xs.min() >= np.floor(lip_points[:, 0].min()) - 1 and xs.max() <= np.ceil(lip_points[:, 0].max()) + 1
    assert ys.min() >= np.floor(lip_points[:, 1].min()) - 1 and ys.max() <= np.ceil(lip_points[:, 1].max()) + 1
    assert xs.max() - xs.min() >= 0.8 * np.ptp(lip_points[:, 0])
    for part in ("tessellation", "face_oval", "right_eye", "left_eye", "right_iris", "left_iris"):
        assert _colour_mask(image, PARTS[part][1]).any(), part
    # The subject's right eye is on the image's left.
    right_x = np.nonzero(_colour_mask(image, PARTS["right_eye"][1]))[1].mean()
    left_x = np.nonzero(_colour_mask(image, PARTS["left_eye"][1]))[1].mean()
    assert right_x < left_x
    # Without the tessellation only the contours and irises remain.
    bare = render_mesh(mesh, SIZE, tessellation=False, antialias=False)
    assert not _colour_mask(bare, PARTS["tessellation"][1]).any()
    assert bare.any(axis=-1).sum() < 0.5 * image.any(axis=-1).sum()


def test_connections_are_mediapipes():
    sets = connections()
    assert len(sets["tessellation"]) == 2556 and len(sets["lips"]) == 40
    assert len(sets["right_iris"]) == len(sets["left_iris"]) == 4
    assert all(edges.min() >= 0 and edges.max() < face_mesh.NUM_POINTS for edges in sets.values())
    lip_points = set(np.unique(sets["lips"]).tolist())
    assert lip_points == set(face_mesh.LIPS)


def test_scale_multiplies_the_coordinates(mesh):
    np.testing.assert_array_equal(render_mesh(mesh * 4, SIZE, scale=0.25), render_mesh(mesh, SIZE))


def test_out_of_frame_and_missing_points_do_not_crash(mesh):
    far = mesh.copy()
    far[:200, :2] += 1e7  # far outside: clamped before fixed-point conversion
    image = render_mesh(far, SIZE)
    assert image.shape == (SIZE, SIZE, 3)
    off = render_mesh(mesh - 1000.0, SIZE)  # the whole face outside the image
    assert not off.any()
    missing = mesh.copy()
    missing[list(face_mesh.LIPS), 0] = np.nan  # a frame without a face is stored as NaN
    image = render_mesh(missing, SIZE, antialias=False)
    assert not _colour_mask(image, PARTS["lips"][1]).any()
    assert _colour_mask(image, PARTS["face_oval"][1]).any()
    assert not render_mesh(np.full((478, 3), np.nan), SIZE).any()


@pytest.mark.parametrize("bad", [np.zeros((468, 3)), np.zeros((2, 478, 4)), np.zeros((478,)), np.zeros((1, 2, 478, 3))])
def test_wrong_shapes_raise(bad):
    with pytest.raises(ValueError, match="478"):
        render_mesh(bad, SIZE)


def test_bad_size_and_thickness_raise(mesh):
    with pytest.raises(ValueError, match="size"):
        render_mesh(mesh, 0)
    with pytest.raises(ValueError, match="thickness"):
        render_mesh(mesh, SIZE, thickness=0)
