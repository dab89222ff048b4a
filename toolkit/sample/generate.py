"""Generate the built-in synthetic talking-head sample, and read it back.

Layout written by :func:`generate` (one folder per speaker, four files per clip)::

    OUT/sample.json                 parameters, conventions, software versions, list of clips
    OUT/S01/S01_000.mp4             512x512, 25 fps H.264 with 16 kHz AAC audio
    OUT/S01/S01_000.wav             the same audio, lossless 16-bit PCM
    OUT/S01/S01_000.npz             ground truth per frame: landmarks (T,478,3), pose (T,7),
                                    mouth_opening (T,), visemes (T,3), blink (T,)
    OUT/S01/S01_000.timeline.json   the phone timeline (phone, start, end, viseme) in seconds

Everything is a function of (speakers, clips, seconds, seed): the same call writes the same data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talking_head.toolkit import __version__, face_mesh, media
from talking_head.toolkit.fileio import atomic_path, write_json
from talking_head.toolkit.progress import progress_bar
from talking_head.toolkit.provenance import software_versions
from talking_head.toolkit.sample.face import FaceRig, Pose, render_look, speaker_looks
from talking_head.toolkit.sample.speech import SAMPLE_RATE, Voice, make_timeline, synthesize, viseme_track

FPS = 25
SIZE = 512
MANIFEST = "sample.json"

CONVENTIONS = {
    "landmarks": "MediaPipe 478-point topology; x, y in output pixels, z relative depth in the same pixel scale",
    "pose": "yaw, pitch, roll in degrees (yaw>0 nose to image right, pitch>0 nose down, roll>0 clockwise), "
    "tx, ty in pixels, tz always 0 (orthographic), scale relative to the neutral face",
    "mouth_opening": "inner-lip gap (points 13-14) / inter-ocular distance (points 33-263)",
    "visemes": "open, round, spread in [0, 1], smoothed phone targets read at frame times n/25",
    "blink": "eyelid closure in [0, 1]",
    "sync": "frame n shows the mouth for audio time n/25 s (no audio-video offset)",
}


@dataclass(frozen=True)
class SampleClip:
    """One generated clip and its ground truth (arrays loaded on access)."""

    clip_id: str
    speaker: str
    video: Path
    audio: Path
    ground_truth: Path
    timeline: Path
    num_frames: int

    def load_ground_truth(self) -> dict[str, np.ndarray]:
        with np.load(self.ground_truth) as data:
            return {k: data[k] for k in data.files}

    def load_timeline(self) -> list[dict]:
        return json.loads(self.timeline.read_text(encoding="utf-8"))


def _voice(speaker_index: int, rng: np.random.Generator) -> Voice:
    # The photo is of a woman: female pitch range and vocal-tract length, varied per speaker.
    return Voice(f0=float(rng.uniform(175, 235)), formant_scale=float(rng.uniform(1.1, 1.2)))


def _head_motion(num_frames: int, rng: np.random.Generator) -> list[Pose]:
    """Small smooth head motion: a sum of slow sinusoids per pose parameter."""
    t = np.arange(num_frames) / FPS
    amplitude = {"yaw": 12.0, "pitch": 9.0, "roll": 5.0, "tx": 6.0, "ty": 4.0, "scale": 0.02}
    tracks = {}
    for name, amp in amplitude.items():
        freqs = rng.uniform(0.08, 0.45, size=3)
        phases = rng.uniform(0, 2 * np.pi, size=3)
        weights = rng.uniform(0.3, 1.0, size=3)
        wave = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0) / weights.sum()
        tracks[name] = amp * wave
    tracks["scale"] = 1.0 + tracks["scale"]
    return [Pose(**{k: float(v[n]) for k, v in tracks.items()}) for n in range(num_frames)]


def _blinks(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Eyelid closure per frame: a blink of ~0.2 s every 2-5 s."""
    closure = np.zeros(num_frames)
    t = rng.uniform(0.8, 2.5)
    seconds = num_frames / FPS
    while t < seconds:
        duration = rng.uniform(0.16, 0.26)
        frame_t = np.arange(num_frames) / FPS
        phase = (frame_t - t) / duration
        inside = (phase >= 0) & (phase <= 1)
        closure[inside] = np.maximum(closure[inside], np.sin(np.pi * phase[inside]) ** 2)
        t += duration + rng.uniform(2.0, 5.0)
    return closure


def generate_clip(
    rig: FaceRig, voice: Voice, clip_id: str, out_dir: Path, seconds: float, rng: np.random.Generator, progress=None
) -> SampleClip:
    """Synthesise one clip's audio, animate the rig in sync, and write the clip's four files."""
    timeline = make_timeline(seconds, rng)
    audio = synthesize(timeline, voice, rng)
    num_frames = int(round(seconds * FPS))
    visemes = viseme_track(timeline, FPS, num_frames)
    blink = _blinks(num_frames, rng)
    poses = _head_motion(num_frames, rng)

    landmarks = np.zeros((num_frames, face_mesh.NUM_POINTS, 3), np.float32)

    def frames():
        for n in range(num_frames):
            mesh = rig.deform(*visemes[n], blink=blink[n])
            mesh, ring = rig.apply_pose(mesh, poses[n])
            landmarks[n] = mesh
            yield rig.render(mesh, ring)
            if progress is not None:
                progress()

    out_dir.mkdir(parents=True, exist_ok=True)
    clip = SampleClip(
        clip_id=clip_id,
        speaker=out_dir.name,
        video=out_dir / f"{clip_id}.mp4",
        audio=out_dir / f"{clip_id}.wav",
        ground_truth=out_dir / f"{clip_id}.npz",
        timeline=out_dir / f"{clip_id}.timeline.json",
        num_frames=num_frames,
    )
    media.write_video(clip.video, frames(), fps=FPS, audio=audio, sample_rate=SAMPLE_RATE)
    media.write_wav(clip.audio, audio, sample_rate=SAMPLE_RATE)
    with atomic_path(clip.ground_truth) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                landmarks=landmarks,
                pose=np.stack([p.as_vector() for p in poses]),
                mouth_opening=face_mesh.mouth_opening(landmarks).astype(np.float32),
                visemes=visemes.astype(np.float32),
                blink=blink.astype(np.float32),
            )
    write_json(
        clip.timeline,
        [{"phone": p.phone, "start": round(p.start, 6), "end": round(p.end, 6), "viseme": list(p.viseme)} for p in timeline],
    )
    return clip


def generate(
    out: str | Path, speakers: int = 3, clips: int = 3, seconds: float = 6.0, seed: int = 0, show_progress: bool = True
) -> list[SampleClip]:
    """Write the sample to `out` (see the module docstring). Returns the clips.

    If `out` already holds a complete sample made with the same parameters, nothing is redone.
    """
    if speakers < 1 or clips < 1:
        raise ValueError("need at least one speaker and one clip")
    if seconds < 1.0:
        raise ValueError(f"clips must be at least 1 second long, got {seconds}")
    out = Path(out)
    params = {"speakers": speakers, "clips": clips, "seconds": seconds, "seed": seed, "fps": FPS, "size": SIZE,
              "sample_rate": SAMPLE_RATE, "generator_version": __version__}
    existing = _complete_sample(out, params)
    if existing is not None:
        return existing

    rng = np.random.default_rng(seed)
    looks = speaker_looks(speakers, rng)
    result: list[SampleClip] = []
    speaker_records = []
    total_frames = speakers * clips * int(round(seconds * FPS))
    with progress_bar(total_frames, "sample", unit="frames", enabled=show_progress) as advance:
        with face_mesh.FaceMeshDetector(video=False) as detector:
            for s, look in enumerate(looks):
                speaker = f"S{s + 1:02d}"
                image = render_look(look, SIZE)
                neutral = detector.detect(image)
                if neutral is None:  # cannot happen for the shipped looks; guards future edits
                    raise RuntimeError(f"MediaPipe found no face in speaker {speaker}'s look {look}")
                # Rounded so tiny float differences between machines do not reach the ground truth.
                rig = FaceRig(image, np.round(neutral.astype(np.float64), 3))
                speaker_rng = np.random.default_rng([seed, s])
                voice = _voice(s, speaker_rng)
                speaker_records.append({"id": speaker, "look": look.to_dict(), "voice": vars(voice)})
                for c in range(clips):
                    clip_rng = np.random.default_rng([seed, s, c])
                    result.append(generate_clip(rig, voice, f"{speaker}_{c:03d}", out / speaker, seconds, clip_rng, advance))

    write_json(
        out / MANIFEST,
        {
            "name": "talking-head-toolkit built-in synthetic sample",
            "source_photo": "skimage.data.astronaut() (NASA, public domain)",
            "parameters": params,
            "conventions": CONVENTIONS,
            "speakers": speaker_records,
            "clips": [
                {"id": c.clip_id, "speaker": c.speaker, "num_frames": c.num_frames,
                 "video": c.video.relative_to(out).as_posix(), "audio": c.audio.relative_to(out).as_posix(),
                 "ground_truth": c.ground_truth.relative_to(out).as_posix(), "timeline": c.timeline.relative_to(out).as_posix()}
                for c in result
            ],
            "software": software_versions(),
        },
    )
    return result


def load_sample(path: str | Path) -> list[SampleClip]:
    """The clips of a sample written by :func:`generate`."""
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: no sample here (run `toolkit sample --out {path}`)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return [
        SampleClip(
            clip_id=c["id"], speaker=c["speaker"], video=path / c["video"], audio=path / c["audio"],
            ground_truth=path / c["ground_truth"], timeline=path / c["timeline"], num_frames=c["num_frames"],
        )
        for c in manifest["clips"]
    ]


def _complete_sample(out: Path, params: dict) -> list[SampleClip] | None:
    """The existing clips if `out` holds a finished sample with exactly these parameters."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if manifest.get("parameters") != params:
        return None
    clips = load_sample(out)
    files_present = all(p.is_file() for c in clips for p in (c.video, c.audio, c.ground_truth, c.timeline))
    return clips if files_present else None
