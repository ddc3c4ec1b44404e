"""``ticktape backtest``: the in-process backtest from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from ticktape.errors import SpecError
from ticktape.strategy import catalog

if TYPE_CHECKING:
    import pandas as pd

console = Console()


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``["fast=10", "ma=ema"]`` → ``{"fast": "10", "ma": "ema"}``.

    The values stay strings: the strategy's config reads each as its declared
    type (:func:`ticktape.strategy.params.load`), so ``--param`` and a spec
    file are checked alike. A name given twice is an error (the last would
    silently win).
    """
    out: dict[str, Any] = {}
    for p in pairs:
        key, sep, value = p.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SpecError(f"--param {p!r}: expected NAME=VALUE")
        if key in out:
            raise SpecError(f"--param {p!r}: {key} is given twice")
        out[key] = value.strip()
    return out


def param_help(lead: str) -> str:
    """The ``--param`` help: ``lead``, then each template's own parameters (from their declarations)."""
    names: dict[tuple[str, ...], list[str]] = {}
    for name in catalog.TEMPLATES:
        names.setdefault(tuple(catalog.own_params(name)), []).append(name)
    own = "; ".join(f"{'/'.join(n)}: {', '.join(keys)}" for keys, n in names.items())
    return (
        f"{lead} (repeat). Templates: {own}; every template: {', '.join(catalog.COMMON)}. "
        "Types, defaults and bounds: ticktape strategy params NAME"
    )


def metrics_table(result: Any) -> Table:
    """The run's metrics under their human labels, in their units (ticktape.compute.labels)."""
    from ticktape.compute import labels  # (pandas: loaded by the commands that print metrics)

    t = Table(title=f"{result.strategy} ({result.mode})", caption=labels.annualization_note(result.metrics))
    t.add_column("metric")
    t.add_column("value", justify="right")
    for name, value in labels.report({"final_equity": result.final_equity, **result.metrics}):
        t.add_row(name, value)
    return t


def backtest(
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file of ticks or OHLC(V) bars")],
    fmt: Annotated[
        str, typer.Option("--format", help="ticks, bars, auto or binance-ws (a websocket capture with depth)")
    ] = "auto",
    depth: Annotated[
        Path | None,
        typer.Option(help="CSV or Parquet of L2 level updates (ts, side, price, qty): fills walk the depth"),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(help="strategy (template) name; its parameters: ticktape strategy params NAME"),
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", help=param_help("strategy parameter NAME=VALUE"))
    ] = None,
    spec: Annotated[
        Path | None, typer.Option(help="a strategy spec JSON (e.g. from `ticktape strategy from-text`)")
    ] = None,
    cash: Annotated[float | None, typer.Option(help="initial cash")] = None,
    fee_bps: Annotated[float | None, typer.Option(help="taker fee in basis points of the notional")] = None,
    latency_ms: Annotated[float | None, typer.Option(help="order entry latency in milliseconds")] = None,
    depth_refill_ms: Annotated[
        float | None,
        typer.Option(
            help="with depth: liquidity the strategy took shows again this long after its last take"
        ),
    ] = None,
    tick_size: Annotated[float | None, typer.Option(help="price grid of the instrument")] = None,
    lot_size: Annotated[float | None, typer.Option(help="size grid of the instrument")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print metrics, trades and fills as JSON")] = False,
) -> None:
    """Backtest a strategy on a file in this process (no broker, no database)."""
    from ticktape.backtest.run import AUTO
    from ticktape.backtest.run import backtest as run
    from ticktape.errors import SpecError

    params = parse_params(param or [])
    engine: dict[str, Any] = {}
    if spec is not None:
        d = catalog.read_spec(spec)
        if strategy is not None and strategy != d["strategy"]:
            raise SpecError(f"--strategy {strategy!r} contradicts the spec's strategy {d['strategy']!r}")
        strategy = d["strategy"]
        params = {**(d.get("params") or {}), **params}
        engine = dict(d.get("engine") or {})
    if strategy is None:
        raise SpecError("strategy: give --strategy NAME or --spec FILE")
    for key, value in (
        ("initial_cash", cash),
        ("fee_bps", fee_bps),
        ("tick_size", tick_size),
        ("lot_size", lot_size),
    ):
        if value is not None:
            engine[key] = value
    if latency_ms is not None:
        engine["latency_ns"] = round(latency_ms * 1e6)
    if depth_refill_ms is not None:
        engine["depth_refill_ns"] = round(depth_refill_ms * 1e6)
    inferred = [key for key in ("tick_size", "lot_size") if key not in engine]
    for key in inferred:  # the finest increments of the data's prices / sizes
        engine[key] = AUTO
    result = run(data, strategy, params, format=fmt, engine=engine, depth=depth)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    if inferred:
        used = ", ".join(
            f"{key.replace('_', ' ')} {float(getattr(result.engine, key)):.9f}".rstrip("0").rstrip(".")
            for key in inferred
        )
        flags = " / ".join(f"--{key.replace('_', '-')}" for key in inferred)
        console.print(f"{used}: inferred from the data (its finest increments; {flags} to set)")
    console.print(metrics_table(result))
    n = len(result.trades)
    console.print(
        f"{len(result.fills):,} fills, {n:,} trades, {result.accepted:,} ticks/bars used"
        + (f", rejected: {result.rejects}" if any(result.rejects.values()) else "")
        + (
            f", refused by the importer: {result.extra['import_rejects']}"
            if result.extra.get("import_rejects")
            else ""
        )
        + "".join(
            f", {k.replace('_', ' ')}: {v:,}" for k, v in result.extra.get("engine_counts", {}).items() if v
        )
    )


def sweep(
    strategy: Annotated[str, typer.Option(help="strategy (template) name")],
    grid: Annotated[
        list[str], typer.Option("--grid", help="NAME=V1,V2,... or NAME=START:STOP:STEP (repeat)")
    ],
    data: Annotated[
        Path | None, typer.Option("--data", help="in process: CSV or Parquet of ticks or bars")
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="over the pipeline: comma-separated symbols (ticks from --source)")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(help="pipeline source: store (default), parquet:FILE, generator:N[:SEED], topic:RUN"),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="ticks, bars or auto")] = "auto",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help=param_help("parameter NAME=VALUE fixed for every set")),
    ] = None,
    sample_n: Annotated[
        int | None, typer.Option("--sample", help="evaluate N random sets of the grid")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of --sample")] = 0,
    top: Annotated[int, typer.Option(help="rows of the result table")] = 10,
    sort: Annotated[str, typer.Option(help="column to rank by")] = "sharpe",
    cash: Annotated[float | None, typer.Option(help="initial cash")] = None,
    fee_bps: Annotated[float | None, typer.Option(help="taker fee in basis points")] = None,
    tick_size: Annotated[float | None, typer.Option(help="price grid of the instrument")] = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="store one run per parameter set")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole table as JSON")] = False,
    keep_top: Annotated[
        int, typer.Option(help="re-run the best N sets (by --sort) in full detail, stored with their rows")
    ] = 0,
    memory_budget: Annotated[
        str, typer.Option(help="in process: peak memory of the sweep, e.g. 3G (data included)")
    ] = "3G",
    processes: Annotated[
        int | None, typer.Option(help="in process: worker processes (default: the CPUs)")
    ] = None,
    groups: Annotated[
        int | None,
        typer.Option(help="over the pipeline: groups of sets, spread over the workers (default: 4)"),
    ] = None,
) -> None:
    """Backtest every parameter set of a grid: in process over --data within
    a memory budget, or over the streaming pipeline (--symbols), one run per
    set, the data replayed once and the sets evaluated in --groups groups
    over the workers; each set's metrics, --keep-top N re-run in full."""
    from ticktape.backtest import sweep as sw
    from ticktape.errors import SpecError

    if (data is None) == (symbols is None):
        raise SpecError("sweep: give --data FILE (in process) or --symbols A,B (over the pipeline)")
    if top < 1:
        raise SpecError(f"--top: must be >= 1, got {top}")
    if keep_top < 0:
        raise SpecError(f"--keep-top: must be >= 0, got {keep_top}")
    if groups is not None and (groups < 1 or symbols is None):
        raise SpecError(
            f"--groups {groups}: " + ("must be >= 1" if groups < 1 else "over the pipeline only (--symbols)")
        )
    space = sw.parse_grid(grid)
    sets = sw.grid(space) if sample_n is None else sw.sample(space, sample_n, seed)
    engine: dict[str, Any] = (
        {"tick_size": 1e-6 if data is not None else 0.01} if tick_size is None else {"tick_size": tick_size}
    )
    if cash is not None:
        engine["initial_cash"] = cash
    if fee_bps is not None:
        engine["fee_bps"] = fee_bps
    if symbols is not None:
        _sweep_pipeline(
            strategy,
            symbols,
            source,
            parse_params(param or []),
            engine,
            sets,
            top,
            sort,
            as_json,
            groups,
            keep_top,
        )
        return
    res = sw.sweep(
        data,
        strategy,
        sets,
        parse_params(param or []),
        format=fmt,
        engine=engine,
        processes=processes,
        memory_budget=memory_budget,
        keep_top=keep_top,
        sort=sort,
    )
    for k, p, why in res.invalid:
        typer.echo(f"ticktape: skipped parameter set {k} {p}: {why}", err=True)
    if store:
        from ticktape.store import session

        session.run(lambda conn: sw.store_sweep(conn, res, str(data)))
    if as_json:
        typer.echo(res.table().to_json(orient="records", indent=2))
        return
    t = Table(
        title=f"sweep {res.sweep_id}: {len(res.sets)} parameter sets of {strategy} in {res.seconds:.2f} s "
        f"({res.seconds / len(res.sets) * 1e3:.1f} ms per set)"
    )
    _print_top(t, res.top(top, sort))
    if store:
        console.print(
            f"stored as {len(res.sets)} runs ({len(res.detail)} in full detail); "
            f"SQL: SELECT * FROM runs WHERE sweep_id = '{res.sweep_id}';"
        )


def _print_top(t: Table, best: pd.DataFrame) -> None:
    from ticktape.compute import labels  # (pandas: loaded by the commands that print metrics)

    for col in best.columns:  # headers whole: a column is never narrower than its name
        t.add_column(str(col), justify="right", min_width=len(str(col)), no_wrap=True)
    for _, row in best.iterrows():
        t.add_row(*(labels.show(str(k), v) for k, v in row.items()))
    whole = Measurement.get(console, console.options.update_width(10_000), t).maximum
    Console(width=max(console.width, whole)).print(t)


def _sweep_pipeline(
    strategy: str,
    symbols: str,
    source: str | None,
    params: dict[str, Any],
    engine: dict[str, Any],
    sets: list[dict[str, Any]],
    top: int,
    sort: str,
    as_json: bool,
    groups: int | None = None,
    keep_top: int = 0,
) -> None:
    import pandas as pd

    from ticktape.cli.common import settings as _settings
    from ticktape.errors import SpecError
    from ticktape.model.sources import parse_source
    from ticktape.model.spec import EngineConfig, RunSpec
    from ticktape.pipeline import sweep as pipeline_sweep
    from ticktape.pipeline.demo import migrate
    from ticktape.runtime.embedded import Runtime
    from ticktape.strategy.catalog import check_run

    base = check_run(
        RunSpec(
            strategy=strategy,
            symbols=tuple(s.strip() for s in symbols.split(",") if s.strip()),
            params=params,
            engine=EngineConfig(**engine),
            source=parse_source(source or "store"),
        )
    )
    columns = ["status", "sharpe", "final_pnl", "max_drawdown_pct", "fills", "ticks/s"]
    if sort not in [*sets[0], *columns]:  # (checked before anything starts)
        raise SpecError(f"--sort {sort!r}: not a column ({', '.join([*sets[0], *columns])})")

    def table_of(runs: list[dict[str, Any]]) -> pd.DataFrame:
        rows = []
        for p, r in zip(sets, runs, strict=True):
            m = r["metrics"]
            wall = r["wall_seconds"]
            rows.append(
                {
                    **p,
                    "status": r["status"],
                    **{k: m.get(k) for k in ("sharpe", "final_pnl", "max_drawdown_pct")},
                    "fills": r["fills"],
                    "ticks/s": (r["ticks_processed"] or 0) / wall if wall else None,
                }
            )
        return pd.DataFrame(rows)

    def best(table: pd.DataFrame, n: int) -> pd.DataFrame:
        return table.sort_values(sort, ascending=False, na_position="last", kind="stable").head(n)

    settings = _settings()
    with Runtime(settings) as rt:
        migrate(rt, console)
        sweep_id, runs = pipeline_sweep.sweep_pipeline(
            rt,
            settings,
            base,
            sets,
            console,
            groups=groups,
            keep=lambda runs: [int(i) for i in best(table_of(runs), keep_top).index] if keep_top else [],
        )
    table = table_of(runs)
    if as_json:
        typer.echo(table.to_json(orient="records", indent=2))
        return
    _print_top(Table(title=f"pipeline sweep {sweep_id}: {len(sets)} runs of {strategy}"), best(table, top))
    if keep_top:
        console.print(f"the best {min(keep_top, len(sets))} by {sort} stored in full detail")
    console.print(f"SQL: SELECT * FROM runs WHERE sweep_id = '{sweep_id}';")
