"""Reading a tick CSV as each command does, as one table: ``ticktape backtest
FILE`` (the whole file into ticks), ``ticktape data import FILE --dry-run``
(parse and validate in blocks) and ``ticktape data generate --from-bars FILE``
(the bars read in pieces), for times as ISO 8601 text and as epoch ns.

Usage::

    python benchmarks/csv_read.py                   # 5M ticks, 1M bars
    python benchmarks/csv_read.py --n 1000000 --bars 200000 --repeat 1

The files are written once into ``--dir`` (default: a temporary folder) and
kept there when given, so another checkout can read the same files:
``other/.venv/bin/python benchmarks/csv_read.py --dir /tmp/csv`` (the script
uses the functions every version has: ``backtest.run.prepare``,
``Importer.run``, and ``synth.read_bars`` or, before it, pandas chunks and
``synth.bars_from_frame``).

Columns: wall seconds (the median of ``--repeat`` runs, in this process),
CPU seconds of this process, rows per second. The load average is printed
before and after: compare figures of the same machine run back to back.
"""

from __future__ import annotations

import argparse
import inspect
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

NS = 1_000_000_000


def write_ticks(path: Path, n: int, form: str) -> None:
    """n GBM quotes: ``ts,bid,ask,bid_size,ask_size`` with ``ts`` as ISO text (UTC, µs, "Z") or epoch ns."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from ticktape.data import synth

    names = ["ts", "bid", "ask", "bid_size", "ask_size"]
    with open(path, "wb") as f:
        f.write((",".join(names) + "\n").encode())
        cfg = synth.ProcessConfig(symbol="BENCH", n_ticks=n, seed=1)
        for c in synth.generate_process(cfg, chunk=500_000):
            if form == "iso":
                text = np.char.add(np.datetime_as_string(c["ts"].astype("datetime64[ns]"), unit="us"), "Z")
                ts = pa.array(text.astype(object), type=pa.string())
            else:
                ts = pa.array(c["ts"])
            table = pa.Table.from_arrays([ts] + [pa.array(c[k]) for k in names[1:]], names=names)
            pacsv.write_csv(
                table, f, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
            )


def write_bars(path: Path, n: int) -> None:
    """n one-minute OHLCV bars with ISO dates."""
    import pandas as pd

    rng = np.random.default_rng(2)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))), 2)
    open_ = np.concatenate(([100.0], close[:-1]))
    frame = pd.DataFrame(
        {
            "Date": pd.date_range("2020-01-01", periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S"),
            "Open": open_,
            "High": np.round(np.maximum(open_, close) + 0.05, 2),
            "Low": np.round(np.minimum(open_, close) - 0.05, 2),
            "Close": close,
            "Volume": rng.integers(1, 1000, n),
        }
    )
    frame.to_csv(path, index=False)


def backtest_read(path: Path) -> int:
    from ticktape.backtest.run import prepare

    return len(prepare(str(path)).ticks)


def import_parse(path: Path, time_format: str) -> int:
    from ticktape.data.importers import Importer

    return Importer(path, "csv", symbol="BENCH", time_format=time_format).run().accepted


def generate_read(path: Path) -> int:
    from ticktape.data import synth

    if hasattr(synth, "read_bars"):
        return sum(len(b) for b in synth.read_bars(path))
    import pandas as pd  # (before data/convention: the command's own reader)

    return sum(len(synth.bars_from_frame(f)) for f in pd.read_csv(path, chunksize=50_000))


def measure(work: Callable[[], int], repeat: int) -> tuple[int, float, float]:
    walls, cpus, rows = [], [], 0
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        rows = work()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return rows, statistics.median(walls), statistics.median(cpus)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=5_000_000, help="ticks per file")
    ap.add_argument("--bars", type=int, default=1_000_000, help="bars of the bars file")
    ap.add_argument("--repeat", type=int, default=3, help="runs per path (the median is shown)")
    ap.add_argument("--dir", type=Path, default=None, help="where the files are (written if missing)")
    args = ap.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="ticktape-csv-"))
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "iso": folder / f"ticks-iso-{args.n}.csv",
        "ns": folder / f"ticks-ns-{args.n}.csv",
        "bars": folder / f"bars-{args.bars}.csv",
    }
    for form in ("iso", "ns"):
        if not files[form].exists():
            write_ticks(files[form], args.n, form)
    if not files["bars"].exists():
        write_bars(files["bars"], args.bars)
    import ticktape.backtest.run  # noqa: F401 - (imported before the clock starts)
    from ticktape.data.importers import Importer

    default = inspect.signature(Importer).parameters["time_format"].default  # (iso before the convention)
    paths = [
        ("ticktape backtest FILE: ticks, ISO times", lambda: backtest_read(files["iso"])),
        ("ticktape backtest FILE: ticks, epoch ns", lambda: backtest_read(files["ns"])),
        (
            "ticktape data import --dry-run: ISO times (default format)",
            lambda: import_parse(files["iso"], default),
        ),
        (
            "ticktape data import --dry-run: epoch ns (--time-format ns)",
            lambda: import_parse(files["ns"], "ns"),
        ),
        ("ticktape data generate --from-bars: reading the bars", lambda: generate_read(files["bars"])),
    ]
    print(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    rows = []
    for name, work in paths:
        k, wall, cpu = measure(work, args.repeat)
        rows.append((name, k, wall, cpu))
        print(f"#   {name}: {k:,} rows in {wall:.2f} s", file=sys.stderr, flush=True)
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", file=sys.stderr)
    print("| path | rows | wall s | CPU s | rows/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, k, wall, cpu in rows:
        print(f"| {name} | {k:,} | {wall:.2f} | {cpu:.2f} | {k / wall:,.0f} |")
    if args.dir is None:
        for p in files.values():
            p.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
