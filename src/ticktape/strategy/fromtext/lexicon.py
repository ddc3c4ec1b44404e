"""The words the parser knows: phrase tables of actions, conditions, values
(indicators, prices), predicates, options and template names.

A table maps a phrase (a tuple of lower-case words) to what it means; the
parser takes the longest phrase that matches. The moving averages are the
``ma`` choices declared on :class:`ticktape.strategy.templates.MaCrossoverConfig`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ticktape.strategy import catalog


def phrases(table: Mapping[Any, Iterable[str]]) -> dict[tuple[str, ...], Any]:
    return {tuple(p.split()): key for key, ps in table.items() for p in ps}


ACTIONS = phrases(
    {
        "entry": [
            "buy", "go long", "goes long", "enter long", "enter a long", "enter a long position",
            "open a long", "open a long position", "open long", "get long", "long", "buy long",
        ],
        "exit": [
            "sell", "exit", "exit long", "exit the long", "exit the long position", "exit the position",
            "exit position", "close", "close long", "close the long", "close the long position",
            "close the position", "close out", "close out the long", "flatten", "get out", "sell out",
            "liquidate", "sell the position", "exit longs",
        ],
        "short_entry": [
            "short", "go short", "sell short", "short sell", "enter short", "enter a short",
            "enter a short position", "open a short", "open a short position", "open short", "get short",
        ],
        "short_exit": [
            "cover", "cover the short", "buy to cover", "close the short", "close the short position",
            "close short", "exit the short", "exit short", "exit the short position", "buy back",
        ],
    }
)  # fmt: skip
CONDWORDS = phrases(
    {"when": ["when", "whenever", "if", "once", "as soon as", "after", "while", "as long as"]}
)
AFTER_ACTION = phrases({"when": ["on"]}) | CONDWORDS

# a value's kind nouns: phrase -> (indicator kind, extra fixed params)
NOUNS: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}
for _kind, _words in {
    "sma": ["moving average", "moving averages", "simple moving average", "sma", "smas", "ma", "average"],
    "ema": ["exponential moving average", "ema", "emas", "exponential average", "exponential ma"],
    "wma": ["weighted moving average", "wma", "linear weighted moving average", "weighted average"],
    "rsi": ["rsi", "relative strength index", "relative strength"],
    "macd": ["macd", "macd line"],
    "bollinger": ["bollinger band", "bollinger bands", "bollinger"],
    "atr": ["atr", "average true range"],
    "vwap": ["vwap", "volume weighted average price"],
    "zscore": ["z score", "zscore"],
    "realized_vol": [
        "realized volatility", "realised volatility", "realized vol", "realised vol", "volatility",
        "historical volatility",
    ],
}.items():  # fmt: skip
    for _p in _words:
        NOUNS[tuple(_p.split())] = (_kind, {})
NOUNS |= {
    ("macd", "signal"): ("macd", {"line": "signal"}),
    ("macd", "signal", "line"): ("macd", {"line": "signal"}),
    ("macd", "histogram"): ("macd", {"line": "hist"}),
    ("macd", "hist"): ("macd", {"line": "hist"}),
}
MOVING_AVERAGES = catalog.params_of("ma_crossover")["ma"].choices  # the moving averages
LINES = phrases({"signal": ["signal line", "signal"], "hist": ["histogram", "hist"]})
BANDS = phrases(
    {"upper": ["upper", "top"], "lower": ["lower", "bottom"], "middle": ["middle", "center", "centre"]}
)
PRICES = phrases(
    {
        "close": [
            "price",
            "close",
            "closing price",
            "last price",
            "stock price",
            "market price",
            "the close",
        ],
        "open": ["open", "opening price"],
        "high": ["high"],
        "low": ["low"],
        "mid": ["mid", "mid price", "midpoint", "mid point"],
        "volume": ["volume"],
    }
)
EXTREMES = phrases({"highest": ["highest", "max", "maximum"], "lowest": ["lowest", "min", "minimum"]})
ROW_UNITS = {"day", "days", "period", "periods", "bar", "bars", "tick", "ticks", "candle", "candles"}
ROW_UNITS |= {"session", "sessions", "row", "rows", "sample", "samples", "daily"}
TIME_UNITS = {"second", "seconds", "minute", "minutes", "min", "mins", "hour", "hours", "hourly", "week"}
TIME_UNITS |= {"weeks", "weekly", "month", "months", "monthly", "year", "years", "yearly"}
STD_WORDS = phrases(
    {"std": ["standard deviation", "standard deviations", "std", "stdev", "stdevs", "sd", "sigma", "sigmas"]}
)
ARTICLES = {"the", "a", "an", "its", "their", "this", "that"}

# predicates
AUX = phrases(
    {
        "is": [
            "is", "are", "was", "is still", "is now", "stays", "stay", "remains", "remain", "trades",
            "is trading", "closes", "closed", "sits", "holds", "is holding", "has been", "prints",
        ],
    }
)  # fmt: skip
UP_VERBS = {"rises", "rise", "rose", "rising", "climbs", "climb", "jumps", "jump", "spikes", "rallies"}
UP_VERBS |= {"pops", "pushes", "surges", "moves up", "goes up"}
DOWN_VERBS = {
    "drops",
    "drop",
    "dropped",
    "falls",
    "fall",
    "fell",
    "falling",
    "dips",
    "dip",
    "dipped",
    "sinks",
}
DOWN_VERBS |= {"declines", "slips", "plunges", "tumbles", "sinks"}
CROSS_VERBS = {"crosses", "cross", "crossed", "crossing", "moves", "move", "moved", "goes", "go", "gets"}
CROSS_VERBS |= {"breaks", "break", "broke", "breaking", "pierces", "passes"}
TURN_VERBS = {"turns", "turn", "becomes", "become", "flips", "flip", "goes", "go", "turned"}
MAKE_VERBS = {"makes", "make", "hits", "hit", "sets", "set", "reaches", "reach", "marks", "prints"}
DIRECTIONS = phrases(
    {
        ">": ["above", "over", "higher than", "greater than", "more than", "bigger than", "larger than"],
        "<": ["below", "under", "beneath", "lower than", "less than", "smaller than"],
        ">=": [
            "above or equal to", "greater than or equal to", "at least", "at or above", "not below",
            "no less than", ">=",
        ],
        "<=": ["below or equal to", "less than or equal to", "at most", "at or below", "not above", "no more than", "<="],
    }
)  # fmt: skip
SYMBOL_OPS = {">": ">", "<": "<", ">=": ">=", "<=": "<="}
NEGATE = {">": "<=", "<": ">=", ">=": "<", "<=": ">"}
STARTERS = {"is", "are", "was", "stays", "stay", "remains", "remain", "trades", "closes", "closed", "sits"}
STARTERS |= {"holds", "has", "prints", "above", "below", "under", "beneath", "exceeds", "exceed", "between"}
STARTERS |= {">", "<", ">=", "<=", "=", "higher", "lower", "greater", "less", "at"}
STARTERS |= UP_VERBS | DOWN_VERBS | CROSS_VERBS | TURN_VERBS | MAKE_VERBS
STARTERS -= {"moves up", "goes up"}

# options (common to every strategy)
OPTION_KEYS = phrases(
    {
        "stop_loss": ["stop loss", "stoploss", "stop", "stop out", "protective stop", "stop loss order"],
        "take_profit": [
            "take profit",
            "profit target",
            "target",
            "take profits",
            "profit take",
            "take-profit",
        ],
    }
)
LONG_ONLY = phrases(
    {
        True: [
            "long only", "only long", "no shorts", "no shorting", "no short selling", "no short",
            "without shorting", "never short", "long side only", "only go long",
        ]
    }
)  # fmt: skip
SIZING_VERBS = phrases(
    {"risk": ["risk", "use", "invest", "allocate", "size", "position size", "put", "deploy", "commit"]}
)
EQUITY_WORDS = phrases(
    {
        "equity": [
            "equity", "capital", "the account", "account", "portfolio", "the portfolio", "my equity",
            "account equity", "the capital", "our equity", "cash",
        ]
    }
)  # fmt: skip
SIZE_UNITS = {"share", "shares", "unit", "units", "contract", "contracts", "coin", "coins"}
SIZE_KEYS = phrases(
    {"size": ["size", "position size", "quantity", "qty", "trade size", "order size", "trade"]}
)

# templates: phrase -> (name, fixed params)
TEMPLATE_NAMES: dict[tuple[str, ...], tuple[str, dict[str, Any]]] = {}
for (_name, _fixed), _words in {
    ("ma_crossover", ()): [
        "moving average crossover", "moving average cross", "moving average cross over", "ma crossover",
        "ma cross", "moving averages crossover", "dual moving average", "dual moving average crossover",
        "moving average crossover strategy", "simple moving average crossover", "sma crossover", "sma cross",
    ],
    ("ma_crossover", (("ma", "ema"),)): [
        "ema crossover", "ema cross", "exponential moving average crossover", "exponential moving average cross",
    ],
    ("ma_crossover", (("ma", "wma"),)): ["wma crossover", "weighted moving average crossover"],
    ("ma_crossover", (("fast", 50), ("slow", 200), ("ma", "sma"))): ["golden cross"],
    ("rsi_reversion", ()): [
        "rsi mean reversion", "rsi reversion", "rsi reversal", "mean reversion on rsi", "rsi mean-reversion",
        "rsi overbought oversold",
    ],
    ("bollinger_reversion", ()): [
        "bollinger reversion", "bollinger band reversion", "bollinger bands reversion", "bollinger mean reversion",
        "bollinger band mean reversion", "bollinger bands mean reversion", "mean reversion on bollinger bands",
    ],
    ("breakout", ()): ["breakout", "channel breakout", "donchian breakout", "donchian channel breakout"],
    ("vwap_reversion", ()): [
        "vwap reversion", "vwap mean reversion", "mean reversion to vwap", "mean reversion to the vwap",
    ],
    ("vwap_reversion", (("n", 0),)): ["session vwap reversion", "session vwap mean reversion"],
    ("pairs", ()): ["pairs trade", "pairs trading", "pair trade", "pair trading", "pairs", "pairs strategy"],
    ("market_maker", ()): ["market maker", "market making", "market-making", "market make"],
}.items():  # fmt: skip
    for _p in _words:
        TEMPLATE_NAMES[tuple(_p.split())] = (_name, dict(_fixed))
for _key in list(TEMPLATE_NAMES):
    TEMPLATE_NAMES[(*_key, "strategy")] = TEMPLATE_NAMES[_key]

VALUE_EXPECTED = (
    "a number, a price (price, close, high, low, volume) or an indicator with its period "
    "(e.g. the 50 day moving average, SMA(20), the 20 EMA, RSI(14), MACD, its signal line, "
    "the upper Bollinger band, ATR, VWAP, the 20 period z-score, 20 day realized volatility, the 20 day high)"
)
PRED_EXPECTED = (
    "a comparison such as 'crosses above', 'drops below', 'is above', 'is below', '>', "
    "'is between 30 and 70', 'turns positive' or 'breaks the 20 day high'"
)
CLAUSE_EXPECTED = (
    "a rule ('buy when ...', 'sell when ...', 'short when ...', 'cover when ...'), a template "
    "('RSI mean reversion 30/70', 'moving average crossover 20 and 50', '20 day breakout', "
    "'bollinger reversion', 'VWAP reversion', 'pairs trade between KO and PEP', 'market maker 2 ticks wide') "
    "or an option ('long only', 'stop loss 2%', 'take profit 5%', 'risk 10% of equity', '100 shares')"
)
SEPARATORS = {",", ";", ".", ":"}
