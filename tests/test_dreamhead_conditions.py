"""DreamHead's test-time conditions (baselines/dreamhead/conditions.py): the dubbing setting masks frame i and
draws into it at frame i's head pose, one-shot keeps the reference frame and its pose, the identity mesh
choices, and how generation and the leaderboard name the setting that ran.

Untrained tiny-config models on synthetic frames (noise images, the canonical face placed by a moving head
pose): these tests check which images and meshes condition the model, not the pictures it draws. What
generation.json records, with the clip read from its video, is checked end to end in
tests/test_dreamhead_cli.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talking_head.baselines import generation
from talking_head.baselines.dreamhead import load_config
from talking_head.baselines.dreamhead.a2l_diffusion import A2LDiffusion
from talking_head.baselines.dreamhead.conditions import box_masks, lower_face_boxes, union_boxes
from talking_head.baselines.dreamhead.l2i_diffusion import L2IDiffusion
from talking_head.baselines.dreamhead.pipeline import DreamHeadPipeline
from talking_head.baselines.face_crop import crop_square, face_crop_box, images_to_model, to_box
from talking_head.baselines.pipeline import Clip
from talking_head.baselines.reference import Reference
from talking_head.leaderboards.runs import default_label, run_key
from talking_head.toolkit import pose as pose_fit

SIZE, FRAMES = 256, 26  # 26 frames at 25 fps: just over one A2L window of the tiny config


@pytest.fixture(scope="module")
def scene():
    """A clip of noise frames whose face (the canonical mesh) turns and moves, and a separate reference."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    face = pose_fit.load_canonical_face().astype(np.float32)
    poses = np.array([[k - 12, 0.5 * k, 0, 120 + k, 130 - 0.5 * k, 0, 0.55] for k in range(FRAMES)], np.float32)
    canonical = np.repeat(face[None], FRAMES, 0) + rng.normal(0, 1, (FRAMES, 478, 3)).astype(np.float32)
    landmarks = pose_fit.to_frame(canonical, poses).astype(np.float32)
    landmarks[5] = np.nan  # a frame without a face: its mask is the generated landmarks' box alone
    frames = rng.integers(16, 240, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    ref_pose = np.array([3, -2, 0, 128, 128, 0, 0.55], np.float32)
    reference = Reference(frame=rng.integers(16, 240, (SIZE, SIZE, 3), dtype=np.uint8),
                          landmarks=pose_fit.to_frame(face[None], ref_pose[None])[0].astype(np.float32),
                          pose=ref_pose, canonical=face, source="synthetic")
    clip = Clip(poses=poses, landmarks=landmarks, canonical=canonical,
                frames=lambda n: (frames[k:k + n].copy() for k in range(0, FRAMES, n)))
    l2i = L2IDiffusion.from_config(load_config("tiny", "l2i")).eval()
    a2l = A2LDiffusion.from_config(load_config("tiny", "a2l")).eval()
    wav = rng.normal(0, 0.1, int(16000 * FRAMES / 25)).astype(np.float32)
    return {"frames": frames, "clip": clip, "reference": reference, "pipeline": DreamHeadPipeline(a2l, l2i),
            "l2i": l2i, "wav": wav}


def spy(monkeypatch, obj, name: str) -> list:
    """Record every call of obj.name (args, kwargs), then run it."""
    calls, original = [], getattr(obj, name)

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, recorded)
    return calls


def masked_conditions(calls: list) -> torch.Tensor:
    """I_mask of every output frame as the UNet got it (the tiny config is pixel space: E is the identity)."""
    return torch.cat([args[1][:, :3] for args, _ in calls])


def test_dubbing_masks_frame_i_and_draws_into_it(scene, monkeypatch):
    l2i, frames, clip, reference = scene["l2i"], scene["frames"], scene["clip"], scene["reference"]
    targets = pose_fit.to_frame(clip.canonical[:6] * 0.98 + 5, clip.poses[:6]).astype(np.float32)  # "generated"
    calls = spy(monkeypatch, l2i, "_denoise")
    # chunks of 4 frames while L2I denoises 25 at a time: frames are fed as needed, never the whole clip
    out = l2i.generate_frames(reference.frame, targets, reference_landmarks=reference.landmarks,
                              num_inference_steps=1, frames=clip.frames(4), frame_landmarks=clip.landmarks)
    seen = masked_conditions(calls)
    assert seen.shape[0] == 6 and out.shape == (6, SIZE, SIZE, 3)
    # The same mask as training (lower_face_boxes of the frame's own landmarks), widened to the generated mouth.
    own = clip.landmarks[:6, :, :2]
    box = face_crop_box(np.concatenate([reference.landmarks[None, :, :2], targets[..., :2], own]), 1.3)
    view = lambda lm: to_box(lm, box, l2i.resolution, (SIZE, SIZE))  # noqa: E731
    margin = l2i.config["mask"]["margin"]
    mine, theirs = lower_face_boxes(view(targets[..., :2]), margin), lower_face_boxes(view(own), margin)
    theirs[5] = mine[5]  # frame 5 has no face
    mask = box_masks(union_boxes(mine, theirs), l2i.resolution)
    expected = images_to_model(torch.from_numpy(crop_square(frames[:6], box).copy()), l2i.resolution) * (1 - mask) - mask
    torch.testing.assert_close(seen, expected)
    assert (mask[1] != mask[4]).any()  # the box follows each frame's head
    assert (seen[1] - seen[4]).abs().mean() > 0.1  # each output frame sees its own frame
    top = int(np.floor(np.nanmin([lower_face_boxes(targets, margin)[:, 1], lower_face_boxes(own, margin)[:, 1]])))
    above = top - 24  # beyond the feathered edge (grown 2 sigma, blurred: 5 sigma of 0.02 x the 195-px crop)
    np.testing.assert_array_equal(out[:, :above], frames[:6, :above])  # pasted into frame i, not the reference


def test_one_shot_masks_the_reference_for_every_frame(scene, monkeypatch):
    l2i, clip, reference = scene["l2i"], scene["clip"], scene["reference"]
    targets = pose_fit.to_frame(clip.canonical[:3], np.repeat(reference.pose[None], 3, 0)).astype(np.float32)
    calls = spy(monkeypatch, l2i, "_denoise")
    out = l2i.generate_frames(reference.frame, targets, reference_landmarks=reference.landmarks, num_inference_steps=1)
    seen = masked_conditions(calls)
    box = face_crop_box(np.concatenate([reference.landmarks[None, :, :2], targets[..., :2]]), 1.3)
    inside = seen == -1
    view = images_to_model(torch.from_numpy(crop_square(reference.frame[None], box).copy()), l2i.resolution)
    torch.testing.assert_close(seen[~inside], view.expand_as(seen)[~inside])
    np.testing.assert_array_equal(out[:, :40], np.repeat(reference.frame[None, :40], 3, 0))


def test_the_pipeline_follows_the_setting(scene, monkeypatch):
    pipeline, clip, reference, wav = scene["pipeline"], scene["clip"], scene["reference"], scene["wav"]
    render = spy(monkeypatch, pipeline.l2i, "generate_frames")
    common = dict(num_frames=FRAMES, a2l_steps=2, l2i_steps=1)
    dub = pipeline.generate(wav, reference, clip=clip, **common)[0]  # the default with a clip
    np.testing.assert_allclose(dub.landmarks, pose_fit.to_frame(dub.canonical, clip.poses), atol=1e-3)
    assert render[-1][1]["frames"] is not None and render[-1][1]["frame_landmarks"] is clip.landmarks
    one_shot = pipeline.generate(wav, reference, clip=clip, conditions={"setting": "one_shot",
                                                                        "identity": "reference_frame"}, **common)[0]
    held = np.repeat(reference.pose[None], FRAMES, 0)
    np.testing.assert_allclose(one_shot.landmarks, pose_fit.to_frame(one_shot.canonical, held), atol=1e-3)
    assert render[-1][1].get("frames") is None
    # one_shot through the conditions is what the pipeline did before they existed: the same frames
    np.testing.assert_array_equal(one_shot.frames, pipeline(wav, reference, **common).frames)
    assert np.abs(dub.frames.astype(int) - one_shot.frames).mean() > 10  # other frames under the masks and around
    with pytest.raises(ValueError, match="setting=dubbing is not one of"):
        pipeline.generate(wav, reference, conditions={"setting": "dubbing"}, **common)  # no clip (--audio)


def test_identity_mesh_choices(scene, monkeypatch):
    pipeline, clip, reference, wav = scene["pipeline"], scene["clip"], scene["reference"], scene["wav"]
    a2l = spy(monkeypatch, pipeline.a2l, "generate")
    speaker = reference.canonical + 3
    for identity, expected in [("clip_mean", clip.canonical.mean(0)), ("reference_frame", reference.canonical),
                               ("train_mean", speaker)]:
        pipeline.generate(wav, reference, clip=clip, speaker=speaker, conditions={"identity": identity},
                          num_frames=FRAMES, a2l_steps=1, landmarks_only=True)
        np.testing.assert_allclose(a2l[-1][0][1], expected, atol=1e-4, err_msg=identity)
    with pytest.raises(ValueError, match="identity=train_mean needs the speaker's training clips"):
        pipeline.generate(wav, reference, clip=clip, conditions={"identity": "train_mean"}, num_frames=FRAMES,
                          landmarks_only=True)


def test_generation_resolves_and_labels_the_conditions():
    resolve = generation.resolve_conditions
    assert resolve(DreamHeadPipeline, None, clip=True, model="dreamhead") == {"setting": "dubbing",
                                                                              "identity": "clip_mean"}
    assert resolve(DreamHeadPipeline, None, clip=False, model="dreamhead") == {"setting": "one_shot",
                                                                               "identity": "reference_frame"}
    assert resolve(DreamHeadPipeline, {"setting": "one_shot"}, clip=True, model="dreamhead")["setting"] == "one_shot"
    with pytest.raises(generation.GenerationError, match="setting=dubbing needs a dataset clip"):
        resolve(DreamHeadPipeline, {"setting": "dubbing"}, clip=False, model="dreamhead")
    with pytest.raises(generation.GenerationError, match="setting must be one of dubbing, one_shot"):
        resolve(DreamHeadPipeline, {"setting": "dub"}, clip=True, model="dreamhead")
    with pytest.raises(generation.GenerationError, match="dreamhead has no condition 'pose'"):
        resolve(DreamHeadPipeline, {"pose": "clip"}, clip=True, model="dreamhead")
    assert generation.model_conditions("moda", None) == {} and generation.model_conditions("static-reference", None) == {}
    with pytest.raises(generation.GenerationError, match="no conditioning choices"):
        generation.model_conditions("static-reference", {"setting": "one_shot"})
    # The leaderboard row says which setting ran; a model without choices keeps its plain name and run key.
    chosen = {"setting": "dubbing", "identity": "clip_mean"}
    assert default_label("dreamhead", {"options": {"conditions": chosen}}) == \
        "DreamHead (setting dubbing, identity clip_mean)"
    assert default_label("moda", {"options": {"seed": 0}}) == "MODA"
    key = dict(model="dreamhead", weights={}, fingerprint="f", split="test", metrics=["psnr"], lse_preset="a",
               lmd_preset="b", seed=0, num_samples=1)
    assert "conditions" not in run_key(**key) and run_key(**key, conditions=chosen)["conditions"] == chosen
    assert run_key(**key, conditions=chosen) != run_key(**key, conditions={**chosen, "setting": "one_shot"})


def test_paper_configs_mark_every_value_with_its_source():
    """[figure], [abstract] or [A] on every value line of both paper configs; no third-party summary as the paper."""
    from talking_head.baselines.dreamhead import CONFIG_DIR

    for stage in ("a2l", "l2i"):
        text = (CONFIG_DIR / "paper" / f"{stage}.yaml").read_text()
        values = [line for line in text.splitlines() if ":" in line and not line.lstrip().startswith("#")
                  and line.split(":", 1)[1].split("#")[0].strip() and line.split(":")[0] not in ("model", "stage")]
        unmarked = [line for line in values if not any(m in line for m in ("# [figure]", "# [abstract]", "# [A]"))]
        assert values and not unmarked, f"{stage}: {unmarked}"
        assert "[MODA]" not in text and "self-attention-based" not in text
