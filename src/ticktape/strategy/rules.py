"""Rule trees for the ``rules`` strategy, and validation of every strategy spec.

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

Every template's parameters are listed once, as data, in :data:`TEMPLATES`
and :data:`INDICATORS`; :func:`ticktape.strategy.catalog.validate_spec` checks a spec against them and
returns it normalized (defaults filled, numbers coerced), raising
:class:`ticktape.errors.SpecError` whose message starts with the JSON path
of the offending field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ticktape.errors import SpecError

__all__ = [
    "COMMON",
    "INDICATORS",
    "OPS",
    "PRICE_FIELDS",
    "TEMPLATES",
    "Param",
    "evaluate",
    "node_key",
    "validate",
    "validate_cond",
    "value_nodes",
]

PRICE_FIELDS = ("close", "open", "high", "low", "mid", "volume")
OPS = ("crosses_above", "crosses_below", ">", "<", ">=", "<=")
_CROSSES = ("crosses_above", "crosses_below")

_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default and allowed range.

    ``kind`` is ``"int"``, ``"float"``, ``"bool"``, ``"choice"`` (one of
    ``choices``), ``"symbols"`` (a list of two distinct symbols) or ``"cond"``
    (a COND). Bounds: ``ge``/``gt`` (lower, inclusive/exclusive), ``le``/``lt``
    (upper). A parameter without a default is required.
    """

    kind: str
    default: Any = _REQUIRED
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def check(self, value: Any, path: str) -> Any:
        """Return ``value`` coerced to this parameter's type, or raise SpecError naming ``path``."""
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise SpecError(f"{path}: must be true or false, got {value!r}")
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise SpecError(f"{path}: must be one of {', '.join(map(repr, self.choices))}, got {value!r}")
        if self.kind == "symbols":
            return _symbols(value, path)
        if self.kind == "cond":
            return _cond(value, path)
        number = _number(value, path, integer=self.kind == "int")
        self._bounds(number, path)
        return number

    def _bounds(self, x: float, path: str) -> None:
        lo = hi = ""
        if self.ge is not None:
            lo = f">= {_fmt(self.ge)}"
        if self.gt is not None:
            lo = f"> {_fmt(self.gt)}"
        if self.le is not None:
            hi = f"<= {_fmt(self.le)}"
        if self.lt is not None:
            hi = f"< {_fmt(self.lt)}"
        ok = (
            (self.ge is None or x >= self.ge)
            and (self.gt is None or x > self.gt)
            and (self.le is None or x <= self.le)
            and (self.lt is None or x < self.lt)
        )
        if not ok:
            what = "an integer" if self.kind == "int" else "a number"
            rng = " and ".join(r for r in (lo, hi) if r)
            raise SpecError(f"{path}: must be {what} {rng}, got {_fmt(x)}")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _number(value: Any, path: str, *, integer: bool) -> Any:
    what = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SpecError(f"{path}: must be {what}, got {value!r}")
    try:
        x = float(value)
    except ValueError:
        raise SpecError(f"{path}: must be {what}, got {value!r}") from None
    if not math.isfinite(x):
        raise SpecError(f"{path}: must be a finite number, got {value!r}")
    if integer:
        if not x.is_integer():
            raise SpecError(f"{path}: must be an integer, got {value!r}")
        return int(x)
    return x


def _symbols(value: Any, path: str) -> list[str]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise SpecError(f"{path}: must be a list of 2 symbols, got {value!r}")
    out = []
    for i, s in enumerate(value):
        if not isinstance(s, str) or not s.strip():
            raise SpecError(f"{path}[{i}]: must be a non-empty symbol name, got {s!r}")
        out.append(s.strip())
    if out[0] == out[1]:
        raise SpecError(f"{path}: the two symbols must differ, got {out[0]!r} twice")
    return out


# --------------------------------------------------------------------------
# the tables: indicators and templates, as data

_N = Param("int", ge=1, help="window length in rows")
_SOURCE = Param("choice", "close", choices=PRICE_FIELDS, help="the price field the indicator is computed on")

#: VALUE indicators: kind -> parameters (``source`` included where it applies).
#: ``atr`` has no source: it is computed from high, low and close.
INDICATORS: dict[str, dict[str, Param]] = {
    "sma": {"n": _N, "source": _SOURCE},
    "ema": {"n": _N, "source": _SOURCE},
    "wma": {"n": _N, "source": _SOURCE},
    "rsi": {"n": Param("int", 14, ge=1), "source": _SOURCE},
    "macd": {
        "fast": Param("int", 12, ge=1),
        "slow": Param("int", 26, ge=1),
        "signal": Param("int", 9, ge=1),
        "line": Param("choice", "macd", choices=("macd", "signal", "hist")),
        "source": _SOURCE,
    },
    "bollinger": {
        "n": Param("int", 20, ge=2),
        "k": Param("float", 2.0, gt=0),
        "band": Param("choice", choices=("upper", "middle", "lower")),
        "source": _SOURCE,
    },
    "atr": {"n": Param("int", 14, ge=1)},
    "vwap": {
        "n": Param("int", 0, ge=0, help="0 = session VWAP, else rolling over n rows"),
        "source": _SOURCE,
    },
    "zscore": {"n": Param("int", ge=2), "source": _SOURCE},
    "realized_vol": {"n": Param("int", ge=2), "source": _SOURCE},
    "highest": {"n": _N, "source": _SOURCE},
    "lowest": {"n": _N, "source": _SOURCE},
}

#: Parameters common to every template.
COMMON: dict[str, Param] = {
    "long_only": Param("bool", False, help="never go short"),
    "size": Param("float", 100.0, gt=0, help="units held when sizing is fixed"),
    "sizing": Param("choice", "fixed", choices=("fixed", "equity")),
    "fraction": Param("float", 1.0, gt=0, le=1, help="fraction of equity when sizing is equity"),
    "stop_loss": Param("float", 0.0, ge=0, help="fraction of the entry price, 0 = off"),
    "take_profit": Param("float", 0.0, ge=0, help="fraction of the entry price, 0 = off"),
}

_OPTIONAL_COND = Param("cond", None)

#: Template name -> its own parameters (:data:`COMMON` is added to every one).
TEMPLATES: dict[str, dict[str, Param]] = {
    "ma_crossover": {
        "fast": Param("int", 50, ge=1, help="1 = the price itself"),
        "slow": Param("int", 200, ge=1),
        "ma": Param("choice", "sma", choices=("sma", "ema", "wma")),
    },
    "rsi_reversion": {
        "n": Param("int", 14, ge=1),
        "lower": Param("float", 30.0, ge=0, le=100),
        "upper": Param("float", 70.0, ge=0, le=100),
        "exit": Param("float", 50.0, ge=0, le=100),
    },
    "bollinger_reversion": {"n": Param("int", 20, ge=2), "k": Param("float", 2.0, gt=0)},
    "breakout": {"n": Param("int", 20, ge=1), "exit_n": Param("int", 10, ge=1)},
    "vwap_reversion": {
        "n": Param("int", 0, ge=0, help="0 = session VWAP"),
        "z_n": Param("int", 100, ge=2, help="window of the z-score of price - VWAP"),
        "entry_z": Param("float", 2.0, gt=0),
        "exit_z": Param("float", 0.0, ge=0),
    },
    "pairs": {
        "symbols": Param("symbols"),
        "n": Param("int", 100, ge=3),
        "entry_z": Param("float", 2.0, gt=0),
        "exit_z": Param("float", 0.5, ge=0),
        "hedge": Param("choice", "ols", choices=("ols", "ratio")),
    },
    "market_maker": {
        "spread_ticks": Param("int", 2, ge=1, help="half-spread in ticks around the mid"),
        "size": Param("float", 100.0, gt=0),
        "max_inventory": Param("float", 1000.0, gt=0),
        "skew": Param("float", 0.0, help="ticks of quote shift per max_inventory of position"),
        "tick_size": Param("float", 0.01, gt=0, help="price increment of the quotes"),
    },
    "rules": {
        "entry": _OPTIONAL_COND,
        "exit": _OPTIONAL_COND,
        "short_entry": _OPTIONAL_COND,
        "short_exit": _OPTIONAL_COND,
    },
}


#: the walking skeleton's name, kept: ``ma_crossover`` (any ``ma``, default sma)
TEMPLATES["sma_crossover"] = TEMPLATES["ma_crossover"]


def _params_of(name: str) -> dict[str, Param]:
    return {**COMMON, **TEMPLATES[name]}


def _check_ma(p: dict[str, Any]) -> None:
    if p["slow"] <= p["fast"]:
        raise SpecError(f"params.slow: must be > fast, got fast={p['fast']} slow={p['slow']}")


def _check_rsi(p: dict[str, Any]) -> None:
    if not p["lower"] <= p["upper"]:
        raise SpecError(
            f"params.upper: must be >= lower, got lower={_fmt(p['lower'])} upper={_fmt(p['upper'])}"
        )
    if not p["lower"] <= p["exit"] <= p["upper"]:
        raise SpecError(
            f"params.exit: must be between lower and upper, got {_fmt(p['exit'])} "
            f"(lower={_fmt(p['lower'])}, upper={_fmt(p['upper'])})"
        )


def _check_z(p: dict[str, Any]) -> None:
    if not p["exit_z"] < p["entry_z"]:
        raise SpecError(
            f"params.exit_z: must be < entry_z, got exit_z={_fmt(p['exit_z'])} entry_z={_fmt(p['entry_z'])}"
        )


def _check_rules(p: dict[str, Any]) -> None:
    protective = p["stop_loss"] > 0 or p["take_profit"] > 0
    sides = (("entry", "exit"), ("short_entry", "short_exit"))
    for enter, leave in sides:
        if p[leave] is not None and p[enter] is None:
            raise SpecError(f"params.{leave}: given without params.{enter}")
        if p[enter] is not None and p[leave] is None:
            if not protective:
                raise SpecError(
                    f"params.{leave}: required with params.{enter} "
                    "(or set stop_loss / take_profit to close positions)"
                )
            p[leave] = {"any": []}  # never: only the stop loss / take profit close the position
    if p["entry"] is None and p["short_entry"] is None:
        raise SpecError("params.entry: a rules strategy needs params.entry and/or params.short_entry")
    if p["long_only"] and p["short_entry"] is not None:
        raise SpecError("params.short_entry: cannot be used with long_only = true")


def _check_mm(p: dict[str, Any]) -> None:
    if not p["max_inventory"] >= p["size"]:
        raise SpecError(
            f"params.max_inventory: must be >= size, got {_fmt(p['max_inventory'])} (size {_fmt(p['size'])})"
        )


_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "market_maker": _check_mm,
    "ma_crossover": _check_ma,
    "sma_crossover": _check_ma,
    "rsi_reversion": _check_rsi,
    "vwap_reversion": _check_z,
    "pairs": _check_z,
    "rules": _check_rules,
}


def check_params(name: str, params: Any) -> dict[str, Any]:
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise SpecError(f"params: must be an object, got {params!r}")
    table = _params_of(name)
    out: dict[str, Any] = {}
    for key in params:
        if key not in table:
            raise SpecError(f"params.{key}: unknown parameter of {name!r}; known: {', '.join(table)}")
    for key, param in table.items():
        if key in params and not (param.kind == "cond" and params[key] is None):
            out[key] = param.check(params[key], f"params.{key}")
        elif param.required:
            raise SpecError(f"params.{key}: required by {name!r}")
        else:
            out[key] = param.default
    if "sizing" in out and out["sizing"] == "fixed" and out["fraction"] != 1.0:
        raise SpecError("params.fraction: only used with sizing = 'equity' (sizing is 'fixed')")
    check = _CHECKS.get(name)
    if check is not None:
        check(out)
    return out


def validate(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalize the params of a ``rules`` strategy.

    Parameters
    ----------
    params
        ``entry`` / ``exit`` (go long / close the long), optional
        ``short_entry`` / ``short_exit``, plus the common parameters
        (:data:`COMMON`). An ``exit`` may be left out only when ``stop_loss``
        or ``take_profit`` is set; it is then normalized to ``{"any": []}``
        (never true).

    Returns
    -------
    dict
        Every parameter present (defaults filled), conditions normalized
        (indicator defaults filled, numbers as floats and integer windows as
        ints). Validating the result again returns it unchanged.

    Raises
    ------
    SpecError
        The message starts with the JSON path of the first bad field.

    Examples
    --------
    >>> p = validate({"entry": {"op": "<", "left": {"ind": "rsi"}, "right": 30},
    ...               "exit": {"op": ">", "left": {"ind": "rsi"}, "right": 70}})
    >>> p["entry"]
    {'op': '<', 'left': {'ind': 'rsi', 'n': 14, 'source': 'close'}, 'right': 30.0}
    >>> validate({"entry": {"op": "<", "left": {"ind": "sma", "n": 0}, "right": 3}})
    Traceback (most recent call last):
    ...
    ticktape.errors.SpecError: params.entry.left.n: must be an integer >= 1, got 0
    """
    return check_params("rules", params)


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
                f"{path}: compares two numbers ({_fmt(left)} {op} {_fmt(right)}); one side must vary"
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


def _walk(cond: dict[str, Any]):
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
