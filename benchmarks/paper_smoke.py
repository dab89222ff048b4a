"""Every `paper` config of every trained reference model, trained a few steps on the built-in sample, then one clip
generated: steps/s, peak memory and seconds per generated second of video, per stage.

    python benchmarks/paper_smoke.py --device cuda --scale full --steps 20 --out paper_smoke
    python benchmarks/paper_smoke.py --device cpu --scale cut --steps 2 --out /tmp/smoke

``--scale full`` trains the `paper` configs as shipped (sizes, precision, workers; only the step count, the
checkpoint interval and ``training.cpu`` follow the options) on the sample preprocessed at 512 px and the
configs' frame rate, with clips long enough for the longest training window. ``--scale cut`` cuts every size
down (baselines/paper_scale.py, the bf16 smoke test's configs) and preprocesses at 256 px. Per model the sample is
one speaker with a train clip and a test clip; a stage that trains on the ``adapt`` split (a model adapted to
each test person) gets the test clip cut into its adapt and test parts, as ``toolkit reproduce`` does. The test
clip is cut so that about ``--generate-seconds`` of video is generated.

Pretrained files (wav2vec 2.0, VGG19, the SD VAE) come from the local caches, where ``toolkit weights fetch``
puts them; the script refuses before any work when one is missing. ``--placed-weights NAME,...`` accepts
stand-in files placed there under those registry names (random weights, for a machine that cannot download:
their digest is not checked; the report says which). Steps/s leave the first step out (allocation, autotuning);
memory is ``torch.cuda.max_memory_allocated`` on a GPU and the process's peak RSS on the CPU, reset per stage.
``report.json`` in ``--out`` holds the figures with the software versions and the device in words. Training runs
where accelerate puts it (the first visible GPU with ``--device cuda``: choose one with CUDA_VISIBLE_DEVICES),
generation on ``--device``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

SIZES = {"full": 512, "cut": 256}  # preprocessing crop size per scale
SAMPLE_SEED = 0


# ------------------------------------------------------------------------------------------ memory
class PeakMemory:
    """Peak memory of one phase: CUDA's allocator peak on a GPU, the process's peak RSS (VmHWM) on the CPU."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.kind = "cuda_max_memory_allocated" if self.cuda else "peak_rss"

    def reset(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            try:  # Linux: "5" resets the peak resident set size to the current one (proc(5), clear_refs)
                Path("/proc/self/clear_refs").write_text("5")
            except OSError:
                pass  # the peak then covers the whole process so far; still an upper bound

    def peak_bytes(self) -> int:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            return int(torch.cuda.max_memory_allocated())
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # kB on Linux


# ------------------------------------------------------------------------------------------ configs
def stage_configs(model: str, scale: str, steps: int, device: str) -> dict[str, dict]:
    from talking_head.baselines import registry
    from talking_head.baselines.paper_scale import paper_config

    settings = {"training.steps": steps, "training.checkpoint_every": steps, "training.log_every": 1,
                "training.cpu": device == "cpu"}
    return {stage: paper_config(model, stage, scale, settings) for stage in registry.get_trained(model).stages}


def frame_rate(configs: dict[str, dict]) -> float:
    """The one frame rate the stage configs name (25, the sample's, when none does)."""
    rates = {float(c["fps"]) for c in configs.values() if "fps" in c}
    if len(rates) > 1:
        raise SystemExit(f"the stage configs name several frame rates {sorted(rates)}")
    return rates.pop() if rates else 25.0


def train_seconds(configs: dict[str, dict], fps: float) -> float:
    """A train clip long enough for the longest training window (plus a second of slack)."""
    windows = [int((c.get("data") or {}).get("window", 1)) for c in configs.values()]
    return math.ceil(max(windows) / fps) + 1.0


def adapts(configs: dict[str, dict]) -> bool:
    from talking_head.preprocessing.storage import ADAPT_SPLIT

    return any((c.get("data") or {}).get("split") == ADAPT_SPLIT for c in configs.values())


def check_weights(configs: dict[str, dict], model: str) -> None:
    """Build every stage once on the CPU before any work (seconds, even at full size): a pretrained file that is
    missing stops the script here, not after preprocessing. (transformers refuses to load onto the meta device.)"""
    from talking_head.baselines import registry
    from talking_head.toolkit import weights

    package = registry.get_trained(model).load_package()
    for stage, config in configs.items():
        try:
            package.STAGES[stage].model_class().from_config(config)
        except weights.WeightsError as exc:  # missing, or not the published file
            raise SystemExit(f"{model} {stage}: {exc}") from None


# ------------------------------------------------------------------------------------------ data
def build_dataset(root: Path, fps: float, size: int, clip_seconds: float, test_seconds: float,
                  adapt_fraction: float | None) -> Path:
    """The sample (one speaker: a train clip and a test clip of `clip_seconds`) preprocessed at `fps` and `size`
    into `root`, the test clip cut to its first `test_seconds` (of which the adapt split takes `adapt_fraction`);
    reused when already there."""
    from talking_head.preprocessing.builders import sample_clips
    from talking_head.preprocessing.pipeline import PreprocessConfig
    from talking_head.preprocessing.runner import preprocess

    out = root / f"sample-{fps:g}fps-{size}px-{clip_seconds:g}s-test{test_seconds:g}s"
    if (out / "dataset_dict.json").is_file():
        return out
    sources, problems = sample_clips(root / "raw", speakers=1, clips=2, seconds=clip_seconds, seed=SAMPLE_SEED)
    sources = [dataclasses.replace(s, end=test_seconds) if s.split == "test" else s for s in sources]
    _, summary = preprocess(sources, out, PreprocessConfig(fps=fps, size=size), problems=problems,
                            show_progress=False, adapt_fraction=adapt_fraction)
    if summary.failed or not (out / "dataset_dict.json").is_file():
        raise SystemExit(f"preprocessing the sample failed; see {out / 'failures.jsonl'}")
    return out


# ------------------------------------------------------------------------------------------ runs
def train_stage(model: str, stage: str, config: dict, dataset: Path, run_dir: Path, memory: PeakMemory) -> dict:
    from talking_head.baselines import registry
    from talking_head.baselines.training import train

    stage_obj = registry.get_trained(model).load_package().STAGES[stage]
    times: list[float] = []
    losses: list[float] = []

    def on_step(step: int, loss: float) -> None:
        if memory.cuda:  # the step's kernels are done when its time is taken
            import torch

            torch.cuda.synchronize()
        times.append(time.perf_counter())
        losses.append(loss)

    memory.reset()
    started = time.perf_counter()
    runs = stage_obj.runs(config, dataset)
    for identity, config_of in runs:  # one model, or one per identity
        folder = run_dir / stage if identity is None else run_dir / stage / identity
        before = len(times)
        train(stage_obj, config_of, dataset, folder, show_progress=False, on_step=on_step)
        times.insert(before, math.nan)  # a new run: its first step is not timed against the previous run's last
    seconds = time.perf_counter() - started
    gaps = [b - a for a, b in zip(times, times[1:]) if not (math.isnan(a) or math.isnan(b))]
    return {"models": len(runs), "steps": len(losses), "steps_per_second": len(gaps) / sum(gaps) if gaps else None,
            "seconds": round(seconds, 3), "last_loss": losses[-1] if losses else None,
            "peak_memory_bytes": memory.peak_bytes(), "mixed_precision": config["training"]["mixed_precision"]}


def generate_one(model: str, dataset: Path, run_dir: Path, out: Path, device: str, memory: PeakMemory) -> dict:
    from talking_head.baselines import generation
    from talking_head.toolkit import dataset as schema
    from talking_head.toolkit import media

    clip = sorted(schema.load_split(dataset, "test")[schema.CLIP_ID])[0]
    memory.reset()
    started = time.perf_counter()
    result = generation.generate_split(model, dataset, out, checkpoint=run_dir, split="test", clips=[clip],
                                       device=device, show_progress=False)
    if memory.cuda:
        import torch

        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    video_seconds = len(media.read_video(out / f"{clip}.mp4")) / float(result.fps)
    return {"clip": clip, "seconds": round(seconds, 3), "video_seconds": round(video_seconds, 3),
            "seconds_per_video_second": seconds / video_seconds, "peak_memory_bytes": memory.peak_bytes()}


# ------------------------------------------------------------------------------------------ main
def unpin(names: list[str]) -> list[str]:
    """Accept the files under these registry names without their published size and digest (stand-ins)."""
    from talking_head.toolkit import weights

    for name in names:
        if name not in weights.REGISTRY:
            raise SystemExit(f"--placed-weights: {name!r} is not a registry name (toolkit weights list)")
        weights.REGISTRY[name] = dataclasses.replace(weights.REGISTRY[name], size=None, sha256=None,
                                                     sha256_prefix=None, git_blob_sha1=None)
    return names


def table(report: dict) -> str:
    memory = "peak GPU MiB" if report["memory"] == "cuda_max_memory_allocated" else "peak RSS MiB"
    lines = [f"{report['device']}  scale {report['scale']}  {report['steps']} steps",
             f"{'model':10s} {'stage':9s} {'steps/s':>9s} {memory:>13s} {'precision':>9s}  s per video s"]
    for model, entry in report["models"].items():
        for stage, row in entry["stages"].items():
            rate = f"{row['steps_per_second']:.3g}" if row["steps_per_second"] else "-"
            lines.append(f"{model:10s} {stage:9s} {rate:>9s} {row['peak_memory_bytes'] / 2**20:13.0f} "
                         f"{row['mixed_precision']:>9s}")
        gen = entry["generation"]
        lines.append(f"{model:10s} {'generate':9s} {'':>9s} {gen['peak_memory_bytes'] / 2**20:13.0f} {'':>9s}  "
                     f"{gen['seconds_per_video_second']:.3g}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cpu, cuda or cuda:N")
    parser.add_argument("--scale", choices=("full", "cut"), default="full", help="the paper sizes, or cut down")
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per stage (at least 2)")
    parser.add_argument("--out", type=Path, default=Path("paper_smoke"), help="output folder (datasets reused)")
    parser.add_argument("--models", default=None, help="comma-separated trained models (default: all)")
    parser.add_argument("--generate-seconds", type=float, default=None,
                        help="seconds of video to generate per model (default: 2 full, 1 cut)")
    parser.add_argument("--adapt-fraction", type=float, default=0.8,
                        help="for a stage trained on the adapt split: the test clip's part it adapts on")
    parser.add_argument("--placed-weights", default="",
                        help="comma-separated registry names whose files are stand-ins placed in the caches "
                             "(their digests are not checked)")
    args = parser.parse_args(argv)
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is not timed)")

    from talking_head.baselines import registry
    from talking_head.toolkit.device import check_device
    from talking_head.toolkit.provenance import device_description, software_versions

    try:
        device = check_device(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    placed = unpin([n for n in args.placed_weights.split(",") if n])
    models = args.models.split(",") if args.models else registry.trained_names()
    size = SIZES[args.scale]
    generate_seconds = args.generate_seconds or (2.0 if args.scale == "full" else 1.0)
    configs = {m: stage_configs(m, args.scale, args.steps, device) for m in models}
    for model in models:  # before any work
        check_weights(configs[model], model)

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    memory = PeakMemory(device)
    report = {"device": device_description(device), "scale": args.scale, "steps": args.steps, "memory": memory.kind,
              "software": software_versions(), "stand_in_weights": placed, "argv": sys.argv[1:] if argv is None else argv,
              "models": {}}
    for model in models:
        fps = frame_rate(configs[model])
        adapt = args.adapt_fraction if adapts(configs[model]) else None
        # The test clip is cut so that about `generate_seconds` are generated after its adapt part, if any; the
        # sample's last second is silent, so the cut ends 2 s before the clip does.
        test_seconds = generate_seconds / (1 - (adapt or 0))
        clip_seconds = max(train_seconds(configs[model], fps), test_seconds + 2.0)
        dataset = build_dataset(out / "data", fps, size, clip_seconds, test_seconds, adapt)
        run_dir = out / "runs" / model
        stages = {}
        for stage, config in configs[model].items():
            stages[stage] = train_stage(model, stage, config, dataset, run_dir, memory)
            print(f"{model} {stage}: {stages[stage]['steps']} steps, {stages[stage]['seconds']:.1f} s", flush=True)
        generated = generate_one(model, dataset, run_dir, out / "generated" / model, device, memory)
        report["models"][model] = {"dataset": {"path": str(dataset), "fps": fps, "size": size,
                                               "clip_seconds": clip_seconds, "adapt_fraction": adapt},
                                   "stages": stages, "generation": generated}
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
