"""How long ``ticktape report`` takes on a 10M-tick run, and how big the file is, as one table.

A home of its own (``--home``, default a temporary folder) gets a stored
run of ``--ticks`` ticks per symbol over ``--symbols`` symbols (5M x 2 =
10M ticks by default): the demo's ticks and strategy (``ticktape demo``'s
random walks, seed 7, 20 ticks/s: 2.9 days; sma_crossover 50/400, 100
shares), run in process per symbol (``backtest.run.run_symbol``, what a
pipeline run of the spec stores: tests/e2e checks it) and stored as the
sink stores a run (``write_result_set``, progress, ``complete_if_done``:
the metrics computed from the store). A home that already holds that run
is reused. This costs the machine far less than a 10M-tick pipeline run,
and the report reads only the run's results (never the ticks).

Then, with the embedded PostgreSQL kept up, ``--repeat`` times each:

* ``sections``: the store's reads and the figures (``report.build``: the
  equity resampled by the server, the fills, the round trips);
* ``render``: the sections to one HTML string (plotly.js inlined once);
* ``write``: the file written whole (temporary file, renamed);
* ``ticktape report`` (the command in a subprocess: starting Python, the
  embedded PostgreSQL, all of the above).

And the file: its size, plotly.js's share of it, the points per figure.
Wall seconds are medians. The load average is printed before and after:
compare figures of the same machine run back to back.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import numpy as np
from plotly.offline import get_plotlyjs

from ticktape import store
from ticktape.backtest.run import run_symbol
from ticktape.config import Settings
from ticktape.data.synth import RandomWalkConfig, generate_walk
from ticktape.model.spec import RunSpec
from ticktape.report import render
from ticktape.report.build import build
from ticktape.runtime.embedded import Runtime
from ticktape.store import session
from ticktape.store.report import equity_span

TICKTAPE = Path(sys.executable).with_name("ticktape")


def store_run(dsn: str, ticks: int, symbols: int) -> str:
    """The demo's run of ``symbols`` x ``ticks`` ticks, stored as the sink stores it; its id."""
    names = tuple(f"DEMO-{chr(ord('A') + i)}" for i in range(symbols))
    spec = RunSpec(strategy="sma_crossover", symbols=names, params={"fast": 50, "slow": 400, "size": 100.0})
    results, span = {}, []
    for s in names:
        data = np.concatenate(list(generate_walk(RandomWalkConfig(symbol=s, n_ticks=ticks, seed=7))))
        span += [int(data["ts"][0]), int(data["ts"][-1])]
        results[s] = run_symbol(spec, [data])
        del data

    async def go(conn: asyncpg.Connection) -> None:
        await store.create_run(
            conn,
            spec.run_id,
            spec.strategy,
            json.loads(spec.to_json()),
            spec.params,
            names,
            min(span),
            max(span),
            status="running",
        )
        for s, r in results.items():
            await store.write_result_set(
                conn, spec.run_id, s, 0, {k: getattr(r, k) for k in ("signals", "orders", "fills", "equity")}
            )
            await store.update_progress(
                conn,
                spec.run_id,
                s,
                r.accepted,
                max(span),
                done=True,
                ticks_in=r.ticks_in,
                ticks_rejected=r.ticks_in - r.accepted,
                rejects=r.rejects,
            )
        assert await store.complete_if_done(conn, spec.run_id)

    session.run(go, dsn=dsn)
    return spec.run_id


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ticks", type=int, default=5_000_000, help="ticks per symbol")
    ap.add_argument("--symbols", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--home", type=Path, default=None)
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="ticktape-report-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TICKTAPE_HOME": str(home)}
    env.pop("TICKTAPE_DATABASE_URL", None)
    print(f"load average before: {os.getloadavg()}")
    kept = home / f"bench-run-{args.ticks}x{args.symbols}"
    out = home / "report.html"
    rows: dict[str, list[float]] = {"sections": [], "render": [], "write": []}
    settings = Settings.from_env().with_home(home)
    with Runtime(settings, kafka=False) as rt:
        dsn = str(rt.database_url)
        if kept.exists():
            run_id = kept.read_text().strip()
            print(f"reusing run {run_id} of {home}")
        else:
            t0 = time.perf_counter()
            run_id = store_run(dsn, args.ticks, args.symbols)
            kept.write_text(run_id)
            print(
                f"stored run {run_id}: {args.ticks * args.symbols:,} ticks in {time.perf_counter() - t0:.0f} s"
            )
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
        samples = session.run(lambda conn: equity_span(conn, run_id), dsn=dsn, migrate=False)[2]
    rows["ticktape report (command)"] = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        subprocess.run([TICKTAPE, "report", run_id, "-o", str(out)], env=env, check=True, capture_output=True)
        rows["ticktape report (command)"].append(time.perf_counter() - t)
    js = len(get_plotlyjs().encode())
    points = {
        s.title: max((len(t.x) for f in s.figures for t in f.data if t.x is not None), default=0)
        for s in sections
        if s.figures
    }
    print(
        f"\nReport of a {args.ticks * args.symbols:,}-tick run ({args.symbols} symbols), median of {args.repeat}"
    )
    print(f"{'':30} {'wall s':>8} {'min s':>8} {'max s':>8}")
    for name, xs in rows.items():
        print(f"{name:30} {statistics.median(xs):8.2f} {min(xs):8.2f} {max(xs):8.2f}")
    print(
        f"\nfile: {size / 1e6:.2f} MB ({js / 1e6:.2f} MB of it plotly.js, {(size - js) / 1e6:.2f} MB the report)"
    )
    print(f"equity samples stored: {samples:,}")
    print("points per figure (the longest series): " + ", ".join(f"{k} {v:,}" for k, v in points.items()))
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
