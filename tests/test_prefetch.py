"""toolkit.prefetch: items in order, errors at their place, a stopped producer, real overlap of work."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from talking_head.toolkit.media import VideoReader, write_video
from talking_head.toolkit.prefetch import Prefetch


def test_items_in_order_and_errors_at_their_place():
    def source():
        yield from range(5)
        raise RuntimeError("the stream ended early")

    items = Prefetch(source(), depth=2)
    assert [next(items) for _ in range(5)] == list(range(5))
    with pytest.raises(RuntimeError, match="ended early"):
        next(items)
    with pytest.raises(StopIteration):
        next(items)
    assert list(Prefetch(iter(range(100)), depth=3)) == list(range(100))
    with pytest.raises(ValueError, match="depth"):
        Prefetch(iter(()), depth=0)


def test_close_stops_the_producer_before_the_source_is_used_up():
    made = []

    def source():
        for i in range(1000):
            made.append(i)
            yield i

    with Prefetch(source(), depth=2) as items:
        assert next(items) == 0
    settled = len(made)
    time.sleep(0.05)
    assert len(made) == settled <= 4  # nothing made after close; at most the queue plus the item in hand
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_decoding_ahead_gives_the_same_frames(tmp_path):
    rng = np.random.default_rng(0)
    path = write_video(tmp_path / "v.mp4", rng.integers(0, 255, (40, 48, 64, 3), dtype=np.uint8))
    expected = VideoReader(path).read_all()
    reader = VideoReader(path)
    with Prefetch(reader.iter_chunks(7)) as chunks:
        assert np.array_equal(np.concatenate(list(chunks)), expected)
