"""The renderer: one self-contained HTML file (plotly.js once, no network),
every figure and table, the header, text escaped; written whole or not at all."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from plotly.offline import get_plotlyjs

from ticktape import __version__
from ticktape.report import render
from ticktape.report.document import Section


def sections() -> list[Section]:
    figs = tuple(go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2])) for _ in range(2))
    return [
        Section("Equity <and> drawdown", figures=figs, notes=("a note & <b>not bold</b>",)),
        Section(
            "Tables",
            figures=(go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])),),
            tables=(
                pd.DataFrame({"metric": ["Sharpe ratio", "<script>x</script>"], "value": [1.23456, 1234.5]}),
            ),
        ),
        Section("Only notes", notes=("nothing to draw",)),
        Section("Facts", tables=(pd.DataFrame([("run id", "0190")], columns=["", "value"]),)),
    ]


def test_plotly_js_is_inlined_once_and_nothing_is_fetched():
    page = render.render("a <run>", sections())
    js = get_plotlyjs()
    assert page.count(js) == 1
    assert page.count("Plotly.newPlot(") == 3  # one per figure
    assert len(page) < len(js) + 200_000
    ours = page.replace(js, "")  # (plotly.js itself names its CDN in comments)
    assert not re.search(r"<script[^>]+src=", ours)
    assert not re.search(r"<link[^>]+href=", ours)
    assert "http" not in ours


def test_the_header_the_sections_and_escaping():
    when = datetime(2026, 12, 7, 23, 5, 9, tzinfo=UTC)
    page = render.render("a <run>", sections(), generated_at=when)
    assert "<title>a &lt;run&gt;</title>" in page
    assert f"generated 2026-12-07 23:05:09 UTC by ticktape {__version__}" in page
    assert page.count("<section ") == 4 and page.count("<table") == 2
    assert page.count("<thead>") == 1  # (a list of facts has no header row)
    assert "<h2>Equity &lt;and&gt; drawdown</h2>" in page
    assert "a note &amp; &lt;b&gt;not bold&lt;/b&gt;" in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page and "<script>x</script>" not in page
    assert ">1.235<" in page and ">1,234.50<" in page  # (numbers as labels.number shows them)
    assert page.count('<a href="#s') == 4


def test_write_is_whole_or_nothing(tmp_path: Path):
    out = tmp_path / "r.html"
    size = render.write(out, "<p>é</p>")
    assert out.read_bytes() == "<p>é</p>".encode() and size == len("<p>é</p>".encode())
    render.write(out, "new")
    assert out.read_text() == "new"
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        render.write(tmp_path / "taken", "x")  # (the rename onto a directory fails)
    with pytest.raises(FileNotFoundError):
        render.write(tmp_path / "missing" / "r.html", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "taken"]  # no temporary file left
