"""``ticktape walkforward``: walk-forward validation from the shell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ticktape.cli.backtest import _print_top, console, param_help, parse_params
from ticktape.errors import SpecError


def walkforward(
    strategy: Annotated[str, typer.Option(help="strategy (template) name")],
    grid: Annotated[
        list[str], typer.Option("--grid", help="NAME=V1,V2,... or NAME=START:STOP:STEP (repeat)")
    ],
    train: Annotated[
        str, typer.Option(help="in-sample span: a whole number and y, m (months), w, d, h, min or s")
    ],
    test: Annotated[str, typer.Option(help="out-of-sample span, e.g. 6m")],
    step: Annotated[
        str | None, typer.Option(help="how far each window moves on (default: --test; not shorter than it)")
    ] = None,
    anchored: Annotated[
        bool, typer.Option("--anchored", help="every training span starts at the start of the data")
    ] = False,
    select: Annotated[str, typer.Option(help="metric the best set in sample is chosen by")] = "sharpe",
    data: Annotated[Path | None, typer.Option("--data", help="CSV or Parquet of ticks or bars")] = None,
    symbols: Annotated[
        str | None, typer.Option(help="instead of --data: one symbol's ticks from the store (in process)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="ticks, bars or auto")] = "auto",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help=param_help("parameter NAME=VALUE fixed for every set")),
    ] = None,
    cash: Annotated[float | None, typer.Option(help="initial cash")] = None,
    fee_bps: Annotated[float | None, typer.Option(help="taker fee in basis points")] = None,
    tick_size: Annotated[
        float | None, typer.Option(help="price grid of the instrument (default: inferred from the data)")
    ] = None,
    store: Annotated[
        bool, typer.Option("--store/--no-store", help="store the study and its out-of-sample runs")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the windows and the study as JSON")] = False,
    memory_budget: Annotated[str, typer.Option(help="peak memory of each window's sweep, e.g. 3G")] = "3G",
    processes: Annotated[
        int | None, typer.Option(help="worker processes of each window's sweep (default: the CPUs)")
    ] = None,
) -> None:
    """Walk a strategy forward: in each window choose the best parameter set of
    the grid in sample (--train) by --select, run it out of sample (--test),
    stitch the out-of-sample runs into one curve. In process (over the
    pipeline: not yet)."""
    from ticktape.backtest import walkforward as wf
    from ticktape.backtest.run import AUTO, Store
    from ticktape.backtest.sweep import parse_grid

    # (the spans, the metric and the grid are checked before the data is read: walkforward does it first)

    if (data is None) == (symbols is None):
        raise SpecError("walkforward: give --data FILE or --symbols SYMBOL (one of the two)")
    names = [s.strip() for s in (symbols or "").split(",") if s.strip()]
    if symbols is not None and len(names) != 1:
        raise SpecError(f"--symbols {symbols!r}: a walk-forward study takes one symbol")
    engine: dict[str, Any] = {"tick_size": AUTO if tick_size is None else tick_size, "lot_size": AUTO}
    if cash is not None:
        engine["initial_cash"] = cash
    if fee_bps is not None:
        engine["fee_bps"] = fee_bps
    source: Any = data if data is not None else Store(names[0])
    res = wf.walkforward(
        source,
        strategy,
        parse_grid(grid),
        train=train,
        test=test,
        step=step,
        anchored=anchored,
        select=select,
        base=parse_params(param or []),
        format=fmt,
        engine=engine,
        processes=processes,
        memory_budget=memory_budget,
        on_window=_progress(select),
    )
    for k, p, why in res.invalid:
        typer.echo(f"ticktape: skipped parameter set {k} {p}: {why}", err=True)
    if store:
        from ticktape.store import session

        session.run(lambda conn: wf.store_study(conn, res, data.stem if data is not None else names[0]))
    if as_json:
        out = {"study_id": res.study_id, "spec": res.spec, **res.summary()}
        typer.echo(json.dumps(out, indent=2, default=str))
        return
    _print(res, store)


def _progress(select: str) -> Any:
    """A line on stderr as each window is done (stdout stays the result's)."""
    from ticktape.cli.common import err_console
    from ticktape.compute import labels

    def line(r: Any, n: int) -> None:
        chosen = " ".join(f"{k}={v}" for k, v in r.params.items())
        err_console.print(
            f"window {r.window.index} ({r.window.index + 1}/{n}): {chosen} chosen in sample ({labels.label(select)} "
            f"{labels.show(select, r.in_sample.get(select))}), out of sample "
            f"{labels.show(select, r.out_of_sample.metrics.get(select))}",
            highlight=False,
        )

    return line


def _print(res: Any, stored: bool) -> None:
    from ticktape.compute import labels  # (pandas: loaded by the commands that print metrics)

    spec = res.spec
    table = res.table()
    for col in table.columns:  # each metric in its unit (a return as %, a ratio as a ratio)
        key = col.removeprefix("is_").removeprefix("oos_")
        if col != key and key in labels.METRICS:
            table[col] = [labels.show(key, v) for v in table[col]]
    _print_top(
        Table(
            title=f"walk-forward {res.study_id}: {len(res.windows)} windows of {res.strategy}, "
            f"train {spec['train']}, test {spec['test']}, step {spec['step']}"
            f"{' (anchored)' if spec['anchored'] else ''}, best by {spec['select']} in sample, "
            f"{res.seconds:.2f} s"
        ),
        table,
    )
    m = res.metrics
    console.print(
        "stitched out of sample (returns chained): "
        + ", ".join(
            f"{labels.label(k)} {labels.show(k, m.get(k))}"
            for k in ("total_return", "annualized_return", "sharpe", "max_drawdown_pct", "n_trades")
        )
        + f"; walk-forward efficiency {labels.number(res.efficiency)}"
    )
    _print_top(Table(title="parameter stability across windows"), res.stability())
    if stored:
        console.print(
            f"stored as study {res.study_id} with {len(res.windows)} out-of-sample runs; "
            f"SQL: SELECT * FROM runs WHERE study_id = '{res.study_id}';"
        )
