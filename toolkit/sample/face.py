"""A talking face from one photo: speaker looks, a landmark rig, and a piecewise-affine renderer.

The photo is ``skimage.data.astronaut()``. Each speaker is a deterministic change of it (crop and
scale, colour, background, mirror). MediaPipe's mesh of the speaker's image is the neutral face; the
rig moves mesh points (jaw drop, lip corners, eyelids, head pose) and the renderer warps the image
triangle by triangle from the neutral mesh to the moved one, so a real landmark detector sees the
motion and the moved mesh is the ground truth.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np
from scipy.spatial import Delaunay

from talking_head.toolkit import face_mesh as fm

# Where the face is in astronaut() (512x512): a square crop around it, in photo pixels.
PHOTO_FACE_CENTRE = (225.0, 130.0)
PHOTO_CROP_SIZE = 240.0

MOUTH_INTERIOR_RGB = (52, 14, 18)


@dataclass(frozen=True)
class Look:
    """How one speaker is derived from the photo. All fields are plain numbers so they serialise."""

    crop_dx: float = 0.0  # crop centre offset from the face centre, fraction of the crop size
    crop_dy: float = 0.0
    crop_scale: float = 1.0  # >1 zooms out (smaller face)
    mirror: bool = False
    hue_shift: float = 0.0  # degrees on OpenCV's 0-180 hue circle x2
    saturation: float = 1.0
    gain: float = 1.0
    background: tuple[int, int, int] | None = None  # replace the studio backdrop with this RGB colour

    def to_dict(self) -> dict:
        return asdict(self)


def speaker_looks(count: int, rng: np.random.Generator) -> list[Look]:
    """`count` distinct looks; the first is the photo as it is (cropped), the rest vary every knob."""
    looks = [Look()]
    backgrounds = [(40, 90, 160), (60, 130, 80), (150, 60, 60), (90, 90, 90), (200, 170, 90), (70, 60, 130)]
    for k in range(1, count):
        looks.append(
            Look(
                crop_dx=float(rng.uniform(-0.06, 0.06)),
                crop_dy=float(rng.uniform(-0.04, 0.06)),
                crop_scale=float(rng.uniform(0.85, 1.2)),
                mirror=bool(k % 2 == 1),
                hue_shift=float(rng.uniform(-12, 12)),
                saturation=float(rng.uniform(0.7, 1.3)),
                gain=float(rng.uniform(0.85, 1.1)),
                background=backgrounds[(k - 1) % len(backgrounds)],
            )
        )
    return looks


def photo() -> np.ndarray:
    """The real face photo every speaker is made from (RGB uint8, 512x512)."""
    from skimage import data

    return data.astronaut()


def render_look(look: Look, size: int = 512) -> np.ndarray:
    """The speaker's neutral image (size x size RGB uint8)."""
    img = photo()
    crop = PHOTO_CROP_SIZE * look.crop_scale
    cx = PHOTO_FACE_CENTRE[0] + look.crop_dx * crop
    cy = PHOTO_FACE_CENTRE[1] + look.crop_dy * crop
    # Affine crop-and-resize; the border replicates so a zoomed-out crop has no black edge.
    s = size / crop
    m = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]], dtype=np.float64)
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    if look.background is not None:
        out = _replace_background(out, look.background)
    if look.hue_shift or look.saturation != 1.0 or look.gain != 1.0:
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = (hsv[..., 0] + look.hue_shift / 2.0) % 180.0
        hsv[..., 1] = np.clip(hsv[..., 1] * look.saturation, 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] * look.gain, 0, 255)
        out = cv2.cvtColor(hsv.round().astype(np.uint8), cv2.COLOR_HSV2RGB)
    if look.mirror:
        out = np.ascontiguousarray(out[:, ::-1])
    return out


def _replace_background(image: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    """Flood-fill the smooth studio backdrop from the top and side edges and paint it `rgb`."""
    h, w = image.shape[:2]
    mask = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    for seed in [(2, 2), (w - 3, 2), (w // 2, 2), (2, h // 2), (w - 3, h // 2)]:
        if mask[seed[1] + 1, seed[0] + 1] == 0:
            cv2.floodFill(image.copy(), mask, seed, 0, (3, 3, 3), (3, 3, 3), flags)
    m = cv2.morphologyEx(mask[1:-1, 1:-1], cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    alpha = cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), 2.0)[..., None]
    return (image * (1 - alpha) + alpha * np.array(rgb, np.float32)).round().astype(np.uint8)


@dataclass(frozen=True)
class Pose:
    """Head pose applied to the mesh: degrees, output pixels, and a scale factor around the face centre.

    yaw > 0 turns the nose towards +x (image right), pitch > 0 tips it towards +y (down),
    roll > 0 rotates clockwise on screen. tz is always 0 (orthographic camera).
    """

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    tx: float = 0.0
    ty: float = 0.0
    scale: float = 1.0

    def as_vector(self) -> np.ndarray:
        """The 7 numbers the toolkit stores per frame: yaw, pitch, roll, tx, ty, tz, scale."""
        return np.array([self.yaw, self.pitch, self.roll, self.tx, self.ty, 0.0, self.scale], np.float32)


class FaceRig:
    """Moves a neutral 478-point mesh and renders the image that goes with the moved mesh.

    Driving parameters per frame: mouth (open, round, spread) in [0, 1], blink in [0, 1], and a Pose.
    """

    MAX_GAP = 0.35  # widest inner-lip gap, in inter-ocular distances

    def __init__(self, image: np.ndarray, neutral: np.ndarray):
        self.image = image
        self.neutral = neutral.astype(np.float64)
        h, w = image.shape[:2]
        self.size = (w, h)
        pts = self.neutral[:, :2]
        self.iod = float(fm.interocular(self.neutral))
        self.centre = self.neutral.mean(axis=0)
        self.neutral_gap = float(np.linalg.norm(pts[fm.LOWER_LIP_INNER_MID] - pts[fm.UPPER_LIP_INNER_MID]))

        # Anchors: a ring around the head that follows the 2D part of the pose (so hair and neck move
        # with the face) and the image border, which stays put. They close the triangulation.
        radius = 1.55 * np.max(np.linalg.norm(pts - self.centre[:2], axis=1))
        angles = np.linspace(0, 2 * np.pi, 28, endpoint=False)
        self.ring = self.centre[:2] + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        edge = np.linspace(0, 1, 6)
        border = [(x * (w - 1), y * (h - 1)) for x in edge for y in (0, 1)] + [
            (x * (w - 1), y * (h - 1)) for y in edge[1:-1] for x in (0, 1)
        ]
        self.border = np.array(border, dtype=np.float64)
        self.triangles = Delaunay(np.concatenate([pts, self.ring, self.border])).simplices

        self._jaw_weight = self._make_jaw_weights()
        self._corner_weight, self._side = self._make_corner_weights()
        self._grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)

    # -- rig ------------------------------------------------------------------------------------
    def _make_jaw_weights(self) -> np.ndarray:
        """How much each point follows the jaw: 1 for the lower lip and chin, 0 above the mouth."""
        p = self.neutral
        y_mouth = p[list(fm.MOUTH_CORNERS), 1].mean()
        x_mid = p[list(fm.MOUTH_CORNERS), 0].mean()
        face_w = np.ptp(p[:, 0])
        below = np.clip((p[:, 1] - y_mouth) / (0.35 * (p[fm.CHIN, 1] - y_mouth)), 0.0, 1.0)
        vertical = below * below * (3 - 2 * below)  # smoothstep
        horizontal = np.exp(-0.5 * ((p[:, 0] - x_mid) / (0.32 * face_w)) ** 2)
        weight = vertical * horizontal
        lower_lip = set(fm.LIPS_OUTER_LOWER + fm.LIPS_INNER_LOWER) - {61, 291, 78, 308}
        weight[sorted(lower_lip)] = 1.0
        weight[[61, 291, 78, 308]] = 0.45
        return weight

    def _make_corner_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Falloff around the mouth corners, and which side (-1 / +1) each point is on."""
        p = self.neutral[:, :2]
        left, right = p[fm.MOUTH_CORNERS[0]], p[fm.MOUTH_CORNERS[1]]
        width = np.linalg.norm(right - left)
        d = np.minimum(np.linalg.norm(p - left, axis=1), np.linalg.norm(p - right, axis=1))
        weight = np.exp(-0.5 * (d / (0.3 * width)) ** 2)
        side = np.sign(p[:, 0] - 0.5 * (left[0] + right[0]))
        return weight * width, side

    def deform(self, open_: float, round_: float, spread: float, blink: float) -> np.ndarray:
        """The neutral mesh with the mouth and eyelids moved (no head pose), (478, 3)."""
        mesh = self.neutral.copy()
        gap = open_ * self.MAX_GAP * self.iod
        mesh[:, 1] += self._jaw_weight * (gap - self.neutral_gap)
        # Spreading pulls the corners out; rounding pushes them in and the lips forward.
        mesh[:, 0] += self._side * self._corner_weight * (0.12 * spread - 0.22 * round_)
        mesh[:, 2] -= self._corner_weight * 0.15 * round_
        if blink > 0:
            for upper, lower in ((fm.RIGHT_EYE_UPPER, fm.RIGHT_EYE_LOWER), (fm.LEFT_EYE_UPPER, fm.LEFT_EYE_LOWER)):
                self._close_eye(mesh, upper, lower, blink)
        return mesh

    def _close_eye(self, mesh: np.ndarray, upper: tuple, lower: tuple, amount: float) -> None:
        """Lower the upper lid (and everything between the lids) onto the lower lid, in place."""
        up = self.neutral[list(upper), :2]
        low = self.neutral[list(lower), :2]
        up, low = up[np.argsort(up[:, 0])], low[np.argsort(low[:, 0])]
        x0, x1 = up[0, 0], up[-1, 0]
        eye_h = np.max(np.interp(up[:, 0], low[:, 0], low[:, 1]) - up[:, 1])
        x, y = self.neutral[:, 0], self.neutral[:, 1]
        inside = (x > x0) & (x < x1)
        y_up = np.interp(x, up[:, 0], up[:, 1])
        y_low = np.interp(x, low[:, 0], low[:, 1])
        between = inside & (y >= y_up) & (y < y_low)
        above = inside & (y < y_up) & (y > y_up - 2.0 * eye_h)
        mesh[between, 1] += amount * (y_low[between] - y[between])
        falloff = np.exp(-(y_up[above] - y[above]) / (0.6 * eye_h))
        mesh[above, 1] += amount * (y_low[above] - y_up[above]) * falloff

    def apply_pose(self, mesh: np.ndarray, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
        """Rotate/scale/translate the mesh about the face centre; returns (mesh, ring anchors)."""
        yaw, pitch, roll = np.deg2rad([pose.yaw, pose.pitch, pose.roll])
        cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
        r_yaw = np.array([[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]])
        r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
        r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        rot = r_roll @ r_pitch @ r_yaw
        shift = np.array([pose.tx, pose.ty, 0.0])
        moved = (mesh - self.centre) @ rot.T * pose.scale + self.centre + shift
        ring = (self.ring - self.centre[:2]) @ rot[:2, :2].T * pose.scale + self.centre[:2] + shift[:2]
        return moved, ring

    # -- renderer -------------------------------------------------------------------------------
    def render(self, mesh: np.ndarray, ring: np.ndarray) -> np.ndarray:
        """Warp the neutral image so its mesh lands on `mesh` (piecewise affine), then draw the mouth."""
        src = np.concatenate([self.neutral[:, :2], self.ring, self.border])
        dst = np.concatenate([mesh[:, :2], ring, self.border])
        w, h = self.size
        # Which destination triangle covers each pixel (later triangles win on shared edges).
        index = np.zeros((h, w), np.int32)
        for k, tri in enumerate(self.triangles):
            cv2.fillConvexPoly(index, np.round(dst[tri] * 16).astype(np.int32), k + 1, cv2.LINE_8, 4)
        # Per-triangle affine maps from destination to source pixels: [x y 1] @ A = [u v].
        d = np.concatenate([dst[self.triangles], np.ones((len(self.triangles), 3, 1))], axis=2)
        s = src[self.triangles]
        det = np.linalg.det(d)
        safe = np.abs(det) > 1e-6  # collapsed triangles (closed eye, closed mouth) cover no pixels
        affine = np.zeros((len(self.triangles), 3, 2))
        affine[:, :2, :] = np.eye(2)
        affine[safe] = np.linalg.solve(d[safe], s[safe])
        affine = np.concatenate([np.tile(np.array([[[1, 0], [0, 1], [0, 0]]], float), (1, 1, 1)), affine])
        a = affine.astype(np.float32)[index]  # (h, w, 3, 2); index 0 = identity
        coords = self._grid[..., 0:1] * a[..., 0, :] + self._grid[..., 1:2] * a[..., 1, :] + a[..., 2, :]
        out = cv2.remap(self.image, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        return self._draw_mouth_interior(out, mesh)

    def _draw_mouth_interior(self, image: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """Darken the opening between the inner lips in proportion to how far past neutral it opened."""
        gap = np.linalg.norm(mesh[fm.LOWER_LIP_INNER_MID, :2] - mesh[fm.UPPER_LIP_INNER_MID, :2])
        strength = np.clip((gap - self.neutral_gap) / (0.08 * self.iod), 0.0, 0.95)
        if strength <= 0:
            return image
        contour = np.concatenate([mesh[list(fm.LIPS_INNER_UPPER), :2], mesh[list(fm.LIPS_INNER_LOWER)[::-1], :2]])
        # Work in the mouth's bounding box only (plus a margin for the blur).
        h, w = image.shape[:2]
        x0, y0 = np.maximum(np.floor(contour.min(0)).astype(int) - 4, 0)
        x1, y1 = np.minimum(np.ceil(contour.max(0)).astype(int) + 5, (w, h))
        mask = np.zeros((y1 - y0, x1 - x0), np.float32)
        cv2.fillPoly(mask, [np.round((contour - (x0, y0)) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
        mask = cv2.GaussianBlur(mask, (0, 0), 1.0)
        # Upper teeth stay visible: the top of the opening is darkened less than the rest.
        top = mesh[fm.UPPER_LIP_INNER_MID, 1]
        ramp = np.clip((np.arange(y0, y1)[:, None] - top) / max(gap * 0.35, 1.0), 0.25, 1.0)
        alpha = (strength * mask * ramp)[..., None]
        box = image[y0:y1, x0:x1].astype(np.float32)
        image[y0:y1, x0:x1] = (box * (1 - alpha) + alpha * np.array(MOUTH_INTERIOR_RGB, np.float32)).round().astype(np.uint8)
        return image
