"""``ticktape data``: generate, import, inspect and export market data.

A typer sub-app (:data:`data_app`). The commands that touch the store use
TICKTAPE_DATABASE_URL when set, else the embedded PostgreSQL (as the other
commands do), and apply pending migrations first.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from ticktape.cli.common import console
from ticktape.errors import CommandError

if TYPE_CHECKING:
    import numpy as np

# (numpy, pandas and the store are imported by the commands that use them:
# every command, its --help and a bad argument start faster)

data_app = typer.Typer(no_args_is_help=True, help="Market data: generate, import, stats, list, export.")

T = TypeVar("T")
NS = 1_000_000_000


def _time(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise CommandError(
            f"{option}: {text!r} is not a time (use ISO 8601, e.g. 2024-01-02T09:00)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value)


def _iso(ns: int | None) -> str:
    if ns is None:
        return ""
    import pandas as pd

    return pd.Timestamp(ns, tz="UTC").isoformat().replace("+00:00", "Z")


def _parse_map(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise CommandError(f"--map wants field=column pairs separated by commas, got {part!r}")
        out[key.strip()] = value.strip()
    return out


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


# --------------------------------------------------------------------------
# import


@data_app.command("import")
def import_(
    files: Annotated[
        list[Path],
        typer.Argument(
            help="files to import (.gz is read transparently); several are imported in turn as one import",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="csv, dukascopy, truefx, tardis, binance-ws, bars, parquet")
    ] = "csv",
    symbol: Annotated[
        str | None, typer.Option(help="symbol when the file has none (default: from each file's name)")
    ] = None,
    map_: Annotated[
        str | None,
        typer.Option(
            "--map", help="csv: field=column,... (fields: ts symbol bid ask bid_size ask_size last last_size)"
        ),
    ] = None,
    time_format: Annotated[
        str,
        typer.Option(
            help="csv: auto (ISO 8601 or numbers since the epoch, the unit told by the first one's magnitude),"
            " iso, s, ms, us, ns or a strftime pattern"
        ),
    ] = "auto",
    bar_seconds: Annotated[float | None, typer.Option(help="bars: bar length (default: inferred)")] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="all or nothing: one transaction, nothing stored if any row is bad (the first named: file:line)"
        ),
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option(help="rejected rows CSV, one file only (default: FILE.rejects.csv here for each FILE)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="validate only, store nothing")] = False,
) -> None:
    """Import market data files into the store (streaming, re-import stores no duplicates).

    Several files (monthly or daily files of a feed) share one writer: a
    month that runs on from one file into the next is loaded in bulk once,
    and the key of a finished month is built while the next file loads.
    """
    from ticktape.data.importers import Importer, combined_report, import_to_store
    from ticktape.errors import ImportFailed
    from ticktape.store import session

    if rejects is not None and len(files) > 1:
        raise CommandError(f"--rejects names one file; with {len(files)} files each gets FILE.rejects.csv")
    mapping = _parse_map(map_)
    for file in files:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
    sizes = [file.stat().st_size for file in files]
    what = str(files[0]) if len(files) == 1 else f"{len(files)} files"
    with _progress() as progress:
        task = progress.add_task(f"import {files[0].name}", total=sum(sizes))

        def on_progress(k: int) -> Callable[[int], None]:
            def show(done: int) -> None:
                progress.update(task, completed=sum(sizes[:k]) + done, description=f"import {files[k].name}")

            return show

        try:
            importers = [
                Importer(
                    file,
                    fmt,
                    symbol=symbol,
                    mapping=mapping,
                    time_format=time_format,
                    bar_seconds=bar_seconds,
                    strict=strict,
                    rejects_path=rejects or Path(file.name + ".rejects.csv"),
                    on_progress=on_progress(k),
                )
                for k, file in enumerate(files)
            ]
            if dry_run:
                for imp in importers:
                    imp.run()
                report = combined_report(importers)
            else:

                async def go(conn: Any, other: Any = None) -> Any:
                    return await import_to_store(conn, importers, second=other)

                # (strict: one transaction, on one connection)
                report = session.run(go, what=f"import {what}", second=not strict)
        except ImportFailed as exc:
            raise CommandError(str(exc)) from None
        progress.update(task, completed=sum(sizes))
    table = Table(title=f"import {files[0].name if len(files) == 1 else what} ({fmt})")
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("rows read", f"{report.rows:,}")
    table.add_row("accepted", f"{report.accepted:,}")
    if not dry_run:
        table.add_row("stored (new)", f"{report.stored:,}")
    if report.book_events:
        table.add_row("book events", f"{report.book_events:,}")
        if not dry_run:
            table.add_row("book events stored (new)", f"{report.book_stored:,}")
    table.add_row("rejected", f"{report.rejected:,}")
    for reason, count in sorted(report.rejects.items()):
        table.add_row(f"  {reason}", f"{count:,}")
    console.print(table)
    for sym, n in sorted(report.symbols.items()):
        console.print(f"{sym}: {n:,} ticks {_iso(report.first_ns)} .. {_iso(report.last_ns)}")
    for imp in importers:
        if imp.report.rejected:
            console.print(
                f"{imp.report.rejected:,} rejected rows of {imp.path.name} with their line numbers: "
                f"{imp.report.rejects_path}"
            )
    if not dry_run and report.accepted and not report.bars_refreshed:
        console.print(
            "bars: views over ticks (plain PostgreSQL), or left to the TimescaleDB refresh policies"
        )


# --------------------------------------------------------------------------
# generate


def _check_generate(
    symbol: str,
    ticks: int,
    model: str,
    price: float,
    vol: float,
    rate: float,
    tick_size: float,
    bar_seconds: float,
    ticks_per_bar: float,
    depth: int,
    out: Path | None,
) -> None:
    """Refuse bad ``data generate`` arguments, naming the option."""
    checks = (
        (bool(symbol.strip()), "--symbol", symbol, "must not be empty"),
        (ticks >= 1, "--ticks", ticks, "must be >= 1"),
        (model in ("gbm", "regimes"), "--model", model, "must be gbm or regimes"),
        (price > 0 and math.isfinite(price), "--price", price, "must be > 0"),
        (vol > 0 and math.isfinite(vol), "--vol", vol, "must be > 0"),
        (rate > 0 and math.isfinite(rate), "--rate", rate, "must be > 0"),
        (tick_size > 0 and math.isfinite(tick_size), "--tick-size", tick_size, "must be > 0"),
        (bar_seconds >= 1e-6 and math.isfinite(bar_seconds), "--bar-seconds", bar_seconds, "must be >= 1e-6"),
        (
            ticks_per_bar >= 0 and math.isfinite(ticks_per_bar),
            "--ticks-per-bar",
            ticks_per_bar,
            "must be >= 0",
        ),
        (depth >= 0, "--depth", depth, "must be >= 0"),
        (not (depth and out is not None), "--depth", depth, "is stored in the database only (drop --out)"),
    )
    for ok, option, value, why in checks:
        if not ok:
            raise CommandError(f"{option} {value!r}: {why}")
    if out is not None and out.suffix not in (".parquet", ".csv"):
        raise CommandError(f"--out {out}: must end in .parquet or .csv")
    if out is not None and not out.parent.is_dir():
        raise CommandError(f"--out {out}: no folder {out.parent}")


@data_app.command()
def generate(
    symbol: Annotated[str, typer.Option(help="symbol of the generated ticks")] = "SYN",
    ticks: Annotated[int, typer.Option(help="number of ticks (parametric models)")] = 1_000_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same output)")] = 7,
    model: Annotated[str, typer.Option(help="gbm or regimes (calm/news volatility)")] = "gbm",
    price: Annotated[float, typer.Option(help="start price")] = 100.0,
    vol: Annotated[float, typer.Option(help="annualised volatility")] = 0.2,
    rate: Annotated[float, typer.Option(help="ticks per second")] = 20.0,
    tick_size: Annotated[float, typer.Option(help="price grid")] = 0.01,
    from_bars: Annotated[Path | None, typer.Option(help="OHLC[V] bars CSV to fill with ticks")] = None,
    bar_seconds: Annotated[float, typer.Option(help="with --from-bars: bar length")] = 60.0,
    ticks_per_bar: Annotated[float, typer.Option(help="with --from-bars: mean ticks per bar")] = 50.0,
    depth: Annotated[
        int, typer.Option(help="also store L2 depth diffs with this many levels (store only)")
    ] = 0,
    out: Annotated[Path | None, typer.Option(help=".parquet or .csv file; default: into the store")] = None,
) -> None:
    """Generate synthetic ticks (deterministic per seed, streaming)."""
    from ticktape.data import synth
    from ticktape.store import session

    _check_generate(symbol, ticks, model, price, vol, rate, tick_size, bar_seconds, ticks_per_bar, depth, out)
    if from_bars is not None:
        if not from_bars.is_file():
            raise CommandError(f"{from_bars}: no such file")
        cfg_b = synth.BarSynthConfig(
            symbol=symbol, seed=seed, bar_ns=int(bar_seconds * NS), ticks_per_bar=ticks_per_bar
        )
        bars = synth.read_bars(from_bars)
        first = next(bars, None)  # (a file that is no bars is refused before anything is written)
        if first is None:
            raise CommandError(f"{from_bars}: no bars (after the header)")

        def stream() -> Iterator[np.ndarray]:
            return synth.from_bars(itertools.chain([first], bars), cfg_b, chunk=100_000)
    else:
        cfg = synth.ProcessConfig(
            symbol=symbol, n_ticks=ticks, seed=seed, price0=price, vol=vol, rate_per_s=rate,
            tick_size=tick_size, regimes=model == "regimes",
        )  # fmt: skip

        def stream() -> Iterator[np.ndarray]:
            return synth.generate_process(cfg, chunk=100_000)

    total = 0
    if out is not None:
        if out.suffix == ".parquet":
            from ticktape.data.readers import write_parquet

            total = write_parquet(out, ((symbol, c) for c in stream()))
        else:
            import pandas as pd

            with open(out, "w") as f:
                for i, c in enumerate(stream()):
                    frame = pd.DataFrame(c)
                    frame.insert(0, "symbol", symbol)
                    frame.to_csv(f, header=i == 0, index=False)
                    total += len(c)
        console.print(f"wrote {total:,} ticks of {symbol} to {out}")
        return

    from ticktape import store
    from ticktape.data.importers import SeqCounter

    async def go(conn: Any, other: Any) -> tuple[int, int]:
        n = stored = 0
        book_seq = 0
        seq = SeqCounter()
        if not depth:  # ticks only: months not stored yet are loaded in bulk
            async with store.TickWriter(conn, second=other) as writer:
                for c in stream():
                    await writer.write(symbol, c, seq=seq(c["ts"]))
                    n += len(c)
            return n, writer.stored
        for c in stream():
            stored += await store.write_ticks(conn, symbol, c, seq=seq(c["ts"]))
            ev = synth.depth_diffs(c, levels=depth, tick_size=tick_size, seed=seed + n)
            await store.write_book_events(conn, symbol, ev, book_seq)
            book_seq += len(ev)
            n += len(c)
        return n, stored

    n, stored = session.run(go, second=True)
    console.print(f"generated {n:,} ticks of {symbol}; {stored:,} new in the store")


# --------------------------------------------------------------------------
# stats / list / export


@data_app.command()
def stats(
    symbol: Annotated[str | None, typer.Option(help="stored symbol")] = None,
    file: Annotated[Path | None, typer.Option(help="Parquet file instead of the store")] = None,
    start: Annotated[str | None, typer.Option(help="from this time (ISO, UTC)")] = None,
    end: Annotated[str | None, typer.Option(help="before this time (ISO, UTC)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Tick rate, spread, return distribution and volatility by hour of one symbol."""
    from ticktape.data.stats import TickStats
    from ticktape.store import session

    if symbol is None and file is None:
        raise CommandError("data stats: give --symbol (stored ticks) or --file (Parquet)")
    lo, hi = _time(start, "--start"), _time(end, "--end")
    acc = TickStats()
    if file is not None:
        from ticktape.data.readers import read_parquet

        for _, batch in read_parquet(file, symbols=[symbol] if symbol else None, start_ns=lo, end_ns=hi):
            acc.update(batch)
    else:
        from ticktape import store

        async def go(conn: Any) -> None:
            async for batch in store.read_ticks(conn, symbol, lo, hi, batch_size=200_000):  # type: ignore[arg-type]
                acc.update(batch)

        session.run(go)
    summary = acc.summary()
    if as_json:
        console.print_json(json.dumps(summary))
        return
    if not summary["ticks"]:
        console.print("no ticks")
        return
    table = Table(title=f"stats {symbol or file}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row(
        "ticks", f"{summary['ticks']:,} ({summary['quotes']:,} quotes, {summary['trades']:,} trades)"
    )
    table.add_row("from .. to", f"{_iso(summary['first_ns'])} .. {_iso(summary['last_ns'])}")
    table.add_row("tick rate", f"{summary['ticks_per_s']:.3f}/s")
    if "spread" in summary:
        sp = summary["spread"]
        table.add_row("spread mean / median", f"{sp['mean']:.6g} / {sp['p50']:.6g} ({sp['mean_bps']:.2f} bp)")
    if "returns" in summary:
        r = summary["returns"]
        table.add_row("log return std", f"{r['std']:.3e}")
        table.add_row("skew / excess kurtosis", f"{r['skew']:.2f} / {r['excess_kurtosis']:.2f}")
        table.add_row("p1 / p50 / p99", f"{r['p1']:.2e} / {r['p50']:.2e} / {r['p99']:.2e}")
    console.print(table)
    if "by_hour" in summary:
        hours = Table(title="by hour (UTC)")
        for col in ("hour", "ticks", "realised vol"):
            hours.add_column(col, justify="right")
        for row in summary["by_hour"]:
            hours.add_row(f"{row['hour']:02d}", f"{row['ticks']:,}", f"{row['realized_vol']:.3e}")
        console.print(hours)


@data_app.command("list")
def list_(
    gap_seconds: Annotated[float, typer.Option(help="report gaps longer than this")] = 3600.0,
) -> None:
    """Stored symbols: time range, tick count and gaps."""
    from ticktape import store
    from ticktape.store import session

    if not (gap_seconds > 0 and math.isfinite(gap_seconds)):
        raise CommandError(f"--gap-seconds {gap_seconds!r}: must be > 0")

    async def go(conn: Any) -> list[dict]:
        return await store.tick_catalogue(conn, gap_ns=int(gap_seconds * NS))

    rows = session.run(go)
    table = Table(title="stored ticks")
    for col in ("symbol", "first", "last", "ticks", f"gaps > {gap_seconds:g}s", "longest gap"):
        table.add_column(col)
    for r in rows:
        longest = ""
        if r["gaps"]:
            a, b = r["gaps"][0] if len(r["gaps"]) == 1 else max(r["gaps"], key=lambda g: g[1] - g[0])
            longest = f"{(b - a) / NS:,.0f}s from {_iso(a)}"
        table.add_row(
            r["symbol"],
            _iso(r["first_ns"]),
            _iso(r["last_ns"]),
            f"{r['ticks']:,}",
            f"{r['n_gaps']:,}",
            longest,
        )
    console.print(table)


@data_app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Parquet file to write")],
    symbol: Annotated[list[str] | None, typer.Option(help="symbol (repeat for several; default all)")] = None,
    start: Annotated[str | None, typer.Option(help="from this time (ISO, UTC)")] = None,
    end: Annotated[str | None, typer.Option(help="before this time (ISO, UTC)")] = None,
) -> None:
    """Export stored ticks (any symbols / time range) to Parquet."""
    from ticktape.data.readers import export_parquet
    from ticktape.store import session

    lo, hi = _time(start, "--start"), _time(end, "--end")
    if not out.parent.is_dir():
        raise CommandError(f"{out}: no folder {out.parent}")

    async def go(conn: Any, other: Any) -> int:
        return await export_parquet(conn, out, symbol or None, start_ns=lo, end_ns=hi, second=other)

    n = session.run(go, second=True)
    console.print(f"wrote {n:,} ticks to {out}")
