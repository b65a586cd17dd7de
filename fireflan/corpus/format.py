"""Chat records for SFT, and the masks that say which turns are trained on.

A record (`fireflan.chat/1`) is OpenAI-shaped messages with a `loss` flag on each turn, and meta:

    {"schema": "fireflan.chat/1",
     "messages": [{"role": "user", "content": "Q?", "loss": false},
                  {"role": "assistant", "content": "Thought: ...\\nAction: search[X]", "loss": true},
                  {"role": "user", "content": "Observation: ...", "loss": false}, ...],
     "meta": {"id", "source", "task", "method", "capability", "negative", "tools", "question_id"}}

Loss masking is declared here, per turn, so a trainer cannot train on observations by accident:
only assistant turns may carry loss, and which of them do is the record's *capability*
(Agent-FLAN splits agent data by capability; the mask is what makes the split real):

- format: every assistant turn (FireAct: the whole trajectory);
- retrieval: the turns that call search/lookup/execute (choosing the tool and its argument);
- reasoning: the turns that conclude with finish[...] (composing the answer);
- understanding: the turns that follow an observation (reading what the tool returned).
"""

from __future__ import annotations

from fireflan.agent.toolcalls import task_tools, to_tool_calls
from fireflan.io import DataError, require
from fireflan.tools.actions import parse_action

SCHEMA_CHAT = "fireflan.chat/1"
ROLES = ("system", "user", "assistant")
META_FIELDS = ("id", "source", "task", "method", "capability", "negative", "tools")
CAPABILITIES = ("format", "reasoning", "retrieval", "understanding")
STYLES = ("fireact", "agentflan")
FORMATS = ("fireflan", "openai-tools")  # how a corpus is written: fireflan.chat/1, or OpenAI's fine-tuning shape

SYSTEM_TOOLS = (
    "You are a helpful assistant that answers questions and can use tools to look things up. When you need "
    "information, say briefly what you need, then call one tool on its own line as Action: tool[argument], "
    "and wait for the Observation. The tools are:\n"
    "- search[title or words]: returns the page with that title, or the best-matching passage and similar "
    "titles.\n"
    "- lookup[keyword]: returns the next sentence containing the keyword on the last page found.\n"
    "- finish[answer]: gives your final answer.\n"
    "Never write an Observation yourself; use only the tools listed.")
SYSTEM_SQL_TOOLS = (
    "You are a helpful assistant that answers questions about a database table and changes it when asked. "
    "Say briefly what you need, then call one tool on its own line as Action: tool[argument], and wait for the "
    "Observation. The tools are:\n"
    "- execute[SQL]: runs one SQL statement (on one line; quote names with backticks) and returns its rows or "
    "its error.\n"
    "- finish[answer]: gives your final answer (several values as a list: [\"A\", \"B\"]; after a change, "
    "finish[done]).\n"
    "Never write an Observation yourself; use only the tools listed.")
SYSTEM_NO_TOOLS = ("You are a helpful assistant. No tools are available in this conversation: answer in plain "
                   "words from the question and what you know, and say so when you cannot know the answer.")


def system_tools(task: str) -> str:
    """The system turn that describes a task's tools in plain words (Agent-FLAN style)."""
    return SYSTEM_SQL_TOOLS if task == "dbbench" else SYSTEM_TOOLS


def check_messages(messages, path, line: int) -> None:
    """A non-empty list of {role: system|user|assistant, content: str} turns, else a DataError
    naming the file, the line and the turn."""
    if not isinstance(messages, list) or not messages:
        raise DataError(path, "expected a non-empty list of {role, content} turns", line=line, field="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES \
                or not isinstance(m.get("content"), str):
            raise DataError(path, f"turn {i} must be {{role: system|user|assistant, content: str}}", line=line,
                            field="messages")


def turn_actions(messages: list[dict]) -> list[str | None]:
    """The action of each assistant turn (None for a turn with no readable action), in order."""
    return [parse_action(m["content"]).action for m in messages if m["role"] == "assistant"]


def capability_mask(messages: list[dict], capability: str) -> list[bool]:
    """Which assistant turns carry loss for `capability` (one flag per assistant turn).

    For [Q, A1 search, Obs, A2 search, Obs, A3 finish]:
    format -> [T, T, T]; retrieval -> [T, T, F]; reasoning -> [F, F, T]; understanding -> [F, T, T]
    """
    actions = turn_actions(messages)
    if capability == "format":
        return [True] * len(actions)
    if capability == "retrieval":
        return [a in ("search", "lookup", "execute") for a in actions]
    if capability == "reasoning":
        return [a == "finish" for a in actions]
    if capability == "understanding":
        return [i > 0 for i in range(len(actions))]
    raise ValueError(f"unknown capability {capability!r}; the capabilities are {', '.join(CAPABILITIES)}")


def supported(messages: list[dict]) -> list[str]:
    """The capabilities a conversation can train (those whose mask selects some turn)."""
    return [c for c in CAPABILITIES if any(capability_mask(messages, c))]


def apply_mask(messages: list[dict], flags: list[bool], frozen: int = 0, failed: tuple[int, ...] = ()) -> list[dict]:
    """Copies of the messages with `loss` set: assistant turns from `flags`, the first `frozen`
    assistant turns never (a failed first attempt), nor those in `failed` (a step whose tool call
    failed), every other turn never."""
    out, k = [], 0
    for m in messages:
        loss = False
        if m["role"] == "assistant":
            loss = flags[k] and k >= frozen and k not in failed
            k += 1
        out.append({"role": m["role"], "content": m["content"], "loss": loss})
    return out


def record(messages: list[dict], meta: dict) -> dict:
    return {"schema": SCHEMA_CHAT, "messages": messages, "meta": meta}


def make_record(messages: list[dict], rec_id: str, source: str, task: str, method: str,
                capability: str = "format", tools: bool = True) -> dict:
    """A `fireflan.chat/1` record; `messages` are {role, content, loss} turns."""
    meta = {"id": rec_id, "source": source, "task": task, "method": method, "capability": capability,
            "negative": None, "tools": tools}
    return record(messages, meta)


def role_order_error(roles: list[str]) -> tuple[int, str] | None:
    """(index, why) of the first turn out of order, or None. Order: system?, user, assistant, user, ..., assistant.

    ['user', 'assistant'] -> None; ['user', 'user'] -> (1, "expected 'assistant', got 'user' ...")
    """
    if not roles:
        return 0, "no turns"
    start = 1 if roles[0] == "system" else 0
    for i, role in enumerate(roles):
        expected = "system" if i < start else ("user", "assistant")[(i - start) % 2]
        if role != expected:
            hint = "the first turn must be the user's question" if i == start else "roles must alternate"
            return i, f"expected {expected!r}, got {role!r} ({hint})"
    if roles[-1] != "assistant":
        return len(roles) - 1, "the last turn must be an assistant turn (nothing follows it to train on)"
    return None


def validate_record(rec: dict, path=None, line: int | None = None) -> dict:
    """`rec` itself when it is a well-formed corpus record, else a DataError naming the field.

    Roles: an optional system turn, then user/assistant alternating from a user turn, ending with an
    assistant turn; `loss` only on assistant turns, and on one at least.
    """
    where = path if path is not None else "<record>"

    def bad(message: str, fld: str):
        return DataError(where, message, line=line, field=fld)

    if not isinstance(rec, dict):
        raise bad(f"expected a JSON object, got {type(rec).__name__}", "record")
    if rec.get("schema") != SCHEMA_CHAT:
        raise bad(f"expected {SCHEMA_CHAT!r}, got {rec.get('schema')!r}", "schema")
    messages = require(rec, "messages", list, where, line)
    if not messages:
        raise bad("no turns", "messages")
    for i, turn in enumerate(messages):
        fld = f"messages[{i}]"
        if not isinstance(turn, dict):
            raise bad(f"expected a JSON object, got {type(turn).__name__}", fld)
        if turn.get("role") not in ROLES:
            raise bad(f"expected one of {', '.join(ROLES)}, got {turn.get('role')!r}", f"{fld}.role")
        if not isinstance(turn.get("content"), str):
            raise bad(f"expected str, got {type(turn.get('content')).__name__}", f"{fld}.content")
        if not isinstance(turn.get("loss"), bool):
            raise bad(f"expected bool, got {type(turn.get('loss')).__name__}", f"{fld}.loss")
        if turn["loss"] and turn["role"] != "assistant":
            raise bad(f"only assistant turns are trained on, this is a {turn['role']} turn", f"{fld}.loss")
        if turn["role"] == "assistant" and not turn["content"].strip():
            raise bad("empty assistant turn", f"{fld}.content")
    wrong = role_order_error([t["role"] for t in messages])
    if wrong is not None:
        raise bad(wrong[1], f"messages[{wrong[0]}].role")
    if not any(t["loss"] for t in messages):
        raise bad("no assistant turn is trained on", "messages")
    meta = require(rec, "meta", dict, where, line)
    for key in META_FIELDS:
        if key not in meta:
            raise bad("missing", f"meta.{key}")
    for key in ("id", "source", "task", "method", "capability"):
        if not isinstance(meta[key], str) or not meta[key]:
            raise bad(f"expected a non-empty str, got {meta[key]!r}", f"meta.{key}")
    if not isinstance(meta["tools"], bool):
        raise bad(f"expected bool, got {type(meta['tools']).__name__}", "meta.tools")
    return rec


def trajectory_record(traj, capability: str = "format") -> dict:
    """A successful trajectory as a FireAct-format record (no system turn, no few-shot examples).

    Turns of a Reflexion attempt that the judge found wrong (up to and including its finish) are
    kept as context but carry no loss, nor does a step whose SQL failed (`Error: ...`): the model
    learns the recovery, not the mistake.
    """
    messages = traj.messages()
    wrong = [i for i, s in enumerate(traj.steps) if s.feedback]
    frozen = wrong[-1] + 1 if wrong else 0
    failed = tuple(i for i, s in enumerate(traj.steps)
                   if s.action == "execute" and s.observation.startswith("Error:"))
    meta = {"id": f"{traj.id}/{traj.method}/{traj.seed}", "source": "teach", "task": traj.task,
            "method": traj.method, "capability": capability, "negative": None, "tools": True,
            "question_id": traj.id}
    return record(apply_mask(messages, capability_mask(messages, capability), frozen, failed), meta)


def restyle(rec: dict, style: str) -> dict:
    """The record in a training style.

    fireact: as is (the question as the user turn, "Thought: ...\\nAction: ..." replies).
    agentflan: Agent-FLAN's chat alignment: a system turn describes the tools in plain words and the
    replies read as natural text ("I need X.\\nAction: search[X]", no "Thought:" label).
    Records that already have a system turn (negatives) keep it.
    """
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; the styles are {', '.join(STYLES)}")
    if style == "fireact" or rec["messages"][0]["role"] == "system":
        return rec
    messages = [{"role": "system", "content": system_tools(rec["meta"].get("task", "")), "loss": False}]
    for m in rec["messages"]:
        content = m["content"]
        if m["role"] == "assistant" and content.startswith("Thought: "):
            content = content.removeprefix("Thought: ")
        messages.append({**m, "content": content})
    return {**rec, "messages": messages}


def openai_record(rec: dict) -> dict:
    """A corpus record in OpenAI's fine-tuning shape with tools: `{"messages", "tools", "parallel_tool_calls"}`.

    Actions become assistant `tool_calls` (arguments a JSON string) and their observations `tool` turns
    (fireflan.agent.toolcalls.to_tool_calls); which assistant turns are trained on is each one's `weight`
    (1 or 0, as OpenAI reads it). A record where no tools exist (a no_tools negative) declares none.
    """
    tools = task_tools(rec["meta"].get("task", "")) if rec["meta"].get("tools", True) else []
    messages = to_tool_calls(rec["messages"], tools) if tools else rec["messages"]
    out = []
    for m in messages:
        turn = {k: m[k] for k in ("role", "content", "tool_calls", "tool_call_id") if k in m}
        if turn.get("tool_calls") and not turn["content"]:
            turn["content"] = None
        if m["role"] == "assistant":
            turn["weight"] = int(bool(m.get("loss")))
        out.append(turn)
    return {"messages": out, "tools": tools, "parallel_tool_calls": False} if tools else {"messages": out}
