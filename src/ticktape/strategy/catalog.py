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

from collections.abc import Mapping
from typing import Any

from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec
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
    "strategy_class",
    "templates",
    "validate_spec",
]

#: The built-in templates' names, in the order they are declared
#: (``sma_crossover`` is ``ma_crossover`` under the walking skeleton's name).
TEMPLATES: tuple[str, ...] = tuple(
    name for name, cls in REGISTRY.items() if cls.__module__ == templates.__name__
)

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
    """Validate a whole ``{"strategy": NAME, "params": {...}}`` spec; return it normalized.

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
        raise SpecError(f"spec: must be an object with 'strategy' and 'params', got {spec!r}")
    for key in spec:
        if key not in ("strategy", "params"):
            raise SpecError(f"{key}: unknown key of a strategy spec (a spec has 'strategy' and 'params')")
    name = spec.get("strategy")
    if not isinstance(name, str) or not name:
        raise SpecError(f"strategy: must be a strategy name, got {name!r}")
    strategy = build(name, spec.get("params"))
    return {"strategy": name, "params": to_dict(strategy.config)}
