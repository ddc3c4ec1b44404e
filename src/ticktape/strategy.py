"""Strategy API.

A strategy is a class with a frozen, typed config. It declares the indicator
columns it needs (:meth:`Strategy.features`) and decides per batch in
:meth:`Strategy.on_batch`: given the columnar ticks, the feature columns and its
own explicit state, it returns the target position per tick (NaN = no
decision). Strategies never touch Faust, Kafka or SQL.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ticktape.indicators import SmaStream


class SpecError(ValueError):
    """A run spec or strategy parameter is invalid; the message names the field."""


@dataclass(frozen=True)
class Feature:
    """One indicator column a strategy needs: ``kind`` of ``source`` over ``n``."""

    name: str
    kind: str  # "sma"
    n: int
    source: str = "mid"


_STREAMS = {"sma": SmaStream}


def mid(ticks: np.ndarray) -> np.ndarray:
    """Mid price of quote ticks."""
    return (ticks["bid"] + ticks["ask"]) * 0.5


def compute_features(
    features: list[Feature], ticks: np.ndarray, carry: dict[str, Any]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Compute feature columns for a batch, continuing from ``carry``.

    Output is identical for any split of the stream into batches.
    """
    sources = {"mid": mid(ticks)}
    out: dict[str, np.ndarray] = {}
    new_carry: dict[str, Any] = {}
    for f in features:
        cls = _STREAMS[f.kind]
        stream = cls.from_state(carry[f.name]) if f.name in carry else cls(f.n)
        out[f.name] = stream.update(sources[f.source])
        new_carry[f.name] = stream.to_state()
    return out, new_carry


class Strategy:
    """Base class of all strategies.

    Subclasses set ``name`` and ``Config`` (a frozen dataclass) and implement
    :meth:`features` and :meth:`on_batch`.
    """

    name: ClassVar[str]
    Config: ClassVar[type]

    def __init__(self, config: Any) -> None:
        self.config = config

    def features(self) -> list[Feature]:
        return []

    def on_batch(
        self, ticks: np.ndarray, features: dict[str, np.ndarray], state: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Return (target position per tick, NaN = no decision; new state)."""
        raise NotImplementedError


REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator adding a strategy to :data:`REGISTRY` under its name."""
    REGISTRY[cls.name] = cls
    return cls


def _coerce(field: dataclasses.Field, value: Any, where: str) -> Any:
    # configs use `from __future__ import annotations`, so field.type is the annotation's text
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    target = {"int": int, "float": float, "bool": bool, "str": str}.get(kind)
    if target is None:
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


def build(name: str, params: dict[str, Any] | None = None) -> Strategy:
    """Instantiate the registered strategy ``name`` with ``params``.

    Raises
    ------
    SpecError
        Unknown strategy, unknown parameter, or a value of the wrong type;
        the message names the field.
    """
    import ticktape.templates  # noqa: F401  (registers the templates)

    cls = REGISTRY.get(name)
    if cls is None:
        raise SpecError(f"strategy: unknown strategy {name!r}; known: {', '.join(sorted(REGISTRY))}")
    fields = {f.name: f for f in dataclasses.fields(cls.Config)}
    kwargs = {}
    for key, value in (params or {}).items():
        if key not in fields:
            raise SpecError(f"params.{key}: unknown parameter of {name!r}; known: {', '.join(fields)}")
        kwargs[key] = _coerce(fields[key], value, f"params.{key}")
    try:
        config = cls.Config(**kwargs)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"params: {exc}") from None
    return cls(config)
