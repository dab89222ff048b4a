"""Landmark distance: M-LMD (mouth) and F-LMD (face), and LMD-v on landmark velocities.

Usage::

    from talking_head.metrics.lmd import lmd, extract_landmarks

    gen = extract_landmarks("generated.mp4")         # (T, 478, 3) MediaPipe mesh
    ref = extract_landmarks("reference.mp4")
    lmd(gen, ref)["lmd"]                             # M-LMD, preset "dense", in % of the IOD
    lmd(gen, ref, region="face")["lmd_v"]            # F-LMD-v, on landmark velocities

Landmark extraction (the mesh, or FAN on face boxes) is :mod:`metrics.landmark_extraction`, re-exported here.

Fidelity notes
--------------

One entry point, :func:`lmd` (and its streaming twin :class:`LandmarkDistance`), on landmark arrays
of a generated and a reference video, frame by frame. Published LMD numbers come from scripts that
disagree on every knob (docs/metrics-reference.md#lmd-variants), so each is a named, frozen :class:`LMDPreset`:

``atvgnet``  ATVGnet (Chen et al., CVPR'19, ``code/evaluation_matrix.py``): 68 points, mouth = 48-67,
             face = all 68; each set minus its own centroid; per frame the SUM over points of the L2
             distance; mean over frames. Pixels. ATVGnet ran dlib's HOG detector and 68-point shape
             predictor; dlib is not available here, so landmarks come from face-alignment's FAN
             (``detector="fan"``), or bring your own dlib landmarks and say so (``detector="dlib"``).
             FAN and dlib disagree by several pixels, so the detector is part of the result.
``vico``     ViCo challenge baseline (``evaluations/compute_lmd.py``): FAN 68 points, lips 48-67
             (face: all 68), no centring, ``|generated - reference|`` averaged over points,
             coordinates and frames. Pixels.
``dense``    (recommended) MediaPipe's 478-point mesh: mouth = :data:`toolkit.face_mesh.LIPS` (40
             points), face = the 468 mesh points without the 10 iris points (the iris follows gaze,
             not face shape, and exists only with ``refine_landmarks``; 468 also accepts meshes from
             468-point models); each set centred on its centroid; mean per-point L2 distance divided
             by the reference frame's inter-ocular distance (outer eye corners 33-263), in % of it,
             so the number does not depend on resolution or face size.

All presets compare x, y only (``dims=2``): the references are 2-D, and MediaPipe's z is inferred,
not measured. Every value is pooled the way the reference scripts pool: the mean over all valid
frames of all videos (``lmd``); the mean of per-video means is reported next to it
(``lmd_video_mean``).

LMD-v is the same distance on frame-to-frame velocities ``x[t+1] - x[t]`` of the (centred, where the
preset centres) landmarks; with ``iod`` normalisation the unit is the mean reference IOD of the two
frames. It scores motion dynamics: a generated face that lags or jitters gets a high LMD-v even
when its average shape is right.

Frames where either side has no landmarks (any needed point NaN, or a zero IOD) are excluded and
counted (``frames_excluded``); a velocity needs both of its frames. Nothing is dropped silently.

Landmarks come from :func:`extract_landmarks` / :class:`LandmarkExtractor`, or from anywhere else as
long as the detector is named. The 68-point presets need 68-point landmarks (FAN, or your dlib): no
478 -> 68 index mapping is offered. MediaPipe publishes none, and picking the nearest mesh vertex for
each iBUG point cannot reproduce dlib's or FAN's points: the iBUG jaw line 0-16 is the 2-D face
silhouette, which slides over the face as the head turns, while a mesh vertex is fixed on the skin;
and the two annotation schemes place lip and brow contours differently, by a few pixels, which is the
size of the effect LMD measures. A mapped number would be a fourth LMD variant under a reference's name.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np

from talking_head.metrics import registry
from talking_head.metrics.base import LANDMARKS, PAIRED_FRAMES, Chunk, Metric, PerVideoRows, VideoInfo
from talking_head.metrics.landmark_extraction import DEFAULT_BOX_SOURCE, LandmarkExtractor, extract_landmarks
from talking_head.toolkit import face_mesh

__all__ = [
    "LMDPreset",
    "VideoDistances",
    "PRESETS",
    "MOUTH_68",
    "FACE_68",
    "MESH_FACE",
    "LandmarkExtractor",
    "extract_landmarks",
    "frame_distances",
    "lmd",
    "LandmarkDistance",
]

Region = Literal["mouth", "face"]
REGIONS: tuple[str, ...] = ("mouth", "face")

MOUTH_68 = tuple(range(48, 68))  # iBUG 68-point mouth (imutils FACIAL_LANDMARKS_IDXS['mouth']), ATVGnet and ViCo
FACE_68 = tuple(range(68))
MESH_FACE = tuple(range(468))  # MediaPipe mesh without the iris points 468-477
IOD_POINTS = (face_mesh.RIGHT_EYE_OUTER, face_mesh.LEFT_EYE_OUTER)  # 33, 263: the dense preset's unit
PERCENT = 100.0  # dense values are reported in % of the inter-ocular distance
DEFAULT_PRESET: str = registry.defaults("lmd")["preset"]  # MediaPipe mesh, offline; atvgnet / vico need FAN weights


@dataclass(frozen=True)
class LMDPreset:
    """Every knob that changes an LMD number.

    num_points: landmark counts accepted (68 for the iBUG layout, 478 or 468 for MediaPipe's mesh).
    mouth, face: point indices of the two regions.
    centre: subtract each region's own centroid, per frame and per side, before comparing.
    distance: per point, ``"l2"`` = sqrt(sum of squared coordinate differences), ``"mean_abs"`` = mean
        absolute coordinate difference.
    point_reduction: per frame, ``"sum"`` or ``"mean"`` over the region's points.
    normalise: ``"none"`` (pixels) or ``"iod"`` (divided by the reference frame's 33-263 distance, x 100).
    dims: coordinates compared (2: x, y).
    detectors: landmark sources this preset's numbers are defined for; the first is the default.
    unit, source: for reports.
    fan_flip_input, fan_box_source: how :meth:`LandmarkDistance.update_frames` runs FAN for this
        preset (see :class:`LandmarkExtractor`); None where FAN is not used.
    """

    name: str
    num_points: tuple[int, ...]
    mouth: tuple[int, ...]
    face: tuple[int, ...]
    centre: bool
    distance: Literal["l2", "mean_abs"]
    point_reduction: Literal["sum", "mean"]
    normalise: Literal["none", "iod"]
    dims: int
    detectors: tuple[str, ...]
    unit: str
    source: str
    fan_flip_input: bool | None = None
    fan_box_source: str | None = None

    def points(self, region: str) -> tuple[int, ...]:
        if region not in REGIONS:
            raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
        return self.mouth if region == "mouth" else self.face

    @property
    def required_points(self) -> tuple[int, ...]:
        """Points that must be finite on both sides for a frame to count."""
        extra = IOD_POINTS if self.normalise == "iod" else ()
        return tuple(sorted(set(self.mouth) | set(self.face) | set(extra)))

    def config(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["mouth"] = _describe(self.mouth)
        out["face"] = _describe(self.face)
        return out


PRESETS: dict[str, LMDPreset] = {
    "atvgnet": LMDPreset(
        name="atvgnet", num_points=(68,), mouth=MOUTH_68, face=FACE_68, centre=True, distance="l2",
        point_reduction="sum", normalise="none", dims=2, detectors=("fan", "dlib"), unit="px",
        source="lelechen63/ATVGnet code/evaluation_matrix.py (dlib 68; per-frame sum of L2 over centred points)",
        # FAN as face-alignment runs it by default (its own S3FD; flip_input False up to 1.4.1).
        fan_flip_input=False, fan_box_source="s3fd",
    ),
    "vico": LMDPreset(
        name="vico", num_points=(68,), mouth=MOUTH_68, face=FACE_68, centre=False, distance="mean_abs",
        point_reduction="mean", normalise="none", dims=2, detectors=("fan",), unit="px",
        source="dc3ea9f/vico_challenge_baseline evaluations/compute_lmd.py (FAN; mean |pd - gt|)",
        # The script: FaceAlignment(LandmarksType._2D, flip_input=True); fa.get_landmarks(frame)[0].
        fan_flip_input=True, fan_box_source="s3fd",
    ),
    "dense": LMDPreset(
        name="dense", num_points=(478, 468), mouth=face_mesh.LIPS, face=MESH_FACE, centre=True, distance="l2",
        point_reduction="mean", normalise="iod", dims=2, detectors=("mediapipe",), unit="% of inter-ocular distance",
        source="this toolkit: MediaPipe mesh, centred, mean per-point L2 / reference IOD (33-263)",
    ),
}


def _describe(indices: Sequence[int]) -> str | list[int]:
    """'48-67' for a contiguous run, else the list: keeps config() readable."""
    idx = list(indices)
    if idx and idx == list(range(idx[0], idx[0] + len(idx))):
        return f"{idx[0]}-{idx[-1]}"
    return idx


def get_preset(preset: str | LMDPreset) -> LMDPreset:
    if isinstance(preset, LMDPreset):
        return preset
    try:
        return PRESETS[preset]
    except (KeyError, TypeError):
        raise ValueError(f"unknown LMD preset {preset!r}; choose one of {sorted(PRESETS)}") from None


# -- the distance -------------------------------------------------------------------------------------


def _check_pair(generated: Any, reference: Any, preset: LMDPreset) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for name, value in (("generated", generated), ("reference", reference)):
        a = np.asarray(value)
        if a.dtype.kind not in "fiu":
            raise ValueError(f"{name} landmarks must be numeric, got dtype {a.dtype}")
        if a.ndim != 3:
            raise ValueError(f"{name} landmarks must be (T, P, 2|3), got shape {a.shape}")
        if a.shape[0] == 0:
            raise ValueError(f"{name} landmarks are empty (0 frames)")
        if a.shape[1] not in preset.num_points:
            need = " or ".join(map(str, preset.num_points))
            hint = (" (the 68-point presets need FAN/dlib 68-point landmarks; use preset 'dense' for MediaPipe's mesh)"
                    if a.shape[1] in (468, 478) else "")
            raise ValueError(f"preset {preset.name!r} needs {need} points, {name} has {a.shape[1]}{hint}")
        if a.shape[2] < preset.dims or a.shape[2] > 3:
            raise ValueError(f"{name} landmarks need 2 or 3 coordinates per point, got {a.shape[2]}")
        arrays.append(a[..., : preset.dims].astype(np.float64))
    gen, ref = arrays
    if gen.shape[:2] != ref.shape[:2]:
        raise ValueError(f"generated {gen.shape[:2]} and reference {ref.shape[:2]} differ in (frames, points); "
                         "trim them to the same frames")
    return gen, ref


def _prepared(gen: np.ndarray, ref: np.ndarray, preset: LMDPreset, region: str):
    """Region points (centred if the preset says so), reference IODs, and the valid-frame mask."""
    idx = list(preset.points(region))
    req = list(preset.required_points)
    valid = np.isfinite(gen[:, req]).all(axis=(1, 2)) & np.isfinite(ref[:, req]).all(axis=(1, 2))
    g, r = gen[:, idx], ref[:, idx]
    if preset.centre:
        g = g - g.mean(axis=1, keepdims=True)
        r = r - r.mean(axis=1, keepdims=True)
    iod = None
    if preset.normalise == "iod":
        iod = np.linalg.norm(ref[:, IOD_POINTS[0]] - ref[:, IOD_POINTS[1]], axis=-1)
        valid &= np.nan_to_num(iod) > 0
    return g, r, iod, valid


def _reduce(diff: np.ndarray, preset: LMDPreset) -> np.ndarray:
    """(T, P, D) differences -> (T,) per-frame distances (before normalisation)."""
    if preset.distance == "l2":
        per_point = np.sqrt((diff**2).sum(-1))
    else:
        per_point = np.abs(diff).mean(-1)
    return per_point.sum(-1) if preset.point_reduction == "sum" else per_point.mean(-1)


def frame_distances(generated: np.ndarray, reference: np.ndarray, preset: str | LMDPreset = DEFAULT_PRESET,
                    region: Region = "mouth", velocity: bool = False) -> np.ndarray:
    """Per-frame distance, (T,) (or (T-1,) for velocities), NaN where a frame is excluded.

    Units: pixels for ``atvgnet``/``vico``, % of the reference inter-ocular distance for ``dense``.
    """
    preset = get_preset(preset)
    gen, ref = _check_pair(generated, reference, preset)
    g, r, iod, valid = _prepared(gen, ref, preset, region)
    if velocity:
        g, r = np.diff(g, axis=0), np.diff(r, axis=0)
        valid = valid[1:] & valid[:-1]
        if iod is not None:
            iod = 0.5 * (iod[1:] + iod[:-1])
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = _reduce(g - r, preset)
        if iod is not None:
            dist = PERCENT * dist / iod
    return np.where(valid, dist, np.nan)


def _summary(per_frame: np.ndarray) -> tuple[float, int, int]:
    used = int(np.isfinite(per_frame).sum())
    value = float(np.nansum(per_frame) / used) if used else float("nan")
    return value, used, len(per_frame) - used


def _check_detector(preset: LMDPreset, detector: str | None) -> str:
    detector = preset.detectors[0] if detector is None else detector
    if detector not in preset.detectors:
        raise ValueError(f"preset {preset.name!r} is defined on {preset.detectors} landmarks, not {detector!r}"
                         + (": MediaPipe's mesh has no faithful 68-point mapping, extract with detector='fan'"
                            if detector == "mediapipe" else ""))
    return detector


def lmd(generated: np.ndarray, reference: np.ndarray, preset: str | LMDPreset = DEFAULT_PRESET, region: Region = "mouth",
        *, detector: str | None = None) -> dict[str, Any]:
    """LMD and LMD-v of one video pair: landmarks (T, P, 2|3), frame t of one against frame t of the other.

    Returns ``lmd`` (mean over valid frames), ``lmd_v`` (mean over valid velocity pairs), the frame
    counts used and excluded, and the preset, region, detector and unit. `detector` names where the
    landmarks came from (default: the preset's) and must be one the preset is defined for.
    """
    preset = get_preset(preset)
    detector = _check_detector(preset, detector)
    value, used, excluded = _summary(frame_distances(generated, reference, preset, region))
    value_v, used_v, excluded_v = _summary(frame_distances(generated, reference, preset, region, velocity=True))
    return {"lmd": value, "lmd_v": value_v, "frames_used": used, "frames_excluded": excluded,
            "velocity_pairs_used": used_v, "velocity_pairs_excluded": excluded_v,
            "preset": preset.name, "region": region, "detector": detector, "unit": preset.unit}


class VideoDistances:
    """One video pair's per-frame distances, its landmarks fed in consecutive chunks.

    Keeps four numbers per frame (mouth/face, position/velocity) and the last frame of each side for
    the next chunk's first velocity, so a long video costs no more memory than a short one; the
    values equal those of the whole arrays (every step is per frame or per consecutive pair).
    """

    def __init__(self, preset: str | LMDPreset = DEFAULT_PRESET) -> None:
        self.preset = get_preset(preset)
        self._parts: dict[tuple[str, bool], list[np.ndarray]] = {(r, v): [] for r in REGIONS for v in (False, True)}
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, generated: np.ndarray, reference: np.ndarray) -> None:
        """The next frames of both sides, (n, P, 2|3) each, the same n."""
        gen, ref = _check_pair(generated, reference, self.preset)
        if self._last is not None:
            with_last = (np.concatenate([self._last[0], gen]), np.concatenate([self._last[1], ref]))
        else:
            with_last = (gen, ref)
        for region in REGIONS:
            self._parts[(region, False)].append(frame_distances(gen, ref, self.preset, region))
            self._parts[(region, True)].append(frame_distances(*with_last, self.preset, region, velocity=True))
        self._last = (gen[-1:], ref[-1:])

    def per_frame(self) -> dict[tuple[str, bool], np.ndarray]:
        """{(region, velocity): per-frame distances so far} (NaN where a frame is excluded)."""
        return {key: np.concatenate(parts) if parts else np.zeros(0) for key, parts in self._parts.items()}


class LandmarkDistance(PerVideoRows):
    """Streaming M-LMD and F-LMD (and their LMD-v) over many video pairs.

    ``update(generated, reference)`` takes one video pair's landmark arrays (T, P, 2|3);
    ``update_frames(generated_frames, reference_frames)`` extracts them first with the preset's
    detector and FAN settings, or with the :class:`LandmarkExtractor` given as `detector`.
    ``compute()`` gives, per region (``mouth_``/``face_`` prefixes):

    * ``lmd``: mean over all valid frames of all videos, pooled (the reference scripts' number);
    * ``lmd_video_mean``: mean over videos of each video's frame mean (videos without a valid frame
      are left out and counted in ``videos_without_frames``);
    * the same two for ``lmd_v``;

    plus ``frames_used``/``frames_excluded``, ``velocity_pairs_used``/``_excluded`` and ``videos``.
    `truncate`: when the two sides differ in length, compare the common first frames and count the rest
    in ``frames_truncated`` (default: raise). ``per_video()``: per video pair its ``mouth_lmd``,
    ``face_lmd``, ``mouth_lmd_v``, ``face_lmd_v``, ``frames_used`` and ``frames_excluded``.
    """

    name = "lmd"
    direction = registry.entry(name).direction  # the registry is the one place for directions
    merged_attributes = ("_sums", "_video_means", "_counts", "_per_video_rows")

    def __init__(self, preset: str | LMDPreset = DEFAULT_PRESET, *, detector: str | LandmarkExtractor | None = None,
                 truncate: bool = False) -> None:
        self.preset = get_preset(preset)
        self._extractor = detector if isinstance(detector, LandmarkExtractor) else None
        name = self._extractor.detector if self._extractor is not None else detector
        self.detector = _check_detector(self.preset, name)
        self.truncate = bool(truncate)
        self._provenance: dict[str, str] = {}
        self._extractor_config: dict[str, Any] | None = None
        self.reset()

    def reset(self) -> None:
        self._sums = {(r, v): 0.0 for r in REGIONS for v in (False, True)}
        self._video_means: dict[tuple[str, bool], list[float]] = {(r, v): [] for r in REGIONS for v in (False, True)}
        self._counts = {"frames_used": 0, "frames_excluded": 0, "velocity_pairs_used": 0,
                        "velocity_pairs_excluded": 0, "frames_truncated": 0, "videos": 0, "videos_without_frames": 0}
        self._per_video_rows = []

    def update(self, generated: np.ndarray, reference: np.ndarray) -> None:
        """Add one video pair (its own per-region values: ``per_video()``)."""
        generated, reference = np.asarray(generated), np.asarray(reference)
        truncated = 0
        if self.truncate and generated.ndim >= 1 and reference.ndim >= 1 and len(generated) != len(reference):
            n = min(len(generated), len(reference))
            truncated = max(len(generated), len(reference)) - n
            generated, reference = generated[:n], reference[:n]
        video = VideoDistances(self.preset)
        video.add(generated, reference)
        self._counts["frames_truncated"] += truncated
        self.add_video(video)

    def add_video(self, video: "VideoDistances") -> None:
        """Add one video pair whose landmarks were fed chunk by chunk to `video` (its values: ``per_video()``)."""
        if video.preset != self.preset:
            raise ValueError(f"video distances use preset {video.preset.name!r}, this metric {self.preset.name!r}")
        rows = {}
        for key, per_frame in video.per_frame().items():
            rows[key] = (per_frame, *_summary(per_frame))
        # Validity does not depend on the region (all required points), so counts come from one of them.
        _, _, used, excluded = rows[("face", False)]
        _, _, used_v, excluded_v = rows[("face", True)]
        self._counts["videos"] += 1
        self._counts["frames_used"] += used
        self._counts["frames_excluded"] += excluded
        self._counts["velocity_pairs_used"] += used_v
        self._counts["velocity_pairs_excluded"] += excluded_v
        if used == 0:
            self._counts["videos_without_frames"] += 1
        out: dict[str, Any] = {"frames_used": used, "frames_excluded": excluded}
        for (region, velocity), (per_frame, value, n, _) in rows.items():
            key = f"{region}_lmd{'_v' if velocity else ''}"
            out[key] = value
            if n:
                self._sums[(region, velocity)] += float(np.nansum(per_frame))
                self._video_means[(region, velocity)].append(value)
        self._per_video_rows.append(out)

    def update_frames(self, generated_frames: Any, reference_frames: Any, fps: float = 25.0) -> None:
        """Extract landmarks of both videos (arrays, iterables of RGB uint8 frames, or paths), then update."""
        if self.detector == "dlib":
            raise ValueError("dlib is not available to extract landmarks; pass dlib landmark arrays to update()")
        if self._extractor is None and self.detector == "fan":
            # Stateless per frame: load the weights once and keep the extractor.
            self._extractor = LandmarkExtractor("fan", box_source=self.preset.fan_box_source or DEFAULT_BOX_SOURCE,
                                                flip_input=bool(self.preset.fan_flip_input))
        sides = []
        for frames in (generated_frames, reference_frames):
            # MediaPipe's tracker carries state from frame to frame: a fresh one per video.
            own = self._extractor is None
            extractor = LandmarkExtractor(self.detector) if own else self._extractor
            try:
                sides.append(extractor(frames, fps=fps))
                self._provenance.update(extractor.weights_provenance())
                self._extractor_config = extractor.config()
            finally:
                if own:
                    extractor.close()
        self.update(*sides)

    def compute(self) -> dict[str, Any]:
        c = self._counts
        out: dict[str, Any] = {}
        for region in REGIONS:
            for velocity in (False, True):
                key = f"{region}_lmd{'_v' if velocity else ''}"
                n = c["velocity_pairs_used"] if velocity else c["frames_used"]
                out[key] = self._sums[(region, velocity)] / n if n else float("nan")
                means = self._video_means[(region, velocity)]
                out[f"{key}_video_mean"] = float(np.mean(means)) if means else float("nan")
        out.update(c)
        out["unit"] = self.preset.unit
        return out

    def config(self) -> dict[str, Any]:
        out = {"metric": "lmd", **self.preset.config(), "detector": self.detector, "truncate": self.truncate,
               "pooling": "lmd: mean over all valid frames of all videos; lmd_video_mean: mean of per-video means"}
        if self._extractor_config is not None:
            out["extractor"] = self._extractor_config
        return out

    def weights_provenance(self) -> dict[str, str]:
        """sha256 of the landmark weights used by update_frames (empty for MediaPipe or array input)."""
        return dict(self._provenance)


class LMDVideos(Metric):
    """M-LMD / F-LMD and their LMD-v for the runner. The dense preset uses the runner's MediaPipe meshes;
    the 68-point presets (atvgnet, vico) run FAN on the paired frames (the generated ones resized to the
    reference size, so both are in the same pixel units)."""

    name, direction = LandmarkDistance.name, LandmarkDistance.direction
    consumes = frozenset({LANDMARKS})
    ROW_KEYS = ("mouth_lmd", "face_lmd", "mouth_lmd_v", "face_lmd_v")
    # Bootstrap (metrics.base): the *_video_mean numbers are means of the per-video values; the pooled ones
    # (mean over all valid frames) are recomputed by resample() from each video's sum and valid frames.
    video_means = {f"{key}_video_mean": key for key in ROW_KEYS}
    merged_attributes = ("metric", "_pooled")  # state(): LandmarkDistance's, and each video's pooled sums

    def __init__(self, device: str = "cpu", preset: str = DEFAULT_PRESET) -> None:
        preset_ = get_preset(preset)
        self._extractor: LandmarkExtractor | None = None
        if preset_.detectors[0] != "mediapipe":
            self.consumes = frozenset({PAIRED_FRAMES})
            self._extractor = LandmarkExtractor("fan", device=device,
                                                box_source=preset_.fan_box_source or DEFAULT_BOX_SOURCE,
                                                flip_input=bool(preset_.fan_flip_input))
        self.metric = LandmarkDistance(preset_, detector=self._extractor or preset_.detectors[0], truncate=True)
        self._video: VideoDistances | None = None
        self._pooled: list[np.ndarray] = []  # per committed video: (sum, valid frames) of each ROW_KEYS value

    def start_video(self, video: VideoInfo) -> None:
        self._video = VideoDistances(self.metric.preset)

    def update(self, chunk: Chunk) -> None:
        assert self._video is not None
        if self._extractor is not None:
            self._video.add(self._extractor(chunk.fitted), self._extractor(chunk.reference))
        else:
            self._video.add(chunk.generated_meshes, chunk.reference_meshes)

    def end_video(self) -> dict[str, Any]:
        assert self._video is not None
        per_frame = self._video.per_frame()
        self.metric.add_video(self._video)
        row = self.metric.per_video(-1)[0]
        self._video = None
        parts = []
        for key in self.ROW_KEYS:  # as LandmarkDistance pools: valid frames counted on the face region
            region, velocity = key.split("_")[0], key.endswith("_v")
            values, used = per_frame[(region, velocity)], int(np.isfinite(per_frame[("face", velocity)]).sum())
            parts.append((float(np.nansum(values)) if np.isfinite(values).any() else 0.0, used))
        self._pooled.append(np.asarray(parts, dtype=np.float64))
        return {k: row[k] for k in self.ROW_KEYS}

    def resample(self, indices: np.ndarray) -> dict[str, float]:
        """The pooled M-LMD, F-LMD and their LMD-v over the valid frames of the videos at `indices`."""
        if not self._pooled:
            return {}
        drawn = np.stack(self._pooled)[np.asarray(indices, dtype=np.int64)].sum(axis=0)  # (keys, (sum, used))
        return {key: float(total / used) if used else float("nan") for key, (total, used) in zip(self.ROW_KEYS, drawn)}

    def discard_video(self) -> None:
        self._video = None

    def compute(self) -> dict[str, Any]:
        return self.metric.compute()

    def config(self) -> dict[str, Any]:
        if self._extractor is None:
            return self.metric.config()
        return {**self.metric.config(), "extractor": self._extractor.config(),
                "frames": "generated frames resized to the reference size first"}

    def weights_provenance(self) -> dict[str, Any]:
        return self._extractor.weights_provenance() if self._extractor is not None else {}

    def reset(self) -> None:
        self.metric.reset()
        self._video = None
        self._pooled = []
