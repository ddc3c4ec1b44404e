"""Where a run's ticks come from (the replay agent's inputs).

A run spec's ``source`` (JSON) is one of:

``{"kind": "store"}`` (the default)
    the ticks table, in ``(ts, seq)`` order, by symbol and time range;
``{"kind": "parquet", "path": FILE}``
    a Parquet file in ticktape's tick layout (``ticktape data export``);
``{"kind": "generator", "n_ticks": N, "seed": S, "regimes": false, ...}``
    the synthetic GBM generator (``ticktape.data.synth.ProcessConfig``
    fields), deterministic per (seed, symbol), streamed in constant memory;
``{"kind": "topic", "run_id": RUN, "topic": "ticktape.ticks", "start_offset": A, "end_offset": B}``
    the ticks a previous (live, paper or replayed) run published to a Kafka
    topic: its batches of each symbol, de-duplicated by sequence number, from
    offset ``A`` (inclusive, default the beginning) to ``B`` (exclusive,
    default the end of the topic when the run starts).

Every source honours the spec's ``start_ns`` / ``end_ns`` (event time,
``start <= ts < end``): on a recorded topic that is how a replay starts or
ends at a timestamp. (Kafka's offsets-for-times lookup would only narrow the
scan, by broker append time; the embedded broker answers it with offset 0
for any time, so ticktape filters by the ticks' own event time.)
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ticktape.errors import SpecError

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, kw_only=True)
class ProcessConfig:
    """GBM quotes at Poisson times, optionally with calm/news regimes.

    ``vol`` is the annualised volatility of the calm regime. With
    ``regimes=True`` the process switches to "news" (volatility and tick rate
    times ``news_vol_mult`` / ``news_rate_mult``) with probability
    ``p_news`` per tick and back with ``p_calm`` per tick.
    """

    symbol: str = "SYN"
    n_ticks: int = 100_000
    seed: int = 7
    start_ns: int = 1_704_186_000 * NS_PER_S
    price0: float = 100.0
    vol: float = 0.2
    drift: float = 0.0
    rate_per_s: float = 20.0
    tick_size: float = 0.01
    spread_ticks: float = 1.0
    spread_vol_mult: float = 2.0
    mean_size: float = 100.0
    tail: float = 2.5
    regimes: bool = False
    p_news: float = 1e-4
    p_calm: float = 2e-3
    news_vol_mult: float = 5.0
    news_rate_mult: float = 4.0

    def __post_init__(self) -> None:
        if self.n_ticks < 0:
            raise ValueError("n_ticks must be >= 0")
        for name in ("price0", "vol", "rate_per_s", "tick_size", "mean_size", "tail"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")


KINDS = ("store", "parquet", "generator", "topic")


def _gen_fields() -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(ProcessConfig) if f.name != "symbol"}


def validate(source: Mapping[str, Any] | None) -> dict[str, Any]:
    """The normalized source of a run spec; SpecError naming ``source.<field>``."""
    if source is None:
        return {"kind": "store"}
    if not isinstance(source, Mapping):
        raise SpecError(f"source: must be an object with a kind ({', '.join(KINDS)}), got {source!r}")
    d = dict(source)
    kind = d.get("kind", "store")
    if kind not in KINDS:
        raise SpecError(f"source.kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {
        "store": set(),
        "parquet": {"path"},
        "topic": {"run_id", "topic", "start_offset", "end_offset"},
        "generator": set(_gen_fields()),
    }[kind] | {"kind"}
    for key in d:
        if key not in allowed:
            raise SpecError(
                f"source.{key}: unknown field of a {kind} source; known: {', '.join(sorted(allowed))}"
            )
    if kind == "parquet":
        if not isinstance(d.get("path"), str) or not d["path"]:
            raise SpecError("source.path: the Parquet file to replay is required")
    elif kind == "topic":
        try:
            d["run_id"] = str(uuid.UUID(str(d.get("run_id"))))
        except ValueError:
            raise SpecError(
                f"source.run_id: the recorded run's UUID is required, got {d.get('run_id')!r}"
            ) from None
        d.setdefault("topic", "ticktape.ticks")
        for key in ("start_offset", "end_offset"):
            v = d.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise SpecError(f"source.{key}: must be an offset >= 0, got {v!r}")
        if (
            d.get("start_offset") is not None
            and d.get("end_offset") is not None
            and d["end_offset"] < d["start_offset"]
        ):
            raise SpecError("source.end_offset: is before start_offset")
    elif kind == "generator":
        if not isinstance(d.get("n_ticks"), int) or isinstance(d.get("n_ticks"), bool) or d["n_ticks"] < 1:
            raise SpecError(
                f"source.n_ticks: the number of ticks per symbol (an integer >= 1) is required, got {d.get('n_ticks')!r}"
            )
        try:
            process_config("X", d)
        except (TypeError, ValueError) as exc:
            raise SpecError(f"source: {exc}") from None
    return d


def process_config(symbol: str, d: Mapping[str, Any]) -> ProcessConfig:
    """The generator settings of a (validated) generator source, for one symbol."""
    return ProcessConfig(symbol=symbol, **{k: v for k, v in d.items() if k != "kind"})


def parse_source(text: str) -> dict:
    """``--source`` text (``store``, ``parquet:FILE``, ``generator:N[:SEED]``,
    ``topic:RUN_ID[:START[:END]]``) -> a run spec's source."""
    kind, _, rest = text.partition(":")
    parts = rest.split(":") if rest else []
    try:
        if kind == "store" and not parts:
            return {"kind": "store"}
        if kind == "parquet" and rest:
            return {"kind": "parquet", "path": rest}
        if kind == "generator" and 1 <= len(parts) <= 2:
            return {
                "kind": "generator",
                "n_ticks": int(parts[0]),
                **({"seed": int(parts[1])} if len(parts) > 1 else {}),
            }
        if kind == "topic" and 1 <= len(parts) <= 3:
            out: dict = {"kind": "topic", "run_id": parts[0]}
            for key, value in zip(("start_offset", "end_offset"), parts[1:], strict=False):
                out[key] = int(value)
            return out
    except ValueError:
        pass
    raise SpecError(
        f"--source {text!r}: expected store, parquet:FILE, generator:N[:SEED] or topic:RUN_ID[:START[:END]]"
    )
