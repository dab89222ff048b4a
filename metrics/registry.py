"""Every metric the runner can score: name -> class, its defaults, direction, label and the columns it writes.

The runner (:mod:`metrics.runner`), ``toolkit evaluate --help`` and the leaderboard columns
(:mod:`leaderboards.columns`) all read this table; a default is defined here once and the metric
modules read it back. Adding a metric is one module with a :class:`metrics.base.Metric` subclass and
one :func:`register` call (or one line in :data:`_BUILT_IN`).

Classes are named by import path and imported only when a run builds them, so reading the registry
imports no torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from talking_head.metrics.base import DIRECTIONS, Metric


@dataclass(frozen=True)
class ResultColumn:
    """One number a metric writes to summary.json (``results[metric][key]``), as a leaderboard column."""

    id: str
    key: str
    label: str
    direction: Optional[str]
    unit: str = ""
    description: str = ""
    # The ground truth's own value, the anchor a reader compares with: `ground_truth` is the dotted key in
    # results[metric] where the metric reports it measured on the reference videos ("reference.lse_c"), or
    # `identity` is the value of the reference scored against itself, by definition (FID 0, SSIM 1).
    ground_truth: str = ""
    identity: Optional[float] = None
    # THEval's ground-truth-normalised score 1 - |m - gt| / |gt| applies (statistics whose ideal is the
    # ground truth's value, not an extreme: pose std, blink rate, LSE-C of real speech).
    normalised: bool = False


@dataclass(frozen=True)
class MetricEntry:
    name: str  # the results key in summary.json
    target: Union[str, type]  # "module:Class" (imported when built) or the class itself
    label: str
    direction: Optional[str]  # of the metric's headline number
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)  # keyword options of the class
    aliases: tuple[str, ...] = ()  # other names for --metrics (psnr and ssim share one metric)
    default_run: bool = True  # in the set `toolkit evaluate` runs without --metrics
    columns: tuple[ResultColumn, ...] = ()
    # Pretrained files (toolkit.weights registry names) building the metric asks for: `weights` with any
    # options, plus `option_weights[option][value]` for the value the run uses (default: `defaults[option]`),
    # e.g. LSE's face-track presets add the S3FD detector. `toolkit weights fetch --for/--protocol` reads this.
    weights: tuple[str, ...] = ()
    option_weights: dict[str, dict[Any, tuple[str, ...]]] = field(default_factory=dict)
    # Options that take one of a closed set of values: option -> "module:ATTRIBUTE", the metric module's own
    # table of them (imported when asked, like `target`), e.g. LSE's presets. See `option_values`.
    option_choices: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        for table in ("option_weights", "option_choices"):
            unknown = set(getattr(self, table)) - set(self.defaults)
            if unknown:
                raise ValueError(f"metric {self.name!r}: {table} names options without a default: {sorted(unknown)}")

    def option_values(self, option: str) -> Optional[tuple[Any, ...]]:
        """The values `option` accepts, in the metric module's order; None when they are not a closed set."""
        spec = self.option_choices.get(option)
        if spec is None:
            return None
        module, _, attribute = spec.partition(":")
        return tuple(getattr(importlib.import_module(module), attribute))

    def weights_for(self, options: Optional[dict[str, Any]] = None) -> tuple[str, ...]:
        """The weight files this metric needs with `options` (the others at their defaults), in order."""
        chosen = {**self.defaults, **(options or {})}
        found = list(self.weights)
        for option, by_value in self.option_weights.items():
            found += by_value.get(chosen.get(option), ())
        return tuple(dict.fromkeys(found))

    def all_weights(self) -> tuple[str, ...]:
        """Every weight file some option value of this metric needs."""
        found = list(self.weights) + [n for by_value in self.option_weights.values() for names in by_value.values()
                                      for n in names]
        return tuple(dict.fromkeys(found))

    @property
    def names(self) -> tuple[str, ...]:
        return self.aliases or (self.name,)

    def load(self) -> type[Metric]:
        if not isinstance(self.target, str):
            return self.target
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


# Options the runner and the command line take as flags, e.g. evaluate(lse_preset="mocha").
PRESET_FLAGS = {"lse_preset": ("lse", "preset"), "lse_frames": ("lse", "frames"), "lmd_preset": ("lmd", "preset"),
                "fvd_variant": ("fvd", "variant")}

_M = "talking_head.metrics."
_BUILT_IN = (
    MetricEntry("fid", _M + "fid:FIDVideos", "FID", "lower", "Frechet Inception Distance, frames pooled over all videos",
                weights=("fid-inception",),
                columns=(ResultColumn("fid", "fid", "FID", "lower",
                                      description="Frechet Inception Distance to the reference frames", identity=0.0),)),
    MetricEntry("kid", _M + "kid:KIDVideos", "KID", "lower", "Kernel Inception Distance (torch-fidelity), frames pooled",
                weights=("fid-inception",),
                default_run=False,
                columns=(ResultColumn("kid", "kid", "KID", "lower", description="Kernel Inception Distance to the reference frames",
                                      identity=0.0),)),
    MetricEntry("efid", _M + "efid:EFIDVideos", "E-FID", "lower",
                "expression FID: Frechet distance of Deep3DFaceRecon expression coefficients (EchoMimic), frames pooled",
                weights=("deep3dfacerecon",),
                default_run=False,
                columns=(ResultColumn("efid", "efid", "E-FID", "lower",
                                      description="Frechet distance of 3DMM expression coefficients to the reference",
                                      identity=0.0),)),
    MetricEntry("fvd", _M + "fvd:FVDVideos", "FVD", "lower",
                "Frechet Video Distance (I3D), clips pooled; variants styleganv (default), videogpt, disco, latentsync",
                defaults={"variant": "styleganv"}, default_run=False,
                option_choices={"variant": _M + "fvd_variants:VARIANTS"},
                option_weights={"variant": {"styleganv": ("i3d-torchscript",), "latentsync": ("i3d-torchscript",),
                                            "videogpt": ("i3d-kinetics400",), "disco": ("i3d-kinetics400",)}},
                columns=(ResultColumn("fvd", "fvd", "FVD", "lower",
                                      description="Frechet Video Distance to the reference clips (the variant is recorded)",
                                      identity=0.0),)),
    MetricEntry("lse", _M + "lse:LSEVideos", "LSE", "higher", "SyncNet lip-sync confidence (LSE-C) and distance (LSE-D)",
                defaults={"preset": "wav2lip_lrs", "frames": "ffmpeg_jpeg"},
                option_choices={"preset": _M + "lse:PRESETS", "frames": _M + "lse:FRAME_SOURCES"},
                weights=("syncnet",),  # face-track presets also run SyncNet's S3FD detector
                option_weights={"preset": {p: ("syncnet-s3fd",) for p in ("wav2lip_real", "mocha", "latentsync")}},
                columns=(ResultColumn("lse_c", "lse_c", "LSE-C", "higher", description="SyncNet confidence (lip sync)",
                                      ground_truth="reference.lse_c", normalised=True),
                         ResultColumn("lse_d", "lse_d", "LSE-D", "lower", description="SyncNet distance (lip sync)",
                                      ground_truth="reference.lse_d"))),
    MetricEntry("lmd", _M + "lmd:LMDVideos", "LMD", "lower", "mouth and face landmark distance (and velocity) to the reference",
                defaults={"preset": "dense"}, option_choices={"preset": _M + "lmd:PRESETS"},
                # dense: MediaPipe's mesh (bundled with mediapipe); the 68-point presets run face-alignment's FAN
                option_weights={"preset": {p: ("fan-2d", "fan-s3fd") for p in ("atvgnet", "vico")}},
                columns=(ResultColumn("m_lmd", "mouth_lmd", "M-LMD", "lower",
                                      description="mouth landmark distance to the reference clip", identity=0.0),
                         ResultColumn("m_lmd_v", "mouth_lmd_v", "M-LMD-v", "lower",
                                      description="mouth landmark velocity distance", identity=0.0),
                         ResultColumn("f_lmd", "face_lmd", "F-LMD", "lower", description="whole-face landmark distance",
                                      identity=0.0),
                         ResultColumn("f_lmd_v", "face_lmd_v", "F-LMD-v", "lower",
                                      description="whole-face landmark velocity distance", identity=0.0))),
    MetricEntry("pose", _M + "head_motion:PoseVideos", "Pose std", None, "head-pose diversity (std of yaw, pitch, roll)",
                columns=(ResultColumn("pose_std", "mean_std", "Pose std", None, "deg",
                                      "head-pose diversity: std of yaw, pitch, roll per video, averaged; "
                                      "compare with ground truth", ground_truth="reference.mean_std", normalised=True),)),
    MetricEntry("blink", _M + "blink:BlinkVideos", "Blinks/min", None, "blink rate",
                columns=(ResultColumn("blink_rate", "blink_rate", "Blinks/min", None, "1/min",
                                      "blink rate; compare with ground truth", ground_truth="reference.blink_rate",
                                      normalised=True),)),
    MetricEntry("psnr_ssim", _M + "psnr_ssim:PSNRSSIMVideos", "PSNR / SSIM", "higher", "PSNR and SSIM to the reference",
                aliases=("psnr", "ssim"),
                columns=(ResultColumn("psnr", "psnr", "PSNR", "higher", "dB",
                                      "peak signal-to-noise ratio to the reference frames"),
                         ResultColumn("ssim", "ssim", "SSIM", "higher",
                                      description="structural similarity to the reference frames", identity=1.0))),
    MetricEntry("lpips", _M + "lpips:LPIPSVideos", "LPIPS", "lower", "learned perceptual distance (AlexNet)",
                weights=("lpips-alexnet",),  # the linear heads ship in the lpips wheel
                columns=(ResultColumn("lpips", "lpips", "LPIPS", "lower",
                                      description="learned perceptual distance (AlexNet)", identity=0.0),)),
    MetricEntry("csim", _M + "csim:CSIMVideos", "CSIM", "higher", "identity similarity (ArcFace cosine)",
                weights=("arcface-r100",),
                defaults={"convention": "paired"}, option_choices={"convention": _M + "csim:CONVENTIONS"},
                columns=(ResultColumn("csim", "csim", "CSIM", "higher",
                                      description="identity similarity (ArcFace cosine)"),)),
    MetricEntry("niqe", _M + "niqe:NIQEVideos", "NIQE", "lower", "no-reference image quality",
                weights=("niqe-pristine",),
                columns=(ResultColumn("niqe", "niqe", "NIQE", "lower", description="no-reference image quality",
                                      ground_truth="niqe_reference"),)),
    MetricEntry("beat_align", _M + "beat_align:BeatAlignVideos", "Beat Align", "higher",
                "head motion beats aligned to the audio's (Bailando)", default_run=False),
    MetricEntry("diversity", _M + "head_motion:DiversityVideos", "Diversity", "higher",
                "head-pose diversity across samples drawn for one clip's audio", default_run=False),
    MetricEntry("lipleak", _M + "lipleak:LipLeakVideos", "LipLeak", "lower",
                "KeySync's LipLeak: fraction of silent frames (WebRTC VAD) in which the mouth is open", default_run=False,
                columns=(ResultColumn("lipleak", "lipleak", "LipLeak", "lower",
                                      description="fraction of silent-audio frames with the mouth open "
                                                  "(pooled over videos); compare with ground truth",
                                      ground_truth="reference.lipleak"),)),
)
REGISTRY: dict[str, MetricEntry] = {}

# Leaderboard column order (the tables read lip sync and landmarks first, then image quality).
COLUMN_ORDER = ("m_lmd", "m_lmd_v", "f_lmd", "f_lmd_v", "lse_c", "lse_d", "lipleak", "fid", "fvd", "kid", "efid", "niqe",
                "psnr", "ssim", "lpips", "csim", "pose_std", "blink_rate")


def register(entry: MetricEntry) -> MetricEntry:
    """Add a metric; its names must be new."""
    taken = [n for n in (entry.name, *entry.names) if n in REGISTRY or n in _aliases()]
    if taken:
        raise ValueError(f"metric name(s) {', '.join(taken)} already registered")
    REGISTRY[entry.name] = entry
    return entry


def unregister(name: str) -> None:
    REGISTRY.pop(name, None)


def _aliases() -> dict[str, str]:
    return {alias: entry.name for entry in REGISTRY.values() for alias in entry.names}


def entry(name: str) -> MetricEntry:
    """The entry for a metric name or alias (ValueError naming the known ones)."""
    found = REGISTRY.get(name) or REGISTRY.get(_aliases().get(name, ""))
    if found is None:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(selectable_names())}")
    return found


def defaults(name: str) -> dict[str, Any]:
    """A metric's default options (a copy), e.g. ``defaults("lse")["preset"]``."""
    return dict(entry(name).defaults)


def selectable_names() -> list[str]:
    """Every name --metrics accepts, in registry order."""
    return [n for e in REGISTRY.values() for n in e.names]


def default_names() -> list[str]:
    """The names `toolkit evaluate` runs without --metrics."""
    return [n for e in REGISTRY.values() if e.default_run for n in e.names]


def preset_defaults() -> dict[str, Any]:
    """The preset flags and their defaults, e.g. ``{"lse_preset": "wav2lip_lrs", ...}``."""
    return {flag: REGISTRY[metric].defaults[option] for flag, (metric, option) in PRESET_FLAGS.items()}


def weights_for(name: str, options: Optional[dict[str, Any]] = None) -> tuple[str, ...]:
    """The weight files (toolkit.weights names) metric `name` needs with `options` (e.g. a protocol's)."""
    return entry(name).weights_for(options)


def columns() -> list[tuple[MetricEntry, ResultColumn]]:
    """Every leaderboard column with its metric, in display order (unordered ones last, in registry order)."""
    found = [(e, c) for e in REGISTRY.values() for c in e.columns]
    rank = {cid: k for k, cid in enumerate(COLUMN_ORDER)}
    return sorted(found, key=lambda pair: rank.get(pair[1].id, len(rank)))


for _entry in _BUILT_IN:
    register(_entry)
