"""The one column and time convention of ticktape's file and frame readers.

``ticktape backtest FILE`` (:mod:`ticktape.backtest.run`), ``ticktape data
import`` (:mod:`ticktape.data.importers`) and ``ticktape data generate
--from-bars`` (:mod:`ticktape.data.synth`) find their columns and read their
times here, so one file gives the same timestamps whichever command reads it.

Columns
    A column is found by its name compared normalised (:func:`norm`: lower
    case, letters and digits only, so ``Bid price``, ``bid_price`` and
    ``BidPrice`` are one name). Each field has aliases, the first one
    present wins: :data:`TICK_COLUMNS`, :data:`BAR_COLUMNS`,
    :data:`LEVEL_COLUMNS`.
Times
    :class:`TimeParser`, in int64 ns since the epoch, UTC. ISO 8601 text: an
    offset (``Z``, ``+01:00``) is converted to UTC, a time without one is
    UTC. Numbers are times since the epoch; the magnitude of the first one
    tells the unit (below 1e11 seconds, below 1e14 milliseconds, below 1e17
    microseconds, else nanoseconds: every date from 1973 to 2286 reads right
    in every unit) unless the unit is given; decimals are exact to the
    nanosecond. A few layouts that are not ISO but unambiguous are known too
    (:data:`TEXT_LAYOUTS`: Dukascopy's ``02.01.2024 09:00:00.123``,
    ``20240102 09:00:00``, MetaTrader's ``2024.01.02 09:00``). Which of
    these a column holds is told once, by its first value that is a time of
    any of these kinds, for the whole file. A time outside what int64 ns
    holds (before 1677 or after 2262) is bad, never wrapped round.
Line numbers
    Messages name file lines, 1-based with the header as line 1 (Parquet
    files: rows from 1); rows of a DataFrame are counted from 0.
Values in messages
    Quoted and cut to :data:`SHOWN` characters (:func:`shown`).

Examples
--------
>>> parse = TimeParser()
>>> ns, ok = parse(["2024-01-02T10:00:00+01:00", "2024-01-02 09:00:00.5", "x"])
>>> ns[ok].tolist(), ok.tolist(), parse.fmt
([1704186000000000000, 1704186000500000000], [True, True, False], 'iso')
>>> TimeParser()(["1704186000.25"])[0].tolist(), TimeParser()([1704186000250])[0].tolist()
([1704186000250000000], [1704186000250000000])
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ticktape.errors import DataError
from ticktape.model.batch import LEVEL_DTYPE, TICK_DTYPE

__all__ = [
    "BAR_COLUMNS",
    "EPOCH_UNITS",
    "LEVEL_COLUMNS",
    "OHLCV_DTYPE",
    "TEXT_LAYOUTS",
    "TICK_COLUMNS",
    "TIME_ALIASES",
    "Rows",
    "TimeParser",
    "at",
    "bars_from",
    "column_names",
    "cut",
    "frame_rows",
    "is_bars",
    "iter_rows",
    "levels_from",
    "norm",
    "pick",
    "read_rows",
    "shown",
    "ticks_from",
]

#: Normalised names of a time column, in order of preference (``""`` and
#: ``unnamed0``: the index column pandas writes).
TIME_ALIASES = ("ts", "tsns", "timestamp", "time", "datetime", "date", "gmttime", "localtime", "", "unnamed0")

#: Tick fields and the normalised column names that feed them.
TICK_COLUMNS: dict[str, tuple[str, ...]] = {
    "ts": TIME_ALIASES,
    "symbol": ("symbol",),
    "bid": ("bid", "bidprice"),
    "ask": ("ask", "askprice"),
    "bid_size": ("bidsize", "bidvolume", "bidqty"),
    "ask_size": ("asksize", "askvolume", "askqty"),
    "last": ("last", "price", "lastprice"),
    "last_size": ("lastsize", "size", "amount", "qty", "quantity", "volume"),
}

#: OHLC(V) bar fields and their column names.
BAR_COLUMNS: dict[str, tuple[str, ...]] = {
    "ts": TIME_ALIASES,
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume",),
}

#: L2 level update fields (``side``: +1/bid/buy or -1/ask/sell) and their column names.
LEVEL_COLUMNS: dict[str, tuple[str, ...]] = {
    "ts": TIME_ALIASES,
    "side": ("side",),
    "price": ("price",),
    "qty": ("qty", "size", "quantity"),
}

#: Bars as the readers give them: ``ts`` (the bar's open, int64 ns) and OHLCV.
OHLCV_DTYPE = np.dtype(
    [("ts", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"), ("volume", "<f8")]
)

#: ns per unit of an epoch time.
EPOCH_UNITS = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}

#: Text times that are not ISO 8601 but read without ambiguity (strftime patterns).
TEXT_LAYOUTS = (
    "%d.%m.%Y %H:%M:%S.%f",
    "%d.%m.%Y %H:%M:%S",
    "%Y%m%d %H:%M:%S.%f",
    "%Y%m%d %H:%M:%S",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
)

#: Longest value quoted in a message.
SHOWN = 60

_INT64_MAX = np.iinfo(np.int64).max
_NUMBER = re.compile(r"\s*[+-]?\d+(\.\d*)?\s*$")
_EPOCH = r"^\s*(?P<sign>[+-]?)(?P<int>\d{1,19})(?:\.(?P<frac>\d*))?\s*$"
_ISO_START = r"^\d{4}-\d\d-\d\d"  # (every ISO time pyarrow reads starts so)
_ZONED = r"(?:[Zz]|\d:\d\d(?::\d\d(?:\.\d*)?)?[+-]\d\d(?::?\d\d)?)$"
_UTC = pa.timestamp("ns", tz="UTC")
_NAIVE = pa.timestamp("ns")


def norm(name: Any) -> str:
    """A column name as compared: lower case, letters and digits only.

    >>> norm(" Bid price"), norm("bid_size"), norm("Unnamed: 0")
    ('bidprice', 'bidsize', 'unnamed0')
    """
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def pick(names: Sequence[Any], aliases: Sequence[str]) -> Any | None:
    """The first column of ``names`` whose normalised name is one of ``aliases``
    (in the order of ``aliases``); None when there is none."""
    by: dict[str, Any] = {}
    for name in names:
        by.setdefault(norm(name), name)
    return next((by[a] for a in aliases if a in by), None)


def is_bars(names: Sequence[Any]) -> bool:
    """True when ``names`` has open, high, low and close columns."""
    return all(pick(names, BAR_COLUMNS[k]) is not None for k in ("open", "high", "low", "close"))


def cut(text: str, limit: int = SHOWN) -> str:
    """``text`` cut to ``limit`` characters for a message.

    >>> cut("x" * 100, 10)
    'xxxxxxxxxx... (100 characters)'
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def shown(value: Any, limit: int = SHOWN) -> str:
    """A value quoted for a message (``repr``), text cut to ``limit`` characters.

    >>> shown("oops"), shown("x" * 100, 10)
    ("'oops'", "'xxxxxxxxxx...' (100 characters)")
    """
    if isinstance(value, bytes | bytearray):
        value = bytes(value[: 4 * limit]).decode("utf-8", "replace")
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}"[:-1] + f"...' ({len(value):,} characters)"
    return repr(value.item() if isinstance(value, np.generic) else value)


# --------------------------------------------------------------------------
# times


class TimeParser:
    """Times -> int64 ns since the epoch (UTC), by the convention above.

    Parameters
    ----------
    fmt
        ``auto`` (ISO 8601, a text layout of :data:`TEXT_LAYOUTS`, or epoch
        numbers, told by the first value that is one of them), ``iso``, ``s``/``ms``/``us``/``ns``
        (numbers since the epoch in that unit), or a ``strftime`` pattern.
        After the first call, :attr:`fmt` is what ``auto`` turned out to be.

    Calling it with a column (pyarrow array, numpy array, pandas Series or
    Index, or a sequence) returns ``(ns, ok)``: int64 ns, and False where a
    value is missing or not a time (its ``ns`` is then meaningless). One
    parser per file: the first time decides ``auto`` for the rest.
    """

    def __init__(self, fmt: str = "auto") -> None:
        if fmt not in ("auto", "iso", *EPOCH_UNITS) and "%" not in fmt:
            raise ValueError(f"time format {fmt!r}: expected auto, iso, s, ms, us, ns or a strftime pattern")
        if "%" in fmt:  # a pattern that cannot read its own output reads nothing ('%Q': no such directive)
            sample = datetime.datetime(2001, 2, 3, 4, 5, 6, 7000, tzinfo=datetime.UTC)
            try:
                datetime.datetime.strptime(sample.strftime(fmt), fmt)
            except ValueError as exc:
                raise ValueError(f"time format {fmt!r}: not a usable strftime pattern ({exc})") from None
        self.fmt = fmt

    def __call__(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        arr = _arrow(values)
        t = arr.type
        if pa.types.is_date(t):
            arr, t = arr.cast(pa.timestamp("s")), pa.timestamp("s")
        if pa.types.is_timestamp(t):
            ok = arr.is_valid().to_numpy(zero_copy_only=False)
            ns, fits = _scaled(_filled_int64(arr.cast(pa.int64())), ok, EPOCH_UNITS[t.unit])
            return ns, fits
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            return self._epoch_numbers(arr)
        return self._text(
            arr if pa.types.is_string(t) or pa.types.is_large_string(t) else arr.cast(pa.string())
        )

    def _text(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        n = len(arr)
        if self.fmt == "auto":
            kind = _first_kind(arr)
            if kind is None:  # (nothing like a time yet: the next values decide)
                return np.zeros(n, np.int64), np.zeros(n, bool)
            self.fmt = kind
        if self.fmt in EPOCH_UNITS:
            return _epoch_strings(arr, self.fmt)
        if self.fmt == "iso":
            return _iso(arr)
        return _strftime(arr, self.fmt)

    def _epoch_numbers(self, arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
        ok = arr.is_valid().to_numpy(zero_copy_only=False).copy()
        if pa.types.is_floating(arr.type):
            num = pc.fill_null(arr, np.nan).to_numpy(zero_copy_only=False).astype(np.float64)
            ok &= np.isfinite(num)
        else:
            num = _filled_int64(arr.cast(pa.int64()))
        unit = self._unit(num, ok)
        if unit is None:  # (numbers where text of a layout was asked for: no time)
            return np.zeros(len(num), np.int64), np.zeros(len(num), bool)
        scale = EPOCH_UNITS[unit]
        if num.dtype.kind == "f":
            whole = np.floor(np.where(ok, num, 0.0))
            ok &= np.abs(whole) < _INT64_MAX / scale - 1
            whole = np.where(ok, whole, 0.0)
            frac = np.round((np.where(ok, num, 0.0) - whole) * scale).astype(np.int64)
            return whole.astype(np.int64) * scale + frac, ok
        return _scaled(num, ok, scale)

    def _unit(self, num: np.ndarray, ok: np.ndarray) -> str | None:
        if self.fmt in EPOCH_UNITS:
            return self.fmt
        if self.fmt != "auto":
            return None
        first = np.flatnonzero(ok)
        if not len(first):
            return "ns"
        self.fmt = _unit_of(abs(num[first[0]].item()))
        return self.fmt


def _arrow(values: Any) -> pa.Array:
    """A pyarrow array of a column (pandas datetimes and strings included)."""
    if isinstance(values, pa.ChunkedArray | pa.Array):
        return values
    if isinstance(values, pd.Index | pd.Series):
        values = _arrow_of_pandas(values)
    elif isinstance(values, np.ndarray) and values.dtype.kind == "M":
        values = pa.array(values.astype("datetime64[ns]"))
    elif isinstance(values, np.ndarray) and values.dtype.kind in "US":
        values = pa.array(values.astype(str), type=pa.string())
    else:
        values = pa.array(values)
    return values


def _arrow_of_pandas(values: pd.Index | pd.Series) -> pa.Array:
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values.dtype):
        stamps = pd.DatetimeIndex(values)
        if stamps.tz is not None:
            stamps = stamps.tz_convert("UTC").tz_localize(None)
        ns = stamps.as_unit("ns").asi8
        return pa.array(ns, mask=np.asarray(stamps.isna()), type=pa.int64()).cast(_NAIVE)
    if values.dtype != object:
        return pa.array(values.to_numpy())
    missing = np.asarray(pd.isna(values))
    items = [v for v, m in zip(values.tolist(), missing.tolist(), strict=True) if not m]
    if items and all(isinstance(v, datetime.datetime | np.datetime64) for v in items[:1000]):
        return _arrow_of_pandas(pd.Series(pd.to_datetime(pd.Series(values), utc=True, errors="coerce")))
    text = [None if m else str(v) for v, m in zip(values.tolist(), missing.tolist(), strict=True)]
    return pa.array(text, type=pa.string())


def _filled_int64(arr: pa.Array) -> np.ndarray:
    if arr.null_count:
        arr = pc.fill_null(arr, 0)
    return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _scaled(v: np.ndarray, ok: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    ok = ok & (np.abs(v) <= _INT64_MAX // scale - 1)
    return np.where(ok, v, 0) * scale, ok


def _unit_of(magnitude: float) -> str:
    return "s" if magnitude < 10**11 else "ms" if magnitude < 10**14 else "us" if magnitude < 10**17 else "ns"


def _first_text(arr: pa.Array) -> str | None:
    """The first value (trimmed) that is not empty."""
    for chunk in (arr.slice(i, 256) for i in range(0, len(arr), 256)):
        for v in chunk.to_pylist():
            if v is not None and v.strip():
                return v.strip()
    return None


def _first_kind(arr: pa.Array, look: int = 1000) -> str | None:
    """What ``auto`` is for ``arr``: told by its first value that is a time
    of some kind (among the first ``look``); None if none is."""
    for chunk in (arr.slice(i, 256) for i in range(0, min(len(arr), look), 256)):
        for v in chunk.to_pylist():
            kind = _text_kind(v.strip()) if v is not None and v.strip() else None
            if kind is not None:
                return kind
    return None


def _text_kind(first: str) -> str | None:
    """What a text time like ``first`` is: an epoch unit, ``iso``, a layout, or None."""
    if _NUMBER.match(first):
        return _unit_of(abs(int(first.split(".", maxsplit=1)[0])))
    if re.match(_ISO_START, first):
        return "iso"
    for layout in TEXT_LAYOUTS:
        try:
            datetime.datetime.strptime(first, layout)
        except ValueError:
            continue
        return layout
    return None


def _epoch_strings(arr: pa.Array, unit: str) -> tuple[np.ndarray, np.ndarray]:
    """Decimal numbers since the epoch, exact to the ns (digits past the ns are dropped)."""
    scale = EPOCH_UNITS[unit]
    try:
        ints = pc.cast(arr, pa.int64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    else:
        return _scaled(_filled_int64(ints), ints.is_valid().to_numpy(zero_copy_only=False), scale)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    m = pc.extract_regex(arr, _EPOCH)
    ok = pc.fill_null(m.is_valid(), False).to_numpy(zero_copy_only=False).copy()
    digits = pc.fill_null(pc.struct_field(m, "int"), "0")
    # 19 digits may not fit int64: compare as text (equal lengths compare as numbers)
    fits = pc.or_(
        pc.less(pc.utf8_length(digits), 19), pc.less_equal(digits, pa.scalar(str(_INT64_MAX)))
    ).to_numpy(zero_copy_only=False)
    ok &= fits
    whole = _filled_int64(pc.cast(pc.if_else(pa.array(ok), digits, "0"), pa.int64()))
    frac = pc.fill_null(pc.struct_field(m, "frac"), "")
    frac9 = _filled_int64(pc.cast(pc.utf8_slice_codeunits(pc.utf8_rpad(frac, 9, "0"), 0, 9), pa.int64()))
    ns, ok = _scaled(whole, ok, scale)
    ns = ns + frac9 * scale // 10**9
    negative = pc.equal(pc.fill_null(pc.struct_field(m, "sign"), ""), "-").to_numpy(zero_copy_only=False)
    return np.where(negative, -ns, ns), ok


def _iso(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 text (pyarrow's parser): an offset converted to UTC, none = UTC."""
    n = len(arr)
    first = _first_text(arr) or ""
    typ = _UTC if re.search(_ZONED, first) else _NAIVE
    for trimmed in (False, True):  # the usual case: every time like the first (all with an offset, or none)
        if trimmed:  # (spaces around a time: trimmed, then the same)
            arr = pc.utf8_trim_whitespace(arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr)
        try:
            got = pc.cast(arr, typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return _filled_int64(got.cast(pa.int64())), got.is_valid().to_numpy(zero_copy_only=False)
    ns = np.zeros(n, np.int64)
    ok = np.zeros(n, bool)
    shaped = pc.fill_null(pc.match_substring_regex(arr, _ISO_START), False).to_numpy(zero_copy_only=False)
    zoned = pc.fill_null(pc.match_substring_regex(arr, _ZONED), False).to_numpy(zero_copy_only=False)
    for mask, typ in ((shaped & zoned, _UTC), (shaped & ~zoned, _NAIVE)):
        idx = np.flatnonzero(mask)
        if len(idx):
            _cast_into(arr.take(pa.array(idx)), typ, idx, ns, ok)
    return ns, ok


def _cast_into(values: pa.Array, typ: pa.DataType, idx: np.ndarray, ns: np.ndarray, ok: np.ndarray) -> None:
    """Cast ``values`` to ``typ`` into ``ns[idx]``; halves that fail are split
    until the values that do not parse are found (they stay not ok)."""
    spans = [(0, len(idx))]
    while spans:
        lo, hi = spans.pop()
        try:
            got = pc.cast(values.slice(lo, hi - lo), typ)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            if hi - lo > 1:
                mid = (lo + hi) // 2
                spans += [(mid, hi), (lo, mid)]
            continue
        part = idx[lo:hi]
        ns[part] = _filled_int64(got.cast(pa.int64()))
        ok[part] = got.is_valid().to_numpy(zero_copy_only=False)


def _strftime(arr: pa.Array, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    text = pd.Series(pc.utf8_trim_whitespace(arr).to_numpy(zero_copy_only=False), dtype=object)
    parsed = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
    ok = parsed.notna().to_numpy()
    ns = np.zeros(len(text), np.int64)
    ns[ok] = parsed[ok].to_numpy(dtype="datetime64[ns]").view(np.int64)
    return ns, ok


# --------------------------------------------------------------------------
# rows of a file or a frame


@dataclass
class Rows:
    """Columns of a file or a DataFrame as the readers take them.

    ``columns`` maps the source's column names to pyarrow arrays (numbers
    as float64 where the reader typed them). ``lines`` is each row's file
    line (None: rows of a frame, counted from 0); ``index`` the frame's
    time index, if any.
    """

    where: str
    columns: dict[Any, pa.Array | pa.ChunkedArray]
    n: int
    lines: np.ndarray | None = None
    index: Any = None
    first_line: int | None = None  # (when no line is left out: the line of row i is first_line + i)

    @property
    def names(self) -> list[Any]:
        return list(self.columns)

    def at(self, i: int) -> str:
        """``FILE:LINE`` of row ``i`` (``WHERE: row i`` for a frame)."""
        return at(self.where, self.lines, self.first_line, i)

    def find(self, columns: dict[str, tuple[str, ...]], field: str, required: bool = False) -> Any | None:
        name = pick(self.names, columns[field])
        if name is None and required:
            raise DataError(
                f"{self.where}: missing column {field!r} (have: {', '.join(map(str, self.names)) or 'none'})"
            )
        return name

    def times(self) -> np.ndarray:
        """int64 ns of the time column (or a frame's time index); DataError naming the first bad row."""
        name = pick(self.names, TIME_ALIASES)
        if name is not None:
            values: Any = self.columns[name]
            label = f"column {str(name)!r}"
        elif self.index is not None:
            values, label = self.index, "the index"
        else:
            raise DataError(
                f"{self.where}: no time column (ts, timestamp, time, datetime or date) and no time index"
            )
        ns, ok = TimeParser()(values)
        bad = np.flatnonzero(~ok)
        if len(bad):
            i = int(bad[0])
            raw = _arrow(values)[i].as_py()
            raise DataError(
                f"{self.at(i)}: {label} = {shown(raw)} is not a time (ISO 8601, or a number since the epoch)"
            )
        return ns

    def numbers(self, name: Any) -> np.ndarray:
        """float64 of column ``name`` (missing = NaN); DataError naming the first value that is no number."""
        col = self.columns[name]
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_null(col.type):
            col = col.cast(pa.float64())
            return (pc.fill_null(col, np.nan) if col.null_count else col).to_numpy(zero_copy_only=False)
        text = col.cast(pa.string())
        num = pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False), dtype=object), errors="coerce")
        v = num.to_numpy(dtype=np.float64)
        blank = pc.fill_null(pc.equal(pc.utf8_trim_whitespace(text), ""), True).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(np.isnan(v) & ~blank)
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{self.at(i)}: column {str(name)!r} = {shown(text[i].as_py())} is not a number")
        return v

    def take(self, rows: np.ndarray) -> Rows:
        """The rows ``rows`` (positions), keeping their lines."""
        idx = pa.array(rows, type=pa.int64())
        lines = self.lines[rows] if self.lines is not None else None
        if self.first_line is not None:
            lines = self.first_line + np.asarray(rows, dtype=np.int64)
        return Rows(
            self.where,
            {k: v.take(idx) for k, v in self.columns.items()},
            len(rows),
            lines,
            None if self.index is None else _arrow(self.index).take(idx),
        )


def at(where: str, lines: np.ndarray | None, first_line: int | None, i: int) -> str:
    """``WHERE:LINE`` of row ``i`` of a file (``lines``, or ``first_line + i``), else ``WHERE: row i``."""
    if lines is not None:
        return f"{where}:{int(lines[i])}"
    if first_line is not None:
        return f"{where}:{first_line + i}"
    return f"{where}: row {i}"


def frame_rows(df: pd.DataFrame, where: str = "data") -> Rows:
    """The :class:`Rows` of a DataFrame (its index is the time when no column is)."""
    columns = {}
    for name in df.columns:
        col = df[name]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            columns[name] = pa.array(col.to_numpy(dtype=np.float64, na_value=np.nan), from_pandas=True)
        else:
            columns[name] = _arrow(col)
    index = None if isinstance(df.index, pd.RangeIndex) else df.index
    return Rows(where, columns, len(df), None, index)


def read_rows(path: str | Path, columns: dict[str, tuple[str, ...]]) -> Rows:
    """The rows of a CSV or Parquet file: the columns of the fields of
    ``columns`` (numbers as float64, times and words as text).

    Raises
    ------
    DataError
        The file is missing or unreadable, a row has the wrong number of
        fields, or a number does not parse (naming its line).
    """
    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise DataError(f"{where}: no such file")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            table = pq.read_table(p)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{where}: cannot read as Parquet: {_first_line(exc)}") from None
        keep = {pick(table.column_names, a) for a in columns.values()} - {None}
        table = table.select([c for c in table.column_names if c in keep])
        return Rows(where, {k: table.column(k) for k in table.column_names}, table.num_rows, first_line=1)
    return next(_csv_rows(p, columns, None))


def column_names(path: str | Path) -> list[str]:
    """The column names of a CSV (its header) or Parquet file (its schema)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            return list(pq.read_schema(p).names)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{p}: cannot read as Parquet: {_first_line(exc)}") from None
    return _header(p)


def iter_rows(path: str | Path, columns: dict[str, tuple[str, ...]], block_rows: int) -> Iterator[Rows]:
    """The rows of a CSV file (as :func:`read_rows`) in pieces of about
    ``block_rows`` rows: memory does not grow with the file."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such file")
    return _csv_rows(p, columns, block_rows)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return cut(text.splitlines()[0], 200) if text else type(exc).__name__


def _header(path: Path) -> list[str]:
    """The column names of a CSV file's first line."""
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if b"\x00" in head:
        raise DataError(f"{path}: not a text file (NUL bytes)")
    if not head.strip():
        raise DataError(f"{path}: empty file (no header)")
    line = head.split(b"\n", 1)[0]
    if len(line) >= 1 << 20:
        raise DataError(f"{path}:1: the header is longer than 1 MiB")
    text = line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    try:
        names = next(csv.reader([text]))
    except csv.Error as exc:  # (a column name over 128 KiB)
        raise DataError(f"{path}:1: the header is no CSV header: {exc}") from None
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{path}:1: the header repeats column {shown(dup[0])}")
    return names


def _csv_rows(path: Path, columns: dict[str, tuple[str, ...]], block_rows: int | None) -> Iterator[Rows]:
    where = str(path)
    header = _header(path)
    types: dict[str, Any] = {}
    for field, aliases in columns.items():
        name = pick(header, aliases)
        if name is not None:
            types[name] = pa.string() if field in ("ts", "symbol", "side") else pa.float64()
    invalid: list[Any] = []

    def on_invalid(row: Any) -> str:
        invalid.append(row)
        return "error"

    convert = pacsv.ConvertOptions(column_types=types, include_columns=list(types), strings_can_be_null=True)
    try:
        if block_rows is None:
            # Read with threads and without a Python invalid-row handler: Arrow may drop
            # a threaded reader's last reference on one of its own threads after
            # read_csv returned, and a Python handler released there takes the GIL,
            # which aborts the process ("terminate called without an active
            # exception") when the interpreter is exiting, as after a quick error. A
            # bad row is found again without threads (_first_invalid_row).
            read = pacsv.ReadOptions(block_size=1 << 22)
            yield _drop_blank(
                where, pacsv.read_csv(path, read, pacsv.ParseOptions(ignore_empty_lines=False), convert), 2
            )
            return
        parse = pacsv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=on_invalid)
        reader = pacsv.open_csv(path, pacsv.ReadOptions(use_threads=False), parse, convert)
        line, pending, have = 2, [], 0
        for batch in reader:
            pending.append(batch)
            have += batch.num_rows
            if have >= block_rows:
                yield _drop_blank(where, pa.Table.from_batches(pending), line)
                line, pending, have = line + have, [], 0
        if pending:
            yield _drop_blank(where, pa.Table.from_batches(pending), line)
    except pa.ArrowInvalid as exc:
        row = invalid[0] if invalid else _first_invalid_row(path)
        if row is not None:
            raise _field_count_error(path, row) from None
        raise _conversion_error(path, types, exc) from None


def _first_invalid_row(path: Path) -> Any | None:
    """The first row of ``path`` with a wrong number of fields (read again, in one thread)."""
    seen: list[Any] = []

    def first(r: Any) -> str:
        seen.append(r)
        return "error"

    with contextlib.suppress(pa.ArrowInvalid):
        pacsv.read_csv(
            path,
            pacsv.ReadOptions(use_threads=False),
            pacsv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=first),
            pacsv.ConvertOptions(include_columns=[]),
        )
    return seen[0] if seen else None


def _field_count_error(path: Path, row: Any) -> DataError:
    at = f"{path}:{row.number}" if row.number is not None else str(path)
    return DataError(f"{at}: {row.actual_columns} fields, expected {row.expected_columns}: {shown(row.text)}")


def _drop_blank(where: str, table: pa.Table, first_line: int) -> Rows:
    """The rows of ``table`` without its blank lines (a row of nulls), each with its line."""
    n = table.num_rows
    blank = np.ones(n, bool)
    for col in table.columns:
        if col.null_count:
            blank &= ~col.is_valid().to_numpy(zero_copy_only=False)
        else:
            blank[:] = False
            break
    cols = {k: table.column(k) for k in table.column_names}
    if not blank.any():
        return Rows(where, cols, n, first_line=first_line)
    keep = np.flatnonzero(~blank)
    idx = pa.array(keep, type=pa.int64())
    return Rows(where, {k: v.take(idx) for k, v in cols.items()}, len(keep), first_line + keep)


def _conversion_error(path: Path, types: dict[str, Any], exc: BaseException) -> DataError:
    """The first value that is not a number, with its line (the file read again as text)."""
    numeric = [k for k, t in types.items() if pa.types.is_floating(t)]
    try:
        table = pacsv.read_csv(
            path,
            # (blocks as large as the file, up to 1 GiB: a row longer than a block does not parse)
            read_options=pacsv.ReadOptions(
                use_threads=False, block_size=max(1 << 22, min(path.stat().st_size + 1, 1 << 30))
            ),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(types, pa.string()), include_columns=list(types)
            ),
        )
    except pa.ArrowInvalid:
        return DataError(f"{path}: cannot read: {_first_line(exc)}")
    rows = _drop_blank(str(path), table, 2)
    for name in numeric:
        rows.numbers(name)  # raises at the first bad value
    return DataError(f"{path}: cannot read: {_first_line(exc)}")


# --------------------------------------------------------------------------
# ticks, bars and levels of rows


def ticks_from(rows: Rows) -> np.ndarray:
    """A ``TICK_DTYPE`` array from rows of quotes and/or trades (:data:`TICK_COLUMNS`)."""
    out = np.empty(rows.n, TICK_DTYPE)
    out["ts"] = rows.times()
    have = False
    for field in ("bid", "ask", "bid_size", "ask_size", "last", "last_size"):
        name = rows.find(TICK_COLUMNS, field)
        out[field] = np.nan if name is None else rows.numbers(name)
        have |= name is not None and field in ("bid", "last")
    if not have:
        raise DataError(f"{rows.where}: tick data needs bid/ask columns or a price/last column")
    return out


def bars_from(rows: Rows) -> np.ndarray:
    """An ``OHLCV_DTYPE`` array from rows of bars, checked: times increase,
    prices finite and > 0, high/low contain open and close (DataError naming
    the first bad row)."""
    out = np.empty(rows.n, OHLCV_DTYPE)
    out["ts"] = rows.times()
    for field in ("open", "high", "low", "close"):
        out[field] = rows.numbers(rows.find(BAR_COLUMNS, field, required=True))
    volume = rows.find(BAR_COLUMNS, "volume")
    out["volume"] = np.nan if volume is None else rows.numbers(volume)
    ts = out["ts"]
    back = np.flatnonzero(np.diff(ts) <= 0)
    if len(back):
        raise DataError(f"{rows.at(int(back[0]) + 1)}: bar time does not increase")
    for field in ("open", "high", "low", "close"):
        bad = np.flatnonzero(~(np.isfinite(out[field]) & (out[field] > 0)))
        if len(bad):
            i = int(bad[0])
            raise DataError(f"{rows.at(i)}: {field} = {out[field][i].item()!r} is not a positive price")
    o, h, lo, c = (out[k] for k in ("open", "high", "low", "close"))
    bad = np.flatnonzero((h < np.maximum(o, c)) | (lo > np.minimum(o, c)))
    if len(bad):
        raise DataError(f"{rows.at(int(bad[0]))}: high/low do not contain open and close")
    return out


def levels_from(rows: Rows) -> np.ndarray:
    """A ``LEVEL_DTYPE`` array from rows of L2 level updates (:data:`LEVEL_COLUMNS`)."""
    out = np.empty(rows.n, LEVEL_DTYPE)
    out["ts"] = rows.times()
    side_name = rows.find(LEVEL_COLUMNS, "side", required=True)
    side_col = rows.columns[side_name]
    if pa.types.is_string(side_col.type) or pa.types.is_large_string(side_col.type):
        words = pc.utf8_lower(pc.utf8_trim_whitespace(side_col)).to_numpy(zero_copy_only=False)
        table = {"bid": 1.0, "buy": 1.0, "1": 1.0, "+1": 1.0, "ask": -1.0, "sell": -1.0, "-1": -1.0}
        side = np.array([table.get(w, np.nan) if w is not None else np.nan for w in words], np.float64)
    else:
        side = pc.fill_null(side_col.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~np.isin(side, (1.0, -1.0)))
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{rows.at(i)}: side = {shown(side_col[i].as_py())} must be 1/bid/buy or -1/ask/sell")
    out["side"] = side
    out["price"] = rows.numbers(rows.find(LEVEL_COLUMNS, "price", required=True))
    out["qty"] = rows.numbers(rows.find(LEVEL_COLUMNS, "qty", required=True))
    return out
