"""A backend over the `openai` package: OpenAI itself, or any server speaking its protocol.

    model = OpenAIModel("gpt-4o-mini", max_usd=2.0)                       # key from $OPENAI_API_KEY
    model = OpenAIModel("local", base_url="http://127.0.0.1:8000/v1")     # llama.cpp, vLLM, Ollama
    text = model.generate(messages, stop=["\\nObservation"], temperature=0.0, seed=0)

Retries are ours (the client's own are off): rate limits, server errors, connection errors and
timeouts are retried with exponential backoff (or the server's Retry-After), up to `max_retries`
times; any other 4xx is raised at once. `max_usd` caps the spend: once `usage.usd` reaches it, the
next call raises `BudgetExceeded` before reaching the server. The API key never appears in the
model's repr, in log lines or in the messages of the errors raised here.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import threading
import time
from pathlib import Path

from fireflan.io import DataError, ServiceError
from fireflan.models.base import BudgetExceeded, Usage, cut_at_stop

log = logging.getLogger(__name__)

# USD per million tokens: (input, output). Dated snapshots match by prefix ("gpt-4o-2024-08-06" -> gpt-4o).
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
}

NEVER_RETRIED = (501, 505)  # the server does not do this (no chat endpoint, another HTTP): asking again won't help
_PLACEHOLDER_KEY = "not-needed"  # local servers ignore the key, but the client insists on one


class OpenAIRequestError(ServiceError):
    """A call that failed for good: a 4xx the server will not change its mind about, or retries spent.
    `status` is the HTTP status of the last error (None for a connection error or a timeout)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def one_line(body: str, limit: int = 300) -> str:
    """A server's error body as one line: an HTML page's text without its tags, whitespace collapsed.

    >>> one_line("<html><head><title>501 Not Implemented</title></head>\\n<body>No chat here</body></html>")
    '501 Not Implemented No chat here'
    """
    import re

    text = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", body, flags=re.S | re.I)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _price_pair(name, value) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ValueError(f"price for model {name!r} must be [input, output] USD per million tokens, got {value!r}")
    try:
        pair = float(value[0]), float(value[1])
    except (TypeError, ValueError):
        raise ValueError(f"price for model {name!r} must be two numbers, got {value!r}") from None
    if not all(math.isfinite(x) and x >= 0 for x in pair):
        raise ValueError(f"price for model {name!r} must be finite and not negative, got {value!r}")
    return pair


def parse_prices(spec) -> dict[str, tuple[float, float]]:
    """Prices in USD per million tokens, {model: (input, output)}, from a dict, a JSON file
    ({"model": [in, out]}) or a string "model=in,out;model2=in,out". None -> {}.

    >>> parse_prices("my-model=0.5,1.5; other=0,0")
    {'my-model': (0.5, 1.5), 'other': (0.0, 0.0)}
    """
    if spec is None:
        return {}
    if isinstance(spec, Path) or (isinstance(spec, str) and (spec.endswith(".json") or Path(spec).is_file())):
        path = Path(spec)
        if not path.is_file():
            raise DataError(path, "no such price file")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(path, f"not valid JSON ({e.msg})", line=e.lineno) from None
        if not isinstance(data, dict):
            raise DataError(path, 'expected a JSON object {"model": [input, output]}')
        try:
            return parse_prices(data)
        except ValueError as e:
            raise DataError(path, str(e)) from None
    if isinstance(spec, dict):
        return {str(name): _price_pair(name, value) for name, value in spec.items()}
    if not isinstance(spec, str):
        raise ValueError(f"prices must be a dict, a JSON file or 'model=in,out;...', got {type(spec).__name__}")
    prices = {}
    for part in spec.split(";"):
        if not part.strip():
            continue
        name, eq, values = part.partition("=")
        try:
            if not eq or not name.strip():
                raise ValueError("no model name")
            prices[name.strip()] = _price_pair(name.strip(), [v.strip() for v in values.split(",")])
        except ValueError as e:
            raise ValueError(f"bad price {part.strip()!r}: expected 'model=input,output', two numbers in USD "
                             f"per million tokens ({e})") from None
    return prices


def price_for(model: str, prices: dict) -> tuple[float, float] | None:
    """The price of `model`: an exact match, else the longest key that is a prefix of it followed by
    '-' or ':' (a dated snapshot or a tag). None if unknown.

    >>> price_for("gpt-4o-2024-08-06", PRICES), price_for("gpt-4o-mini-2024-07-18", PRICES)
    ((2.5, 10.0), (0.15, 0.6))
    """
    if model in prices:
        return prices[model]
    matches = [k for k in prices if model.startswith(k) and model[len(k)] in "-:"]
    return prices[max(matches, key=len)] if matches else None


def _retry_after(headers) -> float | None:
    """Seconds the server asks us to wait (Retry-After-Ms, Retry-After as seconds or an HTTP date)."""
    if headers is None:
        return None
    for header, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(header)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / scale)
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            continue
        return max(0.0, when.timestamp() - time.time())
    return None


class OpenAIModel:
    """Chat completions from OpenAI (key from the environment variable `api_key_env`) or from any
    OpenAI-compatible server at `base_url` (a local server needs no key).

        model = OpenAIModel("gpt-4o", max_usd=5.0)
        model = OpenAIModel("qwen", base_url="http://127.0.0.1:8000/v1", prices="qwen=0,0")

    `prices` extends or overrides `PRICES` (see `parse_prices`). With `max_usd` set, the model must
    have a known price.
    """

    def __init__(self, model: str, base_url: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 max_retries: int = 5, backoff_s: float = 1.0, max_backoff_s: float = 30.0,
                 timeout_s: float = 120.0, max_usd: float | None = None, prices: dict | str | None = None):
        import openai

        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        key = os.environ.get(api_key_env)
        if not key:
            if base_url is None:
                raise ValueError(f"no API key: set the environment variable {api_key_env} "
                                 "(or pass base_url=... for a local server that needs none)")
            key = _PLACEHOLDER_KEY
        self.name = model
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self.max_usd = max_usd
        self.price = price_for(model, {**PRICES, **parse_prices(prices)})
        if max_usd is not None and self.price is None:
            raise ValueError(f"no price known for model {model}: pass prices=... (e.g. '{model}=in,out', "
                             "USD per million tokens) to use max_usd")
        self._client = openai.OpenAI(api_key=key, base_url=base_url, max_retries=0, timeout=timeout_s)
        self.base_url = str(self._client.base_url).rstrip("/")
        self.usage, self.last_usage = Usage(), Usage()
        self._lock = threading.Lock()
        self._sleep = time.sleep

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.name!r}, base_url={self.base_url!r})"

    def _redact(self, text: str) -> str:
        key = self._client.api_key
        return text.replace(key, "***") if key and key != _PLACEHOLDER_KEY else text

    def _describe(self, error) -> tuple[int | None, str]:
        """(HTTP status or None, a one-line description with the server's own message)."""
        import openai

        if isinstance(error, openai.APIStatusError):
            body = error.body
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                said = body["message"]
            elif isinstance(body, str) and body.strip():
                said = one_line(body)
            else:
                said = error.message
            return error.status_code, self._redact(f"HTTP {error.status_code}: {said}")
        return None, self._redact(f"{type(error).__name__}: {error}")

    def _delay(self, error, attempt: int) -> float | None:
        """Seconds to wait before retrying after `error`, or None if it must not be retried."""
        import openai

        if isinstance(error, openai.APIStatusError):
            if error.status_code != 429 and (error.status_code < 500 or error.status_code in NEVER_RETRIED):
                return None
            asked = _retry_after(error.response.headers)
            if asked is not None:
                return min(self.max_backoff_s, asked)
        elif not isinstance(error, openai.APIConnectionError):  # timeouts are connection errors too
            return None
        return min(self.max_backoff_s, self.backoff_s * 2 ** attempt)

    def _check_budget(self) -> None:
        if self.max_usd is not None and self.usage.usd >= self.max_usd:
            raise BudgetExceeded(f"{self.name}: spent ${self.usage.usd:.4f} of the ${self.max_usd:.4f} cap "
                                 f"({self.usage.calls} calls); raise max_usd to go on")

    def _record(self, usage: Usage) -> None:
        with self._lock:
            self.last_usage = usage
            self.usage.add(usage)

    def generate(self, messages: list[dict], *, stop: list[str] | None = None, temperature: float = 0.0,
                 seed: int | None = None, max_tokens: int = 256) -> str:
        """The first choice's text, cut at the stop strings (also client-side: some servers ignore them)."""
        import openai

        self._check_budget()
        request = {"model": self.name, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
        if stop:
            request["stop"] = list(stop)
        if seed is not None:
            request["seed"] = seed
        retries = 0
        while True:
            try:
                response = self._client.chat.completions.create(**request)
                break
            except (openai.APIStatusError, openai.APIConnectionError) as e:
                status, what = self._describe(e)
                delay = self._delay(e, retries)
                if delay is None:
                    self._record(Usage(retries=retries))
                    raise OpenAIRequestError(f"{self.name} at {self.base_url}: request refused, {what}",
                                             status) from None
                if retries >= self.max_retries:
                    self._record(Usage(retries=retries))
                    raise OpenAIRequestError(f"{self.name} at {self.base_url}: gave up after {retries} retries; "
                                             f"last error: {what}", status) from None
                retries += 1
                log.warning("%s at %s: %s; retry %d/%d in %.1f s", self.name, self.base_url, what, retries,
                            self.max_retries, delay)
                self._sleep(delay)
        tokens = response.usage
        prompt = (tokens.prompt_tokens or 0) if tokens is not None else 0
        completion = (tokens.completion_tokens or 0) if tokens is not None else 0
        usd = (prompt * self.price[0] + completion * self.price[1]) / 1e6 if self.price else 0.0
        self._record(Usage(calls=1, prompt_tokens=prompt, completion_tokens=completion, usd=usd, retries=retries))
        if not response.choices:
            raise OpenAIRequestError(f"{self.name} at {self.base_url}: the reply had no choices", 200)
        return cut_at_stop(response.choices[0].message.content or "", stop)


__all__ = ["PRICES", "OpenAIModel", "OpenAIRequestError", "parse_prices", "price_for"]
