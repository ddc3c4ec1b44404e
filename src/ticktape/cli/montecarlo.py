"""``ticktape montecarlo RUN_ID``: how lucky was a stored run (ticktape.backtest.montecarlo)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from ticktape.cli.common import console

_METHOD_HELP = (
    "trades: resample the closed trades' PnL; returns: i.i.d. bootstrap of the returns on the run's"
    " return grid; blocks: stationary block bootstrap of those returns; paths: rerun the strategy on"
    " synthetic ticks calibrated to the run's data"
)


def montecarlo(
    run_id: Annotated[str, typer.Argument(help="the stored (complete) run to stress")],
    method: Annotated[str, typer.Option(help=_METHOD_HELP)] = "trades",
    n: Annotated[int, typer.Option("--n", help="number of draws")] = 1000,
    seed: Annotated[int, typer.Option(help="seed: the same seed gives the same study")] = 0,
    block_length: Annotated[
        float | None,
        typer.Option(help="blocks: mean block length in returns (default: Politis-White, from the data)"),
    ] = None,
    replace: Annotated[
        bool | None,
        typer.Option(
            "--replace/--no-replace", help="trades, returns: draw with replacement (default) or reorder"
        ),
    ] = None,
    processes: Annotated[
        int | None,
        typer.Option(help="worker processes (default: the CPUs where the work is large enough)"),
    ] = None,
    drawdown_threshold: Annotated[
        float, typer.Option(help="the drawdown (a fraction of the peak) whose probability is reported")
    ] = 0.2,
    store: Annotated[bool, typer.Option("--store/--no-store", help="store the study with the run")] = True,
) -> None:
    """Monte Carlo study of a stored run: distributions of final equity, max
    drawdown, Sharpe and longest drawdown over N resampled or synthetic
    histories, the probability of a loss and of a deep drawdown, and a
    percentile fan of equity paths (docs/montecarlo.md)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ticktape.backtest import montecarlo as mc
    from ticktape.model.spec import parse_run_id

    parse_run_id(run_id)  # (a bad id or option is refused before the store starts)
    mc.check_options(method, n, seed, block_length, replace, processes, drawdown_threshold)
    with Progress(
        TextColumn(f"{method} draws"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("draws", total=n)
        res = mc.montecarlo(
            run_id,
            method,
            n,
            seed,
            block_length=block_length,
            replace=True if replace is None else replace,
            processes=processes,
            drawdown_threshold=drawdown_threshold,
            progress=lambda k: bar.advance(task, k),
            save=store,
        )
    console.print(study_table(res.summary, title=_title(res)))
    s = res.summary
    console.print(
        f"P(loss) = {s['p_loss']:.1%}; P(max drawdown > {s['drawdown_threshold']:.0%}) ="
        f" {s['p_drawdown_beyond']:.1%}  ({res.seconds:.2f} s)"
    )
    if store:
        console.print(
            f"stored as study {res.study_id}; SQL: SELECT * FROM montecarlo_studies WHERE run_id = '{res.run_id}';",
            soft_wrap=True,
        )


def _title(res: Any) -> str:
    what = f"{res.method}, {res.n:,} draws, seed {res.seed}"
    if res.block_length is not None:
        auto = " (Politis-White)" if res.params.get("block_length_auto") else ""
        what += f", mean block {res.block_length:.1f} returns{auto}"
    return f"Monte Carlo of run {res.run_id} ({what})"


#: Column headers of the statistics and how each is shown.
_COLUMNS = {
    "final_equity": ("final equity", lambda v: f"{v:,.2f}"),
    "max_drawdown_pct": ("max DD %", lambda v: f"{v * 100:.2f}"),
    "sharpe": ("Sharpe", lambda v: f"{v:.4g}"),
    "longest_drawdown_ns": ("longest DD (d)", lambda v: f"{v / 86_400e9:.2f}"),
}


def study_table(summary: dict[str, Any], title: str) -> Table:
    """Each statistic's percentiles and mean over the draws, and the run's own
    value: a row per percentile, a column per statistic (it reads whole in 80
    columns)."""
    t = Table(title=title)
    t.add_column("")
    for header, _ in _COLUMNS.values():
        t.add_column(header, justify="right", no_wrap=True)
    for row in ("p5", "p25", "p50", "p75", "p95", "mean", "run"):
        cells = []
        for name, (_, show) in _COLUMNS.items():
            value = summary["original"].get(name) if row == "run" else summary["stats"][name].get(row)
            cells.append("-" if value is None else show(value))
        t.add_row(row, *cells, end_section=row == "mean")
    return t
