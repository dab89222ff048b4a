"""Tests of the weights registry (toolkit.weights) and its CLI (toolkit weights ...).

Everything is offline: the tests write their own weight files (real torch / safetensors / numpy
files with random contents) and serve downloads from a local HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import http.server
import io
import json
import os
import pickle
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

import talking_head.toolkit.cli.weights as cli
from talking_head.toolkit import weights as w

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------ fixtures
pytestmark = pytest.mark.usefixtures("isolated_caches")  # tests/conftest.py


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def state_dict_bytes(seed: int = 0) -> tuple[dict[str, torch.Tensor], bytes]:
    """A small real checkpoint (torch.save of a state dict) and its bytes."""
    gen = torch.Generator().manual_seed(seed)
    state = {"conv.weight": torch.randn(4, 3, 3, 3, generator=gen), "conv.bias": torch.randn(4, generator=gen)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return state, buffer.getvalue()


def toolkit_entry(name: str = "test-net", *, data: bytes | None = None, pin: bool = True, sized: bool = True,
                  filename: str = "test-net.pth", url: str = "http://127.0.0.1:9/test-net.pth") -> w.WeightFile:
    """A WeightFile outside the registry; pinned to `data`'s size/digest when asked."""
    return w.WeightFile(
        name=name, description="a test network", consumer="the tests", url=url, filename=filename,
        size=len(data) if (data is not None and sized) else None,
        sha256=sha256_of(data) if (data is not None and pin) else None,
        location="toolkit", license="test",
    )


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, plus an optional X-Repo-Commit header (what the Hugging Face Hub sends)."""

    repo_commit: str | None = None
    requests: list[str] = []

    def end_headers(self) -> None:
        if self.repo_commit:
            self.send_header("X-Repo-Commit", self.repo_commit)
        super().end_headers()

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, type[_Handler]]]:
    """A threaded HTTP server on 127.0.0.1 serving tmp_path/www; yields (base URL, root dir, handler class)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = type("Handler", (_Handler,), {"repo_commit": None, "requests": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def no_part_files(directory: Path) -> bool:
    return not list(directory.rglob("*.part")) if directory.exists() else True


# ------------------------------------------------------------------------------------ registry
def test_registry_entries_are_well_formed() -> None:
    expected = {
        "fid-inception", "syncnet", "syncnet-s3fd", "fan-2d", "fan-s3fd", "lpips-alexnet", "wav2vec2-base-960h",
        "hubert-base-ls960", "sd-vae-ft-mse", "arcface-r100", "niqe-pristine", "vgg19", "deep3dfacerecon",
        "i3d-torchscript", "i3d-kinetics400",
    }
    assert set(w.REGISTRY) == expected
    for key, entry in w.REGISTRY.items():
        assert key == entry.name
        assert entry.url.startswith("https://")
        assert entry.description and entry.consumer and entry.license
        if entry.location == "hf_hub":
            assert entry.repo_id and entry.url.startswith(f"https://huggingface.co/{entry.repo_id}/resolve/")
    assert w.REGISTRY["fid-inception"].sha256 == "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
    assert w.REGISTRY["fid-inception"].size == 95_628_359
    assert w.REGISTRY["syncnet"].size == 54_573_114
    alexnet, vgg19 = w.REGISTRY["lpips-alexnet"], w.REGISTRY["vgg19"]
    assert alexnet.sha256 == "7be5be791159472b1fbf3c69796f7cb30dca7ad8466c2df70058c37116cdee02"
    assert alexnet.sha256_prefix == "7be5be79" and alexnet.size == 244_408_911
    # torchvision's name for VGG19 (tests/test_weight_sources.py checks it against the installed torchvision)
    assert vgg19.filename == "vgg19-dcbb9e9d.pth" and vgg19.url.endswith("/vgg19-dcbb9e9d.pth")
    assert vgg19.sha256 == "dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44"
    assert vgg19.size == 574_673_361
    # Hugging Face pins: the commits that hold the pinned files
    hubert, vae = w.REGISTRY["hubert-base-ls960"], w.REGISTRY["sd-vae-ft-mse"]
    assert hubert.revision == "dba3bb02fda4248b6e082697eee756de8fe8aa8a" and hubert.size == 377_569_754
    assert vae.revision == "31f26fdeee1355a5c34592e401dd41e45d25a493" and vae.size == 334_643_276
    assert vae.sha256 == "a1d993488569e928462932c8c38a0760b874d166399b14414135bd9c42df5815"
    assert w.REGISTRY["wav2vec2-base-960h"].size == 377_607_901
    assert w.REGISTRY["fan-s3fd"].size == 89_843_225
    for entry in (w.REGISTRY["wav2vec2-base-960h"], hubert, vae):
        assert f"/resolve/{entry.revision}/{entry.filename}" in entry.url and w.HEX40.match(entry.revision)
    arcface = w.REGISTRY["arcface-r100"]
    assert "/camenduru/show/resolve/064a379f415f674051145ec4862f54bd6a65073f/" in arcface.url
    assert arcface.size is None  # not confirmed: a wrong size would reject the real file before hashing
    assert arcface.sha256 == "a566a62357f0c55b679d9ff2f022a294486568be0c00665d39029d0e46a8109b"
    niqe = w.REGISTRY["niqe-pristine"]
    assert niqe.size == 11_850  # basicsr 1.4.2's file: tests/test_niqe_basicsr.py
    assert niqe.sha256 == "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
    assert "/BasicSR/a19aac61b277f64be050cef7fe578a121d944a0e/basicsr/metrics/niqe_pris_params.npz" in niqe.url


def test_entry_validation_rejects_bad_digests() -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(toolkit_entry(), sha256="abc")
    with pytest.raises(ValueError):
        w.WeightFile(name="x", description="d", consumer="c", url="u", filename="f", size=None, sha256=None,
                     location="hf_hub", license="l")  # hf_hub without repo_id
    with pytest.raises(w.UnknownWeightsError):
        w.path("no-such-weights")


def test_locations_follow_the_environment(isolated_caches: Path) -> None:
    assert w.destination("fid-inception") == (
        isolated_caches / "torch" / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    )
    assert w.destination("syncnet") == isolated_caches / "weights" / "syncnet_v2.model"
    assert w.destination("arcface-r100") == isolated_caches / "weights" / "ms1mv3_arcface_r100_fp16" / "backbone.pth"
    entry = w.REGISTRY["wav2vec2-base-960h"]
    assert w.destination(entry) == (
        isolated_caches / "hf" / "hub" / "models--facebook--wav2vec2-base-960h" / "snapshots" / entry.revision
    )


# ------------------------------------------------------------------------------------- missing
def test_missing_file_message_names_url_and_destination(isolated_caches: Path) -> None:
    with pytest.raises(w.WeightsMissingError) as info:
        w.path("syncnet")
    message = str(info.value)
    assert "syncnet" in message and "SyncNet" in message  # what is missing and what it is for
    assert w.REGISTRY["syncnet"].url in message
    assert str(isolated_caches / "weights" / "syncnet_v2.model") in message
    assert "toolkit weights fetch syncnet" in message
    assert isinstance(info.value, FileNotFoundError)

    with pytest.raises(w.WeightsMissingError) as info:
        w.load_torch("fid-inception")
    assert str(isolated_caches / "torch" / "hub" / "checkpoints") in str(info.value)
    assert w.REGISTRY["fid-inception"].url in str(info.value)

    result = w.verify("fid-inception")
    assert result.status == "missing" and not result.usable


def test_missing_hf_model_message_lists_files_and_snapshot_dir(isolated_caches: Path) -> None:
    entry = w.REGISTRY["wav2vec2-base-960h"]
    with pytest.raises(w.WeightsMissingError) as info:
        w.path(entry)
    message = str(info.value)
    for needed in ("config.json", "preprocessor_config.json", "model.safetensors", "pytorch_model.bin"):
        assert needed in message
    assert str(w.destination(entry)) in message
    assert entry.url in message
    assert "toolkit weights fetch wav2vec2-base-960h" in message


# ------------------------------------------------------------------------- verification + load
def test_pinned_file_verifies_ok_and_loads(isolated_caches: Path) -> None:
    state, data = state_dict_bytes()
    entry = toolkit_entry(data=data)
    write(isolated_caches / "weights" / entry.filename, data)
    result = w.verify(entry)
    assert result.status == "ok" and result.usable
    assert result.actual_sha256 == sha256_of(data) and result.actual_size == len(data)
    loaded = w.load_torch(entry)
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    assert torch.equal(w.load(entry)["conv.bias"], state["conv.bias"])


def test_wrong_hash_is_corrupt_and_refused(isolated_caches: Path) -> None:
    _, good = state_dict_bytes(0)
    _, other = state_dict_bytes(1)
    assert len(good) == len(other) and good != other
    entry = toolkit_entry(data=good)
    target = write(isolated_caches / "weights" / entry.filename, other)
    result = w.verify(entry)
    assert result.status == "corrupt" and "sha256" in result.detail
    assert result.actual_sha256 == sha256_of(other)
    with pytest.raises(w.WeightsCorruptError) as info:
        w.load_torch(entry)
    message = str(info.value)
    assert str(target) in message and sha256_of(good) in message and sha256_of(other) in message
    assert entry.url in message and "toolkit weights fetch test-net" in message


def test_truncated_file_is_corrupt(isolated_caches: Path) -> None:
    _, data = state_dict_bytes()
    entry = toolkit_entry(data=data)
    write(isolated_caches / "weights" / entry.filename, data[: len(data) // 2])
    result = w.verify(entry)
    assert result.status == "corrupt" and "truncated" in result.detail
    with pytest.raises(w.WeightsCorruptError, match="truncated"):
        w.load_torch(entry)


def test_truncated_unpinned_file_fails_to_load_as_corrupt(isolated_caches: Path) -> None:
    _, data = state_dict_bytes()
    entry = toolkit_entry(data=data, pin=False, sized=False)
    write(isolated_caches / "weights" / entry.filename, data[: len(data) // 2])
    assert w.verify(entry).status == "unpinned"  # nothing published to compare against...
    with pytest.raises(w.WeightsCorruptError, match="could not be read"):
        w.load_torch(entry)  # ...but the damage shows when reading it


def test_size_mismatch_is_corrupt(isolated_caches: Path) -> None:
    _, data = state_dict_bytes()
    entry = toolkit_entry(data=data)
    write(isolated_caches / "weights" / entry.filename, data + b"extra")
    result = w.verify(entry)
    assert result.status == "corrupt" and "size mismatch" in result.detail
    assert result.expected_size == len(data) and result.actual_size == len(data) + 5


def test_empty_file_is_corrupt_even_without_published_digest(isolated_caches: Path) -> None:
    entry = toolkit_entry(data=None)
    write(isolated_caches / "weights" / entry.filename, b"")
    assert w.verify(entry).status == "corrupt"


class _Payload:
    """Unpickling this would create a file: the side effect a weights-only loader must never allow."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_non_weights_pickle_is_refused_without_running_it(isolated_caches: Path, writer: str) -> None:
    marker = isolated_caches / "payload-ran"
    buffer = io.BytesIO()
    if writer == "torch.save":
        torch.save({"weight": torch.zeros(2), "evil": _Payload(marker)}, buffer)
    else:
        pickle.dump({"evil": _Payload(marker)}, buffer, protocol=2)
    data = buffer.getvalue()
    entry = toolkit_entry(data=data)  # even a correctly pinned file must not be unpickled blindly
    write(isolated_caches / "weights" / entry.filename, data)
    assert w.verify(entry).status == "ok"
    with pytest.raises(w.WeightsCorruptError, match="not a plain weights file; refused to unpickle"):
        w.load_torch(entry)
    assert not marker.exists()


def test_safetensors_and_numpy_loaders(isolated_caches: Path) -> None:
    tensors = {"a": torch.randn(3, 2), "b": torch.arange(5)}
    st_path = isolated_caches / "weights" / "t.safetensors"
    st_path.parent.mkdir(parents=True)
    save_file(tensors, str(st_path))
    st_entry = toolkit_entry("test-st", data=st_path.read_bytes(), filename="t.safetensors")
    loaded = w.load_safetensors(st_entry)
    assert torch.equal(loaded["a"], tensors["a"]) and torch.equal(loaded["b"], tensors["b"])
    assert torch.equal(w.load(st_entry)["a"], tensors["a"])

    npz_path = isolated_caches / "weights" / "p.npz"
    np.savez(npz_path, mu=np.arange(4.0), cov=np.eye(2))
    np_entry = toolkit_entry("test-np", data=None, filename="p.npz")
    params = w.load_numpy(np_entry)
    assert np.array_equal(params["mu"], np.arange(4.0)) and np.array_equal(params["cov"], np.eye(2))

    write(isolated_caches / "weights" / "bad.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(w.WeightsCorruptError, match="safetensors"):
        w.load_safetensors(toolkit_entry("test-bad", data=None, filename="bad.safetensors"))


# ------------------------------------------------------------------ pre-placed (offline) files
def test_preplaced_torch_hub_files_are_found_offline(isolated_caches: Path) -> None:
    checkpoints = isolated_caches / "torch" / "hub" / "checkpoints"
    random_bytes = os.urandom(4096)
    fid = write(checkpoints / "pt_inception-2015-12-05-6726825d.pth", random_bytes)
    alexnet = write(checkpoints / "alexnet-owt-7be5be79.pth", random_bytes)
    fan = write(checkpoints / "2DFAN4-11f355bf06.pth.tar", random_bytes)
    assert w.path("fid-inception") == fid
    assert w.path("lpips-alexnet") == alexnet and w.path("fan-2d") == fan
    # Random bytes are not the published files: reporting them as corrupt is the right answer.
    fid_result = w.verify("fid-inception")
    assert fid_result.status == "corrupt" and "truncated" in fid_result.detail  # 4 KiB of a 95.6 MB file
    alex_result = w.verify("lpips-alexnet")
    assert alex_result.status == "corrupt" and "truncated" in alex_result.detail  # the size rules it out unhashed
    assert alex_result.expected_sha256 == w.REGISTRY["lpips-alexnet"].sha256
    # An entry that knows only torchvision's prefix (a private mirror) checks the prefix after hashing.
    prefix_only = dataclasses.replace(w.REGISTRY["lpips-alexnet"], sha256=None, size=None)
    alex_result = w.verify(prefix_only)
    assert alex_result.status == "corrupt" and "7be5be79" in alex_result.detail
    assert alex_result.actual_sha256 == sha256_of(random_bytes)
    assert w.verify("fan-2d").status == "corrupt"
    with pytest.raises(w.WeightsCorruptError):
        w.load_torch("fid-inception")


def _place_hf_model(hub: Path, repo_id: str, commit: str, files: dict[str, bytes], *, branch: str | None = "main",
                    symlinks: bool = True) -> Path:
    """Lay files out like huggingface_hub does: blobs/<sha256>, snapshots/<commit>/<path> -> blob, refs/<branch>."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    for rel, data in files.items():
        target = snapshot / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if symlinks:
            blob = write(repo / "blobs" / sha256_of(data), data)
            target.symlink_to(os.path.relpath(blob, target.parent))
        else:
            target.write_bytes(data)
    if branch:
        write(repo / "refs" / branch, commit.encode())
    return snapshot


def test_preplaced_hf_cache_is_found_offline(isolated_caches: Path) -> None:
    hub = isolated_caches / "hf" / "hub"
    config = json.dumps({"model_type": "wav2vec2"}).encode()
    st_path = isolated_caches / "w2v.safetensors"
    save_file({"proj.weight": torch.randn(2, 2)}, str(st_path))
    other_commit = "1" * 40  # what transformers downloaded on some other day (refs/main points at it)
    snapshot = _place_hf_model(hub, "facebook/wav2vec2-base-960h", other_commit, {
        "config.json": config, "preprocessor_config.json": b"{}", "model.safetensors": st_path.read_bytes(),
    })
    assert w.path("wav2vec2-base-960h") == snapshot
    assert w.weights_file("wav2vec2-base-960h") == snapshot / "model.safetensors"
    result = w.verify("wav2vec2-base-960h")
    assert result.status == "corrupt"  # random tensors are not the published model.safetensors
    assert result.expected_sha256 == w.REGISTRY["wav2vec2-base-960h"].sha256

    vae_file = isolated_caches / "vae.safetensors"
    save_file({"decoder.conv_in.weight": torch.randn(4, 4)}, str(vae_file))
    vae_bytes = vae_file.read_bytes()
    entry = w.REGISTRY["sd-vae-ft-mse"]
    vae_snapshot = _place_hf_model(hub, entry.repo_id or "", entry.revision, {
        "config.json": b'{"_class_name": "AutoencoderKL"}',
        "diffusion_pytorch_model.safetensors": vae_bytes,
    }, branch=None, symlinks=False)
    assert w.path("sd-vae-ft-mse") == vae_snapshot
    assert w.verify("sd-vae-ft-mse").status == "corrupt"  # the pinned entry refuses random tensors
    unpinned = dataclasses.replace(entry, size=None, sha256=None)  # a private entry with no digest
    result = w.verify(unpinned)
    assert result.status == "unpinned" and result.actual_sha256 == sha256_of(vae_bytes)
    assert result.actual_sha256 in result.detail  # the observed digest is reported honestly
    assert "decoder.conv_in.weight" in w.load_safetensors(unpinned)


def test_hf_incomplete_snapshot_and_dangling_symlink_count_as_missing(isolated_caches: Path) -> None:
    hub = isolated_caches / "hf" / "hub"
    snapshot = _place_hf_model(hub, "facebook/hubert-base-ls960", "2" * 40, {"config.json": b"{}"})
    assert w.verify("hubert-base-ls960").status == "missing"  # no weights, no preprocessor config
    (snapshot / "preprocessor_config.json").write_text("{}")
    (snapshot / "pytorch_model.bin").symlink_to("../../blobs/never-downloaded")
    assert w.verify("hubert-base-ls960").status == "missing"


def test_hf_alternative_weights_file_is_accepted_but_unpinned(isolated_caches: Path) -> None:
    hub = isolated_caches / "hf" / "hub"
    st_file = isolated_caches / "h.safetensors"
    save_file({"x": torch.ones(3)}, str(st_file))
    _place_hf_model(hub, "facebook/hubert-base-ls960", "3" * 40, {
        "config.json": b"{}", "preprocessor_config.json": b"{}", "model.safetensors": st_file.read_bytes(),
    })
    result = w.verify("hubert-base-ls960")
    assert result.status == "unpinned" and result.path.name == "model.safetensors"
    assert torch.equal(w.load("hubert-base-ls960")["x"], torch.ones(3))


def test_hf_prefers_the_snapshot_its_ref_points_to(isolated_caches: Path) -> None:
    hub = isolated_caches / "hf" / "hub"
    entry = w.WeightFile(name="test-hf", description="d", consumer="c", url="https://example.invalid/x",
                         filename="model.safetensors", size=None, sha256=None, location="hf_hub", license="l",
                         repo_id="org/model", revision="main", extra_files=("config.json",))
    files = {"config.json": b"{}", "model.safetensors": b"weights"}
    current = _place_hf_model(hub, "org/model", "a" * 40, files)
    newer = _place_hf_model(hub, "org/model", "b" * 40, files, branch=None)
    os.utime(current, (1, 1))  # the ref'd one is older on disk: the ref must win anyway
    assert w.path(entry) == current
    (hub / "models--org--model" / "refs" / "main").unlink()
    assert w.path(entry) == newer  # no ref: any complete snapshot, newest first


# ---------------------------------------------------------------------------------- fetching
def test_fetch_downloads_verifies_and_is_idempotent(server, isolated_caches: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    base, root, handler = server
    _, data = state_dict_bytes()
    write(root / "net.pth", data)
    entry = toolkit_entry(data=data, url=f"{base}/net.pth")
    dest = w.fetch(entry)
    assert dest == isolated_caches / "weights" / entry.filename
    assert dest.read_bytes() == data and no_part_files(dest.parent)
    assert w.verify(entry).status == "ok"
    assert "test-net" in capsys.readouterr().err  # the progress bar (label, bytes, speed) went to stderr
    assert handler.requests == ["/net.pth"]
    w.fetch(entry)  # already there and good: no second download
    assert handler.requests == ["/net.pth"]
    w.fetch(entry, force=True)
    assert handler.requests == ["/net.pth", "/net.pth"]


def test_fetch_replaces_a_corrupt_copy(server, isolated_caches: Path) -> None:  # type: ignore[no-untyped-def]
    base, root, _ = server
    _, data = state_dict_bytes()
    write(root / "net.pth", data)
    entry = toolkit_entry(data=data, url=f"{base}/net.pth")
    write(isolated_caches / "weights" / entry.filename, b"garbage")
    assert w.verify(entry).status == "corrupt"
    w.fetch(entry, progress=False)
    assert w.verify(entry).status == "ok"


def test_fetch_of_wrong_bytes_leaves_nothing(server, isolated_caches: Path) -> None:  # type: ignore[no-untyped-def]
    base, root, _ = server
    _, good = state_dict_bytes(0)
    _, served = state_dict_bytes(1)  # same size, different content
    write(root / "net.pth", served)
    entry = toolkit_entry(data=good, url=f"{base}/net.pth")
    with pytest.raises(w.WeightsCorruptError, match="failed verification"):
        w.fetch(entry, progress=False)
    dest = isolated_caches / "weights" / entry.filename
    assert not dest.exists() and no_part_files(isolated_caches / "weights")


def test_fetch_of_a_web_page_or_a_wrong_git_blob_leaves_nothing(server, isolated_caches: Path) -> None:  # type: ignore[no-untyped-def]
    """A sharing link answers with an HTML page (Google Drive folders do): refused, not saved as the weights.
    An entry pinned by git blob id refuses bytes with another id."""
    base, root, _ = server
    write(root / "folder.html", b"<html><body>Sign in to continue</body></html>")
    entry = toolkit_entry(url=f"{base}/folder.html", pin=False)
    with pytest.raises(w.WeightsDownloadError, match="web page"):
        w.fetch(entry, progress=False)
    _, good = state_dict_bytes(0)
    _, served = state_dict_bytes(1)
    write(root / "net.pth", served)
    blob = hashlib.sha1(b"blob %d\0" % len(good) + good).hexdigest()
    pinned = dataclasses.replace(toolkit_entry(url=f"{base}/net.pth", pin=False), git_blob_sha1=blob)
    with pytest.raises(w.WeightsCorruptError, match="wrong git blob id"):
        w.fetch(pinned, progress=False)
    assert no_part_files(isolated_caches / "weights") and not (isolated_caches / "weights" / pinned.filename).exists()
    write(root / "net.pth", good)
    assert w.verify(pinned).status == "missing" and w.fetch(pinned, progress=False).is_file()
    assert w.verify(pinned).status == "ok" and "git blob id" in w.verify(pinned).detail


def test_fetch_with_wrong_size_or_http_error_leaves_nothing(server, isolated_caches: Path) -> None:  # type: ignore[no-untyped-def]
    base, root, _ = server
    _, data = state_dict_bytes()
    write(root / "net.pth", data + b"tail")
    entry = toolkit_entry(data=data, url=f"{base}/net.pth")
    with pytest.raises(w.WeightsCorruptError, match="announces"):
        w.fetch(entry, progress=False)
    missing = toolkit_entry(data=data, url=f"{base}/absent.pth")
    with pytest.raises(w.WeightsDownloadError, match="HTTP 404"):
        w.fetch(missing, progress=False)
    unreachable = toolkit_entry(data=data, url="http://127.0.0.1:9/net.pth")  # discard port: refused
    with pytest.raises(w.WeightsDownloadError):
        w.fetch(unreachable, progress=False)
    assert not (isolated_caches / "weights" / entry.filename).exists()
    assert no_part_files(isolated_caches / "weights")


def test_fetch_hf_model_into_hub_cache_layout(server, isolated_caches: Path) -> None:  # type: ignore[no-untyped-def]
    base, root, handler = server
    commit = "c" * 40
    handler.repo_commit = commit  # the Hub names the commit a branch resolves to
    st_file = isolated_caches / "m.safetensors"
    save_file({"w": torch.randn(2)}, str(st_file))
    weights_bytes = st_file.read_bytes()
    served = root / "org" / "model" / "resolve"
    write(served / "main" / "config.json", b'{"hidden": 2}')
    write(served / commit / "config.json", b'{"hidden": 2}')
    write(served / commit / "pytorch_model.bin", state_dict_bytes()[1])
    write(served / commit / "model.safetensors", weights_bytes)
    entry = w.WeightFile(name="test-hf", description="d", consumer="c", url=f"{base}/org/model/resolve/main/x",
                         filename="model.bin.missing", size=None, sha256=None, location="hf_hub", license="l",
                         repo_id="org/model", revision="main", extra_files=("config.json",),
                         alternatives=("model.safetensors", "pytorch_model.bin"))
    snapshot = w.fetch(entry, endpoint=base, progress=False)
    hub = isolated_caches / "hf" / "hub"
    assert snapshot == hub / "models--org--model" / "snapshots" / commit
    assert (hub / "models--org--model" / "refs" / "main").read_text() == commit
    assert (snapshot / "model.safetensors").read_bytes() == weights_bytes  # primary 404 -> first alternative
    assert not (snapshot / "pytorch_model.bin").exists() and no_part_files(hub)
    # After the first file, the rest are requested by commit so they come from one snapshot.
    assert handler.requests[0] == "/org/model/resolve/main/config.json"
    assert all(r.startswith(f"/org/model/resolve/{commit}/") for r in handler.requests[1:])
    # huggingface_hub itself finds the files offline in this layout.
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache("org/model", "config.json", cache_dir=str(hub))
    assert found is not None and Path(found) == snapshot / "config.json"
    assert w.verify(entry).status == "unpinned"


def test_fetch_hf_pinned_digest_mismatch_leaves_no_weights(server, isolated_caches: Path) -> None:  # type: ignore[no-untyped-def]
    base, root, _ = server
    commit = "d" * 40
    served = root / "org" / "pinned" / "resolve" / commit
    write(served / "config.json", b"{}")
    write(served / "model.safetensors", b"not the published bytes")
    entry = w.WeightFile(name="test-pinned", description="d", consumer="c", url="https://example.invalid/x",
                         filename="model.safetensors", size=None, sha256=sha256_of(b"published"),
                         location="hf_hub", license="l", repo_id="org/pinned", revision=commit,
                         extra_files=("config.json",))
    with pytest.raises(w.WeightsCorruptError):
        w.fetch(entry, endpoint=base, progress=False)
    snapshot = isolated_caches / "hf" / "hub" / "models--org--pinned" / "snapshots" / commit
    assert not (snapshot / "model.safetensors").exists() and no_part_files(snapshot)
    assert w.verify(entry).status == "missing"


# -------------------------------------------------------------------------- verification cache
def test_verification_cache_avoids_rehashing(isolated_caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, data = state_dict_bytes()
    entry = toolkit_entry(data=data)
    target = write(isolated_caches / "weights" / entry.filename, data)
    calls: list[Path] = []
    real = w._sha256_file

    def counting(file: Path) -> str:
        calls.append(file)
        return real(file)

    monkeypatch.setattr(w, "_sha256_file", counting)
    assert w.verify(entry).status == "ok"
    assert w.verify(entry).status == "ok"
    w.load_torch(entry)
    assert len(calls) == 1  # hashed once, then served from the cache
    cache_file = isolated_caches / "toolkit-cache" / "weights-verify.json"
    record = json.loads(cache_file.read_text())["files"][str(target.resolve())]
    assert record["sha256"] == sha256_of(data) and record["size"] == len(data)
    assert [p.name for p in cache_file.parent.iterdir()] == ["weights-verify.json"]  # atomic: no temp left

    stat = target.stat()
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # "modified"
    assert w.verify(entry).status == "ok"
    assert len(calls) == 2

    cache_file.write_text("{ not json")  # a damaged cache is ignored, not fatal
    assert w.verify(entry).status == "ok"
    assert len(calls) == 3


# --------------------------------------------------------------------------------------- CLI
runner = CliRunner()


def test_cli_list_shows_every_registry_entry(isolated_caches: Path) -> None:
    write(isolated_caches / "weights" / "niqe_pris_params.npz", b"some bytes")  # not BasicSR's file
    result = runner.invoke(cli.app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in w.REGISTRY:
        assert name in result.stdout
    assert "corrupt" in result.stdout and "missing" in result.stdout
    narrow = runner.invoke(cli.app, ["list"], env={"COLUMNS": "80"})
    assert narrow.exit_code == 0 and all(name in narrow.stdout for name in w.REGISTRY)
    long = runner.invoke(cli.app, ["list", "--long"], env={"COLUMNS": "2000"})
    assert long.exit_code == 0
    assert w.REGISTRY["fid-inception"].url in long.stdout and w.REGISTRY["fid-inception"].sha256 in long.stdout


def test_cli_path_exit_codes(isolated_caches: Path) -> None:
    missing = runner.invoke(cli.app, ["path", "syncnet"])
    assert missing.exit_code == 1 and missing.stdout == ""
    assert w.REGISTRY["syncnet"].url in missing.stderr and "toolkit weights fetch syncnet" in missing.stderr
    target = write(isolated_caches / "weights" / "syncnet_v2.model", b"x")
    present = runner.invoke(cli.app, ["path", "syncnet"])
    assert present.exit_code == 0 and present.stdout.strip() == str(target)
    unknown = runner.invoke(cli.app, ["path", "nope"])
    assert unknown.exit_code == 2 and "unknown weights name" in unknown.stderr


def test_cli_verify_exit_codes(isolated_caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = runner.invoke(cli.app, ["verify"], env={"COLUMNS": "200"})
    assert everything.exit_code == 0, everything.output  # all missing, none named: reported, not an error
    assert "missing" in everything.stdout
    named_missing = runner.invoke(cli.app, ["verify", "syncnet"])
    assert named_missing.exit_code == 1 and w.REGISTRY["syncnet"].url in named_missing.stderr

    monkeypatch.setitem(w.REGISTRY, "test-unpinned", toolkit_entry("test-unpinned", filename="unpinned.npz"))
    write(isolated_caches / "weights" / "unpinned.npz", b"npz?")
    unpinned = runner.invoke(cli.app, ["verify", "test-unpinned"], env={"COLUMNS": "200"})
    assert unpinned.exit_code == 0 and "unpinned" in unpinned.stdout

    write(isolated_caches / "weights" / "sfd_face.pth", b"not the detector")
    corrupt = runner.invoke(cli.app, ["verify"], env={"COLUMNS": "200"})
    assert corrupt.exit_code == 1 and "corrupt" in corrupt.stdout
    assert "sfd_face.pth" in corrupt.stderr and w.REGISTRY["syncnet-s3fd"].url in corrupt.stderr


def test_cli_fetch(server, isolated_caches: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    base, root, _ = server
    _, data = state_dict_bytes()
    write(root / "net.pth", data)
    monkeypatch.setitem(w.REGISTRY, "test-net", toolkit_entry(data=data, url=f"{base}/net.pth"))
    monkeypatch.setitem(w.REGISTRY, "test-bad", toolkit_entry("test-bad", data=b"x" * len(data),
                                                              filename="bad.pth", url=f"{base}/net.pth"))
    ok = runner.invoke(cli.app, ["fetch", "test-net"])
    assert ok.exit_code == 0, ok.output
    assert "test-net: ok" in ok.stdout and (isolated_caches / "weights" / "test-net.pth").read_bytes() == data
    bad = runner.invoke(cli.app, ["fetch", "test-bad"])
    assert bad.exit_code == 1 and "failed verification" in bad.stderr
    assert not (isolated_caches / "weights" / "bad.pth").exists()
    assert runner.invoke(cli.app, ["fetch"]).exit_code == 2
    assert runner.invoke(cli.app, ["fetch", "nope"]).exit_code == 2


@pytest.mark.parametrize("command", ["list", "fetch", "verify", "path"])
def test_cli_help_shows_an_example(command: str) -> None:
    result = runner.invoke(cli.app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "Example" in result.stdout and "toolkit weights" in result.stdout


# ------------------------------------------------------------------------------ project policy
def test_no_torch_load_without_weights_only_true() -> None:
    """Every torch.load in the project passes weights_only=True (pickles can run code)."""
    offenders = []
    for folder in ("toolkit", "metrics", "baselines", "preprocessing", "leaderboards"):
        for source in (ROOT / folder).rglob("*.py"):
            tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "load"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "torch"):
                    safe = any(k.arg == "weights_only" and isinstance(k.value, ast.Constant) and k.value.value is True
                               for k in node.keywords)
                    if not safe:
                        offenders.append(f"{source.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, f"torch.load without weights_only=True: {offenders}"
