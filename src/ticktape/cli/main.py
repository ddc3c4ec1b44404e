"""The ``ticktape`` command line."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from ticktape.cli import backtest as backtest_cli
from ticktape.cli import montecarlo as montecarlo_cli
from ticktape.cli import report as report_cli
from ticktape.cli import strategy as strategy_cli
from ticktape.cli import walkforward as walkforward_cli
from ticktape.cli.common import console, err_console, settings
from ticktape.cli.data import data_app
from ticktape.cli.lobster import lobster_app
from ticktape.cli.runs import db_app, runs_app
from ticktape.cli.topics import topics_app
from ticktape.model.sources import parse_source

if TYPE_CHECKING:
    from ticktape.model.spec import RunSpec

#: click's exceptions as typer raises them (typer has its own copy of click
#: since 0.2x, click itself before): found from a public one
UsageError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
ClickException: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Tick-level backtesting on a streaming pipeline."
)
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")
app.add_typer(data_app, name="data")
app.add_typer(lobster_app, name="lobster")
app.add_typer(strategy_cli.app, name="strategy")
app.add_typer(topics_app, name="topics")
app.command("backtest")(backtest_cli.backtest)
app.command("sweep")(backtest_cli.sweep)
app.command("walkforward")(walkforward_cli.walkforward)
app.command("report")(report_cli.report)
app.command("montecarlo")(montecarlo_cli.montecarlo)


@app.command()
def demo(
    ticks: Annotated[int, typer.Option(help="ticks per symbol")] = 600_000,
    symbols: Annotated[int, typer.Option(help="number of synthetic symbols")] = 2,
    seed: Annotated[int, typer.Option(help="generator seed")] = 7,
) -> None:
    """Generate synthetic ticks, replay them through the pipeline, print the results."""
    from ticktape.errors import CommandError
    from ticktape.pipeline.demo import DemoOptions, run_demo

    for name, value in (("--ticks", ticks), ("--symbols", symbols)):
        if value < 1:
            raise CommandError(f"{name}: must be >= 1, got {value}")
    names = tuple(f"DEMO-{chr(ord('A') + i)}" if i < 26 else f"DEMO-{i}" for i in range(symbols))
    run_demo(settings(), DemoOptions(ticks_per_symbol=ticks, symbols=names, seed=seed), console)


@app.command()
def run(
    spec_file: Annotated[Path, typer.Argument(help="run spec JSON file")],
    speed: Annotated[
        str | None, typer.Option(help="'max' or a factor K: event time runs K x faster than real time")
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            help="where the ticks come from: store (default), parquet:FILE, generator:N[:SEED],"
            " topic:RUN_ID[:START_OFFSET[:END_OFFSET]] (overrides the spec's source)"
        ),
    ] = None,
) -> None:
    """Run one spec (JSON) through the pipeline (ticks from the store, a Parquet
    file, the generator or a recorded topic)."""
    from ticktape.pipeline.demo import execute, migrate, results_table, sql_hint
    from ticktape.runtime.embedded import Runtime

    spec = read_run_spec(spec_file)
    if speed is not None:
        spec = dataclasses.replace(spec, speed=_parse_speed(speed))
    if source is not None:
        spec = dataclasses.replace(spec, source=parse_source(source))
    cfg = settings()
    with Runtime(cfg) as rt:
        migrate(rt, console)
        result = execute(rt, cfg, spec, console)
    console.print(results_table(result))
    console.print(sql_hint(spec.run_id), soft_wrap=True)


@app.command()
def paper(
    spec_file: Annotated[
        Path, typer.Argument(help="run spec JSON file (strategy, symbols as the feed names them)")
    ],
    url: Annotated[
        str, typer.Option(help="websocket URL of a Binance-format feed (bookTicker/trade streams)")
    ],
    idle_timeout: Annotated[float, typer.Option(help="end the run after this many silent seconds")] = 5.0,
    max_messages: Annotated[int | None, typer.Option(help="stop after this many feed messages")] = None,
) -> None:
    """Paper-trade a spec on a live feed, through the same pipeline."""
    from ticktape.errors import CommandError
    from ticktape.pipeline.demo import migrate, results_table
    from ticktape.pipeline.live import check_feed
    from ticktape.pipeline.live import paper as run_paper
    from ticktape.runtime.embedded import Runtime

    spec = read_run_spec(spec_file)
    if not idle_timeout > 0:
        raise CommandError(f"--idle-timeout: must be > 0 seconds, got {idle_timeout}")
    if max_messages is not None and max_messages < 1:
        raise CommandError(f"--max-messages: must be >= 1, got {max_messages}")
    asyncio.run(check_feed(url))  # a feed that cannot be reached is refused before anything starts
    cfg = settings()
    with Runtime(cfg) as rt:
        migrate(rt, console)
        run, stats = run_paper(rt, cfg.home, spec, url, idle_timeout, max_messages)
    console.print(f"feed messages: {stats.counts}; ticks published: {stats.ticks}")
    console.print(results_table(run))
    m = run["metrics"]
    if "tick_to_decision_p50_ms" in m:
        console.print(
            f"tick-to-decision latency: p50 {m['tick_to_decision_p50_ms']:.1f} ms,"
            f" p99 {m['tick_to_decision_p99_ms']:.1f} ms"
        )


@app.command()
def record(
    run_id: Annotated[str, typer.Argument(help="the live or replayed run whose ticks to record")],
    prefix: Annotated[str, typer.Option(help="store the ticks under PREFIX + symbol")] = "",
    idle_timeout: Annotated[
        float, typer.Option(help="stop after this many seconds without new ticks")
    ] = 10.0,
) -> None:
    """Copy a run's ticks from the ticks topic into the store (the topic keeps them)."""
    from ticktape.errors import CommandError
    from ticktape.model.spec import parse_run_id
    from ticktape.pipeline.demo import migrate
    from ticktape.pipeline.record import record as do_record
    from ticktape.runtime.embedded import Runtime

    parse_run_id(run_id)  # (before anything starts)
    if not idle_timeout > 0:
        raise CommandError(f"--idle-timeout: must be > 0 seconds, got {idle_timeout}")
    with Runtime(settings()) as rt:
        migrate(rt, console)  # (a new store has no runs yet: "no run ID", not a missing table)
        rec = asyncio.run(do_record(rt.kafka_url, rt.database_url, run_id, prefix, idle_timeout))
    for sym, n in sorted(rec.ticks.items()):
        console.print(f"{prefix}{sym}: {n:,} ticks recorded ({rec.stored.get(sym, 0):,} new in the store)")
    console.print(
        ("all streams complete" if rec.complete else "stopped before every stream ended (idle timeout)")
        + (f"; {rec.duplicates} duplicate batches skipped" if rec.duplicates else "")
    )


def read_run_spec(path: Path) -> RunSpec:
    """The run spec in ``path``, checked (its strategy and params too) before
    anything starts; a bad one is a one-line error naming the file and the field."""
    from ticktape.errors import SpecError
    from ticktape.model.spec import RunSpec
    from ticktape.strategy.catalog import check_run

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise FileNotFoundError(f"{path}: cannot read the run spec ({why})") from None
    try:
        return check_run(RunSpec.from_json(text))
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None


def _parse_speed(text: str) -> float | None:
    from ticktape.errors import SpecError

    if text == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        raise SpecError(f"speed: expected 'max' or a number > 0, got {text!r}") from None
    if not value > 0:
        raise SpecError(f"speed: expected 'max' or a number > 0, got {text!r}")
    return value


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Faust log level")] = "warning",
    stages: Annotated[
        str | None,
        typer.Option(
            help="'all' or a comma-separated subset of replay,indicators,strategy,execution,sink"
            " (default: TICKTAPE_STAGES, else all)"
        ),
    ] = None,
) -> None:
    """Run a Faust worker with some or all stages (until Ctrl-C / SIGTERM).

    An external broker or database (TICKTAPE_KAFKA_URL, TICKTAPE_DATABASE_URL)
    that does not answer is waited for, with a log line per attempt."""
    import logging

    from ticktape.config import ENV_STAGES
    from ticktape.errors import SpecError
    from ticktape.pipeline.app import parse_stages
    from ticktape.pipeline.worker import run_worker, wait_for_services
    from ticktape.runtime.embedded import Runtime

    cfg = settings()
    try:  # a bad list is refused before anything starts
        chosen = parse_stages(stages if stages is not None else cfg.stages)
    except SpecError as exc:
        raise SpecError(f"{ENV_STAGES}: {exc}" if stages is None else str(exc)) from None
    # (Faust's own format; the worker replaces this set-up with its own when it starts)
    logging.basicConfig(format="[%(asctime)s] [%(process)s] [%(levelname)s] %(message)s")
    wait_for_services(cfg.kafka_url, cfg.database_url)
    # the embedded services for what is not configured (nothing, in a deployment)
    with Runtime(cfg, kafka=cfg.kafka_url is None, database=cfg.database_url is None) as rt:
        kafka_url = cfg.kafka_url or rt.kafka_url
        database_url = cfg.database_url or rt.database_url
        run_worker(
            kafka_url, database_url, cfg.home / "faust", loglevel=loglevel, stages=chosen, settings=cfg
        )


@app.command()
def dashboard(
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8501,
    address: Annotated[
        str,
        typer.Option(
            help="address to listen on; 0.0.0.0 only inside a container (docker-compose.yml"
            " publishes the port on the host's 127.0.0.1)"
        ),
    ] = "127.0.0.1",
) -> None:
    """Open the app on the stored runs: Runs, Monitor (live and playback), Build, Sweeps, SQL, Data."""

    from ticktape import dashboards
    from ticktape.errors import TicktapeRuntimeError
    from ticktape.pipeline.control import expire_while
    from ticktape.pipeline.demo import migrate
    from ticktape.runtime.embedded import Runtime
    from ticktape.runtime.processes import port_in_use, spawn_child, terminate_process
    from ticktape.store import session

    entry = Path(dashboards.__file__).resolve().parent / "app.py"
    if port_in_use(port):
        raise TicktapeRuntimeError(f"port {port} on 127.0.0.1 is already in use (choose another with --port)")
    with Runtime(settings(), kafka=False) as rt:
        migrate(rt, console)  # (the page's role, ticktape_reader, is made by a migration)
        console.print(f"dashboard on http://127.0.0.1:{port}  (Ctrl-C to stop)")
        env = {**os.environ, **rt.env()}
        cmd = [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(entry),
            "--server.address",
            address,
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ]
        proc = spawn_child(cmd, env=env)  # dies with us, even after kill -9
        try:
            # the page only reads (as ticktape_reader): this command ends the runs whose command died
            session.run(
                lambda conn: expire_while(conn, lambda: proc.poll() is None),
                dsn=rt.database_url,
                migrate=False,
            )
        finally:
            terminate_process(proc, signals=((signal.SIGTERM, 10.0),), name="streamlit")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI; a known error is one line and exit code 1, a
    usage error one line and 2 (docs/architecture.md, "Errors")."""
    from ticktape.errors import KNOWN_ERRORS
    from ticktape.runtime.processes import keep_freed_memory

    keep_freed_memory()  # (before the first batch: workers, imports, backtests)

    def on_sigterm(signum: int, frame: Any) -> None:  # unwind (stopping children) instead of dying mid-way
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = app(args=argv, prog_name="ticktape", standalone_mode=False)  # (an Exit's code is returned)
    except KNOWN_ERRORS as exc:
        _error_line(str(exc))
        return 1
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except typer.Exit as exc:
        return exc.exit_code
    except ClickException as exc:  # usage errors: a line naming the command, click's message, the help
        _error_line(usage_message(exc) if isinstance(exc, UsageError) else exc.format_message())
        return exc.exit_code
    return code if isinstance(code, int) else 0


def _error_line(message: str) -> None:
    err_console.print(Text.assemble(("ticktape: error: ", "red"), message), highlight=False)


def usage_message(exc: Exception) -> str:
    """A usage error (unknown command or option, missing or bad argument) as
    one line: the command, click's message, where the help is.

    The help of a command given no subcommand (``no_args_is_help``) has
    already been printed on stdout when this is called.
    """
    ctx = getattr(exc, "ctx", None)
    command = " ".join(ctx.command_path.split(" ")[1:]) if ctx is not None else ""
    if type(exc).__name__ == "NoArgsIsHelpError":
        what = "give a command (the list is above)"
    else:
        what = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
    return (
        f"{command + ': ' if command else ''}{what} (see: ticktape {command + ' ' if command else ''}--help)"
    )
