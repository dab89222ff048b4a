"""MODA's renderer: which renderers a run trains (one per identity) and the frames each trains on.

Identities: the release trains one renderer per identity, and so does ``toolkit train moda --stage
renderer`` unless ``data.speaker`` is ``all``: :func:`identity_runs` plans one run per speaker (``--speaker``,
or ``data.speaker``, or with ``null`` every speaker of the ``data.split`` split), each in
``RUN_DIR/renderer/<speaker>/``; generation draws each clip with its own speaker's renderer
(:mod:`baselines.moda.pipeline`). The release's protocol trains the renderer of each *test* person on the first
80% of their video and tests on the rest: ``data.split: adapt`` reads the test clips' first parts, which
``toolkit preprocess --adapt-fraction 0.8`` cuts (the ``paper`` config; the dataset's test split then holds
the remaining 20%), and ``data.train_fraction: 1.0`` trains on all of them.

Data: one identity (``data.speaker``) of the ``data.split`` split, every clip decoded once and kept in memory at
``resolution`` (:class:`RendererFrames`): the whole frame, or with ``crop.face_scale`` the square around
the clip's face (:mod:`baselines.face_crop`; the tiny config's departure from the release, which renders
the whole 512-px frame: at 64 px a whole 256-px crop leaves the mouth a few pixels wide). With a face
box, :meth:`TemporalRenderer.render` renders the box around the target meshes and pastes it into the
full-resolution reference frame with a feathered edge. Each clip is split in time as in MODA's data preparation
(``--train_val_rate 0.8``): the first ``data.train_fraction`` of its frames train, the rest are the
validation frames (none with 1.0, where the held-out part is the dataset's test split).
Frames without a face are left out.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from talking_head.baselines.face_crop import model_view, to_box
from talking_head.baselines.moda.renderer import ALL_SPEAKERS, _validate, draw_condition, mouth_mask
from talking_head.baselines.moda.torso import clip_torso
from talking_head.toolkit import dataset as schema


class RendererFrames(torch.utils.data.Dataset):
    """The frames of one identity: every clip of the ``data.split`` split whose speaker is ``data.speaker`` (``all``:
    every speaker, one renderer for all of them, each clip with its own reference image; :func:`identity_runs`
    names the speaker of each run), decoded once and kept in memory at ``resolution``: the whole frame or,
    with ``crop.face_scale``, the square of that many times the extent of the clip's median face.

    Each clip's first ``data.train_fraction`` of frames (rounded down) are the ``"train"`` frames, the
    rest the ``"validation"`` frames; frames without a face are left out of both. Items: ``frame``,
    ``condition`` (the drawn mesh + shoulders), ``reference`` (R, R, 3) uint8, ``mouth`` (R, R) uint8 mask,
    ``frame_index`` (the index in the clip), ``clip`` (the clip's position in :attr:`clips`). The reference
    is a frame of the clip's training part: the first with a face (``data.reference: first``) or one
    drawn from (seed, item index), so an index always gives the same item.

    :attr:`clips` holds per clip ``clip_id``, ``frames`` (T, R, R, 3) uint8, ``landmarks`` (T, 478, 3) and
    ``torso`` (T, 18, 3) in model pixels, ``box`` ((x0, y0, side) in the clip's pixels, or None: the whole
    frame), ``train`` and ``validation`` (frame indices with a face) and ``reference`` (the first training
    frame with a face).
    """

    def __init__(self, config: dict, dataset_dir: str | Path, split: str = "train"):
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got {split!r}")
        _validate(config)
        self.config, self.split = config, split
        self.size = size = int(config["resolution"])
        self.seed = int(config.get("seed", 0))
        data = config["data"]
        rows = _training_split(config, dataset_dir)
        speakers = list(rows[schema.SPEAKER])
        if data["speaker"] is None:
            raise ValueError(f"{dataset_dir}: data.speaker is null, which trains one renderer per speaker: name the "
                             f"speaker of this one (toolkit train plans a run per speaker), or use {ALL_SPEAKERS!r}")
        self.speaker = str(data["speaker"])
        if self.speaker != ALL_SPEAKERS and self.speaker not in speakers:
            raise ValueError(f"{dataset_dir}: data.speaker {self.speaker!r} has no clip in the {data['split']} split; "
                             f"speakers: {sorted(set(speakers))}")
        picked = [i for i, s in enumerate(speakers) if self.speaker in (s, ALL_SPEAKERS)]
        all_ids = list(rows[schema.CLIP_ID])
        clip_ids = [all_ids[i] for i in picked]
        torso = clip_torso(dataset_dir, data["split"], clip_ids)
        arrays = rows.select_columns([schema.VIDEO, schema.LANDMARKS]).with_format("numpy")
        self.clips: list[dict] = []
        self.index: list[tuple[int, int]] = []
        for row, clip_id in zip(picked, clip_ids):
            item = arrays[row]
            with schema.open_row_video(item[schema.VIDEO], threads=1) as reader:
                frames = reader.read_all()
            landmarks = np.asarray(item[schema.LANDMARKS], dtype=np.float64)
            if not np.isfinite(landmarks[..., :2]).all(axis=(1, 2)).any():
                continue  # no face at all
            resized, landmarks, box = model_view(frames, landmarks, size, config["crop"]["face_scale"])
            points = to_box(np.asarray(torso[clip_id], dtype=np.float64), box, size, frames.shape[1:3])
            good = np.isfinite(landmarks[..., :2]).all(axis=(1, 2)) & np.isfinite(points[..., :2]).all(axis=(1, 2))
            cut = int(len(frames) * float(data["train_fraction"]))
            train = [t for t in range(cut) if good[t]]
            validation = [t for t in range(cut, len(frames)) if good[t]]
            if not train:
                continue  # no face in the training part: nothing to take a reference from
            clip = {"clip_id": clip_id, "frames": resized, "landmarks": landmarks, "torso": points, "box": box,
                    "train": train, "validation": validation, "reference": train[0]}
            self.index += [(len(self.clips), t) for t in (train if split == "train" else validation)]
            self.clips.append(clip)

    def __len__(self) -> int:
        return len(self.index)

    def reference_of(self, i: int) -> int:
        """The reference frame (index in its clip) of item `i`."""
        clip = self.clips[self.index[i][0]]
        if self.config["data"]["reference"] == "first":
            return clip["reference"]
        from talking_head.baselines.training import derive_seed

        generator = torch.Generator().manual_seed(derive_seed(self.seed, i))
        return clip["train"][int(torch.randint(len(clip["train"]), (1,), generator=generator))]

    def __getitem__(self, i: int) -> dict:
        c, t = self.index[i]
        clip = self.clips[c]
        landmarks = clip["landmarks"][t]
        return {
            "frame": torch.from_numpy(clip["frames"][t]),
            "condition": torch.from_numpy(draw_condition(landmarks[:, :2], clip["torso"][t, :, :2], self.size,
                                                         self.config["draw"])),
            "reference": torch.from_numpy(clip["frames"][self.reference_of(i)]),
            "mouth": torch.from_numpy(mouth_mask(landmarks, self.size)),
            "frame_index": t,
            "clip": c,
        }


def identity_runs(config: dict, dataset_dir: str | Path, speakers: list[str] | None = None) -> list[tuple[str | None, dict]]:
    """The renderers one ``toolkit train moda --stage renderer`` trains, as (identity, config): one per speaker
    of `speakers` (``--speaker``); else ``data.speaker`` ``all`` gives one renderer for everyone (identity
    None), a name that speaker's, and ``null`` one per speaker of the ``data.split`` split (the release's
    protocol)."""
    chosen = config["data"]["speaker"]
    if not speakers:
        if chosen == ALL_SPEAKERS:
            return [(None, config)]
        if chosen is not None:
            speakers = [str(chosen)]
        else:
            speakers = sorted({str(s) for s in _training_split(config, dataset_dir)[schema.SPEAKER]})
    elif ALL_SPEAKERS in speakers:
        raise ValueError(f"--speaker {ALL_SPEAKERS} is not an identity: set data.speaker={ALL_SPEAKERS} for one "
                         "renderer of every speaker")
    runs = []
    for speaker in dict.fromkeys(speakers):  # in the given order, once each
        one = copy.deepcopy(config)
        one["data"]["speaker"] = speaker
        runs.append((speaker, one))
    return runs


def _training_split(config: dict, dataset_dir: str | Path):
    """The dataset split renderers train on (``data.split``), or ValueError saying how to get it."""
    split = str(config["data"]["split"])
    try:
        return schema.load_split(dataset_dir, split)
    except ValueError as err:
        if split != schema.ADAPT_SPLIT:
            raise
        raise ValueError(f"{err}: data.split {schema.ADAPT_SPLIT!r} trains each test person's renderer on the first part of "
                         f"their clips; make the dataset with toolkit preprocess --adapt-fraction 0.8, or set "
                         f"data.split: train") from None


def build_dataset(config: dict, dataset_dir: str | Path) -> RendererFrames:
    """The renderer's training set (the ``"train"`` frames of :class:`RendererFrames`), as the generic
    trainer (:func:`baselines.training.train`) expects."""
    return RendererFrames(config, dataset_dir, split="train")
