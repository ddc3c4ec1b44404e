"""The JSON a benchmark writes next to the table it prints (``--json PATH``).

benchmarks/report.py runs the benchmarks with ``--json`` and writes
docs/benchmarks.md from these files, so the figures in the docs are the
ones the run printed, never typed in. One object per benchmark::

    {"benchmark": "peers", "title": "...", "columns": ["run", ...],
     "rows": [["ticktape in process", ...], ...], "notes": ["..."],
     "data": {...}}

``rows`` are the table's cells as printed (strings); ``data`` holds the raw
figures a report derives sentences from (ratios).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table


def table_dict(name: str, table: Table, notes: Sequence[str] = (), data: Any = None) -> dict[str, Any]:
    """The printed ``table`` (title, caption as a note, header, cells) as a dict."""
    columns = [str(c.header) for c in table.columns]
    cells = [[str(x) for x in c._cells] for c in table.columns]
    rows = [list(r) for r in zip(*cells, strict=True)]
    caption = [str(table.caption)] if table.caption else []
    return rows_dict(name, str(table.title or name), columns, rows, [*caption, *notes], data)


def rows_dict(
    name: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    notes: Sequence[str] = (),
    data: Any = None,
) -> dict[str, Any]:
    """A table given by its header and rows (cells as printed) as a dict."""
    return {
        "benchmark": name,
        "title": title,
        "columns": list(columns),
        "rows": [[str(x) for x in r] for r in rows],
        "notes": list(notes),
        "data": data,
    }


def write(path: Path | str, name: str, table: Table, notes: Sequence[str] = (), data: Any = None) -> None:
    """Write :func:`table_dict` of ``table`` to ``path``."""
    dump(path, table_dict(name, table, notes, data))


def dump(path: Path | str, doc: dict[str, Any]) -> None:
    """Write one benchmark's dict (:func:`table_dict`, :func:`rows_dict`) to ``path``."""
    Path(path).write_text(json.dumps(doc, indent=1, default=str) + "\n")
