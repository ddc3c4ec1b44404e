"""The app in a real browser: `ticktape dashboard` on a store holding a
finished demo run and a live paced run, driven by Chromium (Debian's
/usr/bin/chromium through the playwright package: no browser download).

Every page loads with its charts and no Streamlit exception; a stored run is
played back and the playback position advances; a strategy is built from the
form and from a sentence and run; a file with bad rows is imported and its
rejects are counted on the page. Screenshots go to test-artifacts/app/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from ticktape.runtime.processes import port_in_use
from ticktape.testing import bars_frame

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "app"
TICKTAPE = Path(sys.executable).with_name("ticktape")
DEMO_TICKS = 100_000
GRID = ("--grid", "fast=5,10", "--grid", "slow=30,50", "--processes", "1")  # the stored sweep's


def _free_port() -> int:
    return next(p for p in range(8600, 8700) if not port_in_use(p))


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A home with a finished demo run and a live paced run, and the dashboard on it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)"
        )
    home = tmp_path_factory.mktemp("app-home")
    env = {**os.environ, "TICKTAPE_HOME": str(home)}
    env.pop("TICKTAPE_DATABASE_URL", None)
    env.pop("TICKTAPE_KAFKA_URL", None)
    demo = subprocess.run(
        [TICKTAPE, "demo", "--ticks", str(DEMO_TICKS)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stderr
    finished = re.search(r"run_id = '([0-9a-f-]{36})'", demo.stdout).group(1)
    bars_csv = home / "bars.csv"
    bars_frame(400, freq="1h").to_csv(bars_csv, index=False)
    swept = subprocess.run(
        [TICKTAPE, "sweep", "--data", str(bars_csv), "--strategy", "sma_crossover", "--store", *GRID],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert swept.returncode == 0, swept.stderr
    sweep_id = re.search(r"sweep ([0-9a-f-]{36}):", swept.stdout).group(1)
    spec = home / "live.json"
    spec.write_text(
        json.dumps({"strategy": "sma_crossover", "symbols": ["DEMO-A"], "params": {"fast": 10, "slow": 50}})
    )
    procs = []
    try:
        live = subprocess.Popen(
            [TICKTAPE, "run", str(spec), "--speed", "10"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(live)
        port = _free_port()
        dash = subprocess.Popen(
            [TICKTAPE, "dashboard", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(dash)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(base + "/_stcore/health", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, "the dashboard did not come up"
                assert dash.poll() is None, "the dashboard exited"
                time.sleep(1)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        yield {"base": base, "finished": finished, "home": home, "sweep": sweep_id}
    finally:
        for p in reversed(procs):
            _stop(p)


@pytest.fixture(scope="module")
def browser(served: dict) -> Iterator:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    p = browser.new_page(viewport={"width": 1400, "height": 2000})
    p.set_default_timeout(120_000)
    yield p
    p.close()


def _settle(page, seconds: float = 1.5) -> None:
    """Wait until Streamlit has finished running the script."""
    page.wait_for_selector("[data-testid=stApp]")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if page.locator("[data-testid=stStatusWidget]").count() == 0:
            time.sleep(seconds)
            if page.locator("[data-testid=stStatusWidget]").count() == 0:
                return
        time.sleep(0.3)


def _clean(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.locator("[data-testid=stException]").count() == 0, f"{name}: a Streamlit exception is shown"


@pytest.mark.parametrize(
    ("path", "charts"),
    [("", 0), ("monitor", 1), ("build", 0), ("sweeps", 0), ("sql", 0), ("data", 1)],
)
def test_every_page_loads(served, page, path, charts):
    page.goto(f"{served['base']}/{path}")
    page.wait_for_selector("h1")
    if charts:
        page.wait_for_selector(".js-plotly-plot")
    _settle(page)
    _clean(page, f"page-{path or 'runs'}")
    assert page.locator(".js-plotly-plot").count() >= charts


def test_the_live_run_is_monitored_and_its_chart_extends(served, page):
    page.goto(served["base"] + "/monitor")
    page.wait_for_selector("h1")
    _settle(page)
    box = page.get_by_label("run").first
    assert box is not None
    page.goto(served["base"] + "/")
    _settle(page)
    runs = page.locator("[data-testid=stDataFrame]").first
    assert runs.is_visible()
    # the live run: the latest one, running
    page.goto(served["base"] + "/monitor")
    page.wait_for_selector(".js-plotly-plot")
    _settle(page)
    page.wait_for_selector("text=now: running")
    window = page.get_by_text(re.compile(r"→ .* UTC \(")).first
    first = window.inner_text()
    time.sleep(6)  # the fragment re-reads every 2 s: only rows newer than shown
    page.wait_for_selector(".js-plotly-plot")
    later = page.get_by_text(re.compile(r"→ .* UTC \(")).first.inner_text()
    _clean(page, "monitor-live")
    assert later != first, "the live run's span did not grow"


def test_a_stored_run_plays_back_and_the_position_advances(served, page):
    page.goto(f"{served['base']}/monitor?run={served['finished']}")
    page.wait_for_selector(".js-plotly-plot")
    _settle(page)
    page.get_by_text("playback", exact=True).click()
    page.wait_for_selector("[data-testid=stProgress]")
    _settle(page)
    before = page.locator("[data-testid=stProgress]").inner_text()
    page.get_by_role("button", name="▶ play").click()
    time.sleep(4)
    after = page.locator("[data-testid=stProgress]").inner_text()
    _clean(page, "monitor-playback")
    pos = re.compile(r"playback position (\S+ \S+)")
    assert pos.search(before) and pos.search(after), (before, after)
    assert pos.search(after).group(1) > pos.search(before).group(1), (before, after)


def test_a_heatmap_cell_clicked_is_the_run_opened(served, page):
    page.goto(f"{served['base']}/sweeps?sweep={served['sweep']}")
    page.wait_for_selector(".js-plotly-plot")
    _settle(page)
    cell = page.get_by_role("combobox", name="open the run of a cell")
    assert cell.input_value() == "fast=5, slow=30"
    # x = fast (5, 10) left to right, y = slow (30, 50) bottom to top: the top-right cell
    area = page.locator(".js-plotly-plot .nsewdrag").first.bounding_box()
    page.mouse.click(area["x"] + 0.75 * area["width"], area["y"] + 0.25 * area["height"])
    _settle(page)
    _clean(page, "sweeps-cell-clicked")
    assert cell.input_value() == "fast=10, slow=50"
    page.get_by_role("button", name="Open in Monitor").click()
    page.wait_for_url(re.compile(r"/monitor\?run="))
    page.wait_for_selector("text=was stored as a summary")  # (no fills or equity: a summary set)
    _settle(page)
    _clean(page, "sweeps-cell-opened")
    assert page.get_by_text("--grid fast=10 --grid slow=50").count() >= 1


def test_build_from_the_form_and_run(served, page):
    page.goto(served["base"] + "/build")
    page.wait_for_selector("h1")
    _settle(page)
    fast = page.get_by_role("spinbutton", name="fast")
    fast.fill("5")
    fast.press("Enter")
    _settle(page)
    page.get_by_role("button", name="Run in process").click()
    page.wait_for_selector("text=Sharpe ratio")
    _settle(page)
    _clean(page, "build-form-run")
    assert page.get_by_text("Return grid").count() == 1


def test_build_from_a_sentence_and_run(served, page):
    page.goto(served["base"] + "/build")
    page.wait_for_selector("h1")
    _settle(page)
    page.get_by_text("sentence", exact=True).click()
    _settle(page)
    text = page.get_by_label("describe the strategy")
    text.fill("buy when the 10 period moving average crosses above the 50 and sell when RSI is above 70")
    text.press("Enter")
    _settle(page)
    page.get_by_role("button", name="Read the sentence").click()
    spec = page.get_by_label("what it understood (edit the spec if you like)")
    spec.wait_for()
    _settle(page)
    assert '"op": "crosses_above"' in spec.input_value()
    page.get_by_role("button", name="Run in process").click()
    page.wait_for_selector("text=Sharpe ratio")
    _settle(page)
    _clean(page, "build-sentence-run")


def test_an_unreadable_sentence_and_an_unknown_run_are_one_line(served, page):
    page.goto(f"{served['base']}/monitor?run=00000000-0000-0000-0000-000000000000")
    page.wait_for_selector("text=no run 00000000-0000-0000-0000-000000000000 in this store")
    _settle(page)
    _clean(page, "monitor-unknown-run")
    page.goto(served["base"] + "/build")
    page.wait_for_selector("h1")
    page.get_by_text("sentence", exact=True).click()
    _settle(page)
    text = page.get_by_label("describe the strategy")
    text.fill("the moon is made of cheese")
    text.press("Enter")
    _settle(page)
    page.get_by_role("button", name="Read the sentence").click()
    page.wait_for_selector("text=could not read the sentence")
    _settle(page)
    _clean(page, "build-unreadable")


def test_importing_a_file_with_bad_rows_counts_its_rejects(served, page, tmp_path):
    csv = tmp_path / "bad.csv"
    lines = ["ts,bid,ask,bid_size,ask_size"]
    lines += [f"2024-03-01T00:00:{i:02d}Z,100.0{i % 10},100.1{i % 10},5,5" for i in range(20)]
    lines += ["2024-03-01T00:00:30Z,not-a-price,100.2,5,5", "2024-03-01T00:00:31Z,100.3,100.2,5,5"]
    csv.write_text("\n".join(lines) + "\n")
    page.goto(served["base"] + "/data")
    page.wait_for_selector("h1")
    _settle(page)
    page.locator("input[type=file]").set_input_files(str(csv))
    _settle(page)
    page.get_by_label("symbol (when the file has none)").fill("BADROWS")
    page.get_by_label("symbol (when the file has none)").press("Enter")
    _settle(page)
    page.get_by_role("button", name="Import").click()
    page.wait_for_selector("text=rows rejected")
    _settle(page)
    _clean(page, "data-import-rejects")
    shown = page.locator("[data-testid=stAlert]").all_inner_texts()
    assert any("20 ticks stored, 2 rows rejected" in t for t in shown), shown


def test_a_paced_replay_started_from_the_app_is_watched_and_cancelled(served, page):
    page.goto(served["base"] + "/build")
    page.wait_for_selector("h1")
    _settle(page)
    box = page.locator("[data-testid=stSelectbox]").filter(has_text="symbol").first
    box.click()  # the demo's symbol (the import test stored BADROWS: 20 ticks, over in a second)
    page.get_by_role("option", name="DEMO-A").click()
    _settle(page)
    page.get_by_text("run over the pipeline (watch it live in Monitor)").click()
    page.get_by_role("button", name="Start the replay").click()
    page.wait_for_url(re.compile(r"/monitor\?run="))
    run_id = page.url.split("run=")[1]
    page.wait_for_selector("text=now: running", timeout=180_000)  # (re-read every 2 s)
    assert page.get_by_text("no run").count() == 0  # Monitor opened on the replay's own run
    assert page.get_by_label("run", exact=True).count() == 0  # (no picker: the URL's run exists)
    page.wait_for_selector(".js-plotly-plot", timeout=180_000)
    _settle(page)
    _clean(page, "monitor-replay-from-the-app")
    page.get_by_role("button", name="cancel").click()
    page.wait_for_selector("text=cancel requested")  # (the request reached the server before we leave)
    page.goto(f"{served['base']}/monitor?run={run_id}")
    page.wait_for_selector("text=status cancelled")
    _settle(page)
    _clean(page, "monitor-replay-cancelled")
