"""``ticktape strategy``: write a strategy spec from plain English, check a spec
file, list a strategy's parameters.

A typer sub-app (:data:`app`). ``from-text`` prints the spec as indented JSON
on stdout (so it can be redirected to a file) and a hint on stderr; ``params``
prints what the strategy's config declares (a table, or ``--json``); errors
are one line ``ticktape: error: ...`` and exit code 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from ticktape.cli.common import console, err_console
from ticktape.errors import CommandError

app = typer.Typer(
    no_args_is_help=True,
    help="Strategy specs: write one from plain English, validate a file, list a strategy's parameters.",
)


def _dump(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2) + "\n"


@app.command("from-text")
def from_text(
    text: Annotated[str, typer.Argument(help="the strategy in plain English (quote it)")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="also write the spec to this file")] = None,
    llm: Annotated[
        bool,
        typer.Option(
            "--llm/--no-llm",
            help="if the rule-based parser cannot read the text, ask the OpenAI-compatible LLM at "
            "TICKTAPE_LLM_URL (model TICKTAPE_LLM_MODEL, key TICKTAPE_LLM_API_KEY)",
        ),
    ] = False,
) -> None:
    """Turn a strategy described in English into a spec (JSON) and print it.

    Example: ticktape strategy from-text "buy when the 50 period moving average
    crosses above the 200 and sell when RSI is above 70" --out spec.json
    """
    from ticktape.errors import LLMError, SpecError
    from ticktape.strategy.fromtext import parse

    try:
        spec = parse(text, llm=llm)
    except (ValueError, SpecError, LLMError) as exc:  # CouldNotUnderstand is a ValueError
        raise CommandError(str(exc)) from None
    dumped = _dump(spec)
    if out is not None:
        try:
            out.write_text(dumped)
        except OSError as exc:
            raise CommandError(f"{out}: cannot write the spec ({exc.strerror})") from None
    typer.echo(dumped, nl=False)
    target = str(out) if out is not None else "spec.json"
    first = f"Saved to {out}. Edit it" if out is not None else f"Save it (--out {target}), edit it"
    err_console.print(
        Text.assemble(
            (first, "green"),
            " if you like (every parameter is listed; docs/strategies-from-text.md explains them), "
            "then run it with ",
            (f"ticktape backtest --spec {target} --data ...", "bold"),
        ),
        highlight=False,
    )


@app.command("validate")
def validate(spec_file: Annotated[Path, typer.Argument(help="a strategy spec JSON file")]) -> None:
    """Check a strategy spec file ({"strategy": ..., "params": {...}}, optionally
    "engine": {...}) as `ticktape backtest --spec` reads it, and say what is wrong."""
    from ticktape.strategy.catalog import read_spec, validate_spec

    spec = read_spec(spec_file)
    normalized = validate_spec(spec)
    filled = sorted(set(normalized["params"]) - set(spec.get("params") or {}))
    note = f"; defaults used for {', '.join(filled)}" if filled else ""
    typer.echo(f"{spec_file}: a valid {normalized['strategy']!r} spec{note}")


@app.command("params")
def params(
    name: Annotated[str, typer.Argument(help="a strategy (template) name, e.g. ma_crossover")],
    as_json: Annotated[bool, typer.Option("--json", help="print the parameters as a JSON list")] = False,
) -> None:
    """List a strategy's parameters: name, type, default, allowed values, help.

    They are what its config declares (the template's own first, then those
    every template has); `ticktape backtest --param NAME=VALUE` and a spec's
    "params" take them.
    """
    from ticktape.strategy.catalog import COMMON, params_of

    table = params_of(name)
    ordered = [k for k in table if k not in COMMON] + [k for k in table if k in COMMON]
    if as_json:
        typer.echo(json.dumps([table[k].to_json(k) for k in ordered], indent=2))
        return
    own = [k for k in ordered if k not in COMMON]
    out = Table(
        title=f'{name}: parameters (`--param NAME=VALUE`, or the spec\'s "params")',
        caption="below the line: the parameters every template has"
        if own and len(own) < len(ordered)
        else None,
    )
    for column in ("param", "type", "default", "allowed", "help"):
        out.add_column(column, overflow="fold")
    for k in ordered:
        p = table[k]
        default = "required" if p.required else json.dumps(p.to_json(k)["default"])
        out.add_row(k, p.kind, default, p.allowed(), p.help, end_section=own[-1:] == [k])
    console.print(out)
