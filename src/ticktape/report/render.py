"""Sections -> one self-contained HTML file: the one renderer of every report.

plotly.js is inlined once, in the head, and each figure is a div with the
script that draws it (its data as JSON, numeric arrays base64-packed by
plotly), so the file opens in any browser with no network; tables are HTML
tables; a header names the report, when it was made and by which ticktape.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from ticktape import __version__
from ticktape.compute import labels
from ticktape.report.document import Section

#: Every figure's plotly config: no logo, resized with the window; the
#: mode bar's image download stays (a chart pasted into a note).
FIGURE_CONFIG = {"displaylogo": False, "responsive": True}

_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2933;
       margin: 0; background: #f7f8fa; }
header { background: #1f2933; color: #f7f8fa; padding: 18px 32px 12px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header .meta { margin: 0; color: #c5ccd3; font-size: 13px; }
nav ol { margin: 10px 0 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px 18px; }
nav a { color: #9fd3ff; text-decoration: none; font-size: 13px; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 40px; }
section { background: #fff; border: 1px solid #e3e7eb; border-radius: 6px; margin: 18px 0; padding: 14px 20px; }
section h2 { margin: 0 0 6px; font-size: 17px; font-weight: 600; }
p.note { margin: 2px 0; color: #52606d; }
.figure { margin: 10px 0; }
.tables { display: flex; flex-wrap: wrap; gap: 12px 32px; align-items: flex-start; margin-top: 10px; }
table.tbl { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
table.tbl th, table.tbl td { border-bottom: 1px solid #e3e7eb; padding: 3px 10px; text-align: right; }
table.tbl th { background: #f0f2f4; font-weight: 600; }
table.tbl td:first-child, table.tbl th:first-child { text-align: left; }
.scroll { max-height: 520px; overflow: auto; }
"""


def render(title: str, sections: Sequence[Section], *, generated_at: datetime | None = None) -> str:
    """The report as one HTML document (a string).

    Parameters
    ----------
    title
        The report's heading (and the page's title).
    sections
        Drawn in order: heading, notes, figures, tables.
    generated_at
        When the report was made (default: now), shown in UTC.

    Examples
    --------
    >>> import pandas as pd
    >>> page = render("a run", [Section("Metrics", tables=(pd.DataFrame({"metric": ["Sharpe ratio"]}),))])
    >>> page.startswith("<!DOCTYPE html>"), page.count("<table"), "Sharpe ratio" in page
    (True, 1, True)
    """
    when = (generated_at or datetime.now(UTC)).astimezone(UTC)
    nav = "".join(
        f'<li><a href="#s{i}">{html.escape(s.title)}</a></li>' for i, s in enumerate(sections, start=1)
    )
    body = "\n".join(_section(i, s) for i, s in enumerate(sections, start=1))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f'<meta name="generator" content="ticktape {html.escape(__version__)}">\n'
        f"<style>{_STYLE}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        "</head>\n<body>\n<header>\n"
        f"<h1>{html.escape(title)}</h1>\n"
        f'<p class="meta">generated {when:%Y-%m-%d %H:%M:%S} UTC by ticktape {html.escape(__version__)}</p>\n'
        f"<nav><ol>{nav}</ol></nav>\n</header>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def _section(i: int, s: Section) -> str:
    parts = [f'<section id="s{i}">', f"<h2>{html.escape(s.title)}</h2>"]
    parts += [f'<p class="note">{html.escape(n)}</p>' for n in s.notes]
    for j, fig in enumerate(s.figures, start=1):
        height = fig.layout.height or 420
        div = pio.to_html(
            fig,
            include_plotlyjs=False,
            full_html=False,
            config=FIGURE_CONFIG,
            div_id=f"fig-{i}-{j}",
            default_width="100%",
            default_height=f"{height}px",
        )
        parts.append(f'<div class="figure">{div}</div>')
    if s.tables:
        parts.append('<div class="tables">')
        parts += [_table(t) for t in s.tables]
        parts.append("</div>")
    parts.append("</section>")
    return "\n".join(parts)


def _table(frame: pd.DataFrame) -> str:
    """A frame as an HTML table (cells escaped; numbers as :func:`labels.number`
    shows them); without a header row when its first column has no name (a
    list of facts: name, value)."""
    cells = frame.map(lambda v: v if isinstance(v, str) else labels.number(v))
    header = str(frame.columns[0]) != "" if len(frame.columns) else True
    out = cells.to_html(index=False, border=0, classes="tbl", escape=True, na_rep="", header=header)
    return f'<div class="scroll">{out}</div>' if len(frame) > 25 else out


def write(path: Path, page: str) -> int:
    """Write ``page`` to ``path`` whole or not at all; its size in bytes.

    The page goes to a temporary file in the same directory, renamed over
    ``path`` once complete: a failure (a full disk, an interrupt) leaves no
    half-written report, and an old report at ``path`` stays until the new
    one is whole.

    Raises
    ------
    OSError
        The directory is missing or not writable (nothing is left behind).
    """
    path = Path(path)
    data = page.encode("utf-8")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)
