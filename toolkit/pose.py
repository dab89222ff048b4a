"""Head pose and canonical (frontalised) landmarks from MediaPipe's 478-point face mesh.

Usage::

    from talking_head.toolkit.pose import fit_pose, to_frame

    fit = fit_pose(mesh)                 # (T, 478, 3) FaceMeshDetector landmarks, pixels
    fit.pose                             # (T, 7) yaw, pitch, roll (degrees), tx, ty, tz, scale
    fit.canonical                        # (T, 478, 3) frontalised landmarks: expression without head motion
    to_frame(fit.canonical, fit.pose)    # back to the input's pixel frame

Method
------

Each frame's mesh is fitted to a fixed canonical face by a similarity transform (rotation, uniform
scale, translation) on rigid points only: Umeyama's closed-form least squares in 3D, refined by a few
Gauss-Newton steps in which MediaPipe's less reliable z counts DEPTH_WEIGHT of x and y. The transform
is the head pose; its inverse maps the whole mesh into the canonical frame, which removes head motion
and keeps expression (mouth, eyelids). Those canonical landmarks are what the audio-to-landmark
models train on.

Frames and units
----------------
* Input landmarks are :class:`toolkit.face_mesh.FaceMeshDetector`'s: x to the image right, y down
  (pixels), z MediaPipe's relative depth in the same pixel scale, negative towards the camera. The
  axes form a right-handed frame.
* The canonical frame has the same axes, in the pixels of a 512 x 512 "canonical image": the
  canonical face is upright, frontal and mirror-symmetric about x = 256, its outer eye corners
  (33, 263) are 160 px apart on a horizontal line, and its face centre is at (256, 232, 0). z keeps
  MediaPipe's sign (MODA flips it and adds 128: ``z_moda = 128 - z``); the scale is close to MODA's
  512-px canonical units.
* The face centre is MODA's anchor: the mean of points 50, 280 (cheekbones) and 168 (nose bridge
  between the eyes), all rigid, so it does not move when the jaw opens.

Pose
----
Seven numbers per frame, ``(yaw, pitch, roll, tx, ty, tz, scale)``, defined by::

    landmarks = scale * R @ (canonical - CANONICAL_CENTRE) + (tx, ty, tz)
    R = R_roll @ R_pitch @ R_yaw    # yaw applied first, then pitch, then roll

    R_yaw   = [[cy, 0, -sy], [0, 1, 0], [sy, 0, cy]]      # about the vertical axis
    R_pitch = [[1, 0, 0], [0, cp, -sp], [0, sp, cp]]      # about the horizontal image axis
    R_roll  = [[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]]      # about the viewing axis

Euler order: about the fixed image axes, yaw (y axis) first, then pitch (x), then roll (z); the
same as intrinsic z-x'-y'' (roll, pitch, yaw). Angles are in degrees: yaw > 0 turns the nose towards
image +x, pitch > 0 tips it down (+y), roll > 0 turns the face clockwise on screen: the conventions
and order of :meth:`toolkit.sample.face.FaceRig.apply_pose`. Zero pitch is the photo's own head
tilt (the subject faces the camera), since symmetry fixes only yaw and roll. (tx, ty, tz) is where the face centre is in the
input's pixel frame and ``scale`` the face size relative to the canonical face (a face whose eye
corners are 80 px apart has scale 0.5).

The canonical face
------------------
MediaPipe 0.10.21's wheel ships no canonical face model, so the toolkit builds one
(:func:`build_canonical_face`) from MediaPipe's own mesh of a real near-frontal face photo,
``skimage.data.astronaut()``, made exactly symmetric, and commits it as ``data/canonical_face.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from talking_head.toolkit import face_mesh as fm

CANONICAL_FACE_FILE = Path(__file__).with_name("data") / "canonical_face.csv"

CANONICAL_SIZE = 512  # side of the canonical image, px (MODA's canonical units are 512 px too)
CANONICAL_IOD = 160.0  # outer-eye-corner distance (33-263) of the canonical face, canonical px
CANONICAL_CENTRE = (256.0, 232.0, 0.0)  # face centre in the canonical image: centred, face box mid-height
CENTRE_POINTS = (50, 280, 168)  # MODA's anchor: cheekbones and nose bridge, "more stable than the eye centre"

# Points fitted for the pose: on bone, and placed well by the detector. Left out because expression
# moves them: lips, jaw and chin (speech), cheeks below the cheekbones and the nostril wings (the lip
# and smile muscles pull them), eyelids (blinks), irises (gaze), brows (brow raises). Left out because
# MediaPipe places them badly although the bone under them is rigid: the forehead and temples
# (untextured skin, often under hair; on the built-in sample the detected forehead does not follow
# the true head motion, r ~ 0, shifts by 2-4 canonical px when the mouth opens, and adding either
# group lowers the pitch and roll correlations with the truth), and the face outline (a silhouette that
# slides as the head turns, half hidden under yaw).
RIGID_EYE_CORNERS = (33, 133, 263, 362)  # canthi: tied to the orbit; the lids close between them
RIGID_NOSE = (168, 6, 197, 195, 5, 4)  # nasal bones and cartilage ridge, bridge to tip: depth for pitch
RIGID_CHEEKBONES = (116, 345, 123, 352, 50, 280)  # zygomatic bones, below the outer eye corners
RIGID_POINTS = RIGID_EYE_CORNERS + RIGID_NOSE + RIGID_CHEEKBONES

# MediaPipe's z is inferred, not seen: on the built-in sample the detected nose-to-eye depth does not
# follow the true head rotation (r ~ 0), so depth residuals count this much relative to x and y.
# 1.0 is the plain 3D Umeyama fit; 0.3 raises the detected-pitch correlation on the sample from
# 0.75 / 0.65 to 0.80 / 0.71 and costs < 0.02 of correlation on exact (ground-truth) meshes.
DEPTH_WEIGHT = 0.3
REFINE_STEPS = 8  # Gauss-Newton steps from the closed-form 3D start (converges in 3-4)

_MIRROR = np.array([-1.0, 1.0, 1.0])  # x -> -x


@dataclass(frozen=True)
class PoseFit:
    """Per-frame result of :func:`fit_pose`; frames without a face (NaN input) are NaN throughout.

    pose: (T, 7) yaw, pitch, roll (deg), tx, ty, tz (input px), scale (see the module docstring).
    canonical: (T, 478, 3) every point mapped into the canonical frame (canonical px).
    rotation: (T, 3, 3) R, canonical -> input directions.
    residual: (T,) RMS distance of the canonical rigid points from the template's, canonical px, with
        z weighted by DEPTH_WEIGHT as in the fit: a fit-quality flag (a few px for a good frame).
    """

    pose: np.ndarray
    canonical: np.ndarray
    rotation: np.ndarray
    residual: np.ndarray


# -- rotations ------------------------------------------------------------------------------------


def rotation_from_euler(yaw: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """R = R_roll @ R_pitch @ R_yaw for angles in degrees (any broadcastable shape), (..., 3, 3)."""
    y, p, r = np.broadcast_arrays(*(np.deg2rad(np.asarray(a, dtype=np.float64)) for a in (yaw, pitch, roll)))
    one, zero = np.ones_like(y), np.zeros_like(y)

    def matrix(*rows):
        return np.stack([np.stack(row, -1) for row in rows], -2)

    r_yaw = matrix((np.cos(y), zero, -np.sin(y)), (zero, one, zero), (np.sin(y), zero, np.cos(y)))
    r_pitch = matrix((one, zero, zero), (zero, np.cos(p), -np.sin(p)), (zero, np.sin(p), np.cos(p)))
    r_roll = matrix((np.cos(r), -np.sin(r), zero), (np.sin(r), np.cos(r), zero), (zero, zero, one))
    return r_roll @ r_pitch @ r_yaw


def euler_from_rotation(rotation: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees, (..., 3), of rotations (..., 3, 3) = R_roll @ R_pitch @ R_yaw.

    Unique for |pitch| < 90 degrees, which covers every usable talking-head frame.
    """
    r = np.asarray(rotation, dtype=np.float64)
    yaw = np.arctan2(r[..., 2, 0], r[..., 2, 2])
    pitch = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    roll = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    return np.rad2deg(np.stack([yaw, pitch, roll], -1))


# -- the fit --------------------------------------------------------------------------------------


def similarity_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares similarity from one point set onto many (Umeyama 1991), vectorised over frames.

    source (N, 3), target (T, N, 3) -> scale (T,), rotation (T, 3, 3), shift (T, 3) such that
    ``target ~ scale * source @ rotation.T + shift``. The rotation is proper (det +1): a mirror
    image is never returned.
    """
    src_mean = source.mean(0)
    tgt_mean = target.mean(1)
    src = source - src_mean
    tgt = target - tgt_mean[:, None]
    cov = np.einsum("tni,nj->tij", tgt, src) / len(source)
    u, sing, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    d = np.ones((len(target), 3))
    d[:, 2] = sign
    rotation = np.einsum("tij,tj,tjk->tik", u, d, vt)
    scale = (sing * d).sum(1) / (src**2).sum(1).mean()
    shift = tgt_mean - scale[:, None] * np.einsum("tij,j->ti", rotation, src_mean)
    return scale, rotation, shift


def _skew(v: np.ndarray) -> np.ndarray:
    """Cross-product matrices [v]x, (..., 3, 3), of vectors (..., 3)."""
    zero = np.zeros(v.shape[:-1])
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    return np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)


def _rotation_from_vector(w: np.ndarray) -> np.ndarray:
    """Rotations (..., 3, 3) by angle |w| about w (Rodrigues' formula)."""
    angle = np.linalg.norm(w, axis=-1)[..., None, None]
    small = angle < 1e-12
    safe = np.where(small, 1.0, angle)
    k = _skew(w)
    a = np.where(small, 1.0, np.sin(safe) / safe)
    b = np.where(small, 0.5, (1.0 - np.cos(safe)) / safe**2)
    return np.eye(3) + a * k + b * (k @ k)


def weighted_similarity_fit(
    source: np.ndarray, target: np.ndarray, depth_weight: float | None = None, steps: int = REFINE_STEPS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`similarity_fit` with z residuals weighted by `depth_weight` (x and y by 1).

    Starts from the closed-form 3D fit and takes Gauss-Newton steps on (rotation, scale, shift), the
    rotation updated as R <- R exp([w]x). With depth_weight=1 it returns the closed-form fit as is.
    """
    depth_weight = DEPTH_WEIGHT if depth_weight is None else depth_weight
    scale, rotation, shift = similarity_fit(source, target)
    if depth_weight == 1.0:
        return scale, rotation, shift
    weight = np.sqrt([1.0, 1.0, depth_weight])
    jac_shift = np.broadcast_to(np.eye(3), (len(target), len(source), 3, 3))
    for _ in range(steps):
        rotated = np.einsum("tij,nj->tni", rotation, source)
        residual = (scale[:, None, None] * rotated + shift[:, None] - target) * weight
        jac_rot = -scale[:, None, None, None] * np.einsum("tij,njk->tnik", rotation, _skew(source))
        jac = np.concatenate([jac_rot, rotated[..., None], jac_shift], -1) * weight[:, None]
        jac = jac.reshape(len(target), -1, 7)
        normal = np.einsum("tki,tkj->tij", jac, jac)
        gradient = np.einsum("tki,tk->ti", jac, residual.reshape(len(target), -1))
        step = -np.linalg.solve(normal, gradient[..., None])[..., 0]
        rotation = rotation @ _rotation_from_vector(step[:, :3])
        scale = scale + step[:, 3]
        shift = shift + step[:, 4:]
    return scale, rotation, shift


def fit_pose(landmarks: np.ndarray, rigid: tuple[int, ...] = RIGID_POINTS) -> PoseFit:
    """Head pose and canonical landmarks of (T, 478, 3) meshes in pixels (see the module docstring).

    A frame with a non-finite rigid point (e.g. NaN for "no face") gives NaN in every output.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (fm.NUM_POINTS, 3):
        raise ValueError(f"expected landmarks of shape (T, {fm.NUM_POINTS}, 3), got {landmarks.shape}")
    num_frames = len(landmarks)
    template = load_canonical_face()
    centre = np.asarray(CANONICAL_CENTRE)
    rigid = list(rigid)

    pose = np.full((num_frames, 7), np.nan)
    canonical = np.full(landmarks.shape, np.nan)
    rotation = np.full((num_frames, 3, 3), np.nan)
    residual = np.full(num_frames, np.nan)
    ok = np.isfinite(landmarks[:, rigid]).all(axis=(1, 2))
    if ok.any():
        frames = landmarks[ok]
        # With the template centred on the face centre, the fitted shift is the face centre's position.
        scale, rot, shift = weighted_similarity_fit(template[rigid] - centre, frames[:, rigid])
        # Into the canonical frame: x_c = R^T (x - shift) / scale + centre.
        back = np.einsum("tni,tij->tnj", frames - shift[:, None], rot) / scale[:, None, None] + centre
        canonical[ok] = back
        rotation[ok] = rot
        misfit = (back[:, rigid] - template[rigid]) ** 2 * [1.0, 1.0, DEPTH_WEIGHT]
        residual[ok] = np.sqrt(misfit.sum(-1).mean(-1))
        pose[ok, :3] = euler_from_rotation(rot)
        pose[ok, 3:6] = shift
        pose[ok, 6] = scale
    return PoseFit(pose=pose, canonical=canonical, rotation=rotation, residual=residual)


def to_frame(canonical: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Inverse of the canonicalisation: canonical landmarks (T, P, 3) placed by poses (T, 7) -> pixels.

    Works for any point subset P (e.g. generated lips only); NaN poses give NaN frames.
    """
    canonical = np.asarray(canonical, dtype=np.float64)
    pose = np.asarray(pose, dtype=np.float64)
    rot = rotation_from_euler(pose[..., 0], pose[..., 1], pose[..., 2])
    local = canonical - np.asarray(CANONICAL_CENTRE)
    return pose[..., None, 6:7] * np.einsum("...ij,...nj->...ni", rot, local) + pose[..., None, 3:6]


# -- the canonical face ---------------------------------------------------------------------------


def mirror_index(mesh: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Left-right correspondence of the mesh points: ``mesh[mirror_index(mesh)]`` is the mirror image.

    Derived from geometry, since MediaPipe publishes no such table: the x-mirrored mesh is aligned
    rigidly to the mesh and matched one-to-one (Hungarian assignment on point distances), alternating
    until the matching stops changing (a mirror-ICP). For a near-frontal face it is an involution
    whose fixed points are the midline (nose, lips, chin, forehead centre).
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    points = np.asarray(mesh, dtype=np.float64)
    points = points - points.mean(0)
    mirrored = points * _MIRROR
    aligned = mirrored
    match = None
    for _ in range(iterations):
        previous = match
        _, match = linear_sum_assignment(cdist(points, aligned))
        if previous is not None and np.array_equal(match, previous):
            break
        scale, rot, shift = similarity_fit(mirrored[match], points[None])
        aligned = scale[0] * mirrored @ rot[0].T + shift[0]
    return match


def _astronaut_mesh() -> np.ndarray:
    """MediaPipe's mesh (478, 3, pixels) of the face in ``skimage.data.astronaut()``, a single image."""
    from skimage import data

    with fm.FaceMeshDetector(video=False) as detector:
        mesh = detector.detect(data.astronaut())
    if mesh is None:
        raise RuntimeError("MediaPipe found no face in skimage.data.astronaut()")
    return mesh.astype(np.float64)


def build_canonical_face(mesh: np.ndarray | None = None) -> np.ndarray:
    """Rebuild the canonical face (478, 3) in canonical px from a near-frontal mesh (default: the photo's).

    1. Left-right correspondence from geometry (:func:`mirror_index`).
    2. Symmetry plane: its normal is the main direction of the vectors between mirror points; the
       smallest rotation taking that normal to the x axis removes the photo's yaw and roll. Pitch is
       not fixed by symmetry and stays the photo's (the subject faces the camera).
    3. Average with the mirror image: exactly symmetric, and iris/gaze centred.
    4. Scale to CANONICAL_IOD and move the face centre to CANONICAL_CENTRE.
    """
    mesh = _astronaut_mesh() if mesh is None else np.asarray(mesh, dtype=np.float64)
    mirror = mirror_index(mesh)
    paired = mirror != np.arange(len(mesh))
    normal = np.linalg.svd((mesh - mesh[mirror])[paired], full_matrices=False)[2][0]
    normal *= np.sign(normal[0])
    # Rodrigues' rotation taking `normal` onto the x axis.
    v = np.cross(normal, [1.0, 0.0, 0.0])
    k = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    rot = np.eye(3) + k + k @ k / (1.0 + normal[0])
    points = (mesh - mesh.mean(0)) @ rot.T
    symmetric = 0.5 * (points + points[mirror] * _MIRROR)
    symmetric[:, 0] -= symmetric[:, 0].mean()  # the plane of symmetry through x = 0 exactly
    symmetric *= CANONICAL_IOD / np.linalg.norm(symmetric[fm.RIGHT_EYE_OUTER] - symmetric[fm.LEFT_EYE_OUTER])
    symmetric += np.asarray(CANONICAL_CENTRE) - symmetric[list(CENTRE_POINTS)].mean(0)
    return symmetric


def save_canonical_face(path: str | Path = CANONICAL_FACE_FILE, face: np.ndarray | None = None) -> Path:
    """Write the canonical face (default: a fresh :func:`build_canonical_face`) as commented CSV."""
    face = build_canonical_face() if face is None else face
    header = (
        "MediaPipe 478-point canonical face, built by toolkit.pose.build_canonical_face():\n"
        "MediaPipe 0.10.21 mesh (refine_landmarks, single image) of skimage.data.astronaut(), yaw and roll\n"
        "removed via the left-right symmetry plane (correspondence from mirror-ICP), averaged with its\n"
        "mirror image, scaled so the outer eye corners 33-263 are 160 px apart and the face centre (mean\n"
        "of points 50, 280, 168) is at (256, 232, 0) of a 512x512 canonical image. Axes: x right, y down,\n"
        "z depth (negative towards the camera), all in canonical px. One row per point, index order.\n"
        "x,y,z"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, face, fmt="%.4f", delimiter=",", header=header, comments="# ")
    return path


@lru_cache(maxsize=1)
def _load(path: str) -> np.ndarray:
    face = np.loadtxt(path, delimiter=",", comments="#", dtype=np.float64)
    face.setflags(write=False)
    return face


def load_canonical_face() -> np.ndarray:
    """The committed canonical face, (478, 3) canonical px (read-only)."""
    return _load(str(CANONICAL_FACE_FILE))
