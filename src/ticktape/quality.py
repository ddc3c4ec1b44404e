"""Tick validation: every tick is either processed or counted as rejected.

Rejection reasons (stored per run):

``bad_price``
    bid or ask not finite or not positive.
``crossed``
    bid > ask.
``bad_size``
    a size that is negative or not finite.
``out_of_order``
    ts earlier than a previously accepted tick of the same stream.
"""

from __future__ import annotations

import numpy as np

REASONS = ("bad_price", "crossed", "bad_size", "out_of_order")
_NO_TS = np.iinfo(np.int64).min


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
    """
    bid, ask = ticks["bid"], ticks["ask"]
    with np.errstate(invalid="ignore"):
        bad_price = ~(np.isfinite(bid) & np.isfinite(ask) & (bid > 0) & (ask > 0))
        crossed = ~bad_price & (bid > ask)
        sizes_ok = np.ones(len(ticks), dtype=bool)
        for f in ("bid_size", "ask_size"):
            v = ticks[f]
            sizes_ok &= np.isfinite(v) & (v >= 0)
    bad_size = ~bad_price & ~crossed & ~sizes_ok
    ok = ~(bad_price | crossed | bad_size)
    ts = ticks["ts"]
    prior = np.where(ok, ts, _NO_TS)
    running = np.maximum.accumulate(prior) if len(ts) else prior
    before = np.concatenate(([_NO_TS if last_ts is None else last_ts], running[:-1]))
    if last_ts is not None:
        before = np.maximum(before, last_ts)
    out_of_order = ok & (ts < before)
    ok &= ~out_of_order
    counts = {
        "bad_price": int(bad_price.sum()),
        "crossed": int(crossed.sum()),
        "bad_size": int(bad_size.sum()),
        "out_of_order": int(out_of_order.sum()),
    }
    if ok.any():
        newest = int(ts[ok].max())
        last_ts = newest if last_ts is None else max(last_ts, newest)
    return ok, counts, last_ts
