"""The leaderboard's ground-truth row and ground-truth-normalised scores, from what the runs recorded
(summary.json's ``ground_truth`` and ``ground_truth_normalised``, written by metrics/ground_truth.py)."""

from __future__ import annotations

import csv
import json

from talking_head.leaderboards.render import markdown, write_csv
from talking_head.leaderboards.runs import leaderboard_from_runs
from talking_head.metrics.ground_truth import IDENTITY, MEASURED, anchor


def _run(folder, name, fid, pose, reference="data/sample", model=None):
    results = {"fid": {"fid": fid}, "pose": {"mean_std": pose, "reference": {"mean_std": 5.0}}}
    truths, normalised = anchor(results)
    summary = {"generated": f"{name}/generated", "reference": reference, "split": "test", "results": results,
               "ground_truth": truths, "ground_truth_normalised": normalised, "options": {"lmd_preset": "dense"},
               "videos": 2, "frames": 100, "skipped": {}}
    (folder / name).mkdir(parents=True)
    (folder / name / "summary.json").write_text(json.dumps(summary))
    if model:
        (folder / name / "run.json").write_text(json.dumps({"model": model, "label": model, "run_id": name}))
    return summary


def test_anchor_reads_measured_and_identity_values_and_normalises_only_where_it_applies():
    truths, normalised = anchor({"fid": {"fid": 12.0}, "pose": {"mean_std": 4.0, "reference": {"mean_std": 5.0}},
                                 "lse": {"lse_c": 6.0, "lse_d": 8.0, "reference": {"lse_c": 0.0, "lse_d": 7.0}}})
    assert truths["fid"]["fid"] == {"value": 0.0, "how": IDENTITY}
    assert truths["pose"]["mean_std"] == {"value": 5.0, "how": MEASURED}
    assert normalised["pose"]["mean_std"] == 1 - abs(4.0 - 5.0) / 5.0
    assert "fid" not in normalised and "lse_d" not in normalised.get("lse", {})
    assert "lse_c" not in normalised.get("lse", {})  # a ground truth of 0 leaves the score undefined


def test_the_board_gets_a_ground_truth_row_and_normalised_scores(tmp_path):
    _run(tmp_path, "a", fid=10.0, pose=4.0)
    _run(tmp_path, "b", fid=20.0, pose=7.5)
    board = leaderboard_from_runs(tmp_path)
    truth = board.rows[0]
    assert truth.label == "Ground truth" and truth.model == "ground-truth" and truth.source == "ground truth"
    assert truth.values == {"fid": 0.0, "pose_std": 5.0}
    by_label = {row.label: row for row in board.rows}
    assert by_label["a"].normalised == {"pose_std": 0.8} and by_label["b"].normalised == {"pose_std": 0.5}
    fid = next(c for c in board.columns if c.id == "fid")
    assert board.best(fid) == {board.rows.index(by_label["a"])}  # the ground truth's 0 is never "best"

    text = markdown(board)
    truth_line = next(line for line in text.splitlines() if line.startswith("| Ground truth |"))
    assert truth_line == "| Ground truth | 0.00 | 5.000 |"  # each column with its decimals
    assert "(GT-norm 0.80)" in text and "(GT-norm 0.50)" in text
    rows = list(csv.DictReader(open(write_csv(board, tmp_path / "board.csv"), encoding="utf-8")))
    assert [r["pose_std_gt_norm"] for r in rows] == ["", "0.8", "0.5"]
    assert rows[0]["fid"] == "0.0" and json.loads(rows[0]["provenance"])["how"].startswith(IDENTITY)


def test_a_ground_truth_run_is_the_row_and_two_references_get_one_row_each(tmp_path):
    _run(tmp_path / "one", "gt", fid=0.5, pose=5.0, model="ground-truth")
    _run(tmp_path / "one", "a", fid=10.0, pose=4.0)
    assert [r.label for r in leaderboard_from_runs(tmp_path / "one").rows] == ["ground-truth", "a"]  # no second one
    _run(tmp_path / "two", "a", fid=10.0, pose=4.0, reference="data/hdtf")
    _run(tmp_path / "two", "b", fid=12.0, pose=4.0, reference="data/vox")
    labels = [r.label for r in leaderboard_from_runs(tmp_path / "two").rows]
    assert labels[:2] == ["Ground truth · hdtf [test]", "Ground truth · vox [test]"]
