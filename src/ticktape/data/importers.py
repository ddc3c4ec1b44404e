"""Streaming importers: market data files -> validated tick batches -> the store.

Every format is parsed in blocks of lines (constant memory whatever the file
size) into columns, then one validator checks each row and either accepts it
or counts it as rejected with a reason (:data:`REASONS`), writing it with its
line number to a rejects file. ``strict=True`` turns the first bad row into
an :class:`ImportFailed` naming ``file:line`` and the field.

Formats (``FORMATS``): ``csv`` (generic, with a column mapping), ``dukascopy``
(Dukascopy / Tickstory tick CSV), ``truefx``, ``tardis`` (trades),
``binance-ws`` (``recv_ns {json}`` capture: bookTicker and trade -> ticks,
depthUpdate -> book events), ``bars`` (OHLCV -> 4 trade ticks per bar),
``parquet``.

Ticks get ``seq`` = their index among the accepted ticks of the same symbol
and microsecond, counted across the whole file, so re-importing a file
stores nothing new (the store skips existing ``(symbol, ts, seq)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import io
import json
import re
import threading
import zlib
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ticktape import store
from ticktape.data.convention import BAR_COLUMNS, TICK_COLUMNS, TIME_ALIASES, TimeParser, cut, norm, pick
from ticktape.data.readers import _batches
from ticktape.errors import ImportFailed
from ticktape.model.batch import BOOK_EVENT_DTYPE, TICK_DTYPE

__all__ = [
    "FORMATS",
    "REASONS",
    "ImportFailed",
    "ImportReport",
    "Importer",
    "SeqCounter",
    "TickBatch",
    "bar_ticks",
    "import_to_store",
    "read_binance",
]

#: Why a row was rejected.
REASONS = (
    "malformed",
    "bad_timestamp",
    "non_positive_price",
    "crossed_quote",
    "out_of_order",
    "duplicate",
    "unknown_column",
)

FORMATS = ("csv", "dukascopy", "truefx", "tardis", "binance-ws", "bars", "parquet")

_FLOATS = ("bid", "ask", "bid_size", "ask_size", "last", "last_size")
BLOCK = 200_000

T = TypeVar("T")


@dataclass
class TickBatch:
    """Accepted ticks of one symbol, in file order, with their ``seq``."""

    symbol: str
    ticks: np.ndarray
    seq: np.ndarray


@dataclass
class BookBatch:
    """Accepted order book events of one symbol (``store.BOOK_EVENT_DTYPE``)."""

    symbol: str
    events: np.ndarray
    seq: np.ndarray


@dataclass
class ImportReport:
    path: str
    fmt: str
    rows: int = 0
    accepted: int = 0
    stored: int = 0
    book_events: int = 0
    book_stored: int = 0
    rejects: Counter = field(default_factory=Counter)
    rejects_path: str | None = None
    symbols: dict[str, int] = field(default_factory=dict)
    first_ns: int | None = None
    last_ns: int | None = None
    bars_refreshed: bool = False  # TimescaleDB bar aggregates materialised for the imported range

    @property
    def rejected(self) -> int:
        return sum(self.rejects.values())


@dataclass
class _Chunk:
    """Parsed rows of one block: per-row columns plus their line numbers."""

    line: np.ndarray  # int64, 1-based line numbers (row index for parquet)
    ts: np.ndarray  # int64 ns; _NAT where the timestamp did not parse
    cols: dict[str, np.ndarray]  # the tick floats (NaN = missing)
    symbol: np.ndarray | str
    bad: dict[str, np.ndarray] = field(default_factory=dict)  # field -> rows whose value did not parse
    key: np.ndarray | None = None  # unique id per row (trade id) for duplicate detection
    raw: list[str] | _Lines | None = None  # the source lines, for the rejects file
    pre: list[tuple[int, str, str, str]] = field(
        default_factory=list
    )  # (line, reason, field, text) rejected while parsing


_NAT = np.iinfo(np.int64).min


@dataclass
class _SymbolState:
    last_ts: int = _NAT
    last_row: tuple | None = None
    last_us: int = _NAT
    us_count: int = 0


class SeqCounter:
    """``seq`` of consecutive batches of one symbol: the index of each tick
    among the ticks of the same microsecond, carried across batches (the
    convention of the importers, and of ``store.default_tick_seq`` within
    one batch). ``ts`` must not decrease."""

    def __init__(self) -> None:
        self._state = _SymbolState()

    def __call__(self, ts: np.ndarray) -> np.ndarray:
        if not len(ts):
            return np.empty(0, dtype=np.int64)
        return Importer._seq(self._state, np.asarray(ts, dtype=np.int64))


# --------------------------------------------------------------------------
# reading lines


#: Longest line read, in bytes without its newline: a longer line is
#: rejected (``malformed``, field ``line``) and skipped, never held whole.
MAX_LINE = 1 << 20
#: Most bytes of one block of lines: memory for reading a file is a few
#: blocks whatever its lines are like.
BLOCK_BYTES = 16 << 20


@dataclass
class _Block:
    """Whole lines of a file from line ``lineno`` on, each ending with a
    newline; or, with ``long`` set, the single line ``lineno``, which was
    longer than the limit (``long``: its first bytes; the rest was read
    past, not kept)."""

    lineno: int
    data: bytes
    long: bytes | None = None
    count: int = 0  #: the number of lines in ``data``

    def lines(self) -> list[str]:
        """The lines as text without their line ends."""
        return [x.rstrip("\r") for x in self.data.decode("utf-8", "replace").split("\n")[:-1]]


def _open_binary(path: Path) -> tuple[io.BufferedIOBase, Callable[[], int]]:
    """(stream of decompressed bytes, position in the file on disk)."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller through the returned stream
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw), raw.tell
    return raw, raw.tell


def _sniff(path: Path, head: bytes) -> None:
    """Refuse what is not a text file, from its first bytes."""
    if not head:
        raise ImportFailed(f"{path}: empty file")
    if head.startswith(b"PAR1"):
        raise ImportFailed(f"{path}: a Parquet file: import it with --format parquet")
    nul = head.find(b"\x00")
    if nul >= 0:
        line = head.count(b"\n", 0, nul) + 1
        raise ImportFailed(f"{path}: not a text file (a NUL byte in line {line})")


def _byte_blocks(
    path: Path, block: int, on_progress: Callable[[int], None] | None, max_line: int = MAX_LINE
) -> Iterator[_Block]:
    """The file as :class:`_Block` s: blocks of whole lines (at most
    ``block`` lines and about ``block`` times the average line length of
    the first 64 KiB, at most :data:`BLOCK_BYTES`; a last line without a
    newline gets one), and a block of its own for each line longer than
    ``max_line`` bytes.

    Memory is one buffer of the block size plus ``max_line``, whatever the
    file holds: a line is never read whole unless it fits the limit. No
    Python object per line: lines are found with numpy.
    """
    try:
        stream, pos = _open_binary(path)
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from None
    raw = getattr(stream, "fileobj", None)
    try:
        yield from _cut_blocks(path, stream, pos, block, on_progress, max_line)
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, or a broken gzip stream
        raise ImportFailed(f"{path}: cannot read: {exc}") from None
    finally:
        stream.close()
        if raw is not None:
            raw.close()


def _cut_blocks(
    path: Path,
    stream: io.BufferedIOBase,
    pos: Callable[[], int],
    block: int,
    on_progress: Callable[[int], None] | None,
    max_line: int,
) -> Iterator[_Block]:
    head = stream.read(1 << 16)
    _sniff(path, head)
    per_line = len(head) / max(1, head.count(b"\n"))
    want = max(1, min(int(block * per_line), BLOCK_BYTES))  # bytes of whole lines per block
    room = want + max_line + 1  # the buffer: a block, plus the longest line allowed
    buf = bytearray(max(room, len(head)) + 1)  # (+1: a newline for a last line without one)
    size = len(head)
    buf[:size] = head
    eof = False
    lineno = 1
    while True:
        while not eof and size < room:
            with memoryview(buf) as view, view[size:room] as free:
                got = stream.readinto(free)
            eof = not got
            size += got or 0
        if not size:
            return
        if eof and buf[size - 1] != 10:  # a last line without its newline
            buf[size] = 10
            size += 1
        first = buf.find(b"\n", 0, min(size, max_line + 1))
        if first < 0:  # the next line is too long: skip it
            end = buf.find(b"\n", 0, size)
            yield _Block(lineno, b"", bytes(buf[: min(256, size if end < 0 else end)]))
            lineno += 1
            if end >= 0:
                cut = end + 1
            else:  # (not even its end in the buffer: read on to it)
                cut, size = 0, 0
                while not eof:
                    with memoryview(buf) as view, view[:room] as free:
                        got = stream.readinto(free)
                    eof = not got
                    end = buf.find(b"\n", 0, got or 0)
                    if end >= 0:
                        cut, size = end + 1, got
                        break
        else:  # whole lines up to about `want` bytes and `block` lines, at least one, none too long
            cut = buf.rfind(b"\n", 0, min(want, size)) + 1 or first + 1
            k = int(np.count_nonzero(np.frombuffer(buf, np.uint8, cut) == 10))
            if k > block or _may_hold_a_long_line(buf, cut, max_line):  # (then line by line)
                ends = np.flatnonzero(np.frombuffer(buf, np.uint8, cut) == 10)
                k = min(len(ends), block)
                longer = np.flatnonzero(np.diff(ends[:k], prepend=-1) - 1 > max_line)
                if len(longer):
                    k = int(longer[0])
                cut = int(ends[k - 1]) + 1
                del ends
            with memoryview(buf) as view, view[:cut] as lines:
                data = bytes(lines)
            yield _Block(lineno, data, count=k)
            lineno += k
        rest = size - cut
        buf[:rest] = buf[cut:size]
        size = rest
        if on_progress is not None:
            on_progress(pos())


def _may_hold_a_long_line(buf: bytearray, end: int, max_line: int) -> bool:
    """False when no line of ``buf[:end]`` is longer than ``max_line``: every
    aligned window of about half that length holds a newline (a longer line
    would cover one whole). True may be wrong (a line near the limit)."""
    w = (max_line + 2) // 2
    return any(buf.find(b"\n", s, s + w) < 0 for s in range(0, end - w + 1, w))


class _Lines:
    """The lines of a block of bytes as text, each decoded only when asked
    for (the rejects file needs the few rejected ones)."""

    def __init__(self, data: bytes | bytearray) -> None:
        self._data = data
        self._ends: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._line_ends())

    def _line_ends(self) -> np.ndarray:
        if self._ends is None:
            self._ends = np.flatnonzero(np.frombuffer(self._data, dtype=np.uint8) == 10)
        return self._ends

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, i: int | np.integer) -> str:
        ends = self._line_ends()
        start = int(ends[i - 1]) + 1 if i > 0 else 0
        return self._data[start : int(ends[i])].decode("utf-8", "replace").rstrip("\r\n")


# --------------------------------------------------------------------------
# CSV-like formats


@dataclass
class CsvLayout:
    """How to read a delimited file: which source column feeds which field."""

    mapping: dict[str, str]  # field (ts, symbol, bid, ...) -> source column name
    times: TimeParser = field(default_factory=TimeParser)
    delimiter: str = ","
    key: str | None = None  # source column with a unique row id (trade id)
    strip_time: str | None = None  # regex removed from the time text first
    fix_time: tuple[str, str] | None = None  # (regex, replacement) applied to the time text next


_MAPPABLE = ("ts", "symbol", *_FLOATS)


def _dukascopy_layout(header: list[str]) -> CsvLayout:
    time = pick(header, TIME_ALIASES)
    bid, ask = pick(header, TICK_COLUMNS["bid"]), pick(header, TICK_COLUMNS["ask"])
    if time is None or bid is None or ask is None:
        raise ImportFailed(f"dukascopy: need time, bid and ask columns, found {header}")
    mapping = {"ts": time, "bid": bid, "ask": ask}
    for name in ("bid_size", "ask_size"):
        src = pick(header, TICK_COLUMNS[name])
        if src:
            mapping[name] = src
    return CsvLayout(
        mapping=mapping,
        strip_time=r"\s*GMT[+-]\d{4}$",
        # Tickstory writes ``20140102 00:00:00:385`` (a colon before the milliseconds)
        fix_time=(r"^(\d{8} \d\d:\d\d:\d\d):(\d+)$", r"\1.\2"),
    )


class Importer:
    """Parse and validate one file; iterate to get :class:`TickBatch` / :class:`BookBatch`.

    Parameters
    ----------
    path, fmt
        The file and one of :data:`FORMATS`.
    symbol
        The symbol of every row when the file has none (default: the file
        name's first word, upper case).
    mapping
        ``csv`` only: ``{"ts": "Time", "bid": "Bid", ...}`` (default: the
        columns named as :data:`ticktape.data.convention.TICK_COLUMNS` says).
    time_format
        ``csv`` only: ``auto`` (ISO 8601 or epoch numbers, told by the first
        value: :class:`ticktape.data.convention.TimeParser`), ``iso``,
        ``s``/``ms``/``us``/``ns`` or a ``strftime`` pattern.
    bar_seconds
        ``bars`` only: bar length (default: the smallest spacing of the first
        bars).
    strict
        Raise :class:`ImportFailed` at the first rejected row.
    rejects_path
        CSV file of rejected rows (``line,reason,field,text``); None: none.
    max_line
        Longest line read (bytes): a longer one is rejected as ``malformed``
        (field ``line``) without being held in memory.

    Raises
    ------
    ImportFailed
        While iterating: a file that is not text (or not Parquet for
        ``parquet``), has no usable header, or holds no data rows; under
        ``strict``, the first rejected row.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: str,
        *,
        symbol: str | None = None,
        mapping: dict[str, str] | None = None,
        time_format: str = "auto",
        bar_seconds: float | None = None,
        strict: bool = False,
        rejects_path: str | Path | None = None,
        block: int = BLOCK,
        on_progress: Callable[[int], None] | None = None,
        max_line: int = MAX_LINE,
    ) -> None:
        if fmt not in FORMATS:
            raise ImportFailed(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        self.path = Path(path)
        if not self.path.is_file():
            raise ImportFailed(f"{self.path}: no such file")
        self.fmt = fmt
        self.symbol = symbol or re.split(r"[^A-Za-z0-9]", self.path.name)[0].upper() or "TICKS"
        self.mapping = mapping
        try:
            TimeParser(time_format)
        except ValueError as exc:
            raise ImportFailed(f"--time-format: {exc}") from None
        self.time_format = time_format
        self.max_line = max_line
        self.bar_seconds = bar_seconds
        self.strict = strict
        self.block = block
        self.on_progress = on_progress
        self.report = ImportReport(path=str(self.path), fmt=fmt)
        self._states: dict[str, _SymbolState] = {}
        self._book_seq: dict[str, int] = {}
        self._rejects_path = Path(rejects_path) if rejects_path else None
        self._rejects_file: Any = None
        self._rejects_writer: Any = None
        if self._rejects_path:
            self.report.rejects_path = str(self._rejects_path)

    # -- rejects ------------------------------------------------------------

    def _reject(self, line: int, reason: str, fld: str, text: str = "") -> None:
        self.report.rejects[reason] += 1
        if self.strict:
            raise ImportFailed(
                f"{self.path}:{line}: {cut(fld, 60)}: {reason.replace('_', ' ')}: {cut(text, 200)}"
            )
        if self._rejects_path is not None:
            if self._rejects_writer is None:
                self._rejects_file = open(self._rejects_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
                self._rejects_writer = csv.writer(self._rejects_file)
                self._rejects_writer.writerow(["line", "reason", "field", "text"])
            self._rejects_writer.writerow([line, reason, fld, text])

    def close(self) -> None:
        if self._rejects_file is not None:
            self._rejects_file.close()
            self._rejects_file = None

    # -- iteration ------------------------------------------------------------

    def __iter__(self) -> Generator[TickBatch | BookBatch, None, None]:
        try:
            chunks: Iterable[_Chunk | BookBatch]
            if self.fmt == "binance-ws":
                chunks = self._binance()
            elif self.fmt == "parquet":
                chunks = self._parquet()
            elif self.fmt == "bars":
                chunks = self._bars()
            else:
                chunks = self._csv()
            for chunk in chunks:
                if isinstance(chunk, BookBatch):
                    self.report.book_events += len(chunk.events)
                    yield chunk
                    continue
                yield from self._validate(chunk)
            if not self.report.rows and not self.report.book_events:
                raise ImportFailed(f"{self.path}: no data rows (after the header)")
        finally:
            self.close()

    def run(self) -> ImportReport:
        """Parse the whole file without storing (validation only)."""
        for _ in self:
            pass
        return self.report

    # -- validation -------------------------------------------------------------

    def _validate(self, chunk: _Chunk) -> Iterator[TickBatch]:
        n = len(chunk.line)
        self.report.rows += n + len(chunk.pre)
        if n == 0:
            for rej in chunk.pre:
                self._reject(*rej)
            return
        ok = np.ones(n, dtype=bool)
        reason = np.full(n, "", dtype=object)
        fld = np.full(n, "", dtype=object)

        def mark(mask: np.ndarray, why: str, name: str) -> None:
            new = mask & ok
            reason[new] = why
            fld[new] = name
            ok[new] = False

        for name, mask in chunk.bad.items():
            mark(mask, "bad_timestamp" if name == "ts" else "malformed", name)
        mark(chunk.ts == _NAT, "bad_timestamp", "ts")
        c = chunk.cols
        for name in _FLOATS:  # inf, 1e999: not a value to store
            mark(np.isinf(c[name]), "malformed", name)
        for name in ("bid", "ask", "last"):
            mark(c[name] <= 0, "non_positive_price", name)
        for name in ("bid_size", "ask_size", "last_size"):
            mark(c[name] < 0, "malformed", name)
        mark(c["bid"] > c["ask"], "crossed_quote", "bid")
        mark(np.isnan(c["bid"]) & np.isnan(c["ask"]) & np.isnan(c["last"]), "malformed", "price")
        symbols = chunk.symbol
        if isinstance(symbols, str):
            groups: list[tuple[str, np.ndarray]] = [(symbols, np.arange(n))]
        else:
            uniq, inv = np.unique(symbols.astype(str), return_inverse=True)
            groups = [(str(s), np.flatnonzero(inv == i)) for i, s in enumerate(uniq)]
        accepted: list[tuple[str, np.ndarray, np.ndarray]] = []
        for sym, rows in groups:
            state = self._states.setdefault(sym, _SymbolState())
            cand = rows[ok[rows]]
            if len(cand):
                ts = chunk.ts[cand]
                prev_max = np.maximum.accumulate(np.concatenate([[state.last_ts], ts]))[:-1]
                late = ts < prev_max
                mask = np.zeros(n, dtype=bool)
                mask[cand[late]] = True
                mark(mask, "out_of_order", "ts")
                cand = cand[~late]
            if len(cand):
                # duplicate: the same key (trade id), or the same time and
                # values, as the previous accepted row of the symbol
                ts_i = chunk.ts[cand]
                if chunk.key is not None:
                    keys = chunk.key[cand]
                    prev_keys = np.empty(len(keys), dtype=object)
                    prev_keys[0] = state.last_row[0] if state.last_row else None
                    prev_keys[1:] = keys[:-1]
                    dup = keys == prev_keys
                else:
                    # only rows with the previous row's time can be duplicates
                    first = state.last_row if state.last_row else (np.nan,) * len(_FLOATS)
                    prev_ts = np.concatenate([[state.last_ts], ts_i[:-1]])
                    eq = np.flatnonzero(ts_i == prev_ts)
                    dup = np.zeros(len(cand), dtype=bool)
                    if len(eq):
                        same = np.ones(len(eq), dtype=bool)
                        for j, k in enumerate(_FLOATS):
                            cur = c[k][cand[eq]]
                            prv = np.where(eq > 0, c[k][cand[np.maximum(eq - 1, 0)]], first[j])
                            same &= (cur == prv) | (np.isnan(cur) & np.isnan(prv))
                        dup[eq[same]] = True
                mask = np.zeros(n, dtype=bool)
                mask[cand[dup]] = True
                mark(mask, "duplicate", "row")
                keep = cand[~dup]
                if len(keep):
                    last = keep[-1]
                    if chunk.key is not None:
                        state.last_row = (chunk.key[last],)
                    else:
                        state.last_row = tuple(float(c[k][last]) for k in _FLOATS)
                    state.last_ts = max(state.last_ts, int(chunk.ts[keep].max()))
                    accepted.append((sym, keep, self._seq(state, chunk.ts[keep])))
        rejected = list(chunk.pre)
        for i in np.flatnonzero(~ok):
            text = chunk.raw[i] if chunk.raw is not None else ""
            rejected.append((int(chunk.line[i]), str(reason[i]), str(fld[i]), text))
        rejected.sort(key=lambda r: r[0])  # file order, so strict stops at the first bad line
        for rej in rejected:
            self._reject(*rej)
        for sym, keep, seq in accepted:
            ticks = np.empty(len(keep), dtype=TICK_DTYPE)
            ticks["ts"] = chunk.ts[keep]
            for k in _FLOATS:
                ticks[k] = c[k][keep]
            self.report.accepted += len(keep)
            self.report.symbols[sym] = self.report.symbols.get(sym, 0) + len(keep)
            lo, hi = int(ticks["ts"][0]), int(ticks["ts"][-1])
            self.report.first_ns = lo if self.report.first_ns is None else min(self.report.first_ns, lo)
            self.report.last_ns = hi if self.report.last_ns is None else max(self.report.last_ns, hi)
            yield TickBatch(sym, ticks, seq)

    @staticmethod
    def _seq(state: _SymbolState, ts: np.ndarray) -> np.ndarray:
        """Index among the ticks of the same microsecond, carried across blocks
        (``ts`` is non-decreasing)."""
        us = ts // 1000
        n = len(us)
        idx = np.arange(n, dtype=np.int64)
        start = np.ones(n, dtype=bool)
        start[1:] = us[1:] != us[:-1]
        seq = idx - np.maximum.accumulate(np.where(start, idx, 0))
        if us[0] == state.last_us:
            seq[us == us[0]] += state.us_count
        state.last_us = int(us[-1])
        state.us_count = int(seq[-1]) + 1
        return seq

    # -- formats ----------------------------------------------------------------

    def _long_line(self, block: _Block) -> _Chunk:
        """The reject of a line longer than the limit (no rows)."""
        assert block.long is not None
        text = block.long.decode("utf-8", "replace")
        why = f"line longer than {self.max_line:,} bytes"
        return _Chunk(
            line=np.empty(0, np.int64),
            ts=np.empty(0, np.int64),
            cols={k: np.empty(0) for k in _FLOATS},
            symbol=self.symbol,
            pre=[(block.lineno, "malformed", why, text)],
        )

    def _header(self, block: _Block) -> tuple[list[str], _Block]:
        """The column names on the first line, and the rest of the block."""
        if block.long is not None:
            raise ImportFailed(f"{self.path}:1: the header is longer than {self.max_line:,} bytes")
        cut = block.data.index(b"\n") + 1
        head = block.data[:cut].decode("utf-8", "replace").rstrip("\r\n")
        try:
            header = [h.strip() for h in next(csv.reader([head.lstrip("\ufeff")]), [])]
        except csv.Error as exc:  # (a column name over 128 KiB)
            raise ImportFailed(f"{self.path}:1: the header is no CSV header: {exc}") from None
        if not any(header):
            raise ImportFailed(f"{self.path}:1: no header (the first line is blank)")
        return header, _Block(block.lineno + 1, block.data[cut:], count=block.count - 1)

    def _csv(self) -> Iterator[_Chunk]:
        layout: CsvLayout | None = None
        header: list[str] = []
        for block in _byte_blocks(self.path, self.block, self.on_progress, self.max_line):
            if layout is None:
                header, block = self._header(block)
                layout = self._layout(header)
                if not block.data:
                    continue
            elif block.long is not None:
                yield self._long_line(block)
                continue
            chunk = self._parse_arrow(block, header, layout)
            if chunk is None:  # something to reject or repair: line by line
                lines = block.lines()
                no = np.arange(block.lineno, block.lineno + len(lines))
                chunk = self._parse_csv(lines, no, header, layout)
            yield chunk

    def _layout(self, header: list[str]) -> CsvLayout:
        if self.fmt == "truefx":
            if [norm(h) for h in header[:3]] != ["timestamp", "bid", "ask"]:
                # raw TrueFX downloads have no header: SYMBOL,yyyymmdd HH:MM:SS.fff,bid,ask
                raise ImportFailed(
                    f"{self.path}: truefx: expected a timestamp,bid,ask header, got {cut(str(header), 200)}"
                )
            return CsvLayout(mapping={"ts": header[0], "bid": header[1], "ask": header[2]})
        if self.fmt == "tardis":
            need = {"symbol", "timestamp", "id", "price", "amount"}
            if not need <= set(header):
                raise ImportFailed(
                    f"{self.path}: tardis trades: need columns {sorted(need)}, got {cut(str(header), 200)}"
                )
            return CsvLayout(
                mapping={"symbol": "symbol", "ts": "timestamp", "last": "price", "last_size": "amount"},
                times=TimeParser("us"),
                key="id",
            )
        if self.fmt == "dukascopy":
            try:
                return _dukascopy_layout(header)
            except ImportFailed as exc:
                raise ImportFailed(f"{self.path}: {cut(str(exc), 300)}") from None
        mapping = dict(self.mapping or {})
        if not mapping:  # the columns named by the convention
            for name in _MAPPABLE:
                src = pick(header, TICK_COLUMNS[name])
                if src is not None and src not in mapping.values():
                    mapping[name] = src
        unknown = [k for k in mapping if k not in _MAPPABLE]
        if unknown:
            raise ImportFailed(f"--map: unknown field(s) {unknown}; fields are {', '.join(_MAPPABLE)}")
        missing = [v for v in mapping.values() if v not in header]
        if missing:
            raise ImportFailed(
                f"{self.path}:1: column(s) {missing} not in the header {cut(str(header), 200)}"
            )
        if "ts" not in mapping:
            raise ImportFailed(
                f"{self.path}: no time column (ts, timestamp, time, datetime or date; "
                "or map one with --map ts=COLUMN)"
            )
        if len(set(header)) != len(header):
            dup = next(h for h in header if header.count(h) > 1)
            raise ImportFailed(f"{self.path}:1: the header repeats column {cut(repr(dup), 60)}")
        for name in header:  # header columns that feed nothing
            if name not in mapping.values():
                self._reject(1, "unknown_column", name, ",".join(header))
        return CsvLayout(mapping=mapping, times=TimeParser(self.time_format))

    def _parse_arrow(self, block: _Block, header: list[str], layout: CsvLayout) -> _Chunk | None:
        """A block of whole lines in which every row parses: typed columns
        from pyarrow's CSV reader, with no Python object per
        line (about 5x faster than splitting lines in Python). None when any
        row has the wrong field count, a number that does not parse, or a
        blank line: the caller then parses the block line by line, which
        names the bad field of each rejected row. Times are read as text and
        parsed by the layout's :class:`TimeParser`, as on that path."""
        data, lineno = block.data, block.lineno
        if data[:1] in (b"\n", b"\r"):
            return None  # blank lines are skipped (not counted) line by line
        types: dict[str, Any] = {}
        for name in _FLOATS:
            src = layout.mapping.get(name)
            if src is not None:
                types[src] = pa.float64()
        ts_src = layout.mapping["ts"]
        # integers read as such once they are known to be the times (else text: TimeParser's to read)
        whole = layout.times.fmt in ("us", "ns") and not (layout.strip_time or layout.fix_time)
        types[ts_src] = pa.int64() if whole else pa.string()
        for extra in (layout.mapping.get("symbol"), layout.key):
            if extra is not None:
                types[extra] = pa.string()
        try:
            table = pacsv.read_csv(
                pa.py_buffer(data),
                # (one Arrow chunk for the whole block: its columns convert to numpy without a copy)
                read_options=pacsv.ReadOptions(
                    column_names=header, block_size=max(1 << 22, len(data) + 1), use_threads=False
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter=layout.delimiter,
                    quote_char=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=False,
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    include_columns=list(types),
                    null_values=[""],
                    strings_can_be_null=False,
                ),
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
            return None
        n = table.num_rows
        if n != block.count:  # (a carriage return inside a line ends a row for pyarrow)
            return None
        ts_col = table.column(ts_src).combine_chunks()
        # A blank line is a row of nulls here (``ignore_empty_lines=False``),
        # or of empty strings for text times: the line-by-line path skips it.
        if ts_col.null_count or (not whole and pc.any(pc.equal(ts_col, "")).as_py()):
            return None
        cols: dict[str, np.ndarray] = {}
        for name in _FLOATS:
            src = layout.mapping.get(name)
            col = table.column(src) if src is not None else None
            if col is None or col.null_count == n:
                cols[name] = np.full(n, np.nan)
            else:
                cols[name] = (pc.fill_null(col, np.nan) if col.null_count else col).to_numpy()
        ts = self._times(ts_col, layout)
        bad: dict[str, np.ndarray] = {}
        symbol: np.ndarray | str = self.symbol
        sym_src = layout.mapping.get("symbol")
        if sym_src:
            names = pc.utf8_trim_whitespace(table.column(sym_src)).to_numpy(zero_copy_only=False)
            symbol = names = names.astype(object, copy=False)
            empty = names == ""
            if empty.any():
                bad["symbol"] = empty
        key = table.column(layout.key).to_numpy(zero_copy_only=False) if layout.key else None
        line = np.arange(lineno, lineno + n, dtype=np.int64)
        return _Chunk(line=line, ts=ts, cols=cols, symbol=symbol, bad=bad, key=key, raw=_Lines(data))

    def _times(self, times: Any, layout: CsvLayout) -> np.ndarray:
        """Time text -> int64 ns (``_NAT`` where it does not parse), after
        the layout's own repairs (Dukascopy's suffix, Tickstory's colon)."""
        text = times if isinstance(times, pa.Array) else pa.array(times, type=pa.string(), from_pandas=True)
        if layout.strip_time or layout.fix_time:
            text = pc.utf8_trim_whitespace(text)
            if layout.strip_time:
                text = pc.replace_substring_regex(text, layout.strip_time, "")
            if layout.fix_time:
                text = pc.replace_substring_regex(text, *layout.fix_time)
        ns, ok = layout.times(text)
        return np.where(ok, ns, _NAT)

    def _parse_fast(
        self, kept: list[str], no: np.ndarray, header: list[str], layout: CsvLayout, pre: list
    ) -> _Chunk | None:
        """A block whose numbers all parse: typed columns straight from the C
        parser (about 3x faster). None when any value does not parse (the
        caller then takes the per-field path that names the bad field)."""
        dtypes: dict[str, Any] = {}
        for name in _FLOATS:
            src = layout.mapping.get(name)
            if src is not None:
                dtypes[src] = np.float64
        ts_src = layout.mapping["ts"]
        dtypes[ts_src] = str
        for extra in (layout.mapping.get("symbol"), layout.key):
            if extra is not None:
                dtypes[extra] = str
        try:
            frame = pd.read_csv(
                io.StringIO("\n".join(kept)),
                header=None,
                names=header,
                usecols=list(dtypes),
                dtype=dtypes,
                keep_default_na=False,
                na_values=[""],
                quoting=csv.QUOTE_NONE,
                engine="c",
            )
        except (ValueError, OverflowError):
            return None
        n = len(frame)
        if n != len(kept):
            return None
        cols = {}
        for name in _FLOATS:
            src = layout.mapping.get(name)
            cols[name] = frame[src].to_numpy(dtype=np.float64) if src is not None else np.full(n, np.nan)
        ts = self._times(frame[ts_src].fillna("").to_numpy(dtype=object), layout)
        sym_src = layout.mapping.get("symbol")
        symbol: np.ndarray | str = self.symbol
        bad: dict[str, np.ndarray] = {}
        if sym_src:
            symbol = frame[sym_src].fillna("").str.strip().to_numpy(dtype=object)
            empty = symbol == ""
            if empty.any():
                bad["symbol"] = empty
        key = frame[layout.key].to_numpy(dtype=object) if layout.key else None
        return _Chunk(line=no, ts=ts, cols=cols, symbol=symbol, bad=bad, key=key, raw=kept, pre=pre)

    def _parse_csv(
        self, lines: list[str], lines_no: np.ndarray, header: list[str], layout: CsvLayout
    ) -> _Chunk:
        ncol = len(header)
        counts = np.fromiter((x.count(",") for x in lines), dtype=np.int64, count=len(lines))
        blank = np.fromiter((not x.strip() for x in lines), dtype=bool, count=len(lines))
        # a carriage return or NUL inside a line would end a row for the parser below
        odd = np.fromiter(("\r" in x or "\x00" in x for x in lines), dtype=bool, count=len(lines))
        good = (counts == ncol - 1) & ~blank & ~odd
        pre = [
            (
                int(lines_no[i]),
                "malformed",
                "a carriage return or NUL inside the line"
                if odd[i]
                else f"{counts[i] + 1} fields, expected {ncol}",
                lines[i],
            )
            for i in np.flatnonzero(~good & ~blank)
        ]
        idx = np.flatnonzero(good)
        kept = [lines[i] for i in idx]
        no = lines_no[idx]
        n = len(kept)
        fast = self._parse_fast(kept, no, header, layout, pre) if n else None
        if fast is not None:
            return fast
        if n:
            frame = pd.read_csv(
                io.StringIO("\n".join(kept)),
                header=None,
                names=header,
                dtype=str,
                keep_default_na=False,
                quoting=csv.QUOTE_NONE,
                engine="c",
            )
        else:
            frame = pd.DataFrame({h: pd.Series([], dtype=str) for h in header})
        bad: dict[str, np.ndarray] = {}
        cols: dict[str, np.ndarray] = {}
        for name in _FLOATS:
            src = layout.mapping.get(name)
            if src is None:
                cols[name] = np.full(n, np.nan)
                continue
            text = frame[src].str.strip()
            num = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
            bad[src] = (
                np.isnan(num) & (text != "").to_numpy() & ~text.str.lower().isin(["nan", "null"]).to_numpy()
            )
            cols[name] = num
        ts = self._times(frame[layout.mapping["ts"]].to_numpy(dtype=object), layout)
        sym_src = layout.mapping.get("symbol")
        symbol: np.ndarray | str = (
            frame[sym_src].str.strip().to_numpy(dtype=object) if sym_src else self.symbol
        )
        if not isinstance(symbol, str):
            empty = symbol == ""
            if empty.any():
                bad["symbol"] = empty
        key = frame[layout.key].to_numpy(dtype=object) if layout.key else None
        return _Chunk(line=no, ts=ts, cols=cols, symbol=symbol, bad=bad, key=key, raw=kept, pre=pre)

    def _bars(self) -> Iterator[_Chunk]:
        header: list[str] = []
        layout: CsvLayout | None = None
        bar_ns: int | None = int(self.bar_seconds * 1e9) if self.bar_seconds else None
        for block in _byte_blocks(self.path, self.block, self.on_progress, self.max_line):
            if layout is None:
                header, block = self._header(block)
                layout = self._bar_layout(header)
            elif block.long is not None:
                yield self._long_line(block)
                continue
            lineno, lines = block.lineno, block.lines()
            if not lines:
                continue
            chunk = self._parse_csv(
                lines, np.arange(lineno, lineno + len(lines), dtype=np.int64), header, layout
            )
            o, h, lo, c = (chunk.cols[k] for k in ("bid", "ask", "bid_size", "ask_size"))
            vol = chunk.cols["last_size"]
            if bar_ns is None:
                valid = np.sort(chunk.ts[chunk.ts != _NAT])
                diffs = np.diff(valid[:200])
                diffs = diffs[diffs > 0]
                bar_ns = int(diffs.min()) if len(diffs) else 86_400 * 10**9
            yield self._expand_bars(chunk, o, h, lo, c, vol, bar_ns)

    def _bar_layout(self, header: list[str]) -> CsvLayout:
        """OHLC(V) columns in the tick fields' places (open=bid, high=ask, low=bid_size, close=ask_size)."""
        cols = {k: pick(header, BAR_COLUMNS[k]) for k in BAR_COLUMNS}
        if any(cols[k] is None for k in ("open", "high", "low", "close")):
            raise ImportFailed(
                f"{self.path}: bars need Open, High, Low, Close columns, got {cut(str(header), 200)}"
            )
        if cols["ts"] is None:
            raise ImportFailed(f"{self.path}: bars need a time column (date, time, datetime or timestamp)")
        mapping = {"ts": cols["ts"], "bid": cols["open"], "ask": cols["high"]}
        mapping |= {"bid_size": cols["low"], "ask_size": cols["close"]}
        if cols["volume"] is not None:
            mapping["last_size"] = cols["volume"]
        return CsvLayout(mapping=mapping)

    def _expand_bars(self, chunk: _Chunk, o: Any, h: Any, lo: Any, c: Any, vol: Any, bar_ns: int) -> _Chunk:
        n = len(chunk.line)
        bad = dict(chunk.bad)
        inconsistent = (h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo)
        bad["high/low"] = inconsistent & ~np.isnan(h) & ~np.isnan(lo)
        prices, offsets = bar_ticks(o, h, lo, c)
        ts = np.repeat(chunk.ts, 4)
        ts = np.where(ts == _NAT, _NAT, ts + np.tile(offsets, n) * (bar_ns // 4))
        size = np.where(np.isnan(vol), np.nan, vol / 4)
        cols = {k: np.full(4 * n, np.nan) for k in _FLOATS}
        cols["last"] = prices.reshape(-1)
        cols["last_size"] = np.repeat(size, 4)
        return _Chunk(
            line=np.repeat(chunk.line, 4),
            ts=ts,
            cols=cols,
            symbol=self.symbol,
            bad={k: np.repeat(v, 4) for k, v in bad.items()},
            raw=[x for x in (chunk.raw or []) for _ in range(4)],
            pre=chunk.pre,
        )

    def _binance(self) -> Iterator[_Chunk | BookBatch]:
        last_sym = self.symbol
        for block in _byte_blocks(self.path, min(self.block, 50_000), self.on_progress, self.max_line):
            if block.long is not None:
                yield self._long_line(block)
                continue
            lineno, lines = block.lineno, block.lines()
            rows: list[tuple] = []
            book: list[tuple] = []
            for i, line in enumerate(lines):
                no = lineno + i
                if not line.strip():
                    continue
                recv, _, payload = line.partition(" ")
                try:
                    recv_ns = int(recv)
                    msg = json.loads(payload)
                    data = msg.get("data", msg)
                    event = data.get("e") or (
                        "bookTicker" if "b" in data and "a" in data and "u" in data else None
                    )
                except (ValueError, AttributeError):
                    self.report.rows += 1
                    self._reject(no, "malformed", "json", line)
                    continue
                sym = str(data.get("s") or last_sym)  # snapshots carry no symbol
                last_sym = sym
                try:
                    if event == "bookTicker":
                        rows.append(
                            (
                                no,
                                recv_ns,
                                sym,
                                float(data["b"]),
                                float(data["a"]),
                                float(data["B"]),
                                float(data["A"]),
                                np.nan,
                                np.nan,
                                line,
                            )
                        )
                    elif event == "trade":
                        rows.append(
                            (
                                no,
                                recv_ns,
                                sym,
                                np.nan,
                                np.nan,
                                np.nan,
                                np.nan,
                                float(data["p"]),
                                float(data["q"]),
                                line,
                            )
                        )
                    elif event == "depthUpdate":
                        for side, key in ((1, "b"), (-1, "a")):
                            for price, size in data[key]:
                                book.append((sym, recv_ns, 10, side, float(price), float(size), -1, 0))
                    elif event is None and "lastUpdateId" in data and "bids" in data:
                        # a REST depth snapshot: clear the book, then its levels
                        book.append((sym, recv_ns, 11, 0, np.nan, np.nan, -1, 0))
                        for side, key in ((1, "bids"), (-1, "asks")):
                            for depth, (price, size) in enumerate(data[key], start=1):
                                book.append((sym, recv_ns, 10, side, float(price), float(size), -1, depth))
                    else:
                        self.report.rows += 1
                        self._reject(no, "unknown_column", f"event {event}", line)
                except (KeyError, TypeError, ValueError) as exc:
                    self.report.rows += 1
                    self._reject(no, "malformed", str(exc), line)
            if book:
                by_sym: dict[str, list[tuple]] = {}
                for b in book:
                    by_sym.setdefault(b[0], []).append(b[1:])
                for sym, evs in by_sym.items():
                    arr = np.array(evs, dtype=BOOK_EVENT_DTYPE)
                    start = self._book_seq.get(sym, 0)
                    self._book_seq[sym] = start + len(arr)
                    yield BookBatch(sym, arr, np.arange(start, start + len(arr), dtype=np.int64))
            if rows:
                n = len(rows)
                cols = {
                    k: np.fromiter((r[3 + j] for r in rows), np.float64, n) for j, k in enumerate(_FLOATS)
                }
                yield _Chunk(
                    line=np.fromiter((r[0] for r in rows), np.int64, n),
                    ts=np.fromiter((r[1] for r in rows), np.int64, n),
                    cols=cols,
                    symbol=np.array([r[2] for r in rows], dtype=object),
                    raw=[r[9] for r in rows],
                )

    def _parquet(self) -> Iterator[_Chunk]:
        try:
            pf = pq.ParquetFile(self.path)
            yield from self._parquet_rows(pf)
        except (pa.ArrowException, OSError) as exc:  # not Parquet, or a broken page
            raise ImportFailed(f"{self.path}: cannot read as Parquet: {_first_line(exc)}") from None

    def _parquet_rows(self, pf: pq.ParquetFile) -> Iterator[_Chunk]:
        names = pf.schema_arrow.names
        if "ts" not in names:
            raise ImportFailed(f"{self.path}: parquet needs a ts column (int64 ns or timestamp), has {names}")
        for name in names:
            if name not in ("ts", "symbol", "seq", *_FLOATS):
                self._reject(0, "unknown_column", name, "")
        times = TimeParser()
        row = 0
        for rb in _batches(pf, self.block):
            n = rb.num_rows
            ns, ok = times(rb.column("ts"))
            cols = {}
            for k in _FLOATS:
                if k in names:
                    cols[k] = rb.column(k).cast(pa.float64()).to_numpy(zero_copy_only=False)
                else:
                    cols[k] = np.full(n, np.nan)
            symbol: np.ndarray | str = (
                rb.column("symbol").to_numpy(zero_copy_only=False).astype(object)
                if "symbol" in names
                else self.symbol
            )
            line = np.arange(row + 1, row + n + 1)
            yield _Chunk(line=line, ts=np.where(ok, ns, _NAT), cols=cols, symbol=symbol)
            row += n
            if self.on_progress is not None:
                self.on_progress(int(self.path.stat().st_size * row / max(1, pf.metadata.num_rows)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return cut(text.splitlines()[0], 200) if text else type(exc).__name__


def read_binance(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, int]]:
    """A Binance websocket capture in memory: its ticks (``TICK_DTYPE``) and
    book events (``BOOK_EVENT_DTYPE``) per symbol, and the rows rejected by
    reason (an in-process backtest reads a capture so)."""
    ticks: dict[str, list[np.ndarray]] = {}
    events: dict[str, list[np.ndarray]] = {}
    importer = Importer(path, "binance-ws")
    for b in importer:
        if isinstance(b, BookBatch):
            events.setdefault(b.symbol, []).append(b.events)
        else:
            ticks.setdefault(b.symbol, []).append(b.ticks)
    return (
        {k: np.concatenate(v) for k, v in ticks.items()},
        {k: np.concatenate(v) for k, v in events.items()},
        {k: v for k, v in importer.report.rejects.items() if v},
    )


def bar_ticks(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Four prices per bar (n, 4): open, then high and low in the order they
    most likely came, then close; and the tick offsets within the bar (0..3).

    Up bars (close >= open) most likely went down first (O, L, H, C), down
    bars up first (O, H, L, C): the close sits nearer the extreme reached
    last. A flat bar visits the extreme nearer the open first.
    """
    up = c > o
    flat = c == o
    low_first = up | (flat & (o - lo <= h - o))
    second = np.where(low_first, lo, h)
    third = np.where(low_first, h, lo)
    return np.column_stack([o, second, third, c]), np.arange(4, dtype=np.int64)


#: Longest time span of one write: on TimescaleDB a transaction locks every
#: chunk it touches (1 day each for ticks), and 20 years of daily bars in one
#: COPY ran out of shared memory (max_locks_per_transaction).
MAX_WRITE_SPAN_NS = 32 * 86_400 * 10**9


#: Imports spanning longer than this leave the bar aggregates to the refresh
#: policies (TimescaleDB): refreshing 20 years of ORCL daily bars (5,290
#: one-day chunks) at once ran for minutes and took GBs in the server.
MAX_REFRESH_SPAN_NS = 31 * 86_400 * 10**9


def _spans(ts: np.ndarray) -> list[tuple[int, int]]:
    """[lo, hi) row ranges of ``ts`` (non-decreasing), each within MAX_WRITE_SPAN_NS."""
    if not len(ts) or int(ts[-1]) - int(ts[0]) <= MAX_WRITE_SPAN_NS:
        return [(0, len(ts))]
    out = []
    lo = 0
    while lo < len(ts):
        hi = int(np.searchsorted(ts, int(ts[lo]) + MAX_WRITE_SPAN_NS, side="right"))
        out.append((lo, hi))
        lo = hi
    return out


async def import_to_store(
    conn: Any,
    importer: Importer | Sequence[Importer],
    *,
    refresh: bool = True,
    prefetch: int = 2,
    second: Any = None,
) -> ImportReport:
    """Write everything ``importer`` accepts into the store; returns its report.

    Parameters
    ----------
    conn
        An asyncpg connection (not inside a transaction when ``refresh``).
    importer
        The file to import, or several files imported in turn as one import
        (see Notes); batches are written in file order.
    refresh
        Materialise the TimescaleDB bar aggregates of the imported range
        (imports spanning at most :data:`MAX_REFRESH_SPAN_NS`).
    prefetch
        Batches parsed ahead in a worker thread while the server ingests the
        current one (memory: about ``prefetch + 2`` blocks); 0 parses and
        writes in turn in the calling thread.
    second
        Another connection to the same database for the
        :class:`ticktape.store.TickWriter`: a finished month's key is built
        on one connection while the next month is loaded on the other (not
        used by a strict import: one transaction is on one connection).

    Notes
    -----
    **Strict imports are one transaction.** When the importers are
    ``strict``, everything is written in one transaction on ``conn``, committed
    only after the last file was read to its end: a bad row anywhere (the
    :class:`ImportFailed` naming ``file:line``) or any other error stores
    nothing, whatever was loaded before it. Months not stored yet are still
    loaded in bulk (each in a savepoint). The transaction holds its locks to
    the end: other writers creating partitions wait for it, and on
    TimescaleDB an import touching thousands of chunks at once may need a
    larger ``max_locks_per_transaction``. Without ``strict``, a month is
    committed as soon as it is loaded and rejected rows are counted.

    Parsing (pyarrow, numpy, pandas: they release the GIL) overlaps with the
    server's COPY, so the import runs at the slower of the two rather than
    their sum. Ticks go through a :class:`ticktape.store.TickWriter`: the
    months of a symbol not stored yet are loaded in bulk, one transaction
    per (symbol, month), and ``report.stored`` is final when this returns.
    The session's ``synchronous_commit`` is ``off`` for the import
    (restored afterwards): a commit returns before its WAL is flushed, so
    an operating-system crash can lose the last moments of committed
    batches, never corrupt them; importing the file again stores exactly
    what is missing. ``fsync`` is not touched.

    Several files share one writer: a month that runs on from one file into
    the next (daily files) is loaded in bulk once, and with ``second`` the
    key of the month a file ends is built while the next file loads. The
    report returned is then their sum (``path``: the files joined by ", ");
    each importer's own report has its rows, rejects and book events, but
    not ``stored``: ticks of a month that spans files are stored together.
    Each file keeps its own ``seq`` (as when imported alone), so importing
    the files one by one or together stores the same rows.
    """
    importers = [importer] if isinstance(importer, Importer) else list(importer)
    if not importers:
        raise ValueError("import_to_store needs at least one importer")
    atomic = any(imp.strict for imp in importers)
    if atomic:
        second = None
    writer = store.TickWriter(conn, second=second, atomic=atomic)

    async def write(imp: Importer, batch: TickBatch | BookBatch) -> None:
        if isinstance(batch, TickBatch):
            for lo, hi in _spans(batch.ticks["ts"]):
                await writer.write(batch.symbol, batch.ticks[lo:hi], seq=batch.seq[lo:hi])
        else:
            await writer.close()  # (its open month commits before the book events' transaction)
            imp.report.book_stored += await store.write_book_events(
                conn, batch.symbol, batch.events, batch.seq
            )

    async with store.connection.commits_not_waiting(conn, second):
        tx = conn.transaction() if atomic else None
        if tx is not None:
            await tx.start()
        try:
            if prefetch <= 0:
                for imp, batch in _in_turn(importers):
                    await write(imp, batch)
            else:
                async with contextlib.aclosing(_parsed_ahead(_in_turn(importers), prefetch)) as batches:
                    async for imp, batch in batches:
                        await write(imp, batch)
            await writer.close()
            if tx is not None:
                await tx.commit()
        except BaseException:
            await writer.abort()
            if tx is not None:
                with contextlib.suppress(Exception):  # (the error that got us here matters more)
                    await tx.rollback()
            raise
    rep = combined_report(importers)
    rep.stored = writer.stored
    rep.bars_refreshed = False
    if (
        refresh
        and rep.first_ns is not None
        and rep.last_ns is not None
        and rep.last_ns - rep.first_ns <= MAX_REFRESH_SPAN_NS
    ):
        rep.bars_refreshed = (
            await store.refresh_bars(conn, rep.first_ns - 3_600 * 10**9, rep.last_ns + 3_600 * 10**9) > 0
        )
    return rep


def _in_turn(importers: Sequence[Importer]) -> Iterator[tuple[Importer, TickBatch | BookBatch]]:
    """(importer, batch) of each importer in turn. Closing this generator
    closes the importer being read (and its rejects file)."""
    for imp in importers:
        with contextlib.closing(iter(imp)) as batches:
            for batch in batches:
                yield imp, batch


def combined_report(importers: Sequence[Importer]) -> ImportReport:
    """The report of one importer; of several, a new one with their counts
    added and their time ranges spanned (``path``: theirs joined by ", ")."""
    if len(importers) == 1:
        return importers[0].report
    reports = [i.report for i in importers]
    out = ImportReport(path=", ".join(r.path for r in reports), fmt=reports[0].fmt)
    for r in reports:
        out.rows += r.rows
        out.accepted += r.accepted
        out.book_events += r.book_events
        out.book_stored += r.book_stored
        out.rejects.update(r.rejects)
        for sym, n in r.symbols.items():
            out.symbols[sym] = out.symbols.get(sym, 0) + n
        if r.first_ns is not None:
            out.first_ns = r.first_ns if out.first_ns is None else min(out.first_ns, r.first_ns)
        if r.last_ns is not None:
            out.last_ns = r.last_ns if out.last_ns is None else max(out.last_ns, r.last_ns)
    return out


_END = object()


async def _parsed_ahead(batches: Iterable[T], depth: int) -> AsyncGenerator[T, None]:
    """The items of ``batches``, made in a worker thread at most ``depth``
    items ahead of the consumer. An error of the iterable (an importer's
    ``ImportFailed`` under ``strict``) is raised here after the items
    before it. Closing this generator early (use ``contextlib.aclosing``)
    stops and joins the thread, which closes the iterable (an importer
    closes its rejects file)."""
    loop = asyncio.get_running_loop()
    slots = threading.Semaphore(depth)
    ready: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def hand_over(item: Any) -> bool:
        while not slots.acquire(timeout=0.1):
            if stop.is_set():
                return False
        if stop.is_set():
            return False
        loop.call_soon_threadsafe(ready.put_nowait, item)
        return True

    def produce() -> None:
        items = iter(batches)
        try:
            for item in items:
                if not hand_over(item):
                    return
            hand_over(_END)
        except BaseException as exc:  # delivered to the consumer, raised there
            hand_over(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="ticktape-import", daemon=True)
    worker.start()
    try:
        while True:
            item = await ready.get()
            slots.release()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        await asyncio.to_thread(worker.join)
