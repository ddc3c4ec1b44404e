"""``ticktape report ID -o report.html``: a stored run's or sweep's report, one self-contained HTML file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ticktape.cli.common import console
from ticktape.errors import CommandError

# (the store, pandas and plotly are imported by the command: a bad argument is refused at once)


def check_output(path: Path) -> Path:
    """``path`` if a report can be written there; CommandError naming it otherwise."""
    folder = path.parent
    if path.is_dir():
        raise CommandError(f"-o {path}: is a directory; give a file name (e.g. {path / 'report.html'})")
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise CommandError(f"-o {path}: the directory {folder} {what}")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CommandError(f"-o {path}: the directory {folder} is not writable")
    return path


def report(
    ident: Annotated[str, typer.Argument(metavar="ID", help="a run, sweep or walk-forward study id")],
    output: Annotated[Path, typer.Option("-o", "--output", help="the HTML file to write")] = Path(
        "report.html"
    ),
    metric: Annotated[
        str, typer.Option(help="a sweep's heatmap metric (a run_metrics name: sharpe, total_return, ...)")
    ] = "sharpe",
) -> None:
    """Write the report of a stored run, sweep or walk-forward study: one self-contained HTML file
    (charts drawn by plotly, inlined: it opens with no network)."""
    from ticktape.report import render
    from ticktape.report.build import build, parse_id
    from ticktape.store import session

    check_output(output)
    parse_id(ident)  # (before the store starts)

    title, sections = session.run(lambda conn: build(conn, ident, metric=metric))
    page = render.render(title, sections)
    try:
        size = render.write(output, page)
    except OSError as exc:
        raise CommandError(f"-o {output}: cannot write the report ({exc.strerror or exc})") from None
    charts = sum(len(s.figures) for s in sections)
    console.print(
        f"{output}: {title} ({len(sections)} sections, {charts} charts, {size / 1e6:.1f} MB)", soft_wrap=True
    )
