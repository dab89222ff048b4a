"""The preprocessed dataset's schema: column names, features, schema version, and reading a row's video.

``toolkit preprocess`` writes one row per clip (``preprocessing/storage.py`` builds the DatasetDict);
everything that reads a dataset (training windows, the models, the evaluation runner) goes through the
names and the loader here, so a column renamed or a layout changed is one edit plus a version bump.

    dataset = load(path)                             # DatasetDict; refuses another schema version
    rows = load_split(path, "train")                 # one split, with the same check
    row[LANDMARKS], row[POSE]                        # column names as constants
    with open_row_video(row[VIDEO]) as reader:       # mp4 bytes -> VideoReader
        frames = reader.read_all()
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any, Iterator

from talking_head.toolkit import media
from talking_head.toolkit.fileio import atomic_path

# Bump when a change alters what a row holds or means (a column added, renamed, re-scaled): readers
# then refuse datasets of the other version instead of misreading them.
SCHEMA_VERSION = 2  # 2: frames_damaged
SCHEMA_FILE = "schema.json"  # next to dataset_dict.json: {"schema_version": N}
# Splits: every dataset has "train" and "test"; a dataset cut for per-identity adaptation
# (toolkit preprocess --adapt-fraction) also has "adapt", the first part of each test clip.
ADAPT_SPLIT = "adapt"

# ----------------------------------------------------------------------------- column names
DATASET = "dataset"
SPEAKER = "speaker"
CLIP_ID = "clip_id"
FPS = "fps"
NUM_FRAMES = "num_frames"
SAMPLE_RATE = "sample_rate"
VIDEO = "video"
AUDIO = "audio"
BOXES = "boxes"
LANDMARKS = "landmarks"
CANONICAL_LANDMARKS = "canonical_landmarks"
POSE = "pose"
MEL = "mel"
FACE_FRACTION = "face_fraction"
MEAN_FACE_SIZE = "mean_face_size"
FRAMES_DROPPED = "frames_dropped"
FRAMES_DAMAGED = "frames_damaged"
FRAMES_WITHOUT_FACE = "frames_without_face"
FACE_TRACK = "face_track"
SOURCE = "source"
LANDMARKS68 = "landmarks68"  # optional (--landmarks68)
AUDIO_FEATURES = "audio_features"  # optional (--audio-features), width set by the model

# ----------------------------------------------------------------------------- features
def features(landmarks68: bool = False, audio_features_dim: int | None = None) -> Any:
    """The ``datasets.Features`` of a dataset, with the optional columns that were computed."""
    from datasets import Array2D, Array3D, Features, List, Value  # here: importing datasets takes seconds

    chosen = {
        DATASET: Value("string"),
        SPEAKER: Value("string"),
        CLIP_ID: Value("string"),
        FPS: Value("float32"),
        NUM_FRAMES: Value("int32"),
        SAMPLE_RATE: Value("int32"),
        VIDEO: Value("binary"),  # the re-encoded crop, H.264 + AAC mp4 bytes
        AUDIO: List(Value("int16")),  # 16 kHz mono samples, exactly num_frames / fps seconds
        BOXES: Array2D(shape=(None, 4), dtype="float32"),  # crop box per frame, x0 y0 x1 y1 in source pixels
        LANDMARKS: Array3D(shape=(None, 478, 3), dtype="float32"),  # MediaPipe mesh in crop pixels (NaN: no face)
        CANONICAL_LANDMARKS: Array3D(shape=(None, 478, 3), dtype="float32"),  # frontalised, canonical units
        POSE: Array2D(shape=(None, 7), dtype="float32"),  # yaw pitch roll (deg), tx ty tz, scale
        MEL: Array2D(shape=(None, 80), dtype="float32"),  # Wav2Lip log-mel, 80 frames per second
        FACE_FRACTION: Value("float32"),
        MEAN_FACE_SIZE: Value("float32"),  # crop box side / source frame height
        FRAMES_DROPPED: Value("int32"),  # source frames dropped by the frame-rate conversion
        FRAMES_DAMAGED: Value("int32"),  # source frames lost or decoded with errors (a damaged file, read anyway)
        FRAMES_WITHOUT_FACE: Value("int32"),
        FACE_TRACK: Value("string"),  # JSON: how the face was chosen (tracks seen, main track)
        SOURCE: Value("string"),  # JSON: original file, cut, split origin
    }
    if landmarks68:
        chosen[LANDMARKS68] = Array3D(shape=(None, 68, 2), dtype="float32")  # face-alignment FAN, crop pixels
    if audio_features_dim is not None:
        chosen[AUDIO_FEATURES] = Array2D(shape=(None, audio_features_dim), dtype="float32")
    return Features(chosen)


# ----------------------------------------------------------------------------- version
def write_schema_version(dataset_dir: str | Path) -> None:
    """Record :data:`SCHEMA_VERSION` in a saved dataset (called by preprocessing when it saves one)."""
    with atomic_path(Path(dataset_dir) / SCHEMA_FILE) as tmp:
        tmp.write_text(json.dumps({"schema_version": SCHEMA_VERSION}) + "\n", encoding="utf-8")


def check_schema_version(dataset_dir: str | Path) -> None:
    """Raise ValueError, naming the folder and the cause, unless it is a dataset of this schema version."""
    folder = Path(dataset_dir)
    if not (folder / "dataset_dict.json").is_file():
        raise ValueError(f"{folder}: not a preprocessed dataset (no dataset_dict.json; make one with toolkit preprocess)")
    marker = folder / SCHEMA_FILE
    if not marker.is_file():
        raise ValueError(f"{folder}: the dataset has no {SCHEMA_FILE}, so it predates schema version {SCHEMA_VERSION}; "
                         "rebuild it with toolkit preprocess")
    try:
        found = json.loads(marker.read_text(encoding="utf-8"))["schema_version"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{marker}: unreadable schema version ({err}); rebuild the dataset with toolkit preprocess") from None
    if found != SCHEMA_VERSION:
        raise ValueError(f"{folder}: dataset schema version {found}, but this toolkit reads version {SCHEMA_VERSION}; "
                         "rebuild it with toolkit preprocess")


def load(dataset_dir: str | Path) -> Any:
    """The saved ``DatasetDict`` of a preprocessed dataset, after checking its schema version."""
    from datasets import load_from_disk

    check_schema_version(dataset_dir)
    return load_from_disk(str(dataset_dir))


def load_split(dataset_dir: str | Path, split: str) -> Any:
    """One split (``Dataset``) of a preprocessed dataset; ValueError naming the splits there if it is absent."""
    dataset = load(dataset_dir)
    if split not in dataset:
        raise ValueError(f"{dataset_dir}: no split {split!r} (splits: {', '.join(dataset)})")
    return dataset[split]


# ----------------------------------------------------------------------------- a row's video
def write_row_video(video: bytes, path: str | Path) -> Path:
    """A row's mp4 bytes as the file `path` (written atomically; kept when already there at that size)."""
    path = Path(path)
    if not (path.is_file() and path.stat().st_size == len(video)):
        with atomic_path(path) as tmp:
            tmp.write_bytes(video)
    return path


@contextlib.contextmanager
def open_row_video(video: bytes, **reader_options: Any) -> Iterator[media.VideoReader]:
    """A :class:`media.VideoReader` over a row's mp4 bytes, at the dataset's own frame rate.

    The reader seeks in a file, so the bytes go to a temporary folder that is removed on exit.
    ``reader_options`` go to the reader (e.g. ``threads``).
    """
    with tempfile.TemporaryDirectory(prefix="row_video_") as tmp:
        with media.VideoReader(write_row_video(video, Path(tmp) / "clip.mp4"), fps=None, **reader_options) as reader:
            yield reader
