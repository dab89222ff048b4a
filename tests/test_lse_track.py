"""The LSE face-track pipeline (metrics/s3fd.py, metrics/lse_track.py) against syncnet-python 0.2.3.

Pretrained S3FD weights cannot be downloaded here, so the tests write a random state dict with the real
key names (from syncnet-python's own ``S3FDNet``) and load the same file on both sides. Random weights
find no faces, so the detector is compared on raw outputs and post-processing (with the class head
scaled up so that many boxes pass the 0.9 threshold), and tracking / smoothing / cropping are compared
with the reference's functions fed the same detections (boxes around the sample's ground-truth face
landmarks).
"""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
import torch

from talking_head.metrics import face_tracks, scene_cuts
from talking_head.metrics import lse_track as lt
from talking_head.metrics import s3fd
from talking_head.toolkit import media
from talking_head.toolkit import weights as w
from talking_head.toolkit.sample import generate

from syncnet_python import syncnet_pipeline as sp  # the reference, a dependency of the project
from syncnet_python.detectors.s3fd import S3FD as RefS3FD
from syncnet_python.detectors.s3fd.nets import S3FDNet as RefS3FDNet

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Two 2.4 s speakers, and a two-shot video made of both (hard cut at frame 60)."""
    root = tmp_path_factory.mktemp("lse_track")
    clips = generate(root / "sample", speakers=2, clips=1, seconds=2.4, seed=0, show_progress=False)
    frames = [media.read_video(c.video, 25) for c in clips]
    audio = np.concatenate([media.read_audio(c.video) for c in clips])
    two_shot = root / "two_shot.mp4"
    media.write_video(two_shot, np.concatenate(frames), fps=25, audio=audio, sample_rate=16000)
    landmarks = [c.load_ground_truth()["landmarks"] for c in clips]
    return {"root": root, "clips": clips, "frames": frames, "landmarks": landmarks, "two_shot": two_shot,
            "two_shot_frames": media.read_video(two_shot, 25)}


def _boxes(landmarks: np.ndarray) -> np.ndarray:
    """Tight face boxes (x0, y0, x1, y1) around the mesh, a stand-in for S3FD's."""
    return np.stack([landmarks[..., 0].min(1), landmarks[..., 1].min(1),
                     landmarks[..., 0].max(1), landmarks[..., 1].max(1)], 1).astype(np.float64)


def _multi_face_detections(boxes: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Jittered boxes with missed frames, and every 5th frame a second, small face listed first.

    The stray face first makes the two tracking variants differ: upstream looks past it to the tracked
    face, the wheel gives up on the frame.
    """
    rng = np.random.default_rng(seed)
    dets = []
    for i, b in enumerate(boxes):
        if i % 7 == 3:
            dets.append(np.empty((0, 5)))
            continue
        faces = [np.r_[b + rng.normal(0, 2, 4), 0.99]]
        if i % 5 == 0 and i % 60:  # a small face somewhere else, listed first (not in a scene's first frame)
            x, y = rng.uniform(0, 400), rng.uniform(420, 470)
            faces.insert(0, np.r_[x, y, x + 40, y + 40, 0.95])
        dets.append(np.array(faces))
    return dets


def _as_reference(dets: list[np.ndarray]) -> list[list[dict]]:
    return [[{"frame": i, "bbox": d[:-1].tolist(), "conf": float(d[-1])} for d in fd] for i, fd in enumerate(dets)]


def _wheel(**cfg) -> "sp.SyncNetPipeline":
    """syncnet-python's pipeline object without loading its weights (its methods are what we compare to)."""
    pipe = sp.SyncNetPipeline.__new__(sp.SyncNetPipeline)
    pipe.cfg = sp.PipelineConfig(ffmpeg_bin=FFMPEG, **cfg)
    pipe.device = "cpu"
    return pipe


def _place_s3fd(monkeypatch, saturate: bool) -> tuple[Path, dict]:
    """A random sfd_face.pth with the real keys at the registry's place (unpinned); same file for both sides."""
    entry = dataclasses.replace(w.REGISTRY[s3fd.WEIGHTS], sha256=None, size=None)
    monkeypatch.setitem(w.REGISTRY, s3fd.WEIGHTS, entry)
    torch.manual_seed(0)
    state = RefS3FDNet(device="cpu").state_dict()
    if saturate:  # confident softmax, sane box sizes: many detections above 0.9 to post-process
        state = {k: v * 30 if k.startswith("conf.") else v * 0.2 if k.startswith("loc.") else v
                 for k, v in state.items()}
    target = w.destination(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return target, state


# ----------------------------------------------------------------------------- S3FD
def test_s3fd_loads_the_reference_state_dict(isolated_caches, monkeypatch) -> None:
    path, state = _place_s3fd(monkeypatch, saturate=False)
    mine = s3fd.S3FDNet().state_dict()
    assert {k: tuple(v.shape) for k, v in mine.items()} == {k: tuple(v.shape) for k, v in state.items()}
    detector = s3fd.S3FD.from_registry()
    assert all(torch.equal(detector.net.state_dict()[k], v) for k, v in state.items())
    assert detector.weights_provenance() == {"syncnet-s3fd": w.file_sha256(path)}
    assert detector.config()["final_nms_threshold"] == 0.1 and detector.config()["detect_top_k"] == 750

    torch.save({k: v for k, v in state.items() if not k.startswith("conf.")}, path)  # keys missing
    with pytest.raises(w.WeightsCorruptError, match="not an S3FD state dict"):
        s3fd.S3FD.from_registry()


@pytest.mark.slow  # ~20 CPU s: both S3FD detectors on every frame
def test_s3fd_matches_syncnet_python_detector(isolated_caches, monkeypatch, sample) -> None:
    path, _ = _place_s3fd(monkeypatch, saturate=True)
    reference = _wheel()._load_s3fd(str(path))  # the wheel's own loader and S3FD class on the same file
    assert isinstance(reference, RefS3FD)
    frames = np.stack([cv2.resize(f, (192, 160), interpolation=cv2.INTER_AREA)  # small: the reference is slow
                       for f in (sample["frames"][0][0], sample["frames"][0][30], sample["frames"][1][10])])
    mine = s3fd.S3FD.from_registry(batch_size=1)

    # Raw network + Detect layer output, bit for bit (the reference feeds RGB minus (123, 117, 104)).
    raw = mine.raw_detections(frames, 0.25)
    for n, frame in enumerate(frames):
        small = cv2.resize(frame, dsize=(0, 0), fx=0.25, fy=0.25, interpolation=cv2.INTER_LINEAR)
        x = small.transpose(2, 0, 1).astype(np.float32) - np.array([123.0, 117.0, 104.0], np.float32)[:, None, None]
        with torch.no_grad():
            expected = reference.net(torch.from_numpy(np.ascontiguousarray(x))[None])
        assert torch.equal(raw[n], expected[0])
    assert int((raw[:, 1, :, 0] > 0.9).sum()) > 50  # the post-processing below has work to do

    # Thresholding, scaling to pixels and the final NMS 0.1, at one and at two scales.
    for scales in ([0.25], [0.25, 0.5]):
        got = mine.detect_faces(frames, conf_th=0.9, scales=scales)
        for n, frame in enumerate(frames):
            expected = reference.detect_faces(frame, conf_th=0.9, scales=scales)
            assert got[n].dtype == np.float64 and np.array_equal(got[n], expected)
            assert len(expected) > 5

    # Several frames per forward: same detections (oneDNN may round the last bit differently per batch size).
    batched = s3fd.S3FD(mine.net, batch_size=3).detect_faces(frames)
    single = mine.detect_faces(frames)
    for a, b in zip(batched, single):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-3)


def test_s3fd_post_processing_pieces() -> None:
    # nms_boxes is py_cpu_nms: overlap > threshold suppresses, best score first.
    dets = np.array([[0, 0, 10, 10, 0.5], [1, 1, 11, 11, 0.9], [20, 20, 30, 30, 0.8], [0, 0, 10, 10.5, 0.95]])
    from syncnet_python.detectors.s3fd.box_utils import nms_, PriorBox

    assert np.array_equal(s3fd.nms_boxes(dets, 0.1), nms_(dets, 0.1))
    assert s3fd.nms_boxes(dets, 0.1).tolist() == [3, 2]
    # Prior boxes equal the reference's PriorBox for an odd input size (ceil-mode pooling).
    maps = [[35, 45], [18, 23], [9, 12], [5, 6], [3, 3], [2, 2]]
    assert torch.equal(s3fd.prior_boxes((140, 180), maps), PriorBox((140, 180), maps).forward())


# ----------------------------------------------------------------------------- scene detection
def test_scene_detection_matches_pyscenedetect(tmp_path, sample) -> None:
    from scenedetect import ContentDetector, SceneManager, StatsManager
    from scenedetect.video_manager import VideoManager

    for frames, expected in ((sample["frames"][0], [(0, 60)]), (sample["two_shot_frames"], [(0, 60), (60, 120)])):
        ours = scene_cuts.SceneDetector()
        ours.update(frames)
        assert ours.scenes() == expected
        # PySceneDetect's detector on the same frames, downscaled as its SceneManager does (512 -> 256).
        detector, cuts = ContentDetector(), []
        for i, frame in enumerate(frames):
            small = cv2.resize(np.ascontiguousarray(frame[..., ::-1]), scene_cuts.downscale_size(512, 512),
                               interpolation=cv2.INTER_LINEAR)
            cuts += detector.process_frame(i, small)
            assert detector._frame_score == ours.scores[i]
        assert cuts == [start for start, _ in expected[1:]]

    # The reference's own call sequence on the reference's AVI (run_pipeline.scene_detect / the wheel).
    avi = tmp_path / "video.avi"
    lt._ffmpeg("-i", str(sample["two_shot"]), "-qscale:v", "2", "-async", "1", "-r", "25", str(avi))
    video = VideoManager([str(avi)])
    manager = SceneManager(StatsManager())
    manager.add_detector(ContentDetector())
    video.set_downscale_factor()
    video.start()
    manager.detect_scenes(frame_source=video)
    reference = [(a.frame_num, b.frame_num) for a, b in manager.get_scene_list()]
    capture, ours = cv2.VideoCapture(str(avi)), scene_cuts.SceneDetector()
    while True:
        ok, image = capture.read()
        if not ok:
            break
        ours.update(image[None], "BGR")
    assert reference == ours.scenes() == [(0, 60), (60, 120)]
    stats = manager.stats_manager
    assert [stats.get_metrics(i, ["content_val"])[0] for i in range(1, 120)] == ours.scores[1:]


# ----------------------------------------------------------------------------- tracking
def _upstream_track_shot(scenefaces, min_track, num_failed_det=25, min_face_size=100):
    """Oracle: joonson/syncnet_python run_pipeline.py track_shot, restated (same list semantics)."""
    from scipy.interpolate import interp1d

    tracks = []
    while True:
        track = []
        for framefaces in scenefaces:
            for face in framefaces:  # removing from the list being iterated, as the original does
                if not track:
                    track.append(face)
                    framefaces.remove(face)
                elif face["frame"] - track[-1]["frame"] <= num_failed_det:
                    a, b = face["bbox"], track[-1]["bbox"]
                    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
                    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
                    if inter / float(union) > 0.5:
                        track.append(face)
                        framefaces.remove(face)
                        continue
                else:
                    break
        if not track:
            return tracks
        if len(track) > min_track:
            frame_numbers = np.array([f["frame"] for f in track])
            boxes = np.array([np.array(f["bbox"]) for f in track])
            frames = np.arange(frame_numbers[0], frame_numbers[-1] + 1)
            boxes_i = np.stack([interp1d(frame_numbers, boxes[:, c])(frames) for c in range(4)], 1)
            if max(np.mean(boxes_i[:, 2] - boxes_i[:, 0]), np.mean(boxes_i[:, 3] - boxes_i[:, 1])) > min_face_size:
                tracks.append({"frame": frames, "bbox": boxes_i})


def test_tracking_matches_both_references(sample) -> None:
    frames = sample["two_shot_frames"]
    dets = _multi_face_detections(_boxes(np.concatenate(sample["landmarks"])))
    scenes = [(0, 60), (60, 120)]
    results = {}
    for variant, track_fn in (("syncnet-python", lambda d: _wheel(min_track=30)._track(d)),
                              ("upstream", lambda d: _upstream_track_shot(d, 30))):
        reference = []
        for start, end in scenes:
            reference += track_fn([list(fd) for fd in _as_reference(dets)[start:end]])
        result = lt.track_faces(frames, variant=variant, min_track=30, detections=dets)
        assert result.scenes == scenes and len(result.tracks) == len(reference) == 2
        for ref, ours in zip(reference, result.tracks):
            assert np.array_equal(ref["frame"], ours.frames) and np.array_equal(ref["bbox"], ours.boxes)
        assert any("not longer than min_track=30" in r.reason for r in result.rejected)  # the far faces
        assert result.config["variant"] == variant
        results[variant] = result
    # The variants really differ here: the wheel loses the near face in frames where a far one came first.
    assert results["upstream"].tracks[0].detected.sum() > results["syncnet-python"].tracks[0].detected.sum()


def test_crops_and_audio_match_the_wheel(tmp_path, sample, monkeypatch) -> None:
    frames = sample["two_shot_frames"]
    dets = _multi_face_detections(_boxes(np.concatenate(sample["landmarks"])), seed=1)
    audio = media.read_audio(sample["two_shot"], dtype="int16")
    media.write_wav(tmp_path / "audio.wav", audio, sample_rate=16000)
    # Lossless frames for the reference to cv2.imread (PNG content under the .jpg names it globs).
    paths = []
    for i, frame in enumerate(frames):
        ok, png = cv2.imencode(".png", np.ascontiguousarray(frame[..., ::-1]))
        paths.append(tmp_path / f"{i + 1:06d}.jpg")
        paths[-1].write_bytes(png.tobytes())
    written: list[np.ndarray] = []
    real_writer = cv2.VideoWriter

    class RecordingWriter:  # records what the reference writes, and still writes it
        def __init__(self, *args):
            self._writer = real_writer(*args)

        def write(self, image):
            written.append(image.copy())
            self._writer.write(image)

        def release(self):
            self._writer.release()

    wheel = _wheel(min_track=30)
    reference_tracks = [wheel._track([list(fd) for fd in _as_reference(dets)[start:end]])[0]
                        for start, end in ((0, 60), (60, 120))]
    result = lt.track_faces(frames, "syncnet-python", min_track=30, detections=dets, audio=audio)
    assert len(result.tracks) == 2
    from scipy.io import wavfile

    for k, (reference_track, ours) in enumerate(zip(reference_tracks, result.tracks)):
        written.clear()
        monkeypatch.setattr(sp.cv2, "VideoWriter", RecordingWriter)
        wheel._crop(reference_track, [str(p) for p in paths], str(tmp_path / "audio.wav"), tmp_path / "crop" / f"{k:05d}")
        monkeypatch.undo()
        assert np.array_equal(np.stack(written)[..., ::-1], ours.crops)  # 224 crops, pixel for pixel
        assert ours.crops.shape == (len(ours.frames), 224, 224, 3) and ours.crops.dtype == np.uint8
        _, cut = wavfile.read(tmp_path / "crop" / f"{k:05d}.wav")  # the reference's ffmpeg -ss/-to cut
        assert np.array_equal(cut, ours.audio) and ours.audio_span == (ours.start_frame / 25, ours.end_frame / 25)
        # Smoothing: medfilt-13 zero padding shrinks the first and last 6 half-sizes, as the reference.
        assert ours.half_size[0] < np.median(ours.half_size) and ours.half_size[30] > 90
    assert result.tracks[1].start_frame >= 60 and result.tracks[1].audio_span[0] >= 2.4


def test_audio_cut_matches_ffmpeg_for_any_span(tmp_path) -> None:
    rng = np.random.default_rng(0)
    audio = rng.integers(-20000, 20000, 16000 * 3, dtype=np.int16)
    media.write_wav(tmp_path / "a.wav", audio, sample_rate=16000)
    from scipy.io import wavfile

    for first, last in ((0, 74), (7, 40), (13, 80)):  # the last one runs past the end of the audio
        start, end = first / 25, (last + 1) / 25
        lt._ffmpeg("-i", str(tmp_path / "a.wav"), "-ss", "%.3f" % start, "-to", "%.3f" % end, str(tmp_path / "b.wav"))
        a, b = face_tracks.audio_sample_range(start, end, 16000, len(audio))
        assert np.array_equal(wavfile.read(tmp_path / "b.wav")[1], audio[a:b])


def test_reference_exact_mode_matches_the_wheel_end_to_end(tmp_path, sample, monkeypatch) -> None:
    """syncnet-python's whole inference() (its S3FD and SyncNet replaced by the same stand-ins on both sides)
    against track_video(reference_exact=True): same scenes, tracks, and the crops SyncNet reads after the
    q2 AVI -> q2 JPEG -> XVID -> JPEG chain, and the same audio."""
    boxes = _boxes(np.concatenate(sample["landmarks"]))
    # One box per frame in decode order (the reference's JPEG dump can hold a few more frames than the AVI).
    dets = [np.r_[b, 0.99][None] for b in boxes] + [np.r_[boxes[-1], 0.99][None]] * 8

    class ReferenceDetector:
        calls = 0

        def detect_faces(self, image, conf_th=0.9, scales=(0.25,)):
            self.calls += 1
            return dets[self.calls - 1]

    class NoScore:
        def evaluate(self, opt):
            return 0, 0.0, 0.0

    class OurDetector:
        done = 0

        def __call__(self, frames):
            self.done += len(frames)
            return dets[self.done - len(frames) : self.done]

    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(FFMPEG, bindir / "ffmpeg")  # ffmpeg-python calls "ffmpeg"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    wheel = _wheel(min_track=30)
    wheel.s3fd, wheel.syncnet = ReferenceDetector(), NoScore()
    outcome = wheel.inference(str(sample["two_shot"]), None, cache_dir=str(tmp_path / "wheel"))
    assert outcome[-1] is True and len(outcome[0]) == 2

    result = lt.track_video(sample["two_shot"], "syncnet-python", detector=OurDetector(), min_track=30,
                            reference_exact=True)
    assert result.scenes == [(0, 60), (60, 120)] and len(result.tracks) == 2
    assert result.config["reference_exact"] is True
    from scipy.io import wavfile

    for k, track in enumerate(result.tracks):
        folder = tmp_path / "wheel" / "cropped" / f"crop_{k:05d}"
        expected = np.stack([cv2.imread(f)[..., ::-1] for f in sorted(glob.glob(str(folder / "*.jpg")))])
        assert np.array_equal(expected, track.crops)
        assert np.array_equal(wavfile.read(folder / "audio.wav")[1], track.audio)


# ----------------------------------------------------------------------------- filters and reasons
def test_short_clip_gives_no_track_with_reason(sample) -> None:
    frames = sample["frames"][0]  # 60 frames
    dets = [np.r_[b, 0.99][None] for b in _boxes(sample["landmarks"][0])]
    result = lt.track_faces(frames, detections=dets)  # upstream: min_track 100
    assert result.tracks == [] and "shorter than min_track=100" in result.reason
    # A 60-frame scene passes min_track=50, but 45 detections are not more than 50.
    sparse = [d if i < 45 else np.empty((0, 5)) for i, d in enumerate(dets)]
    result = lt.track_faces(frames, "syncnet-python", detections=sparse)
    assert result.tracks == [] and "track of 45 detections is not longer than min_track=50" in result.reason
    assert result.rejected[0].first_frame == 0 and result.rejected[0].last_frame == 44
    assert lt.track_faces(frames, "syncnet-python", detections=dets).tracks  # 60 > 50: a track


def test_small_face_is_excluded_with_reason(sample) -> None:
    frames = sample["frames"][0]
    boxes = _boxes(sample["landmarks"][0])
    result = lt.crops_from_boxes(frames, boxes, "syncnet-python", box_scale=0.4)  # ~80-90 px faces
    assert result.tracks == [] and "not larger than min_face_size=100" in result.reason
    assert lt.crops_from_boxes(frames, boxes, "syncnet-python", box_scale=0.4, min_face_size=50).tracks


def test_fast_path_gives_the_detector_paths_geometry(sample) -> None:
    frames = sample["frames"][1]
    boxes = _boxes(sample["landmarks"][1])
    boxes[[5, 6, 20]] = np.nan  # missed frames: interpolated on both paths

    def detector(chunk, _state={"done": 0}):
        out = [np.r_[boxes[_state["done"] + k], 0.97][None] for k in range(len(chunk))]
        _state["done"] += len(chunk)
        return [o if np.isfinite(o).all() else np.empty((0, 5)) for o in out]

    pipeline = lt.FaceTrackPipeline("syncnet-python", detector=detector)
    for start in range(0, len(frames), 16):
        pipeline.update(frames[start : start + 16])
    via_detector = pipeline.compute().tracks[0]
    fast = lt.crops_from_boxes(frames, boxes, "syncnet-python")
    via_boxes = fast.tracks[0]
    for name in ("frames", "boxes", "detected", "half_size", "centre_x", "centre_y", "crops"):
        assert np.array_equal(getattr(via_detector, name), getattr(via_boxes, name)), name
    assert not via_boxes.detected[[5, 6, 20]].any()
    assert fast.config["detector"]["name"].startswith("given face boxes")
    # Dataset rows store crop boxes 2.5x the face box: box_scale undoes that.
    centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2
    scaled = lt.crops_from_boxes(frames, np.concatenate([centre - 2.5 * half, centre + 2.5 * half], 1),
                                 "syncnet-python", box_scale=1 / 2.5).tracks[0]
    np.testing.assert_allclose(scaled.half_size, via_boxes.half_size, rtol=1e-12)


def test_default_path_runs_s3fd_from_the_registry(isolated_caches, monkeypatch, tmp_path, sample) -> None:
    path, _ = _place_s3fd(monkeypatch, saturate=False)  # random weights: scores ~0.5, nothing above 0.9
    small = np.stack([cv2.resize(f, (128, 128), interpolation=cv2.INTER_AREA) for f in sample["frames"][0][:12]])
    video = tmp_path / "small.mp4"
    media.write_video(video, small, fps=25, audio=np.zeros(16000 * 12 // 25, np.float32), sample_rate=16000)
    pipeline = lt.FaceTrackPipeline("syncnet-python")
    result = lt.track_video(video, "syncnet-python")
    assert result.num_frames == 12 and result.frame_size == (128, 128) and result.tracks == []
    assert result.reason == "no face detected in any frame"
    assert pipeline.weights_provenance() == {"syncnet-s3fd": w.file_sha256(path)}
    config = pipeline.config()
    for knob in ("facedet_scale", "conf_threshold", "nms_threshold", "min_track", "min_face_size", "num_failed_det",
                 "iou_threshold", "smoothing_kernel", "crop_scale", "crop_size", "pad_value", "variant",
                 "reference_exact", "scene_threshold", "scene_min_length"):
        assert knob in config, knob
    assert config["min_track"] == 50 and lt.FaceTrackPipeline().config()["min_track"] == 100


def test_bad_input_raises_clear_errors(sample) -> None:
    frames = sample["frames"][0][:4]
    with pytest.raises(ValueError, match="uint8"):
        lt.track_faces(frames.astype(np.float32), detections=[np.empty((0, 5))] * 4)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        lt.track_faces(frames[..., 0], detections=[np.empty((0, 5))] * 4)
    with pytest.raises(ValueError, match="empty"):
        lt.track_faces(frames[:0])
    with pytest.raises(ValueError, match="boxes must be"):
        lt.crops_from_boxes(frames, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="detections of frame 1"):
        lt.track_faces(frames, detections=[np.empty((0, 5)), np.zeros((2, 3)), np.empty((0, 5)), np.empty((0, 5))])
    with pytest.raises(ValueError, match="variant"):
        lt.TrackConfig(variant="mocha")
    with pytest.raises(ValueError, match="smoothing_kernel"):
        lt.FaceTrackPipeline(smoothing_kernel=12)
    with pytest.raises(ValueError, match="unknown preset"):
        lt.FaceTrackPipeline("latest")
    with pytest.raises(ValueError, match="int16"):
        lt.FaceTrackPipeline().set_audio(np.zeros(100, np.float32))
    with pytest.raises(ValueError, match="uint8"):
        s3fd.S3FD(s3fd.S3FDNet()).detect_faces(frames.astype(np.float64))
    with pytest.raises(ValueError, match="conf_th"):
        s3fd.S3FD(s3fd.S3FDNet()).detect_faces(frames, conf_th=1.5)
