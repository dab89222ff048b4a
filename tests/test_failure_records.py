"""What a failed clip leaves behind (issue 19: failures keep their traceback): the reason, the exception's type,
where it was raised and the whole traceback; and a run in which every clip fails the same unexpected way is
called a probable bug, not bad data."""

from __future__ import annotations

import json
from pathlib import Path

from talking_head.preprocessing import pipeline as pipeline_module
from talking_head.preprocessing.clip import ClipSource
from talking_head.preprocessing.pipeline import PreprocessConfig
from talking_head.preprocessing.runner import preprocess as run_preprocess


def _sources(tmp_path: Path, count: int) -> list[ClipSource]:
    sources = []
    for k in range(count):
        path = tmp_path / f"clip{k}.mp4"
        path.write_text("not a video\n", encoding="utf-8")
        sources.append(ClipSource(dataset="folder", speaker="s", clip_id=f"s_{k}", path=path))
    return sources


def test_bad_data_keeps_reason_and_traceback_and_is_not_called_a_bug(tmp_path):
    _, summary = run_preprocess(_sources(tmp_path, 2), tmp_path / "out", PreprocessConfig(), show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert [r["clip_id"] for r in records] == ["s_0", "s_1"]
    for record in records:
        assert record["reason"] and "\n" not in record["reason"]
        assert record["error"] == "ClipFailed" and record["traceback"].startswith("Traceback (most recent call last)")
        assert record["where"].startswith("pipeline.py:")
    assert summary.probable_bug() is None  # refused input is the data's fault


def test_the_same_unexpected_error_in_every_clip_is_called_a_probable_bug(tmp_path, monkeypatch):
    def broken(self, source, work_dir):  # a programming error in the pipeline, as a refactor might leave one
        return source.clip_id + 1

    monkeypatch.setattr(pipeline_module.Pipeline, "process", broken)
    _, summary = run_preprocess(_sources(tmp_path, 3), tmp_path / "out", PreprocessConfig(), show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert {r["error"] for r in records} == {"TypeError"}
    assert all('return source.clip_id + 1' in r["traceback"] for r in records)
    message = summary.probable_bug()
    assert message.startswith("every clip (3) failed with the same unexpected TypeError at test_failure_records.py:")
    assert "probably a bug" in message
