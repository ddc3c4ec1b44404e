"""How long ``ticktape report`` takes on a 10M-tick run, and how big the file is, as one table.

A home of its own (``--home``, default a temporary folder) gets a stored
demo run of ``--ticks`` ticks per symbol over ``--symbols`` symbols (``ticktape
demo``: 5M x 2 = 10M ticks by default; a home that already holds that run
is reused, as in benchmarks/app_monitor.py). Then, with the embedded
PostgreSQL kept up, ``--repeat`` times each:

* ``sections``: the store's reads and the figures (``report.build``: the
  equity resampled by the server, the fills, the round trips);
* ``render``: the sections to one HTML string (plotly.js inlined once);
* ``write``: the file written whole (temporary file, renamed);
* ``ticktape report`` (the command in a subprocess: starting Python, the
  store, all of the above).

And the file: its size, plotly.js's share of it, the points per series.
Wall seconds are medians. The load average is printed before and after:
compare figures of the same machine run back to back.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from plotly.offline import get_plotlyjs

from ticktape.config import Settings
from ticktape.report import render
from ticktape.report.build import build
from ticktape.runtime.embedded import Runtime
from ticktape.store import session

TICKTAPE = Path(sys.executable).with_name("ticktape")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ticks", type=int, default=5_000_000, help="ticks per symbol")
    ap.add_argument("--symbols", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="ticktape-report-bench-"))
    env = {**os.environ, "TICKTAPE_HOME": str(home)}
    env.pop("TICKTAPE_DATABASE_URL", None)
    print(f"load average before: {os.getloadavg()}")
    kept = home / f"bench-run-{args.ticks}x{args.symbols}"
    if kept.exists():
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
    out = home / "report.html"
    rows: dict[str, list[float]] = {"sections": [], "render": [], "write": []}
    settings = Settings.from_env().with_home(home)
    with Runtime(settings, kafka=False) as rt:
        dsn = str(rt.database_url)
        for _ in range(args.repeat):
            t = time.perf_counter()
            title, sections = session.run(lambda conn: build(conn, run_id), dsn=dsn, migrate=False)
            rows["sections"].append(time.perf_counter() - t)
            t = time.perf_counter()
            page = render.render(title, sections)
            rows["render"].append(time.perf_counter() - t)
            t = time.perf_counter()
            size = render.write(out, page)
            rows["write"].append(time.perf_counter() - t)
    rows["ticktape report (command)"] = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run([TICKTAPE, "report", run_id, "-o", str(out)], env=env, check=True, capture_output=True)
        rows["ticktape report (command)"].append(time.perf_counter() - t)
    js = len(get_plotlyjs().encode())
    points = {f"{s.title}": max((len(t.x) for f in s.figures for t in f.data if t.x is not None), default=0)
              for s in sections if s.figures}  # fmt: skip
    print(
        f"\nReport of a {args.ticks * args.symbols:,}-tick run ({args.symbols} symbols), median of {args.repeat}"
    )
    print(f"{'':30} {'wall s':>8} {'min s':>8} {'max s':>8}")
    for name, xs in rows.items():
        print(f"{name:30} {statistics.median(xs):8.2f} {min(xs):8.2f} {max(xs):8.2f}")
    print(
        f"\nfile: {size / 1e6:.2f} MB ({js / 1e6:.2f} MB of it plotly.js, {(size - js) / 1e6:.2f} MB the report)"
    )
    print("points per figure (the longest series): " + ", ".join(f"{k} {v:,}" for k, v in points.items()))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
