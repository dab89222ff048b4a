"""Training windows over HDTF-length clips read only the window: the values are those of the old reader.

The old reader (``reference_item`` here) materialised the whole row through ``with_format("numpy")`` and
cut the window out; :class:`toolkit.windows.ArrowRows` slices the memory-mapped Arrow data instead.
Every array must be bit-identical (values, NaNs, dtypes, shapes) at every kind of window: random starts,
the first, the last, and the clip ends where the audio or mel run out and are padded. The dataset is
built directly (random arrays with the schema's features), not by preprocessing minutes of video.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media
from talking_head.toolkit.audio_features import mel_window, num_mel_frames
from talking_head.toolkit.windows import ARRAY_COLUMNS, ArrowRows, TalkingHeadWindows

HDTF_FRAMES = 7500  # 5 minutes at 25 fps
WINDOW = 25


def clip_row(clip_id: str, frames: int, fps: float = 25.0, seed: int = 0, audio_short: int = 0,
             mel_short: int = 0, video: bytes = b"") -> dict:
    """One row with random arrays of the schema's shapes and dtypes; landmarks have NaN (no face) frames.

    ``audio_short`` / ``mel_short``: samples / mel frames fewer than the clip's length asks for, so that
    the last windows need padding."""
    rng = np.random.default_rng(seed)
    samples = int(round(frames / fps * 16000)) - audio_short
    landmarks = rng.normal(100, 30, (frames, 478, 3)).astype(np.float32)
    landmarks[rng.random(frames) < 0.01] = np.nan
    return {
        schema.DATASET: "synthetic", schema.SPEAKER: "s", schema.CLIP_ID: clip_id, schema.FPS: fps,
        schema.NUM_FRAMES: frames, schema.SAMPLE_RATE: 16000, schema.VIDEO: video,
        schema.AUDIO: rng.integers(-32768, 32768, samples, dtype=np.int16),
        schema.BOXES: rng.random((frames, 4), dtype=np.float32),
        schema.LANDMARKS: landmarks,
        schema.CANONICAL_LANDMARKS: rng.normal(0, 1, (frames, 478, 3)).astype(np.float32),
        schema.POSE: rng.normal(0, 10, (frames, 7)).astype(np.float32),
        schema.MEL: rng.uniform(-4, 4, (num_mel_frames(samples) - mel_short, 80)).astype(np.float32),
        schema.FACE_FRACTION: 1.0, schema.MEAN_FACE_SIZE: 0.5, schema.FRAMES_DROPPED: 0, schema.FRAMES_DAMAGED: 0,
        schema.FRAMES_WITHOUT_FACE: 0, schema.FACE_TRACK: "{}", schema.SOURCE: "{}",
    }


def save_dataset(path, splits: dict[str, list[dict]], shards: dict[str, int] | None = None):
    """``splits`` saved as a preprocessed dataset (save_to_disk layout plus the schema version)."""
    from datasets import Dataset, DatasetDict

    features = schema.features()
    parts = {name: Dataset.from_generator(_generate, gen_kwargs={"rows": rows}, features=features,
                                          cache_dir=str(path.parent / f"{path.name}_cache"))
             for name, rows in splits.items()}
    DatasetDict(parts).save_to_disk(str(path), num_shards=shards)
    schema.write_schema_version(path)
    return path


def _generate(rows):
    yield from rows


def old_arrays(windows: TalkingHeadWindows):
    return windows.rows.select_columns([*ARRAY_COLUMNS, schema.MEL, schema.AUDIO]).with_format("numpy")


def reference_item(windows: TalkingHeadWindows, i: int, arrays=None) -> dict:
    """The item's arrays as the reader before ArrowRows made them: the whole row through with_format("numpy")
    (`arrays`: :func:`old_arrays`, made once as that reader did)."""
    row, start = windows.index[i]
    stop = start + windows.window
    fps, sr = windows.fps[row], windows.sample_rates[row]
    data = (old_arrays(windows) if arrays is None else arrays)[row]
    a0 = int(round(start / fps * sr))
    n_audio = int(round(windows.window / fps * sr))
    audio = data[schema.AUDIO][a0 : a0 + n_audio].astype(np.float32) / 32768.0
    item = {
        "clip_id": windows.clip_ids[row], "start": start,
        "audio": torch.from_numpy(np.pad(audio, (0, n_audio - len(audio)))),
        "mel": torch.from_numpy(mel_window(data[schema.MEL], start, windows.window, fps).astype(np.float32)),
    }
    for key in ARRAY_COLUMNS:
        item[key] = torch.from_numpy(np.asarray(data[key][start:stop], dtype=np.float32))
    return item


def assert_same_item(got: dict, want: dict) -> None:
    """Equal bit for bit (NaN included), with the same dtypes and shapes, on every key of `want`."""
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype and got[key].shape == value.shape, key
            assert got[key].numpy().tobytes() == value.numpy().tobytes(), key
        else:
            assert got[key] == value, key


def edge_indices(windows: TalkingHeadWindows, count: int, seed: int = 0) -> list[int]:
    """The first and last window of every clip, plus `count` random ones."""
    ends = {}
    for i, (row, _) in enumerate(windows.index):
        ends.setdefault(row, [i, i])[1] = i
    chosen = {i for pair in ends.values() for i in pair}
    chosen.update(np.random.default_rng(seed).integers(len(windows), size=count).tolist())
    return sorted(chosen)


@pytest.fixture(scope="module")
def hdtf(tmp_path_factory):
    """One 5-minute clip and two short ones whose audio and mel end early, in two shards (two Arrow chunks)."""
    rows = [clip_row("long", HDTF_FRAMES, seed=1),
            clip_row("short_audio", 400, seed=2, audio_short=900, mel_short=3),
            clip_row("ntsc", 301, fps=29.97, seed=3, audio_short=7)]
    return save_dataset(tmp_path_factory.mktemp("hdtf") / "dataset", {"train": rows}, shards={"train": 2})


@pytest.mark.parametrize("window,stride", [(WINDOW, 7), (5, 3), (1, 997)])
def test_windows_equal_the_whole_row_reader(hdtf, window, stride):
    windows = TalkingHeadWindows(hdtf, window=window, stride=stride, frames=False)
    for i in edge_indices(windows, 60, seed=window):
        assert_same_item(windows[i], reference_item(windows, i))


def test_the_last_windows_are_padded_as_before(hdtf):
    windows = TalkingHeadWindows(hdtf, window=WINDOW, stride=1, frames=False)
    last = max(i for i, (row, _) in enumerate(windows.index) if windows.clip_ids[row] == "short_audio")
    item = windows[last]
    assert_same_item(item, reference_item(windows, last))
    assert (item["audio"][-900:] == 0).all() and (item["mel"][-3:] == -4.0).all()  # the padding is exercised


def test_arrow_rows_follow_a_selection_and_slices(hdtf):
    """A selected / shuffled split (an indices mapping) and a contiguous selection (a sliced table)."""
    rows = schema.load_split(hdtf, "train")
    for chosen in (rows.select([2, 0, 1, 0]), rows.select([1, 2]), rows.shuffle(seed=0)):
        reader = ArrowRows(chosen, [schema.POSE, schema.MEL, schema.AUDIO])
        whole = chosen.select_columns([schema.POSE, schema.MEL, schema.AUDIO]).with_format("numpy")
        for row in range(len(chosen)):
            for column in reader.columns:
                want, got = whole[row][column], reader.view(column, row)
                # with_format widens int16 lists to int64; the view keeps what is stored
                assert got.dtype == (np.int16 if column == schema.AUDIO else want.dtype) and got.shape == want.shape
                assert got.tobytes() == want.astype(got.dtype).tobytes()


def test_pickles_without_the_data_and_reads_the_same(hdtf):
    windows = TalkingHeadWindows(hdtf, window=WINDOW, frames=False)
    windows[0]  # views built in this process must not travel
    blob = pickle.dumps(windows)
    assert len(blob) < 2_000_000  # the clip's arrays are ~100 MB
    again = pickle.loads(blob)
    for i in edge_indices(windows, 5):
        assert_same_item(again[i], windows[i])


@pytest.mark.parametrize("workers", [0, 2])
def test_data_loader_yields_the_same_items(hdtf, workers):
    windows = TalkingHeadWindows(hdtf, window=WINDOW, stride=5, frames=False)
    chosen = edge_indices(windows, 30, seed=5)
    loader = torch.utils.data.DataLoader(windows, batch_size=None, sampler=chosen, num_workers=workers)
    got = list(loader)
    assert len(got) == len(chosen)
    for item, i in zip(got, chosen):
        assert_same_item(item, reference_item(windows, i))


def test_frames_and_arrays_on_a_short_clip_with_video(tmp_path):
    frames = np.random.default_rng(4).integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
    mp4 = media.write_video(tmp_path / "clip.mp4", frames, fps=25).read_bytes()
    path = save_dataset(tmp_path / "dataset", {"train": [clip_row("video", 30, seed=4, audio_short=300, video=mp4)]})
    windows = TalkingHeadWindows(path, window=10, stride=4, reference="random", seed=1)
    decoded = media.VideoReader(tmp_path / "clip.mp4", fps=None).read_all()
    for i in range(len(windows)):
        item = windows[i]
        assert_same_item(item, reference_item(windows, i))
        np.testing.assert_array_equal(item["frames"].numpy(), decoded[item["start"] : item["start"] + 10])
        np.testing.assert_array_equal(item["reference"].numpy(), decoded[item["reference_index"]])
