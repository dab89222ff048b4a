"""Every registered metric follows the contract of metrics.base.Metric, fed the way the runner feeds it."""

from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import pytest
import torch

import weights_factory as factory
from talking_head.metrics import registry
from talking_head.metrics.base import INPUTS, Chunk, Metric, VideoInfo, VideoPair
from talking_head.metrics.lse import CROP_SIZE
from talking_head.metrics.results import plain
from talking_head.toolkit import face_mesh, media
from talking_head.toolkit.sample import generate


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Two pairs (a blurred copy against its clip, and a clip against itself), decoded into the runner's
    chunks with MediaPipe meshes; the blurred pair is named as a sample so cross-sample diversity sees it."""
    root = tmp_path_factory.mktemp("contract")
    clips = generate(root / "ref", speakers=1, clips=2, seconds=1.2, seed=5, show_progress=False)
    blurred = root / "gen" / "a.sample0.mp4"
    blurred.parent.mkdir()
    frames = media.read_video(clips[0].video)
    media.write_video(blurred, np.stack([cv2.GaussianBlur(f, (0, 0), 3) for f in frames]), fps=25,
                      audio=media.read_audio(clips[0].video))
    out = []
    for pair in (VideoPair("a.sample0", blurred, clips[0].video, sample=0), VideoPair("b", clips[1].video, clips[1].video)):
        gen, ref = media.read_video(pair.generated), media.read_video(pair.reference)
        n = min(len(gen), len(ref))
        meshes = []
        for side in (gen[:n], ref[:n]):
            detector = face_mesh.FaceMeshDetector(video=True)
            found = np.full((n, face_mesh.NUM_POINTS, 3), np.nan, np.float32)
            for i, frame in enumerate(side):
                mesh = detector.detect(frame)
                if mesh is not None:
                    found[i] = mesh
            detector.close()
            meshes.append(found)
        chunks = [Chunk(gen[s:s + 16], ref[s:s + 16], gen[s:s + 16], meshes[0][s:s + 16], meshes[1][s:s + 16])
                  for s in range(0, n, 16)]
        out.append((VideoInfo(pair, fps=25.0, frames_used=n), chunks))
    return root, clips, out


@pytest.fixture(scope="module")
def all_weights(videos):
    """Random weights under every registered metric's weight names (module-wide, in a private cache)."""
    root, clips, _ = videos
    frames = media.read_video(clips[0].video)
    audio = media.read_audio(clips[0].video, dtype="int16")
    crops = np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TORCH_HOME", str(root / "torch"))
        patch.setenv("TOOLKIT_WEIGHTS_DIR", str(root / "weights"))
        patch.setenv("TOOLKIT_CACHE_DIR", str(root / "toolkit-cache"))
        factory.place(patch, "fid-inception", factory.fid_inception(frames[::4]))
        factory.place(patch, "syncnet", factory.syncnet(crops, audio))
        factory.place(patch, "lpips-alexnet", factory.alexnet())
        factory.place(patch, "arcface-r100", factory.arcface())
        factory.place(patch, "niqe-pristine", arrays=factory.niqe_pristine(frames[::10]))
        small = torch.from_numpy(np.stack([cv2.resize(f, (224, 224), interpolation=cv2.INTER_AREA)
                                           for f in frames[:16]])).float()
        factory.place(patch, "deep3dfacerecon", factory.deep3dfacerecon(small[:4].permute(0, 3, 1, 2) / 255))
        clips = (small.permute(3, 0, 1, 2)[None] / 127.5 - 1)  # (1, 3, 16, 224, 224)
        factory.place(patch, "i3d-kinetics400", factory.i3d_kinetics400(torch.cat([clips, clips.flip(2)])))
        factory.pin_to_own_digest(patch, "i3d-torchscript", factory.i3d_torchscript(
            torch.cat([clips, clips.flip(2)]), root / "made" / "i3d_torchscript.pt"))
        yield


def _run(metric: Metric, videos) -> list[dict]:
    rows = []
    for video, chunks in videos:
        assert metric.start_video(video) is None
        for chunk in chunks:
            assert metric.update(chunk) is None
        row = metric.end_video()
        assert isinstance(row, dict)
        assert all(isinstance(v, (int, float, str)) for v in row.values()), row  # one per_video.csv cell each
        rows.append(row)
    return rows


# The metrics that push every 512-px frame through a network or a full-resolution filter, three times, see only
# the first HEAVY_FRAMES frames of each video (in chunks of 4, so a discarded video still stops half-way).
HEAVY = {"fid", "kid", "csim", "lpips", "psnr_ssim", "efid"}
HEAVY_FRAMES = 8


def _first_frames(pairs, count: int = HEAVY_FRAMES, size: int = 4):
    """The same pairs cut to their first `count` frames, re-chunked by `size`."""
    short = []
    for video, chunks in pairs:
        fields = {name: np.concatenate([getattr(c, name) for c in chunks])[:count]
                  for name in ("generated", "reference", "fitted", "generated_meshes", "reference_meshes")}
        short.append((dataclasses.replace(video, frames_used=count),
                      [Chunk(**{k: v[s:s + size] for k, v in fields.items()}) for s in range(0, count, size)]))
    return short


@pytest.mark.filterwarnings("ignore::UserWarning")  # FID on 16 frames warns that it is biased; expected here
@pytest.mark.parametrize("name", list(registry.REGISTRY))
def test_registered_metric_follows_the_contract(name, videos, all_weights):
    _, _, pairs = videos
    if name in HEAVY:
        pairs = _first_frames(pairs)
    entry = registry.REGISTRY[name]
    metric = entry.load()(device="cpu", **entry.defaults)
    assert isinstance(metric, Metric) and metric.name == name and metric.direction == entry.direction
    assert metric.consumes and metric.consumes <= set(INPUTS)
    rows = _run(metric, pairs)
    result = metric.compute()
    assert isinstance(result, dict) and result
    json.dumps(plain(result))
    assert isinstance(metric.config(), dict) and isinstance(metric.weights_provenance(), dict)
    json.dumps(plain(metric.config()))
    for column in entry.columns:
        assert column.key in result, f"{name} declares column {column.id} but compute() has no {column.key!r}"
    if name not in ("fid", "kid", "diversity"):  # pooled over all frames / per clip: no per-video value
        assert all(rows), f"{name} gave no per-video value"

    # A video that fails half-way leaves nothing behind.
    video, chunks = pairs[0]
    metric.start_video(video)
    for chunk in chunks[:1]:
        metric.update(chunk)
    metric.discard_video()
    assert plain(metric.compute()) == plain(result)

    # reset() forgets every video: the same videos again give the same numbers.
    metric.reset()
    assert plain(_run(metric, pairs)) == plain(rows)
    assert plain(metric.compute()) == plain(result)
