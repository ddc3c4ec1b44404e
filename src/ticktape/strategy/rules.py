"""Rule trees for the ``rules`` strategy: conditions, values and the indicators they read.

A strategy spec is ``{"strategy": NAME, "params": {...}}``. For the ``rules``
strategy the params hold conditions (COND) built from comparisons of values
(VALUE)::

    COND  = {"op": OP, "left": VALUE, "right": VALUE}
              OP in crosses_above, crosses_below, >, <, >=, <=
          | {"all": [COND, ...]} | {"any": [COND, ...]} | {"not": COND}
    VALUE = a number
          | {"price": "close" | "open" | "high" | "low" | "mid" | "volume"}
          | {"ind": KIND, ...params, "source": "close"}

On tick data close = open = high = low = the tick's price (the mid of a
quote, or the last trade price); on bars they are the bar's fields.

Conventions of :func:`evaluate`
-------------------------------
* ``crosses_above(a, b)`` is true at ``i`` when ``a[i] > b[i]`` and
  ``a[i-1] <= b[i-1]``, all four values defined; ``crosses_below`` mirrors it.
* A comparison involving NaN (indicator warm-up) is *unknown*. ``all``, ``any``
  and ``not`` use three-valued (Kleene) logic, and an unknown result counts as
  false: ``not`` never turns a warm-up into a signal. ``all([])`` is true and
  ``any([])`` is false.
* The result at ``i`` depends only on rows ``<= i`` (no look-ahead), and
  evaluating batch by batch with the returned carry equals evaluating the
  whole array at once.

The indicators a VALUE may read and their parameters are declared once, in
:data:`INDICATORS` (the kinds and outputs are those of
:data:`ticktape.compute.indicators.STREAMS`); the ``rules`` template's own
parameters (``entry``, ``exit``, ...) are declared on its config,
:class:`ticktape.strategy.templates.RulesConfig`, like every template's.
:func:`validate_cond` checks and normalizes a COND (indicator defaults
filled, numbers coerced), raising :class:`ticktape.errors.SpecError` whose
message starts with the JSON path of the offending field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ticktape.compute import indicators
from ticktape.errors import SpecError
from ticktape.strategy.params import MAX_WINDOW, REQUIRED, Param, fmt

__all__ = [
    "INDICATORS",
    "OPS",
    "PICKERS",
    "PRICE_FIELDS",
    "evaluate",
    "node_key",
    "validate_cond",
    "value_nodes",
]

PRICE_FIELDS = ("close", "open", "high", "low", "mid", "volume")
OPS = ("crosses_above", "crosses_below", ">", "<", ">=", "<=")
_CROSSES = ("crosses_above", "crosses_below")

# --------------------------------------------------------------------------
# the indicators a VALUE may read, and their parameters


def _window(default: Any = REQUIRED, ge: int = 1, help: str = "window length in rows") -> Param:
    return Param("int", default, ge=ge, le=MAX_WINDOW, help=help)


_N = _window()
_SOURCE = Param("choice", "close", choices=PRICE_FIELDS, help="the price field the indicator is computed on")

#: The parameter of a multi-output indicator's VALUE that picks the output.
PICKERS = {"macd": "line", "bollinger": "band"}


def _pick(kind: str, default: Any = REQUIRED) -> Param:
    outputs = indicators.STREAMS[kind].outputs
    return Param("choice", default, choices=outputs, help=f"which output of {kind}")


#: VALUE indicators: kind -> parameters (``source`` included where it applies).
#: The kinds are :data:`ticktape.compute.indicators.STREAMS`'s; ``atr`` has no
#: source: it is computed from high, low and close.
INDICATORS: dict[str, dict[str, Param]] = {
    "sma": {"n": _N, "source": _SOURCE},
    "ema": {"n": _N, "source": _SOURCE},
    "wma": {"n": _N, "source": _SOURCE},
    "rsi": {"n": _window(14), "source": _SOURCE},
    "macd": {
        "fast": _window(12, help="fast EMA, rows"),
        "slow": _window(26, help="slow EMA, rows (> fast)"),
        "signal": _window(9, help="EMA of the macd line, rows"),
        PICKERS["macd"]: _pick("macd", "macd"),
        "source": _SOURCE,
    },
    "bollinger": {
        "n": _window(20, ge=2),
        "k": Param("float", 2.0, gt=0, help="band width in standard deviations"),
        PICKERS["bollinger"]: _pick("bollinger"),
        "source": _SOURCE,
    },
    "atr": {"n": _window(14)},
    "vwap": {
        "n": _window(0, ge=0, help="0 = session VWAP, else rolling over n rows"),
        "source": _SOURCE,
    },
    "zscore": {"n": _window(ge=2), "source": _SOURCE},
    "realized_vol": {"n": _window(ge=2), "source": _SOURCE},
    "highest": {"n": _N, "source": _SOURCE},
    "lowest": {"n": _N, "source": _SOURCE},
}

# --------------------------------------------------------------------------
# conditions and values

_COND_HELP = (
    'a condition: {"op": ..., "left": ..., "right": ...}, {"all": [...]}, {"any": [...]} or {"not": ...}'
)


def _value(node: Any, path: str) -> Any:
    if isinstance(node, bool):
        raise SpecError(f"{path}: must be a number, a price or an indicator, got {node!r}")
    if isinstance(node, int | float):
        x = float(node)
        if not math.isfinite(x):
            raise SpecError(f"{path}: must be a finite number, got {node!r}")
        return x
    if isinstance(node, str):
        hint = f' (a price is written {{"price": "{node}"}})' if node in PRICE_FIELDS else ""
        raise SpecError(f"{path}: must be a number, a price or an indicator, got {node!r}{hint}")
    if not isinstance(node, Mapping):
        raise SpecError(f"{path}: must be a number, a price or an indicator, got {node!r}")
    if "price" in node:
        for key in node:
            if key != "price":
                raise SpecError(f"{path}.{key}: unknown key of a price value (it has only 'price')")
        field = node["price"]
        if field not in PRICE_FIELDS:
            raise SpecError(f"{path}.price: must be one of {', '.join(PRICE_FIELDS)}, got {field!r}")
        return {"price": field}
    if "ind" in node:
        kind = node["ind"]
        if kind not in INDICATORS:
            raise SpecError(f"{path}.ind: unknown indicator {kind!r}; known: {', '.join(INDICATORS)}")
        table = INDICATORS[kind]
        for key in node:
            if key != "ind" and key not in table:
                raise SpecError(f"{path}.{key}: unknown parameter of {kind!r}; known: {', '.join(table)}")
        out: dict[str, Any] = {"ind": kind}
        for key, param in table.items():
            if key in node:
                out[key] = param.check(node[key], f"{path}.{key}")
            elif param.required:
                raise SpecError(f"{path}.{key}: required by {kind!r}")
            else:
                out[key] = param.default
        if kind == "macd" and out["slow"] <= out["fast"]:
            raise SpecError(f"{path}.slow: must be > fast, got fast={out['fast']} slow={out['slow']}")
        return out
    raise SpecError(f'{path}: must be a number, {{"price": ...}} or {{"ind": ...}}, got {dict(node)!r}')


def _cond(node: Any, path: str) -> dict[str, Any]:
    if not isinstance(node, Mapping):
        raise SpecError(f"{path}: must be {_COND_HELP}, got {node!r}")
    if "op" in node:
        for key in node:
            if key not in ("op", "left", "right"):
                raise SpecError(f"{path}.{key}: unknown key of a comparison (it has op, left, right)")
        op = node["op"]
        if op not in OPS:
            raise SpecError(f"{path}.op: must be one of {', '.join(OPS)}, got {op!r}")
        for side in ("left", "right"):
            if side not in node:
                raise SpecError(f"{path}.{side}: required by a comparison")
        left = _value(node["left"], f"{path}.left")
        right = _value(node["right"], f"{path}.right")
        if isinstance(left, float) and isinstance(right, float):
            raise SpecError(
                f"{path}: compares two numbers ({fmt(left)} {op} {fmt(right)}); one side must vary"
            )
        return {"op": op, "left": left, "right": right}
    if len(node) != 1:
        raise SpecError(f"{path}: must be {_COND_HELP}, got keys {', '.join(map(repr, node))}")
    (key,) = node
    if key in ("all", "any"):
        items = node[key]
        if not isinstance(items, list | tuple):
            raise SpecError(f"{path}.{key}: must be a list of conditions, got {items!r}")
        return {key: [_cond(c, f"{path}.{key}[{i}]") for i, c in enumerate(items)]}
    if key == "not":
        return {"not": _cond(node["not"], f"{path}.not")}
    raise SpecError(f"{path}.{key}: unknown key; must be {_COND_HELP}")


def validate_cond(cond: Any, path: str = "cond") -> dict[str, Any]:
    """Validate and normalize one COND; errors name fields under ``path``."""
    return _cond(cond, path)


def node_key(node: Any) -> str:
    """Stable key of a VALUE node: its normalized form as canonical JSON.

    Equal values written differently (defaults left out, ``14.0`` for ``14``,
    keys in another order) get the same key.

    Examples
    --------
    >>> node_key({"ind": "rsi"})
    '{"ind":"rsi","n":14,"source":"close"}'
    >>> node_key({"source": "close", "n": 14.0, "ind": "rsi"}) == node_key({"ind": "rsi"})
    True
    """
    return json.dumps(_value(node, "value"), sort_keys=True, separators=(",", ":"))


def _walk(cond: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "op" in cond:
        yield cond
    else:
        (key,) = cond
        for child in cond[key] if key in ("all", "any") else [cond[key]]:
            yield from _walk(child)


def value_nodes(cond: Any) -> list[dict[str, Any]]:
    """The distinct price and indicator VALUE nodes of ``cond``, sorted by :func:`node_key`.

    Numbers are left out. These are the columns :func:`evaluate` needs; to
    collect those of several conditions pass ``{"all": [c1, c2, ...]}``.

    Examples
    --------
    >>> value_nodes({"op": "crosses_above", "left": {"ind": "sma", "n": 50},
    ...              "right": {"ind": "sma", "n": 200}})
    [{'ind': 'sma', 'n': 200, 'source': 'close'}, {'ind': 'sma', 'n': 50, 'source': 'close'}]
    """
    seen: dict[str, dict[str, Any]] = {}
    for comparison in _walk(_cond(cond, "cond")):
        for side in ("left", "right"):
            v = comparison[side]
            if not isinstance(v, float):
                seen.setdefault(json.dumps(v, sort_keys=True, separators=(",", ":")), v)
    return [seen[k] for k in sorted(seen)]


def _column(v: Any, columns: Mapping[str, np.ndarray], length: int) -> np.ndarray:
    if isinstance(v, float):
        return np.full(length, v)
    key = json.dumps(v, sort_keys=True, separators=(",", ":"))
    try:
        return columns[key]
    except KeyError:
        raise ValueError(f"columns: no column for value {key}") from None


def _last(a: np.ndarray, previous: float) -> float | None:
    x = float(a[-1]) if len(a) else previous
    return None if math.isnan(x) else x


def _eval(
    cond: dict[str, Any],
    columns: Mapping[str, np.ndarray],
    carry: Mapping[str, Any],
    new_carry: dict[str, Any],
    length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(definitely true, definitely false) masks of ``cond`` (Kleene logic)."""
    if "op" in cond:
        op = cond["op"]
        a = _column(cond["left"], columns, length)
        b = _column(cond["right"], columns, length)
        known = ~(np.isnan(a) | np.isnan(b))
        if op in _CROSSES:
            key = json.dumps(cond, sort_keys=True, separators=(",", ":"))
            prev = carry.get(key) or (None, None)
            pa, pb = (math.nan if x is None else float(x) for x in prev)
            a_prev = np.concatenate(([pa], a[:-1]))
            b_prev = np.concatenate(([pb], b[:-1]))
            known &= ~(np.isnan(a_prev) | np.isnan(b_prev))
            up = op == "crosses_above"
            value = ((a > b) & (a_prev <= b_prev)) if up else ((a < b) & (a_prev >= b_prev))
            new_carry[key] = [_last(a, pa), _last(b, pb)]
        else:
            value = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal}[op](a, b)
        return known & value, known & ~value
    (key,) = cond
    if key == "not":
        true, false = _eval(cond["not"], columns, carry, new_carry, length)
        return false, true
    parts = [_eval(c, columns, carry, new_carry, length) for c in cond[key]]
    trues = [t for t, _ in parts]
    falses = [f for _, f in parts]
    if key == "all":
        true = np.logical_and.reduce(trues) if trues else np.ones(length, bool)
        false = np.logical_or.reduce(falses) if falses else np.zeros(length, bool)
    else:
        true = np.logical_or.reduce(trues) if trues else np.zeros(length, bool)
        false = np.logical_and.reduce(falses) if falses else np.ones(length, bool)
    return true, false


def evaluate(
    cond: Any,
    columns: Mapping[str, np.ndarray],
    carry: Mapping[str, Any] | None = None,
    *,
    length: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Evaluate ``cond`` on one batch, continuing from ``carry``.

    Parameters
    ----------
    cond
        A COND (validated here; normalization is idempotent).
    columns
        ``columns[node_key(v)]`` is the batch's array of each VALUE node
        ``v`` in :func:`value_nodes` (all the same length; NaN = not yet
        defined). Extra columns are ignored.
    carry
        The carry returned for the previous batch (``{}`` or None at the
        start): for each crossing comparison, the last left and right values
        (JSON-able; None stands for NaN).
    length
        Batch length; needed only when ``columns`` is empty.

    Returns
    -------
    (numpy.ndarray of bool, dict)
        True where the condition holds (unknown counts as false), and the
        carry for the next batch. Splitting a stream into batches anywhere
        gives the same concatenated result.

    Examples
    --------
    >>> sma = {"ind": "sma", "n": 2}
    >>> cond = {"op": "crosses_above", "left": {"price": "close"}, "right": sma}
    >>> cols = {node_key({"price": "close"}): np.array([3.0, 1.0, 4.0, 5.0]),
    ...         node_key(sma): np.array([np.nan, 2.0, 2.5, 4.5])}
    >>> evaluate(cond, cols, {})[0].tolist()
    [False, False, True, False]
    """
    cond = _cond(cond, "cond")
    lengths = set()
    cols: dict[str, np.ndarray] = {}
    for key, col in columns.items():
        arr = np.asarray(col, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"columns[{key}]: must be 1-dimensional, got shape {arr.shape}")
        lengths.add(len(arr))
        cols[key] = arr
    if len(lengths) > 1:
        raise ValueError(f"columns: arrays of different lengths {sorted(lengths)}")
    if lengths:
        (n,) = lengths
        if length is not None and length != n:
            raise ValueError(f"length: {length} but the columns have {n} rows")
    elif length is None:
        raise ValueError("length: required when there are no columns")
    else:
        n = length
    new_carry: dict[str, Any] = {}
    true, _ = _eval(cond, cols, carry or {}, new_carry, n)
    return true, new_carry
