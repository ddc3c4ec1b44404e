"""How long the app's Monitor page takes to show a 10M-tick run, as one table.

A home of its own (``--home``, default a temporary folder) gets a stored
demo run of ``--ticks`` ticks per symbol over ``--symbols`` symbols (``ticktape
demo``: 5M x 2 = 10M ticks by default; a home that already holds that run is
reused), then ``ticktape dashboard`` serves it and Debian's Chromium
(/usr/bin/chromium, through playwright) opens ``/monitor?run=ID``:

* ``first chart``: from the request to the first plotly chart drawn;
* ``settled``: until Streamlit has finished the page (its running indicator gone);
* ``zoomed to ticks``: after setting the zoom to the run's last 0.02 % (ticks
  instead of bars), until the chart is drawn again;
* and the page's queries timed in this process (the equity thinned to 2,000
  samples per symbol, the fill markers merged in SQL, the recent fills, the
  run's bars, the tick count of the window).

Usage::

    python benchmarks/app_monitor.py                    # 10M ticks
    python benchmarks/app_monitor.py --ticks 600000 --symbols 2 --repeat 3

Wall seconds are the median of ``--repeat`` page loads (a new browser page
each). The load average is printed before and after: compare figures of the
same machine run back to back.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from ticktape.dashboards import monitor, queries
from ticktape.runtime.processes import port_in_use

TICKTAPE = Path(sys.executable).with_name("ticktape")


def settle(page) -> None:
    """Until Streamlit's running indicator has been gone for a second."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if page.locator("[data-testid=stStatusWidget]").count() == 0:
            time.sleep(1.0)
            if page.locator("[data-testid=stStatusWidget]").count() == 0:
                return
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ticks", type=int, default=5_000_000, help="ticks per symbol")
    ap.add_argument("--symbols", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="ticktape-app-bench-"))
    env = {**os.environ, "TICKTAPE_HOME": str(home)}
    env.pop("TICKTAPE_DATABASE_URL", None)
    print(f"load average before: {os.getloadavg()}")
    kept = home / f"bench-run-{args.ticks}x{args.symbols}"
    if kept.exists():  # (a home given again: its run is reused)
        run_id = kept.read_text().strip()
        print(f"reusing run {run_id} of {home}")
    else:
        t0 = time.perf_counter()
        demo = subprocess.run(
            [TICKTAPE, "demo", "--ticks", str(args.ticks), "--symbols", str(args.symbols)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        run_id = re.search(r"run_id = '([0-9a-f-]{36})'", demo.stdout).group(1)
        kept.write_text(run_id)
        print(f"stored run {run_id}: {args.ticks * args.symbols:,} ticks in {time.perf_counter() - t0:.0f} s")
    port = next(p for p in range(8700, 8800) if not port_in_use(p))
    dash = subprocess.Popen(
        [TICKTAPE, "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    rows: dict[str, list[float]] = {"first chart": [], "settled": [], "zoomed to ticks": []}
    try:
        while True:
            try:
                urllib.request.urlopen(base + "/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
            for _ in range(args.repeat):
                page = browser.new_page(viewport={"width": 1400, "height": 2000})
                page.set_default_timeout(600_000)
                t = time.perf_counter()
                page.goto(f"{base}/monitor?run={run_id}")
                page.wait_for_selector(".js-plotly-plot")
                rows["first chart"].append(time.perf_counter() - t)
                settle(page)
                rows["settled"].append(time.perf_counter() - t - 1.0)
                slider = page.locator("[data-testid=stSlider] input[type=range]").first
                slider.focus()
                t = time.perf_counter()
                page.keyboard.press("End")  # the window's start to 100 %, then back 0.02 %
                page.keyboard.press("ArrowLeft")
                page.keyboard.press("ArrowLeft")
                page.wait_for_selector("text=price (ticks)")
                rows["zoomed to ticks"].append(time.perf_counter() - t)
                page.close()
            browser.close()
        dsn = (home / "pg").as_posix()
        url = f"postgresql://postgres@/ticktape?host={dsn}"
        run = queries.run_row(url, run_id)
        symbol = run["symbols"][0]
        timed = {
            "query: equity (thinned)": lambda: queries.equity(url, run_id, points=monitor.MAX_POINTS),
            "query: fill markers (merged)": lambda: queries.fill_markers(
                url, run_id, symbol, 0, 2**62, monitor.MAX_FILL_MARKERS, 1_800 * 10**9
            ),
            "query: recent fills": lambda: queries.recent_fills(url, run_id, symbol, 2**62),
            "query: run bars (1 min)": lambda: queries.run_bars(url, run_id, symbol, "60 seconds"),
            "query: ticks in the window": lambda: queries.tick_count(url, symbol, 0, 2**62),
        }
        for name, fn in timed.items():
            rows[name] = []
            for _ in range(args.repeat):
                t = time.perf_counter()
                fn()
                rows[name].append(time.perf_counter() - t)
    finally:
        os.killpg(dash.pid, signal.SIGTERM)
        dash.wait(30)
    print(
        f"\nMonitor of a {args.ticks * args.symbols:,}-tick run ({args.symbols} symbols), median of {args.repeat}"
    )
    print(f"{'':34} {'wall s':>8} {'min s':>8} {'max s':>8}")
    for name, xs in rows.items():
        print(f"{name:34} {statistics.median(xs):8.2f} {min(xs):8.2f} {max(xs):8.2f}")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
