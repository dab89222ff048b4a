"""DreamHead A2L's training windows: landmarks, P-bar and audio contexts read on demand from a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talking_head.baselines.dreamhead.a2l_diffusion import point_indices
from talking_head.baselines.dreamhead.audio_encoder import AudioFrontEnd
from talking_head.baselines.subjects import speaker_means
from talking_head.toolkit import dataset as schema

SPEECH_CACHE = Path("derived") / "a2l_speech_v1"  # per-clip speech features, in the dataset folder


class A2LWindows(torch.utils.data.Dataset):
    """Every window of ``data.window`` frames (every ``data.stride`` frames) of the training clips: landmarks
    (subset), P-bar and audio contexts. Windows with a frame without a face are left out.

    Read on demand, landmark-only (no video is decoded): an item slices its window out of zero-copy views of
    the dataset's memory-mapped meshes and log-mel (:class:`toolkit.windows.ArrowRows`). A speech encoder's
    features are computed once per clip from the stored 16 kHz audio and kept on disk in the dataset folder
    (``derived/a2l_speech_v1/<weights entry, sha256, layer, fps>/``, memory-mapped when read), (T, D) rather than the
    (T, 2r+1, D) contexts. What is held is the window index and one P-bar per speaker, so memory does not grow
    with the dataset. Items equal those of computing every clip's contexts in memory.
    """

    def __init__(self, config: dict, dataset_dir: str | Path, split: str = "train"):
        from talking_head.toolkit.windows import ArrowRows

        self.points = list(point_indices(config["landmarks"]["points"]))
        window, stride = int(config["data"]["window"]), int(config["data"]["stride"])
        fps = float(config["fps"])
        audio = config["audio"]
        self.front_end = AudioFrontEnd(audio["encoder"], fps, int(audio["context_radius"]), audio["weights"],
                                       int(audio["feature_width"]))
        means = speaker_means(dataset_dir)
        rows = schema.load_split(dataset_dir, split)
        self.rows = ArrowRows(rows, (schema.CANONICAL_LANDMARKS, schema.MEL))
        self.means = {speaker: np.ascontiguousarray(mean[self.points], np.float32) for speaker, mean in means.items()}
        self.clips: list[tuple[int, str, str | None]] = []  # (row, speaker, speech feature file or None)
        self.index: list[tuple[int, int]] = []
        self._features: dict[int, np.ndarray] = {}  # memory-mapped speech features, opened per process
        speech = self._speech_folder(Path(dataset_dir), split) if self.front_end.encoder != "mel" else None
        for row, (clip_id, speaker, clip_fps) in enumerate(zip(map(str, rows[schema.CLIP_ID]),
                                                               map(str, rows[schema.SPEAKER]), rows[schema.FPS])):
            if abs(float(clip_fps) - fps) > 1e-3:
                raise ValueError(f"{dataset_dir}: clip {clip_id} is at {float(clip_fps):g} fps, "
                                 f"the config says fps: {fps:g} (preprocess with --fps {fps:g} or change the config)")
            if speaker not in means:
                continue  # no training frames of this speaker, so no P-bar
            canonical = self.rows.view(schema.CANONICAL_LANDMARKS, row)
            frames = len(canonical)
            file = None
            if speech is not None:
                file = str(speech / f"{clip_id}.npy")
                if not Path(file).is_file():
                    self._write_features(rows, row, frames, Path(file))
            good = np.isfinite(canonical).all(axis=(1, 2))
            for start in range(0, frames - window + 1, stride):
                if good[start:start + window].all():
                    self.index.append((len(self.clips), start))
            self.clips.append((row, speaker, file))
        self.window = window

    def _speech_folder(self, dataset_dir: Path, split: str) -> Path:
        facts = self.front_end.extractor().provenance  # loads (and verifies) the speech model
        key = f"{facts['weights_entry']}-{str(facts['sha256'])[:16]}-layer{facts['layer']}-{self.front_end.fps:g}fps"
        return dataset_dir / SPEECH_CACHE / key / split

    def _write_features(self, rows, row: int, frames: int, file: Path) -> None:
        from talking_head.toolkit.fileio import atomic_path

        wav = np.asarray(rows.select_columns([schema.AUDIO]).with_format("numpy")[row][schema.AUDIO])
        features = self.front_end.speech_features(wav.astype(np.float32) / 32768.0, frames)
        file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(file) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(features, np.float32))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        clip_index, start = self.index[i]
        row, speaker, file = self.clips[clip_index]
        stop = start + self.window
        landmarks = np.asarray(self.rows.view(schema.CANONICAL_LANDMARKS, row)[start:stop], np.float32)[:, self.points]
        if file is None:
            audio = self.front_end.mel_window(self.rows.view(schema.MEL, row), start, self.window)
        else:
            if clip_index not in self._features:
                self._features[clip_index] = np.load(file, mmap_mode="r")
            audio = self.front_end.speech_window(self._features[clip_index], start, self.window)
        return {"landmarks": torch.from_numpy(np.ascontiguousarray(landmarks)),
                "mean_landmarks": torch.from_numpy(self.means[speaker]),
                "audio": torch.from_numpy(np.ascontiguousarray(audio, np.float32))}

    def __getstate__(self) -> dict:  # DataLoader workers map the feature files themselves
        return {**self.__dict__, "_features": {}}


def build_dataset(config: dict, dataset_dir: str | Path) -> A2LWindows:
    """The A2L training set (the stage registry's dataset builder)."""
    return A2LWindows(config, dataset_dir, "train")
