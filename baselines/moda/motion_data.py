"""The motion stage's inputs: :class:`AudioInput` (what the audio head reads of a clip) and :class:`MotionWindows`
(the training windows), split from :mod:`baselines.moda.moda_net` so that the network module stays about the
network. ``moda_net`` re-exports both and ``build_dataset``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talking_head.baselines.audio import AudioFrontEnd
from talking_head.baselines.moda.data import point_sets, speaker_means
from talking_head.baselines.moda.release import fixes
from talking_head.toolkit.audio_features import SAMPLE_RATE


class AudioInput:
    """What the audio head reads: mel contexts (T, L, 80) per frame, or for wav2vec2 the waveform itself
    (num_frames / fps seconds, zero-padded); ``window`` cuts the frames start..start+length out of it."""

    def __init__(self, config: dict):
        self.encoder, self.fps = config["audio"]["encoder"], float(config["fps"])
        self.front_end = AudioFrontEnd("mel", self.fps, int(config["audio"]["context_radius"]))

    def __call__(self, wav: np.ndarray, num_frames: int, mel: np.ndarray | None = None) -> np.ndarray:
        if self.encoder == "mel":
            return self.front_end(wav, num_frames, mel=mel)
        return self.window(wav, 0, num_frames)

    def window(self, audio: np.ndarray, start: int, length: int) -> np.ndarray:
        if self.encoder == "mel":
            return audio[start:start + length]
        per_frame = SAMPLE_RATE / self.fps
        a0, size = int(round(start * per_frame)), int(round(length * per_frame))
        return np.pad(audio[a0:a0 + size], (0, max(0, size - len(audio[a0:a0 + size])))).astype(np.float32)

    def clip_window(self, pcm: np.ndarray, mel: np.ndarray, num_frames: int, start: int, length: int) -> np.ndarray:
        """``window(self(wav, num_frames, mel), start, length)`` computed from the window's part alone: `pcm`
        is the clip's int16 audio (the dataset's), `mel` its log-mel; the same values, bit for bit."""
        if self.encoder == "mel":
            return self.front_end.mel_window(mel, start, length)
        per_frame = SAMPLE_RATE / self.fps
        whole = pcm[:int(round(num_frames * per_frame))]  # what __call__ keeps of the clip
        a0, size = int(round(start * per_frame)), int(round(length * per_frame))
        part = whole[a0:a0 + size].astype(np.float32) / 32768.0
        return np.pad(part, (0, size - len(part))).astype(np.float32)



class MotionWindows(torch.utils.data.Dataset):
    """Windows of ``data.window`` frames every ``data.stride`` frames of the training clips (frames with a
    face only): audio input, the speaker's mean mesh, and the four targets in target units.

    Read on demand: an item slices its window out of zero-copy views of the dataset's memory-mapped arrays
    (:class:`toolkit.windows.ArrowRows`: meshes, poses, audio, mel) and the cached shoulder points; what is
    held is the window index and one mean per speaker (per clip with ``fixes.means: clip``), so memory does not
    grow with the dataset."""

    def __init__(self, config: dict, dataset_dir: str | Path, split: str = "train"):
        from talking_head.baselines.moda.torso import clip_torso
        from talking_head.toolkit import dataset as schema
        from talking_head.toolkit.windows import ArrowRows

        self.reader = reader = AudioInput(config)
        self.window = window = int(config["data"]["window"])
        stride = int(config["data"]["stride"])
        targets = config["targets"]
        self.units = np.asarray(targets["head_units"], np.float32)
        self.mesh_scale, self.torso_scale = float(targets["mesh_scale"]), float(targets["torso_scale"])
        sets = point_sets()
        self.lips, self.eyes = list(sets["lips"]), list(sets["eyes"])
        # fixes.means: each speaker's means over the train split, or (the release's) each clip's own
        self.by_clip = fixes(config)["means"] == "clip"
        self.means = speaker_means(dataset_dir, split if self.by_clip else "train", torso=True, by_clip=self.by_clip)
        rows = schema.load_split(dataset_dir, split)
        self.rows = ArrowRows(rows, (schema.CANONICAL_LANDMARKS, schema.POSE, schema.AUDIO, schema.MEL))
        self.torso = clip_torso(dataset_dir, split)
        self.clips: list[tuple[str, str, float]] = []  # (clip id, speaker, torso_valid) per row used
        index = []  # (row, start, clip) of every window
        for row, (clip_id, speaker, fps) in enumerate(zip(map(str, rows[schema.CLIP_ID]), map(str, rows[schema.SPEAKER]),
                                                          rows[schema.FPS])):
            if abs(float(fps) - reader.fps) > 1e-3:
                raise ValueError(f"{dataset_dir}: clip {clip_id} is at {float(fps):g} fps, the config says "
                                 f"fps: {reader.fps:g} (preprocess with --fps {reader.fps:g} or change the config)")
            if (clip_id if self.by_clip else speaker) not in self.means:
                continue
            canonical, pose, torso = (self.rows.view(schema.CANONICAL_LANDMARKS, row), self.rows.view(schema.POSE, row),
                                      self.torso[clip_id])
            good = (np.isfinite(canonical).all(axis=(1, 2)) & np.isfinite(pose).all(axis=1)
                    & np.isfinite(torso).all(axis=(1, 2)))
            torso_valid = float(np.nanmean(np.nanstd(torso[..., :2], axis=0)) > 0.5)  # MODA's rule
            starts = [t for t in range(0, len(good) - window + 1, stride) if good[t:t + window].all()]
            index += [(row, t, len(self.clips)) for t in starts]
            self.clips.append((clip_id, speaker, torso_valid))
        self.index = np.asarray(index, np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        from talking_head.toolkit import dataset as schema

        row, start, c = (int(v) for v in self.index[i])
        clip_id, speaker, torso_valid = self.clips[c]
        subject, stop = self.means[clip_id if self.by_clip else speaker], start + self.window
        canonical = np.asarray(self.rows.view(schema.CANONICAL_LANDMARKS, row)[start:stop], np.float32)
        pose = np.asarray(self.rows.view(schema.POSE, row)[start:stop], np.float32)
        arrays = {
            "lips": (canonical[:, self.lips] - subject.mesh[self.lips]) / self.mesh_scale,
            "eyes": (canonical[:, self.eyes] - subject.mesh[self.eyes]) / self.mesh_scale,
            "head": (pose - subject.pose) / self.units,
            "torso": (self.torso[clip_id][start:stop] - subject.torso) / self.torso_scale,
        }
        item = {name: torch.from_numpy(np.ascontiguousarray(a, np.float32)) for name, a in arrays.items()}
        num_frames = len(self.rows.view(schema.POSE, row))
        audio = self.reader.clip_window(self.rows.view(schema.AUDIO, row), self.rows.view(schema.MEL, row), num_frames,
                                        start, self.window)
        item["audio"] = torch.from_numpy(np.ascontiguousarray(audio))
        item["mesh"] = torch.from_numpy(subject.mesh)
        item["torso_valid"] = torch.tensor(torso_valid)
        return item


def build_dataset(config: dict, dataset_dir: str | Path) -> MotionWindows:
    """The motion stage's training set (the stage registry's dataset builder)."""
    return MotionWindows(config, dataset_dir, "train")
