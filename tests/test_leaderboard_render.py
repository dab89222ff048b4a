"""talking_head.leaderboards.render: the markdown and CSV files, and the HTML page as a reader sees it in headless Chromium
(driven by tests/browser.py: real mouse clicks, the rendered DOM, a screenshot)."""

from __future__ import annotations

import csv
import json
import math
import os
import struct
from pathlib import Path

import pytest

from browser import Browser, chromium_path
from talking_head.leaderboards import render
from talking_head.leaderboards.board import Leaderboard, Row
from talking_head.leaderboards.columns import COLUMNS

COLUMN_IDS = ["m_lmd", "lse_c", "psnr", "pose_std", "fid"]  # lower, higher, higher (dB), no direction, all missing
LABELS = ["DreamHead (ours)", "MODA (ours)", "Wav2Lip (ours)", "DreamHead", "MODA"]
SCRIPT_TEXT = "</script><b>not bold</b> & | x"  # must stay text in every output
PAPER_NOTE = "not reported in the paper"

# What each cell shows: a column's values all get the decimals that give its largest value 4 significant
# digits (2.7 -> "2.700", 30.5 -> "30.50"), missing ones an en dash.
TEXT = {
    "m_lmd": ["1.532", "1.498", "2.700", "1.498", "–"],
    "lse_c": ["7.210", "7.800", "7.800", "6.900", "7.500"],
    "psnr": ["30.12", "29.87", "27.50", "–", "30.50"],
    "pose_std": ["4.100", "5.630", "0.000", "–", "–"],
    "fid": ["–"] * 5,
}
# Row indices with the best value: ties in M-LMD and LSE-C; none for a column without direction or values.
BEST = {"m_lmd": {1, 3}, "lse_c": {1, 2}, "psnr": {4}, "pose_std": set(), "fid": set()}


def _row(i: int, m_lmd, lse_c, psnr, pose_std, **fields) -> Row:
    values = {"m_lmd": m_lmd, "lse_c": lse_c, "psnr": psnr, "pose_std": pose_std, "fid": None}
    return Row(LABELS[i], LABELS[i].split()[0].lower(), values=values, **fields)


@pytest.fixture(scope="module")
def board() -> Leaderboard:
    rows = [
        _row(0, 1.532, 7.21, 30.12, 4.1, source="run", run_id="dreamhead-hdtf-01",
             provenance={"run": "runs/dreamhead-hdtf-01", "commit": "b5ae582", "config": "paper/hdtf.yaml",
                         "seed": "0"}),
        _row(1, 1.498, 7.8, 29.874, 5.63, source="run", run_id="moda-hdtf-07",
             provenance={"run": "runs/moda-hdtf-07", "commit": "b5ae582", "checkpoint": "renderer epoch 60"}),
        _row(2, 2.7, 7.8, 27.5, 0.0, source="run", run_id="wav2lip-hdtf-02"),
        _row(3, 1.498, 6.9, None, None, source="paper", notes={"psnr": PAPER_NOTE, "pose_std": PAPER_NOTE},
             provenance={"paper": "DreamHead (2024), Table 1", "remark": SCRIPT_TEXT}),
        _row(4, None, 7.5, 30.5, None, source="paper", notes={"m_lmd": "the paper reports F-LMD only"},
             provenance={"paper": "MODA (ICCV 2023), Table 1"}),
    ]
    return Leaderboard("Test board: HDTF", [COLUMNS[i] for i in COLUMN_IDS], rows,
                       notes=["Paper rows are copied from the papers' tables."],
                       created="2025-05-05 14:02 UTC", software={"toolkit": "0.1.0", "python": "3.11.7"})


@pytest.fixture(scope="module")
def files(board: Leaderboard, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return render.write_all(board, tmp_path_factory.mktemp("leaderboard"))


def test_expected_values_follow_the_board(board: Leaderboard):
    """The hand-written expectations above describe this board (guards the other tests' premises)."""
    assert {c.id: board.best(c) for c in board.columns} == BEST
    assert render.formatted_values(board) == TEXT


def test_write_all_names(files: dict[str, Path]):
    assert {k: p.name for k, p in files.items()} == {"md": "leaderboard.md", "csv": "leaderboard.csv",
                                                     "html": "index.html"}
    assert not [p.name for p in files["md"].parent.iterdir() if p.name.startswith(".")]  # no temporary left


# -- markdown ---------------------------------------------------------------------------------------------


def test_markdown(board: Leaderboard, files: dict[str, Path]):
    lines = files["md"].read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Test board: HDTF"
    header = lines.index("| Method | M-LMD ↓ | LSE-C ↑ | PSNR ↑ | Pose std | FID ↓ |")
    assert lines[header + 1] == "|:--|--:|--:|--:|--:|--:|"
    for i, row in enumerate(board.rows):
        label = f"*{row.label}* (paper)" if row.source == "paper" else row.label
        cells = [f"**{TEXT[c][i]}**" if i in BEST[c] else TEXT[c][i] for c in COLUMN_IDS]
        assert lines[header + 2 + i] == f"| {label} | " + " | ".join(cells) + " |"

    assert "- **Pose std** (no better direction: compare with ground truth, deg): " \
           "head-pose diversity: std of yaw, pitch, roll per video, averaged; compare with ground truth" in lines
    notes = lines[lines.index("## Notes") + 2:]
    assert notes[:3] == ["- Paper rows are copied from the papers' tables.",
                         f"- DreamHead (PSNR, Pose std): {PAPER_NOTE}",
                         "- MODA (M-LMD): the paper reports F-LMD only"]
    provenance = lines[lines.index("## Provenance") + 2:]
    assert provenance[0] == ("- **DreamHead (ours)**: run: runs/dreamhead-hdtf-01; commit: b5ae582; "
                             "config: paper/hdtf.yaml; seed: 0")
    assert r"remark: \</script\>\<b\>not bold\</b\> & \| x" in provenance[2]  # escaped: no table cell, no tag
    assert lines[-1] == "_Created 2025-05-05 14:02 UTC · software: toolkit 0.1.0, python 3.11.7_"


# -- CSV --------------------------------------------------------------------------------------------------


def test_csv_round_trips(board: Leaderboard, files: dict[str, Path]):
    with open(files["csv"], newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["label", "model", "source", "run_id", *COLUMN_IDS, "provenance"]
    assert len(lines) == 1 + len(board.rows)
    for row, line in zip(board.rows, lines[1:]):
        assert line[:4] == [row.label, row.model, row.source, row.run_id or ""]
        for column_id, cell in zip(COLUMN_IDS, line[4:-1]):
            value = row.values[column_id]
            assert (cell == "") if value is None else (float(cell) == value), (row.label, column_id, cell)
        assert json.loads(line[-1]) == row.provenance


def test_non_finite_values(board: Leaderboard, tmp_path: Path):
    """inf and nan print as such, count as no value on the page (JSON has neither) and are never best."""
    rows = [Row("diverged", "x", "run", {"m_lmd": math.inf}), Row("failed", "x", "run", {"m_lmd": math.nan}),
            Row("fine", "x", "run", {"m_lmd": 2.0})]
    odd = Leaderboard("odd", [COLUMNS["m_lmd"]], rows)
    assert render.formatted_values(odd) == {"m_lmd": ["inf", "nan", "2.000"]}
    assert odd.best(COLUMNS["m_lmd"]) == {2}
    data = render.page_data(odd)
    assert [r["values"]["m_lmd"] for r in data["rows"]] == [None, None, 2.0]
    assert "| diverged | inf |" in render.markdown(odd)
    render.write_html(odd, tmp_path / "index.html")  # would raise on a non-finite number in the JSON


def test_page_data_cannot_close_its_script_element(board: Leaderboard):
    page = render.page(board)
    template = (Path(render.__file__).parent / "templates" / "index.html").read_text(encoding="utf-8")
    assert page.count("</script>") == template.count("</script>")
    assert "<title>Test board: HDTF</title>" in page
    embedded = page.split('id="leaderboard-data">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["rows"][3]["provenance"]["remark"] == SCRIPT_TEXT


# -- the HTML page in Chromium ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if chromium_path() is None:
        reason = "Chromium is not installed: apt-get install chromium"
        if os.environ.get("CHROMIUM"):
            reason = f"CHROMIUM={os.environ['CHROMIUM']} is not an executable"
        if os.environ.get("CI"):  # CI installs it (.ci/run): a missing browser there is a failure
            pytest.fail(reason)
        pytest.skip(reason)
    with Browser() as browser:
        yield browser


@pytest.fixture
def page(browser: Browser, files: dict[str, Path]):
    page = browser.new_page(width=1280, height=800)
    page.goto(files["html"].resolve().as_uri())
    yield page
    page.close()


READ_TABLE = """[...document.querySelectorAll("#leaderboard tbody tr[data-label]")].map((tr) => ({
  label: tr.dataset.label,
  runId: tr.dataset.runId,
  paperTag: tr.querySelector("th .tag")?.textContent ?? null,
  fontStyle: getComputedStyle(tr.querySelector("th .name")).fontStyle,
  cells: Object.fromEntries([...tr.querySelectorAll("td[data-column]")].map((td) => [td.dataset.column, {
    text: td.querySelector(".value").textContent,
    value: td.dataset.value,
    best: td.classList.contains("best"),
    star: td.querySelector(".star")?.title ?? null,
    title: td.title,
  }])),
}))"""

ROW_ORDER = "[...document.querySelectorAll('#leaderboard tbody tr[data-label]')].map((tr) => tr.dataset.label)"
ARIA_SORT = """Object.fromEntries([...document.querySelectorAll("#leaderboard thead th")]
  .filter((th) => th.hasAttribute("aria-sort")).map((th) => [th.dataset.column, th.getAttribute("aria-sort")]))"""


def test_table_shows_the_board(page, board: Leaderboard):
    shown = page.evaluate(READ_TABLE)
    assert [r["label"] for r in shown] == LABELS
    for i, (row, r) in enumerate(zip(board.rows, shown)):
        assert r["runId"] == (row.run_id or "")
        paper = row.source == "paper"
        assert (r["paperTag"], r["fontStyle"]) == (("paper", "italic") if paper else (None, "normal"))
        assert list(r["cells"]) == COLUMN_IDS
        for column_id, cell in r["cells"].items():
            value = row.values[column_id]
            assert cell["text"] == TEXT[column_id][i]
            assert (cell["value"] == "") if value is None else (float(cell["value"]) == value)
            assert cell["best"] == (i in BEST[column_id]), (row.label, column_id)
            assert cell["star"] == ("best in column" if cell["best"] else None)
            if value is None:
                assert cell["title"] == row.notes.get(column_id, "no value")

    headers = page.evaluate("""[...document.querySelectorAll("#leaderboard thead th")]
        .map((th) => [th.dataset.column, th.textContent, th.title])""")
    assert [h[:2] for h in headers] == [["label", "Method"], ["m_lmd", "M-LMD ↓"], ["lse_c", "LSE-C ↑"],
                                        ["psnr", "PSNR ↑"], ["pose_std", "Pose std"], ["fid", "FID ↓"]]
    titles = {column_id: title for column_id, _, title in headers}
    assert titles["m_lmd"] == "lower is better\nmouth landmark distance to the reference clip"
    assert titles["psnr"].startswith("higher is better\n") and titles["psnr"].endswith("(dB)")
    assert titles["pose_std"].startswith("no better direction: compare with ground truth\n")

    notes = page.evaluate("[...document.querySelectorAll('#notes li')].map((li) => li.textContent)")
    assert notes == ["Paper rows are copied from the papers' tables.",
                     f"DreamHead (PSNR, Pose std): {PAPER_NOTE}", "MODA (M-LMD): the paper reports F-LMD only"]
    footer = page.evaluate("document.querySelector('footer').textContent")
    assert footer == "Test board: HDTF · created 2025-05-05 14:02 UTC · software: toolkit 0.1.0, python 3.11.7"


def test_sorting_by_clicking_headers(page):
    page.click("th[data-column='m_lmd']")  # lower is better: ascending first; ties keep the board's order
    assert page.evaluate(ROW_ORDER) == ["MODA (ours)", "DreamHead", "DreamHead (ours)", "Wav2Lip (ours)", "MODA"]
    assert page.evaluate(ARIA_SORT) == {"m_lmd": "ascending"}
    page.click("th[data-column='m_lmd']")  # reversed, the missing value still last
    assert page.evaluate(ROW_ORDER) == ["Wav2Lip (ours)", "DreamHead (ours)", "MODA (ours)", "DreamHead", "MODA"]
    assert page.evaluate(ARIA_SORT) == {"m_lmd": "descending"}

    page.click("th[data-column='psnr']")  # higher is better: descending first
    assert page.evaluate(ROW_ORDER) == ["MODA", "DreamHead (ours)", "MODA (ours)", "Wav2Lip (ours)", "DreamHead"]
    assert page.evaluate(ARIA_SORT) == {"psnr": "descending"}

    page.click("th[data-column='label']")
    assert page.evaluate(ROW_ORDER) == ["DreamHead", "DreamHead (ours)", "MODA", "MODA (ours)", "Wav2Lip (ours)"]
    assert page.evaluate(ARIA_SORT) == {"label": "ascending"}


def test_charts(page):
    """One chart per column with a value (none for FID), one bar per value, the best bars highlighted."""
    charts = page.evaluate("""[...document.querySelectorAll("svg.chart")].map((svg) => ({
      column: svg.dataset.column,
      title: svg.querySelector(".chart-title").textContent,
      bars: [...svg.querySelectorAll("rect.bar")].map((rect) => rect.dataset.label),
      best: [...svg.querySelectorAll(".best rect.bar")].map((rect) => rect.dataset.label),
      values: [...svg.querySelectorAll("text.bar-value")].map((text) => text.textContent),
      width: svg.getBoundingClientRect().width,
    }))""")
    assert [c["column"] for c in charts] == ["m_lmd", "lse_c", "psnr", "pose_std"]
    by_column = {c["column"]: c for c in charts}
    assert by_column["m_lmd"]["title"] == "M-LMD ↓"
    assert by_column["psnr"]["title"] == "PSNR ↑ (dB)"
    for column_id, chart in by_column.items():
        shown = [i for i, text in enumerate(TEXT[column_id]) if text != "–"]
        assert chart["bars"] == [LABELS[i] for i in shown]
        assert chart["best"] == [LABELS[i] for i in sorted(BEST[column_id])]
        assert chart["values"] == [TEXT[column_id][i] + (" ★" if i in BEST[column_id] else "") for i in shown]
        assert chart["width"] > 200


def _provenance(page, label: str, expression: str):
    """`expression` evaluated with `row` bound to the provenance row that `label`'s toggle controls."""
    return page.evaluate(f"""(() => {{
      const toggle = document.querySelector('tr[data-label="{label}"] button.provenance-toggle');
      const row = document.getElementById(toggle.getAttribute("aria-controls"));
      return {expression};
    }})()""")


def test_provenance_on_hover_and_on_expand(page):
    title = page.evaluate("document.querySelector('tr[data-label=\"MODA (ours)\"] th').title")
    assert title.splitlines() == ["MODA (ours): our run moda-hdtf-07, model moda", "run: runs/moda-hdtf-07",
                                  "commit: b5ae582", "checkpoint: renderer epoch 60"]

    assert _provenance(page, "MODA (ours)", "row.checkVisibility()") is False
    page.click("tr[data-label='MODA (ours)'] button.provenance-toggle")
    assert _provenance(page, "MODA (ours)", "row.checkVisibility()") is True
    text = _provenance(page, "MODA (ours)", "row.innerText")
    assert text.split() == "run runs/moda-hdtf-07 commit b5ae582 checkpoint renderer epoch 60".split()
    assert _provenance(page, "DreamHead (ours)", "row.checkVisibility()") is False  # the others stay closed

    page.click("tr[data-label='DreamHead'] button.provenance-toggle")
    assert _provenance(page, "DreamHead", "row.querySelectorAll('dd')[1].textContent") == SCRIPT_TEXT
    assert _provenance(page, "DreamHead", "row.querySelector('b')") is None  # text, not markup

    page.click("th[data-column='psnr']")  # an open provenance row moves with its method when sorting
    assert _provenance(page, "MODA (ours)", "row.previousElementSibling.dataset.label") == "MODA (ours)"
    page.click("tr[data-label='MODA (ours)'] button.provenance-toggle")  # and closes again
    assert _provenance(page, "MODA (ours)", "row.checkVisibility()") is False


def test_self_contained_and_screenshot(page, browser: Browser, files: dict[str, Path], tmp_path: Path):
    assert page.requests == [files["html"].resolve().as_uri()]  # nothing from the network
    assert browser.events("Runtime.exceptionThrown", page.session_id) == []

    png = page.screenshot(tmp_path / "leaderboard.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 800 and height >= 600, (width, height)
    assert len(png) > 20_000  # a drawn page, not a blank one


# -- confidence intervals ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Leaderboard, dict[str, Path]]:
    """Two runs with intervals (from `toolkit evaluate --bootstrap`) in M-LMD and PSNR, and a paper row without."""
    rows = [Row("ours A", "a", "run", {"m_lmd": 1.532, "psnr": 30.12}, run_id="a",
                intervals={"m_lmd": (1.4012, 1.6499), "psnr": (29.5, 30.81)}),
            Row("ours B", "b", "run", {"m_lmd": 2.7, "psnr": None}, run_id="b", intervals={"m_lmd": (2.5, 2.95)}),
            Row("paper", "p", "paper", {"m_lmd": 1.498, "psnr": 27.5})]
    board = Leaderboard("Intervals", [COLUMNS["m_lmd"], COLUMNS["psnr"]], rows, notes=["how they were drawn"])
    return board, render.write_all(board, tmp_path_factory.mktemp("spanned"))


def test_intervals_in_markdown_and_csv(spanned):
    board, files = spanned
    assert render.formatted_intervals(board) == {"m_lmd": ["[1.401, 1.650]", "[2.500, 2.950]", None],
                                                 "psnr": ["[29.50, 30.81]", None, None]}
    lines = files["md"].read_text(encoding="utf-8").splitlines()
    header = lines.index("| Method | M-LMD ↓ | PSNR ↑ |")
    assert lines[header + 2:header + 5] == ["| ours A | 1.532 [1.401, 1.650] | **30.12** [29.50, 30.81] |",
                                            "| ours B | 2.700 [2.500, 2.950] | – |",
                                            "| *paper* (paper) | **1.498** | 27.50 |"]
    assert "[low, high] after a value: its confidence interval" in lines[header + 6]
    with open(files["csv"], newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [(r["m_lmd_low"], r["m_lmd_high"], r["psnr_low"]) for r in table] == [
        ("1.4012", "1.6499", "29.5"), ("2.5", "2.95", ""), ("", "", "")]


def test_intervals_on_the_page(spanned, browser: Browser):
    _, files = spanned
    page = browser.new_page(width=1280, height=800)
    try:
        page.goto(files["html"].resolve().as_uri())
        cells = page.evaluate("""[...document.querySelectorAll("#leaderboard tbody tr[data-label]")].map((tr) =>
          [...tr.querySelectorAll("td[data-column]")].map((td) => [td.querySelector(".value").textContent,
                                                                    td.querySelector(".interval")?.textContent ?? null]))""")
        assert cells == [[["1.532", "[1.401, 1.650]"], ["30.12", "[29.50, 30.81]"]],
                         [["2.700", "[2.500, 2.950]"], ["–", None]], [["1.498", None], ["27.50", None]]]
        whiskers = page.evaluate("""Object.fromEntries([...document.querySelectorAll("svg.chart")].map((svg) =>
          [svg.dataset.column, [...svg.querySelectorAll("path.interval")].map((p) => p.dataset.label)]))""")
        assert whiskers == {"m_lmd": ["ours A", "ours B"], "psnr": ["ours A"]}
        assert browser.events("Runtime.exceptionThrown", page.session_id) == []
    finally:
        page.close()
