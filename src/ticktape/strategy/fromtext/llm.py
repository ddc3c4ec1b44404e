"""The LLM fallback: an OpenAI-compatible chat-completions endpoint, asked with
a system prompt generated from the parameters' declarations, its answer
validated like any spec."""

from __future__ import annotations

import json
import os
import re
import socket
import urllib.error
import urllib.request
from typing import Any

from ticktape.errors import CouldNotUnderstand, LLMError, SpecError
from ticktape.strategy import catalog, rules
from ticktape.strategy.params import Param

__all__ = ["llm_parse", "system_prompt"]


def system_prompt() -> str:
    """The system prompt sent to the LLM: the spec format, generated from the
    parameters' declarations (:mod:`ticktape.strategy.catalog`) and the rule
    tree's vocabulary (:mod:`ticktape.strategy.rules`)."""

    def describe(table: dict[str, Param]) -> str:
        parts = []
        for key, prm in table.items():
            kind = prm.kind
            if prm.choices:
                kind = "|".join(f'"{c}"' for c in prm.choices)
            elif prm.bounds():
                kind = f"{kind} {prm.bounds()}"
            default = "required" if prm.required else json.dumps(prm.default)
            extra = f" ({prm.help})" if prm.help else ""
            parts.append(f"`{key}` {kind} [{default}]{extra}")
        return ", ".join(parts)

    lines = [
        "You translate a trading strategy described in English into a JSON strategy spec for the ticktape "
        "backtester. Reply with exactly one JSON object and nothing else.",
        'The spec is {"strategy": NAME, "params": {...}}. Parameters common to every strategy: '
        + describe(catalog.COMMON)
        + ".",
        "Strategies (NAME: own parameters):",
    ]
    described = set()
    for name in catalog.TEMPLATES:
        config = catalog.strategy_class(name).Config
        if config in described:  # sma_crossover: ma_crossover under its old name
            continue
        described.add(config)
        lines.append(f"- {name}: {describe(catalog.own_params(name))}")
    lines += [
        "For `rules`, `entry` is the condition to go long, `exit` to close the long, `short_entry` / "
        "`short_exit` the same for shorts. A COND is "
        '{"op": OP, "left": VALUE, "right": VALUE} with OP one of ' + ", ".join(rules.OPS) + ", or "
        '{"all": [COND, ...]}, {"any": [COND, ...]}, {"not": COND}. crosses_above(a, b) is true when a '
        "goes from <= b to > b.",
        'A VALUE is a number, {"price": FIELD} with FIELD one of ' + ", ".join(rules.PRICE_FIELDS) + ", or "
        '{"ind": KIND, ...params} with KIND and params:',
    ]
    for kind, table in rules.INDICATORS.items():
        lines.append(f"- {kind}: {describe(table)}")
    lines += [
        "Windows count rows of the data. Percentages become fractions (stop loss 2% -> 0.02). "
        "Use only the names above. If the text does not describe a strategy that can be written this way, "
        'reply {"error": "<what cannot be expressed>"}.',
    ]
    return "\n".join(lines)


def _strip_fences(content: str) -> str:
    m = re.fullmatch(r"\s*```(?:json)?\s*(.*?)\s*```\s*", content, re.S)
    return m.group(1) if m else content.strip()


def llm_parse(
    text: str,
    *,
    url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    timeout: float = 30.0,
    rule_error: CouldNotUnderstand | None = None,
) -> dict[str, Any]:
    """Ask an OpenAI-compatible chat-completions endpoint for the spec, and validate it.

    POSTs ``{url}/chat/completions`` (standard library only) with
    :func:`system_prompt` and ``text``, temperature 0. The configuration
    comes from the arguments or the environment: ``TICKTAPE_LLM_URL`` (base
    URL, e.g. ``http://localhost:11434/v1``), ``TICKTAPE_LLM_MODEL``
    (default ``llama3.1``), ``TICKTAPE_LLM_API_KEY`` (sent as a bearer token).

    Returns
    -------
    dict
        The spec, normalized by :func:`ticktape.strategy.catalog.validate_spec`.

    Raises
    ------
    LLMError
        Not configured, no answer within ``timeout`` seconds, an HTTP error,
        an answer that is not a JSON object, or a spec that does not validate
        (the message quotes the validation error).
    """
    url = url or os.environ.get("TICKTAPE_LLM_URL")
    if not url:
        said = f"; the rule-based parser said: {rule_error}" if rule_error else ""
        raise LLMError(
            f"the LLM fallback needs TICKTAPE_LLM_URL (an OpenAI-compatible base URL, "
            f"e.g. http://localhost:11434/v1){said}"
        )
    model = model or os.environ.get("TICKTAPE_LLM_MODEL") or "llama3.1"
    api_key = api_key or os.environ.get("TICKTAPE_LLM_API_KEY")
    endpoint = url.rstrip("/") + "/chat/completions"
    body = {
        "model": model,
        "temperature": 0,
        "messages": [{"role": "system", "content": system_prompt()}, {"role": "user", "content": text}],
    }
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(endpoint, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace").strip()
        raise LLMError(f"LLM at {endpoint}: HTTP {exc.code} {exc.reason}: {detail}") from None
    except TimeoutError as exc:
        raise LLMError(f"LLM at {endpoint}: no answer within {timeout:g} s") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError | socket.timeout):
            raise LLMError(f"LLM at {endpoint}: no answer within {timeout:g} s") from None
        raise LLMError(f"LLM at {endpoint}: {exc.reason}") from None
    try:
        content = json.loads(raw)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError(f"LLM at {endpoint}: not a chat-completions response: {raw[:200]!r}") from None
    try:
        spec = json.loads(_strip_fences(str(content)))
    except ValueError as exc:
        raise LLMError(f"the LLM's answer is not JSON ({exc}): {str(content)[:200]!r}") from None
    if not isinstance(spec, dict):
        raise LLMError(f"the LLM's answer is not a JSON object: {str(content)[:200]!r}")
    if "error" in spec and "strategy" not in spec:
        raise LLMError(f"the LLM could not express it either: {spec['error']}")
    try:
        return catalog.validate_spec(spec)
    except SpecError as exc:
        raise LLMError(f"the LLM's spec is invalid: {exc}") from None
