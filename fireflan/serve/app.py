"""The server: llama-cpp-python's OpenAI-compatible app, with fireflan's chat handler and a request check.

llama-cpp-python's server (FastAPI; one model; one request decoded at a time, the others wait their
turn) does the HTTP, the routes, streaming and the context-length error. fireflan adds two things:

- `FireflanHandler`, registered as the chat format "fireflan": it renders a request the way the model was
  trained (fireflan.serve.reply), generates with the agent's stop strings, reads the step with the agent's
  own parser and answers with tool calls or content; `tool_choice` is honoured with the agent's action
  constraint (a ReAct model) or by writing the start of the model's reply for it (a hermes model);
- `RequestCheck`, an ASGI middleware that runs `check_request` on each chat request before the server's
  request model sees it, so bad requests get a 400 naming the field instead of a 500.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid

from fireflan.agent import toolcalls
from fireflan.agent.loop import STOP
from fireflan.agent.toolcalls import argument_name
from fireflan.models.llama import LlamaModel
from fireflan.serve.reply import allowed_actions, chunks, completion, conversation, message_for, tool_names
from fireflan.serve.request import check_request
from fireflan.tools.actions import parse_action

CHAT_FORMAT = "fireflan"
CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


class FireflanHandler:
    """A llama-cpp-python chat completion handler (`Llama.create_chat_completion` calls it)."""

    def __init__(self, max_tokens: int = 256):
        self.max_tokens = max_tokens
        self._models: dict[int, LlamaModel] = {}  # id(llama) -> fireflan's view of it (template, format)

    def model(self, llama) -> LlamaModel:
        if id(llama) not in self._models:
            self._models[id(llama)] = LlamaModel(llama.model_path, llm=llama, threads=llama.n_threads,
                                                 n_ctx=llama.n_ctx())
        return self._models[id(llama)]

    def __call__(self, *, llama, messages, tools=None, tool_choice=None, temperature=0.0, top_p=1.0, stream=False,
                 stop=None, seed=None, max_tokens=None, model=None, **_):
        fire = self.model(llama)
        tools = tools or None
        names = allowed_actions(tools, tool_choice)
        stops = [*STOP, *([stop] if isinstance(stop, str) else stop or [])]
        meta = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "created": int(time.time()),
                "model": model or os.path.basename(fire.path)}
        options = {"max_tokens": max_tokens or self.max_tokens, "temperature": temperature, "top_p": top_p,
                   "seed": seed}
        if not tools:
            prompt = fire.render(conversation(messages, None), tools=None)
            if stream:
                return self._stream_text(fire, prompt, stops, options, meta)
            out = self._complete(fire, prompt, "", stops, None, options)
            return completion({"role": "assistant", "content": out["text"].strip()}, out["finish_reason"],
                              usage=out["usage"], **meta)
        react = conversation(messages, tools)
        declared = tuple(n.lower() for n in tool_names(tools))
        if fire.action_format == "hermes":
            fire.use_tools([*declared, "finish"])
            out, text = self._hermes(fire, react, stops, tools, tool_choice, options)
        else:
            processor = fire.constraint(names) if tool_choice not in (None, "auto") else None
            out = self._complete(fire, fire.prompt(react), "", stops, processor, options)
            text = out["text"]
        parsed = parse_action(text, (*declared, "finish"))
        message, reason = message_for(parsed, out["text"], tools, f"call_{uuid.uuid4().hex[:24]}")
        if reason == "stop" and out["finish_reason"] == "length" and not parsed.ok:
            reason = "length"
        if stream:
            return iter(chunks(message, reason, **meta))
        return completion(message, reason, usage=out["usage"], **meta)

    def _hermes(self, fire, react, stops, tools, tool_choice, options) -> tuple[dict, str]:
        """A hermes model's reply (and it as ReAct text), `tool_choice` honoured by writing the start of the
        reply for it: none -> "Final Answer: "; a named function -> the call up to its argument's value;
        required -> the model's own reply when it calls a declared tool, else a call to the first tool."""
        prompt, stops = fire.prompt(react), fire._stop(stops)
        if tool_choice == "none":
            out = self._complete(fire, prompt, f"{toolcalls.FINAL} ", stops, None, options)
            return out, fire._reply(out["text"])
        if tool_choice in (None, "auto", "required"):
            out = self._complete(fire, prompt, "", stops, None, options)
            text = fire._reply(out["text"])
            parsed = parse_action(text, fire.actions)
            if tool_choice != "required" or (parsed.ok and parsed.action in fire.actions and parsed.action != "finish"):
                return out, text
            name = tool_names(tools)[0]
        else:
            name = tool_choice["function"]["name"]
        argument = argument_name(name, tools)
        start = call_start(name, argument)
        out = self._complete(fire, prompt, start, stops, None, options)
        out["text"] = whole_call(name, argument, out["text"].removeprefix(start))
        return out, fire._reply(out["text"])

    def _complete(self, fire, prompt: str, prefill: str, stops, processor, options) -> dict:
        from llama_cpp import LogitsProcessorList

        tokens = fire.llm.tokenize((prompt + prefill).encode("utf-8"), add_bos=False, special=True)
        out = fire.llm.create_completion(tokens, stop=stops, logits_processor=LogitsProcessorList([processor])
                                         if processor else None, **options)
        choice, usage = out["choices"][0], out["usage"]
        return {"text": prefill + choice["text"], "finish_reason": choice["finish_reason"] or "stop",
                "usage": {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}}

    def _stream_text(self, fire, prompt: str, stops, options, meta):
        tokens = fire.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)

        def chunk(delta, reason=None):
            return {**meta, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

        yield chunk({"role": "assistant", "content": ""})
        reason = "stop"
        for part in fire.llm.create_completion(tokens, stop=stops, stream=True, **options):
            choice = part["choices"][0]
            if choice["text"]:
                yield chunk({"content": choice["text"]})
            reason = choice.get("finish_reason") or reason
        yield chunk({}, reason)


def call_start(name: str, argument: str) -> str:
    """A hermes call written up to its one argument's value: '<tool_call>{"name": "search", "arguments":
    {"query": "'"""
    return toolcalls.CALL_OPEN + json.dumps({"name": name, "arguments": {argument: ""}})[:-3]


def whole_call(name: str, argument: str, value: str) -> str:
    """The call `call_start` began, closed: the model's value read up to its closing quote (or line end)."""
    raw = re.match(r'(?:[^"\\\n]|\\.)*', value).group(0)
    try:
        value = json.loads(f'"{raw}"')
    except json.JSONDecodeError:
        value = raw
    return toolcalls.CALL_OPEN + json.dumps({"name": name, "arguments": {argument: value}}, ensure_ascii=False) + \
        toolcalls.CALL_CLOSE


class RequestCheck:
    """ASGI middleware: a chat request is read whole, checked (`check_request`) and passed on made plain, or
    answered with a 400 in OpenAI's error shape."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in CHAT_PATHS:
            return await self.app(scope, receive, send)
        raw, more = b"", True
        while more:
            message = await receive()
            raw += message.get("body", b"")
            more = message.get("more_body", False)
        body, error = check_request(raw)
        if error is not None:
            return await _json_response(send, 400, {"error": error})
        data = json.dumps(body).encode()
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(data)).encode())]}
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()  # what follows the body: a disconnect
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}

        return await self.app(scope, replay, send)


async def _json_response(send, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})
