"""Every pretrained file the toolkit uses, in one table, and the only way the code loads them.

Usage::

    from talking_head.toolkit import weights

    weights.verify("syncnet").status     # "ok", "unpinned", "missing" or "corrupt" (size, sha256)
    weights.fetch("syncnet")             # download unless a usable copy is present; returns its path
    state = weights.load_torch("syncnet")  # verified, then torch.load(weights_only=True)

Details
-------

Each entry says where the file comes from (URL, size, sha256), which library or metric consumes it,
and where it lives on disk. Files are looked up where the consuming library itself looks, so a file
that is already there (downloaded earlier by that library, or copied in by hand on an offline
machine) is found without any network access:

* ``torch_hub``: ``torch.hub.get_dir()/checkpoints/<filename>`` (honours ``TORCH_HOME``), the
  directory ``torch.hub.load_state_dict_from_url`` uses; pytorch-fid, face-alignment and
  torchvision (for lpips) read their checkpoints from there.
* ``hf_hub``: the Hugging Face hub cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
  ``~/.cache/huggingface/hub``), layout ``models--{org}--{name}/snapshots/<commit>/<path-in-repo>``
  with ``refs/<branch>`` holding the commit of a branch. One entry is one model: ``filename`` is
  its weights file (the one that carries ``size``/``sha256``), ``extra_files`` are the small
  config files that must sit next to it, and ``alternatives`` are other weights files the model
  loader accepts instead (e.g. ``pytorch_model.bin`` for ``model.safetensors``). For these entries
  ``path()`` returns the snapshot *directory*, ready for ``from_pretrained(path(name))``.
* ``toolkit``: ``$TOOLKIT_WEIGHTS_DIR/<filename>``, default
  ``~/.cache/talking-head-toolkit/weights/<filename>``, for libraries that take explicit paths.

Integrity: ``verify()`` checks size and sha256 (or, where only that is published, the sha256
prefix torch hub puts in file names). A file without any published digest is reported as
"unpinned" together with its observed sha256 - never as "ok". Digests are cached per
(path, size, mtime, inode) in ``<toolkit cache>/weights-verify.json`` so large files are hashed once.

Safety: checkpoints are loaded with ``torch.load(..., weights_only=True)`` only; a pickle that
would construct arbitrary objects is refused (``WeightsCorruptError``) before anything in it runs.

Every function takes a registry name or a ``WeightFile``, so private mirrors and tests can use
entries that are not in ``REGISTRY``. The table itself (``WeightFile``, ``REGISTRY``) is
:mod:`toolkit.weight_files`; it is re-exported here.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from talking_head.toolkit import __version__
from talking_head.toolkit.fileio import atomic_path
from talking_head.toolkit.weight_files import HEX40, REGISTRY, WeightFile

Status = Literal["ok", "missing", "corrupt", "unpinned"]

HF_DEFAULT_ENDPOINT = "https://huggingface.co"
_CHUNK = 1 << 20  # 1 MiB: large enough for fast hashing/streaming, small enough for a smooth progress bar


# ---------------------------------------------------------------------------------------- errors
class WeightsError(Exception):
    """Base class of every error raised by this module."""


class UnknownWeightsError(WeightsError, LookupError):
    """A name that is not in REGISTRY."""


class WeightsMissingError(WeightsError, FileNotFoundError):
    """The file is not where it should be."""


class WeightsCorruptError(WeightsError, ValueError):
    """The file is present but wrong: bad size or digest, truncated, or not a plain weights file."""


class WeightsDownloadError(WeightsError, OSError):
    """The download itself failed (network, HTTP status); nothing was left at the destination."""


# ---------------------------------------------------------------------------------------- places
def get(name_or_entry: str | WeightFile) -> WeightFile:
    """The registry entry for a name (or the entry itself)."""
    if isinstance(name_or_entry, WeightFile):
        return name_or_entry
    try:
        return REGISTRY[name_or_entry]
    except KeyError:
        raise UnknownWeightsError(
            f"unknown weights name {name_or_entry!r}; known names: {', '.join(REGISTRY)}"
        ) from None


def cache_dir() -> Path:
    """The toolkit's cache root: $TOOLKIT_CACHE_DIR, else $XDG_CACHE_HOME/talking-head-toolkit (~/.cache/...)."""
    if os.environ.get("TOOLKIT_CACHE_DIR"):
        return Path(os.environ["TOOLKIT_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(xdg).expanduser() / "talking-head-toolkit"


def weights_dir() -> Path:
    """Where "toolkit" entries live: $TOOLKIT_WEIGHTS_DIR, else <cache_dir>/weights."""
    if os.environ.get("TOOLKIT_WEIGHTS_DIR"):
        return Path(os.environ["TOOLKIT_WEIGHTS_DIR"]).expanduser()
    return cache_dir() / "weights"


def torch_hub_checkpoints() -> Path:
    """torch hub's checkpoint directory, resolved now (so a changed TORCH_HOME is honoured)."""
    import torch.hub  # imported lazily: torch is slow to import and not needed for toolkit/hf entries

    return Path(torch.hub.get_dir()) / "checkpoints"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache, resolved like huggingface_hub does but at call time."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def _hf_repo_dir(entry: WeightFile) -> Path:
    assert entry.repo_id is not None
    return hf_hub_cache() / ("models--" + entry.repo_id.replace("/", "--"))


def destination(name: str | WeightFile) -> Path:
    """Where the file goes (for hf_hub: the snapshot directory `fetch` fills), present or not."""
    entry = get(name)
    if entry.location == "torch_hub":
        return torch_hub_checkpoints() / entry.filename
    if entry.location == "toolkit":
        return weights_dir() / entry.filename
    repo = _hf_repo_dir(entry)
    ref = repo / "refs" / entry.revision
    commit = ref.read_text().strip() if ref.is_file() else entry.revision
    return repo / "snapshots" / commit


def _hf_required(entry: WeightFile) -> str:
    weights = entry.filename + "".join(f" (or {a})" for a in entry.alternatives)
    return ", ".join((*entry.extra_files, weights))


def _hf_weights_in(snapshot: Path, entry: WeightFile) -> Path | None:
    """The weights file of a complete snapshot (primary name preferred), None if incomplete."""
    if not all((snapshot / f).is_file() for f in entry.extra_files):
        return None
    for candidate in (entry.filename, *entry.alternatives):
        if (snapshot / candidate).is_file():  # is_file follows the cache's symlinks; a dangling one is missing
            return snapshot / candidate
    return None


def _find_hf_snapshot(entry: WeightFile) -> Path | None:
    """A snapshot holding all of the model's files: the pinned/ref'd one first, then any other."""
    snapshots = _hf_repo_dir(entry) / "snapshots"
    if not snapshots.is_dir():
        return None
    preferred = destination(entry)
    others = sorted(
        (p for p in snapshots.iterdir() if p.is_dir() and p != preferred),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for snapshot in (preferred, *others):
        if snapshot.is_dir() and _hf_weights_in(snapshot, entry) is not None:
            return snapshot
    return None


def _missing_message(entry: WeightFile) -> str:
    if entry.location == "hf_hub":
        where = f"  Put these files from the Hugging Face repo {entry.repo_id} (revision {entry.revision}):\n"
        where += f"    {_hf_required(entry)}\n  into: {destination(entry)}/\n"
        where += "  (the Hugging Face hub cache; HF_HUB_CACHE / HF_HOME move it)\n"
        source = f"https://huggingface.co/{entry.repo_id}/tree/{entry.revision}  (weights: {entry.url})"
    else:
        env = "TORCH_HOME moves it" if entry.location == "torch_hub" else "TOOLKIT_WEIGHTS_DIR moves it"
        where = f"  Put the file at: {destination(entry)}  ({env})\n"
        source = entry.url
    return (
        f"Pretrained weights '{entry.name}' are missing: {entry.description}. Needed by {entry.consumer}.\n"
        f"  Download: {source}\n"
        f"{where}"
        f"  Or run: toolkit weights fetch {entry.name}"
    )


def path(name: str | WeightFile) -> Path:
    """The file on disk (for hf_hub: the snapshot directory). Raises WeightsMissingError if absent."""
    entry = get(name)
    if entry.location == "hf_hub":
        found = _find_hf_snapshot(entry)
    else:
        candidate = destination(entry)
        found = candidate if candidate.is_file() else None
    if found is None:
        raise WeightsMissingError(_missing_message(entry))
    return found


def weights_file(name: str | WeightFile) -> Path:
    """The single file that carries the weights (same as `path` except for hf_hub snapshots)."""
    entry = get(name)
    found = path(entry)
    if entry.location == "hf_hub":
        weights = _hf_weights_in(found, entry)
        assert weights is not None  # _find_hf_snapshot only returns complete snapshots
        return weights
    return found


# --------------------------------------------------------------------------------- verification
def _sha256_file(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_cache_file() -> Path:
    return cache_dir() / "weights-verify.json"


def _read_verify_cache() -> dict[str, Any]:
    try:
        data = json.loads(_verify_cache_file().read_text(encoding="utf-8"))
        return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else {"files": {}}
    except (OSError, ValueError):
        return {"files": {}}  # absent or damaged cache: start over, it only saves time


def _atomic_write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _stat_key(file: Path) -> dict[str, int]:
    st = file.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}


def _remember_digest(file: Path, sha256: str) -> None:
    key = str(file.resolve())
    data = _read_verify_cache()
    files = {k: v for k, v in data["files"].items() if Path(k).exists()}  # forget deleted files
    files[key] = {**_stat_key(file), "sha256": sha256}
    try:
        _atomic_write_text(_verify_cache_file(), json.dumps({"version": 1, "files": files}, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only cache dir must not break loading; we just hash again next time


def file_sha256(file: str | os.PathLike[str]) -> str:
    """sha256 of a file, reusing the cached digest while its size, mtime and inode are unchanged."""
    file = Path(file)
    record = _read_verify_cache()["files"].get(str(file.resolve()))
    stat = _stat_key(file)
    if isinstance(record, dict) and all(record.get(k) == v for k, v in stat.items()) and record.get("sha256"):
        return str(record["sha256"])
    digest = _sha256_file(file)
    _remember_digest(file, digest)
    return digest


def git_blob_sha1(file: str | os.PathLike[str]) -> str:
    """The id git gives the file's bytes: sha1 of ``b"blob <size>\\0"`` followed by the content."""
    file = Path(file)
    digest = hashlib.sha1(f"blob {file.stat().st_size}\0".encode())
    with open(file, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of `verify`. `path` is the checked file, or where it is expected when missing."""

    name: str
    status: Status
    path: Path
    detail: str
    expected_size: int | None = None
    actual_size: int | None = None
    expected_sha256: str | None = None  # full digest, or the known prefix
    actual_sha256: str | None = None

    @property
    def usable(self) -> bool:
        """Present and not known to be wrong ("ok" or "unpinned")."""
        return self.status in ("ok", "unpinned")


def _check_file(entry: WeightFile, file: Path, size: int | None, sha256: str | None, prefix: str | None) -> VerifyResult:
    actual_size = file.stat().st_size
    expected = sha256 or prefix
    common = dict(name=entry.name, path=file, expected_size=size, actual_size=actual_size, expected_sha256=expected)
    if size is not None and actual_size != size:
        kind = "truncated" if actual_size < size else "size mismatch"
        # No need to hash: the size alone proves it is not the published file.
        return VerifyResult(status="corrupt", detail=f"{kind}: {actual_size:,} bytes, expected {size:,}", **common)
    if actual_size == 0:
        return VerifyResult(status="corrupt", detail="empty file (0 bytes)", **common)
    actual = file_sha256(file)
    common["actual_sha256"] = actual
    if sha256 is not None:
        if actual == sha256:
            return VerifyResult(status="ok", detail="sha256 matches", **common)
        return VerifyResult(status="corrupt", detail="wrong sha256", **common)
    if entry.git_blob_sha1 is not None and sha256 is None and prefix is None:
        blob = git_blob_sha1(file)
        if blob == entry.git_blob_sha1:
            return VerifyResult(status="ok", detail=f"git blob id {blob} matches (no sha256 published)", **common)
        return VerifyResult(status="corrupt", detail=f"wrong git blob id {blob} (expected {entry.git_blob_sha1})",
                            **common)
    if prefix is not None:
        if actual.startswith(prefix):
            return VerifyResult(status="ok", detail=f"sha256 prefix {prefix} matches (no full digest published)", **common)
        return VerifyResult(status="corrupt", detail=f"wrong sha256 (expected prefix {prefix})", **common)
    return VerifyResult(status="unpinned", detail=f"no published digest; observed sha256 {actual}", **common)


def verify(name: str | WeightFile) -> VerifyResult:
    """Check size and digest of the file. Never raises for missing/corrupt files: see `.status`."""
    entry = get(name)
    try:
        file = weights_file(entry)
    except WeightsMissingError as err:
        return VerifyResult(name=entry.name, status="missing", path=destination(entry), detail=str(err),
                            expected_size=entry.size, expected_sha256=entry.sha256 or entry.sha256_prefix)
    if entry.location == "hf_hub" and file.name != Path(entry.filename).name:
        # An accepted alternative (e.g. pytorch_model.bin): the pinned digest is for the primary file.
        return _check_file(entry, file, None, None, None)
    return _check_file(entry, file, entry.size, entry.sha256, entry.sha256_prefix)


def _fix_hint(entry: WeightFile, file: Path) -> str:
    return (
        f"  Source: {entry.url}\n"
        f"  Fix: run `toolkit weights fetch {entry.name}` (replaces the bad file), "
        f"or download it again and put it at {file}"
    )


def _corrupt_message(entry: WeightFile, result: VerifyResult) -> str:
    lines = [f"Pretrained weights '{entry.name}' at {result.path} are corrupt: {result.detail}."]
    if result.expected_sha256 is not None:
        lines.append(f"  sha256 expected {result.expected_sha256}, actual {result.actual_sha256 or 'not computed'}")
    if result.expected_size is not None:
        lines.append(f"  size expected {result.expected_size:,} bytes, actual {result.actual_size:,} bytes")
    return "\n".join(lines) + "\n" + _fix_hint(entry, result.path)


def _usable(entry: WeightFile) -> VerifyResult:
    """The verification of a present, not corrupt file; raises WeightsMissingError / WeightsCorruptError."""
    result = verify(entry)
    if result.status == "missing":
        raise WeightsMissingError(result.detail)
    if result.status == "corrupt":
        raise WeightsCorruptError(_corrupt_message(entry, result))
    return result


def require(name: str | WeightFile) -> Path:
    """Verify and return the weights file; raise WeightsMissingError / WeightsCorruptError otherwise."""
    return _usable(get(name)).path


# -------------------------------------------------------------------------------------- loading
def load_torch(name: str | WeightFile, map_location: Any = "cpu") -> Any:
    """Verify, then `torch.load(..., weights_only=True)`: tensors and plain containers only."""
    import pickle

    import torch

    entry = get(name)
    file = require(entry)
    try:
        return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise WeightsCorruptError(
                f"'{entry.name}' at {file} is not a plain weights file; refused to unpickle "
                f"(it asks to build objects outside tensors/containers).\n"
                f"  Detail: {str(err).splitlines()[0]}\n{_fix_hint(entry, file)}"
            ) from None
        raise WeightsCorruptError(f"'{entry.name}' at {file} could not be read: {err}\n{_fix_hint(entry, file)}") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise WeightsCorruptError(
            f"'{entry.name}' at {file} could not be read (truncated or damaged?): {str(err).splitlines()[0]}\n"
            f"{_fix_hint(entry, file)}"
        ) from err


def load_torchscript(name: str | WeightFile, map_location: Any = "cpu") -> Any:
    """Verify against a pinned digest, then `torch.jit.load`. A TorchScript file runs its own code, so a file
    whose digest is not pinned in the registry (status "unpinned") is refused rather than trusted."""
    import torch

    entry = get(name)
    result = _usable(entry)
    if result.status != "ok":
        raise WeightsCorruptError(
            f"'{entry.name}' at {result.path} is TorchScript (it carries code) and the registry pins no digest to "
            f"check it against; refused to load it (observed sha256 {result.actual_sha256}).\n{_fix_hint(entry, result.path)}")
    try:
        with warnings.catch_warnings():  # torch 2.9+ calls TorchScript deprecated; the reference files are TorchScript
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
            return torch.jit.load(str(result.path), map_location=map_location)
    except (RuntimeError, OSError, ValueError) as err:
        raise WeightsCorruptError(f"'{entry.name}' at {result.path} could not be read as TorchScript: "
                                  f"{str(err).splitlines()[0]}\n{_fix_hint(entry, result.path)}") from err


def load_safetensors(name: str | WeightFile, device: str = "cpu") -> dict[str, Any]:
    """Verify, then read a .safetensors file into a dict of tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    entry = get(name)
    file = require(entry)
    try:
        return load_file(file, device=device)
    except (SafetensorError, OSError, ValueError) as err:
        raise WeightsCorruptError(
            f"'{entry.name}' at {file} could not be read as safetensors: {err}\n{_fix_hint(entry, file)}"
        ) from err


def load_numpy(name: str | WeightFile) -> dict[str, Any]:
    """Verify, then read a .npz (or .npy) without pickle support; returns name -> array."""
    import numpy as np

    entry = get(name)
    file = require(entry)
    try:
        data = np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise WeightsCorruptError(
            f"'{entry.name}' at {file} could not be read as numpy data (pickled objects are refused): {err}\n"
            f"{_fix_hint(entry, file)}"
        ) from err
    if isinstance(data, np.ndarray):  # a .npy file holds a single array
        return {"arr_0": data}
    with data:
        try:
            return {key: data[key] for key in data.files}
        except (ValueError, OSError, EOFError) as err:  # members are decoded lazily
            raise WeightsCorruptError(
                f"'{entry.name}' at {file} could not be read as numpy data (pickled objects are refused): {err}\n"
                f"{_fix_hint(entry, file)}"
            ) from err


def load(name: str | WeightFile, map_location: Any = "cpu") -> Any:
    """Load with the reader that fits the file actually present (.safetensors, .npz/.npy, else torch)."""
    entry = get(name)
    suffix = weights_file(entry).suffix
    if suffix == ".safetensors":
        return load_safetensors(entry, device=str(map_location))
    if suffix in (".npz", ".npy"):
        return load_numpy(entry)
    return load_torch(entry, map_location=map_location)


# ------------------------------------------------------------------------------------- download
class _RecordingRedirects(urllib.request.HTTPRedirectHandler):
    """Keeps a header of redirect responses: the Hub sends X-Repo-Commit on its 302, not on the CDN reply."""

    def __init__(self) -> None:
        self.repo_commit: str | None = None

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        self.repo_commit = self.repo_commit or headers.get("X-Repo-Commit")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, entry: WeightFile, timeout: float = 60.0) -> tuple[Any, str | None]:
    """Open a URL: (response, Hub commit header if any). HTTP errors propagate (callers handle 404)."""
    redirects = _RecordingRedirects()
    opener = urllib.request.build_opener(redirects)
    request = urllib.request.Request(url, headers={"User-Agent": f"talking-head-toolkit/{__version__}"})
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
        raise WeightsDownloadError(f"Could not download {url}: {err}.\n{_missing_message(entry)}") from err
    return response, response.headers.get("X-Repo-Commit") or redirects.repo_commit


def _save(response: Any, dest: Path, entry: WeightFile, url: str, *, label: str, size: int | None = None,
          sha256: str | None = None, prefix: str | None = None, progress: bool = True,
          on_bytes: Callable[[int], None] | None = None) -> None:
    """Stream a response to `<dest>.part`, check it, then rename it onto `dest` (`on_bytes(n)` after each chunk).

    On any failure (network, disk, size, digest) the .part file is removed and `dest` is untouched.
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    if (response.headers.get("Content-Type") or "").lower().startswith("text/html"):
        raise WeightsDownloadError(
            f"Download of '{entry.name}' from {url} refused: the server sent a web page, not the file (a sharing "
            f"page that needs a browser). Download it by hand from {entry.url} and put it at {dest}.")
    length_header = response.headers.get("Content-Length")
    announced = int(length_header) if length_header and length_header.isdigit() else None
    if size is not None and announced is not None and announced != size:
        raise WeightsCorruptError(
            f"Download of '{entry.name}' from {url} refused: the server announces {announced:,} bytes, "
            f"the published size is {size:,}. Nothing was written to {dest}."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    received = 0
    try:
        try:
            with open(part, "wb") as out, Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TimeRemainingColumn(), console=Console(stderr=True), disable=not progress,
            ) as bar:
                task = bar.add_task(label, total=announced or size)
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(task, advance=len(chunk))
                    if on_bytes is not None:
                        on_bytes(len(chunk))
        except (OSError, http.client.HTTPException) as err:
            raise WeightsDownloadError(f"Download of '{entry.name}' from {url} was interrupted: {err}") from err
        actual = digest.hexdigest()
        problem = None
        if announced is not None and received != announced:
            problem = f"truncated: received {received:,} of {announced:,} bytes"
        elif size is not None and received != size:
            problem = f"size mismatch: received {received:,} bytes, expected {size:,}"
        elif received == 0:
            problem = "empty response"
        elif sha256 is not None and actual != sha256:
            problem = f"wrong sha256: expected {sha256}, got {actual}"
        elif prefix is not None and not actual.startswith(prefix):
            problem = f"wrong sha256: expected prefix {prefix}, got {actual}"
        elif sha256 is None and prefix is None and entry.git_blob_sha1 is not None:
            blob = git_blob_sha1(part)  # the blob id needs the size first: a second pass over the file
            if blob != entry.git_blob_sha1:
                problem = f"wrong git blob id: expected {entry.git_blob_sha1}, got {blob}"
        if problem:
            raise WeightsCorruptError(
                f"Download of '{entry.name}' from {url} failed verification ({problem}); "
                f"nothing was written to {dest}. Try again later, or download it by hand and put it at {dest}."
            )
        os.replace(part, dest)  # atomic: readers see no file or the complete, checked one
    finally:
        part.unlink(missing_ok=True)
    _remember_digest(dest, actual)  # computed while streaming: no second pass over a large file


def hf_endpoint() -> str:
    """The Hub base URL: $HF_ENDPOINT (as huggingface_hub reads it), else https://huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def _fetch_hf(entry: WeightFile, force: bool, endpoint: str | None, progress: bool,
              on_bytes: Callable[[int], None] | None = None) -> Path:
    """Download a model's files into the hub cache layout (snapshots/<commit>/..., refs/<branch>)."""
    base = (endpoint or hf_endpoint()).rstrip("/")
    repo_dir = _hf_repo_dir(entry)
    revision = entry.revision
    commit = revision if HEX40.match(revision) else None
    snapshot: Path | None = repo_dir / "snapshots" / commit if commit else None

    def get_file(path_in_repo: str, size: int | None = None, sha256: str | None = None) -> None:
        nonlocal commit, snapshot
        # Once the commit is known, ask for it explicitly so all files come from one snapshot.
        url = f"{base}/{entry.repo_id}/resolve/{commit or revision}/{path_in_repo}"
        response, header_commit = _open(url, entry)
        with response:
            if snapshot is None:
                # A branch: the Hub names its commit in a header; without one, use the branch name.
                commit = header_commit if header_commit and HEX40.match(header_commit) else None
                snapshot = repo_dir / "snapshots" / (commit or revision)
            _save(response, snapshot / path_in_repo, entry, url, label=f"{entry.repo_id}/{path_in_repo}",
                  size=size, sha256=sha256, progress=progress, on_bytes=on_bytes)

    try:
        for extra in entry.extra_files:
            if force or snapshot is None or not (snapshot / extra).is_file():
                get_file(extra)
        for i, candidate in enumerate((entry.filename, *entry.alternatives)):
            try:
                # Only the primary file has a published size/digest; alternatives are unpinned.
                get_file(candidate, *((entry.size, entry.sha256) if i == 0 else (None, None)))
                break
            except urllib.error.HTTPError as err:
                if err.code != 404:
                    raise
                err.close()  # this revision has no such file: try the next accepted weights file
        else:
            raise WeightsDownloadError(
                f"{entry.repo_id}@{revision} has none of {', '.join((entry.filename, *entry.alternatives))}.\n"
                f"{_missing_message(entry)}"
            )
    except urllib.error.HTTPError as err:
        raise WeightsDownloadError(
            f"Could not download '{entry.name}': HTTP {err.code} for {err.url}.\n{_missing_message(entry)}"
        ) from err
    if commit and commit != revision:
        _atomic_write_text(repo_dir / "refs" / revision, commit)  # what huggingface_hub reads offline
    return path(entry)


def fetch(name: str | WeightFile, force: bool = False, *, endpoint: str | None = None, progress: bool = True,
          on_bytes: Callable[[int], None] | None = None) -> Path:
    """Download the file(s) unless a usable copy is present; returns `path(name)`.

    A present file that fails verification is replaced; `force` downloads even a good copy again.
    Downloads go to `<dest>.part` and are renamed into place only once size and sha256 match.
    `endpoint` overrides the Hugging Face base URL (default $HF_ENDPOINT or https://huggingface.co).
    `progress=False` hides the per-file bar; `on_bytes(n)` is called for every chunk received (a caller's own bar).
    """
    entry = get(name)
    if not force and verify(entry).usable:
        return path(entry)
    if entry.location == "hf_hub":
        return _fetch_hf(entry, force, endpoint, progress, on_bytes)
    dest = destination(entry)
    try:
        response, _ = _open(entry.url, entry)
    except urllib.error.HTTPError as err:
        raise WeightsDownloadError(
            f"Could not download '{entry.name}': HTTP {err.code} for {entry.url}.\n{_missing_message(entry)}"
        ) from err
    with response:
        _save(response, dest, entry, entry.url, label=entry.name, size=entry.size, sha256=entry.sha256,
              prefix=entry.sha256_prefix, progress=progress, on_bytes=on_bytes)
    return dest


def human_size(size: int | None) -> str:
    """"95.6 MB"-style size for tables and messages."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


__all__ = [
    "REGISTRY", "WeightFile", "VerifyResult", "WeightsError", "UnknownWeightsError", "WeightsMissingError",
    "WeightsCorruptError", "WeightsDownloadError", "get", "path", "weights_file", "destination", "verify",
    "require", "fetch", "load", "load_torch", "load_torchscript", "load_safetensors", "load_numpy", "file_sha256",
    "git_blob_sha1", "cache_dir",
    "weights_dir", "torch_hub_checkpoints", "hf_hub_cache", "hf_endpoint", "human_size",
]
