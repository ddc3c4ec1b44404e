"""LOBSTER message and orderbook files: streaming readers and a verifier.

LOBSTER (https://lobsterdata.com) ships one day of one ticker as two CSV
files without header:

* message file, one event per line:
  ``time,type,order_id,size,price,direction`` where time is seconds after
  midnight (decimal, up to ns), price is dollars * 10000, direction +1 buy /
  -1 sell and type is 1 add, 2 partial cancel, 3 delete, 4 execution of a
  visible order, 5 execution of a hidden order (no book change), 6 cross
  trade (no book change), 7 trading halt (no book change);
* orderbook file of level N: ``ask_p1,ask_s1,bid_p1,bid_s1,...`` for N
  levels, row i being the book after message i. Missing levels carry dummy
  prices (+-9999999999) with size 0.

Both readers stream fixed-size chunks as numpy arrays (pandas' C parser;
files ending in .gz are decompressed on the fly),
so memory stays bounded, and every bad value is reported as
``file:line: field ...``.

:func:`verify` replays the messages through the native L3 book
(:class:`ticktape.native.OrderBook`) and compares its top levels with the
orderbook file after every message. How liquidity that was never announced
is handled (the *seed* choice):

* the book starts from orderbook row 0 minus message 0: every visible level
  of row 0 becomes one pseudo-order (id ``OrderBook.pseudo_id(side,
  price)``), and when message 0 is an add its quantity moves from the
  pseudo-order to the real order, so the replay starts at message 1;
* a cancel, delete or execution of an id that was never added (the order
  rested before the data began) is taken from the pseudo-order at its
  (side, price);
* a level that enters the visible window from beyond it (e.g. after the top
  level is deleted, level N+1 becomes level N) was never announced, so its
  quantity cannot be known. Such a row is counted *unverifiable* (not a
  mismatch) when every difference is at a price beyond the previous row's
  last visible level of a full window, and the book adopts the file's
  quantity there (pseudo-order), so later rows are verified again. Any
  other difference is a *mismatch*; the book is then also re-synchronised
  to the file so one error is reported once.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ticktape.errors import LobsterFormatError
from ticktape.native import OrderBook

MESSAGE_FIELDS = ("time", "type", "order_id", "size", "price", "direction")

#: One message: time in ns after midnight (exact to the ns of the file).
MESSAGE_DTYPE = np.dtype(
    [
        ("time_ns", "<i8"),
        ("type", "i1"),
        ("order_id", "<i8"),
        ("size", "<i8"),
        ("price", "<i8"),
        ("direction", "i1"),
    ]
)

ADD, CANCEL, DELETE, EXECUTE, EXECUTE_HIDDEN, CROSS, HALT = 1, 2, 3, 4, 5, 6, 7
DUMMY_PRICE = 9_999_999_999
CHUNK_ROWS = 1 << 18
_MAX_INT = 2**53  # integers are parsed as float64: exact below this


# --------------------------------------------------------------------------- reading


def _open_text(path: Path) -> IO[str]:
    """A text file, transparently gunzipped when it ends in .gz (as pandas reads it)."""
    if str(path).endswith(".gz"):
        return gzip.open(path, "rt", newline="")
    return open(path, newline="")


def _orderbook_fields(ncols: int) -> list[str]:
    names = ("ask_price", "ask_size", "bid_price", "bid_size")
    return [f"{names[c % 4]}_{c // 4 + 1}" for c in range(ncols)]


def _count_columns(path: Path) -> int:
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                return len(line.split(","))
            raise LobsterFormatError(f"{path}:{lineno}: empty line")
    raise LobsterFormatError(f"{path}: file is empty")


def _scan_for_error(path: Path, names: list[str]) -> LobsterFormatError:
    """Slow path after the fast parser failed: find the first bad line."""
    with _open_text(path) as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            if len(row) != len(names):
                return LobsterFormatError(
                    f"{path}:{lineno}: expected {len(names)} fields ({','.join(names[:6])}"
                    f"{',...' if len(names) > 6 else ''}), got {len(row)}"
                )
            for name, value in zip(names, row, strict=True):
                try:
                    float(value)
                except ValueError:
                    return LobsterFormatError(f"{path}:{lineno}: field {name} = {value!r} is not a number")
    return LobsterFormatError(f"{path}: could not be parsed")


def _chunks(path: Path, names: list[str], chunk_rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first line number, float64 block (rows, len(names))) per chunk."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    line = 1
    try:
        reader = pd.read_csv(
            path,
            header=None,
            names=names,
            dtype=np.float64,
            chunksize=chunk_rows,
            skip_blank_lines=False,
            engine="c",
        )
        with reader:
            for df in reader:
                block = df.to_numpy(dtype=np.float64, copy=False)
                yield line, block
                line += len(block)
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc, LobsterFormatError):
            raise
        raise _scan_for_error(path, names) from exc
    except pd.errors.EmptyDataError:
        return


def _check_width(path: Path, lineno: int, ncols: int) -> None:
    """A line the parser padded with NaN: name it if it has too few fields."""
    with _open_text(path) as f:
        line = next(itertools.islice(f, lineno - 1, None), "")
    got = len(line.rstrip("\r\n").split(",")) if line.strip() else 0
    if got != ncols:
        raise LobsterFormatError(f"{path}:{lineno}: expected {ncols} fields, got {got}")


def _check_finite_int(path: Path, line0: int, names: list[str], block: np.ndarray, cols: list[int]) -> None:
    sub = block[:, cols]
    bad = ~np.isfinite(sub) | (np.abs(sub) >= _MAX_INT) | (np.trunc(sub) != sub)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        v = float(sub[r, c])
        if math.isnan(v):
            _check_width(path, line0 + int(r), len(names))
        why = "is missing" if math.isnan(v) else "is not an integer" if math.isfinite(v) else "is not finite"
        if math.isfinite(v) and abs(v) >= _MAX_INT:
            why = "is out of range"
        raise LobsterFormatError(f"{path}:{line0 + r}: field {names[cols[c]]} = {v!r} {why}")


def read_messages(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Stream a message file as :data:`MESSAGE_DTYPE` arrays of up to ``chunk_rows``.

    Raises :class:`LobsterFormatError` naming ``file:line`` and the field for
    a malformed line, a missing or non-integer value, an unknown type, a
    direction other than +-1, a non-positive size or price on types 1-4, or
    a time that goes backwards.
    """
    path = Path(path)
    names = list(MESSAGE_FIELDS)
    last_t = -1
    for line0, block in _chunks(path, names, chunk_rows):
        if block.shape[1] != 6:  # pragma: no cover - the parser enforces the width
            raise LobsterFormatError(f"{path}:{line0}: expected 6 fields, got {block.shape[1]}")
        t = block[:, 0]
        bad = ~np.isfinite(t) | (t < 0) | (t >= 9.2e9)
        if bad.any():
            r = int(np.flatnonzero(bad)[0])
            if math.isnan(t[r]):
                _check_width(path, line0 + r, 6)
            raise LobsterFormatError(
                f"{path}:{line0 + r}: field time = {float(t[r])!r} is not a time in seconds after midnight"
            )
        _check_finite_int(path, line0, names, block, [1, 2, 3, 4, 5])
        out = np.empty(len(block), dtype=MESSAGE_DTYPE)
        out["time_ns"] = np.rint(t * 1e9).astype(np.int64)
        out["type"] = block[:, 1]
        out["order_id"] = block[:, 2]
        out["size"] = block[:, 3]
        out["price"] = block[:, 4]
        out["direction"] = block[:, 5]
        typ, size, price, d = block[:, 1], block[:, 3], block[:, 4], block[:, 5]
        checks = [
            (1, (typ < 1) | (typ > 7), "is not a LOBSTER event type (1-7)"),
            (5, (typ <= EXECUTE) & (d != 1) & (d != -1), "must be 1 (buy) or -1 (sell)"),
            (3, (typ <= EXECUTE) & (size <= 0), "must be > 0"),
            (4, (typ <= EXECUTE) & (price <= 0), "must be > 0"),
            (2, (typ <= EXECUTE) & (block[:, 2] < 0), "must be >= 0"),
        ]
        first = None
        for col, mask, why in checks:
            if mask.any():
                r = int(np.flatnonzero(mask)[0])
                if first is None or r < first[0]:
                    first = (r, col, why)
        if first is not None:
            r, col, why = first
            v = block[r, col]
            raise LobsterFormatError(f"{path}:{line0 + r}: field {names[col]} = {int(v)} {why}")
        ts = out["time_ns"]
        back = np.flatnonzero(np.diff(ts, prepend=last_t) < 0)
        if back.size:
            r = int(back[0])
            prev = last_t if r == 0 else int(ts[r - 1])
            raise LobsterFormatError(
                f"{path}:{line0 + r}: field time = {float(t[r])!r} goes backwards (previous line {prev / 1e9!r})"
            )
        if len(ts):
            last_t = int(ts[-1])
        yield out


def read_orderbook(path: str | Path, chunk_rows: int = CHUNK_ROWS) -> Iterator[np.ndarray]:
    """Stream an orderbook file as int64 arrays of shape (rows, 4 * levels).

    Size 0 marks a missing level (its dummy price is kept as in the file).
    Raises :class:`LobsterFormatError` naming ``file:line`` and the field.
    """
    path = Path(path)
    ncols = _count_columns(path)
    if ncols % 4:
        raise LobsterFormatError(
            f"{path}:1: {ncols} fields is not a multiple of 4 (ask_price,ask_size,bid_price,bid_size)"
        )
    names = _orderbook_fields(ncols)
    for line0, block in _chunks(path, names, chunk_rows):
        _check_finite_int(path, line0, names, block, list(range(ncols)))
        neg = block[:, 1::2] < 0
        if neg.any():
            r, c = np.argwhere(neg)[0]
            col = 2 * c + 1
            raise LobsterFormatError(
                f"{path}:{line0 + r}: field {names[col]} = {int(block[r, col])} must be >= 0"
            )
        yield block.astype(np.int64)


def orderbook_levels(path: str | Path) -> int:
    """Number of levels of an orderbook file (from its first line)."""
    path = Path(path)
    ncols = _count_columns(path)
    if ncols % 4:
        raise LobsterFormatError(f"{path}:1: {ncols} fields is not a multiple of 4")
    return ncols // 4


def load_messages(path: str | Path) -> np.ndarray:
    """The whole message file as one :data:`MESSAGE_DTYPE` array."""
    parts = list(read_messages(path))
    return np.concatenate(parts) if parts else np.empty(0, MESSAGE_DTYPE)


def load_orderbook(path: str | Path) -> np.ndarray:
    """The whole orderbook file as one int64 array (rows, 4 * levels)."""
    parts = list(read_orderbook(path))
    if not parts:
        return np.empty((0, 4 * orderbook_levels(path)), np.int64)
    return np.concatenate(parts)


def to_l3(messages: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(kind, order_id, side, price, qty) columns for :meth:`OrderBook.replay_check`.

    kind is :class:`ticktape.native.L3Kind` (1 add, 2 reduce, 3 delete,
    4 execute) and 0 for types 5-7, which do not change the visible book.
    """
    typ = messages["type"]
    kind = np.where(typ <= EXECUTE, typ, 0).astype(np.int8)
    return (  # aligned copies: fields of the packed MESSAGE_DTYPE are not
        kind,
        messages["order_id"].astype(np.int64),
        messages["direction"].astype(np.int8),
        messages["price"].astype(np.int64),
        messages["size"].astype(np.int64),
    )


# --------------------------------------------------------------------------- verify


@dataclass
class Mismatch:
    """One level where the replayed book differs from the orderbook file."""

    index: int  # message index (0-based); the line in both files is index + 1
    side: str  # "ask" or "bid"
    level: int  # 1-based level in the file's row (or in the replayed book)
    expected: tuple[int, int]  # (price, size); (dummy, 0) = no level
    got: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "line": self.index + 1,
            "side": self.side,
            "level": self.level,
            "expected": list(self.expected),
            "got": list(self.got),
        }


@dataclass
class VerifyReport:
    """Counts of :func:`verify`; exact + unverifiable + mismatched = messages - seeded."""

    messages: int = 0
    levels: int = 0
    file_levels: int = 0
    seeded: int = 0
    exact: int = 0
    unverifiable: int = 0
    mismatched: int = 0
    shortfall: int = 0  # shares cancelled/executed that the book did not hold
    first_mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.mismatched == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "levels": self.levels,
            "file_levels": self.file_levels,
            "seeded": self.seeded,
            "exact": self.exact,
            "unverifiable": self.unverifiable,
            "mismatched": self.mismatched,
            "shortfall": self.shortfall,
            "first_mismatches": [m.to_dict() for m in self.first_mismatches],
        }


def _side_levels(row: np.ndarray | list[int], side: int) -> list[tuple[int, int]]:
    r = row.tolist() if isinstance(row, np.ndarray) else row
    off = 0 if side < 0 else 2
    return [(a, b) for a, b in zip(r[off::4], r[off + 1 :: 4], strict=True) if b > 0]


class _Verifier:
    def __init__(self, levels: int, file_levels: int, max_mismatches: int) -> None:
        self.book = OrderBook()
        self.pseudo_id = OrderBook.pseudo_id
        self.report = VerifyReport(levels=levels, file_levels=file_levels)
        self.max_mismatches = max_mismatches
        self.prev_row: np.ndarray | None = None

    # -- book surgery
    def _set_level(self, side: int, price: int, target: int) -> None:
        book = self.book
        at = book.orders(side, price)
        pid = self.pseudo_id(side, price)
        pseudo = int(at[at[:, 0] == pid, 2].sum())
        known = int(at[:, 2].sum()) - pseudo
        if target >= known:
            if pseudo:
                book.cancel(pid)
            if target > known:
                book.add(pid, side, price, target - known)
        else:
            for oid in at[:, 0]:
                book.cancel(int(oid))
            if target > 0:
                book.add(pid, side, price, target)

    def seed(self, row: np.ndarray, msg: np.void) -> None:
        for side in (-1, 1):
            for p, q in _side_levels(row, side):
                self.book.add(self.pseudo_id(side, p), side, p, q)
        if int(msg["type"]) == ADD:
            side, p, q = int(msg["direction"]), int(msg["price"]), int(msg["size"])
            pid = self.pseudo_id(side, p)
            have = self.book.order(pid)
            if have is not None:
                self.book.cancel(pid, min(q, have[2]))
            self.book.add(int(msg["order_id"]), side, p, q)
        self.report.seeded = 1
        self.prev_row = row

    # -- one row whose top levels differ
    def _our_levels(self, side: int, worst: int | None, n_min: int) -> list[tuple[int, int]]:
        n = n_min + 8
        while True:
            got = self.book.depth(side, n)
            done = len(got) < n or (
                worst is not None and (got[-1, 0] > worst if side < 0 else got[-1, 0] < worst)
            )
            if done:
                out = [(p, q) for p, q in got.tolist()]
                if worst is not None:
                    out = [(p, q) for p, q in out if (p <= worst if side < 0 else p >= worst)]
                return out
            n *= 2

    def differing_row(self, i: int, row: np.ndarray, msg: np.void) -> None:
        rep = self.report
        file_levels = rep.file_levels
        in_scope: list[tuple[bool, Mismatch]] = []  # (explainable, where)
        fixes: list[tuple[int, int, int]] = []
        prev = self.prev_row.tolist() if self.prev_row is not None else None
        cur = row.tolist()
        m_type, m_side, m_price = int(msg["type"]), int(msg["direction"]), int(msg["price"])
        for side in (-1, 1):
            exp = _side_levels(cur, side)
            full_cur = len(exp) == file_levels
            ours = self._our_levels(side, exp[-1][0] if full_cur else None, len(exp))
            e_map, g_map = dict(exp), dict(ours)
            if e_map == g_map:
                continue
            prev_lv = _side_levels(prev, side) if prev is not None else []
            full_prev = len(prev_lv) == file_levels
            worst_prev = prev_lv[-1][0] if full_prev else None
            e_pos = {p: k for k, (p, _) in enumerate(exp, 1)}
            g_pos = {p: k for k, (p, _) in enumerate(ours, 1)}
            name = "ask" if side < 0 else "bid"
            touched = m_type <= EXECUTE and m_side == side
            for p in sorted(set(e_map) | set(g_map), key=lambda x: x * -side):
                e, g = e_map.get(p, 0), g_map.get(p, 0)
                if e == g:
                    continue
                fixes.append((side, p, e))
                level = e_pos.get(p) or g_pos[p]
                if level > rep.levels:
                    continue
                beyond = worst_prev is not None and (p > worst_prev if side < 0 else p < worst_prev)
                explainable = beyond and not (touched and m_price == p)
                where = Mismatch(
                    i,
                    name,
                    level,
                    (p, e) if e else (DUMMY_PRICE * -side, 0),
                    (p, g) if g else (DUMMY_PRICE * -side, 0),
                )
                in_scope.append((explainable, where))
        if not in_scope:
            rep.exact += 1
        elif all(ok for ok, _ in in_scope):
            rep.unverifiable += 1
        else:
            rep.mismatched += 1
            for ok, where in in_scope:
                if not ok and len(rep.first_mismatches) < self.max_mismatches:
                    rep.first_mismatches.append(where)
        for side, p, e in fixes:
            self._set_level(side, p, e)

    def run_chunk(self, msgs: np.ndarray, rows: np.ndarray, base: int) -> None:
        rep = self.report
        kind, oid, side, price, qty = to_l3(msgs)
        rows = np.ascontiguousarray(rows)
        start = 0
        if self.prev_row is None:
            self.seed(rows[0], msgs[0])
            start = 1
        n = len(msgs)
        while start < n:
            stop, short = self.book.replay_check(kind, oid, side, price, qty, rows, start)
            rep.shortfall += short
            rep.exact += stop - start
            if stop >= n:
                break
            self.prev_row = rows[stop - 1] if stop > 0 else self.prev_row
            self.differing_row(base + stop, rows[stop], msgs[stop])
            start = stop + 1
        self.prev_row = rows[n - 1]


def verify(
    message_path: str | Path,
    orderbook_path: str | Path,
    levels: int | None = None,
    max_mismatches: int = 10,
    chunk_rows: int = CHUNK_ROWS,
) -> VerifyReport:
    """Replay a LOBSTER message file through the native book and check it
    against the orderbook file after every message (see the module docs).

    ``levels`` (default: all levels of the orderbook file) is how many top
    levels are compared; the book is re-synchronised to all the file's
    levels either way.
    """
    file_levels = orderbook_levels(orderbook_path)
    if levels is None:
        levels = file_levels
    if not 1 <= levels <= file_levels:
        raise ValueError(f"levels must be in 1..{file_levels} (the orderbook file's levels), got {levels}")
    v = _Verifier(levels, file_levels, max_mismatches)
    base = 0
    msg_iter = read_messages(message_path, chunk_rows)
    book_iter = read_orderbook(orderbook_path, chunk_rows)
    for msgs, rows in itertools.zip_longest(msg_iter, book_iter):
        if msgs is None or rows is None or len(msgs) != len(rows):
            n_m = base + (0 if msgs is None else len(msgs))
            n_b = base + (0 if rows is None else len(rows))
            short = message_path if n_m < n_b else orderbook_path
            raise LobsterFormatError(
                f"{short}:{min(n_m, n_b) + 1}: file ends here, but the message file and the"
                " orderbook file must have one line per message each"
            )
        if not len(msgs):
            continue
        v.run_chunk(msgs, rows, base)
        base += len(msgs)
    v.report.messages = base
    return v.report
