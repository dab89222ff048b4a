"""The table of every pretrained file the toolkit uses: where it comes from (URL, size, sha256), who
consumes it, where it lives on disk, its licence.

Usage::

    from talking_head.toolkit.weight_files import REGISTRY, WeightFile

    REGISTRY["syncnet"].url                # one entry per file; add a file here and nowhere else
    WeightFile(name="my-net", ...)         # an entry outside the table, for private mirrors and tests

Finding, verifying, downloading and loading these files is :mod:`toolkit.weights`, which re-exports both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Location = Literal["torch_hub", "hf_hub", "toolkit"]
LOCATIONS: tuple[str, ...] = ("torch_hub", "hf_hub", "toolkit")

HEX40 = re.compile(r"^[0-9a-f]{40}$")  # a full git commit (Hugging Face pins)
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class WeightFile:
    """One pretrained file (or, for ``hf_hub``, one model snapshot) the toolkit depends on."""

    name: str  # registry key, e.g. "fid-inception"
    description: str  # what it is and what it is for (shown in "missing" messages)
    consumer: str  # the library / metric that loads it
    url: str  # where `fetch` downloads it from (for hf_hub: the weights file's resolve URL)
    filename: str  # file name on disk; for hf_hub the weights file's path inside the repo
    size: int | None  # bytes, None when not published
    sha256: str | None  # full hex digest, None when no trustworthy published digest exists
    location: Location
    license: str
    sha256_prefix: str | None = None  # when only a prefix is known (torch hub's `<name>-<sha256[:8]>.pth`)
    # When no sha256 is published but public git repositories commit the file: its git blob id,
    # sha1(b"blob <size>\0" + bytes), the digest `git ls-tree` lists for it.
    git_blob_sha1: str | None = None
    repo_id: str | None = None  # hf_hub only: "org/name"
    revision: str = "main"  # hf_hub only: a commit hash (pinned) or a branch name
    extra_files: tuple[str, ...] = ()  # hf_hub only: config files needed next to the weights (unpinned)
    alternatives: tuple[str, ...] = ()  # hf_hub only: other accepted weights files (unpinned)

    def __post_init__(self) -> None:
        if self.location not in LOCATIONS:
            raise ValueError(f"{self.name}: location must be one of {LOCATIONS}, not {self.location!r}")
        if self.sha256 is not None and not (len(self.sha256) == 64 and _HEX.match(self.sha256)):
            raise ValueError(f"{self.name}: sha256 must be 64 lowercase hex digits")
        if self.sha256_prefix is not None:
            if not _HEX.match(self.sha256_prefix):
                raise ValueError(f"{self.name}: sha256_prefix must be lowercase hex")
            if self.sha256 is not None and not self.sha256.startswith(self.sha256_prefix):
                raise ValueError(f"{self.name}: sha256 does not start with sha256_prefix")
        if self.git_blob_sha1 is not None and not (len(self.git_blob_sha1) == 40 and _HEX.match(self.git_blob_sha1)):
            raise ValueError(f"{self.name}: git_blob_sha1 must be 40 lowercase hex digits")
        if self.size is not None and self.size <= 0:
            raise ValueError(f"{self.name}: size must be positive or None")
        if self.location == "hf_hub" and (not self.repo_id or "/" not in self.repo_id):
            raise ValueError(f"{self.name}: hf_hub entries need repo_id='org/name'")
        if self.location != "hf_hub" and (self.repo_id or self.extra_files or self.alternatives):
            raise ValueError(f"{self.name}: repo_id/extra_files/alternatives only apply to hf_hub entries")


# --------------------------------------------------------------------------------------------------
# The table. Sources of the digests (each entry's comment says more):
#  * fid-inception, syncnet*, fan-*: published sha256 of the upstream files; fan-s3fd's size is the one
#    independent mirrors and logs record for face-alignment's download.
#  * lpips-alexnet, vgg19: torchvision names the file after its sha256 prefix (torch hub checks it); the full
#    digest and size are the ones other projects record for the same download, and torchvision's own
#    `_file_size` metadata (MiB, 3 decimals) agrees with the size.
#  * wav2vec2 / hubert / sd-vae: the sha256 and size Hugging Face shows for the LFS object at the pinned commit
#    (the commit that other projects pin and that holds the file).
#  * arcface-r100: insightface publishes the file only through OneDrive/Baidu folders (no direct link,
#    no digest). Three independent Hugging Face re-uploads (camenduru/show, lithiumice/ArcFace_PyTorch,
#    DeepFakeApp/model) carry byte-identical copies (same LFS sha256); that digest is pinned, the size is not.
#  * niqe-pristine: the sha256 of the file in the basicsr 1.4.2 source distribution (tests/test_niqe_basicsr.py),
#    the same bytes (git blob 204ddcee) as the BasicSR commit the URL names.
#  * i3d-torchscript, i3d-kinetics400: no sha256 is published; the git blob ids are those of the copies
#    committed to JunyaoHu/common_metrics_on_video_quality@5f751734 (fvd/styleganv/, fvd/videogpt/) and,
#    for i3d_pretrained_400.pt, the identical blob in songweige/TATS@03bbce1d (tats/fvd/).
# Hugging Face models are pinned to a commit so configs and weights cannot change under us.
# tests/test_weight_sources.py holds the entries against the installed libraries' own download names.
# --------------------------------------------------------------------------------------------------
REGISTRY: dict[str, WeightFile] = {
    e.name: e
    for e in (
        WeightFile(
            name="fid-inception",
            description="Inception-v3 ported from TensorFlow for FID (pytorch-fid's FID weights)",
            consumer="pytorch-fid (FID / FVD-style image statistics)",
            url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
            filename="pt_inception-2015-12-05-6726825d.pth",
            size=95_628_359,
            sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
            location="torch_hub",
            license="Apache-2.0 (pytorch-fid); weights from TensorFlow's Inception-v3 (Apache-2.0)",
        ),
        WeightFile(
            name="syncnet",
            description="SyncNet v2 audio-visual sync network (LSE-C / LSE-D lip-sync metrics)",
            consumer="syncnet-python (LSE-C, LSE-D)",
            url="https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
            filename="syncnet_v2.model",
            size=54_573_114,
            sha256="961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442",
            location="toolkit",
            license="VGG (University of Oxford) research release; see the syncnet_python repository",
        ),
        WeightFile(
            name="syncnet-s3fd",
            description="S3FD face detector used by the SyncNet pipeline to crop faces",
            consumer="syncnet-python (face tracking before LSE-C/LSE-D)",
            url="https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth",
            filename="sfd_face.pth",
            size=89_844_381,
            sha256="d54a87c2b7543b64729c9a25eafd188da15fd3f6e02f0ecec76ae1b30d86c491",
            location="toolkit",
            license="S3FD (BSD-3-Clause port); distributed with syncnet_python",
        ),
        WeightFile(
            name="fan-2d",
            description="2D-FAN-4 facial landmark network (68 points)",
            consumer="face-alignment (landmark distance LMD, face cropping)",
            url="https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
            filename="2DFAN4-11f355bf06.pth.tar",
            size=None,
            sha256="11f355bf0693120222f5955ce3f9dc8fb5763ebb30a47d7906e509490d32e4aa",
            location="torch_hub",
            license="BSD-3-Clause (face-alignment)",
        ),
        WeightFile(
            name="fan-s3fd",
            description="S3FD face detector used by face-alignment",
            consumer="face-alignment (face detection)",
            url="https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
            filename="s3fd-619a316812.pth",
            # face-alignment's own URL (face_alignment.detection.sfd.sfd_detector.models_urls["s3fd"]). Size: that
            # download's byte count (89,843,225) as independent mirrors and logs of it record it.
            size=89_843_225,
            sha256="619a31681264d3f7f7fc7a16a42cbbe8b23f31a256f75a366e5a1bcd59b33543",
            location="torch_hub",
            license="BSD-3-Clause (face-alignment)",
        ),
        WeightFile(
            name="lpips-alexnet",
            description="torchvision AlexNet (ImageNet) backbone under the LPIPS linear layers",
            consumer="lpips (LPIPS, net='alex') via torchvision",
            url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            filename="alexnet-owt-7be5be79.pth",  # torchvision AlexNet_Weights.IMAGENET1K_V1.url
            # Full digest and size as recorded by other projects for torchvision's download; the name's prefix and
            # torchvision's `_file_size` (233.087 MiB) agree.
            size=244_408_911,
            sha256="7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02",
            sha256_prefix="7be5be79",
            location="torch_hub",
            license="BSD-3-Clause (torchvision)",
        ),
        WeightFile(
            name="vgg19",
            description="torchvision VGG19 (ImageNet); its features up to relu5_1 drive perceptual and style losses",
            consumer="MODA renderer (VGG19 perceptual and style losses)",
            # torchvision VGG19_Weights.IMAGENET1K_V1.url. (An earlier "vgg19-dcbe5e52.pth" existed nowhere: fetch
            # failed and a copy torchvision had downloaded was not found.) Full digest and size as recorded by other
            # projects for this download; the name's prefix and torchvision's `_file_size` (548.051 MiB) agree.
            url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
            filename="vgg19-dcbb9e9d.pth",
            size=574_673_361,
            sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44",
            sha256_prefix="dcbb9e9d",
            location="torch_hub",
            license="BSD-3-Clause (torchvision)",
        ),
        WeightFile(
            name="deep3dfacerecon",
            description=(
                "Deep3DFaceRecon_pytorch face reconstruction checkpoint (ResNet-50 regressor of 257 3DMM coefficients,"
                " the dict entry 'net_recon'), expression coefficients for E-FID. Published only as a Google Drive"
                " folder (no direct link, no digest): download epoch_20.pth from it by hand"
            ),
            consumer="E-FID (metrics/efid.py, EchoMimic's recipe)",
            url="https://drive.google.com/drive/folders/1liaIxn9smpudjjqMaWWRpP0mXRW_qRPP?usp=sharing",
            filename="face_recon_feat0.2_augment/epoch_20.pth",
            size=None,
            sha256=None,
            location="toolkit",
            license="MIT (sicxu/Deep3DFaceRecon_pytorch; the README states no other terms for the checkpoint)",
        ),
        WeightFile(
            name="wav2vec2-base-960h",
            description="wav2vec 2.0 base fine-tuned on LibriSpeech 960h (speech features for audio conditioning)",
            consumer="transformers (Wav2Vec2Model / Wav2Vec2FeatureExtractor)",
            url="https://huggingface.co/facebook/wav2vec2-base-960h/resolve/22aad52d435eb6dbaf354bdad9b0da84ce7d6156/model.safetensors",
            filename="model.safetensors",
            # Size and sha256: the LFS object at this commit, as the Hub lists it.
            size=377_607_901,
            sha256="8aa76ab2243c81747a1f832954586bc566090c83a0ac167df6f31f0fa917d74a",
            location="hf_hub",
            license="Apache-2.0",
            repo_id="facebook/wav2vec2-base-960h",
            revision="22aad52d435eb6dbaf354bdad9b0da84ce7d6156",
            extra_files=("config.json", "preprocessor_config.json"),
            alternatives=("pytorch_model.bin",),
        ),
        WeightFile(
            name="hubert-base-ls960",
            description="HuBERT base pre-trained on LibriSpeech 960h (speech features for audio conditioning)",
            consumer="transformers (HubertModel)",
            # Commit dba3bb02 is the one other projects pin and the one that holds this pytorch_model.bin (an earlier
            # pin, e16f1b66, appears in no public source). Size and sha256: the LFS object at that commit.
            url="https://huggingface.co/facebook/hubert-base-ls960/resolve/dba3bb02fda4248b6e082697eee756de8fe8aa8a/pytorch_model.bin",
            filename="pytorch_model.bin",  # the repository's main branch has no safetensors file
            size=377_569_754,
            sha256="062249fffb353eab67547a2fbc129f7c31a2f459faf641b19e8fb007cc5c48ad",
            location="hf_hub",
            license="Apache-2.0",
            repo_id="facebook/hubert-base-ls960",
            revision="dba3bb02fda4248b6e082697eee756de8fe8aa8a",
            extra_files=("config.json", "preprocessor_config.json"),
            alternatives=("model.safetensors",),
        ),
        WeightFile(
            name="sd-vae-ft-mse",
            description="Stable Diffusion kl-f8 VAE, decoder fine-tuned with MSE (latent space of diffusion baselines)",
            consumer="diffusers (AutoencoderKL)",
            # Commit 31f26fde is the one other projects pin and the one that holds this file (an earlier pin, 651c6dc4,
            # appears in no public source). Size and sha256: the LFS object at that commit, as the Hub lists it.
            url="https://huggingface.co/stabilityai/sd-vae-ft-mse/resolve/31f26fdeee1355a5c34592e401dd41e45d25a493/diffusion_pytorch_model.safetensors",
            filename="diffusion_pytorch_model.safetensors",
            size=334_643_276,
            sha256="a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815",
            location="hf_hub",
            license="MIT",
            repo_id="stabilityai/sd-vae-ft-mse",
            revision="31f26fdeee1355a5c34592e401dd41e45d25a493",
            extra_files=("config.json",),
            alternatives=("diffusion_pytorch_model.bin",),
        ),
        WeightFile(
            name="arcface-r100",
            description=(
                "ArcFace iResNet-100 trained on MS1MV3 (insightface arcface_torch ms1mv3_arcface_r100_fp16/backbone.pth),"
                " identity embeddings for CSIM as in the ViCo challenge. Official copies: OneDrive/Baidu links in"
                " https://github.com/deepinsight/insightface/tree/master/recognition/arcface_torch#model-zoo ;"
                " the URL is a Hugging Face re-upload pinned to a commit"
            ),
            consumer="CSIM (identity cosine similarity, arcface_torch iresnet100)",
            # camenduru/show commit 064a379f holds the file (an earlier pin, d95d9e79, appears in no public source).
            # The sha256 is the LFS digest the three re-uploads share. The exact size is not confirmed by any public
            # source, so it is left unpinned: a wrong size would reject the real file before it is hashed.
            url="https://huggingface.co/camenduru/show/resolve/064a379f415f674051145ec4862f54bd6a65073f/models/arcface/ms1mv3_arcface_r100_fp16.pth",
            filename="ms1mv3_arcface_r100_fp16/backbone.pth",
            size=None,
            sha256="a566a62357f0c55b679d9ff2f022a294486568be0c00665d39029d0e46a8109b",
            location="toolkit",
            license="insightface pretrained models: non-commercial research use only",
        ),
        WeightFile(
            name="niqe-pristine",
            description="NIQE pristine-image model parameters (mu/cov of natural-scene statistics)",
            consumer="NIQE (BasicSR implementation)",
            # BasicSR commit a19aac61 added this file and no later commit changed it: the v1.4.2 tag, master and the
            # basicsr 1.4.2 source distribution (the tests' reference) hold the same bytes (git blob 204ddcee...).
            # A commit is pinned rather than the tag because a commit cannot be moved. Size and sha256: that file.
            url="https://raw.githubusercontent.com/XPixelGroup/BasicSR/a19aac61b277f64be050cef7fe578a121d944a0e/basicsr/metrics/niqe_pris_params.npz",
            filename="niqe_pris_params.npz",
            size=11_850,
            sha256="2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296",
            location="toolkit",
            license="Apache-2.0 (BasicSR)",
        ),
        WeightFile(
            name="i3d-torchscript",
            description="I3D (Kinetics-400) as a TorchScript file, StyleGAN-V's port of the tf.hub FVD network",
            consumer="FVD variants styleganv and latentsync",
            url="https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            filename="i3d_torchscript.pt",
            size=None,
            sha256=None,
            git_blob_sha1="93daef59c7ae0e9e8f76225521407e60cbafa6aa",
            location="toolkit",
            license="StyleGAN-V release (universome/stylegan-v); I3D weights by DeepMind (Apache-2.0)",
        ),
        WeightFile(
            name="i3d-kinetics400",
            description="InceptionI3d (pytorch-i3d layout) Kinetics-400 weights, the VideoGPT / TATS FVD network",
            consumer="FVD variants videogpt and disco",
            url="https://github.com/songweige/TATS/raw/main/tats/fvd/i3d_pretrained_400.pt",
            filename="i3d_pretrained_400.pt",
            size=None,
            sha256=None,
            git_blob_sha1="a867b87ac3a9097d200598b1d48a1b890d8ec744",
            location="toolkit",
            license="Apache-2.0 (pytorch-i3d port of DeepMind's I3D)",
        ),
    )
}

