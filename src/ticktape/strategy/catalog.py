"""The strategies there are: the registered classes (the templates register
themselves on import), building one from its name and params, and checking a
strategy spec or a run spec before anything runs."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from ticktape.errors import SpecError
from ticktape.model.spec import RunSpec
from ticktape.strategy import rules, templates
from ticktape.strategy.api import REGISTRY, Strategy

__all__ = ["build", "check_run", "strategy_class", "templates", "validate_spec"]


def _kind(f: dataclasses.Field) -> str:
    # configs use `from __future__ import annotations`, so field.type is the annotation's text
    return f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))


def _coerce(f: dataclasses.Field, value: Any, where: str) -> Any:  # noqa: PLR0911
    kind = _kind(f)
    target = {"int": int, "float": float, "bool": bool, "str": str}.get(kind)
    if target is None:
        if kind.startswith(("tuple", "dict", "list")) and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = [v.strip() for v in value.split(",")] if kind.startswith(("tuple", "list")) else value
        if kind.startswith("tuple") and isinstance(value, list):
            return tuple(value)
        return value
    if target is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise SpecError(f"{where}: expected a boolean, got {value!r}")
    if target is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise SpecError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise SpecError(f"{where}: expected an integer, got {value!r}") from None
    if target is float:
        if isinstance(value, bool):
            raise SpecError(f"{where}: expected a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise SpecError(f"{where}: expected a number, got {value!r}") from None
    return str(value)


def strategy_class(name: str) -> type[Strategy]:
    """The registered strategy ``name`` (SpecError naming the known ones)."""
    cls = REGISTRY.get(name)
    if cls is None:
        raise SpecError(f"strategy: unknown strategy {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return cls


def build(name: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate the registered strategy ``name`` with ``params``.

    Raises
    ------
    SpecError
        Unknown strategy, unknown parameter, or a value of the wrong type;
        the message names the field.
    """
    cls = strategy_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    kwargs = {}
    for key, value in (params or {}).items():
        if key not in fields:
            raise SpecError(f"params.{key}: unknown parameter of {name!r}; known: {', '.join(fields)}")
        kwargs[key] = _coerce(fields[key], value, f"params.{key}")
    try:
        config = cls.Config(**kwargs)
    except SpecError:
        raise
    except (TypeError, ValueError) as exc:
        raise SpecError(f"params: {exc}") from None
    return cls(config)


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

    Template names are checked against :data:`ticktape.strategy.rules.TEMPLATES` (plus ``COMMON``).
    A name that is not a template but is registered in
    :data:`ticktape.strategy.REGISTRY` (a user's own strategy) is checked by
    :func:`ticktape.strategy.build` and its params returned as given.

    Raises
    ------
    SpecError
        Unknown strategy, unknown or missing key, or a bad value; the message
        starts with the JSON path (``strategy``, ``params.fast``, ...).

    Examples
    --------
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
    params = spec.get("params")
    if name in rules.TEMPLATES:
        return {"strategy": name, "params": rules.check_params(name, params)}
    if name not in REGISTRY:
        known = sorted(set(rules.TEMPLATES) | set(REGISTRY))
        raise SpecError(f"strategy: unknown strategy {name!r}; known: {', '.join(known)}")
    if params is not None and not isinstance(params, Mapping):
        raise SpecError(f"params: must be an object, got {params!r}")
    build(name, dict(params or {}))
    return {"strategy": name, "params": dict(params or {})}
