"""The weights registry held against the libraries that name their own downloads, offline.

Where a library downloads a file itself (torchvision's weight enums, pytorch-fid's ``FID_WEIGHTS_URL``,
face-alignment's model URLs), the registry must name the same URL and the same file name, its digest
must agree with the hash prefix torch hub puts in that name, and its destination must be the path the
library's own loader reads, so a copy the library downloaded earlier is found (and no name that
exists nowhere can come back). Files a library ships inside its package (lpips' linear heads) are
compared by sha256; syncnet-python names only its file names, which are compared too.

Everything reads the *installed* packages; nothing is downloaded (the download functions are
replaced by ones that fail the test).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torch.hub

from talking_head.toolkit import weights as w

pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py: TORCH_HOME etc. under tmp_path


def _torchvision(enum: str) -> Callable[[], str]:
    def url() -> str:
        import torchvision.models

        return getattr(torchvision.models, enum).IMAGENET1K_V1.url

    return url


def _fid_url() -> str:
    from pytorch_fid.inception import FID_WEIGHTS_URL

    return FID_WEIGHTS_URL


def _face_alignment_fan() -> str:
    from face_alignment.api import models_urls

    return models_urls["2DFAN-4"]


def _face_alignment_s3fd() -> str:
    from face_alignment.detection.sfd.sfd_detector import models_urls

    return models_urls["s3fd"]


# registry name -> (the library's own URL for that file, where the library keeps it)
LIBRARY_URLS: dict[str, tuple[Callable[[], str], str]] = {
    "lpips-alexnet": (_torchvision("AlexNet_Weights"), "torchvision.models.AlexNet_Weights.IMAGENET1K_V1.url"),
    "vgg19": (_torchvision("VGG19_Weights"), "torchvision.models.VGG19_Weights.IMAGENET1K_V1.url"),
    "fid-inception": (_fid_url, "pytorch_fid.inception.FID_WEIGHTS_URL"),
    "fan-2d": (_face_alignment_fan, "face_alignment.api.models_urls['2DFAN-4']"),
    "fan-s3fd": (_face_alignment_s3fd, "face_alignment.detection.sfd.sfd_detector.models_urls['s3fd']"),
}
TORCHVISION_ENUMS = {"lpips-alexnet": "AlexNet_Weights", "vgg19": "VGG19_Weights"}


@pytest.fixture
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to download fails the test: the libraries must find the file already in place."""

    def refuse(url: str, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {url}: the library did not find the file where the registry put it")

    import face_alignment.utils

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(face_alignment.utils, "download_url_to_file", refuse)


def _small_checkpoint(target: Path) -> dict[str, torch.Tensor]:
    state = {"weight": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return state


def test_every_torch_hub_entry_names_its_library_source() -> None:
    """A torch_hub entry is downloaded by a library (torch hub's folder is that library's cache): each one must
    be listed above, so the checks below cover it."""
    torch_hub = {name for name, entry in w.REGISTRY.items() if entry.location == "torch_hub"}
    assert torch_hub == set(LIBRARY_URLS)


@pytest.mark.parametrize("name", sorted(LIBRARY_URLS))
def test_registry_url_and_name_are_the_librarys(name: str) -> None:
    entry = w.REGISTRY[name]
    library_url, where = LIBRARY_URLS[name]
    url = library_url()
    assert entry.url == url, f"{name}: the registry downloads {entry.url}, {where} is {url}"
    # torch hub (and face-alignment's copy of its loader) saves the file under the URL's last path part
    assert entry.filename == os.path.basename(urlparse(url).path)
    assert entry.location == "torch_hub"
    # ... and checks the hex digits after the last '-' of that name against the file's sha256
    match = torch.hub.HASH_REGEX.search(entry.filename)
    assert match and match.group(1), f"{entry.filename}: no hash prefix in the file name"
    prefix = match.group(1)
    assert entry.sha256 is not None or entry.sha256_prefix is not None
    if entry.sha256 is not None:
        assert entry.sha256.startswith(prefix), f"{name}: sha256 {entry.sha256} does not start with {prefix}"
    if entry.sha256_prefix is not None:
        assert prefix.startswith(entry.sha256_prefix) or entry.sha256_prefix.startswith(prefix)


@pytest.mark.parametrize("name", sorted(TORCHVISION_ENUMS))
def test_registry_size_agrees_with_torchvisions_metadata(name: str) -> None:
    """torchvision records each file's size in MiB to 3 decimals (``meta['_file_size']``)."""
    import torchvision.models

    entry = w.REGISTRY[name]
    weights = getattr(torchvision.models, TORCHVISION_ENUMS[name]).IMAGENET1K_V1
    assert entry.size is not None
    assert round(entry.size / 2**20, 3) == pytest.approx(weights.meta["_file_size"], abs=1e-9)


@pytest.mark.parametrize("name", sorted(LIBRARY_URLS))
def test_library_finds_the_file_where_the_registry_puts_it(name: str, no_downloads: None) -> None:
    """The registry's destination is the path the library's own loader reads: a copy put there (by `toolkit
    weights fetch`, by hand) is loaded by the library offline, and a copy the library downloaded is found."""
    target = w.destination(name)
    assert target == Path(torch.hub.get_dir()) / "checkpoints" / w.REGISTRY[name].filename
    state = _small_checkpoint(target)
    url = LIBRARY_URLS[name][0]()
    loaded = torch.hub.load_state_dict_from_url(url, progress=False, check_hash=False, weights_only=True)
    torch.testing.assert_close(loaded, state)
    assert w.path(name) == target
    if name in TORCHVISION_ENUMS:  # torchvision's own entry point, as torchvision.models.<net>(weights=...) calls it
        import torchvision.models

        weights = getattr(torchvision.models, TORCHVISION_ENUMS[name]).IMAGENET1K_V1
        torch.testing.assert_close(weights.get_state_dict(progress=False, check_hash=False), state)
    if name.startswith("fan-"):  # face-alignment loads the FAN through its own copy of torch hub's loader
        from face_alignment.utils import load_file_from_url

        assert Path(load_file_from_url(url, progress=False)) == target


@pytest.mark.filterwarnings("ignore:.*(pretrained|weight enum).*:UserWarning")  # lpips calls alexnet(pretrained=True)
def test_lpips_backbone_is_the_registrys_alexnet(monkeypatch: pytest.MonkeyPatch) -> None:
    """lpips builds its trunk with ``torchvision.models.alexnet(pretrained=True)``: the file torchvision fetches
    for it is the registry's lpips-alexnet."""
    import lpips.pretrained_networks
    import torchvision.models
    import torchvision.models._api as tv_api

    requested: list[str] = []
    state = torchvision.models.alexnet(weights=None).state_dict()

    def record(url: str, *args: object, **kwargs: object) -> dict[str, torch.Tensor]:
        requested.append(url)
        return state

    monkeypatch.setattr(tv_api, "load_state_dict_from_url", record)
    lpips.pretrained_networks.alexnet(requires_grad=False, pretrained=True)
    assert requested == [w.REGISTRY["lpips-alexnet"].url]


def _lpips_weights_dir() -> Path:
    spec = importlib.util.find_spec("lpips")
    assert spec is not None and spec.submodule_search_locations, "lpips is not installed"
    return Path(list(spec.submodule_search_locations)[0]) / "weights"


def test_lpips_linear_heads_match_the_toolkits_pins() -> None:
    """lpips ships its linear heads in the package (lpips/weights/v<version>/<net>.pth); the toolkit loads the
    v0.1 AlexNet heads from there, checked against a pinned sha256. Any registry entry that names one of these
    files must carry the installed file's digest."""
    from talking_head.metrics import lpips as toolkit_lpips

    heads = sorted(_lpips_weights_dir().glob("v*/*.pth"))
    assert heads, "the installed lpips package ships no weights"
    digests = {f"{p.parent.name}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in heads}
    # the file lpips.LPIPS(net='alex', version='0.1') loads is the one the toolkit loads
    assert toolkit_lpips.lin_weights_path() == _lpips_weights_dir() / "v0.1" / "alex.pth"
    assert digests["v0.1/alex.pth"] == toolkit_lpips.LIN_ALEX_SHA256
    for entry in w.REGISTRY.values():
        for key, digest in digests.items():
            if entry.url.endswith(f"/lpips/weights/{key}"):
                assert entry.sha256 == digest, f"{entry.name}: sha256 differs from the installed lpips {key}"


def _syncnet_default_file_names() -> dict[str, str]:
    """The weight file names syncnet-python's pipeline config defaults to (read from its source, not imported:
    the package's pipeline imports heavy optional dependencies)."""
    spec = importlib.util.find_spec("syncnet_python")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("syncnet-python is not installed")
    source = Path(list(spec.submodule_search_locations)[0]) / "syncnet_pipeline.py"
    names: dict[str, str] = {}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and node.target.id in ("s3fd_weights", "syncnet_weights")
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            names[node.target.id] = node.value.value
    return names


def test_syncnet_file_names_are_syncnet_pythons() -> None:
    """syncnet-python defines no download URL (users fetch the files the registry names by hand); its
    pipeline's default file names must be the registry's, so a folder laid out for it works for both."""
    names = _syncnet_default_file_names()
    assert names == {"s3fd_weights": w.REGISTRY["syncnet-s3fd"].filename,
                     "syncnet_weights": w.REGISTRY["syncnet"].filename}
    # should a later syncnet-python name its download URLs, they must be the registry's
    package = Path(list(importlib.util.find_spec("syncnet_python").submodule_search_locations)[0])
    urls = {node.value for file in package.rglob("*.py")
            for node in ast.walk(ast.parse(file.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("http")
            and node.value.endswith(tuple(names.values()))}
    assert urls <= {w.REGISTRY["syncnet-s3fd"].url, w.REGISTRY["syncnet"].url}
