"""The strategies there are: the registered classes (the templates register
themselves on import), building one from its name and params, and checking a
strategy spec or a run spec before anything runs.

There is one path from a spec to a strategy: :func:`build` loads the
strategy's config from the params (:func:`ticktape.strategy.params.load`:
every parameter checked and coerced against its declaration on the config,
then the config's rules between fields). :func:`validate_spec` is
:func:`build` plus the normalized params, and :func:`check_run` is
:func:`build` of a run spec, so ``ticktape strategy validate`` accepts a spec
exactly when ``ticktape backtest`` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ticktape.errors import SpecError
from ticktape.model.spec import EngineConfig, RunSpec
from ticktape.strategy import templates
from ticktape.strategy.api import REGISTRY, Strategy
from ticktape.strategy.params import Param, declared, load, to_dict

__all__ = [
    "COMMON",
    "TEMPLATES",
    "build",
    "check_run",
    "own_params",
    "params_of",
    "read_spec",
    "strategy_class",
    "templates",
    "validate_spec",
]

#: The built-in templates' names, in the order they are declared
#: (``sma_crossover`` is ``ma_crossover`` under the walking skeleton's name).
TEMPLATES: tuple[str, ...] = tuple(
    name for name, cls in REGISTRY.items() if cls.__module__ == templates.__name__
)

#: The keys of a strategy spec (the engine settings are optional; a run
#: spec adds symbols, source... : :class:`~ticktape.model.spec.RunSpec`).
SPEC_KEYS = ("strategy", "params", "engine")

#: The parameters every template has (declared on :class:`ticktape.strategy.templates.Common`).
COMMON: dict[str, Param] = declared(templates.Common)


def strategy_class(name: str) -> type[Strategy]:
    """The registered strategy ``name`` (SpecError naming the known ones)."""
    cls = REGISTRY.get(name)
    if cls is None:
        raise SpecError(f"strategy: unknown strategy {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return cls


def params_of(name: str) -> dict[str, Param]:
    """Every parameter of strategy ``name``, declared on its config, in field order.

    Examples
    --------
    >>> p = params_of("breakout")["n"]
    >>> p.kind, p.default, p.bounds()
    ('int', 20, '>= 1 and <= 10000000')
    """
    return declared(strategy_class(name).Config)


def own_params(name: str) -> dict[str, Param]:
    """The parameters of strategy ``name`` that are not :data:`COMMON` ones."""
    return {k: p for k, p in params_of(name).items() if k not in COMMON}


def build(name: str, params: Mapping[str, Any] | None = None) -> Strategy:
    """Instantiate the registered strategy ``name`` with ``params``.

    Values are checked and coerced against the parameters' declarations
    (strings as ``--param`` gives them are read as the declared type).

    Raises
    ------
    SpecError
        Unknown strategy, unknown or missing parameter, a value of the wrong
        type or out of its bounds, or a rule between parameters broken; the
        message starts with the field's path (``params.fast: ...``).
    """
    cls = strategy_class(name)
    return cls(load(cls.Config, params, name))


def check_run(spec: RunSpec) -> RunSpec:
    """``spec`` itself once its strategy name and params are known to be valid.

    A :class:`~ticktape.model.spec.RunSpec` checks its own fields; which
    strategies exist and what their params accept is known here. Every entry
    point of a run (the CLI, a submitted request, the replay agent) calls this.

    Raises
    ------
    SpecError
        Naming ``strategy`` or ``params.<name>``.
    """
    build(spec.strategy, spec.params)
    return spec


def validate_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a whole ``{"strategy": NAME, "params": {...}}`` spec (and its
    optional ``"engine": {...}`` settings, :class:`~ticktape.model.spec.EngineConfig`);
    return it normalized.

    The spec is accepted exactly when :func:`build` accepts it (this is
    :func:`build`); the params come back with every parameter present
    (defaults filled) and values coerced to their declared types, so
    validating the result again returns it unchanged.

    Raises
    ------
    SpecError
        Unknown strategy, unknown or missing key, or a bad value; the message
        starts with the JSON path (``strategy``, ``params.fast``, ...).

    Examples
    --------
    >>> validate_spec({"strategy": "breakout", "params": {"n": "55"}})["params"]["n"]
    55
    >>> validate_spec({"strategy": "breakout", "params": {"n": 55}})["params"]["exit_n"]
    10
    """
    if not isinstance(spec, Mapping):
        raise SpecError(f"spec: must be an object with 'strategy' and 'params', got {spec!r:.60}")
    for key in spec:
        if key not in SPEC_KEYS:
            raise SpecError(
                f"{key}: unknown key of a strategy spec (a spec has {', '.join(map(repr, SPEC_KEYS))})"
            )
    name = spec.get("strategy")
    if not isinstance(name, str) or not name:
        raise SpecError(f"strategy: must be a strategy name, got {name!r:.60}")
    strategy = build(name, spec.get("params"))
    out = {"strategy": name, "params": to_dict(strategy.config)}
    if "engine" in spec:
        EngineConfig.from_dict(spec["engine"])
        out["engine"] = dict(spec["engine"])
    return out


def read_spec(path: str | Path) -> dict[str, Any]:
    """The strategy spec in the JSON file ``path`` as written, once
    :func:`validate_spec` accepts it: the one reader of spec files
    (``ticktape strategy validate``, ``ticktape backtest --spec``).

    Raises
    ------
    FileNotFoundError
        The file cannot be read (the message names it).
    SpecError
        Not JSON, or not a valid spec: ``<path>: <field>: <why>``.
    """
    path = Path(path)
    try:
        spec = json.loads(path.read_bytes())
    except OSError as exc:
        raise FileNotFoundError(f"{path}: cannot read the spec ({exc.strerror})") from None
    except ValueError as exc:  # (not UTF-8 is one too)
        raise SpecError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    try:
        validate_spec(spec)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc}") from None
    return spec
