"""The grammar: a small recursive-descent parser of rules, conditions, values,
templates and options (:class:`Parser`), and the reader of one value
(:class:`ValueReader`). It never guesses: a part it cannot read raises
:class:`~ticktape.errors.CouldNotUnderstand` quoting the exact words."""

from __future__ import annotations

import re
from typing import Any

from ticktape.errors import CouldNotUnderstand, SpecError
from ticktape.strategy import catalog, rules
from ticktape.strategy.fromtext.lexicon import (
    ACTIONS,
    AFTER_ACTION,
    ARTICLES,
    AUX,
    BANDS,
    CLAUSE_EXPECTED,
    CONDWORDS,
    CROSS_VERBS,
    DIRECTIONS,
    DOWN_VERBS,
    EQUITY_WORDS,
    EXTREMES,
    LINES,
    LONG_ONLY,
    MAKE_VERBS,
    MOVING_AVERAGES,
    NEGATE,
    NOUNS,
    OPTION_KEYS,
    PRED_EXPECTED,
    PRICES,
    ROW_UNITS,
    SEPARATORS,
    SIZE_KEYS,
    SIZE_UNITS,
    SIZING_VERBS,
    STARTERS,
    STD_WORDS,
    SYMBOL_OPS,
    TEMPLATE_NAMES,
    TIME_UNITS,
    TURN_VERBS,
    UP_VERBS,
    VALUE_EXPECTED,
    phrases,
)
from ticktape.strategy.fromtext.tokens import Tok, tokenize

__all__ = ["Parser", "ValueReader"]


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = tokenize(text)
        self.pos = 0
        self.template: str | None = None
        self.tparams: dict[str, Any] = {}
        self.positional: list[tuple[Tok, bool]] = []  # (number, had a row unit)
        self.pending: list[tuple[Tok, bool]] = []
        self.options: dict[str, Any] = {}
        self.rules: dict[str, list[dict[str, Any]]] = {}
        self.rule_at: tuple[int, int] | None = None  # token span of the first rule
        self.last_macd: dict[str, Any] | None = None
        self.last_bollinger: dict[str, Any] | None = None
        self.subject: Any = None  # the left value of the last comparison ("it")
        self.last_ma: dict[str, Any] | None = None
        self.clause_start = 0  # first token of the clause being read

    # ---------------------------------------------------------------- helpers
    def tok(self, i: int | None = None) -> Tok | None:
        i = self.pos if i is None else i
        return self.toks[i] if 0 <= i < len(self.toks) else None

    def word(self, i: int | None = None) -> str:
        t = self.tok(i)
        return t.text if t is not None else ""

    def match(self, table: dict[tuple[str, ...], Any], i: int | None = None) -> tuple[Any, int] | None:
        """Longest phrase of ``table`` starting at token ``i``: (value, length)."""
        i = self.pos if i is None else i
        best = None
        for phrase, value in table.items():
            n = len(phrase)
            if best is not None and n <= best[1]:
                continue
            if all(
                (t := self.tok(i + k)) is not None and t.kind != "num" and t.text == w
                for k, w in enumerate(phrase)
            ):
                best = (value, n)
        return best

    def take(self, table: dict[tuple[str, ...], Any]) -> Any:
        m = self.match(table)
        if m is None:
            return None
        self.pos += m[1]
        return m[0]

    def accept(self, *words: str) -> bool:
        if self.word() in words and self.tok() is not None and self.tok().kind != "num":  # type: ignore[union-attr]
            self.pos += 1
            return True
        return False

    def number(self, i: int | None = None) -> Tok | None:
        t = self.tok(i)
        return t if t is not None and t.kind == "num" else None

    def phrase_end(self, i: int) -> int:
        """Index after the phrase containing token ``i`` (up to a separator or the next clause)."""
        depth = 0
        j = i
        while j < len(self.toks):
            t = self.toks[j]
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth = max(0, depth - 1)
            elif (depth == 0 and j > i and (t.text in SEPARATORS or self.starts_clause(j))) or (
                depth == 0 and j > i and t.text in ("and", "or", "then", "but") and self.starts_clause(j + 1)
            ):
                break
            j += 1
        return max(j, i + 1)

    def words(self, i: int, j: int | None = None) -> str:
        j = self.phrase_end(i) if j is None else j
        return self.text[self.toks[i].start : self.toks[j - 1].end]

    def fail(
        self, i: int | None = None, expected: str = "", reason: str = "", j: int | None = None
    ) -> CouldNotUnderstand:
        i = self.pos if i is None else i
        if i >= len(self.toks):  # the text stops short: quote the clause it stops in
            i, j = min(self.clause_start, len(self.toks) - 1), len(self.toks)
            reason = reason or "the text ends here"
        return CouldNotUnderstand(self.words(i, j), expected, reason)

    def starts_clause(self, i: int) -> bool:
        """Whether a new clause (rule, reversed rule, or option) starts at token ``i``."""
        m = self.match(ACTIONS, i)
        if m is not None:
            k = i + m[1]
            if self.number(k) is not None and self.word(k + 1) in SIZE_UNITS:
                k += 2
            if self.match(AFTER_ACTION, k) is not None:
                return True
        if self.match(CONDWORDS, i) is not None:
            return True
        if self.word(i) in ("with", "using", "plus") and self.option_at(i + 1):
            return True
        return self.option_at(i)

    def option_at(self, i: int) -> bool:
        k = i
        while self.word(k) in ("a", "an"):
            k += 1
        if self.match(LONG_ONLY, k) or (self.match(OPTION_KEYS, k) is not None and self.word(k) != "target"):
            return True
        t = self.number(k)
        if t is not None and t.pct:
            m = self.match(OPTION_KEYS, k + 1)
            if m is not None or self.word(k + 1) == "of":
                return True
        if t is not None and self.word(k + 1) in SIZE_UNITS:
            return True
        return self.match(SIZING_VERBS, k) is not None and (n := self.number(k + 1)) is not None and n.pct

    # ---------------------------------------------------------------- top level
    def parse(self) -> dict[str, Any]:
        if not self.toks:
            raise CouldNotUnderstand(self.text, CLAUSE_EXPECTED, "nothing to read")
        while self.pos < len(self.toks):
            if self.word() in SEPARATORS | {"and", "then", "with", "using", "plus", "also"}:
                self.pos += 1
                continue
            start = self.clause_start = self.pos
            if self.clause():
                continue
            self.pos = start
            if self.match(phrases({1: ["mean reversion", "mean reverting", "mean-reversion"]})):
                raise self.fail(
                    start,
                    "RSI mean reversion, Bollinger reversion, VWAP reversion or a pairs trade",
                    "which mean reversion?",
                )
            raise self.fail(start, CLAUSE_EXPECTED)
        if self.pending:
            raise self.fail(self.toks.index(self.pending[0][0]), "a template name after these numbers")
        return self.finish()

    def clause(self) -> bool:  # noqa: PLR0911
        if self.option():
            return True
        if self.template is not None and self.template_param():
            return True
        if self.rule():
            return True
        save = self.pos
        while self.word() in ("a", "an", "the", "use", "run", "trade", "do"):
            self.pos += 1
        if self.template_name():
            return True
        self.pos = save
        if self.template is not None:
            return self.template_positional()
        while self.word() in ("a", "an", "the"):
            self.pos += 1
        if self.number() is not None:  # "a 20/50 MA crossover", "20 day breakout"
            group = self.number_group()
            if group and self.pos < len(self.toks):
                save2 = self.pos
                while self.word() in ("a", "an", "the"):
                    self.pos += 1
                if self.match(TEMPLATE_NAMES) is not None:
                    self.pending = group
                    self.pos = save2
                    return True
            self.pos = save
        return False

    def number_group(self) -> list[tuple[Tok, bool]]:
        """NUM [unit] (("/" | "and" | "," | "to") NUM [unit])*"""
        group: list[tuple[Tok, bool]] = []
        while (t := self.number()) is not None and not t.pct:
            self.pos += 1
            unit = self.unit()
            group.append((t, unit))
            if self.word() in ("/", "and", ",", "by") and self.number(self.pos + 1) is not None:
                if self.word(self.pos + 2) in SIZE_UNITS or self.number(self.pos + 1).pct:  # type: ignore[union-attr]
                    break
                self.pos += 1
                continue
            break
        return group

    def unit(self) -> bool:
        """Consume a row unit ("day", "period", ...) if present; reject time units."""
        if self.word() in TIME_UNITS:
            raise self.fail(
                self.pos - 1,
                "a window in rows, e.g. '20 period' or '20 bar'",
                "windows count rows of the data, not clock time",
                j=self.pos + 1,
            )
        if self.word() in ROW_UNITS:
            self.pos += 1
            if (
                self.word() in ("lookback", "window", "period", "length")
                and self.number(self.pos + 1) is None
            ):
                self.pos += 1
            return True
        return False

    # ---------------------------------------------------------------- options
    def set_option(self, key: str, value: Any, at: int) -> None:
        if key in self.options and self.options[key] != value:
            raise self.fail(at, reason=f"{key} is already set to {self.options[key]!r}")
        self.options[key] = value

    def percent(self, what: str) -> float:
        t = self.number()
        if t is None or not t.pct:
            raise self.fail(expected=f"a percentage for the {what}, e.g. 2%")
        self.pos += 1
        return t.value / 100.0

    def option(self) -> bool:  # noqa: PLR0911
        start = self.pos
        while self.word() in ("a", "an"):
            self.pos += 1
        if self.take(LONG_ONLY):
            self.set_option("long_only", True, start)
            return True
        key = self.take(OPTION_KEYS)
        if key is not None and not (
            key == "take_profit" and self.word(start) == "target" and self.number() is None
        ):
            self.accept("of", "at", "=", ":", "is")
            self.set_option(key, self.percent(key.replace("_", " ")), start)
            return True
        self.pos = start
        while self.word() in ("a", "an"):
            self.pos += 1
        t = self.number()
        if t is not None and t.pct:
            self.pos += 1
            key = self.take(OPTION_KEYS)
            if key is not None:
                self.set_option(key, t.value / 100.0, start)
                return True
            if self.accept("of") and self.take(EQUITY_WORDS):
                self.equity(t, start)
                return True
            self.pos = start
            return False
        if t is not None and self.word(self.pos + 1) in SIZE_UNITS:
            self.pos += 2
            self.size(t, start)
            return True
        self.pos = start
        if self.take(SIZING_VERBS) is not None:
            t = self.number()
            if t is not None and t.pct:
                self.pos += 1
                if not (self.accept("of") and self.take(EQUITY_WORDS)):
                    raise self.fail(start, "'of equity' after the percentage (e.g. risk 10% of equity)")
                self.equity(t, start)
                return True
            self.pos = start
        if self.take(SIZE_KEYS) is not None:
            self.accept("of", "=", ":", "is")
            t = self.number()
            if t is not None and not t.pct:
                self.pos += 1
                if self.word() in SIZE_UNITS:
                    self.pos += 1
                self.size(t, start)
                return True
        self.pos = start
        return False

    def equity(self, t: Tok, at: int) -> None:
        self.accept("per", "each", "a", "on")
        self.accept("trade", "position")
        self.set_option("sizing", "equity", at)
        self.set_option("fraction", t.value / 100.0, at)

    def size(self, t: Tok, at: int) -> None:
        self.set_option("size", t.value, at)
        self.accept("per", "each", "a")
        self.accept("trade", "position", "quote", "order", "side")

    # ---------------------------------------------------------------- rules
    def rule(self) -> bool:
        start = self.pos
        action = self.take(ACTIONS)
        if action is not None:
            t = self.number()
            if t is not None and self.word(self.pos + 1) in SIZE_UNITS:
                self.pos += 2
                self.size(t, self.pos - 2)
            if self.take(AFTER_ACTION) is None:
                self.pos = start
                return False
            cond = self.cond()
            self.add_rule(action, cond, start)
            return True
        if self.take(CONDWORDS) is not None:
            cond = self.cond()
            self.accept(",")
            self.accept("then")
            action = self.take(ACTIONS)
            if action is None:
                raise self.fail(expected="an action after the condition ('then buy', ', sell', ...)")
            t = self.number()
            if t is not None and self.word(self.pos + 1) in SIZE_UNITS:
                self.pos += 2
                self.size(t, self.pos - 2)
            self.add_rule(action, cond, start)
            return True
        return False

    def add_rule(self, action: str, cond: dict[str, Any], at: int) -> None:
        if self.rule_at is None:
            self.rule_at = (at, self.pos)
        self.rules.setdefault(action, []).append(cond)

    def cond(self) -> dict[str, Any]:
        parts = [self.conj()]
        while self.word() == "or" and not self.starts_clause(self.pos + 1):
            self.pos += 1
            self.accept("if", "when")
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else {"any": parts}

    def conj(self) -> dict[str, Any]:
        parts = [self.unary(None)]
        while self.word() in ("and", "but") and not self.starts_clause(self.pos + 1):
            if self.word(self.pos + 1) in ("then",):
                break
            self.pos += 1
            self.accept("also")
            self.accept("if", "when")
            subject = self.subject if self.predicate_ahead() else None
            parts.append(self.unary(subject))
        return parts[0] if len(parts) == 1 else {"all": parts}

    def predicate_ahead(self, i: int | None = None) -> bool:
        i = self.pos if i is None else i
        w = self.word(i)
        return w in STARTERS and not (w in ("higher", "lower") and self.word(i + 1) not in ("than",))

    def unary(self, subject: Any) -> dict[str, Any]:
        if subject is None:
            self.accept("both", "either")
            if self.accept("not"):
                return {"not": self.unary(None)}
            if self.word() == "(":
                self.pos += 1
                inner = self.cond()
                if not self.accept(")"):
                    raise self.fail(expected="')'")
                return inner
        return self.comparison(subject)

    def comparison(self, subject: Any) -> dict[str, Any]:
        if subject is None and self.word() in ("it", "they") and self.predicate_ahead(self.pos + 1):
            if self.subject is None:
                raise self.fail(
                    expected=VALUE_EXPECTED, reason=f"'{self.word()}' refers to nothing before it"
                )
            self.pos += 1
            subject = self.subject
        start = self.pos
        left = subject if subject is not None else self.value(None, left_side=True)
        self.subject = left
        node = self.predicate(left)
        for c in node.get("all", [node]):
            if isinstance(c["left"], float) and isinstance(c["right"], float):
                raise self.fail(start, VALUE_EXPECTED, "compares two numbers", j=self.pos)
        return node

    # ---------------------------------------------------------------- predicates
    def predicate(self, left: Any) -> dict[str, Any]:  # noqa: PLR0911
        start = self.pos
        t = self.tok()
        if t is not None and t.text in SYMBOL_OPS:
            self.pos += 1
            return self.compare(SYMBOL_OPS[t.text], left)
        self.take(AUX)
        self.accept("currently", "still", "now")
        negate = self.accept("not")
        pct = self.number()
        if pct is not None and pct.pct and self.match(DIRECTIONS, self.pos + 1) is not None:
            raise self.fail(
                start,
                "a comparison of values, e.g. 'price is above VWAP' or 'the 20 period z-score is above 2'",
                "a percent distance between two values cannot be expressed in a spec",
            )
        w = self.word()
        if w in ("does", "doesn't"):
            raise self.fail(start, PRED_EXPECTED, "negated crossings are not supported")
        # "turns positive"
        if w in TURN_VERBS and self.word(self.pos + 1) in ("positive", "negative"):
            self.pos += 2
            up = self.word(self.pos - 1) == "positive"
            return {"op": "crosses_above" if up else "crosses_below", "left": left, "right": 0.0}
        if w in MAKE_VERBS:
            self.pos += 1
            right = self.value(left)
            op = self.extreme_direction(right, start, state=True)
            return {"op": op, "left": left, "right": right}
        verb = None
        for verbs in (UP_VERBS, DOWN_VERBS, CROSS_VERBS):
            two = f"{w} {self.word(self.pos + 1)}"
            if two in verbs:
                self.pos += 2
                verb = two
                break
            if w in verbs:
                self.pos += 1
                verb = w
                break
        if verb is not None:
            if negate:
                raise self.fail(start, PRED_EXPECTED, "negated crossings are not supported")
            self.accept("back", "out", "up", "down", "right")
            self.accept("back")
            direction = self.take(DIRECTIONS)
            if direction is None and self.accept("through"):
                direction = "through"
            if direction is None:
                if verb in ("breaks", "break", "broke", "breaking", "pierces", "passes"):
                    right = self.value(left)
                    return {"op": self.extreme_direction(right, start), "left": left, "right": right}
                raise self.fail(start, "'above' or 'below' after the verb (e.g. 'crosses above')")
            if direction not in (">", "<"):
                raise self.fail(start, PRED_EXPECTED)
            if (verb in UP_VERBS and direction == "<") or (verb in DOWN_VERBS and direction == ">"):
                raise self.fail(start, reason="the verb and the direction disagree")
            op = "crosses_above" if direction == ">" else "crosses_below"
            return {"op": op, "left": left, "right": self.value(left)}
        if self.accept("positive"):
            return {"op": "<=" if negate else ">", "left": left, "right": 0.0}
        if self.accept("negative"):
            return {"op": ">=" if negate else "<", "left": left, "right": 0.0}
        if self.accept("between"):
            low = self.value(left)  # the value ends at "and"
            if not self.accept("and"):
                raise self.fail(expected="'and' in 'between A and B'")
            high = self.value(left)
            if negate:
                raise self.fail(start, reason="'not between' is not supported; say 'below A or above B'")
            return {
                "all": [{"op": ">", "left": left, "right": low}, {"op": "<", "left": left, "right": high}]
            }
        if self.accept("exceeds", "exceed", "tops"):
            return self.compare("<=" if negate else ">", left)
        direction = self.take(DIRECTIONS)
        if direction is not None:
            return self.compare(NEGATE[direction] if negate else direction, left)
        raise self.fail(start, PRED_EXPECTED)

    def compare(self, op: str, left: Any) -> dict[str, Any]:
        return {"op": op, "left": left, "right": self.value(left)}

    def extreme_direction(self, right: Any, at: int, state: bool = False) -> str:
        kind = right.get("ind") if isinstance(right, dict) else None
        band = right.get("band") if kind == "bollinger" else None
        if kind == "highest" or band == "upper":
            return ">" if state else "crosses_above"
        if kind == "lowest" or band == "lower":
            return "<" if state else "crosses_below"
        raise self.fail(at, "'above' or 'below' (or a high / low to break, e.g. 'breaks the 20 day high')")

    # ---------------------------------------------------------------- values
    def value(self, subject: Any, left_side: bool = False) -> Any:
        """Read one VALUE: a chunk of tokens up to the next predicate, conjunction or clause."""
        start = self.pos
        depth = 0
        while self.pos < len(self.toks):
            t = self.toks[self.pos]
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0:
                if self.pos > start and self.value_ends():
                    break
                if self.pos == start and t.text in SEPARATORS | {"and", "or", "then"}:
                    break
            self.pos += 1
        if self.pos == start:
            raise self.fail(start, VALUE_EXPECTED)
        if left_side and self.last_ma is not None:
            subject = self.last_ma  # "... and the 50 crosses above the 200": the moving average last named
        node = self.interpret(start, self.pos, subject)
        if isinstance(node, dict) and node.get("ind") in MOVING_AVERAGES:
            self.last_ma = node
        if isinstance(node, dict) and node.get("ind") == "macd":
            self.last_macd = node
        if isinstance(node, dict) and node.get("ind") == "bollinger":
            self.last_bollinger = node
        return node

    def value_ends(self) -> bool:
        w = self.word()
        if w in SEPARATORS | {"and", "or", "then", "but"}:
            return True
        if w == "over":  # "over the last 20 days" belongs to the value; "RSI over 70" does not
            k = self.pos + 1
            while self.word(k) in ("the", "last", "past", "previous", "prior"):
                k += 1
            return self.number(k) is None or (
                self.word(k - 1) == "over" and self.word(k + 1) not in ROW_UNITS
            )
        if w in ("at",) and self.word(self.pos + 1) in ("least", "most", "or"):
            return True
        if w in STARTERS and w not in ("at", "higher", "lower", "less", "greater", "set", "prints", "break"):
            return w not in ("close", "closes") or self.word(self.pos - 1) not in ARTICLES
        if w in ("higher", "lower", "less", "greater") and self.word(self.pos + 1) == "than":
            return True
        return self.starts_clause(self.pos)

    def interpret(self, i: int, j: int, subject: Any) -> Any:
        """Turn tokens ``i:j`` into a VALUE node (see the grammar in the module docs)."""
        p = ValueReader(self, i, j)
        return p.read(subject)

    # ---------------------------------------------------------------- templates
    def template_name(self) -> bool:
        start = self.pos
        # "RSI(14) mean reversion": an RSI period inside the name
        if self.word() == "rsi" and self.word(self.pos + 1) == "(":
            k = self.pos + 2
            n = self.number(k)
            if n is not None and self.word(k + 1) == ")":
                m = self.match({p[1:]: v for p, v in TEMPLATE_NAMES.items() if p[:1] == ("rsi",)}, k + 2)
                if m is not None:
                    self.pos = k + 2 + m[1]
                    self.start_template(m[0], start)
                    self.set_tparam("n", int(n.value) if n.value.is_integer() else n.value, k)
                    return True
        m = self.match(TEMPLATE_NAMES)
        if m is None:
            return False
        self.pos += m[1]
        self.start_template(m[0], start)
        return True

    def start_template(self, found: tuple[str, dict[str, Any]], at: int) -> None:
        name, fixed = found
        if self.template is not None:
            raise self.fail(at, reason=f"a second template; this text already describes {self.template}")
        self.template = name
        for k, v in fixed.items():
            self.tparams[k] = v
        self.positional.extend(self.pending)
        self.pending = []

    def set_tparam(self, key: str, value: Any, at: int) -> None:
        if key in self.tparams and self.tparams[key] != value:
            raise self.fail(at, reason=f"{key} is already {self.tparams[key]!r}")
        self.tparams[key] = value

    def keyword_number(self, keys: dict[tuple[str, ...], str], pct_ok: bool = False) -> bool:
        """KEY [of|at|=|:|is] NUM; sets the template parameter ``keys[KEY]``."""
        start = self.pos
        self.accept("a", "an", "the")
        key = self.take(keys)
        if key is None:
            self.pos = start
            return False
        self.accept("of", "at", "=", ":", "is", "to", "with", "level")
        self.accept("a", "an", "the")
        t = self.number()
        if t is None or (t.pct and not pct_ok):
            raise self.fail(start, f"a number after '{self.words(start, self.pos)}'")
        self.pos += 1
        self.unit()
        self.accept("ticks", "tick")
        self.set_tparam(key, t.value, start)
        return True

    def template_param(self) -> bool:  # noqa: PLR0911
        name = self.template
        start = self.pos
        self.accept("a", "an")
        if name == "ma_crossover":
            if self.keyword_number(
                phrases({"fast": ["fast", "fast ma", "short"], "slow": ["slow", "slow ma", "long"]})
            ):
                return True
            kind = self.take(phrases({"ema": ["ema", "emas", "exponential"], "sma": ["sma", "smas", "simple"], "wma": ["wma", "wmas", "weighted"]}))  # fmt: skip
            if kind is not None:
                self.accept("moving")
                self.accept("averages", "average")
                self.set_tparam("ma", kind, start)
                return True
        elif name == "rsi_reversion":
            keys = phrases(
                {
                    "lower": ["lower", "oversold", "buy below", "oversold level", "lower level", "entry below"],
                    "upper": ["upper", "overbought", "sell above", "short above", "overbought level", "upper level"],
                    "exit": ["exit", "exit at", "exit level", "exit on", "flat at"],
                    "n": ["period", "length", "lookback", "rsi period", "rsi"],
                }
            )  # fmt: skip
            if self.keyword_number(keys):
                return True
        elif name == "bollinger_reversion":
            t = self.number()
            if t is not None and not t.pct and self.match(STD_WORDS, self.pos + 1) is not None:
                self.pos += 1 + self.match(STD_WORDS, self.pos + 1)[1]  # type: ignore[index]
                self.accept("bands", "band", "wide")
                self.set_tparam("k", t.value, start)
                return True
            if self.keyword_number(
                phrases({"k": ["k", "width", "std"], "n": ["period", "length", "lookback"]})
            ):
                return True
        elif name == "breakout":
            if self.keyword_number(phrases({"exit_n": ["exit", "exit channel", "exit after", "exit on", "exit window"], "n": ["entry", "entry channel", "channel", "lookback", "period"]})):  # fmt: skip
                return True
            t = self.number()
            if t is not None and not t.pct:
                self.pos += 1
                self.unit()
                self.accept("low", "high", "channel")
                if self.accept("exit"):
                    self.accept("channel", "window")
                    self.set_tparam("exit_n", t.value, start)
                    return True
                self.pos = start
        elif name in ("vwap_reversion", "pairs"):
            zkeys = {
                "entry_z": ["entry", "entry z", "entry z score", "entry zscore", "enter at", "entry at", "entry threshold", "enter"],
                "exit_z": ["exit", "exit z", "exit z score", "exit zscore", "exit at", "exit threshold"],
                "n": ["lookback", "window", "lookback window", "rolling window", "period"],
                "z_n": ["z window", "z score window", "zscore window", "z lookback", "z score lookback"],
            }  # fmt: skip
            if name == "pairs":
                del zkeys["z_n"]  # the pairs z-score uses the lookback n
            if self.keyword_number(phrases(zkeys)):
                return True
            t = self.number()
            if t is not None and not t.pct and self.match(STD_WORDS, self.pos + 1) is not None:
                raise self.fail(
                    start, "'entry z 2' or 'exit z 0.5'", "say whether this is the entry or the exit"
                )
            if name == "vwap_reversion" and self.accept("session"):
                self.accept("vwap")
                self.set_tparam("n", 0, start)
                return True
            if name == "vwap_reversion" and self.accept("rolling"):
                t = self.number()
                if t is None:
                    raise self.fail(start, "a window after 'rolling', e.g. rolling 100 periods")
                self.pos += 1
                self.unit()
                self.accept("vwap")
                self.set_tparam("n", t.value, start)
                return True
            if name == "pairs":
                return self.pairs_param(start)
        elif name == "market_maker":
            return self.market_maker_param(start)
        self.pos = start
        return False

    def symbol(self) -> str | None:
        t = self.tok()
        if t is not None and t.kind == "word" and re.fullmatch(r"[A-Z][A-Z0-9._]*", t.raw):
            self.pos += 1
            return t.raw
        return None

    def pairs_param(self, start: int) -> bool:
        hedge = self.take(phrases({"ratio": ["ratio hedge", "price ratio", "ratio hedged", "hedge ratio of prices"], "ols": ["ols hedge", "ols", "regression hedge", "ols hedge ratio", "ols hedged"]}))  # fmt: skip
        if hedge is None and self.accept("hedge", "hedged"):
            self.accept("with", "using", "by")
            self.accept("a", "an", "the")
            hedge = self.take(phrases({"ratio": ["ratio", "price ratio"], "ols": ["ols", "regression"]}))
            if hedge is None:
                raise self.fail(start, "'ratio' or 'ols' after 'hedge'")
        if hedge is not None:
            self.set_tparam("hedge", hedge, start)
            return True
        prep = self.accept("between", "on", "of", "for", "with", "in", "using")
        first = self.symbol()
        if first is None:
            if prep and self.tok() is not None and self.tok().kind == "word":  # type: ignore[union-attr]
                raise self.fail(start, "two symbols in capitals, e.g. 'between KO and PEP'")
            self.pos = start
            return False
        if not (self.accept("and", "/", ",", "vs", "versus", "against") or self.word() == "&"):
            raise self.fail(start, "two symbols, e.g. 'between KO and PEP'")
        second = self.symbol()
        if second is None:
            raise self.fail(start, "two symbols in capitals, e.g. 'between KO and PEP'")
        if "symbols" in self.tparams:
            raise self.fail(start, reason="the symbols are already given")
        self.tparams["symbols"] = [first, second]
        return True

    def market_maker_param(self, start: int) -> bool:
        self.accept("quoting", "quote", "quotes", "with")
        if self.accept("half"):
            self.accept("spread")
            self.accept("of", "=", ":")
            t = self.number()
            if t is None:
                raise self.fail(start, "a number of ticks")
            self.pos += 1
            self.accept("ticks", "tick")
            self.set_tparam("spread_ticks", t.value, start)
            return True
        full = self.accept("spread")
        if full:
            self.accept("of", "=", ":", "is")
        t = self.number()
        if t is not None and not t.pct and self.word(self.pos + 1) in ("ticks", "tick"):
            self.pos += 2
            self.accept("apart")
            if self.accept("wide") or full or self.word(self.pos - 1) == "apart":
                if t.value % 2:
                    raise self.fail(
                        start,
                        "an even width, or the half-spread: 'N ticks each side of the mid'",
                        "the spread is quoted symmetrically around the mid, so its width is an even number of ticks",
                    )
                self.set_tparam("spread_ticks", t.value / 2, start)
                return True
            side = self.take(phrases({1: ["each side", "either side", "on each side", "on either side", "from the mid", "around the mid", "off the mid", "away from the mid", "per side", "each way", "from mid", "around mid"]}))  # fmt: skip
            if side is not None:
                self.accept("of")
                self.accept("the")
                self.accept("mid")
                self.set_tparam("spread_ticks", t.value, start)
                return True
            raise self.fail(start, "'N ticks wide' (the whole spread) or 'N ticks each side of the mid'")
        self.pos = start
        keys = phrases(
            {
                "max_inventory": [
                    "max inventory", "maximum inventory", "inventory limit", "max position", "maximum position",
                    "position limit", "inventory cap", "max inv",
                ],
                "skew": ["skew", "inventory skew", "skewing"],
                "tick_size": ["tick size", "price increment"],
            }
        )  # fmt: skip
        return self.keyword_number(keys)

    def template_positional(self) -> bool:
        start = self.pos
        self.accept("of", "with", "at")
        self.accept("a", "an")
        group = self.number_group()
        if not group:
            self.pos = start
            return False
        self.positional.extend(group)
        return True

    # ---------------------------------------------------------------- result
    def assign_positional(self) -> None:
        name = self.template
        nums = self.positional
        if not nums:
            return
        at = self.toks.index(nums[0][0])
        with_unit = [t for t, u in nums if u]
        bare = [t for t, u in nums if not u]

        def bad(expected: str) -> CouldNotUnderstand:
            return self.fail(
                at, expected, f"numbers not understood for {name}", j=self.toks.index(nums[-1][0]) + 1
            )

        def put(keys: list[str], values: list[Tok]) -> None:
            for k, t in zip(keys, values, strict=False):
                self.set_tparam(k, t.value, at)

        if name == "ma_crossover":
            values = sorted((t for t, _ in nums), key=lambda t: t.value)
            if len(values) == 1:
                raise bad("two periods, e.g. 'moving average crossover 20 and 50'")
            if len(values) > 2:
                raise bad("two periods (fast and slow)")
            put(["fast", "slow"], values)
        elif name == "rsi_reversion":
            if len(with_unit) > 1:
                raise bad("one RSI period")
            put(["n"], with_unit)
            if len(bare) == 2:
                put(["lower", "upper"], sorted(bare, key=lambda t: t.value))
            elif len(bare) == 3:
                put(["lower", "exit", "upper"], sorted(bare, key=lambda t: t.value))
            elif bare:
                raise bad("the lower and upper levels, e.g. 'RSI mean reversion 30/70'")
        elif name == "bollinger_reversion":
            values = with_unit + bare
            if len(with_unit) > 1 or len(values) > 2:
                raise bad("the period and the width, e.g. 'bollinger reversion 20 2' or '20 period 2 std'")
            put(["n", "k"], values)
        elif name == "breakout":
            values = with_unit + bare if len(with_unit) <= 1 else []
            if not values or len(values) > 2:
                raise bad(
                    "the entry channel and optionally the exit channel, e.g. '20 day breakout' or 'breakout 20/10'"
                )
            put(["n", "exit_n"], [t for t, _ in nums])
        elif name in ("vwap_reversion", "pairs"):
            if bare or len(with_unit) > 1:
                raise bad("a window in periods, or 'entry z 2', 'exit z 0.5'")
            put(["n"], with_unit)
        else:
            raise bad("'N ticks wide', 'max inventory N', 'skew N' or 'size N'")

    def finish(self) -> dict[str, Any]:
        if self.template is not None and self.rules:
            assert self.rule_at is not None
            raise self.fail(
                self.rule_at[0],
                j=self.rule_at[1],
                reason=f"rules cannot be added to the {self.template} template; write the whole strategy as rules instead",
            )
        params: dict[str, Any]
        if self.template is not None:
            self.assign_positional()
            params = dict(self.tparams)
            name = self.template
        elif self.rules:
            params = {}
            for action, conds in self.rules.items():
                params[action] = conds[0] if len(conds) == 1 else {"any": conds}
            name = "rules"
            protective = self.options.get("stop_loss", 0) or self.options.get("take_profit", 0)
            for enter, leave, verb in (("entry", "exit", "sell"), ("short_entry", "short_exit", "cover")):
                if enter in params and leave not in params and not protective:
                    raise CouldNotUnderstand(
                        self.text.strip(),
                        f"a '{verb} when ...' rule, a stop loss or a take profit",
                        f"it says when to {'buy' if enter == 'entry' else 'short'} but not when to get out",
                    )
                if leave in params and enter not in params:
                    raise CouldNotUnderstand(
                        self.text.strip(),
                        f"a '{'buy' if enter == 'entry' else 'short'} when ...' rule",
                        f"it says when to {verb} but not when to enter",
                    )
        else:
            raise CouldNotUnderstand(self.text.strip(), CLAUSE_EXPECTED, "no rule or template found")
        params.update(self.options)
        return catalog.validate_spec({"strategy": name, "params": params})


class ValueReader:
    """Reads one VALUE from the tokens ``i:j`` of a parser (free word order inside the chunk)."""

    def __init__(self, parser: Parser, i: int, j: int) -> None:
        self.p = parser
        self.i = i
        self.j = j
        self.k = i
        self.post_ns: list[Tok] = []  # "of the last 20 bars"
        self.sources: list[str] = []  # "of volume"

    def fail(self, at: int, expected: str = VALUE_EXPECTED, reason: str = "") -> CouldNotUnderstand:
        return self.p.fail(at, expected, reason, j=self.j)

    def read(self, subject: Any) -> Any:
        p = self.p
        the = False
        while self.k < self.j and p.word(self.k) in ARTICLES | {"new", "fresh", "recent", "current"}:
            the = the or p.word(self.k) in ("the", "its", "their")
            self.k += 1
        if self.k >= self.j:
            raise self.fail(self.i)
        kind: str | None = None
        kind_at = -1
        fixed: dict[str, Any] = {}
        pre: list[tuple[Tok, bool]] = []  # numbers before the noun (with a row unit?)
        args: list[Tok] = []  # numbers after the noun: (20, 2), 20, 12/26/9
        post_n: Tok | None = None
        k_std: Tok | None = None
        band = line = price = extreme = None
        band_word = level = session = False
        while self.k < self.j:
            k = self.k
            t = p.tok(k)
            assert t is not None
            if t.kind == "num":
                if t.pct:
                    raise self.fail(k, reason="a percentage is not a value here")
                m = p.match(STD_WORDS, k + 1)
                if m is not None and k + 1 < self.j:
                    k_std = t
                    self.k = k + 1 + m[1]
                    continue
                self.k = k + 1
                unit = self.row_unit()
                (args if kind is not None else pre).append(t) if kind is not None else pre.append((t, unit))
                while kind is not None and p.word(self.k) in ("/", ",") and p.number(self.k + 1) is not None:
                    args.append(p.toks[self.k + 1])
                    self.k += 2
                continue
            if t.text == "(":
                self.k = k + 1
                while self.k < self.j and p.number(self.k) is not None:
                    args.append(p.toks[self.k])
                    self.k += 1
                    m = p.match(STD_WORDS, self.k)
                    if m is not None:
                        k_std = args.pop()
                        self.k += m[1]
                    if p.word(self.k) == ",":
                        self.k += 1
                if p.word(self.k) != ")":
                    raise self.fail(k, "numbers in parentheses, e.g. SMA(20) or MACD(12, 26, 9)")
                self.k += 1
                continue
            if t.text in ("of", "over", "in", "for", "across", "from", "on", "using", "with"):
                if self.of_clause(k):
                    continue
                raise self.fail(k)
            if t.text in ("period", "length", "lookback", "window") and p.number(k + 1) is not None:
                post_n = p.toks[k + 1]
                self.k = k + 2
                continue
            m = p.match(NOUNS, k)
            if m is not None and k + m[1] <= self.j:
                if kind is not None:
                    raise self.fail(k, reason="two indicators in one value")
                kind, fixed = m[0][0], dict(m[0][1])
                kind_at = k
                self.k = k + m[1]
                continue
            m = p.match(LINES, k)
            if m is not None:
                line = m[0]
                self.k = k + m[1]
                continue
            if t.text == "line":
                self.k = k + 1
                line = line or "line"
                continue
            if t.text == "level":
                level = True
                self.k = k + 1
                continue
            m = p.match(BANDS, k)
            if m is not None and band is None:
                band = m[0]
                self.k = k + m[1]
                continue
            if t.text in ("band", "bands"):
                band_word = True
                self.k = k + 1
                continue
            m = p.match(EXTREMES, k)
            if m is not None:
                extreme = m[0]
                self.k = k + m[1]
                continue
            if t.text == "session":
                session = True
                self.k = k + 1
                continue
            if t.text == "rolling":
                self.k = k + 1
                continue
            m = p.match(PRICES, k)
            if m is not None:
                if price is not None:
                    raise self.fail(k, reason="two prices in one value")
                price = m[0]
                self.k = k + m[1]
                continue
            if t.text in TIME_UNITS:
                raise self.fail(
                    k, "a window in rows, e.g. '20 period'", "windows count rows of the data, not clock time"
                )
            raise self.fail(k)
        return self.resolve(
            subject, the, kind, kind_at, fixed, pre, args, post_n, k_std, band, line, price, extreme,
            band_word, level, session,
        )  # fmt: skip

    def row_unit(self) -> bool:
        p = self.p
        if p.word(self.k) in TIME_UNITS:
            raise self.fail(
                self.k - 1,
                "a window in rows, e.g. '20 period'",
                "windows count rows of the data, not clock time",
            )
        if p.word(self.k) in ROW_UNITS:
            self.k += 1
            return True
        return False

    def of_clause(self, k: int) -> bool:
        """of/over/in [the] [last|past] N [unit]  |  of/on [the] PRICE"""
        p = self.p
        self.k = k + 1
        while p.word(self.k) in (
            "the",
            "of",
            "last",
            "past",
            "previous",
            "prior",
            "a",
            "period",
            "length",
            "lookback",
        ):
            self.k += 1
        t = p.number(self.k)
        if t is not None and self.k < self.j:
            self.k += 1
            self.row_unit()
            self.post_ns.append(t)
            return True
        m = p.match(PRICES, self.k)
        if m is not None and p.word(k) in ("of", "on", "using", "from"):
            self.sources.append(m[0])
            self.k += m[1]
            return True
        self.k = k
        return False

    def resolve(
        self,
        subject: Any,
        the: Any,
        kind: Any,
        kind_at: Any,
        fixed: Any,
        pre: Any,
        args: Any,
        post_n: Any,
        k_std: Any,
        band: Any,
        line: Any,
        price: Any,
        extreme: Any,
        band_word: Any,
        level: Any,
        session: Any,
    ) -> Any:
        p = self.p
        post = list(self.post_ns)
        if post_n is not None:
            post.append(post_n)
        source = self.sources[0] if self.sources else None
        if len(self.sources) > 1:
            raise self.fail(self.i, reason="two sources in one value")
        numbers = [t for t, _ in pre] + args + post
        has_unit = any(u for _, u in pre) or bool(post)
        at = self.i

        def ints(ts: list[Tok]) -> list[Any]:
            return [int(t.value) if t.value.is_integer() else t.value for t in ts]

        # -- indicators named by a noun (or a MACD line / band word with context)
        if kind is None and line in ("signal", "hist") and price is None:
            ctx = subject if isinstance(subject, dict) and subject.get("ind") == "macd" else p.last_macd
            if ctx is None:
                raise self.fail(at, reason="a signal line or histogram of what? say 'the MACD signal line'")
            kind, fixed = "macd", {k: v for k, v in ctx.items() if k not in ("ind", "line")}
            fixed["line"] = line
            line = None
        if kind is None and (band_word or band is not None) and price is None and extreme is None:
            ctx = (
                subject
                if isinstance(subject, dict) and subject.get("ind") == "bollinger"
                else p.last_bollinger
            )
            if ctx is None:
                raise self.fail(at, reason="which bands? say 'the upper Bollinger band'")
            kind, fixed = "bollinger", {k: v for k, v in ctx.items() if k not in ("ind", "band")}
        if kind is not None:
            if level or (session and kind != "vwap"):
                raise self.fail(at)
            node: dict[str, Any] = {"ind": kind, **fixed}
            if price is not None:
                if source is not None:
                    raise self.fail(at, reason="two sources in one value")
                source = price
            if source is not None:
                if kind == "atr":
                    raise self.fail(at, reason="ATR is computed from high, low and close; it takes no source")
                node["source"] = source
            if kind == "macd":
                if line == "line":
                    line = None
                if line is not None:
                    node["line"] = line
                if pre or post or len(args) not in (0, 2, 3):
                    raise self.fail(at, "MACD or MACD(12, 26, 9)")
                node.update(zip(("fast", "slow", "signal"), ints(args), strict=False))
            elif kind == "bollinger":
                if line is not None:
                    raise self.fail(at)
                if band is None:
                    raise self.fail(
                        at, "'upper', 'middle' or 'lower' (e.g. the upper Bollinger band)", "which band?"
                    )
                node["band"] = band
                if len(numbers) > 2 or (k_std is not None and len(numbers) > 1):
                    raise self.fail(at, "Bollinger(20, 2) or the 20 period, 2 standard deviation upper band")
                node.update(zip(("n", "k"), ints(numbers), strict=False))
                if k_std is not None:
                    node["k"] = k_std.value
            else:
                if line is not None or band is not None or k_std is not None:
                    raise self.fail(at)
                if len(numbers) > 1:
                    raise self.fail(at, f"one period for {kind}")
                if numbers:
                    node["n"] = ints(numbers)[0]
                if session:
                    if numbers:
                        raise self.fail(at, reason="a session VWAP has no period")
                    node["n"] = 0
                if "n" not in node and kind in ("sma", "ema", "wma", "zscore", "realized_vol"):
                    name = p.words(kind_at, kind_at + 1)
                    raise self.fail(
                        at,
                        f"a period, e.g. 'the 50 day {name}' or '{name.upper()}(50)'",
                        f"{name} needs a period",
                    )
            return self.checked(node, at)
        # -- rolling highs and lows: "the 20 day high", "the highest close of the last 20 bars"
        if extreme is not None or (price in ("high", "low") and numbers):
            if extreme is None:
                extreme = "highest" if price == "high" else "lowest"
                src = price
            else:
                src = price or source or "close"
            if len(numbers) != 1 or band is not None or line is not None or level:
                raise self.fail(
                    at, "one period, e.g. 'the 20 day high' or 'the highest close of the last 20 bars'"
                )
            return self.checked({"ind": extreme, "n": ints(numbers)[0], "source": src}, at)
        if price is not None:
            if numbers or band is not None or line is not None or source is not None:
                raise self.fail(at)
            return {"price": price}
        # -- numbers
        if len(numbers) == 1 and band is None and line in (None, "line") and k_std is None and not session:
            (t,) = numbers
            ma = isinstance(subject, dict) and subject.get("ind") in MOVING_AVERAGES
            if the and ma and not level:  # "crosses above the 200": the same kind of moving average
                return self.checked({**subject, "n": ints(numbers)[0]}, at)
            if has_unit:
                raise self.fail(at, reason="a period without an indicator")
            return t.value
        raise self.fail(at)

    def checked(self, node: dict[str, Any], at: int) -> dict[str, Any]:
        try:
            rules.node_key(node)
        except SpecError as exc:
            raise self.fail(at, reason=str(exc).replace("value.", "", 1)) from None
        return node
