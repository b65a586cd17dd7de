"""ReAct text and OpenAI tool calls, both ways: the `hermes` action format and the `openai-tools` corpus.

fireflan's agent keeps its conversation in ReAct text (an assistant turn "Thought: ...\\nAction:
search[X]", the reply as a user turn "Observation: ..."). A model trained in the hermes format
reads and writes the same conversation as OpenAI tool calls instead:

    to_tool_calls([user "Q?", assistant "Thought: t\\nAction: search[X]", user "Observation: o"])
    -> [user "Q?", assistant {content: "t", tool_calls: [{id: "call_1", function: {name: "search",
        arguments: '{"query": "X"}'}}]}, tool {tool_call_id: "call_1", content: "o"}]

and the chat template renders a call as `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
(fireflan.train.chat_template), which llama.cpp's server and Ollama parse natively. A final answer
has no tool: it is the assistant's content, its last line "Final Answer: ..." (the ReAct
convention), so a client that reads only `content` still gets the answer.

Pure functions; `parse_tool_call` reads a model's hermes text into the same `Parsed` as the ReAct
parser, so the agent loop is one loop for both formats.
"""

from __future__ import annotations

import json
import re

from fireflan.tools.actions import ACTION_NAMES, Parsed, parse_action

ACTION_FORMATS = ("react", "hermes")
ACTION_FORMAT_KEY = "fireflan.action_format"  # the GGUF metadata key that says a model's format (when not react)
FINAL = "Final Answer:"
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
STOP = [CALL_CLOSE, "<tool_response>"]  # the model's call is complete; it must not write the reply itself


def _tool(name: str, description: str, argument: str, about: str) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description,
        "parameters": {"type": "object", "properties": {argument: {"type": "string", "description": about}},
                       "required": [argument]}}}


# The tools of fireflan's environments as OpenAI function schemas (finish is not a tool: it is the answer).
TOOLS = {
    "search": _tool("search", "Returns the wiki page with this title, or the best-matching passage and similar "
                    "titles.", "query", "a page title or a few words"),
    "lookup": _tool("lookup", "Returns the next sentence containing the keyword on the last page found.",
                    "keyword", "a word or phrase"),
    "execute": _tool("execute", "Runs one SQL statement on the database and returns its rows or its error.",
                     "sql", "one SQL statement, on one line; quote names with backticks"),
}
TASK_ACTIONS = {"dbbench": ("execute", "finish")}


def task_tools(task: str) -> list[dict]:
    """The tool schemas a task's environment offers. 'world' -> [search, lookup]; 'dbbench' -> [execute]"""
    return tools_for(TASK_ACTIONS.get(task, ACTION_NAMES))


def tools_for(actions) -> list[dict]:
    """OpenAI tool schemas of an environment's actions (finish left out; an unknown action gets one string
    argument, `input`)."""
    return [TOOLS.get(a) or _tool(a, f"The {a} action.", "input", "its argument") for a in actions if a != "finish"]


def argument_name(tool: str, tools: list[dict] | None = None) -> str:
    """The name of a tool's one argument. ('search') -> 'query'"""
    for schema in [*(tools or []), *TOOLS.values()]:
        if schema["function"]["name"] == tool:
            return next(iter(schema["function"]["parameters"].get("properties") or {"input": None}))
    return "input"


# --------------------------------------------------------------------------- ReAct -> tool calls

def to_tool_calls(messages: list[dict], tools: list[dict] | None = None) -> list[dict]:
    """A ReAct conversation as OpenAI tool-calling messages; every other key of a turn (`loss`) is kept.

    An assistant turn whose action is a tool becomes content (the thought) plus one tool call, and the
    "Observation: ..." turn after it a `tool` turn; a finish becomes "thought\\nFinal Answer: X"; a turn
    with no readable action, and every other user turn, stays as it is.
    """
    out, pending = [], None  # pending: the id of the call whose observation comes next
    for m in messages:
        m = dict(m)
        if m["role"] == "user" and pending and m["content"].startswith("Observation:"):
            out.append({**_extra(m), "role": "tool", "tool_call_id": pending,
                        "content": m["content"].removeprefix("Observation:").strip()})
            pending = None
            continue
        pending = None
        if m["role"] == "assistant":
            parsed = parse_action(m["content"])
            if parsed.ok and parsed.action == "finish":
                m["content"] = "\n".join(filter(None, [parsed.thought, f"{FINAL} {parsed.argument}"]))
            elif parsed.ok:
                pending = f"call_{sum(1 for t in out if t.get('tool_calls')) + 1}"
                arguments = json.dumps({argument_name(parsed.action, tools): parsed.argument}, ensure_ascii=False)
                m["content"] = parsed.thought
                m["tool_calls"] = [{"id": pending, "type": "function",
                                    "function": {"name": parsed.action, "arguments": arguments}}]
        out.append(m)
    return out


def _extra(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in ("role", "content", "tool_calls", "tool_call_id", "name")}


# --------------------------------------------------------------------------- tool calls -> ReAct

def call_argument(arguments) -> str:
    """A call's arguments as the one ReAct argument: the value when there is one, else the JSON object.

    '{"query": "X"}' -> 'X'; {"a": 1, "b": 2} -> '{"a": 1, "b": 2}'; '' -> ''
    """
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return " ".join(arguments.split())
    if isinstance(arguments, dict) and len(arguments) == 1:
        (value,) = arguments.values()
        return " ".join(value.split()) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return json.dumps(arguments, ensure_ascii=False) if arguments else ""


def react_turn(thought: str, action: str, argument: str) -> str:
    """'Thought: t\\nAction: a[x]' ('t' empty: no thought line)"""
    thought = (thought or "").strip()
    return (f"Thought: {thought}\n" if thought else "") + f"Action: {action}[{argument}]"


def final_turn(content: str) -> str:
    """A final assistant reply in ReAct: 'thought\\nFinal Answer: X' -> 'Thought: thought\\nAction: finish[X]';
    a reply with no "Final Answer:" is the answer itself (on one line)."""
    head, sep, answer = content.rpartition(FINAL)
    if not sep:
        head, answer = "", content
    return react_turn(head, "finish", " ".join(answer.split()))


def from_tool_calls(messages: list[dict], declared: bool = False) -> list[dict]:
    """OpenAI tool-calling messages as a ReAct conversation (what fireflan trains and runs on).

    Each call becomes its own assistant turn followed by its result as "Observation: ..."
    (parallel calls one after another, results matched by `tool_call_id`); in a conversation that calls
    tools, or has them `declared`, a plain assistant reply is the final answer (finish). Other keys of a turn
    (`loss`, `weight`) are kept.
    """
    uses_tools = declared or any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)
    results = [m for m in messages if m.get("role") == "tool"]
    by_id = {m.get("tool_call_id"): i for i, m in enumerate(results)}
    used, out = set(), []
    for m in messages:
        content = m.get("content") or ""
        if m.get("role") == "tool":
            continue  # placed after its call
        if m.get("role") == "assistant" and m.get("tool_calls"):
            for k, call in enumerate(m["tool_calls"]):
                fn = call.get("function") or {}
                turn = react_turn(content if k == 0 else "", fn.get("name", ""), call_argument(fn.get("arguments")))
                out.append({**_extra(m), "role": "assistant", "content": turn})
                i = by_id.get(call.get("id"))
                if i is None or i in used:  # no id to match: the next result in order
                    i = next((j for j in range(len(results)) if j not in used), None)
                if i is not None:
                    used.add(i)
                    out.append({**_extra(results[i]), "role": "user",
                                "content": f"Observation: {results[i].get('content') or ''}"})
        elif m.get("role") == "assistant" and uses_tools:
            out.append({**_extra(m), "role": "assistant", "content": final_turn(content)})
        else:
            out.append({**_extra(m), "role": m.get("role"), "content": content})
    return out


# --------------------------------------------------------------------------- reading the model's text

_CALL = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(CALL_CLOSE) + r"|$)", re.DOTALL)
_THOUGHT = re.compile(r"^\s*Thought\s*:\s*", re.IGNORECASE)


def parse_tool_call(text: str, names: tuple[str, ...] = ACTION_NAMES) -> Parsed:
    """Read the first action of a hermes-format reply (a tool call, or a final answer), as `parse_action` does.

    'I need X.\\n<tool_call>{"name": "search", "arguments": {"query": "X"}}</tool_call>'
    -> Parsed(thought='I need X.', action='search', argument='X')
    'So it is Y.\\nFinal Answer: Y' -> Parsed(thought='So it is Y.', action='finish', argument='Y')
    A call to a name not in `names` is read as that action (the environment answers that it is unknown).
    """
    m = _CALL.search(text)
    final = text.find(FINAL)
    if m is not None and (final == -1 or m.start() < final):
        thought = _THOUGHT.sub("", text[: m.start()].strip()).strip()
        try:
            call, _ = json.JSONDecoder().raw_decode(m.group(1))
        except json.JSONDecodeError as e:
            return Parsed(thought, None, None, "", f"Invalid tool call: its JSON does not parse ({e.msg}). Write "
                          '<tool_call>{"name": "tool", "arguments": {...}}</tool_call>.')
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"].strip():
            return Parsed(thought, None, None, "", 'Invalid tool call: it needs a "name" and "arguments".')
        trailing = text[m.end():].strip()
        return Parsed(thought, call["name"].strip().lower(), call_argument(call.get("arguments") or {}), trailing)
    if final != -1:
        thought = _THOUGHT.sub("", text[:final].strip()).strip()
        answer, _, trailing = text[final + len(FINAL):].strip().partition("\n")
        return Parsed(thought, "finish", answer.strip(), trailing.strip())
    tools = ", ".join(n for n in names if n != "finish")
    return Parsed(_THOUGHT.sub("", text.strip()).strip(), None, None, "",
                  f"Invalid action: no <tool_call> and no '{FINAL}' found. Call one of the tools ({tools}) "
                  f"or end with '{FINAL} ...'.")


def to_react_text(text: str, names: tuple[str, ...] = ACTION_NAMES) -> str:
    """A hermes-format reply as the ReAct text the agent loop reads (unreadable text is returned as it is)."""
    parsed = parse_tool_call(text, names)
    if not parsed.ok:
        return text
    turn = react_turn(parsed.thought, parsed.action, parsed.argument)
    return f"{turn}\n{parsed.trailing}" if parsed.trailing else turn
