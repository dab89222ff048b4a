"""A PyTorch ``Dataset`` of aligned training windows over a preprocessed dataset.

Each item is ``window`` consecutive frames of one clip with everything aligned to them: the audio
samples and mel frames of the same time span, the landmark / canonical landmark / pose windows, the
decoded crop frames, and a reference frame from the same clip. Frames come from random access
into the clip's mp4 (seek + decode of the window only); each clip's mp4 bytes are written once to a
cache folder next to the dataset so the reader can seek in them.
"""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import torch

from talking_head.toolkit import dataset as schema
from talking_head.toolkit import media
from talking_head.toolkit.audio_features import mel_window

ARRAY_COLUMNS = (schema.LANDMARKS, schema.CANONICAL_LANDMARKS, schema.POSE)
OPEN_READERS = 8  # clips whose video stays open (a file handle and a small index each)


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
        meta = self.rows.select_columns([schema.CLIP_ID, schema.NUM_FRAMES, schema.FPS, schema.SAMPLE_RATE])
        self.clip_ids, self.lengths = meta[schema.CLIP_ID], meta[schema.NUM_FRAMES]
        self.fps, self.sample_rates = meta[schema.FPS], meta[schema.SAMPLE_RATE]
        self.index = [
            (row, start)
            for row, length in enumerate(self.lengths)
            for start in range(0, length - window + 1, self.stride)
        ]
        if not self.index:
            raise ValueError(f"{self.path} [{split}]: no clip has {window} frames")
        self._arrays = self.rows.select_columns([*ARRAY_COLUMNS, schema.MEL, schema.AUDIO]).with_format("numpy")
        self._readers: collections.OrderedDict[int, media.VideoReader] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        row, start = self.index[i]
        stop = start + self.window
        fps, sr = self.fps[row], self.sample_rates[row]
        data = self._arrays[row]
        a0 = int(round(start / fps * sr))
        n_audio = int(round(self.window / fps * sr))
        audio = data[schema.AUDIO][a0 : a0 + n_audio].astype(np.float32) / 32768.0
        item = {
            "clip_id": self.clip_ids[row],
            "start": start,
            "audio": torch.from_numpy(np.pad(audio, (0, n_audio - len(audio)))),
            "mel": torch.from_numpy(mel_window(data[schema.MEL], start, self.window, fps).astype(np.float32)),
        }
        for key in ARRAY_COLUMNS:
            item[key] = torch.from_numpy(np.asarray(data[key][start:stop], dtype=np.float32))
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
