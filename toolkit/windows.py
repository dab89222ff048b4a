"""A PyTorch ``Dataset`` of aligned training windows over a preprocessed dataset.

Each item is ``window`` consecutive frames of one clip with everything aligned to them: the audio
samples and mel frames of the same time span, the landmark / canonical landmark / pose windows, the
decoded crop frames, and a reference frame from the same clip. Frames come from random access
into the clip's mp4 (seek + decode of the window only); each clip's mp4 bytes are written once to a
cache folder next to the dataset so the reader can seek in them. The arrays are zero-copy numpy views
into the memory-mapped Arrow table (:class:`ArrowRows`), so an item reads its window's bytes, not
the clip's: HDTF clips are minutes long.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media
from talking_head.toolkit.audio_features import mel_window

ARRAY_COLUMNS = (schema.LANDMARKS, schema.CANONICAL_LANDMARKS, schema.POSE)
OPEN_READERS = 8  # clips whose video stays open (a file handle and a small index each)


class ArrowRows:
    """Whole-row numpy views of list / Array2D / Array3D columns of a ``datasets.Dataset``, without copying.

    Each such column is stored as nested Arrow lists over one flat buffer (memory-mapped for a dataset
    on disk); a row's extent is found by following the offsets of each level, so a view costs the same
    for a 5-minute clip as for a 1-second one and only the pages then sliced out are read. Values equal
    ``dataset.with_format("numpy")[row][column]``, in the stored dtype (that gives int64 for int16 lists);
    views are read-only. Rows follow the dataset's indices mapping (``select``/``shuffle``) if any.
    """

    def __init__(self, dataset, columns):
        self.dataset, self.columns = dataset, tuple(columns)
        self._levels: dict[str, tuple | None] | None = None  # built on first use: after unpickling, in each worker

    def view(self, column: str, row: int) -> np.ndarray:
        if self._levels is None:
            self._levels = {name: self._column_levels(name) for name in self.columns}
        indices = self.dataset._indices  # no public accessor; None unless selected / shuffled
        physical = row if indices is None else indices.column(0)[row].as_py()
        chunks = self._levels[column]
        if chunks is None:  # an unexpected layout: the slow, materialising path
            return self.dataset.select_columns([column]).with_format("numpy")[row][column]
        bounds, per_chunk, inner = chunks
        k = int(np.searchsorted(bounds, physical, side="right")) - 1
        offsets, leaf = per_chunk[k]
        lo, hi = physical - bounds[k], physical - bounds[k] + 1
        for level in offsets:
            lo, hi = int(level[lo]), int(level[hi])
        return leaf[lo:hi].reshape(-1, *inner)

    def _column_levels(self, name: str):
        feature = self.dataset.features[name]
        inner = tuple(getattr(feature, "shape", (None,))[1:])
        column = self.dataset.data.table.column(name)
        per_chunk = []
        for chunk in column.chunks:
            array = chunk.storage if isinstance(chunk, pa.ExtensionArray) else chunk
            offsets = []
            while pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
                offsets.append(array.offsets.to_numpy(zero_copy_only=True))
                array = array.values
            if not offsets or array.null_count or not (pa.types.is_integer(array.type) or pa.types.is_floating(array.type)):
                return None
            per_chunk.append((offsets, array.to_numpy(zero_copy_only=True)))
        bounds = np.cumsum([0, *(len(chunk) for chunk in column.chunks)])
        return bounds, per_chunk, inner

    def __getstate__(self) -> dict:  # the views point into this process's memory map
        return {**self.__dict__, "_levels": None}


class TalkingHeadWindows(torch.utils.data.Dataset):
    """Windows of `window` frames every `stride` frames over every clip of `split`.

    ``frames=False`` skips video decoding (landmark-only models). ``reference="random"`` picks the
    reference frame uniformly in the clip with a generator seeded by (seed, item index), so an
    index always gives the same item; ``"first"`` uses frame 0.
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        window: int = 25,
        stride: int | None = None,
        frames: bool = True,
        reference: str = "random",
        seed: int = 0,
        cache_dir: str | Path | None = None,
    ):
        if reference not in ("random", "first"):
            raise ValueError(f"reference must be 'random' or 'first', got {reference!r}")
        self.path = Path(path)
        self.rows = schema.load_split(self.path, split)
        self.window, self.stride = window, stride or window
        self.frames, self.reference, self.seed = frames, reference, seed
        self.cache_dir = Path(cache_dir) if cache_dir else self.path / "video_cache" / split
        # plain lists: a datasets Column costs ~1 ms a lookup, three per item
        meta = self.rows.select_columns([schema.CLIP_ID, schema.NUM_FRAMES, schema.FPS, schema.SAMPLE_RATE]).to_dict()
        self.clip_ids, self.lengths = meta[schema.CLIP_ID], meta[schema.NUM_FRAMES]
        self.fps, self.sample_rates = meta[schema.FPS], meta[schema.SAMPLE_RATE]
        self.index = [
            (row, start)
            for row, length in enumerate(self.lengths)
            for start in range(0, length - window + 1, self.stride)
        ]
        if not self.index:
            raise ValueError(f"{self.path} [{split}]: no clip has {window} frames")
        self._arrays = ArrowRows(self.rows, [*ARRAY_COLUMNS, schema.MEL, schema.AUDIO])
        self._readers: collections.OrderedDict[int, media.VideoReader] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        row, start = self.index[i]
        stop = start + self.window
        fps, sr = self.fps[row], self.sample_rates[row]
        view = self._arrays.view
        a0 = int(round(start / fps * sr))
        n_audio = int(round(self.window / fps * sr))
        audio = view(schema.AUDIO, row)[a0 : a0 + n_audio].astype(np.float32) / 32768.0
        item = {
            "clip_id": self.clip_ids[row],
            "start": start,
            "audio": torch.from_numpy(np.pad(audio, (0, n_audio - len(audio)))),
            "mel": torch.from_numpy(mel_window(view(schema.MEL, row), start, self.window, fps).astype(np.float32)),
        }
        for key in ARRAY_COLUMNS:  # a copy: the view is read-only and maps the dataset's file
            item[key] = torch.from_numpy(np.array(view(key, row)[start:stop], dtype=np.float32))
        if self.frames:
            reader = self._reader(row)
            ref = 0 if self.reference == "first" else int(np.random.default_rng([self.seed, i]).integers(self.lengths[row]))
            item["frames"] = torch.from_numpy(reader.read_window(start, self.window))
            item["reference"] = torch.from_numpy(reader.read_window(ref, 1)[0])
            item["reference_index"] = ref
        return item

    def _reader(self, row: int) -> media.VideoReader:
        if row in self._readers:
            self._readers.move_to_end(row)
            return self._readers[row]
        video = self.rows.select_columns([schema.VIDEO])[row][schema.VIDEO]
        path = schema.write_row_video(video, self.cache_dir / f"{self.clip_ids[row]}.mp4")
        reader = media.VideoReader(path, fps=None)  # stored at the dataset's rate already
        self._readers[row] = reader
        if len(self._readers) > OPEN_READERS:
            self._readers.popitem(last=False)[1].close()
        return reader

    def __getstate__(self) -> dict:  # DataLoader workers open their own readers
        state = dict(self.__dict__)
        state["_readers"] = collections.OrderedDict()
        return state
