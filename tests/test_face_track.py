"""Face detection (toolkit.face_detector), tracking and smoothed crop boxes (preprocessing.face_track) and cropping
(toolkit.face_box) on the sample."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talking_head.preprocessing import face_track as ft
from talking_head.toolkit import face_box as fb, face_detector as fd
from talking_head.toolkit import face_mesh, media

SIZE = 512


@pytest.fixture(scope="module")
def sample(shared_sample):
    """Two speakers, one 4 s clip each: frames, ground truth and the detections of every frame."""
    clips = []
    with fd.FaceDetector() as detector:
        for clip in shared_sample(speakers=2, clips=1, seconds=4, seed=0):  # tests/conftest.py
            frames = media.read_video(clip.video)
            detections = [detector.detect(f) for f in frames]
            clips.append({"frames": frames, "truth": clip.load_ground_truth(), "detections": detections})
    return clips


@pytest.fixture(scope="module")
def detector():
    with fd.FaceDetector() as d:
        yield d


def _main_boxes(detections, num_frames):
    main, record = ft.select_main_track(ft.track_faces(detections), num_frames)
    return main, record, ft.smooth_square_boxes(main, num_frames)


def _track(frames, boxes):
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return ft.Track(
        frames=np.asarray(frames), boxes=boxes, scores=np.ones(len(boxes)), keypoints=np.zeros((len(boxes), 6, 2))
    )


# ----------------------------------------------------------------------------- on the sample


def test_detects_the_face_in_every_frame(sample):
    for clip in sample:
        landmarks = clip["truth"]["landmarks"]
        # The face is the best detection in every frame; BlazeFace may add a rare weak false positive
        # (a 0.5-score hit on the space suit in one frame of the seed-0 sample), which tracking discards.
        assert all(len(d) >= 1 for d in clip["detections"])
        assert all(x.score < 0.7 for d in clip["detections"] for x in d[1:])
        for det, lm in zip(clip["detections"], landmarks):
            d = det[0]
            side = d.box[2] - d.box[0]
            centre = lm[:, :2].mean(0)
            assert d.box[0] < centre[0] < d.box[2] and d.box[1] < centre[1] < d.box[3]
            assert d.score > 0.7 and d.keypoints.shape == (6, 2)
            # BlazeFace's nose tip is the mesh's nose tip, to within a tenth of the box.
            assert np.linalg.norm(d.keypoints[fd.NOSE_TIP] - lm[face_mesh.NOSE_TIP, :2]) < 0.1 * side


def test_single_face_record_and_quality(sample):
    for clip in sample:
        n, height = len(clip["frames"]), clip["frames"].shape[1]
        main, record, _ = _main_boxes(clip["detections"], n)
        chosen = record["tracks"][record["chosen"]]
        assert chosen["coverage"] == 1.0 and chosen["mouth_activity"] > ft.ACTIVITY_FLOOR
        others = [t for k, t in enumerate(record["tracks"]) if k != record["chosen"]]
        assert all(t["coverage"] < 0.05 for t in others)  # at most a stray false positive
        if not others:
            assert record["reason"] == "only one face track"
        assert ft.face_fraction(main, n) == 1.0 and len(ft.missing_frames(main, n)) == 0
        assert 0.3 < ft.mean_face_size(main, height) < 0.6  # the sample's face is ~0.4-0.5 of the frame


def test_crop_contains_all_landmarks_with_margin(sample):
    for clip in sample:
        frames, landmarks = clip["frames"], clip["truth"]["landmarks"]
        _, _, boxes = _main_boxes(clip["detections"], len(frames))
        assert boxes.shape == (len(frames), 4)
        assert np.allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])  # square
        assert np.array_equal(boxes, np.round(boxes))  # whole pixels: exactly the crop made
        in_crop = np.stack([fb.frame_to_crop(lm, box, SIZE) for lm, box in zip(landmarks, boxes)])
        margin = 0.15 * SIZE  # the face sits well inside: room for hair above, shoulders below
        assert in_crop[..., :2].min() > margin and in_crop[..., :2].max() < SIZE - margin
        crops = fb.crop_frames(frames[:8], boxes[:8], SIZE)
        assert crops.shape == (8, SIZE, SIZE, 3) and crops.dtype == np.uint8


def test_crop_jitter_is_low(sample):
    for clip in sample:
        n = len(clip["frames"])
        main, _, boxes = _main_boxes(clip["detections"], n)
        side = boxes[:, 2] - boxes[:, 0]
        centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
        step = np.linalg.norm(np.diff(centre, axis=0), axis=1) / side[1:]
        raw = 0.5 * (main.boxes[:, :2] + main.boxes[:, 2:])
        raw_step = np.linalg.norm(np.diff(raw, axis=0), axis=1) / (main.boxes[1:, 2] - main.boxes[1:, 0])
        assert step.max() < 0.01  # < 5 px per frame at 512
        assert step.mean() < 0.5 * raw_step.mean()  # much steadier than the raw detections
        assert np.abs(np.diff(side)).max() / side.mean() < 0.01  # no zooming with the mouth
        assert (side.max() - side.min()) / side.mean() < 0.06  # the true head size varies by ~1%


def test_keeps_the_talking_face_of_two(sample, detector):
    frames = sample[0]["frames"][:60]
    still = frames[0]
    talking = np.full_like(still, 127)
    for order in ("still left", "still right"):
        sequence = []
        for frame in frames:
            # The talker is smaller than the still copy, so only mouth motion can make it win.
            talking[:] = 127
            small = cv2.resize(frame, (440, 440), interpolation=cv2.INTER_AREA)
            talking[36:476, 36:476] = small
            pair = [still, talking] if order == "still left" else [talking, still]
            sequence.append(np.concatenate(pair, axis=1))
        tracks = ft.track_faces(detector.detect(f) for f in sequence)
        main, record = ft.select_main_track(tracks, len(sequence))
        assert record["num_tracks"] == 2, record
        assert "mouth motion" in record["reason"]
        centre_x = 0.5 * (main.boxes[:, 0] + main.boxes[:, 2]).mean()
        assert (centre_x > SIZE) == (order == "still left"), record


def test_face_lost_for_part_of_the_clip(sample, detector):
    frames = sample[0]["frames"].copy()
    n = len(frames)
    lost = np.r_[0:6, 40:55]  # at the start (held) and in the middle (interpolated)
    frames[lost] = 127
    detections = [detector.detect(f) for f in frames]
    tracks = ft.track_faces(detections)
    assert len(tracks) == 1  # the 15-frame gap is within max_gap: one track
    main, record = ft.select_main_track(tracks, n)
    assert np.array_equal(ft.missing_frames(main, n), lost)
    assert ft.face_fraction(main, n) == pytest.approx(1 - len(lost) / n)
    boxes = ft.smooth_square_boxes(main, n)
    assert np.isfinite(boxes).all()
    reference = _main_boxes(sample[0]["detections"], n)[2]  # the same clip with nothing blanked
    side = reference[:, 2] - reference[:, 0]
    centre, reference_centre = 0.5 * (boxes[:, :2] + boxes[:, 2:]), 0.5 * (reference[:, :2] + reference[:, 2:])
    error = np.linalg.norm(centre - reference_centre, axis=1) / side
    assert error.max() < 0.05  # the sample's head moves slowly: filling in is accurate
    assert np.abs(boxes[:, 2] - boxes[:, 0] - side).max() / side.mean() < 0.05
    assert np.allclose(boxes[:3], boxes[0])  # held before the first detection


def test_interpolates_between_detections_and_holds_at_the_ends():
    a, b = [100, 100, 200, 200], [200, 150, 300, 250]  # centre moves (150,150) -> (250,200), side 100
    boxes = ft.smooth_square_boxes(_track([3, 23], [a, b]), 30, scale=2.0, median_window=1, size_window=1)
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])
    t = np.arange(30)
    expected = np.stack([np.interp(t, [3, 23], [150, 250]), np.interp(t, [3, 23], [150, 200])], axis=1)
    inner = slice(6, 21)  # away from the corners the short moving average leaves straight lines alone
    assert np.abs(centre[inner] - expected[inner]).max() <= 1.0
    assert np.abs(centre[:2] - [150, 150]).max() <= 1.0 and np.abs(centre[-2:] - [250, 200]).max() <= 1.0
    assert np.all(boxes[:, 2] - boxes[:, 0] == 200)
    assert ft.missing_frames(_track([3, 23], [a, b]), 30).tolist() == [k for k in range(30) if k not in (3, 23)]


def test_no_face_raises(detector):
    rng = np.random.default_rng(0)
    frames = rng.integers(100, 140, size=(5, 240, 320, 3), dtype=np.uint8)
    detections = [detector.detect(f) for f in frames]
    assert detections == [[]] * 5
    with pytest.raises(fd.NoFaceError, match="any of the 5 frames") as info:
        ft.select_main_track(ft.track_faces(detections), len(frames))
    assert info.value.num_frames == 5


def test_one_frame_video(sample, detector):
    frame = sample[1]["frames"][:1]
    main, record, boxes = _main_boxes([detector.detect(frame[0])], 1)
    assert record["num_tracks"] == 1 and boxes.shape == (1, 4)
    assert fb.crop_frames(frame, boxes, 256).shape == (1, 256, 256, 3)


def test_odd_resolution_and_boxes_leaving_the_frame(sample, detector):
    # 513x287, the face near the right edge so that its crop box leaves the frame.
    frame = np.full((287, 513, 3), 90, np.uint8)
    face = cv2.resize(sample[0]["frames"][0], (287, 287), interpolation=cv2.INTER_AREA)
    frame[:, 513 - 287 + 60 :] = face[:, : 287 - 60]
    frames = np.stack([frame] * 3)
    main, _, boxes = _main_boxes([detector.detect(f) for f in frames], 3)
    assert boxes[0, 2] > 513 and boxes[0, 1] < 0  # leaves the frame on the right and at the top
    for size in (512, 256, 64):
        crops = fb.crop_frames(frames, boxes, size)
        assert crops.shape == (3, size, size, 3)
    # Boxes entirely outside, or partly: replicated borders, right shapes.
    weird = np.array([[-300.0, -40.0, -100.0, 160.0], [600.4, 300.2, 900.9, 601.1], [-50.5, -60.2, 700.7, 500.0]])
    crops = fb.crop_frames(frames, weird, 100)
    assert crops.shape == (3, 100, 100, 3)
    assert np.all(crops[0] == 90)  # left of the frame: copies of column 0, the background


def test_crop_pixels_follow_box_transform():
    """A dot lands in the crop exactly where box_transform maps it (enlarging and both shrink modes)."""
    dot = np.array([230.5, 140.5])  # centre of pixel (230, 140) in corner-origin coordinates
    ys, xs = np.mgrid[:300, :401]
    blob = 255 * np.exp(-((xs - 230) ** 2 + (ys - 140) ** 2) / (2 * 3.0**2))
    frame = np.repeat(np.round(blob).astype(np.uint8)[:, :, None], 3, axis=2)
    for box in ([180, 90, 290, 200], [150.3, 60.2, 330.8, 240.7], [-100, -150, 500, 450], [100, 40, 340, 280]):
        crop = fb.crop_frames(frame[None], np.array([box], float), 128)[0, :, :, 0].astype(np.float64)
        ys, xs = np.mgrid[: crop.shape[0], : crop.shape[1]]
        found = np.array([(crop * (xs + 0.5)).sum(), (crop * (ys + 0.5)).sum()]) / crop.sum()
        expected = fb.frame_to_crop(dot, box, 128)
        assert np.abs(found - expected).max() < 0.35, (box, found, expected)


def test_landmarks_round_trip_frame_crop_frame(sample):
    landmarks = sample[0]["truth"]["landmarks"][0]  # (478, 3) frame pixels
    for box in ([120, 80, 400, 360], [-60.7, -71.2, 570.3, 559.8], [10.2, 20.4, 300.9, 200.1]):
        for size in (256, 512):
            in_crop = fb.frame_to_crop(landmarks, box, size)
            assert np.allclose(fb.crop_to_frame(in_crop, box, size), landmarks, atol=1e-4)
            m = fb.box_transform(box, size)
            assert m.shape == (2, 3)
            assert np.allclose(in_crop[:, :2], landmarks[:, :2] @ m[:, :2].T + m[:, 2])
            assert np.allclose(in_crop[:, 2], landmarks[:, 2] * m[0, 0])  # z follows the x scale
    square = fb.box_transform([100, 50, 300, 250], 512)
    assert np.allclose(square, [[2.56, 0, -256], [0, 2.56, -128]])


# ----------------------------------------------------------------------------- detector and tracker


def test_detector_switches_models_for_small_and_large_faces(sample):
    face = sample[0]["frames"][0]
    wide = np.full((720, 1280, 3), 100, np.uint8)
    wide[300:600, 700:1000] = cv2.resize(face, (300, 300), interpolation=cv2.INTER_AREA)  # face ~0.09 of 1280
    with fd.FaceDetector() as detector:
        assert len(detector.detect(face)) == 1 and detector.current == "short"
        found = detector.detect(wide)
        assert len(found) == 1 and found[0].model == "full" and detector.current == "full"
        assert 700 < found[0].box[0] < found[0].box[2] < 1000
        assert len(detector.detect(wide)) == 1 and detector.current == "full"
        # Back to the fast model on the same frame, so a clip's first box matches the rest of it.
        found = detector.detect(face)
        assert len(found) == 1 and found[0].model == "short" and detector.current == "short"
        detector.detect(wide)
        assert detector.current == "full"
        detector.reset()  # between clips: the next clip must not inherit the model the last one ended on
        assert detector.current == "short"
    with pytest.raises(ValueError):
        fd.FaceDetector(model="medium")


def test_tracker_gaps_and_several_faces():
    def det(x0, y0, side=50.0):
        return fd.Detection(np.array([x0, y0, x0 + side, y0 + side]), 0.9, np.zeros((6, 2)), "short")

    frames = []
    for t in range(40):
        faces = [det(10 + t, 10)]  # moves 1 px per frame
        if t < 5 or t >= 8:  # face B misses 3 frames: same track
            faces.append(det(200, 200))
        if t < 10 or t >= 10 + 6:  # face C misses 6 frames > max_gap 4: a new track
            faces.append(det(400, 20))
        frames.append(faces)
    tracks = ft.track_faces(frames, max_gap=4)
    assert [len(t) for t in tracks] == [40, 37, 10, 24]
    assert tracks[1].frames.tolist() == [0, 1, 2, 3, 4] + list(range(8, 40))
    main, record = ft.select_main_track(tracks, 40)
    assert record["num_tracks"] == 4 and main is tracks[0]  # equal boxes, no mouth motion: full coverage wins
    with pytest.raises(ValueError):
        ft.smooth_square_boxes(tracks[0], 40, median_window=4)


# ----------------------------------------------------------------------------- detection on some frames


def _sparse(detections, every):
    """sparse_detections over a clip whose per-frame detections are known: each 'frame' is its index."""
    table = list(detections)
    calls = []

    def detect(frame):
        calls.append(int(frame[0]))
        return table[int(frame[0])]

    chunks = np.array_split(np.arange(len(table)).reshape(-1, 1), max(1, len(table) // 32))
    return ft.sparse_detections(detect, chunks, len(table), every), calls


def test_sparse_detection_of_a_steady_face_matches_every_frame(sample):
    for clip in sample:
        n = len(clip["frames"])
        found, calls = _sparse(clip["detections"], 5)
        assert calls == [t for t in range(n) if t % 5 == 0 or t == n - 1]  # one face, steady: anchors only
        weights = ft.frame_weights(found)
        assert weights.sum() == pytest.approx(n) and weights[1] == 0 and weights[5] == 5
        main, record = ft.select_main_track(ft.track_faces(found), n, weights)
        assert record["tracks"][record["chosen"]]["coverage"] == pytest.approx(1.0)
        boxes = ft.smooth_square_boxes(main, n)
        dense = _main_boxes(clip["detections"], n)[2]
        side = dense[:, 2] - dense[:, 0]
        assert np.abs(boxes - dense).max(axis=1).max() / side.mean() < 0.02  # < 10 px at 512
        dense_all, calls = _sparse(clip["detections"], 1)
        assert calls == list(range(n)) and dense_all == clip["detections"]


def test_sparse_detection_finds_where_a_face_comes_and_goes(sample):
    frames = sample[0]["frames"].copy()
    n, lost = len(frames), np.r_[0:6, 40:55]
    frames[lost] = 127
    with fd.FaceDetector() as detector:
        every_frame = [detector.detect(f) for f in frames]
    found, calls = _sparse(every_frame, 5)
    assert len(calls) < 0.6 * n
    examined = {t for t, d in enumerate(found) if d is not None}
    for edge in (5, 6, 39, 40, 54, 55):  # each side of each change is examined
        assert edge in examined, edge
    main, _ = ft.select_main_track(ft.track_faces(found), n, ft.frame_weights(found))
    assert not set(lost) & set(main.frames.tolist())
    boxes, dense = ft.smooth_square_boxes(main, n), _main_boxes(every_frame, n)[2]
    assert np.abs(boxes - dense).max() / (dense[:, 2] - dense[:, 0]).mean() < 0.03


def test_sparse_detection_examines_jumps_and_newcomers():
    def det(x0, side=100.0, model="short"):
        return fd.Detection(np.array([x0, 50, x0 + side, 50 + side]), 0.9, np.zeros((6, 2)), model)

    clip = [[det(100 + t)] for t in range(30)]  # slow motion: anchors only
    clip[12:] = [[det(400)] for _ in range(18)]  # a cut at 12: the face jumps
    clip[23:] = [[det(400), det(700, 40)] for _ in range(7)]  # a second, small face from 23
    found, calls = _sparse(clip, 5)
    assert calls == [0, 5, 10, 15, 11, 12, 13, 14, 20, 25, 21, 22, 23, 24, 29]
    tracks = ft.track_faces(found)
    assert [t.frames.tolist()[:2] for t in tracks] == [[0, 5], [12, 13], [23, 24]]
    assert ft.candidates(tracks, 30, ft.frame_weights(found)).tolist() == [True, True, False]
    switched = [[det(100)] for _ in range(12)] + [[det(101, model="full")] for _ in range(8)]
    assert _sparse(switched, 5)[1] == [0, 5, 10, 15, 11, 12, 13, 14, 19]  # another model: not interpolated
    with pytest.raises(ValueError):
        ft.sparse_detections(lambda f: [], [np.zeros((3, 1))], 3, 0)
