"""``ticktape lobster``: LOBSTER data tools (a typer sub-app, :data:`lobster_app`).

``verify MESSAGE_CSV ORDERBOOK_CSV`` replays a LOBSTER message file through
the native L3 order book and compares the top levels with the orderbook
file after every message (see :mod:`ticktape.data.lobster`). Exit status 0
when nothing mismatched; on mismatches or bad input 1, with one line
``ticktape: error: ...`` on stderr (the report is printed first).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ticktape.cli.common import console
from ticktape.errors import CommandError

lobster_app = typer.Typer(no_args_is_help=True, help="LOBSTER message/orderbook files.")


@lobster_app.callback()
def _main() -> None:
    """LOBSTER message/orderbook files."""


@lobster_app.command()
def verify(
    message_csv: Annotated[Path, typer.Argument(help="LOBSTER message file")],
    orderbook_csv: Annotated[
        Path, typer.Argument(help="LOBSTER orderbook file (row i = book after message i)")
    ],
    levels: Annotated[
        int | None,
        typer.Option("--levels", help="top levels to compare (default: all of the orderbook file)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the report as one JSON object")] = False,
    show: Annotated[int, typer.Option("--show", help="how many first mismatches to print")] = 10,
) -> None:
    """Replay MESSAGE_CSV through the native L3 book and check every row of ORDERBOOK_CSV."""
    import pandas  # noqa: F401  (imported before the clock starts)

    from ticktape.data.lobster import verify as run_verify
    from ticktape.errors import LobsterFormatError

    for path in (message_csv, orderbook_csv):
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
    t0 = time.perf_counter()
    try:
        report = run_verify(message_csv, orderbook_csv, levels=levels, max_mismatches=max(show, 0))
    except (OSError, ValueError) as exc:  # (LobsterFormatError is one: it says file:line)
        if isinstance(exc, LobsterFormatError):
            raise
        if isinstance(exc, OSError) and exc.strerror:
            raise CommandError(f"{exc.filename}: {exc.strerror.lower()}") from None
        raise CommandError(str(exc)) from None
    elapsed = time.perf_counter() - t0
    if as_json:
        d = report.to_dict()
        d["seconds"] = round(elapsed, 3)
        typer.echo(json.dumps(d))
    else:
        console.print(f"{message_csv.name} against {orderbook_csv.name}", highlight=False)
        table = Table(title="LOBSTER verify", show_header=True)
        table.add_column("rows")
        table.add_column("count", justify="right")
        for name, value in (
            ("messages", report.messages),
            ("seeded (row 0)", report.seeded),
            ("exact", report.exact),
            ("unverifiable", report.unverifiable),
            ("mismatched", report.mismatched),
        ):
            table.add_row(name, f"{value:,}")
        console.print(table)
        console.print(
            f"levels compared: {report.levels} of {report.file_levels}; "
            f"{report.messages / max(elapsed, 1e-9):,.0f} messages/s",
            highlight=False,
        )
        if report.first_mismatches:
            mt = Table(title="first mismatches")
            for col in ("message", "line", "side", "level", "expected (price, size)", "got (price, size)"):
                mt.add_column(col)
            for m in report.first_mismatches:
                mt.add_row(str(m.index), str(m.index + 1), m.side, str(m.level), str(m.expected), str(m.got))
            console.print(mt)
    if not report.ok:
        first = (
            f" (the first at line {report.first_mismatches[0].index + 1})" if report.first_mismatches else ""
        )
        raise CommandError(
            f"{orderbook_csv}: {report.mismatched:,} of {report.messages:,} rows mismatch the book"
            f" replayed from {message_csv.name}{first}"
        )
