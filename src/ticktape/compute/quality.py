"""Tick validation: every tick is either processed or counted as rejected.

Rejection reasons (stored per run):

``bad_price``
    neither a usable quote (bid and ask finite and > 0) nor a usable trade
    (last finite and > 0).
``crossed``
    bid > ask.
``bad_size``
    a negative or infinite size (a missing size, NaN, is allowed: many quote
    feeds have none).

A tick with a trade but no usable quote (trade-only data: Tardis trades,
Binance trade lines) is accepted; :func:`as_quotes` turns it into a quote at
the trade price showing the trade's size on both sides, which is what the
engine fills against. A quote without sizes shows :data:`UNKNOWN_SIZE`
(practically unlimited) to the engine: fills at the quote whatever the size,
the usual convention for feeds without depth (FX top of book).
``out_of_order``
    ts earlier than a previously accepted tick of the same stream.
"""

from __future__ import annotations

import numpy as np

import ticktape._native as _native  # noqa: PLR0402 (the from-form reaches mypy through ticktape.__getattr__, in an import cycle: Any?)

REASONS = ("bad_price", "crossed", "bad_size", "out_of_order")


def validate(ticks: np.ndarray, last_ts: int | None) -> tuple[np.ndarray, dict[str, int], int | None]:
    """Split ``ticks`` into accepted and rejected.

    Parameters
    ----------
    ticks
        A TICK_DTYPE array.
    last_ts
        The latest accepted ts of the stream before this batch (None at start).

    Returns
    -------
    mask, counts, last_ts
        ``mask`` is True for accepted ticks; ``counts`` maps each reason of
        :data:`REASONS` to its number of rejected ticks (first failing reason
        wins); ``last_ts`` is the carry for the next batch.

    One pass in C++ (native/kernels.hpp) over the strided fields.
    """
    ok, counts, last_ts, _ = _native.validate_ticks(ticks, last_ts)
    return ok, dict(zip(REASONS, counts, strict=True)), last_ts


def accept(ticks: np.ndarray, last_ts: int | None) -> tuple[np.ndarray, dict[str, int], int | None]:
    """:func:`validate` and keep the accepted ticks, as the engine needs them
    (:func:`as_quotes`): (accepted ticks, counts by reason, last_ts)."""
    ok, counts, last_ts, to_fix = _native.validate_ticks(ticks, last_ts)
    good = ticks if len(ticks) == int(np.count_nonzero(ok)) else ticks[ok]
    if to_fix:
        good = as_quotes(good)
    return good, dict(zip(REASONS, counts, strict=True)), last_ts


#: Displayed size of a quote whose size the feed does not give.
UNKNOWN_SIZE = 1e12


def as_quotes(ticks: np.ndarray) -> np.ndarray:
    """Accepted ticks as the engine needs them: a trade-only tick becomes a
    quote at the trade price with the trade's size (0 if unknown) on both
    sides; a quote without sizes shows :data:`UNKNOWN_SIZE`. The input itself
    when nothing changes (no copy)."""
    bid, ask = ticks["bid"], ticks["ask"]
    with np.errstate(invalid="ignore"):
        trade_only = ~(np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0))
        unsized = ~trade_only & (np.isnan(ticks["bid_size"]) | np.isnan(ticks["ask_size"]))
    if not (trade_only.any() or unsized.any()):
        return ticks
    out = ticks.copy()
    for f in ("bid_size", "ask_size"):
        col = out[f]
        col[unsized & np.isnan(col)] = UNKNOWN_SIZE
    last = out["last"][trade_only]
    size = np.nan_to_num(out["last_size"][trade_only], nan=0.0)
    out["bid"][trade_only] = last
    out["ask"][trade_only] = last
    out["bid_size"][trade_only] = size
    out["ask_size"][trade_only] = size
    return out
