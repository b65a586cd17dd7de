"""OpenAIModel over real HTTP, against a fake OpenAI-compatible server running in a thread."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from helpers.fake_openai import FakeServer, error, reply

from fireflan.models import BudgetExceeded
from fireflan.models.openai_compat import PRICES, OpenAIModel, OpenAIRequestError, parse_prices, price_for

SECRET = "sk-test-SECRET-5f3a9c"
MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Capital of France?"}]


@pytest.fixture
def server():
    srv = FakeServer()
    yield srv
    srv.stop()


@pytest.fixture
def make_model(server, monkeypatch):
    """OpenAIModel against the fake server, with the secret key set and sleeps recorded, not slept."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def make(**kw):
        kw.setdefault("model", "gpt-test")
        kw.setdefault("base_url", server.base_url)
        kw.setdefault("timeout_s", 5.0)
        model = OpenAIModel(**kw)
        model.sleeps = []
        model._sleep = model.sleeps.append
        return model

    return make


def test_success_sends_stop_counts_usage_and_cost(server, make_model):
    server.script = [reply("Paris\nObservation: extra", prompt=1000, completion=200)]
    model = make_model(prices={"gpt-test": [2.0, 10.0]})
    text = model.generate(MESSAGES, stop=["\nObservation"], temperature=0.3, seed=7, max_tokens=64)
    assert text == "Paris"  # the fake server ignores stop; the client cuts anyway
    [req] = server.requests
    assert req["path"] == "/v1/chat/completions"
    sent = req["json"]
    assert sent["model"] == "gpt-test" and sent["messages"] == MESSAGES
    assert sent["stop"] == ["\nObservation"] and sent["seed"] == 7
    assert sent["temperature"] == 0.3 and sent["max_tokens"] == 64
    last = model.last_usage
    assert (last.calls, last.prompt_tokens, last.completion_tokens, last.retries) == (1, 1000, 200, 0)
    assert last.usd == pytest.approx(1000 * 2.0 / 1e6 + 200 * 10.0 / 1e6)

    server.script = [reply("Lyon", prompt=10, completion=1)]
    assert model.generate(MESSAGES) == "Lyon"
    assert "stop" not in server.requests[1]["json"] and "seed" not in server.requests[1]["json"]
    assert model.last_usage.prompt_tokens == 10
    assert (model.usage.calls, model.usage.prompt_tokens, model.usage.completion_tokens) == (2, 1010, 201)
    assert model.usage.usd == pytest.approx(last.usd + (10 * 2.0 + 1 * 10.0) / 1e6)


def test_missing_usage_and_null_content_count_zero(server, make_model):
    server.script = [reply(None, usage=False)]
    model = make_model()
    assert model.generate(MESSAGES, stop=[]) == ""
    assert "stop" not in server.requests[0]["json"]
    assert (model.last_usage.calls, model.last_usage.prompt_tokens, model.last_usage.usd) == (1, 0, 0.0)


def test_retries_rate_limit_then_server_error(server, make_model):
    server.script = [error(429, "slow down", {"Retry-After": "0"}), error(500, "oops"), reply("ok")]
    model = make_model(max_retries=3, backoff_s=0.25)
    assert model.generate(MESSAGES) == "ok"
    assert len(server.requests) == 3
    assert model.last_usage.retries == 2 and model.usage.retries == 2
    assert model.sleeps == [0.0, 0.5]  # Retry-After: 0 honoured; then backoff_s * 2**1


def test_backoff_is_exponential_capped_and_retry_after_capped(server, make_model):
    server.default = error(503, "busy")
    model = make_model(max_retries=4, backoff_s=1.0, max_backoff_s=5.0)
    with pytest.raises(RuntimeError):
        model.generate(MESSAGES)
    assert model.sleeps == [1.0, 2.0, 4.0, 5.0]

    server.default, server.requests[:] = None, []
    server.script = [error(429, "wait", {"Retry-After": "120"}), reply("ok")]
    model = make_model(max_backoff_s=7.0)
    assert model.generate(MESSAGES) == "ok" and model.sleeps == [7.0]


def test_persistent_server_errors_give_up(server, make_model):
    server.default = error(500, "the GPU fell over")
    model = make_model(max_retries=3)
    with pytest.raises(RuntimeError) as info:
        model.generate(MESSAGES)
    assert len(server.requests) == 4  # max_retries + 1
    msg = str(info.value)
    assert "gpt-test" in msg and server.base_url in msg and "500" in msg and "the GPU fell over" in msg
    assert "3 retries" in msg and info.value.status == 500
    assert model.usage.calls == 0 and model.usage.retries == 3


def test_client_error_is_not_retried(server, make_model):
    server.default = error(400, "max_tokens is too large")
    model = make_model()
    with pytest.raises(OpenAIRequestError) as info:
        model.generate(MESSAGES)
    assert len(server.requests) == 1 and model.sleeps == []
    assert "400" in str(info.value) and "max_tokens is too large" in str(info.value)
    assert info.value.status == 400


def test_timeout_and_connection_errors_are_retried(server, make_model, monkeypatch):
    server.script = [reply("late", delay=0.6), reply("on time")]
    model = make_model(timeout_s=0.2, max_retries=1)
    assert model.generate(MESSAGES) == "on time" and model.last_usage.retries == 1

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = make_model(base_url=f"http://127.0.0.1:{port}/v1", max_retries=2)
    with pytest.raises(RuntimeError) as info:
        model.generate(MESSAGES)
    assert "2 retries" in str(info.value) and "APIConnectionError" in str(info.value)
    assert len(model.sleeps) == 2


def test_spend_cap_stops_before_the_call(server, make_model):
    server.default = reply("x", prompt=100_000, completion=50_000)  # 0.1 * 1 + 0.05 * 10 = $0.60 a call
    model = make_model(prices="gpt-test=1,10", max_usd=1.0)
    model.generate(MESSAGES)
    model.generate(MESSAGES)  # crosses the cap, but completes
    assert model.usage.usd == pytest.approx(1.2)
    with pytest.raises(BudgetExceeded) as info:
        model.generate(MESSAGES)
    assert len(server.requests) == 2
    assert "1.2" in str(info.value) and "1.0" in str(info.value)


def test_key_reaches_server_but_never_leaks(server, make_model, caplog):
    model = make_model(max_retries=1)
    assert SECRET not in repr(model) and SECRET not in str(model)
    assert repr(model) == f"OpenAIModel(model='gpt-test', base_url='{server.base_url}')"

    server.script = [reply("hi")]
    model.generate(MESSAGES)
    assert server.requests[-1]["authorization"] == f"Bearer {SECRET}"

    caplog.set_level(logging.DEBUG, logger="fireflan")
    echo = f"Incorrect API key provided: {SECRET}"  # some servers echo the key back
    for script in ([error(401, echo)], [error(429, echo), error(500, echo)]):
        server.script = script
        with pytest.raises(RuntimeError) as info:
            model.generate(MESSAGES)
        assert SECRET not in str(info.value) and SECRET not in repr(info.value)
        assert "Incorrect API key provided: ***" in str(info.value)
    assert caplog.records and SECRET not in caplog.text


def test_local_server_needs_no_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = OpenAIModel("local", base_url=server.base_url)
    server.script = [reply("hi")]
    assert model.generate(MESSAGES) == "hi"
    assert server.requests[0]["authorization"] == "Bearer not-needed"


def test_no_key_and_no_base_url_names_the_variable(monkeypatch):
    monkeypatch.delenv("MY_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match="MY_KEY_VAR"):
        OpenAIModel("gpt-4o", api_key_env="MY_KEY_VAR")


def test_parse_prices_forms(tmp_path):
    assert parse_prices({"a": [1, 2]}) == {"a": (1.0, 2.0)}
    assert parse_prices("a=1,2;b=3,4") == {"a": (1.0, 2.0), "b": (3.0, 4.0)}
    assert parse_prices(" a = 1 , 2 ; ") == {"a": (1.0, 2.0)}
    assert parse_prices(None) == {}
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"m1": [0.5, 1.5]}))
    assert parse_prices(str(path)) == {"m1": (0.5, 1.5)} == parse_prices(path)


@pytest.mark.parametrize("spec, words", [
    ("a=1", "two numbers|\\[input, output\\]"),
    ("a=x,2", "two numbers"),
    ("a1,2", "model=input,output"),
    ("=1,2", "model=input,output"),
    ({"a": [1, -2]}, "negative"),
    ("a=1,nan", "finite"),
    ({"a": "1,2"}, "input, output"),
    (42, "prices must be"),
    ("missing.json", "no such price file"),
])
def test_parse_prices_rejects_bad_specs(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_prices(spec)


def test_parse_prices_bad_json_file_names_it(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="p.json.*not valid JSON"):
        parse_prices(str(path))
    path.write_text('{"m": [1]}')
    with pytest.raises(ValueError, match="p.json.*'m'"):
        parse_prices(str(path))


def test_price_lookup_by_exact_then_longest_prefix():
    assert price_for("gpt-4o", PRICES) == (2.50, 10.00)
    assert price_for("gpt-4o-2024-08-06", PRICES) == (2.50, 10.00)
    assert price_for("gpt-4o-mini", PRICES) == (0.15, 0.60)
    assert price_for("gpt-4o-mini-2024-07-18", PRICES) == (0.15, 0.60)
    assert price_for("gpt-4-0613", PRICES) == (30.0, 60.0)
    assert price_for("gpt-4.5-preview", PRICES) is None  # not gpt-4's price
    assert price_for("llama3:8b", {"llama3": (0, 0)}) == (0, 0)
    assert price_for("unknown", PRICES) is None


def test_prices_override_table_and_unknown_price_with_cap_fails(monkeypatch, server):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert OpenAIModel("gpt-4o-2024-08-06").price == (2.50, 10.00)
    assert OpenAIModel("gpt-4o", prices={"gpt-4o": [1, 1]}).price == (1.0, 1.0)
    assert OpenAIModel("mystery", base_url=server.base_url).price is None  # no cap: counts as 0
    with pytest.raises(ValueError, match="no price known for model mystery: pass prices="):
        OpenAIModel("mystery", base_url=server.base_url, max_usd=1.0)
    with pytest.raises(ValueError, match="a=1"):
        OpenAIModel("gpt-4o", prices="a=1")
