"""`fireflan serve`: the request check, the replies, and the tiny exported model served to real clients
(the `openai` client and the OpenAI Agents SDK, from PyPI) over loopback."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from fireflan.agent.toolcalls import TOOLS
from fireflan.serve.reply import allowed_actions, chunks, conversation, message_for
from fireflan.serve.request import check_request, plain_request
from fireflan.tools.actions import Parsed

SEARCH, LOOKUP = TOOLS["search"], TOOLS["lookup"]
Q = {"role": "user", "content": "Who directed X?"}


# --------------------------------------------------------------------------- the request check (pure)

def _body(**fields):
    return json.dumps({"messages": [Q], **fields}).encode()


BAD = [  # (request body, the field its error names, words of the message)
    (b"{not json", None, "not JSON"),
    (b"[1, 2]", None, "must be a JSON object"),
    (json.dumps({"model": "m"}).encode(), "messages", "missing"),
    (json.dumps({"messages": "hi"}).encode(), "messages", "must be a list"),
    (json.dumps({"messages": []}).encode(), "messages", "at least one"),
    (json.dumps({"messages": ["hi"]}).encode(), "messages[0]", "must be an object"),
    (json.dumps({"messages": [{"role": "robot", "content": "x"}]}).encode(), "messages[0].role", "robot"),
    (json.dumps({"messages": [{"role": "user"}]}).encode(), "messages[0].content", "needs its content"),
    (json.dumps({"messages": [{"role": "user", "content": 3}]}).encode(), "messages[0].content", "a number"),
    (json.dumps({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]})
     .encode(), "messages[0].content[0]", "text only"),
    (json.dumps({"messages": [Q, {"role": "tool", "content": "r"}]}).encode(), "messages[1].tool_call_id", "id"),
    (json.dumps({"messages": [Q, {"role": "assistant", "content": None, "tool_calls": [{"function": {}}]}]})
     .encode(), "messages[1].tool_calls[0].function.name", "name"),
    (json.dumps({"messages": [Q, {"role": "assistant", "tool_calls": [
        {"id": "c", "function": {"name": "search", "arguments": "{query: X"}}]}]}).encode(),
     "messages[1].tool_calls[0].function.arguments", "not JSON"),
    (_body(tools={"name": "search"}), "tools", "must be a list"),
    (_body(tools=[{"type": "code_interpreter"}]), "tools[0].type", "only function tools"),
    (_body(tools=[{"type": "function", "function": {"description": "no name"}}]), "tools[0].function.name", "name"),
    (_body(tools=[SEARCH, SEARCH]), "tools[1].function.name", "declared twice"),
    (_body(tools=[{"type": "function", "function": {"name": "f", "parameters": "x"}}]),
     "tools[0].function.parameters", "JSON schema"),
    (_body(tools=[SEARCH], tool_choice="sometimes"), "tool_choice", "sometimes"),
    (_body(tool_choice="required"), "tool_choice", "none are declared"),
    (_body(tools=[SEARCH], tool_choice={"type": "function", "function": {"name": "lookup"}}),
     "tool_choice.function.name", "'lookup' is not a declared tool (search)"),
    (_body(tools=[SEARCH], tool_choice={"function": "search"}), "tool_choice", "a named choice"),
    (_body(temperature=5), "temperature", "from 0 to 2"),
    (_body(temperature="hot"), "temperature", "not 'hot'"),
    (_body(max_tokens=0), "max_tokens", "1 or more"),
    (_body(max_completion_tokens=1.5), "max_completion_tokens", "whole number"),
    (_body(n=3), "n", "one choice"),
    (_body(stream="yes"), "stream", "true or false"),
    (_body(stop=[1]), "stop", "strings"),
]


@pytest.mark.parametrize("raw,param,words", BAD, ids=[f"{i}-{p}" for i, (_, p, _) in enumerate(BAD)])
def test_each_kind_of_bad_request_gets_an_openai_error_naming_its_field(raw, param, words):
    body, error = check_request(raw)
    assert body is None and error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"] and (param is None or error["message"].startswith(f"{param}: "))


def test_valid_requests_are_made_plain_for_the_servers_request_model():
    call = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": {"query": "X"}}}
    body = plain_request({"messages": [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Who"}, {"type": "text", "text": "directed X?"}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "X is a film."}], "name": "search"},
    ], "functions": [SEARCH["function"]], "max_completion_tokens": 9, "parallel_tool_calls": False})
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who\ndirected X?"},
        {"role": "assistant", "content": "", "tool_calls": [{**call, "function": {
            "name": "search", "arguments": '{"query": "X"}'}}]},
        {"role": "tool", "content": "X is a film.", "tool_call_id": "c1"}]
    assert body["tools"] == [SEARCH] and "functions" not in body and "parallel_tool_calls" not in body
    assert body["temperature"] == 0.0 and body["max_tokens"] == 9  # greedy unless asked, as `fireflan evaluate`
    assert plain_request({"messages": [Q], "temperature": 0.7, "tools": []})["temperature"] == 0.7


# --------------------------------------------------------------------------- conversations and replies (pure)

def test_a_request_with_tools_is_rendered_as_the_conversation_the_agent_was_trained_on():
    history = [{"role": "system", "content": "You are a helpful agent. " * 50}, Q,
               {"role": "assistant", "content": "I need X.", "tool_calls": [
                   {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"query": "X"}'}}]},
               {"role": "tool", "tool_call_id": "c1", "content": "X is a film by Ann Bo."}]
    assert conversation(history, [SEARCH]) == [
        Q, {"role": "assistant", "content": "Thought: I need X.\nAction: search[X]"},
        {"role": "user", "content": "Observation: X is a film by Ann Bo."}]
    assert conversation(history[:2], None) == history[:2]  # no tools: a plain chat, its system turn kept
    assert allowed_actions([SEARCH, LOOKUP], None) == ("search", "lookup", "finish")
    assert allowed_actions([SEARCH, LOOKUP], "required") == ("search", "lookup")
    assert allowed_actions([SEARCH], "none") == allowed_actions(None, None) == ("finish",)
    assert allowed_actions([SEARCH, LOOKUP], {"type": "function", "function": {"name": "lookup"}}) == ("lookup",)


def test_the_models_step_becomes_a_tool_call_an_answer_or_a_note_about_an_unknown_tool():
    schema = {"type": "function", "function": {"name": "Search", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}
    message, reason = message_for(Parsed("I need X.", "search", "X"), "", [schema], "call_1")
    assert reason == "tool_calls" and message == {"role": "assistant", "content": "I need X.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "Search", "arguments": '{"q": "X"}'}}]}
    assert message_for(Parsed("So.", "finish", "Ann Bo"), "", [schema], "c") == (
        {"role": "assistant", "content": "Ann Bo"}, "stop")
    final = {"type": "function", "function": {"name": "final_answer", "parameters": {
        "type": "object", "properties": {"answer": {"type": "string"}}}}}
    message, reason = message_for(Parsed("", "finish", "Ann Bo"), "", [schema, final], "c")
    assert reason == "tool_calls" and message["tool_calls"][0]["function"] == {
        "name": "final_answer", "arguments": '{"answer": "Ann Bo"}'}
    message, reason = message_for(Parsed("", "lookup", "born"), "", [schema], "c")
    assert reason == "stop" and "lookup" in message["content"] and "not one of the declared tools: Search" in \
        message["content"]
    assert message_for(Parsed("", None, None, "", "Invalid action"), " rambling ", [schema], "c") == (
        {"role": "assistant", "content": "rambling"}, "stop")
    parts = chunks(message_for(Parsed("t", "search", "X"), "", [schema], "c1")[0], "tool_calls", id="i",
                   created=1, model="m")
    assert [list(p["choices"][0]["delta"]) for p in parts] == [["role", "content"], ["content"], ["tool_calls"], []]
    assert parts[2]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert parts[-1]["choices"][0]["finish_reason"] == "tool_calls"


# --------------------------------------------------------------------------- the tiny model, served

@pytest.fixture(scope="module")
def server(exported):
    pytest.importorskip("fastapi", reason="the server needs llama-cpp-python[server] (the infer extra)")
    from fireflan.serve import served

    model, _ = exported
    with served(model / "gguf" / "model-q8_0.gguf", threads=1) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server, api_key="none", max_retries=0)


def _post(url, payload: bytes):
    request = urllib.request.Request(f"{url}/chat/completions", data=payload,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_openai_client_gets_tool_calls_and_answers_as_tool_choice_asks(client):
    asked = dict(model="tiny", messages=[Q], tools=[SEARCH, LOOKUP])
    auto = client.chat.completions.create(**asked).choices[0]
    assert auto.finish_reason == "stop" and auto.message.content == "yes"  # what the LoRA taught: finish[yes]
    required = client.chat.completions.create(**asked, tool_choice="required").choices[0]
    assert required.finish_reason == "tool_calls" and len(required.message.tool_calls) == 1
    call = required.message.tool_calls[0]
    assert call.type == "function" and call.function.name in ("search", "lookup") and call.id.startswith("call_")
    assert list(json.loads(call.function.arguments)) == [{"search": "query", "lookup": "keyword"}[call.function.name]]
    named = client.chat.completions.create(**asked, tool_choice={"type": "function", "function": {"name": "lookup"}})
    assert named.choices[0].message.tool_calls[0].function.name == "lookup"
    none = client.chat.completions.create(**asked, tool_choice="none").choices[0]
    assert none.finish_reason == "stop" and none.message.tool_calls is None and none.message.content
    # the call goes back with "content": null, its result as a tool message: accepted, answered
    history = [Q, {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
               {"role": "tool", "tool_call_id": call.id, "content": "X is a film by Ann Bo."}]
    after = client.chat.completions.create(model="tiny", messages=history, tools=[SEARCH, LOOKUP])
    assert after.choices[0].finish_reason in ("stop", "tool_calls") and after.usage.prompt_tokens > 20


def test_streams_carry_the_whole_tool_call_and_plain_chat_streams_its_tokens(client):
    stream = client.chat.completions.create(model="tiny", messages=[Q], tools=[SEARCH], tool_choice="required",
                                            stream=True)
    parts = list(stream)
    calls = [c for p in parts for c in p.choices[0].delta.tool_calls or []]
    assert len(calls) == 1 and calls[0].function.name == "search" and json.loads(calls[0].function.arguments)
    assert parts[-1].choices[0].finish_reason == "tool_calls"
    plain = client.chat.completions.create(model="tiny", messages=[Q], max_tokens=12)
    streamed = list(client.chat.completions.create(model="tiny", messages=[Q], max_tokens=12, stream=True))
    text = "".join(p.choices[0].delta.content or "" for p in streamed)
    assert len([p for p in streamed if p.choices[0].delta.content]) > 1  # token by token
    assert text.strip() == plain.choices[0].message.content


@pytest.mark.parametrize("raw,param,words", BAD, ids=[f"{i}-{p}" for i, (_, p, _) in enumerate(BAD)])
def test_each_kind_of_bad_request_over_http_is_a_400_naming_its_field(server, raw, param, words):
    status, body = _post(server, raw)
    assert status == 400 and body["error"]["param"] == param and words in body["error"]["message"]


def test_a_prompt_longer_than_the_context_is_a_400_not_a_crash(server):
    status, body = _post(server, _body(messages=[{"role": "user", "content": "word " * 6000}]))
    assert status == 400 and body["error"]["code"] == "context_length_exceeded", body
    assert _post(server, _body())[0] == 200  # and the server goes on


def test_eight_clients_at_once_are_all_answered(server):
    """Loopback only, a bounded number of requests; the server decodes one at a time, the others queue."""
    results, latencies = [], []

    def client_thread(k):
        for i in range(2):
            started = time.perf_counter()
            tools = {"tools": [SEARCH], "tool_choice": "required"} if (k + i) % 2 else {}
            results.append(_post(server, _body(max_tokens=16, **tools)))
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client_thread, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert len(results) == 16 and all(status == 200 for status, _ in results), results
    reasons = sorted(body["choices"][0]["finish_reason"] for _, body in results)
    assert reasons.count("tool_calls") == 8
    print(f"\n16 requests from 8 clients: latency median {sorted(latencies)[8]:.2f} s, max {max(latencies):.2f} s")


def test_an_agent_framework_answers_a_world_question_through_the_models_tool_calls(server, small_world):
    """The OpenAI Agents SDK drives the served model; the world's search is the framework's tool. The
    tiny model is made to search first (tool_choice required, which the SDK resets after a call), then
    answers what the LoRA taught it (yes)."""
    agents = pytest.importorskip("agents", reason="the OpenAI Agents SDK is in the dev extra")
    from fireflan.serve.frameworks import sdk_agent
    from fireflan.tasks import open_task

    _, questions, wiki = open_task("world", str(small_world), split="test", limit=1)
    agent, calls = sdk_agent(server, wiki, model="tiny", tool_choice="required")
    result = agents.Runner.run_sync(agent, questions[0].question, max_turns=4)
    assert len(calls) == 1 and calls[0][0] in ("search", "lookup") and calls[0][2]  # the world's tool answered
    assert result.final_output == "yes"
    kinds = [type(item).__name__ for item in result.new_items]
    assert kinds == ["ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"], kinds


def test_a_hermes_call_begun_for_the_model_is_closed_around_the_value_it_wrote():
    from fireflan.serve.app import call_start, whole_call

    start = call_start("search", "query")
    assert start == '<tool_call>{"name": "search", "arguments": {"query": "'
    assert whole_call("search", "query", 'Ann \\"Bo\\" x"}}</tool_call>') == \
        '<tool_call>{"name": "search", "arguments": {"query": "Ann \\"Bo\\" x"}}</tool_call>'
    assert whole_call("search", "query", "no closing quote\nnext") == \
        '<tool_call>{"name": "search", "arguments": {"query": "no closing quote"}}</tool_call>'


def test_a_hermes_model_is_served_with_the_tools_it_reads_and_tool_choice_is_honoured(exported, tools, tmp_path):
    """The same tiny model marked hermes (as export marks a model trained with --action-format hermes): the
    server renders the tools into its prompt (LlamaModel.prompt, see test_export) and returns its calls;
    required and named choices always get a
    call to a declared tool, none an answer."""
    openai = pytest.importorskip("openai")
    from fireflan.export.convert import EDIT_METADATA, run_script
    from fireflan.serve import served

    model, _ = exported
    marked = tmp_path / "hermes.gguf"
    run_script(tools, str(EDIT_METADATA), [model / "gguf" / "model-q8_0.gguf", marked,
                                           json.dumps({"fireflan.action_format": "hermes"})])
    with served(marked, threads=1) as url:
        client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
        asked = dict(model="tiny", messages=[Q], tools=[SEARCH, LOOKUP], max_tokens=24)
        for choice, names in (("required", {"search", "lookup"}),
                              ({"type": "function", "function": {"name": "lookup"}}, {"lookup"})):
            reply = client.chat.completions.create(**asked, tool_choice=choice).choices[0]
            assert reply.finish_reason == "tool_calls" and reply.message.tool_calls[0].function.name in names
            arguments = json.loads(reply.message.tool_calls[0].function.arguments)
            assert list(arguments) == [{"search": "query", "lookup": "keyword"}[reply.message.tool_calls[0]
                                                                               .function.name]]
        none = client.chat.completions.create(**asked, tool_choice="none").choices[0]
        assert none.finish_reason == "stop" and none.message.tool_calls is None
        auto = client.chat.completions.create(**asked).choices[0]
        assert auto.finish_reason in ("stop", "tool_calls", "length")


def test_serve_says_what_is_wrong_with_its_model_file_or_its_port(tmp_path, exported):
    import socket
    import subprocess
    import sys

    model, _ = exported
    bad = tmp_path / "notes.gguf"
    bad.write_text("not a model")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, said in (([str(tmp_path / "missing.gguf")], "missing.gguf: no such GGUF file"),
                           ([str(bad)], "does not start with the GGUF magic bytes"),
                           ([str(model / "gguf" / "model-q8_0.gguf"), f"--port={port}"],
                            f"--port {port}: cannot listen on 127.0.0.1:{port}")):
            done = subprocess.run([sys.executable, "-m", "fireflan", "serve", *args], capture_output=True,
                                  text=True, timeout=120)
            assert done.returncode == 2 and said in done.stderr, done.stderr


def test_a_gguf_without_a_chat_template_is_refused_with_the_options_that_help(exported):
    """The advice named Python arguments (chat_template=..., raw=True) to a user of the command line."""
    from fireflan.io import DataError
    from fireflan.models.llama import LlamaModel, open_llama

    model, _ = exported
    path = model / "gguf" / "model-q8_0.gguf"
    llm = open_llama(str(path), n_ctx=256, verbose=False)
    del llm.metadata["tokenizer.chat_template"]  # as a GGUF converted without one reads
    with pytest.raises(DataError) as info:
        LlamaModel(path, llm=llm)
    said = str(info.value)
    assert said.startswith(f"{path}: field 'tokenizer.chat_template': it has no chat template")
    assert "`fireflan export`" in said and "--model embedded" in said
