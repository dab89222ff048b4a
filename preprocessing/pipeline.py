"""The per-clip pipeline: one source clip in, one finished clip folder out.

Stages, each its own module: decode and resample (:mod:`toolkit.media`), face detection
(:mod:`toolkit.face_detector`), tracking and a smoothed square crop (:mod:`preprocessing.face_track`,
:mod:`toolkit.face_box`), the 478-point mesh on the crops (:mod:`toolkit.face_mesh`), head pose and
canonical landmarks (:mod:`toolkit.pose`), optional 68-point landmarks (:mod:`toolkit.landmarks68`),
and audio features (:mod:`toolkit.audio_features`).

A finished clip is a folder ``clips/<clip_id>/`` holding ``crop.mp4`` (the crop with the clip's
audio), ``arrays.npz`` (every per-frame array) and ``meta.json`` (ids, parameters, quality). The
folder is built under a temporary name and renamed into place in one step, so it is either complete
or absent; :func:`process_clip` on a finished clip with the same parameters does nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from talking_head.preprocessing import face_track
from talking_head.preprocessing.clip import ClipSource
from talking_head.toolkit import audio_features, face_detector, face_mesh, media, pose
from talking_head.toolkit import dataset as schema
from talking_head.toolkit.face_box import DEFAULT_CROP_SCALE, crop_frames
from talking_head.toolkit.fileio import write_json

SAMPLE_RATE = 16000
DECODE_CHUNK = 32  # frames per decoded chunk: constant memory, few seeks when cutting long videos
# Pass 1 keeps its decoded frames for pass 2 up to this many bytes (about 50 s of 512x512 video), so
# short clips are decoded once; longer ones are decoded again rather than held in memory.
FRAME_CACHE_BYTES = 1 << 30
PIPELINE_VERSION = 5  # bump when a change alters what a finished clip contains


@dataclass(frozen=True)
class PreprocessConfig:
    """Every parameter that changes a finished clip. Plain data; recorded in each clip and the card."""

    fps: float = 25.0
    size: int = 512
    crop_scale: float = DEFAULT_CROP_SCALE
    median_window: int = face_track.DEFAULT_MEDIAN_WINDOW
    size_window: int = face_track.DEFAULT_SIZE_WINDOW
    detect_every: int = face_track.DEFAULT_DETECT_EVERY  # BlazeFace on every k-th frame (1: every frame)
    landmarks68: bool = False
    audio_features: str | None = None  # None, "wav2vec2" or "hubert"
    # x264: "ultrafast" with quarter-pixel motion search (subme=1; ultrafast's own 0 searches whole pixels) at
    # crf 19, measured on eight sample clips (docs/architecture.md, "Where the time goes"): as close to the
    # crops as superfast at crf 18 (before issue 20) for 1.1-1.35x its bytes and ultrafast's speed; ultrafast
    # at crf 16 (issue 20's first pass) was as close for 2.9-3.4x the bytes. Quality first, then speed, size.
    crf: int = 19
    x264_preset: str = "ultrafast"
    x264_params: str | None = "subme=1"  # x264 options on top of the preset (ffmpeg's -x264-params)
    x264_threads: int = 1  # one encoder thread per worker: workers scale, and the bytes never depend on the pool

    def __post_init__(self) -> None:
        if self.size not in (256, 512):
            raise ValueError(f"--size must be 256 or 512, got {self.size}")
        if self.fps <= 0:
            raise ValueError(f"--fps must be positive, got {self.fps}")
        if not 1 <= self.detect_every <= face_track.DEFAULT_MAX_GAP:  # further apart, tracks would break between
            raise ValueError(f"detect_every must be in 1..{face_track.DEFAULT_MAX_GAP}, got {self.detect_every}")
        if self.audio_features not in (None, "wav2vec2", "hubert"):
            raise ValueError(f"--audio-features must be wav2vec2 or hubert, got {self.audio_features!r}")

    def to_dict(self) -> dict:
        return {**asdict(self), "pipeline_version": PIPELINE_VERSION}

    def fingerprint(self) -> str:
        """Short hash of the parameters: a finished clip is reused only if it matches."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


class ClipFailed(Exception):
    """A clip that cannot be processed; the message is the one-line reason for failures.jsonl, ``detail``
    the technical evidence behind it (FFmpeg's message, byte offsets), when there is any."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


class Pipeline:
    """Models kept resident across clips (one per worker process)."""

    def __init__(self, config: PreprocessConfig):
        self.config = config
        self.detector = face_detector.FaceDetector()
        self._mesher: face_mesh.FaceMeshDetector | None = None  # created on first use, reset between clips
        self.landmarks68 = None
        if config.landmarks68:
            from talking_head.toolkit.landmarks68 import Landmarks68

            self.landmarks68 = Landmarks68(device="cpu")
        self.speech = None
        if config.audio_features:
            self.speech = audio_features.SpeechFeatureExtractor(config.audio_features)

    def process(self, source: ClipSource, work_dir: Path) -> dict:
        """Process one clip into ``work_dir/clips/<clip_id>`` and return its meta record.

        Raises ClipFailed (bad input, no face, ...) with a one-line reason.
        """
        final = Path(work_dir) / "clips" / source.clip_id
        meta_path = final / "meta.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if meta.get("config_fingerprint") == self.config.fingerprint():
                return meta
            shutil.rmtree(final)
        tmp = final.with_name(f".{source.clip_id}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.mkdir(parents=True)
        try:
            meta = self._process_into(source, tmp)
            tmp.rename(final)
        except media.MediaError as exc:
            raise ClipFailed(str(exc), detail=exc.detail) from exc
        except face_detector.NoFaceError as exc:
            raise ClipFailed(f"{source.path}: {exc}") from exc
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return meta

    def _mesh_detector(self) -> face_mesh.FaceMeshDetector:
        """The worker's face mesh in video mode, reset: as a new detector (identical landmarks, tests/
        test_face_mesh.py) without building a graph for every clip (about 3 instead of 20-50 ms)."""
        if self._mesher is None:
            self._mesher = face_mesh.FaceMeshDetector(video=True)
        self._mesher.reset()
        return self._mesher

    def _meshes(self, crop_video: Path, num_frames: int) -> np.ndarray:
        """(num_frames, 478, 3) meshes of the written crop video's frames, NaN where there is no face."""
        landmarks = np.full((num_frames, face_mesh.NUM_POINTS, 3), np.nan, np.float32)
        mesher = self._mesh_detector()  # every clip starts from a new track, whatever ran before it here
        with media.VideoReader(crop_video, fps=None, threads=1) as decoded:
            if len(decoded) != num_frames:
                raise RuntimeError(f"{crop_video}: {len(decoded)} frames decoded, {num_frames} written")
            k = 0
            for chunk in decoded.iter_chunks(DECODE_CHUNK):
                for image in chunk:
                    mesh = mesher.detect(image)
                    if mesh is not None:
                        landmarks[k] = mesh
                    k += 1
        return landmarks

    # ------------------------------------------------------------------------------------------
    def _main_track(self, reader: media.VideoReader, first: int, stop: int, cache: "_FrameCache"):
        """The main face's track and its record: BlazeFace on every ``detect_every``-th frame and
        wherever the track is uncertain (:func:`face_track.sparse_detections`); on every frame when
        the clip holds two or more faces of comparable prominence (:func:`face_track.candidates`)."""
        cfg, num_frames = self.config, stop - first

        def chunks() -> Iterator[np.ndarray]:
            for chunk in _chunks(reader, first, stop):
                cache.add(chunk)
                yield chunk

        self.detector.reset()  # every clip starts from the same state, whatever ran before it here
        detections = face_track.sparse_detections(self.detector.detect, chunks(), num_frames, cfg.detect_every)
        tracks, weights = face_track.track_faces(detections), face_track.frame_weights(detections)
        if cfg.detect_every > 1 and face_track.candidates(tracks, num_frames, weights).sum() > 1:
            # Two faces of comparable prominence: which one talks is decided by mouth motion, measured
            # on every frame. Detect them all, as detect_every=1 does (decoding again if the clip was too
            # long to keep). Bystanders and false positives, far less prominent, do not get here.
            self.detector.reset()
            frames = cache.peek() if cache.complete else _chunks(reader, first, stop)
            detections = [self.detector.detect(frame) for chunk in frames for frame in chunk]
            tracks, weights = face_track.track_faces(detections), None
        main, record = face_track.select_main_track(tracks, num_frames, weights)
        record["frames_detected"] = sum(found is not None for found in detections)
        return main, record

    def _process_into(self, source: ClipSource, out: Path) -> dict:
        cfg = self.config
        started = time.perf_counter()
        reader = media.VideoReader(source.path, fps=cfg.fps, threads=1)  # one worker, one core
        first, stop = _frame_range(source, len(reader), cfg.fps)
        if stop <= first:
            raise ClipFailed(f"{source.path}: the cut {source.start}-{source.end} s holds no frames")
        num_frames = stop - first
        audio = _cut_audio(source, num_frames, cfg.fps)

        # Pass 1: boxes. A fixed official crop (HDTF) replaces detection and tracking.
        height = reader.height
        cache = None
        if source.crop_box is not None:
            boxes = np.tile(_official_box(source, height), (num_frames, 1))
            track_info = {"method": "official crop box", "box": list(source.crop_box)}
            face_size = float(boxes[0, 3] - boxes[0, 1]) / height
        else:
            cache = _FrameCache(FRAME_CACHE_BYTES)
            main, track_info = self._main_track(reader, first, stop, cache)
            boxes = face_track.smooth_square_boxes(
                main, num_frames, scale=cfg.crop_scale, median_window=cfg.median_window, size_window=cfg.size_window
            )
            face_size = face_track.mean_face_size(main, height)

        # Pass 2: crop (and the 68 points), write the crop video with the audio; then the mesh on the crop video
        # as it decodes. The mesh sees the frames every later reader sees (training windows, the evaluation's
        # reference side), so the stored meshes are exactly what MediaPipe gives on the dataset's videos.
        lm68 = np.full((num_frames, 68, 2), np.nan, np.float32) if self.landmarks68 else None
        half = 0.5 * cfg.size / cfg.crop_scale
        face_box = np.array([cfg.size / 2 - half, cfg.size / 2 - half, cfg.size / 2 + half, cfg.size / 2 + half], np.float32)

        def crops() -> Iterator[np.ndarray]:
            k = 0
            for chunk in cache.chunks() if cache and cache.complete else _chunks(reader, first, stop):
                cropped = crop_frames(chunk, boxes[k : k + len(chunk)], cfg.size)
                if lm68 is not None:  # FAN wants the face box: the crop is crop_scale x the face, centred
                    lm68[k : k + len(chunk)] = self.landmarks68(cropped, np.tile(face_box, (len(chunk), 1)))
                k += len(chunk)
                yield from cropped

        media.write_video(
            out / "crop.mp4", crops(), fps=cfg.fps, audio=audio, sample_rate=SAMPLE_RATE, crf=cfg.crf,
            preset=cfg.x264_preset, threads=cfg.x264_threads, x264_params=cfg.x264_params,
        )
        landmarks = self._meshes(out / "crop.mp4", num_frames)

        has_face = ~np.isnan(landmarks[:, 0, 0])
        if not has_face.any():  # BlazeFace can fire on noise or a poster; without a mesh there is no face
            raise ClipFailed(
                f"{source.path}: no face: the face mesh found none in any of the {num_frames} cropped frames "
                f"({track_info.get('num_tracks', 0)} detector track(s), all rejected by the mesh)"
            )
        fit = pose.fit_pose(landmarks)
        mel = audio_features.log_mel(audio)
        arrays = {  # the dataset's per-frame columns (toolkit.dataset), one npz entry each
            schema.BOXES: boxes.astype(np.float32),
            schema.LANDMARKS: landmarks,
            schema.CANONICAL_LANDMARKS: fit.canonical.astype(np.float32),
            schema.POSE: fit.pose.astype(np.float32),
            schema.MEL: mel.astype(np.float32),
            schema.AUDIO: (np.clip(np.round(audio * 32768.0), -32768, 32767)).astype(np.int16),
        }
        if lm68 is not None:
            arrays[schema.LANDMARKS68] = lm68
        if self.speech is not None:
            arrays[schema.AUDIO_FEATURES] = self.speech(audio, cfg.fps, num_frames=num_frames).astype(np.float32)
        np.savez(out / "arrays.npz", **arrays)

        used = np.unique(reader.source_indices[first:stop])
        source_frames = int(used.max() - used.min() + 1)
        meta = {
            "dataset": source.dataset,
            "speaker": source.speaker,
            "clip_id": source.clip_id,
            "split": source.split,
            "source": source.to_dict(),
            "fps": cfg.fps,
            "num_frames": num_frames,
            "sample_rate": SAMPLE_RATE,
            "quality": {
                "face_fraction": float(has_face.mean()),
                "mean_face_size": face_size,
                "frames_dropped": source_frames - len(used),
                "frames_damaged": sum(reader.damaged_frames.values()),
                "damage": reader.damaged_frames,
                "frames_without_face": int((~has_face).sum()),
            },
            "face_track": track_info,
            "config": cfg.to_dict(),
            "config_fingerprint": cfg.fingerprint(),
            "seconds_spent": round(time.perf_counter() - started, 3),
        }
        if self.landmarks68 is not None:
            meta["landmarks68_model"] = self.landmarks68.provenance
        if self.speech is not None:
            meta["audio_features_model"] = self.speech.provenance
        write_json(out / "meta.json", meta)
        reader.close()
        return meta


def _frame_range(source: ClipSource, total: int, fps: float) -> tuple[int, int]:
    """Output-frame indices [first, stop) of the cut at the target fps."""
    first = 0 if source.start is None else int(round(source.start * fps))
    stop = total if source.end is None else min(total, int(round(source.end * fps)))
    return first, stop


def _cut_audio(source: ClipSource, num_frames: int, fps: float) -> np.ndarray:
    """16 kHz mono float32 audio of the cut, padded or trimmed to exactly the video's duration."""
    audio = media.read_audio(source.path, sample_rate=SAMPLE_RATE)
    start = 0 if source.start is None else int(round(source.start * SAMPLE_RATE))
    wanted = int(round(num_frames / fps * SAMPLE_RATE))
    audio = audio[start : start + wanted]
    if len(audio) < wanted:  # AAC/video end mismatch of a few ms: pad with silence, never shift
        audio = np.pad(audio, (0, wanted - len(audio)))
    return audio


def _official_box(source: ClipSource, height: int) -> np.ndarray:
    """A fixed (x, y, w, h) box annotated at `crop_box_height`, scaled to this video, as x0 y0 x1 y1."""
    x, y, w, h = source.crop_box
    s = height / source.crop_box_height if source.crop_box_height else 1.0
    return np.array([x * s, y * s, (x + w) * s, (y + h) * s], np.float32)


def _chunks(reader: media.VideoReader, first: int, stop: int) -> Iterator[np.ndarray]:
    """Frames [first, stop) in chunks: sequential decoding for whole clips, windows for cuts."""
    if first == 0 and stop == len(reader):
        yield from reader.iter_chunks(DECODE_CHUNK)
        return
    for start in range(first, stop, DECODE_CHUNK * 8):
        yield reader.read_window(start, min(DECODE_CHUNK * 8, stop - start))


class _FrameCache:
    """Decoded chunks kept for a second pass, abandoned (and freed) once they pass a byte budget."""

    def __init__(self, budget: int):
        self.budget, self.size, self.complete, self._chunks = budget, 0, True, []

    def add(self, chunk: np.ndarray) -> None:
        if not self.complete:
            return
        self.size += chunk.nbytes
        if self.size > self.budget:
            self.complete, self._chunks = False, []
        else:
            self._chunks.append(chunk)

    def peek(self) -> Iterator[np.ndarray]:
        """The chunks, kept for :meth:`chunks`."""
        yield from list(self._chunks)

    def chunks(self) -> Iterator[np.ndarray]:
        while self._chunks:
            yield self._chunks.pop(0)  # release each chunk once it is used
