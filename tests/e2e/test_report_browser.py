"""``ticktape report`` in a real browser: the HTML file it writes opens in
Debian's headless Chromium (/usr/bin/chromium through playwright, as
tests/e2e/test_app_browser.py) with every request but the file itself
refused: no console error, every chart drawn (plotly's svg with its traces
in each figure), nothing fetched. Screenshots go to test-artifacts/app/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from ticktape import store
from ticktape.backtest import sweep as sweeps
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.runtime.processes import run_coro

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "app"
TICKTAPE = Path(sys.executable).with_name("ticktape")
#: What a drawn figure holds: a line's path, a heatmap's image, a bar, or a WebGL canvas.
DRAWN = ".scatterlayer .trace path.js-line, .heatmaplayer image, .barlayer .point path, canvas"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)"
        )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


def store_sweep(
    db_url: str, ticks: np.ndarray, symbol: str, grid: dict, keep_top: int
) -> tuple[str, list[str]]:
    res = sweeps.sweep(ticks, "sma_crossover", sweeps.grid(grid), keep_top=keep_top)

    async def go() -> list[str]:
        conn = await store.connect(db_url)
        try:
            return await sweeps.store_sweep(conn, res, symbol)
        finally:
            await conn.close()

    ids = run_coro(go)
    kept = [rid for s, rid in zip(res.sets, ids, strict=True) if s.index in res.detail]
    return res.sweep_id, kept


def report(db_url: str, ident: str, out: Path) -> str:
    done = subprocess.run(
        [TICKTAPE, "report", ident, "-o", str(out)],
        env={**os.environ, "TICKTAPE_DATABASE_URL": db_url},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out.read_text()


def open_offline(browser, path: Path, shot: str) -> int:
    """Open ``path`` with every other request refused; check it; the figures drawn."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    fetched: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    def refuse(route) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            fetched.append(route.request.url)
            route.abort()

    page.route("**/*", refuse)
    try:
        page.goto(path.as_uri(), wait_until="load")
        figures = page.locator(".js-plotly-plot")
        expected = path.read_text().count("Plotly.newPlot(")
        page.wait_for_function(
            "n => { const p = [...document.querySelectorAll('.js-plotly-plot')];"
            " return p.length === n && p.every(f => f.querySelector('.main-svg')); }",
            arg=expected,
        )
        assert figures.count() == expected > 0
        for i in range(expected):
            fig = figures.nth(i)
            assert fig.locator("svg.main-svg").count() >= 1, f"figure {i}: no svg"
            assert fig.locator(DRAWN).count() >= 1, f"figure {i}: nothing drawn"
            for line in fig.locator(".scatterlayer .trace path.js-line").all():
                assert len(line.get_attribute("d") or "") > 20, f"figure {i}: an empty line"
        page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
    finally:
        page.close()
    assert problems == [], problems
    assert fetched == [], fetched
    return expected


def test_a_run_and_its_sweep_open_offline_with_every_chart_drawn(db_url, browser, tmp_path):
    symbol = f"BR{uuid.uuid4().hex[:6].upper()}"
    ticks = np.concatenate(
        list(generate_walk(RandomWalkConfig(symbol=symbol, n_ticks=40_000, seed=3, rate_per_s=0.1)))
    )
    sweep_id, kept = store_sweep(db_url, ticks, symbol, {"fast": [5, 10, 20], "slow": [50, 100, 200]}, 1)
    page = report(db_url, kept[0], tmp_path / "run.html")
    assert page.count("Plotly.newPlot(") == 5  # equity, returns, rolling Sharpe, trades, exposure
    assert open_offline(browser, tmp_path / "run.html", "report-run.png") == 5
    report(db_url, sweep_id, tmp_path / "sweep.html")
    assert open_offline(browser, tmp_path / "sweep.html", "report-sweep.png") == 2  # heatmap, kept set


def test_twenty_years_of_daily_bars_by_month(db_url, browser, tmp_path, shared_data):
    """A sweep over ORCL's daily bars, 1995-2014: a monthly heatmap of 20 years."""
    bars = shared_data("bars/orcl-1995-2014.txt")
    grid = sweeps.grid({"fast": [10, 20], "slow": [50, 100]})
    res = sweeps.sweep(bars, "sma_crossover", grid, keep_top=1, tick_size=1e-6)  # (adjusted prices)

    async def go() -> list[str]:
        conn = await store.connect(db_url)
        try:
            return await sweeps.store_sweep(conn, res, "orcl-1995-2014.txt")
        finally:
            await conn.close()

    ids = run_coro(go)
    kept = next(rid for s, rid in zip(res.sets, ids, strict=True) if s.index in res.detail)
    page = report(db_url, kept, tmp_path / "orcl.html")
    assert "Monthly returns" in page
    assert open_offline(browser, tmp_path / "orcl.html", "report-orcl-monthly.png") == 5
