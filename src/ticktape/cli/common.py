"""What every command shares: the consoles and the settings."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ticktape.config import Settings

console = Console()
#: errors: one unwrapped line on stderr
err_console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    """The settings from the environment (TICKTAPE_HOME, TICKTAPE_KAFKA_URL, TICKTAPE_DATABASE_URL)."""
    return Settings.from_env()


def fitted_table(
    title: str,
    rows: list[dict[str, str]],
    drop_first: list[str],
    right: tuple[str, ...] = (),
    width: int | None = None,
) -> Table:
    """A table of ``rows`` (header -> cell text) that fits the terminal
    without cutting a cell: the columns of ``drop_first`` are left out, in
    that order, while the table is wider than ``width`` (default: the
    console's; an id stays whole, so it can be copied).

    >>> t = fitted_table("t", [{"id": "x" * 36, "note": "n" * 60}], drop_first=["note"], width=80)
    >>> [c.header for c in t.columns]
    ['id']
    """
    cols = list(rows[0]) if rows else []

    def needs(cs: list[str]) -> int:  # cells + padding + borders
        return sum(max(len(c), *(len(r[c]) for r in rows)) + 3 for c in cs) + 1

    for name in drop_first:
        if needs(cols) <= (width or console.width):
            break
        cols.remove(name)
    table = Table(title=title)
    for c in cols:
        table.add_column(c, justify="right" if c in right else "left", no_wrap=True)
    for r in rows:
        table.add_row(*(r[c] for c in cols))
    return table
