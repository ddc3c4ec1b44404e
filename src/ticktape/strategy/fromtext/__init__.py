"""Strategies from words: plain English -> a strategy spec (JSON).

:func:`parse` is deterministic and rule-based: a tokenizer and a small
recursive-descent grammar (rules, conditions, values, templates, options).
It never guesses: a part it cannot read raises :class:`CouldNotUnderstand`
quoting the exact words (from the first token it could not read to the end of
that phrase) and saying what it expected there. The spec it returns always
passes :func:`ticktape.strategy.catalog.validate_spec` and is normalized (every
parameter present), so it is ready to edit.

With ``llm=True`` and ``TICKTAPE_LLM_URL`` set, a sentence the grammar cannot
read is sent to an OpenAI-compatible chat-completions endpoint (see
:func:`llm_parse`), and what comes back is validated like any spec.

Conventions (also in docs/strategies-from-text.md): windows count rows of the
data ("50-day", "50 period", "50 bar" and "50 tick" all mean n = 50 rows, so
on tick data a "50-day SMA" spans 50 ticks); "moving average" alone means a
simple one; "sell"/"exit"/"close" close the long (they do not open a short:
say "short" for that); "price" is the close (on ticks: the tick's price).

The package: :mod:`~.tokens` (the tokenizer), :mod:`~.lexicon` (the words it
knows), :mod:`~.grammar` (the parser), :mod:`~.llm` (the fallback).
"""

from __future__ import annotations

from typing import Any

from ticktape.errors import CouldNotUnderstand, LLMError
from ticktape.strategy.fromtext.grammar import Parser
from ticktape.strategy.fromtext.llm import llm_parse, system_prompt
from ticktape.strategy.fromtext.tokens import tokenize

__all__ = ["CouldNotUnderstand", "LLMError", "llm_parse", "parse", "system_prompt", "tokenize"]


def parse(text: str, *, llm: bool = False, timeout: float = 30.0) -> dict[str, Any]:
    """Turn an English description of a strategy into a spec ``{"strategy", "params"}``.

    Parameters
    ----------
    text
        E.g. ``"buy when the 50 period moving average crosses above the 200
        and sell when RSI is above 70"`` or ``"RSI mean reversion 30/70, long
        only, stop loss 2%"``. The grammar is described in
        docs/strategies-from-text.md.
    llm
        When the rule-based parser cannot read the text, ask the LLM at
        ``TICKTAPE_LLM_URL`` instead (:func:`llm_parse`).
    timeout
        Seconds to wait for the LLM.

    Returns
    -------
    dict
        A normalized spec that passes :func:`ticktape.strategy.catalog.validate_spec`.

    Raises
    ------
    CouldNotUnderstand
        A part of the text was not understood (the message quotes it).
    SpecError
        The text was understood but asks for invalid parameters.
    LLMError
        ``llm=True`` and the fallback failed.

    Examples
    --------
    >>> parse("20 day breakout, long only")["params"]["n"]
    20
    >>> parse("buy when RSI(14) drops below 30 and sell when RSI is above 70")["params"]["entry"]
    {'op': 'crosses_below', 'left': {'ind': 'rsi', 'n': 14, 'source': 'close'}, 'right': 30.0}
    >>> parse("buy when the moon is full")
    Traceback (most recent call last):
    ...
    ticktape.errors.CouldNotUnderstand: could not understand: "moon"; expected a number, ...
    """
    try:
        return Parser(text).parse()
    except CouldNotUnderstand as exc:
        if not llm:
            raise
        return llm_parse(text, timeout=timeout, rule_error=exc)
