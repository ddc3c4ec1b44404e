"""Tokens of a strategy described in words: numbers (with percent signs and
number words), words and symbols, each with its offsets into the text."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ticktape.errors import CouldNotUnderstand

__all__ = ["Tok", "tokenize"]

_TOKEN_RE = re.compile(
    r"""
    (?P<num>(?<![\w.])-?(?:\d+(?:\.\d+)?|\.\d+)(?:\s*%)?)
  | (?P<word>[A-Za-z][A-Za-z0-9]*(?:[._][A-Za-z0-9]+)*)
  | (?P<sym>>=|<=|[(),;/<>.&:=])
  | (?P<skip>\s+|-|['’]s\b|["“”])
  | (?P<other>.)
    """,
    re.X,
)
_GLUED = re.compile(r"(sma|ema|wma|rsi|atr|ma)(\d+)")

_UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_UNITS |= {"nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15}
_UNITS |= {"sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80}
_TENS |= {"ninety": 90}


@dataclass
class Tok:
    """One token: ``kind`` is num, word or sym; ``text`` is lower-case; offsets into the input."""

    kind: str
    text: str
    start: int
    end: int
    value: float = 0.0
    pct: bool = False
    raw: str = ""


def tokenize(text: str) -> list[Tok]:
    """Split ``text`` into tokens (numbers, words, symbols), keeping their offsets.

    Hyphens join nothing ("50-day" is ``50``, ``day``); number words
    ("two hundred", "fifty") become numbers; "SMA50" is ``sma``, ``50``;
    "2%" and "2 percent" are percentages.

    Examples
    --------
    >>> [(t.kind, t.text) for t in tokenize("50-day SMA(20) > two hundred")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('num', '50'), ('word', 'day'), ('word', 'sma'), ('sym', '('), ('num', '20'),
     ('sym', ')'), ('sym', '>'), ('num', '200')]
    """
    out: list[Tok] = []
    for m in _TOKEN_RE.finditer(text):
        kind, s, e = m.lastgroup, m.start(), m.end()
        raw = m.group()
        if kind == "skip":
            continue
        if kind == "other":
            raise CouldNotUnderstand(raw, reason="unexpected character")
        if kind == "num":
            pct = raw.endswith("%")
            number = raw.rstrip("%").strip()
            out.append(Tok("num", number, s, e, float(number), pct, raw))
            continue
        low = raw.lower()
        glued = _GLUED.fullmatch(low)
        if kind == "word" and glued:
            split = s + len(glued.group(1))
            out.append(Tok("word", glued.group(1), s, split, raw=raw[: len(glued.group(1))]))
            out.append(Tok("num", glued.group(2), split, e, float(glued.group(2)), raw=glued.group(2)))
            continue
        out.append(Tok(kind or "sym", "and" if low == "&" else low, s, e, raw=raw))
    return _merge_numbers(out)


def _merge_numbers(toks: list[Tok]) -> list[Tok]:
    out: list[Tok] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "word" and (t.text in _UNITS or t.text in _TENS):
            total, current, j = 0, 0, i
            while j < len(toks) and toks[j].kind == "word":
                w = toks[j].text
                if w in _TENS and current % 100 == 0:
                    current += _TENS[w]
                elif w in _UNITS and (current % 100 == 0 or (current % 10 == 0 and current % 100 >= 20)):
                    current += _UNITS[w]
                elif w == "hundred" and 0 < current < 100:
                    current *= 100
                elif w == "thousand" and current > 0:
                    total, current = total + current * 1000, 0
                else:
                    break
                j += 1
            out.append(Tok("num", str(total + current), t.start, toks[j - 1].end, float(total + current)))
            i = j
        elif t.kind == "num" and i + 1 < len(toks) and toks[i + 1].text in ("percent", "pct"):
            out.append(Tok("num", t.text, t.start, toks[i + 1].end, t.value, True, t.raw))
            i += 2
        elif (
            t.kind == "word" and t.text == "per" and i + 1 < len(toks) and toks[i + 1].text == "cent" and out
        ):
            out[-1].pct = True
            out[-1].end = toks[i + 1].end
            i += 2
        else:
            out.append(t)
            i += 1
    return out
