"""Paper tables (leaderboards/papers/*.yaml): the schema check, and the MODA numbers against the published table."""

from __future__ import annotations

import copy

import pytest
import yaml

from talking_head.leaderboards import papers
from talking_head.leaderboards.columns import COLUMNS
from talking_head.leaderboards.papers import PaperTableError, load_file, load_files, load_table, table_ids

# MODA's comparison table (project page, figures/numerical-rlt.png), transcribed from the image
# independently of the YAML file. **x** = bold (best), _x_ = underlined (second best), "-" = no number.
# Venues are left out for rows that print none.
MODA_LSP = """
| Method                   | Venue            | NIQE ↓   | LMD-v ↓  | LMD ↓    | Sync ↑   | MA ↑     |
|--------------------------|------------------|----------|----------|----------|----------|----------|
| MakeItTalk               | SIGGRAPH Asia'20 | 7.07     | 2.30     | 2.65     | 3.07     | 0.48     |
| Wav2Lip                  | MM'20            | 7.31     | 1.95     | 1.81     | **5.58** | 0.64     |
| Wav2Lip-GAN              | MM'20            | 7.24     | 2.11     | 1.83     | 5.47     | 0.62     |
| LSP                      | SIGGRAPH Asia'21 | _5.75_   | 2.28     | 2.06     | 3.09     | 0.61     |
| AD-NeRF                  | ICCV'21          | 5.81     | 2.89     | 2.77     | 2.98     | 0.41     |
| SadTalker                | CVPR'23          | 5.80     | 2.51     | 2.31     | 4.14     | 0.56     |
| GeneFace                 | ICLR'23          | 6.61     | 2.22     | 2.17     | 3.08     | 0.65     |
| Ground Truth (reference) |                  | 5.28     | 0.00     | 0.00     | 4.89     | 1.00     |
| Ours †                   |                  | 5.77     | **1.74** | _1.51_   | 4.52     | _0.70_   |
| Ours                     |                  | **5.55** | _1.79_   | **1.50** | 4.48     | **0.69** |
"""

MODA_HDTF = """
| Method                   | Venue            | NIQE ↓   | LMD-v ↓  | LMD ↓    | Sync ↑   | MA ↑     |
|--------------------------|------------------|----------|----------|----------|----------|----------|
| MakeItTalk               | SIGGRAPH Asia'20 | 8.18     | 1.91     | 2.23     | 3.90     | 0.53     |
| Wav2Lip                  | MM'20            | 7.83     | 2.08     | 1.97     | **5.78** | 0.51     |
| Wav2Lip-GAN              | MM'20            | 7.77     | 2.01     | 1.98     | 5.78     | 0.51     |
| LSP                      | SIGGRAPH Asia'21 | 7.12     | 1.67     | _2.01_   | 4.11     | 0.52     |
| AD-NeRF                  | ICCV'21          | -        | -        | -        | -        | -        |
| SadTalker                | CVPR'23          | 7.07     | 2.43     | 2.37     | 3.96     | 0.51     |
| GeneFace                 | ICLR'23          | -        | -        | -        | -        | -        |
| Ground Truth (reference) |                  | 6.38     | 0.00     | 0.00     | 6.07     | 1.00     |
| Ours †                   |                  | _7.05_   | _1.60_   | 2.04     | 4.34     | **0.59** |
| Ours                     |                  | **6.92** | **1.59** | **1.96** | 4.16     | _0.56_   |
"""

CAPTION = ("Comparisons with state-of-the-art methods. † denotes our generated results with size 256x256 through "
           "a small render. Best results are highlighted in bold. The number with underline denotes the "
           "second-best result.")
ARROWS = {"↓": "lower", "↑": "higher"}
# (method, marker, toolkit model) per row, in paper order; the printed names are in the tables above.
MODA_ROWS = [("MakeItTalk", None, None), ("Wav2Lip", None, None), ("Wav2Lip-GAN", None, None), ("LSP", None, None),
             ("AD-NeRF", None, None), ("SadTalker", None, None), ("GeneFace", None, None),
             ("Ground Truth", None, "ground-truth"), ("MODA-256", "†", None), ("MODA", None, "moda")]
DREAMHEAD_COLUMNS = ["m_lmd", "m_lmd_v", "f_lmd", "lse_c", "lse_d", "fid", "niqe", "psnr", "ssim", "csim"]


def parse_markdown(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line.strip().strip("|") for line in text.strip().splitlines()]
    header, *rows = [[cell.strip() for cell in line.split("|")] for line in lines if not line.startswith("-")]
    return header, rows


def read_cell(cell: str) -> tuple[str, str | None]:
    """(printed text, emphasis) of a transcribed cell."""
    if cell.startswith("**"):
        return cell.strip("*"), "best"
    if cell.startswith("_"):
        return cell.strip("_"), "second"
    return cell, None


# (a) every packaged table passes the schema check and loads

def test_every_packaged_file_loads_and_ids_are_unique():
    files = sorted(papers.PAPERS_DIR.glob("*.yaml"))
    assert [f.name for f in files] == ["dreamhead_2024.yaml", "moda_iccv2023.yaml"]
    ids = [table.id for path in files for table in load_file(path)]
    assert sorted(ids) == table_ids() == ["dreamhead-hdtf", "dreamhead-mead", "moda-hdtf", "moda-lsp"]
    for table_id in table_ids():
        table = load_table(table_id)
        assert table.id == table_id
        assert set(table.compare_columns) <= set(COLUMNS)


def test_unknown_table_id():
    with pytest.raises(PaperTableError, match="unknown paper table 'moda-vox'"):
        load_table("moda-vox")


# (b) the MODA data matches the published table cell by cell

@pytest.mark.parametrize("table_id, transcription", [("moda-lsp", MODA_LSP), ("moda-hdtf", MODA_HDTF)])
def test_moda_matches_published_table(table_id, transcription):
    table = load_table(table_id)
    header, rows = parse_markdown(transcription)
    assert [(m.label, m.better) for m in table.metrics] == [
        (label.rsplit(" ", 1)[0], ARROWS[label[-1]]) for label in header[2:]]
    assert [(r.printed_method, r.venue) for r in table.rows] == [(row[0], row[1] or None) for row in rows]
    assert [(r.method, r.marker, r.model) for r in table.rows] == MODA_ROWS
    for paper_row, row in zip(table.rows, rows):
        for metric, cell in zip(table.metrics, row[2:]):
            where = (paper_row.method, metric.id)
            text, emphasis = read_cell(cell)
            assert paper_row.printed[metric.id] == text, where
            assert paper_row.emphasis.get(metric.id) == emphasis, where
            if text == "-":
                assert paper_row.values[metric.id] is None, where
                assert paper_row.missing[metric.id] == "not reported: person-specific NeRF, not run on HDTF"
            else:
                assert paper_row.values[metric.id] == float(text), where
                assert metric.id not in paper_row.missing, where


def test_moda_metrics_and_source():
    table = load_table("moda-hdtf")
    assert table.title == "MODA (ICCV 2023), Testset B from HDTF"
    assert (table.dataset, table.test_set, table.dataset_verified) == ("hdtf", "Testset B from HDTF [50]", True)
    assert load_table("moda-lsp").test_set == "Testset A from LSP [21]"
    assert table.source["caption"] == CAPTION
    assert table.source["arxiv"] == "2307.10008"
    assert table.source["figure"] == "figures/numerical-rlt.png"
    assert "liuyunfei.net/projects/iccv23-moda" in table.source["url"]
    assert {m.id: m.toolkit_column for m in table.metrics} == {
        "niqe": "niqe", "lmd_v": "m_lmd_v", "lmd": "m_lmd", "sync": "lse_c", "ma": None}
    assert table.compare_columns == ["niqe", "m_lmd_v", "m_lmd", "lse_c"]
    ma = table.metrics[-1]
    assert (ma.computable, ma.reason) == (False, "no published definition")
    assert all("definition is not published" in m.note for m in table.metrics)
    assert all(m.computable and "The toolkit computes" in m.note for m in table.metrics[:-1])


def test_row_for_model():
    table = load_table("moda-lsp")
    assert table.row_for_model("moda").printed_method == "Ours"
    assert table.row_for_model("ground-truth").values["lmd"] == 0.0
    assert table.row_for_model("wav2lip") is None


# (c) the schema check rejects broken files, naming the file

def valid_file() -> dict:
    """The smallest file that passes the check: two metrics (one not computable), one table, two rows."""
    return {
        "paper": "Test (2024)",
        "source": {"citation": "A. Author. Test. 2024.", "arxiv": None, "url": "https://example.org", "figure": None,
                   "caption": None},
        "metrics": [
            {"id": "lmd", "label": "LMD", "better": "lower", "toolkit_column": "m_lmd", "computable": True,
             "definition_note": "mouth landmark distance"},
            {"id": "ma", "label": "MA", "better": "higher", "toolkit_column": None, "computable": False,
             "definition_note": "not published", "reason": "no published definition"},
        ],
        "tables": [{
            "id": "test-hdtf", "title": "Test, HDTF", "dataset": "hdtf", "dataset_verified": True, "test_set": None,
            "numbers_available": True,
            "rows": [
                {"method": "Ours", "printed_method": "Ours", "venue": None, "marker": None, "model": None,
                 "values": {"lmd": {"value": 1.5, "printed": "1.50", "emphasis": "best"},
                            "ma": {"value": 0.5, "printed": "0.50"}}},
                {"method": "Other", "printed_method": "Other", "venue": "CVPR'23", "marker": None, "model": None,
                 "values": {"lmd": {"value": None, "printed": "-", "missing": "not run"},
                            "ma": {"value": 0.4, "printed": "0.40"}}},
            ],
        }],
    }


def write(tmp_path, data, name="broken.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_valid_file_loads(tmp_path):
    (table,) = load_file(write(tmp_path, valid_file()))
    assert table.rows[0].printed == {"lmd": "1.50", "ma": "0.50"}
    assert table.rows[1].missing == {"lmd": "not run"}


def _unknown_better(d):
    d["metrics"][0]["better"] = "smaller"


def _undeclared_metric(d):
    d["tables"][0]["rows"][0]["values"]["fid"] = {"value": 12.0, "printed": "12.0"}


def _missing_without_reason(d):
    del d["tables"][0]["rows"][1]["values"]["lmd"]["missing"]


def _absent_cell(d):
    del d["tables"][0]["rows"][1]["values"]["lmd"]


def _computable_without_column(d):
    del d["metrics"][1]["reason"]
    d["metrics"][1]["computable"] = True


def _unknown_column(d):
    d["metrics"][0]["toolkit_column"] = "mouth_lmd"


def _printed_mismatch(d):
    d["tables"][0]["rows"][0]["values"]["ma"]["printed"] = "0.05"


@pytest.mark.parametrize("breakage, message", [
    (_unknown_better, "better must be 'lower' or 'higher', got 'smaller'"),
    (_undeclared_metric, "values for undeclared metrics ['fid']"),
    (_missing_without_reason, "value is null without a reason"),
    (_absent_cell, "no cell for ['lmd']"),
    (_computable_without_column, "computable must be true exactly when toolkit_column is set"),
    (_unknown_column, "toolkit_column 'mouth_lmd' is not a leaderboard column"),
    (_printed_mismatch, "printed text '0.05' does not read as the value 0.5"),
])
def test_schema_rejects(tmp_path, breakage, message):
    data = copy.deepcopy(valid_file())
    breakage(data)
    path = write(tmp_path, data)
    with pytest.raises(PaperTableError) as error:
        load_file(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


def test_duplicate_yaml_key_is_rejected(tmp_path):
    # PyYAML would keep the second cell and drop the first without a word.
    text = write(tmp_path, valid_file()).read_text(encoding="utf-8")
    path = tmp_path / "twice.yaml"
    path.write_text(text.replace("paper: Test (2024)", "paper: Test (2024)\npaper: Other"), encoding="utf-8")
    with pytest.raises(PaperTableError, match="duplicate key 'paper'") as error:
        load_file(path)
    assert str(path) in str(error.value)


def test_table_id_defined_in_two_files(tmp_path):
    first, second = write(tmp_path, valid_file(), "a.yaml"), write(tmp_path, valid_file(), "b.yaml")
    with pytest.raises(PaperTableError, match="table id 'test-hdtf' is also defined in") as error:
        load_files([first, second])
    assert str(error.value).startswith(f"{second}: ")


# (d) DreamHead: no numbers, nothing invented

@pytest.mark.parametrize("table_id, dataset", [("dreamhead-hdtf", "hdtf"), ("dreamhead-mead", "mead")])
def test_dreamhead_has_no_numbers(table_id, dataset):
    table = load_table(table_id)
    assert (table.dataset, table.dataset_verified, table.test_set) == (dataset, False, None)
    assert table.numbers_available is False
    assert "not available" in table.unavailable_reason
    assert table.metrics == []
    assert table.compare_columns == DREAMHEAD_COLUMNS
    assert "toolkit's choice" in table.note
    (row,) = table.rows
    assert (row.method, row.model) == ("DreamHead", "dreamhead")
    assert row.values == row.printed == row.emphasis == row.missing == {}
    assert table.row_for_model("dreamhead") is row


def test_unavailable_table_cannot_hold_numbers(tmp_path):
    data = valid_file()
    data["tables"][0].update(numbers_available=False, unavailable_reason="tables not available")
    path = write(tmp_path, data)
    with pytest.raises(PaperTableError, match="numbers_available false, so its rows hold no values"):
        load_file(path)


def test_a_table_can_report_fvd_kid_and_efid(tmp_path):
    """The 2024-26 results table (FID, FVD, KID, E-FID) fits the schema: each maps to its toolkit column."""
    data = valid_file()
    for metric_id, label, column in (("fvd", "FVD", "fvd"), ("kid", "KID", "kid"), ("efid", "E-FID", "efid")):
        data["metrics"].append({"id": metric_id, "label": label, "better": "lower", "toolkit_column": column,
                                "computable": True, "definition_note": f"{label} as the paper reports it"})
        for row, value in zip(data["tables"][0]["rows"], (101.5, 120.25)):
            row["values"][metric_id] = {"value": value, "printed": f"{value:g}"}
    (table,) = load_file(write(tmp_path, data))
    assert [m.toolkit_column for m in table.metrics][-3:] == ["fvd", "kid", "efid"]
    assert table.rows[0].values["fvd"] == 101.5 and COLUMNS["fvd"].better == "lower"
