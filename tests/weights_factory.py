"""Weight files with the real names, keys and shapes but random values, for tests.

Pretrained weights cannot be downloaded here. Each function builds the reference network with random
weights (BatchNorm statistics calibrated on given inputs where the scale matters), and `place` writes
the file where the registry and the reference library look, with the registry entry unpinned (a
random file cannot have the published digest).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
import sys
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talking_head.toolkit import weights as w


def unpinned(entry: str | w.WeightFile, /, **changes) -> w.WeightFile:
    """Registry entry `entry` (a name or an entry) with no size and no digest pinned, other fields `changes` (a
    `name=` among them): a random stand-in file under it verifies as "unpinned" rather than "corrupt"."""
    entry = w.REGISTRY[entry] if isinstance(entry, str) else entry
    return dataclasses.replace(entry, size=None, sha256=None, sha256_prefix=None, git_blob_sha1=None, **changes)


def unpin(monkeypatch: pytest.MonkeyPatch, name: str) -> w.WeightFile:
    """Replace registry entry `name` by its `unpinned` copy for this test; the copy."""
    entry = unpinned(name)
    monkeypatch.setitem(w.REGISTRY, name, entry)
    return entry


def place(monkeypatch: pytest.MonkeyPatch, name: str, state: dict | None = None, arrays: dict | None = None) -> Path:
    """Unpin registry entry `name` and write `state` (torch) or `arrays` (npz) at its destination."""
    entry = unpin(monkeypatch, name)
    target = w.destination(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if arrays is not None:
        with open(target, "wb") as handle:
            np.savez(handle, **arrays)
    else:
        torch.save(state, target)
    return target


def _calibrate(net: torch.nn.Module, run) -> dict:
    """BatchNorm running statistics = the batch statistics of one pass (momentum None), then eval."""
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    net.train()
    with torch.no_grad():
        run(net)
    return net.eval().state_dict()


def pytorch_fid_skeleton() -> torch.nn.Module:
    """pytorch-fid's FID Inception built with its own builders (fid_inception_v3() would download)."""
    from pytorch_fid import inception as pfi

    net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pfi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pfi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pfi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pfi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pfi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pfi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pfi.FIDInceptionE_1(1280)
    net.Mixed_7c = pfi.FIDInceptionE_2(2048)
    return net


def fid_inception(frames: np.ndarray) -> dict:
    """Random FID Inception weights; BatchNorm calibrated at 299x299 on `frames`, so features have the
    real model's scale (uncalibrated random layers shrink activations to ~1e-8)."""
    torch.manual_seed(0)
    net = pytorch_fid_skeleton()
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div(255)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) * 2 - 1
    return _calibrate(net, lambda n: n(x))


def syncnet(crops: np.ndarray, audio_int16: np.ndarray) -> dict:
    """syncnet_python's S, BatchNorm calibrated on windows of (T, 224, 224, 3) RGB crops and their audio."""
    from syncnet_python.SyncNetModel import S

    from talking_head.metrics.mfcc import mfcc

    torch.manual_seed(0)
    net = S()
    cepstra = torch.from_numpy(mfcc(audio_int16).T.astype(np.float32))
    bgr = torch.from_numpy(crops[..., ::-1].copy()).float()
    starts = range(0, len(crops) - 5, 7)

    def run(n):
        n.forward_lip(torch.stack([bgr[v : v + 5].permute(3, 0, 1, 2) for v in starts]))
        n.forward_aud(torch.stack([cepstra[:, 4 * v : 4 * v + 20] for v in starts])[:, None])

    return _calibrate(net, run)


def alexnet() -> dict:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.alexnet().state_dict()


def vgg19() -> dict:
    """A torchvision VGG19 state dict (features.* and classifier.*, 548 MB) with random weights."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.vgg19().state_dict()


def arcface() -> dict:
    from talking_head.metrics.csim import iresnet100

    torch.manual_seed(0)
    net = iresnet100()
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return net.state_dict()


BASICSR_SDIST = Path(sys.prefix) / "references" / "basicsr-1.4.2.tar.gz"  # Makefile: BASICSR_SDIST
BASICSR_SDIST_SHA256 = "b89b595a87ef964cda9913b4d99380ddb6554c965577c0c10cb7b78e31301e87"


def basicsr_files(names: tuple[str, ...], root: Path) -> Path:
    """Unpack `names` (paths under ``basicsr/``, e.g. ``metrics/niqe_pris_params.npz``) of the real basicsr 1.4.2
    source distribution, which `make env` downloads, into ``root/basicsr/``; returns that folder."""
    assert BASICSR_SDIST.is_file(), f"{BASICSR_SDIST}: missing; `make env` downloads the basicsr 1.4.2 sdist there"
    assert hashlib.sha256(BASICSR_SDIST.read_bytes()).hexdigest() == BASICSR_SDIST_SHA256, \
        f"{BASICSR_SDIST}: not the pinned file"
    with tarfile.open(BASICSR_SDIST) as archive:
        for name in names:
            member = archive.getmember(f"basicsr-1.4.2/basicsr/{name}")
            target = root / "basicsr" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out)
    return root / "basicsr"


def place_basicsr_niqe() -> Path:
    """BasicSR's real ``niqe_pris_params.npz`` where the registry looks (it verifies "ok": the published file)."""
    target = w.destination(w.get("niqe-pristine"))
    target.parent.mkdir(parents=True, exist_ok=True)
    unpacked = basicsr_files(("metrics/niqe_pris_params.npz",), target.parent / "basicsr-sdist")
    shutil.move(unpacked / "metrics" / "niqe_pris_params.npz", target)
    shutil.rmtree(unpacked.parent)
    return target


def pin_placed(monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """Pin registry entry `name` to the sha256 of the stand-in file placed for it (as a published file is pinned),
    so that it verifies "ok" where a command accepts only pinned files (toolkit reproduce)."""
    result = w.verify(name)
    assert result.status in ("ok", "unpinned"), result
    monkeypatch.setitem(w.REGISTRY, name, dataclasses.replace(unpinned(name), sha256=w.file_sha256(result.path)))
    return result.path


def niqe_pristine(frames: np.ndarray) -> dict:
    """A pristine model fitted on the block features of clean frames (real keys and shapes)."""
    from talking_head.metrics.niqe import fit_mvg, gaussian_window, niqe_features, to_y

    window = gaussian_window()
    features = np.concatenate([niqe_features(to_y(f).round(), window) for f in frames])
    mu, cov = fit_mvg(features)
    return {"mu_pris_param": mu, "cov_pris_param": cov, "gaussian_window": window}


TINY_WAV2VEC2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
                     conv_dim=(8,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=32)


def tiny_wav2vec2(monkeypatch: pytest.MonkeyPatch, **changes) -> w.WeightFile:
    """A random wav2vec 2.0 of the real layer geometry under the registry's name, where the registry looks
    (unpinned: random weights cannot have the published digest); `changes` to TINY_WAV2VEC2 (e.g. hidden_size=768,
    the base model's width, for a config whose audio.feature_width says so)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    entry = unpin(monkeypatch, "wav2vec2-base-960h")
    snapshot = w.hf_hub_cache() / ("models--" + entry.repo_id.replace("/", "--")) / "snapshots" / entry.revision
    torch.manual_seed(0)
    Wav2Vec2Model(Wav2Vec2Config(**{**TINY_WAV2VEC2, **changes})).save_pretrained(snapshot, safe_serialization=True)
    Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=False).save_pretrained(snapshot)
    return entry


VAE_CONFIG = dict(  # Stable Diffusion's AutoencoderKL layout (4 levels: 8x down, 4 latent channels), narrow
    in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=4, sample_size=64,
    block_out_channels=(8, 8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215,
)


def sd_vae(monkeypatch: pytest.MonkeyPatch, seed: int = 0):
    """A random, narrow VAE saved where the registry's sd-vae-ft-mse snapshot lives (config.json + safetensors),
    the entry unpinned for this test (random weights cannot have the published size and digest)."""
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(**VAE_CONFIG)
    vae.save_pretrained(w.destination(unpin(monkeypatch, "sd-vae-ft-mse")), safe_serialization=True)
    return vae


def stage_stand_ins(monkeypatch: pytest.MonkeyPatch, config: dict) -> list[str]:
    """Random stand-ins for the pretrained files a reference model's stage `config` loads (a 2-layer wav2vec 2.0
    of the width its audio.feature_width names, else the base model's 768, VGG19 for the renderer's perceptual
    and style losses, the SD VAE), placed where the registry looks; the registry names placed."""
    placed = []
    if (config.get("audio") or {}).get("encoder") == "wav2vec2":
        width = int(config["audio"].get("feature_width", 768))
        placed.append(tiny_wav2vec2(monkeypatch, hidden_size=width).name)
    loss = config.get("loss") or {}
    if float(loss.get("vgg", 0) or 0) > 0 or float(loss.get("style", 0) or 0) > 0:
        place(monkeypatch, "vgg19", vgg19())
        placed.append("vgg19")
    if (config.get("autoencoder") or {}).get("kind") == "vae":
        sd_vae(monkeypatch)
        placed.append("sd-vae-ft-mse")
    return placed


def i3d_kinetics400(clips: torch.Tensor) -> dict:
    """``i3d_pretrained_400.pt``: pytorch-i3d's InceptionI3d as cd-fvd ships it, BatchNorm calibrated on
    (B, 3, T, 224, 224) clips in [-1, 1]."""
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    torch.manual_seed(0)
    return _calibrate(InceptionI3d(400, in_channels=3), lambda net: net(clips))


class _TorchScriptI3D(torch.nn.Module):
    """The call signature of StyleGAN-V's ``i3d_torchscript.pt`` around a traced I3D: uint8 or float clips
    (B, 3, T, H, W); ``rescale`` maps 0..255 to [-1, 1], ``resize`` makes frames 224x224."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor, rescale: bool = False, resize: bool = False,
                return_features: bool = False) -> torch.Tensor:
        x = x.float()
        if rescale:
            x = x / 127.5 - 1
        if resize:
            x = F.interpolate(x, size=[x.shape[2], 224, 224], mode="trilinear", align_corners=False)
        logits = self.inner(x)
        if return_features:
            return logits
        return F.softmax(logits, dim=1)


def i3d_torchscript(clips: torch.Tensor, path: Path) -> Path:
    """A TorchScript file with ``i3d_torchscript.pt``'s call signature (a traced, calibrated I3D inside)
    for 16-frame clips; `clips` are (B, 3, 16, 224, 224) in [-1, 1]."""
    from cdfvd.third_party.i3d.pytorch_i3d import InceptionI3d

    torch.manual_seed(1)
    net = InceptionI3d(400, in_channels=3)
    net.load_state_dict(_calibrate(net, lambda n: n(clips)))
    with warnings.catch_warnings():  # the tracer's notes on pytorch-i3d's padding arithmetic, TorchScript's deprecation
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net.eval(), clips[:1], check_trace=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.jit.script(_TorchScriptI3D(traced)).save(str(path))
    return path


def deep3dfacerecon(crops: torch.Tensor) -> dict:
    """``epoch_20.pth`` as Deep3DFaceRecon saves it (``net_recon``: ResNet-50 + final 1x1 layers), BatchNorm
    calibrated on (B, 3, 224, 224) crops in [0, 1]."""
    from talking_head.metrics.efid import ReconNet

    torch.manual_seed(0)
    return {"net_recon": _calibrate(ReconNet(), lambda net: net(crops))}


def pin_to_own_digest(monkeypatch: pytest.MonkeyPatch, name: str, file: Path) -> Path:
    """Copy `file` to registry entry `name`'s destination and pin the entry to the copy's sha256, as a published
    file is pinned (what a TorchScript file needs before it is loaded)."""
    entry = unpin(monkeypatch, name)
    target = w.destination(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(Path(file).read_bytes())
    monkeypatch.setitem(w.REGISTRY, name, dataclasses.replace(entry, sha256=w.file_sha256(target)))
    return target


def place_default_metrics(monkeypatch: pytest.MonkeyPatch, frames: np.ndarray, audio_int16: np.ndarray) -> None:
    """Random weights under every file `toolkit evaluate`'s default metrics load (FID's Inception, SyncNet, LPIPS'
    AlexNet, ArcFace, NIQE's pristine model), calibrated on a reference video's `frames` and 16 kHz audio."""
    import cv2

    from talking_head.metrics.lse import CROP_SIZE

    crops = np.stack([cv2.resize(f, (CROP_SIZE, CROP_SIZE)) for f in frames])
    place(monkeypatch, "fid-inception", fid_inception(frames[::5]))
    place(monkeypatch, "syncnet", syncnet(crops, audio_int16))
    place(monkeypatch, "lpips-alexnet", alexnet())
    place(monkeypatch, "arcface-r100", arcface())
    place(monkeypatch, "niqe-pristine", arrays=niqe_pristine(frames[::10]))
