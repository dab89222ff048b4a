"""Run an iterator ahead on a background thread: decoding the next frames while the current ones are scored.

FFmpeg decodes and converts frames in C with the GIL released, and the networks that consume them do the
same in torch, so one thread producing and another consuming overlap on separate cores (and keep a GPU fed
while the CPU decodes). Items come out in order, exactly as the iterator yields them; an exception the
iterator raises comes out of ``next()`` at its place in the sequence. ``close()`` (or leaving the ``with``
block) stops the thread and waits for it, so whatever the iterator reads from can be closed afterwards; a
generator is closed on the thread once it stops (its ``finally`` blocks run there).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator, Optional

_END = object()


class Prefetch:
    """``for item in Prefetch(iterator, depth=2)``: up to `depth` items made ahead of the consumer."""

    def __init__(self, source: Iterator[Any], depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, args=(source,), name="prefetch", daemon=True)
        self._thread.start()

    def _put(self, entry: tuple[Any, Optional[BaseException]]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterator[Any]) -> None:
        try:
            for item in source:
                if not self._put((item, None)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # handed to the consumer, raised there
            self._put((_END, exc))
        finally:
            close = getattr(source, "close", None)  # a generator's `finally` (closing its reader) runs now
            if close is not None:
                close()

    def __iter__(self) -> "Prefetch":
        return self

    def __next__(self) -> Any:
        if self._done:
            raise StopIteration
        item, error = self._queue.get()
        if item is _END:
            self._done = True
            self._thread.join()
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop making items and wait for the thread (it finishes the item it is making)."""
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()
        self._done = True

    def __enter__(self) -> "Prefetch":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
