"""Run specs: one JSON document describes a run; it round-trips through the
CLI, the Kafka run request, the ``runs`` table and the dashboard."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from ticktape.errors import SpecError
from ticktape.model import sources

_last_id = [0, 0]  # [unix ms, counter] of the last id made here
_id_lock = threading.Lock()


def new_run_id() -> str:
    """A new run id: a UUID version 7 (RFC 9562), the time in ms first.

    Ids made later sort higher (within a millisecond a 12-bit counter, then
    the next millisecond), so each run's rows go to the right edge of the
    result tables' run_id indexes and lie together on disk (docs/architecture.md).
    """
    with _id_lock:
        ms, counter = time.time_ns() // 1_000_000, int.from_bytes(os.urandom(2), "big") & 0x7FF
        last_ms, last_counter = _last_id
        if ms <= last_ms:  # same millisecond (or the clock went back): count on
            ms, counter = (last_ms, last_counter + 1) if last_counter < 0xFFF else (last_ms + 1, 0)
        _last_id[:] = ms, counter
    rand = bytearray(os.urandom(8))
    rand[0] = 0x80 | (rand[0] & 0x3F)  # the RFC 4122 variant
    return str(uuid.UUID(bytes=ms.to_bytes(6, "big") + (0x7000 | counter).to_bytes(2, "big") + bytes(rand)))


def parse_run_id(text: object) -> uuid.UUID:
    """``text`` as a run id (a UUID, any of its spellings); SpecError naming it otherwise.

    >>> parse_run_id("0190A1B2-0000-7000-8000-000000000001")
    UUID('0190a1b2-0000-7000-8000-000000000001')
    """
    try:
        return uuid.UUID(str(text))
    except ValueError:
        raise SpecError(f"run_id: {text!r} is not a run id (a UUID)") from None


def _non_finite(value: Any, path: str) -> tuple[str, float] | None:
    """The first NaN or infinite number in a decoded JSON value: (its path, it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, value
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


_KINDS: dict[str, tuple[str, Any]] = {
    "int": ("an integer", lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool)),
    "float": (
        "a number",
        lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v),
    ),
    "str": ("a string", lambda v: isinstance(v, str)),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
}


def _check_types(obj: Any, prefix: str = "") -> None:
    """SpecError naming the first field of dataclass ``obj`` whose value is not
    of its declared scalar type (``int``, ``float``, ``str``, ``bool``, each
    optionally ``| None``); other fields (unions of several types included)
    are checked by their owner."""
    for f in dataclasses.fields(obj):
        kinds = str(f.type).split(" | ")
        value = getattr(obj, f.name)
        if value is None and "None" in kinds:
            continue
        kinds = [k for k in kinds if k != "None"]
        if len(kinds) != 1 or kinds[0] not in _KINDS:
            continue
        what, ok = _KINDS[kinds[0]]
        if not ok(value):
            raise SpecError(f"{prefix}{f.name}: must be {what}, got {value!r:.60}")


#: Every status a run can have (the ``runs.status`` column).
RUN_STATUSES = ("pending", "running", "complete", "failed", "cancelled")
#: A run in one of these may still go on (``paused``: set by its replay, 0010).
UNFINISHED = ("pending", "running", "paused")
#: A run in one of these is over.
ENDED = ("complete", "failed", "cancelled")


QUEUE_MODELS = {"none": 0, "risk_averse": 1, "probabilistic": 2}
SLIPPAGE_MODELS = {"none": 0, "impact": 1}


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    """Execution settings handed to the native engine for every symbol.

    See docs/native.md for the models. ``latency_ns`` is the order entry
    latency (strategy → exchange), ``response_latency_ns`` the way back
    (when fills become known to the strategy), ``feed_latency_ns`` the market
    data delay. ``fee_bps`` is the taker fee, ``maker_fee_bps`` the maker fee
    (negative = rebate), ``fee_per_unit`` a fee per unit traded.
    ``queue_model``: none, risk_averse or probabilistic (``queue_power``);
    ``slippage_model``: none or impact (``impact_bps``).
    ``depth_refill_ns`` (runs fed L2 depth): what the strategy took at a level
    shows again this long (event time) after the level's last take, unless a
    diff set the level first; -1 (default): only a diff restores it.
    """

    tick_size: float = 0.01
    lot_size: float = 1.0
    latency_ns: int = 0
    response_latency_ns: int = 0
    feed_latency_ns: int = 0
    fee_bps: float = 0.0
    maker_fee_bps: float = 0.0
    fee_per_unit: float = 0.0
    queue_model: str = "none"
    queue_power: float = 2.0
    slippage_model: str = "none"
    impact_bps: float = 0.0
    initial_cash: float = 1_000_000.0
    equity_interval_ns: int = 1_000_000_000
    depth_refill_ns: int = -1

    def __post_init__(self) -> None:
        _check_types(self, "engine.")
        for name in ("tick_size", "lot_size", "equity_interval_ns", "initial_cash"):
            if not getattr(self, name) > 0:
                raise SpecError(f"engine.{name}: must be > 0, got {getattr(self, name)!r}")
        for name in ("latency_ns", "response_latency_ns", "feed_latency_ns"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 0):
                raise SpecError(f"engine.{name}: must be an integer >= 0, got {getattr(self, name)!r}")
        r = self.depth_refill_ns
        if not (isinstance(r, int) and not isinstance(r, bool) and r >= -1):
            raise SpecError(f"engine.depth_refill_ns: must be an integer >= 0 (or -1: never), got {r!r}")
        if self.queue_model not in QUEUE_MODELS:
            raise SpecError(
                f"engine.queue_model: must be one of {', '.join(QUEUE_MODELS)}, got {self.queue_model!r}"
            )
        if self.slippage_model not in SLIPPAGE_MODELS:
            raise SpecError(
                f"engine.slippage_model: must be one of {', '.join(SLIPPAGE_MODELS)}, got {self.slippage_model!r}"
            )

    @classmethod
    def from_dict(cls, d: Any) -> EngineConfig:
        """The engine settings of a spec's ``"engine"`` object (any subset of
        the fields); SpecError naming ``engine`` or ``engine.<setting>``.

        >>> EngineConfig.from_dict({"tick_size": 0.5}).tick_size
        0.5
        """
        if not isinstance(d, dict):
            raise SpecError(f"engine: must be an object of engine settings, got {d!r:.60}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise SpecError(f"engine.{key}: unknown engine setting; known: {', '.join(sorted(known))}")
        return cls(**d)

    def native_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ticktape.native.Engine."""
        d = dataclasses.asdict(self)
        d["queue_model"] = QUEUE_MODELS[self.queue_model]
        d["slippage_model"] = SLIPPAGE_MODELS[self.slippage_model]
        return d


#: The named return grids of the risk metrics (name -> width in ns), coarsest
#: first: ticktape.compute.metrics chooses among them (docs/metrics.md).
RETURN_GRIDS = {"day": 86_400 * 10**9, "hour": 3_600 * 10**9, "minute": 60 * 10**9, "second": 10**9}


def check_return_grid(grid: Any) -> None:
    """SpecError unless ``grid`` is None, ``auto``, ``samples``, a name of
    :data:`RETURN_GRIDS` or a width in ns > 0."""
    if grid is None or grid in ("auto", "samples") or (isinstance(grid, str) and grid in RETURN_GRIDS):
        return
    if isinstance(grid, int) and not isinstance(grid, bool) and grid > 0:
        return
    raise SpecError(
        f"return_grid: must be auto, samples, {', '.join(RETURN_GRIDS)} or a width in ns > 0, got {grid!r}"
    )


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """Everything that determines a run's results (plus its id).

    Same data + same spec (ignoring ``run_id`` and ``batch_size``) ⇒ identical
    orders, fills and metrics.

    A RunSpec checks its own fields; the strategy's name and params are
    checked by the strategy room (:func:`ticktape.strategy.catalog.check_run`),
    which every entry point calls.
    """

    strategy: str
    symbols: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    engine: EngineConfig = field(default_factory=EngineConfig)
    start_ns: int | None = None
    end_ns: int | None = None
    batch_size: int = 100_000  # ticks per message (4-5.6 MB): per-message costs paid rarely
    #: None: as fast as possible; K > 0: event time t is released at wall time
    #: t0 + (t - t_first) / K (batches are then cut by event time).
    speed: float | None = None
    #: width of the event-time OHLC bars of the mid recorded per symbol (None: none)
    bar_ns: int | None = 60_000_000_000
    #: where the ticks come from (ticktape.pipeline.sources): None / {"kind": "store"},
    #: parquet, generator or a recorded topic; a dict once constructed (normalized)
    source: dict[str, Any] = None  # type: ignore[assignment]
    #: feed the engine the symbols' L2 depth from the store's book_events
    #: (store source only): fills walk the depth (docs/strategies.md)
    depth: bool = False
    #: the grid of the returns behind Sharpe, Sortino and volatility (None: auto;
    #: see check_return_grid and docs/metrics.md)
    return_grid: str | int | None = None
    run_id: str = field(default_factory=new_run_id)

    def __post_init__(self) -> None:
        if not self.symbols:
            raise SpecError("symbols: at least one symbol is required")
        for i, sym in enumerate(self.symbols):
            if not (isinstance(sym, str) and sym):
                raise SpecError(f"symbols.{i}: must be a symbol name, got {sym!r:.60}")
        object.__setattr__(self, "run_id", str(parse_run_id(self.run_id)))
        _check_types(self)
        if self.speed is not None and not (isinstance(self.speed, int | float) and self.speed > 0):
            raise SpecError(f"speed: must be a number > 0 (or null for max), got {self.speed!r}")
        if self.bar_ns is not None and not (isinstance(self.bar_ns, int) and self.bar_ns > 0):
            raise SpecError(f"bar_ns: must be an integer > 0 (or null), got {self.bar_ns!r}")
        if self.batch_size < 1:
            raise SpecError(f"batch_size: must be >= 1, got {self.batch_size!r}")
        if self.start_ns is not None and self.end_ns is not None and self.end_ns < self.start_ns:
            raise SpecError("end_ns: is before start_ns")
        object.__setattr__(self, "source", sources.validate(self.source))
        check_return_grid(self.return_grid)
        if not isinstance(self.depth, bool):
            raise SpecError(f"depth: must be true or false, got {self.depth!r}")
        if self.depth and self.source["kind"] != "store":
            raise SpecError(
                f"depth: only the store source carries depth (book_events); source is {self.source['kind']!r}"
            )

    def to_json(self) -> str:
        d = dataclasses.asdict(self)
        d["symbols"] = list(self.symbols)
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RunSpec:
        try:
            d = json.loads(text)
        except ValueError as exc:
            raise SpecError(f"run spec: not valid JSON ({exc})") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        if not isinstance(d, dict):
            raise SpecError(f"run spec: expected a JSON object, got {type(d).__name__}")
        bad = _non_finite(d, "")
        if bad:  # (Python's JSON reads NaN and Infinity; SQL's jsonb and the engine take neither)
            name = "NaN" if math.isnan(bad[1]) else ("Infinity" if bad[1] > 0 else "-Infinity")
            raise SpecError(f"{bad[0]}: {name} is not a number a run spec may hold")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise SpecError(f"{key}: unknown field of a run spec; known: {', '.join(sorted(known))}")
        d = dict(d)
        engine = EngineConfig.from_dict(d.pop("engine", None) or {})
        if "symbols" in d:
            if not isinstance(d["symbols"], list):
                raise SpecError(f"symbols: must be a list of symbol names, got {d['symbols']!r:.60}")
            d["symbols"] = tuple(d["symbols"])
        return cls(engine=engine, **d)
