"""ffmpeg's -r rule: which source frame each output frame of a constant-rate conversion shows."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from talking_head.toolkit.media.constants import AV_TIME_BASE


def _rescale(a: int, b: int, c: int) -> int:
    """av_rescale_rnd(a, b, c, AV_ROUND_NEAR_INF): a*b/c rounded half away from zero."""
    if a < 0:
        return -_rescale(-a, b, c)
    return (a * b + c // 2) // c


def rescale_q(a: int, src: Fraction, dst: Fraction) -> int:
    """av_rescale_q: convert a timestamp from time base ``src`` to ``dst``."""
    return _rescale(a, src.numerator * dst.denominator, dst.numerator * src.denominator)


def _llrintf(x: float) -> int:
    """C llrintf: round through single precision, ties to even (fftools uses the float variant)."""
    return int(np.rint(np.float32(x)))


def ffmpeg_cfr_indices(
    pts: np.ndarray,
    durations: np.ndarray,
    time_base: Fraction,
    fps: Fraction,
    start_time: int = 0,
    keep_first_pts: bool = False,
) -> np.ndarray:
    """Which source frame each output frame of ``ffmpeg -i in -r fps out.mp4`` shows.

    ``pts``/``durations`` are the decoded frames in presentation order, in ``time_base`` units
    (durations as ffmpeg's filter graph sees them); ``start_time`` is the container start time in
    microseconds (ffmpeg shifts all inputs so that the file starts at 0); ``keep_first_pts`` selects
    ffmpeg's "vscfr" mode, which it uses when the input file has a single stream.

    Port of fftools ``video_sync_process`` (CFR/VSCFR) and the end-of-stream flush in
    ``fg_output_frame``. Returns a non-decreasing int array of indices into ``pts``.
    """
    tb_out = 1 / fps  # the encoder time base: one tick per output frame
    # ffmpeg computes the input position in ticks with 16 extra bits of precision (as a double).
    extra_bits = min(max(29 - (tb_out.denominator.bit_length() - 1), 0), 16)
    tb_fine = Fraction(tb_out.numerator, tb_out.denominator << extra_bits)
    ts_offset = rescale_q(-start_time, Fraction(1, AV_TIME_BASE), time_base)
    q_in = time_base.numerator / time_base.denominator
    q_out = tb_out.numerator / tb_out.denominator

    out: list[int] = []
    next_pts = 0  # position (in ticks) of the next output frame
    prev_hist = [0, 0, 0]  # how often the previous frame was repeated, for the last 3 inputs
    for i in range(len(pts)):
        duration = int(durations[i]) * q_in / q_out
        sync_ipts = rescale_q(int(pts[i]) + ts_offset, time_base, tb_fine) / (1 << extra_bits)
        if sync_ipts != float(np.rint(sync_ipts)):  # fftools nudges off exact midpoints
            sync_ipts += (1.0 if sync_ipts > 0 else -1.0) / (1 << 17)
        delta0 = sync_ipts - next_pts  # drift of this frame from where the output is
        delta = delta0 + duration
        nb_prev, nb = 0, 1  # repeats of the previous frame, total frames emitted now
        if delta0 < 0 < delta:  # frame starts in the past: clip it
            sync_ipts = next_pts
            duration += delta0
            delta0 = 0.0
        if keep_first_pts and not out and delta0 >= 0.5:  # vscfr: do not pad the start
            delta = duration
            delta0 = 0.0
            next_pts = int(np.rint(sync_ipts))
        if delta < -1.1:
            nb = 0  # too late: drop
        elif delta > 1.1:
            nb = _llrintf(delta)  # covers several ticks: duplicate
            if delta0 > 1.1:
                nb_prev = _llrintf(delta0 - 0.6)  # gap before it: repeat the previous frame
        prev_hist = [nb_prev] + prev_hist[:2]
        for k in range(nb):
            out.append(i - 1 if (k < nb_prev and i > 0) else i)
        next_pts += nb
    if len(pts):
        # At EOF ffmpeg repeats the last frame by the median of the last three "previous" repeats.
        out.extend([len(pts) - 1] * sorted(prev_hist)[1])
    return np.asarray(out, dtype=np.int64)
