"""Strategies from words: phrasings -> specs, rejections quoting the right words, the LLM fallback."""

from __future__ import annotations

import doctest
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ticktape.strategy.fromtext
from ticktape.errors import CouldNotUnderstand, LLMError, SpecError
from ticktape.strategy import build, catalog
from ticktape.strategy.fromtext import llm_parse, parse, tokenize
from ticktape.testing import market

PRICE = {"price": "close"}


def ind(kind: str, **params: Any) -> dict[str, Any]:
    return {"ind": kind, **params}


def cmp(op: str, left: Any, right: Any) -> dict[str, Any]:
    return {"op": op, "left": left, "right": right}


def spec(strategy: str, **params: Any) -> dict[str, Any]:
    return {"strategy": strategy, "params": params}


RSI = ind("rsi")
SMA50, SMA200 = ind("sma", n=50), ind("sma", n=200)
MACD = ind("macd")
SIGNAL = ind("macd", line="signal")
HIST = ind("macd", line="hist")

# (text, expected spec before normalization: parse must return exactly validate_spec(expected))
CASES: list[tuple[str, dict[str, Any]]] = [
    # -- the pitch sentence
    (
        "buy when the 50 period moving average crosses above the 200 and sell when RSI is above 70",
        spec("rules", entry=cmp("crosses_above", SMA50, SMA200), exit=cmp(">", RSI, 70)),
    ),
    # -- moving averages in their usual phrasings
    (
        "buy when the 50-day SMA crosses above the 200-day SMA, sell when the 50-day SMA crosses below the 200-day SMA",
        spec("rules", entry=cmp("crosses_above", SMA50, SMA200), exit=cmp("crosses_below", SMA50, SMA200)),
    ),
    (
        "buy when SMA(50) > SMA(200) and sell when SMA(50) < SMA(200)",
        spec("rules", entry=cmp(">", SMA50, SMA200), exit=cmp("<", SMA50, SMA200)),
    ),
    (
        "go long when the 20 EMA crosses over the 50 EMA; exit when the 20 EMA crosses under the 50 EMA",
        spec(
            "rules",
            entry=cmp("crosses_above", ind("ema", n=20), ind("ema", n=50)),
            exit=cmp("crosses_below", ind("ema", n=20), ind("ema", n=50)),
        ),
    ),
    (
        "go long when the 50-day SMA is above the 200-day SMA; exit when it falls below the 200-day SMA",
        spec("rules", entry=cmp(">", SMA50, SMA200), exit=cmp("crosses_below", SMA50, SMA200)),
    ),
    (
        "buy when price crosses above the 10 period weighted moving average and sell when price crosses below WMA(10)",
        spec(
            "rules",
            entry=cmp("crosses_above", PRICE, ind("wma", n=10)),
            exit=cmp("crosses_below", PRICE, ind("wma", n=10)),
        ),
    ),
    (
        "buy when price is above the 200 day moving average and the 50 crosses above the 200, "
        "sell when price is below the 200 day moving average",
        spec(
            "rules",
            entry={"all": [cmp(">", PRICE, SMA200), cmp("crosses_above", SMA50, SMA200)]},
            exit=cmp("<", PRICE, SMA200),
        ),
    ),
    (
        "buy when the fifty day moving average crosses above the two hundred day moving average "
        "and sell when it crosses below the two hundred day moving average",
        spec("rules", entry=cmp("crosses_above", SMA50, SMA200), exit=cmp("crosses_below", SMA50, SMA200)),
    ),
    (
        "buy when the 1-day SMA crosses above the 20-day SMA and sell when RSI is above 70",
        spec("rules", entry=cmp("crosses_above", ind("sma", n=1), ind("sma", n=20)), exit=cmp(">", RSI, 70)),
    ),
    # -- RSI
    (
        "buy when RSI(14) drops below 30 and sell when RSI is above 70",
        spec("rules", entry=cmp("crosses_below", RSI, 30), exit=cmp(">", RSI, 70)),
    ),
    (
        "when RSI drops below thirty, buy; when RSI rises above seventy, sell",
        spec("rules", entry=cmp("crosses_below", RSI, 30), exit=cmp("crosses_above", RSI, 70)),
    ),
    (
        "buy when the 2 period RSI < 10, sell when the 2 period RSI > 90",
        spec("rules", entry=cmp("<", ind("rsi", n=2), 10), exit=cmp(">", ind("rsi", n=2), 90)),
    ),
    (
        "buy when RSI is between 20 and 40 and sell when RSI > 60",
        spec("rules", entry={"all": [cmp(">", RSI, 20), cmp("<", RSI, 40)]}, exit=cmp(">", RSI, 60)),
    ),
    (
        "buy when RSI(14) is above 50 and below 70 and sell when RSI is at most 40",
        spec("rules", entry={"all": [cmp(">", RSI, 50), cmp("<", RSI, 70)]}, exit=cmp("<=", RSI, 40)),
    ),
    (
        "short when RSI rises above 80 and cover when RSI drops below 50",
        spec("rules", short_entry=cmp("crosses_above", RSI, 80), short_exit=cmp("crosses_below", RSI, 50)),
    ),
    (
        "buy when the relative strength index is not above 30, sell when RSI >= 65",
        spec("rules", entry=cmp("<=", RSI, 30), exit=cmp(">=", RSI, 65)),
    ),
    # -- MACD
    (
        "buy when MACD crosses above its signal line and sell when the MACD histogram turns negative",
        spec("rules", entry=cmp("crosses_above", MACD, SIGNAL), exit=cmp("crosses_below", HIST, 0)),
    ),
    (
        "buy when the MACD histogram turns positive and sell when MACD crosses below the signal line",
        spec("rules", entry=cmp("crosses_above", HIST, 0), exit=cmp("crosses_below", MACD, SIGNAL)),
    ),
    (
        "buy when MACD(8, 21, 5) crosses above its signal line, sell when the MACD histogram is negative",
        spec(
            "rules",
            entry=cmp(
                "crosses_above",
                ind("macd", fast=8, slow=21, signal=5),
                ind("macd", fast=8, slow=21, signal=5, line="signal"),
            ),
            exit=cmp("<", HIST, 0),
        ),
    ),
    # -- Bollinger bands
    (
        "buy when price closes above the upper Bollinger band and sell when price crosses below the middle band",
        spec(
            "rules",
            entry=cmp(">", PRICE, ind("bollinger", band="upper")),
            exit=cmp("crosses_below", PRICE, ind("bollinger", band="middle")),
        ),
    ),
    (
        "buy when price < lower bollinger band(20, 2.5) and sell when price > the upper band",
        spec(
            "rules",
            entry=cmp("<", PRICE, ind("bollinger", n=20, k=2.5, band="lower")),
            exit=cmp(">", PRICE, ind("bollinger", n=20, k=2.5, band="upper")),
        ),
    ),
    (
        "buy when price dips below the lower Bollinger band and sell when price rises above the middle "
        "Bollinger band, no shorts",
        spec(
            "rules",
            entry=cmp("crosses_below", PRICE, ind("bollinger", band="lower")),
            exit=cmp("crosses_above", PRICE, ind("bollinger", band="middle")),
            long_only=True,
        ),
    ),
    (
        "buy when price < the 20 period 2.5 standard deviation lower Bollinger band, "
        "sell when price > the SMA with a period of 20",
        spec(
            "rules",
            entry=cmp("<", PRICE, ind("bollinger", n=20, k=2.5, band="lower")),
            exit=cmp(">", PRICE, ind("sma", n=20)),
        ),
    ),
    (
        "sell short when RSI > 80, buy to cover when RSI < 50",
        spec("rules", short_entry=cmp(">", RSI, 80), short_exit=cmp("<", RSI, 50)),
    ),
    # -- highs and lows, breakouts
    (
        "buy when price breaks the 20 day high, sell when price breaks the 10 day low",
        spec(
            "rules",
            entry=cmp("crosses_above", PRICE, ind("highest", n=20, source="high")),
            exit=cmp("crosses_below", PRICE, ind("lowest", n=10, source="low")),
        ),
    ),
    (
        "buy when price makes a new 20 day high, sell when price makes a new 10 day low, stop loss 3%",
        spec(
            "rules",
            entry=cmp(">", PRICE, ind("highest", n=20, source="high")),
            exit=cmp("<", PRICE, ind("lowest", n=10, source="low")),
            stop_loss=0.03,
        ),
    ),
    (
        "buy when volume is above the 20 day SMA of volume and price is above the 50 day high, "
        "sell when price is below the lowest close of the last 20 bars",
        spec(
            "rules",
            entry={
                "all": [
                    cmp(">", {"price": "volume"}, ind("sma", n=20, source="volume")),
                    cmp(">", PRICE, ind("highest", n=50, source="high")),
                ]
            },
            exit=cmp("<", PRICE, ind("lowest", n=20, source="close")),
        ),
    ),
    # -- other indicators
    (
        "buy when the 20-period z-score is below -2, sell when the z-score of price over 20 periods is above 0",
        spec("rules", entry=cmp("<", ind("zscore", n=20), -2), exit=cmp(">", ind("zscore", n=20), 0)),
    ),
    (
        "buy when ATR(14) > 2 and price > VWAP, sell when price < VWAP",
        spec(
            "rules",
            entry={"all": [cmp(">", ind("atr"), 2), cmp(">", PRICE, ind("vwap"))]},
            exit=cmp("<", PRICE, ind("vwap")),
        ),
    ),
    (
        "buy when the 20 day realized volatility is below 0.2 and price crosses above the 100 day EMA, "
        "exit when price crosses below the 100 day EMA",
        spec(
            "rules",
            entry={
                "all": [
                    cmp("<", ind("realized_vol", n=20), 0.2),
                    cmp("crosses_above", PRICE, ind("ema", n=100)),
                ]
            },
            exit=cmp("crosses_below", PRICE, ind("ema", n=100)),
        ),
    ),
    (
        "buy when the mid is below the 100 period VWAP, sell when the mid is above VWAP(100)",
        spec(
            "rules",
            entry=cmp("<", {"price": "mid"}, ind("vwap", n=100)),
            exit=cmp(">", {"price": "mid"}, ind("vwap", n=100)),
        ),
    ),
    # -- and / or, options
    (
        "enter long if the 10 EMA crosses over the 30 EMA or RSI crosses above 50, exit long if the 10 EMA "
        "crosses under the 30 EMA, take profit 10%, stop loss 5%",
        spec(
            "rules",
            entry={
                "any": [
                    cmp("crosses_above", ind("ema", n=10), ind("ema", n=30)),
                    cmp("crosses_above", RSI, 50),
                ]
            },
            exit=cmp("crosses_below", ind("ema", n=10), ind("ema", n=30)),
            take_profit=0.10,
            stop_loss=0.05,
        ),
    ),
    (
        "buy when the 20 EMA crosses above the 50 EMA, sell when the 20 EMA crosses below the 50 EMA, "
        "take profit of 5%, risk 10% of equity",
        spec(
            "rules",
            entry=cmp("crosses_above", ind("ema", n=20), ind("ema", n=50)),
            exit=cmp("crosses_below", ind("ema", n=20), ind("ema", n=50)),
            take_profit=0.05,
            sizing="equity",
            fraction=0.1,
        ),
    ),
    (
        "buy 100 shares when RSI < 30 and sell when RSI > 70, long only, with a 2% stop loss",
        spec(
            "rules", entry=cmp("<", RSI, 30), exit=cmp(">", RSI, 70), size=100, long_only=True, stop_loss=0.02
        ),
    ),
    (
        "buy when RSI falls below 30 and sell when RSI is above 70 using 50% of equity per trade",
        spec(
            "rules",
            entry=cmp("crosses_below", RSI, 30),
            exit=cmp(">", RSI, 70),
            sizing="equity",
            fraction=0.5,
        ),
    ),
    (
        "buy when RSI < 25 with a stop loss of 2% and a take profit of 4%",
        spec("rules", entry=cmp("<", RSI, 25), stop_loss=0.02, take_profit=0.04),
    ),
    (
        "buy when price is above the 50 day SMA or price is above VWAP, "
        "sell when price is below VWAP and price is below the 50 day SMA, trade 50 shares",
        spec(
            "rules",
            entry={"any": [cmp(">", PRICE, SMA50.copy() | {"n": 50}), cmp(">", PRICE, ind("vwap"))]},
            exit={"all": [cmp("<", PRICE, ind("vwap")), cmp("<", PRICE, SMA50)]},
            size=50,
        ),
    ),
    # -- templates by their common names
    ("RSI mean reversion 30/70", spec("rsi_reversion", lower=30, upper=70)),
    ("RSI(2) mean reversion 10/90 with exit at 50", spec("rsi_reversion", n=2, lower=10, upper=90, exit=50)),
    (
        "rsi mean reversion with period 10, oversold 25, overbought 75, exit at 55",
        spec("rsi_reversion", lower=25, upper=75, exit=55, n=10),
    ),
    ("moving average crossover 20 and 50", spec("ma_crossover", fast=20, slow=50)),
    ("a 20/50 MA crossover", spec("ma_crossover", fast=20, slow=50)),
    ("ema crossover 12/26 long only", spec("ma_crossover", fast=12, slow=26, ma="ema", long_only=True)),
    (
        "SMA crossover of 10 and 30 using EMAs, size 10",
        spec("ma_crossover", fast=10, slow=30, ma="ema", size=10),
    ),
    ("golden cross", spec("ma_crossover", fast=50, slow=200, ma="sma")),
    ("20 day breakout", spec("breakout", n=20)),
    ("55 day breakout with a 20 day exit", spec("breakout", n=55, exit_n=20)),
    ("breakout 55/20, take profit 10%", spec("breakout", n=55, exit_n=20, take_profit=0.1)),
    ("bollinger reversion", spec("bollinger_reversion")),
    (
        "bollinger band mean reversion 20 period 2.5 standard deviations, 200 shares",
        spec("bollinger_reversion", n=20, k=2.5, size=200),
    ),
    ("VWAP reversion", spec("vwap_reversion")),
    ("session VWAP reversion, long only", spec("vwap_reversion", n=0, long_only=True)),
    ("VWAP reversion with a 100 period window", spec("vwap_reversion", n=100)),
    (
        "vwap reversion entry z 2.5 exit z 0.5, z-score window 50",
        spec("vwap_reversion", entry_z=2.5, exit_z=0.5, z_n=50),
    ),
    ("pairs trade between KO and PEP", spec("pairs", symbols=["KO", "PEP"])),
    (
        "pairs trading KO/PEP with a 60 period lookback, entry z 2, exit z 0.5, ratio hedge",
        spec("pairs", symbols=["KO", "PEP"], n=60, entry_z=2, exit_z=0.5, hedge="ratio"),
    ),
    ("market maker 2 ticks wide max inventory 500", spec("market_maker", spread_ticks=1, max_inventory=500)),
    (
        "market making 3 ticks each side of the mid, max inventory 1000, skew 0.5, size 10, tick size 0.05",
        spec("market_maker", spread_ticks=3, max_inventory=1000, skew=0.5, size=10, tick_size=0.05),
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[t[:60] for t, _ in CASES])
def test_phrasings(text: str, expected: dict[str, Any]) -> None:
    got = parse(text)
    assert got == catalog.validate_spec(expected)
    assert catalog.validate_spec(got) == got  # always a valid, normalized spec
    json.dumps(got)  # JSON as is


def test_there_are_enough_phrasings_and_every_template_is_covered() -> None:
    assert len(CASES) >= 40
    named = {expected["strategy"] for _, expected in CASES}
    assert named >= set(catalog.TEMPLATES) - {"sma_crossover"}


def test_the_pitch_sentence_in_full() -> None:
    got = parse("buy when the 50 period moving average crosses above the 200 and sell when RSI is above 70")
    assert got == {
        "strategy": "rules",
        "params": {
            "long_only": False,
            "size": 100.0,
            "sizing": "fixed",
            "fraction": 1.0,
            "stop_loss": 0.0,
            "take_profit": 0.0,
            "entry": {
                "op": "crosses_above",
                "left": {"ind": "sma", "n": 50, "source": "close"},
                "right": {"ind": "sma", "n": 200, "source": "close"},
            },
            "exit": {"op": ">", "left": {"ind": "rsi", "n": 14, "source": "close"}, "right": 70.0},
            "short_entry": None,
            "short_exit": None,
        },
    }


@pytest.fixture(scope="module")
def ticks() -> Any:
    return market(3000, seed=5)  # a trade every third tick (VWAP needs volume)


def test_every_parsed_spec_builds_and_runs(ticks: Any) -> None:
    """The real strategies accept what the parser writes: build each, backtest the single-symbol ones."""
    for text, _ in CASES:
        got = parse(text)
        build(got["strategy"], got["params"])
        if got["strategy"] != "pairs":
            result = ticktape.backtest(ticks, got["strategy"], got["params"], batch_size=701)
            assert result.ticks_in == len(ticks), text


def test_the_pitch_sentence_trades_the_same_in_any_batch_size(ticks: Any) -> None:
    got = parse("buy when the 20 period moving average crosses above the 50 and sell when RSI is above 70")
    a = ticktape.backtest(ticks, got["strategy"], got["params"])
    b = ticktape.backtest(ticks, got["strategy"], got["params"], batch_size=97)
    assert len(a.fills) > 0
    assert a.extra["raw"]["fills"].tobytes() == b.extra["raw"]["fills"].tobytes()


# (text, the exact words the error must quote, a fragment of the explanation)
REJECTED: list[tuple[str, str, str]] = [
    ("buy when the moon is full", "moon", "expected a number, a price"),
    ("buy when price crosses above the 50 day SMMA and sell when price < 3", "SMMA", "an indicator"),
    ("buy when price is 2% above VWAP and sell when price < VWAP", "is 2% above VWAP", "percent distance"),
    ("buy when price crosses above the 5 minute SMA, sell when RSI > 70", "5 minute SMA", "not clock time"),
    ("buy when SMA crosses above 3, sell when RSI > 70", "SMA", "needs a period"),
    (
        "buy when price crosses the 20 day SMA and sell when RSI is above 70",
        "crosses the 20 day SMA",
        "'above' or 'below'",
    ),
    ("buy when RSI drops below 30", "buy when RSI drops below 30", "not when to get out"),
    ("sell when RSI > 70", "sell when RSI > 70", "not when to enter"),
    ("RSI mean reversion 30/70 and buy when RSI < 30", "buy when RSI < 30", "cannot be added"),
    ("buy when price > 10 and sell when price < 5 with a stop loss of 2", "2", "a percentage"),
    ("market maker 3 ticks wide", "3 ticks wide", "even number of ticks"),
    ("pairs trade between ko and pep", "between ko and pep", "symbols in capitals"),
    ("mean reversion", "mean reversion", "which mean reversion"),
    ("moving average crossover 20", "20", "two periods"),
    ("buy when price is below the lower band, sell when price > 3", "the lower band", "which bands"),
    ("buy when RSI < 30 and sell when RSI > 70, stop loss 2%, stop loss 3%", "stop loss 3%", "already set"),
    ("buy when the stochastic is below 20 and sell when it is above 80", "stochastic", "an indicator"),
    ("buy when 3 > 2, sell when RSI > 70", "3 > 2", "compares two numbers"),
    ("make money", "make money", "a rule"),
    ("", "", "nothing to read"),
    ("buy when RSI < 30 and sell when RSI > 70 every Tuesday", "every Tuesday", "expected a number"),
    ("buy when RSI > 30 and sell when RSI <", "sell when RSI <", "the text ends here"),
    ("buy when RSI", "buy when RSI", "expected a comparison"),
    ("RSI mean reversion, stop loss", "stop loss", "a percentage for the stop loss"),
    ("cover when RSI drops below 50 moving, short when RSI > 80", "moving", "expected a number"),
]


@pytest.mark.parametrize(("text", "words", "why"), REJECTED, ids=[t[:50] or "empty" for t, _, _ in REJECTED])
def test_rejections_quote_the_words(text: str, words: str, why: str) -> None:
    with pytest.raises(CouldNotUnderstand) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith(f'could not understand: "{words}"'), message
    assert info.value.words == words
    assert why in message
    assert words in text  # the exact words, as typed


_TEXTS = [t for t, _ in CASES] + [t for t, _, _ in REJECTED if t]


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    words = draw(st.sampled_from(_TEXTS)).split()
    vocab = sorted({w for t in _TEXTS for w in t.split()})
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(words)))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        if action == "insert" or not words:
            words.insert(i, draw(st.sampled_from(vocab)))
        elif action == "delete":
            del words[min(i, len(words) - 1)]
        else:
            words[min(i, len(words) - 1)] = draw(st.sampled_from(vocab))
    return " ".join(words)


@settings(max_examples=400, deadline=None)
@given(_mutated())
def test_any_text_gives_a_valid_spec_or_a_clear_error(text: str) -> None:
    """Mutated sentences: a valid spec, or an error quoting words that are in the text; never a crash."""
    try:
        got = parse(text)
    except CouldNotUnderstand as exc:
        assert exc.words in text
        assert str(exc).startswith(f'could not understand: "{exc.words}"')
    except SpecError as exc:
        assert str(exc).startswith("params.")
    else:
        assert catalog.validate_spec(got) == got


def test_understood_but_invalid_is_a_spec_error_naming_the_field() -> None:
    with pytest.raises(SpecError, match=r"params.short_entry: cannot be used with long_only"):
        parse("short when RSI > 80, cover when RSI < 50, long only")
    with pytest.raises(SpecError, match=r"params.upper"):
        parse("rsi mean reversion lower 40 upper 20")


def test_tokenizer_keeps_offsets_and_reads_numbers() -> None:
    text = "The 50-day SMA(20) crosses above two hundred and 2.5% or -1"
    toks = tokenize(text)
    for t in toks:
        assert text[t.start : t.end].lower().startswith(t.text.split()[0][:1]) or t.kind == "num"
    nums = [(t.value, t.pct) for t in toks if t.kind == "num"]
    assert nums == [(50.0, False), (20.0, False), (200.0, False), (2.5, True), (-1.0, False)]
    with pytest.raises(CouldNotUnderstand, match='"€"'):
        tokenize("buy when price > 3€")


def test_docstring_examples() -> None:
    result = doctest.testmod(
        ticktape.strategy.fromtext, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    )
    assert result.attempted > 0
    assert result.failed == 0


# --------------------------------------------------------------------------
# the LLM fallback against a real local HTTP server speaking chat completions


class _Server:
    """A tiny OpenAI-compatible /v1/chat/completions endpoint answering a canned completion."""

    def __init__(self) -> None:
        self.answer: str = ""
        self.status = 200
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        self.stall = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if server.stall:
                    server.release.wait(10)
                    return
                payload = json.dumps(
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": server.answer},
                                "finish_reason": "stop",
                            }
                        ],
                    }
                ).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def llm_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    server = _Server()
    monkeypatch.setenv("TICKTAPE_LLM_URL", server.url)
    monkeypatch.setenv("TICKTAPE_LLM_MODEL", "test-model")
    monkeypatch.setenv("TICKTAPE_LLM_API_KEY", "sk-test")
    yield server
    server.close()


STOCHASTIC = "buy when the stochastic oscillator is below 20 and sell when it is above 80"


def test_llm_fallback_round_trip(llm_server: _Server) -> None:
    answer = spec("rules", entry=cmp("<", RSI, 20), exit=cmp(">", RSI, 80))
    llm_server.answer = "```json\n" + json.dumps(answer) + "\n```"
    with pytest.raises(CouldNotUnderstand):
        parse(STOCHASTIC)  # without llm=True the rule-based error stands
    assert llm_server.requests == []
    got = parse(STOCHASTIC, llm=True)
    assert got == catalog.validate_spec(answer)
    (request,) = llm_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    body = request["body"]
    assert body["model"] == "test-model"
    assert body["temperature"] == 0
    system, user = body["messages"]
    assert system["role"] == "system" and user == {"role": "user", "content": STOCHASTIC}
    for needle in (
        "crosses_above",
        "rsi_reversion",
        "market_maker",
        "realized_vol",
        "stop_loss",
        "bollinger",
    ):
        assert needle in system["content"]


def test_llm_is_not_asked_when_the_grammar_understands(llm_server: _Server) -> None:
    assert parse("20 day breakout", llm=True) == catalog.validate_spec(spec("breakout", n=20))
    assert llm_server.requests == []


def test_llm_invalid_spec_quotes_the_validation_error(llm_server: _Server) -> None:
    llm_server.answer = json.dumps(spec("rules", entry=cmp("<", ind("sma", n=0), 3), exit=cmp(">", RSI, 70)))
    with pytest.raises(LLMError, match=r"invalid: params.entry.left.n: must be an integer >= 1, got 0"):
        parse(STOCHASTIC, llm=True)


def test_llm_answer_that_is_not_json(llm_server: _Server) -> None:
    llm_server.answer = "Sure! Here is your strategy: buy low, sell high."
    with pytest.raises(LLMError, match=r"not JSON"):
        parse(STOCHASTIC, llm=True)


def test_llm_says_it_cannot(llm_server: _Server) -> None:
    llm_server.answer = json.dumps({"error": "stochastic oscillators are not available"})
    with pytest.raises(LLMError, match=r"could not express it either: stochastic oscillators"):
        parse(STOCHASTIC, llm=True)


def test_llm_http_error(llm_server: _Server) -> None:
    llm_server.status = 500
    llm_server.answer = "{}"
    with pytest.raises(LLMError, match=r"HTTP 500"):
        parse(STOCHASTIC, llm=True)


def test_llm_timeout(llm_server: _Server) -> None:
    llm_server.stall = True
    with pytest.raises(LLMError, match=r"no answer within 0.3 s"):
        parse(STOCHASTIC, llm=True, timeout=0.3)
    llm_server.release.set()


def test_llm_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TICKTAPE_LLM_URL", raising=False)
    with pytest.raises(LLMError, match=r"TICKTAPE_LLM_URL.*could not understand: \"stochastic oscillator\""):
        parse(STOCHASTIC, llm=True)


def test_llm_unreachable() -> None:
    with pytest.raises(LLMError, match=r"LLM at http://127.0.0.1:9/v1/chat/completions"):
        llm_parse(STOCHASTIC, url="http://127.0.0.1:9/v1", timeout=2)
