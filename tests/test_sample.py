"""The built-in synthetic sample: determinism, audio/video agreement, and that a real detector sees it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from talking_head.toolkit import face_mesh, media
from talking_head.toolkit.cli import app
from talking_head.toolkit.sample import generate, load_sample
from talking_head.toolkit.sample.face import render_look, speaker_looks
from talking_head.toolkit.sample.speech import SAMPLE_RATE

SECONDS = 4.0


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    generate(out, speakers=2, clips=2, seconds=SECONDS, seed=7, show_progress=False)
    return out


def test_layout_and_manifest(sample_dir):
    manifest = json.loads((sample_dir / "sample.json").read_text())
    assert manifest["parameters"]["seed"] == 7
    assert {"numpy", "mediapipe", "av"} <= set(manifest["software"])
    clips = load_sample(sample_dir)
    assert [c.clip_id for c in clips] == ["S01_000", "S01_001", "S02_000", "S02_001"]
    for clip in clips:
        for path in (clip.video, clip.audio, clip.ground_truth, clip.timeline):
            assert path.is_file() and path.stat().st_size > 0


def test_audio_and_video_lengths_agree(sample_dir):
    for clip in load_sample(sample_dir):
        frames = media.read_video(clip.video, fps=25)
        assert frames.shape == (int(SECONDS * 25), 512, 512, 3)
        wav = media.read_audio(clip.audio, sample_rate=SAMPLE_RATE)
        assert len(wav) == int(SECONDS * SAMPLE_RATE)
        # The AAC track in the mp4 covers the same time span (encoder padding aside: < 1 frame).
        mp4_audio = media.read_audio(clip.video, sample_rate=SAMPLE_RATE)
        assert abs(len(mp4_audio) - len(wav)) < SAMPLE_RATE / 25
        info = media.probe(clip.video)
        assert info.has_audio and info.has_video and abs(info.fps - 25) < 1e-6
        truth = clip.load_ground_truth()
        assert truth["landmarks"].shape == (clip.num_frames, 478, 3)
        assert truth["pose"].shape == (clip.num_frames, 7)
        for key in ("mouth_opening", "blink"):
            assert truth[key].shape == (clip.num_frames,)
        timeline = clip.load_timeline()
        assert timeline[0]["start"] == 0 and timeline[-1]["end"] == pytest.approx(SECONDS)


def test_audio_is_speech_like_and_in_sync_with_the_mouth(sample_dir):
    clip = load_sample(sample_dir)[0]
    wav = media.read_audio(clip.audio, sample_rate=SAMPLE_RATE)
    truth = clip.load_ground_truth()
    # Loudness per video frame vs ground-truth opening: vowels are loud and open the mouth.
    hop = SAMPLE_RATE // 25
    rms = np.sqrt(np.mean(wav[: clip.num_frames * hop].reshape(clip.num_frames, hop) ** 2, axis=1))
    assert np.corrcoef(rms, truth["visemes"][:, 0])[0, 1] > 0.5
    # Pauses exist: some frames are near-silent, others loud.
    assert (rms < 0.01).mean() > 0.1 and (rms > 0.05).mean() > 0.2
    # Voiced: a clear pitch peak in the female range in the autocorrelation of a vowel.
    vowel = next(p for p in clip.load_timeline() if p["phone"] in "aeiou" and p["end"] - p["start"] > 0.15)
    seg = wav[int((vowel["start"] + 0.04) * SAMPLE_RATE) : int((vowel["end"] - 0.04) * SAMPLE_RATE)]
    ac = np.correlate(seg, seg, "full")[len(seg) - 1 :]
    lag = np.argmax(ac[SAMPLE_RATE // 400 : SAMPLE_RATE // 100]) + SAMPLE_RATE // 400
    assert 140 < SAMPLE_RATE / lag < 320


def test_detected_mouth_opening_follows_ground_truth(sample_dir):
    """Real MediaPipe face mesh on the decoded mp4 frames must see the mouth move (r >= 0.9)."""
    for clip in load_sample(sample_dir):
        truth = clip.load_ground_truth()
        detected = []
        with face_mesh.FaceMeshDetector(video=True) as detector:
            for frame in media.VideoReader(clip.video, fps=25).iter_frames():
                mesh = detector.detect(frame)
                assert mesh is not None, f"no face found in {clip.video}"
                detected.append(mesh)
        detected = np.stack(detected)
        r = np.corrcoef(face_mesh.mouth_opening(detected), truth["mouth_opening"])[0, 1]
        assert r >= 0.9, f"{clip.clip_id}: detected mouth opening correlates with ground truth at r={r:.3f}"
        # The whole mesh lands near the ground truth (mean error under 5% of the eye distance).
        err = np.linalg.norm(detected[..., :2] - truth["landmarks"][..., :2], axis=-1).mean(1)
        assert np.median(err / face_mesh.interocular(truth["landmarks"])) < 0.05
        # Blinks are seen too: detected eye opening drops when the ground truth closes the lids.
        if truth["blink"].max() > 0.9:
            eyes = face_mesh.eye_opening(detected)
            assert np.corrcoef(eyes, truth["blink"])[0, 1] < -0.5


def test_same_seed_same_sample_other_seed_differs(tmp_path):
    """Two speakers of one short clip each, generated twice with one seed, once with another."""
    def sample(name, seed):
        return generate(tmp_path / name, speakers=2, clips=1, seconds=1.0, seed=seed, show_progress=False)

    for a, b in zip(sample("first", 7), sample("again", 7)):
        ta, tb = a.load_ground_truth(), b.load_ground_truth()
        for key in ta:
            np.testing.assert_array_equal(ta[key], tb[key])
        assert a.audio.read_bytes() == b.audio.read_bytes()
        assert a.timeline.read_bytes() == b.timeline.read_bytes()
        np.testing.assert_array_equal(media.read_video(a.video), media.read_video(b.video))
    assert sample("other", 8)[0].audio.read_bytes() != load_sample(tmp_path / "first")[0].audio.read_bytes()


def test_existing_sample_is_reused(sample_dir):
    before = {p: p.stat().st_mtime_ns for p in sample_dir.rglob("*") if p.is_file()}
    generate(sample_dir, speakers=2, clips=2, seconds=SECONDS, seed=7, show_progress=False)
    after = {p: p.stat().st_mtime_ns for p in sample_dir.rglob("*") if p.is_file()}
    assert before == after


def test_speakers_look_different():
    looks = speaker_looks(3, np.random.default_rng(0))
    images = [render_look(look, 128) for look in looks]
    assert looks[1].mirror and not looks[0].mirror
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.abs(images[i].astype(int) - images[j].astype(int)).mean() > 10


def test_cli_sample(tmp_path):
    runner = CliRunner()
    help_text = runner.invoke(app, ["sample", "--help"]).output
    assert "Example: toolkit sample" in help_text
    out = tmp_path / "cli sample ü"
    result = runner.invoke(app, ["sample", "--out", str(out), "--speakers", "1", "--clips", "1", "--seconds", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert "Wrote 1 clips" in result.output and (out / "S01" / "S01_000.mp4").is_file()
    bad = runner.invoke(app, ["sample", "--out", str(out), "--seconds", "0.5"])
    assert bad.exit_code != 0
