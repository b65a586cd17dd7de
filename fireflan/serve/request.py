"""A chat completion request, checked and made plain before llama-cpp-python's server reads it.

llama-cpp-python's request model turns many valid OpenAI requests into a 500 with a pydantic dump (an
assistant turn with `"content": null` beside its tool calls, content as a list of text parts, the
`developer` role), and a body that is not JSON into a traceback. `check_request` answers each bad
request with the OpenAI error shape and the field it is about, and hands on the rest in the shape the
server's model accepts:

    check_request(b'{"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]}')
    -> ({"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.0}, None)
    check_request(b'{"messages": []}')
    -> (None, {"message": "messages: a chat needs at least one message", "type": "invalid_request_error",
               "param": "messages", "code": None})

A request that does not say its temperature gets 0 (greedy, what `fireflan evaluate` measures), not
the server's 0.8. Pure functions.
"""

from __future__ import annotations

import json
import numbers

ROLES = ("system", "developer", "user", "assistant", "tool")
TOOL_CHOICES = ("auto", "none", "required")


class BadRequest(ValueError):
    """A request the server cannot answer; `param` names the field (as OpenAI's errors do)."""

    def __init__(self, param: str | None, message: str):
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param


def error_body(e: BadRequest) -> dict:
    """The OpenAI error object of a bad request."""
    return {"message": str(e), "type": "invalid_request_error", "param": e.param, "code": None}


def check_request(raw: bytes) -> tuple[dict | None, dict | None]:
    """(the request made plain, None), or (None, the OpenAI error object) for a request that cannot be
    answered."""
    try:
        return plain_request(_json(raw)), None
    except BadRequest as e:
        return None, error_body(e)


def _json(raw: bytes):
    try:
        return json.loads(raw or b"")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(None, f"the request body is not JSON ({e})") from None


def plain_request(body) -> dict:
    """The request with every message's content a string, `developer` turned `system`, and tools and
    tool_choice checked against each other; raises BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest(None, f"the request body must be a JSON object, not {_kind(body)}")
    body = dict(body)
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("messages", "missing, or not a list of messages" if messages is None
                         else f"must be a list of messages, not {_kind(messages)}")
    if not messages:
        raise BadRequest("messages", "a chat needs at least one message")
    body["messages"] = [_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
    names = _tools(body)
    _tool_choice(body.get("tool_choice"), names)
    for key, low, high in (("temperature", 0, 2), ("top_p", 0, 1)):
        if key in body and body[key] is not None and not _number_in(body[key], low, high):
            raise BadRequest(key, f"must be a number from {low} to {high}, not {body[key]!r}")
    if body.get("temperature") is None:
        body["temperature"] = 0.0
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise BadRequest(key, f"must be a whole number of tokens, 1 or more, not {value!r}")
    if body.get("max_tokens") is None and body.get("max_completion_tokens") is not None:
        body["max_tokens"] = body["max_completion_tokens"]
    body.pop("max_completion_tokens", None)
    if body.get("n") not in (None, 1):
        raise BadRequest("n", f"this server writes one choice per request, not {body['n']!r}")
    if "stream" in body and body["stream"] is not None and not isinstance(body["stream"], bool):
        raise BadRequest("stream", f"must be true or false, not {body['stream']!r}")
    stop = body.get("stop")
    if stop is not None and not (isinstance(stop, str) or (isinstance(stop, list) and all(
            isinstance(s, str) for s in stop))):
        raise BadRequest("stop", "must be a string or a list of strings")
    for key in ("parallel_tool_calls", "stream_options", "store", "metadata", "service_tier", "reasoning_effort"):
        body.pop(key, None)  # OpenAI options with nothing to do here (one call per turn, nothing stored)
    return body


def _message(m, where: str) -> dict:
    if not isinstance(m, dict):
        raise BadRequest(where, f"a message must be an object, not {_kind(m)}")
    role = m.get("role")
    if role not in ROLES:
        raise BadRequest(f"{where}.role", f"must be one of {', '.join(ROLES)}, not {role!r}")
    out = {"role": "system" if role == "developer" else role}
    content = _text(m.get("content"), f"{where}.content")
    calls = m.get("tool_calls")
    if role == "assistant" and calls:
        out["tool_calls"] = [_call(c, f"{where}.tool_calls[{k}]") for k, c in enumerate(_list(calls,
                                                                                               f"{where}.tool_calls"))]
    elif content is None and role != "assistant":
        raise BadRequest(f"{where}.content", f"a {role} message needs its content")
    out["content"] = content or ""
    if role == "tool":
        call_id = m.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise BadRequest(f"{where}.tool_call_id", "a tool message needs the id of the call it answers")
        out["tool_call_id"] = call_id
    return out


def _text(content, where: str) -> str | None:
    """A message's content as one string: a string, null, or a list of text parts (joined)."""
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for k, part in enumerate(content):
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and part.get("type") in ("text", "input_text", "output_text"):
                if not isinstance(part.get("text"), str):
                    raise BadRequest(f"{where}[{k}].text", "a text part needs its text, a string")
                texts.append(part["text"])
            else:
                kind = part.get("type") if isinstance(part, dict) else _kind(part)
                raise BadRequest(f"{where}[{k}]", f"this model reads text only; a {kind!r} part cannot be given "
                                 "to it")
        return "\n".join(texts)
    raise BadRequest(where, f"must be a string, null or a list of text parts, not {_kind(content)}")


def _call(call, where: str) -> dict:
    if not isinstance(call, dict):
        raise BadRequest(where, f"a tool call must be an object, not {_kind(call)}")
    fn = call.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
        raise BadRequest(f"{where}.function.name", "a tool call needs the name of its function")
    arguments = fn.get("arguments", "{}")
    if isinstance(arguments, dict):  # Hugging Face's shape; OpenAI's is a JSON string
        arguments = json.dumps(arguments, ensure_ascii=False)
    if not isinstance(arguments, str):
        raise BadRequest(f"{where}.function.arguments", f"must be a JSON string, not {_kind(arguments)}")
    if arguments.strip():
        try:
            json.loads(arguments)
        except json.JSONDecodeError as e:
            raise BadRequest(f"{where}.function.arguments", f"is not JSON ({e.msg}): {arguments[:80]!r}") from None
    call_id = call.get("id")
    return {"id": call_id if isinstance(call_id, str) and call_id else "call_unnamed", "type": "function",
            "function": {"name": fn["name"], "arguments": arguments or "{}"}}


def _tools(body: dict) -> list[str]:
    """The names of the declared tools (checked); the old `functions` field is read as tools."""
    tools = body.get("tools")
    if tools is None and body.get("functions") is not None:
        tools = [{"type": "function", "function": f} for f in _list(body["functions"], "functions")]
        body.pop("functions")
    if tools is None:
        body.pop("tools", None)
        return []
    names = []
    for i, tool in enumerate(_list(tools, "tools")):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            got = tool.get("type") if isinstance(tool, dict) else _kind(tool)
            raise BadRequest(f"{where}.type", f"only function tools can be called, not {got!r}")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"].strip():
            raise BadRequest(f"{where}.function.name", "a tool needs a name")
        params = fn.get("parameters")
        if params is not None and not (isinstance(params, dict) and isinstance(params.get("properties", {}), dict)):
            raise BadRequest(f"{where}.function.parameters", "must be a JSON schema object")
        if fn["name"] in names:
            raise BadRequest(f"{where}.function.name", f"{fn['name']!r} is declared twice")
        names.append(fn["name"])
    body["tools"] = [{"type": "function", "function": t["function"]} for t in tools] or None
    if body["tools"] is None:
        body.pop("tools")
    return names


def _tool_choice(choice, names: list[str]) -> None:
    if choice is None or choice in ("auto", "none"):
        return
    if choice == "required":
        if not names:
            raise BadRequest("tool_choice", "'required' needs tools to choose from; none are declared")
        return
    if isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if choice.get("type", "function") != "function" or not isinstance(name, str):
            raise BadRequest("tool_choice", 'a named choice is {"type": "function", "function": {"name": ...}}')
        if name not in names:
            raise BadRequest("tool_choice.function.name", f"{name!r} is not a declared tool "
                             f"({', '.join(names) or 'none are declared'})")
        return
    raise BadRequest("tool_choice", f"must be one of {', '.join(TOOL_CHOICES)} or a named function, not {choice!r}")


def _list(value, where: str) -> list:
    if not isinstance(value, list):
        raise BadRequest(where, f"must be a list, not {_kind(value)}")
    return value


def _number_in(value, low, high) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and low <= value <= high


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, numbers.Number) else type(value).__name__)
