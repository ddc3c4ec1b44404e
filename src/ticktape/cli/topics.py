"""``ticktape topics``: create the pipeline's topics on an external Kafka, and describe them.

The embedded broker keeps its topics only while the command that started it
runs, and every command creates what it needs there; these commands are for
``TICKTAPE_KAFKA_URL`` (docs/operations.md, "Topics and partitions").
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ticktape.cli.common import console, err_console, settings
from ticktape.config import ENV_KAFKA_URL, Settings
from ticktape.errors import CommandError

topics_app = typer.Typer(no_args_is_help=True, help="The pipeline's Kafka topics.")


def _external(cfg: Settings) -> str:
    if cfg.kafka_url is None:
        raise CommandError(
            f"{ENV_KAFKA_URL} is not set: the embedded broker lives only as long as the command that"
            " starts it (and that command creates its topics); set it to your Kafka's bootstrap servers"
        )
    return cfg.kafka_url


def _reached(cfg: Settings) -> str:
    """The broker's bootstrap list, once it answers (one line naming it if not)."""
    from ticktape.runtime.embedded import Runtime

    with Runtime(cfg, database=False) as rt:
        return str(rt.kafka_url)


@topics_app.command("create")
def topics_create(
    symbols: Annotated[int, typer.Option(help="symbols run at once")] = 1,
    sweep: Annotated[int, typer.Option(help="parameter sets per run (a sweep's size)")] = 1,
    workers: Annotated[int, typer.Option(help="workers sharing the partitions")] = 1,
    partitions: Annotated[
        int | None,
        typer.Option(help="partitions of the keyed topics (default: derived from the three above)"),
    ] = None,
    replication: Annotated[
        int | None, typer.Option(help="replication factor (default: TICKTAPE_REPLICATION, else 1)")
    ] = None,
) -> None:
    """Create the pipeline's topics on TICKTAPE_KAFKA_URL with partition counts for a load."""
    from ticktape.pipeline import topics
    from ticktape.runtime.processes import run_coro

    derived = topics.partitions_for(symbols, sweep, workers)  # (bad numbers: refused first)
    if partitions is not None and partitions < 1:
        raise CommandError(f"--partitions: must be >= 1, got {partitions}")
    if replication is not None and replication < 1:
        raise CommandError(f"--replication: must be >= 1, got {replication}")
    cfg = settings()
    _external(cfg)
    bootstrap = _reached(cfg)
    asked = partitions is not None or (symbols, sweep, workers) != (1, 1, 1)
    wanted = partitions or (derived if asked else cfg.partitions)
    count, created = run_coro(
        lambda: topics.create(bootstrap, wanted, replication or cfg.replication, adopt=not asked)
    )
    for name, n in topics.topic_partitions(count).items():
        console.print(f"{name}: {n} partitions" + (" (created)" if name in created else " (exists)"))


@topics_app.command("describe")
def topics_describe() -> None:
    """The pipeline's topics on TICKTAPE_KAFKA_URL (partitions, messages) and
    consumer groups (workers); a warning per keyed topic with fewer
    partitions than a group's workers."""
    from ticktape.pipeline import topics
    from ticktape.runtime.processes import run_coro

    cfg = settings()
    _external(cfg)
    bootstrap = _reached(cfg)
    state = run_coro(lambda: topics.describe(bootstrap))
    table = Table(title=f"topics at {bootstrap}")
    for col in ("topic", "partitions", "messages"):
        table.add_column(col, justify="left" if col == "topic" else "right")
    for name in topics.topic_partitions():
        if name in state.partitions:
            table.add_row(name, str(state.partitions[name]), f"{state.messages.get(name, 0):,}")
        else:
            table.add_row(name, "missing", "")
    console.print(table)
    groups = Table(title="consumer groups")
    groups.add_column("group")
    groups.add_column("workers", justify="right")
    for group, members in sorted(state.groups.items()):
        groups.add_row(group, str(members))
    console.print(groups)
    for line in state.warnings():
        err_console.print(f"ticktape: warning: {line}", highlight=False)
