"""Atomic dataset replacement (preprocessing/storage.py): a save killed at any step leaves the whole old or
the whole new dataset at DIR, never a mix, with the preprocess work folder intact; the next save succeeds."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from talking_head.preprocessing import storage
from talking_head.toolkit import dataset as schema

# A child process that saves the dataset in DIR again, its rows' speaker and the card's parameters tagged.
CHILD = """
import json, sys
from pathlib import Path
from talking_head.preprocessing.storage import build_dataset
out, tag = Path(sys.argv[1]), sys.argv[2]
metas = [json.loads(p.read_text()) for p in sorted((out / "work" / "clips").glob("*/meta.json"))]
for meta in metas:
    meta["speaker"] = tag
build_dataset(metas, out / "work", out, {"tag": tag}, [])
"""


def _save(out: Path, tag: str) -> None:
    metas = [json.loads(p.read_text()) for p in sorted((out / "work" / "clips").glob("*/meta.json"))]
    for meta in metas:
        meta["speaker"] = tag
    storage.build_dataset(metas, out / "work", out, {"tag": tag}, [])


def _version(out: Path, clips: dict[str, list[str]]) -> str:
    """The tag of the dataset at `out`, after checking every split, the card and the work folder agree."""
    loaded = schema.load(out)
    assert sorted(loaded) == sorted(clips)
    tags = set()
    for split, ds in loaded.items():
        assert sorted(ds[schema.CLIP_ID]) == clips[split]
        tags |= set(ds[schema.SPEAKER])
    assert len(tags) == 1, f"a mix of datasets: {tags}"
    tag = tags.pop()
    assert f'"tag": "{tag}"' in (out / "README.md").read_text(encoding="utf-8")  # the card is the same version's
    assert (out / "failures.jsonl").is_file()  # what else lives in DIR survives
    finished = sorted(p.parent.name for p in (out / "work" / "clips").glob("*/meta.json"))
    assert finished == sorted(c for ids in clips.values() for c in ids)  # a rerun resumes: every clip is there
    return tag


@pytest.fixture(scope="module")
def source(small_preprocessed_sample: Path, tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """A copy of the small preprocessed sample, saved again with the tag "old"; its clip ids per split."""
    root = tmp_path_factory.mktemp("swap") / "ds"
    shutil.copytree(small_preprocessed_sample, root)
    _save(root, "old")
    loaded = schema.load(root)
    return root, {split: sorted(ds[schema.CLIP_ID]) for split, ds in loaded.items()}


def test_a_save_killed_at_any_step_leaves_the_old_or_the_new_dataset(source, tmp_path):
    root, clips = source
    assert len(clips) == 2 and all(clips.values())  # a train and a test split, so a mix would show
    children = {}
    for step in storage.STEPS:  # one copy per kill point, the children run side by side
        out = tmp_path / step / "ds"
        shutil.copytree(root, out)
        env = {**os.environ, storage.KILL_AT_ENV: step}
        children[step] = (out, subprocess.Popen([sys.executable, "-c", CHILD, str(out), "new"], env=env,
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    for step, (out, child) in children.items():
        output = child.communicate(timeout=300)[0].decode(errors="replace")
        assert child.returncode == -signal.SIGKILL, (step, child.returncode, output[-2000:])
        expected = "new" if storage.STEPS.index(step) >= storage.STEPS.index("swapped") else "old"
        assert _version(out, clips) == expected, step
        # The next save (no kill) succeeds, replaces it whole and leaves no temporary folder behind.
        _save(out, "again")
        assert _version(out, clips) == "again"
        assert sorted(p.name for p in out.parent.iterdir()) == ["ds"], step


def test_a_save_that_is_not_killed_swaps_and_cleans_up(source, tmp_path):
    root, clips = source
    out = tmp_path / "ds"
    shutil.copytree(root, out)
    (out / "notes.txt").write_text("mine\n")  # a user's file in DIR is kept
    child = subprocess.run([sys.executable, "-c", CHILD, str(out), "new"], capture_output=True, timeout=300)
    assert child.returncode == 0, child.stderr.decode(errors="replace")[-2000:]
    assert _version(out, clips) == "new" and (out / "notes.txt").read_text() == "mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    assert not (out / ".staging").exists() and not (out / "work" / "arrow-cache").exists()
    # The check above does see a mix: the old dataset with the new one's train split (what the old
    # split-by-split replacement left when killed between two renames) is refused.
    mix = tmp_path / "mix"
    shutil.copytree(root, mix)
    shutil.rmtree(mix / "train")
    shutil.copytree(out / "train", mix / "train")
    with pytest.raises(AssertionError, match="a mix of datasets"):
        _version(mix, clips)


def test_swap_without_exchange_and_recovery_of_a_killed_fallback(tmp_path, monkeypatch):
    """Where renameat2 cannot exchange, two renames; a save killed between them left DIR.old-<pid>, which the
    next save's clean-up puts back."""
    out, new = tmp_path / "ds", tmp_path / "ds.tmp-1"
    out.mkdir(), new.mkdir()
    (out / "v").write_text("old"), (new / "v").write_text("new")
    assert storage._exchange(tmp_path / "ds.tmp-1", out)  # Linux, ext4/tmpfs: the atomic exchange is there
    assert (out / "v").read_text() == "new" and (new / "v").read_text() == "old"
    monkeypatch.setattr(storage, "_exchange", lambda a, b: False)
    aside = storage.swap_dirs(new, out)
    assert aside == tmp_path / f"ds.old-{os.getpid()}" and (out / "v").read_text() == "old"
    # A dead process's leftovers: DIR missing and DIR.old-<pid> there -> put back; a stale tmp -> deleted.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    shutil.rmtree(aside)
    os.rename(out, tmp_path / f"ds.old-{dead.pid}")
    (tmp_path / f"ds.tmp-{dead.pid}").mkdir()
    storage.remove_leftovers(out)
    assert (out / "v").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
