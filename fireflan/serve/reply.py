"""What the served model reads, and what the client gets back: a request's messages as the conversation the
model was trained on, and its reply as an OpenAI message (tool calls, or the answer as content).

A fine-tuned fireflan agent was trained on FireAct's format: the question as the user's turn, then its own
steps and their observations, with no system prompt and no tool descriptions (the steps name the tools).
So with tools declared the request is rendered that way (`conversation`): system and developer turns are
left out (a framework's long instructions are text the model never saw in training), tool calls and tool
results become its steps and observations. Without tools the request is a plain chat, rendered as it is.

    conversation([system "You are a helpful agent...", user "Who directed X?"], tools=[search])
    -> [user "Who directed X?"]
    message_for(Parsed("I need X.", "search", "X"), tools=[search(query)], call_id="call_1")
    -> ({"role": "assistant", "content": "I need X.", "tool_calls": [{"id": "call_1", "type": "function",
         "function": {"name": "search", "arguments": '{"query": "X"}'}}]}, "tool_calls")

Pure functions.
"""

from __future__ import annotations

import json

from fireflan.agent.toolcalls import argument_name, from_tool_calls
from fireflan.tools.actions import Parsed

FINAL_TOOL = "final_answer"  # a tool some frameworks (smolagents) declare to receive the answer


def tool_names(tools: list[dict] | None) -> list[str]:
    return [t["function"]["name"] for t in tools or []]


def conversation(messages: list[dict], tools: list[dict] | None) -> list[dict]:
    """The messages the model reads: its trained ReAct conversation when tools are declared, else the chat."""
    if not tools:
        return [{"role": m["role"], "content": m["content"]} for m in from_tool_calls(messages)]
    return [{"role": m["role"], "content": m["content"]} for m in from_tool_calls(messages, declared=True)
            if m["role"] != "system"]


def allowed_actions(tools: list[dict] | None, tool_choice) -> tuple[str, ...]:
    """The model's action names `tool_choice` allows (lower-case, as the parser reads them); finish is the
    answer. auto -> the tools and finish; none -> finish; required -> the tools; a named function -> it."""
    names = [n.lower() for n in tool_names(tools) if n != FINAL_TOOL]
    if not tools or tool_choice == "none":
        return ("finish",)
    if tool_choice == "required":
        return tuple(names) if names else ("finish",)
    if isinstance(tool_choice, dict):
        name = tool_choice["function"]["name"]
        return ("finish",) if name == FINAL_TOOL else (name.lower(),)
    return (*names, "finish")


def message_for(parsed: Parsed, raw: str, tools: list[dict] | None, call_id: str) -> tuple[dict, str]:
    """(the assistant message, its finish_reason) for the model's parsed step.

    A call to a declared tool -> tool_calls (its one argument under the name the request's schema gives it,
    the thought before it as content); finish -> the answer alone as content (a client reads the answer
    there; the thought before it is not returned), or a call to a declared `final_answer` tool; a call to a tool that is
    not declared -> content saying so; text with no readable step -> that text as content.
    """
    declared = {n.lower(): n for n in tool_names(tools)}
    if not parsed.ok:
        return _content(raw.strip()), "stop"
    if parsed.action == "finish":
        if FINAL_TOOL in declared:
            return _call(declared[FINAL_TOOL], parsed.argument, parsed.thought, tools, call_id), "tool_calls"
        return _content(parsed.argument), "stop"
    if tools and parsed.action in declared:
        return _call(declared[parsed.action], parsed.argument, parsed.thought, tools, call_id), "tool_calls"
    known = ", ".join(declared.values()) or "no tools were declared"
    return _content(f"(The model called the tool {parsed.action!r} with {parsed.argument!r}, but it is not one of "
                    f"the declared tools: {known}.)"), "stop"


def _content(text: str) -> dict:
    return {"role": "assistant", "content": text}


def _call(name: str, argument: str, thought: str, tools, call_id: str) -> dict:
    arguments = json.dumps({argument_name(name, tools) if name != FINAL_TOOL else _final_argument(tools):
                            argument}, ensure_ascii=False)
    return {"role": "assistant", "content": thought or None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]}


def _final_argument(tools) -> str:
    for t in tools or []:
        if t["function"]["name"] == FINAL_TOOL:
            return next(iter((t["function"].get("parameters") or {}).get("properties") or {"answer": None}))
    return "answer"


def completion(message: dict, finish_reason: str, *, id: str, created: int, model: str, usage: dict) -> dict:
    """An OpenAI chat.completion object with one choice."""
    return {"id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": usage}


def chunks(message: dict, finish_reason: str, *, id: str, created: int, model: str) -> list[dict]:
    """A whole reply as the chat.completion.chunk objects a stream sends: the role, the content or each
    tool call (its id, name and whole arguments in one delta), then the finish reason."""
    def chunk(delta, reason=None):
        return {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

    out = [chunk({"role": "assistant", "content": ""})]
    if message.get("content"):
        out.append(chunk({"content": message["content"]}))
    for k, call in enumerate(message.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": k, **call}]}))
    out.append(chunk({}, finish_reason))
    return out
