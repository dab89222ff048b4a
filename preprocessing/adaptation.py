"""Per-identity adaptation splits: each test clip cut in time into an ``adapt`` part and a ``test`` part.

Some methods fit a part of the model to each test person before testing. MODA's renderer is the
example: one renderer per identity, trained on the first 80% of that person's video and tested on the
remaining 20%. With ``toolkit preprocess --adapt-fraction 0.8`` every clip of the test split becomes two
clips, cut on the output frame grid::

    <clip>-adapt   split "adapt": the first 80% of the clip's frames (what a per-identity model may see)
    <clip>         split "test":  the rest, what is generated and scored

Both parts are decoded and encoded from the source, as any clip is (no second encoding generation). The
train split is untouched, so models trained across identities still never see a test person; only a
stage that asks for the ``adapt`` split (``data.split: adapt``) does. The split of every source is
fixed here, before any clip is processed, with the same rule the dataset would apply afterwards
(:func:`preprocessing.storage.assign_splits`), so that which clips are cut never depends on which
clips fail.
"""

from __future__ import annotations

import dataclasses
import math

from talking_head.preprocessing.clip import ClipSource
from talking_head.preprocessing.storage import ADAPT_SPLIT, assign_splits

ADAPT_SUFFIX = "-adapt"  # clip id of a test clip's adaptation part


def cut_for_adaptation(sources: list[ClipSource], fraction: float, fps: float,
                       test_fraction: float = 0.1) -> tuple[list[ClipSource], list[str]]:
    """`sources` with every test clip replaced by its ``adapt`` part (the first `fraction` of its frames at
    `fps`) and its ``test`` part (the rest); every other source gets its split set explicitly. Returns
    (sources, problems): a test clip whose length cannot be known without decoding (no end time and no
    container duration) or that is too short to give both parts at least one frame is left out, with a
    problem line naming it."""
    from talking_head.toolkit import media

    if not 0 < fraction < 1:
        raise ValueError(f"the adaptation fraction must be between 0 and 1, got {fraction}")
    splits = assign_splits([{"clip_id": s.clip_id, "speaker": s.speaker, "split": s.split} for s in sources],
                           test_fraction)
    out: list[ClipSource] = []
    problems: list[str] = []
    for source in sources:
        split = splits[source.clip_id]
        if split != "test":
            out.append(dataclasses.replace(source, split=split))
            continue
        start = source.start or 0.0
        end = source.end
        if end is None:
            try:
                end = media.probe(source.path).duration
            except media.MediaError as err:
                problems.append(f"{source.clip_id}: {err}; left out of the adaptation split")
                continue
            if end is None:
                problems.append(f"{source.clip_id}: {source.path} gives no duration, so it cannot be cut into "
                                "adaptation and test parts; left out")
                continue
        first, stop = int(round(start * fps)), int(round(end * fps))  # the pipeline's frame grid
        cut = first + math.floor(fraction * (stop - first))
        if not first < cut < stop:
            problems.append(f"{source.clip_id}: {stop - first} frame(s) at {fps:g} fps are too few to cut into "
                            f"adaptation ({fraction:.0%}) and test parts; left out")
            continue
        out.append(dataclasses.replace(source, clip_id=source.clip_id + ADAPT_SUFFIX, end=cut / fps,
                                       split=ADAPT_SPLIT, extra={**source.extra, "adapt_of": source.clip_id}))
        out.append(dataclasses.replace(source, start=cut / fps, split="test",
                                       extra={**source.extra, "adapted_on": source.clip_id + ADAPT_SUFFIX}))
    return out, problems
