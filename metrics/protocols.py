"""Published evaluation protocols as plain data, run by name: ``toolkit evaluate --protocol hallo``.

A protocol is one YAML file in ``metrics/protocols/`` (``docs/protocols.md`` explains each). Three kinds of
field:

* executed: ``metrics`` (registry names -> keyword options of the metric's runner class, e.g.
  ``fvd: {variant: disco}``), ``fps`` (both sides read at this rate; null: the reference's) and ``split``;
  the runner applies them and nothing else;
* described: ``inputs`` (which videos to give: resolution, crop, length, test set);
* accounted for: ``knobs``, every choice that changes the numbers, each with its ``source`` (paper section,
  repository file and line, issue thread) or marked ``silent`` with the ``choice`` made here, and
  ``sources``, the list they cite.

A run records the protocol whole, its name and its content hash (sha256 of the parsed data in canonical
JSON, so comments and formatting do not change it), and prints "protocol hallo (hash 1a2b3c4d5e6f)".
Reading a protocol imports no torch; :func:`check_options` (which imports the metric classes) is called
by the runner before any video is read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from talking_head.metrics import registry

SCHEMA = "talking-head-toolkit/protocol/1"
HASH_CHARS = 12  # of the sha256 shown beside the name
FIELDS = {"schema", "name", "title", "description", "metrics", "fps", "split", "inputs", "knobs", "sources"}
REQUIRED = FIELDS - {"fps"}


@dataclasses.dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    description: str
    metrics: dict[str, dict[str, Any]]
    fps: Optional[float]
    split: str
    inputs: str
    knobs: tuple[dict[str, Any], ...]
    sources: tuple[str, ...]
    data: dict[str, Any]  # the file's content as parsed: what is hashed and recorded
    path: str

    @property
    def hash(self) -> str:
        return content_hash(self.data)

    @property
    def heading(self) -> str:
        """What a result table is headed with: ``protocol hallo (hash 1a2b3c4d5e6f)``."""
        return f"protocol {self.name} (hash {self.hash})"

    def silent_knobs(self) -> list[str]:
        return [k["name"] for k in self.knobs if k.get("silent")]

    def record(self) -> dict[str, Any]:
        """What summary.json keeps of the protocol: name, hash, file and every field."""
        return {"name": self.name, "hash": self.hash, "sha256": content_hash(self.data, full=True),
                "file": self.path, "content": self.data}


def content_hash(data: dict[str, Any], full: bool = False) -> str:
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest if full else digest[:HASH_CHARS]


def _folder() -> Path:
    return Path(str(resources.files("talking_head.metrics") / "protocols"))


def available() -> list[str]:
    """The names of the protocols that ship with the toolkit."""
    return sorted(p.stem for p in _folder().glob("*.yaml"))


def load(name_or_path: Union[str, Path]) -> Protocol:
    """A shipped protocol by name (``hallo``) or any protocol file by path; ValueError naming the file and
    the problem when it is unknown or malformed."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        path = candidate
    else:
        path = _folder() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown protocol {str(name_or_path)!r}; known: {', '.join(available())} "
                             "(or give the path of a protocol .yaml file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return parse(data, path)


def parse(data: Any, path: Union[str, Path] = "<protocol>") -> Protocol:
    """Check a protocol's fields (names, types, metric names, knobs sourced or marked silent)."""
    def fail(problem: str) -> ValueError:
        return ValueError(f"{path}: {problem}")

    if not isinstance(data, dict):
        raise fail("a protocol is a mapping of fields")
    missing, unknown = sorted(REQUIRED - set(data)), sorted(set(data) - FIELDS)
    if missing or unknown:
        raise fail("; ".join(filter(None, [missing and f"missing field(s) {', '.join(missing)}",
                                           unknown and f"unknown field(s) {', '.join(unknown)}"])))
    if data["schema"] != SCHEMA:
        raise fail(f"schema must be {SCHEMA!r}, got {data['schema']!r}")
    if Path(path).suffix in (".yaml", ".yml") and data["name"] != Path(path).stem:
        raise fail(f"name {data['name']!r} must equal the file name {Path(path).stem!r}")
    metrics = data["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise fail("metrics must map at least one metric name to its options")
    for metric, options in metrics.items():
        try:
            registry.entry(metric)
        except ValueError as err:
            raise fail(str(err)) from None
        if options is not None and not isinstance(options, dict):
            raise fail(f"metrics.{metric}: options must be a mapping, got {options!r}")
    fps = data.get("fps")
    if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float)) or fps <= 0):
        raise fail(f"fps must be a positive number or null, got {fps!r}")
    knobs = data["knobs"]
    if not isinstance(knobs, list) or not knobs:
        raise fail("knobs must list every choice that changes the numbers")
    for knob in knobs:
        if not isinstance(knob, dict) or not knob.get("name") or "value" not in knob:
            raise fail(f"each knob needs a name and a value, got {knob!r}")
        if knob.get("silent"):
            if not knob.get("choice"):
                raise fail(f"knob {knob['name']}: a silent knob says the choice made (choice:)")
        elif not knob.get("source"):
            raise fail(f"knob {knob['name']}: give its source, or mark it silent: true with a choice")
    if not isinstance(data["sources"], list) or not data["sources"]:
        raise fail("sources must list what the knobs cite")
    return Protocol(name=str(data["name"]), title=str(data["title"]), description=str(data["description"]).strip(),
                    metrics={registry.entry(m).name: dict(o or {}) for m, o in metrics.items()},
                    fps=None if fps is None else float(fps), split=str(data["split"]), inputs=str(data["inputs"]).strip(),
                    knobs=tuple(knobs), sources=tuple(str(s) for s in data["sources"]), data=data, path=str(path))


def check_options(protocol: Protocol) -> None:
    """Every option a protocol gives a metric is a keyword of that metric's runner class (imports the classes)."""
    for metric, options in protocol.metrics.items():
        cls = registry.entry(metric).load()
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "device", "shared"}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ValueError(f"{protocol.path}: metrics.{metric}: unknown option(s) {', '.join(unknown)}; "
                             f"{cls.__name__} takes {', '.join(sorted(accepted)) or 'none'}")
