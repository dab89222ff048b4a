"""Quiet by default: which third-party output the toolkit silences, how, and how ``--verbose`` brings it back.

Two kinds of output are not the toolkit's own and say nothing a user can act on:

* **MediaPipe's native log lines.** Its C++ graph (absl logging) and TensorFlow Lite write straight to file
  descriptor 2 while a solution starts and on its first inferences: "INFO: Created TensorFlow Lite XNNPACK
  delegate for CPU.", absl's "WARNING: All log messages before absl::InitializeLog() is called are written to
  STDERR", "W0000 ... inference_feedback_manager.cc:114] Feedback manager requires a model with a single
  signature inference ..." (one or two per solution, in every worker) and "W0000 ...
  landmark_projection_calculator.cc:186] Using NORM_RECT without IMAGE_DIMENSIONS ..." (the first tracked
  face). Python's logging does not reach them, and MediaPipe 0.10.21 honours none of ``GLOG_minloglevel``,
  ``TF_CPP_MIN_LOG_LEVEL`` or ``ABSL_MIN_LOG_LEVEL`` (measured: the same lines with each set to 2 or 3). So
  :func:`native_logs` points fd 2 at a temporary file around the calls that emit them (a solution's creation
  and its first inferences, see ``toolkit/face_mesh.py`` and ``toolkit/face_detector.py``), then puts fd 2
  back and replays whatever else was written meanwhile (the toolkit's own messages, other threads' output)
  minus the native info/warning lines. Native *error* lines (``E...``/``F...``, "ERROR:") are kept. The
  redirect is process-wide while it lasts, so it is held by one thread at a time (a re-entrant lock) and is
  always undone in ``finally``: a Python traceback is printed after the scope has unwound, on the real fd 2.
  Output of a process that dies inside the scope (a native abort) is lost with the temporary file.
  This applies to library users too, not only to the command line; Python ``warnings`` are never touched.
* **Hugging Face progress bars** ("Generating train split", "Saving the dataset", "Map", "Loading dataset
  from disk", hub downloads, transformers' "Loading weights") drawn between the toolkit's own bars (``toolkit/progress.py``: clips/s,
  frames/s, ETA, which stay). :func:`configure` (the ``toolkit`` command's callback) sets
  ``HF_DATASETS_DISABLE_PROGRESS_BARS=1`` and ``HF_HUB_DISABLE_PROGRESS_BARS=1`` unless the user set them,
  and ``DATASETS_VERBOSITY=error``; as environment variables they reach the preprocessing workers (fork
  server, Ray) started afterwards, and libraries already imported are told directly.

``toolkit --verbose ...`` (or ``TOOLKIT_VERBOSE=1`` in the environment, which the option sets for worker
processes) leaves everything as MediaPipe and Hugging Face print it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import Iterator

VERBOSE_ENV = "TOOLKIT_VERBOSE"

# absl/glog info and warning lines ("W0000 00:00:1796629742.496960    8395 file.cc:114] ...", also with a real
# MMDD date) and TensorFlow Lite's minimal logging ("INFO: ...", "WARNING: ..." at a line start; absl's
# pre-init notice has the same form), each up to its newline. The glog form and the two known notices are
# also found after text without a newline (a live progress bar leaves the cursor at the end of its line).
# Python's logging ("WARNING:root:...") has no space after the colon and is not matched.
NATIVE_LINE = re.compile(
    rb"(?:^(?:INFO|WARNING): |[IW]\d{4} [\d:.]+\s+\d+ [^\s\]]+:\d+\] "
    rb"|INFO: Created TensorFlow Lite|WARNING: All log messages before absl::InitializeLog)[^\n]*\n?",
    re.MULTILINE,
)

# What configure() sets for Hugging Face libraries when quiet (only where the user has not set them).
_HF_QUIET_ENV = {"HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
                 "DATASETS_VERBOSITY": "error"}
_set_here: set[str] = set()  # the variables configure() set, so that --verbose can take them back

_lock = threading.RLock()
_depth = 0


def verbose() -> bool:
    """Whether third-party output is shown as is (``--verbose``, or ``TOOLKIT_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def filter_native(data: bytes) -> bytes:
    """`data` without MediaPipe / TensorFlow Lite / absl info and warning lines."""
    def drop(m: re.Match) -> bytes:
        # A line found after other text (a progress bar's) keeps its newline when more output follows, so
        # that output does not join the bar's line.
        mid_line = m.start() > 0 and data[m.start() - 1:m.start()] != b"\n"
        rest = data[m.end():]
        if mid_line and m.group().endswith(b"\n") and rest and not NATIVE_LINE.match(data, m.end()):
            return b"\n"
        return b""

    return NATIVE_LINE.sub(drop, data)


@contextlib.contextmanager
def native_logs() -> Iterator[None]:
    """Drop native info/warning lines written to fd 2 inside the block (nothing happens when verbose).

    Wrap the native calls that log (creating a MediaPipe solution, its first inferences): whatever else
    reaches fd 2 meanwhile is written out when the block ends. Nested and concurrent uses are serialised.
    """
    global _depth
    if verbose():
        yield
        return
    with _lock:
        if _depth:  # already redirected by an outer block of this thread
            _depth += 1
            try:
                yield
            finally:
                _depth -= 1
            return
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError, AttributeError):  # no usable fd 2 (a daemon, a closed stderr)
            yield
            return
        capture = tempfile.TemporaryFile()
        try:
            os.dup2(capture.fileno(), 2)
            _depth = 1
            try:
                yield
            finally:
                _depth = 0
                with contextlib.suppress(Exception):
                    sys.stderr.flush()
                os.dup2(saved, 2)
            capture.seek(0)
            rest = filter_native(capture.read())
            if rest:
                os.write(2, rest)
        finally:
            os.close(saved)
            capture.close()


def configure(verbose_: bool = False) -> None:
    """Apply the toolkit's policy for this process and the workers it starts (the ``toolkit`` callback)."""
    if verbose_:
        os.environ[VERBOSE_ENV] = "1"
        for name in list(_set_here):
            os.environ.pop(name, None)
        _set_here.clear()
    else:
        os.environ.pop(VERBOSE_ENV, None)
        for name, value in _HF_QUIET_ENV.items():
            if name not in os.environ:
                os.environ[name] = value
                _set_here.add(name)
    _tell_imported_libraries(quiet=not verbose_)


def _tell_imported_libraries(quiet: bool) -> None:
    """Libraries read those variables on import; ones already imported (an in-process caller) are told."""
    def user_decides(name: str) -> bool:
        return name in os.environ and name not in _set_here

    if "datasets" in sys.modules:
        import datasets

        if not user_decides("HF_DATASETS_DISABLE_PROGRESS_BARS"):
            # The env var is read once, at import: set the switch itself. (`datasets.utils.tqdm` is the class of
            # that name; the switch lives in the module of the same name.)
            sys.modules["datasets.utils.tqdm"]._hf_datasets_progress_bars_disabled = quiet
        if not user_decides("DATASETS_VERBOSITY"):
            datasets.logging.set_verbosity(datasets.logging.ERROR if quiet else datasets.logging.WARNING)
    if "huggingface_hub" in sys.modules and not user_decides("HF_HUB_DISABLE_PROGRESS_BARS"):
        import warnings

        from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

        with warnings.catch_warnings(), contextlib.suppress(Exception):
            warnings.simplefilter("ignore")  # "the environment variable has priority": read at its import
            (disable_progress_bars if quiet else enable_progress_bars)()
    if "transformers" in sys.modules and not user_decides("HF_HUB_DISABLE_PROGRESS_BARS"):
        from transformers.utils import logging as transformers_logging  # reads the hub's switch at its import

        (transformers_logging.disable_progress_bar if quiet else transformers_logging.enable_progress_bar)()
