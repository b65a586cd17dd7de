"""Importing other projects' agent trajectories as corpus records (`fireflan.chat/1`, see `fireflan.corpus.format`).

Sources:
- FireAct (Chen et al. 2023) fine-tuning data, `gpt_format_*.jsonl` and `alpaca_format_*.json`: GPT-4
  ReAct / CoT / Reflexion trajectories on HotpotQA, StrategyQA and MMLU.
- AgentInstruct / Agent-FLAN style conversation files (`conversation(s)` lists of role/from + content/value).
- OpenAI tool-calling records (`{"messages": [...], "tools": [...]}`: OpenAI's fine-tuning shape, with
  `arguments` as JSON strings and `weight` on assistant turns, or a Hugging Face `tools` column, with
  `arguments` as dicts): each call becomes a ReAct action, each `tool` turn its observation.

The FireAct files as published carry a few defects. Known ones are repaired or skipped, never silently:
each one is counted, with its line, in an `ImportReport` (pass `report=` to an importer). Anything else
that is not the expected shape raises `DataError` naming the file, the line and the field.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fireflan.agent.toolcalls import from_tool_calls
from fireflan.corpus.format import make_record, role_order_error, validate_record
from fireflan.io import DataError, read_records, require
from fireflan.tools.actions import ACTION_NAMES, parse_action

KINDS = ("fireact_gpt", "fireact_alpaca", "conversations", "openai_tools")

# What the FireAct importers repair or skip; the keys of `ImportReport.issues`.
SKIPPED_QUESTION_IN_ASSISTANT = "skipped: question inside an assistant turn"
DROPPED_FAKE_OBSERVATION = "dropped: assistant turn that is an 'Observation: Episode finished'"
CUT_TEXT_AFTER_ACTION = "cut: text after the first action of a turn"
UNTRAINED_NO_ACTION = "untrained (loss false): assistant turn without a readable action"
MOVED_MMLU_OPTIONS = "moved: MMLU options from the assistant output into the question"
FAILED_EPISODE = "kept: episode finished with reward False/0"


@dataclass
class ImportReport:
    """What an importer did to one file beyond a plain conversion: {issue: [line, ...]} and the final rewards."""

    path: str = ""
    read: int = 0
    imported: int = 0
    issues: dict[str, list[int]] = field(default_factory=dict)
    rewards: Counter = field(default_factory=Counter)

    def note(self, issue: str, line: int) -> None:
        self.issues.setdefault(issue, []).append(line)

    def count(self, issue: str) -> int:
        return len(self.issues.get(issue, []))

    def summary(self) -> str:
        """'x.jsonl: 2063 read, 2061 imported\\n  skipped: ...: 2 (lines 1860, 2047)'"""
        lines = [f"{self.path}: {self.read} read, {self.imported} imported"]
        for issue, where in self.issues.items():
            shown = ", ".join(map(str, where[:10])) + (", ..." if len(where) > 10 else "")
            lines.append(f"  {issue}: {len(where)} (lines {shown})")
        return "\n".join(lines)


# --------------------------------------------------------------------------- FireAct: pure helpers

_EPISODE_FINISHED = re.compile(r"^\s*Observation\s*:\s*Episode finished, reward\s*=\s*(\S+?)\.?\s*$", re.IGNORECASE)
_OBSERVATION = re.compile(r"^\s*Observation(?:\s*\d+)?\s*:", re.IGNORECASE)
_STEP_LABEL = re.compile(r"^\s*(?:Thought|Action)(?:\s*\d+)?\s*:", re.IGNORECASE)
_REFLECTION = re.compile(r"\blet me do a reflection\b|(?:^|\n)\s*Reflection\s*:", re.IGNORECASE)
_OPTION = re.compile(r"^\s*\(?([A-J])[.)]\s+(\S.*?)\s*$")
_OPTIONS_HEADER = re.compile(r"^\s*(?:options|choices|answer choices)\s*:?\s*$", re.IGNORECASE)
_STRATEGYQA_ANSWER = re.compile(r"^(?:yes|no|true|false)\b")  # lower-case, as FireAct's StrategyQA runs answer


def episode_reward(text: str) -> str | None:
    """'Observation: Episode finished, reward = True' -> 'True'; any other text -> None"""
    m = _EPISODE_FINISHED.match(text)
    return m.group(1) if m else None


def split_alpaca_output(output: str) -> list[dict]:
    """FireAct's alpaca `output` as alternating assistant / observation turns.

    'Thought: a\\nAction: search[X]\\nObservation: b\\nThought: c\\nAction: finish[Y]'
    -> [assistant 'Thought: a\\nAction: search[X]', user 'Observation: b', assistant 'Thought: c\\nAction: finish[Y]']
    An observation runs until the next line that starts with 'Thought:' or 'Action:'.
    """
    turns: list[dict] = []
    for text_line in output.strip("\n").split("\n"):
        if _OBSERVATION.match(text_line):
            turns.append({"role": "user", "content": text_line})
        elif not turns or (turns[-1]["role"] == "user" and _STEP_LABEL.match(text_line)):
            turns.append({"role": "assistant", "content": text_line})
        else:
            turns[-1]["content"] += "\n" + text_line
    return turns


def has_options(question: str) -> bool:
    """Whether a question lists lettered options A., B., ... on lines of their own (MMLU's layout)."""
    return len(_option_block(question.split("\n"))[1]) >= 2


def _option_block(lines: list[str]) -> tuple[int, list[str]]:
    """(index of the first line, ['A. x', 'B. y', ...]) of the first run of options lettered from A; (-1, [])."""
    for start, text_line in enumerate(lines):
        m = _OPTION.match(text_line)
        if m is None or m.group(1) != "A":
            continue
        options = []
        for offset, candidate in enumerate(lines[start:]):
            m = _OPTION.match(candidate)
            if m is None or m.group(1) != "ABCDEFGHIJ"[offset]:
                break
            options.append(f"{m.group(1)}. {m.group(2)}")
        if len(options) >= 2:
            return start, options
    return -1, []


def take_options(text: str) -> tuple[list[str], str]:
    """The first lettered-option block of `text` and `text` without it (and without an 'Options:' header).

    'Options:\\nA. 3\\nB. 4\\nThought: 2+2 is 4.' -> (['A. 3', 'B. 4'], 'Thought: 2+2 is 4.')
    """
    lines = text.split("\n")
    start, options = _option_block(lines)
    if not options:
        return [], text
    end = start + len(options)
    if start > 0 and _OPTIONS_HEADER.match(lines[start - 1]):
        start -= 1
    return options, "\n".join(lines[:start] + lines[end:]).strip("\n")


def move_options_to_question(messages: list[dict]) -> tuple[list[dict], bool]:
    """FireAct's MMLU quirk: options in the assistant output, not in the question. Move them; (turns, moved?).

    Applies only when the question (turn 0) lists no options and an assistant turn does: the first block
    found is appended to the question as '\\nA. ...\\nB. ...' lines (the layout of the records that already
    have them) and removed, with any identical copy, from the assistant turns.
    """
    if not messages or has_options(messages[0]["content"]):
        return messages, False
    options: list[str] = []
    out = [dict(t) for t in messages]
    for turn in out[1:]:
        if turn["role"] != "assistant":
            continue
        found, rest = take_options(turn["content"])
        if found and (not options or found == options):
            options = options or found
            turn["content"] = rest
    if not options:
        return messages, False
    out[0]["content"] = out[0]["content"].rstrip() + "".join("\n" + o for o in options)
    return out, True


def detect_method(messages: list[dict]) -> str:
    """'reflexion' (a reflection in a thought), 'react' (search/lookup calls), 'cot' (one finishing turn)."""
    said = [t["content"] for t in messages if t["role"] == "assistant"]
    if any(_REFLECTION.search(text) for text in said):
        return "reflexion"
    actions = [parse_action(text).action for text in said]
    if any(a not in (None, "finish") for a in actions):
        return "react"
    if len(said) == 1 and actions == ["finish"]:
        return "cot"
    return "unknown"


def final_answer(messages: list[dict]) -> str | None:
    """The argument of the last assistant turn's finish[...], if it finishes."""
    said = [t["content"] for t in messages if t["role"] == "assistant"]
    parsed = parse_action(said[-1]) if said else None
    return parsed.argument if parsed is not None and parsed.action == "finish" else None


def detect_task(messages: list[dict], reward: str | None) -> str:
    """Which FireAct task a trajectory solves: 'mmlu', 'strategyqa' or 'hotpotqa'.

    Rules, in order (checked against the published multitask file, where they agree with the source of
    every record): the question lists lettered options -> mmlu; the episode reward is True/False (FireAct's
    HotpotQA environment; its StrategyQA and MMLU environments report 1/0) -> hotpotqa; tool calls (with a
    1/0 reward) -> strategyqa; a final answer in lower-case yes/no/true/false -> strategyqa (HotpotQA CoT
    answers are written 'Yes'/'No'); anything else -> hotpotqa.
    """
    if has_options(messages[0]["content"]):
        return "mmlu"
    if reward is not None and reward.lower() in ("true", "false"):
        return "hotpotqa"
    if any(parse_action(t["content"]).action not in (None, "finish") for t in messages if t["role"] == "assistant"):
        return "strategyqa"
    answer = final_answer(messages)
    if answer is not None and _STRATEGYQA_ANSWER.match(answer.strip()):
        return "strategyqa"
    return "hotpotqa"


def clean_assistant_turn(text: str) -> tuple[str, bool, str | None]:
    """(text, trained?, issue) for one FireAct assistant turn, read with the agent's own parser.

    Text after the first action is cut (the agent runs only the first action); a turn without a readable
    search/lookup/finish action stays as context but is not trained on.
    'Thought: t\\nAction: search[A], search[B]' -> ('Thought: t\\nAction: search[A]', True, CUT_TEXT_AFTER_ACTION)
    """
    parsed = parse_action(text)
    if not parsed.ok or parsed.action not in ACTION_NAMES:  # FireAct's are the wiki's
        return text, False, UNTRAINED_NO_ACTION
    body = text.rstrip()
    if parsed.trailing and body.endswith(parsed.trailing):
        return body[: len(body) - len(parsed.trailing)].rstrip(), True, CUT_TEXT_AFTER_ACTION
    return text, True, None


# --------------------------------------------------------------------------- FireAct: one trajectory

def _check_turns(messages, path, line: int, where: str) -> None:
    """Each turn a {role: user|assistant, content: str} object; a DataError naming `where[i].field` if not."""
    if not isinstance(messages, list) or not messages:
        raise DataError(path, "expected a non-empty list of turns", line=line, field=where)
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict):
            raise DataError(path, f"expected a JSON object, got {type(turn).__name__}", line=line,
                            field=f"{where}[{i}]")
        if turn.get("role") not in ("user", "assistant"):
            raise DataError(path, f"expected 'user' or 'assistant', got {turn.get('role')!r}", line=line,
                            field=f"{where}[{i}].role")
        if not isinstance(turn.get("content"), str):
            raise DataError(path, f"expected str, got {type(turn.get('content')).__name__}", line=line,
                            field=f"{where}[{i}].content")


def _question_in_assistant_turn(messages: list[dict]) -> bool:
    """FireAct's broken CoT records: [assistant 'question\\nAction: finish[Thought: ...]', final observation]."""
    first = messages[0]
    return (first["role"] == "assistant" and not _STEP_LABEL.match(first["content"])
            and "\nAction" in first["content"])


def fireact_record(messages: list[dict], path, line: int, rec_id: str, report: ImportReport,
                   where: str = "messages") -> dict | None:
    """One FireAct trajectory (user question, assistant / observation turns) as a corpus record, or None
    when it is skipped as a known defect. Repairs and skips are noted in `report`; turns are stripped of
    surrounding white space (the gpt_format and alpaca copies of a question differ in it)."""
    _check_turns(messages, path, line, where)
    if _question_in_assistant_turn(messages):
        report.note(SKIPPED_QUESTION_IN_ASSISTANT, line)
        return None
    turns = [{"role": t["role"], "content": t["content"].strip()} for t in messages]
    reward = episode_reward(turns[-1]["content"]) if turns[-1]["role"] == "user" else None
    if reward is not None:
        turns.pop()
        report.rewards[reward] += 1
        if reward.lower() in ("false", "0"):
            report.note(FAILED_EPISODE, line)
    while len(turns) > 1 and turns[-1]["role"] == "assistant" and episode_reward(turns[-1]["content"]):
        turns.pop()
        report.note(DROPPED_FAKE_OBSERVATION, line)
    wrong = role_order_error([t["role"] for t in turns])
    if wrong is not None:
        raise DataError(path, wrong[1], line=line, field=f"{where}[{wrong[0]}].role")
    turns, moved = move_options_to_question(turns)
    if moved:
        report.note(MOVED_MMLU_OPTIONS, line)
    out = []
    for turn in turns:
        if turn["role"] == "user":
            out.append({"role": "user", "content": turn["content"], "loss": False})
            continue
        content, trained, issue = clean_assistant_turn(turn["content"])
        if issue is not None:
            report.note(issue, line)
        out.append({"role": "assistant", "content": content, "loss": trained})
    rec = make_record(out, rec_id, source="fireact", task=detect_task(out, reward), method=detect_method(out))
    rec["meta"]["reward"] = reward  # FireAct's own verdict: "True"/"1" solved, "False"/"0" not
    return validate_record(rec, path, line)


# --------------------------------------------------------------------------- importers

def import_fireact_gpt(path, report: ImportReport | None = None) -> list[dict]:
    """FireAct's `gpt_format_*.jsonl` ({"messages": [{role, content}, ...]} a line) as corpus records."""
    path = Path(path)
    report = report if report is not None else ImportReport()
    report.path = str(path)
    out = []
    for n, obj in read_records(path):
        report.read += 1
        messages = require(obj, "messages", list, path, n)
        rec = fireact_record(messages, path, n, f"fireact-{path.stem}-{n}", report)
        if rec is not None:
            out.append(rec)
    report.imported = len(out)
    return out


def import_fireact_alpaca(path, report: ImportReport | None = None) -> list[dict]:
    """FireAct's `alpaca_format_*.json` ([{instruction, input, output}]) as corpus records.

    The output is split into assistant / observation turns (`split_alpaca_output`), so a trajectory gives
    the same messages as in the gpt_format file. Turn indices in errors count the question as output[0].
    """
    path = Path(path)
    report = report if report is not None else ImportReport()
    report.path = str(path)
    out = []
    for n, obj in read_records(path):
        report.read += 1
        question = require(obj, "instruction", str, path, n)
        extra = require(obj, "input", str, path, n) if "input" in obj else ""
        output = require(obj, "output", str, path, n)
        if not output.strip():
            raise DataError(path, "empty", line=n, field="output")
        question = question + ("\n" + extra if extra.strip() else "")
        messages = [{"role": "user", "content": question}] + split_alpaca_output(output)
        rec = fireact_record(messages, path, n, f"fireact-{path.stem}-{n}", report, where="output")
        if rec is not None:
            out.append(rec)
    report.imported = len(out)
    return out


_ROLE_NAMES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
               "system": "system"}


def conversation_turn(turn, path, line: int, fld: str) -> dict:
    """One {role|from, content|value, loss?} turn as {role, content, loss}; loss defaults to role == assistant."""
    if not isinstance(turn, dict):
        raise DataError(path, f"expected a JSON object, got {type(turn).__name__}", line=line, field=fld)
    role_key = "role" if "role" in turn else "from"
    raw_role = turn.get(role_key)
    if not isinstance(raw_role, str) or raw_role.lower() not in _ROLE_NAMES:
        raise DataError(path, f"expected one of {', '.join(_ROLE_NAMES)}, got {raw_role!r}", line=line,
                        field=f"{fld}.{role_key}")
    content_key = "content" if "content" in turn else "value"
    content = turn.get(content_key)
    if not isinstance(content, str):
        raise DataError(path, f"expected str, got {type(content).__name__}", line=line,
                        field=f"{fld}.{content_key}")
    role = _ROLE_NAMES[raw_role.lower()]
    if role == "assistant" and not content.strip():
        raise DataError(path, "empty assistant turn", line=line, field=f"{fld}.{content_key}")
    loss = turn.get("loss")
    if loss is None:
        loss = role == "assistant"
    elif not isinstance(loss, bool):
        raise DataError(path, f"expected bool, got {type(loss).__name__}", line=line, field=f"{fld}.loss")
    elif loss and role != "assistant":
        raise DataError(path, f"only assistant turns are trained on, this is a {role} turn", line=line,
                        field=f"{fld}.loss")
    return {"role": role, "content": content, "loss": loss}


def import_conversations(path) -> list[dict]:
    """AgentInstruct / Agent-FLAN style files (JSON list or JSONL) of records with `conversation(s)`.

    Turns: `role` or `from` (human/user, gpt/assistant, system), `content` or `value`, optional boolean
    `loss` (absent or null: assistant turns true, others false). Optional record fields `task`, `method`
    (else 'unknown') and `tools` (else true).
    """
    path = Path(path)
    out = []
    for n, obj in read_records(path):
        key = "conversations" if "conversations" in obj else "conversation"
        turns = require(obj, key, list, path, n)
        if not turns:
            raise DataError(path, "no turns", line=n, field=key)
        messages = [conversation_turn(t, path, n, f"{key}[{i}]") for i, t in enumerate(turns)]
        wrong = role_order_error([t["role"] for t in messages])
        if wrong is not None:
            i = wrong[0]
            raise DataError(path, wrong[1], line=n, field=f"{key}[{i}].{'role' if 'role' in turns[i] else 'from'}")
        if not any(t["loss"] for t in messages):
            raise DataError(path, "no turn is trained on (every assistant turn has loss false)", line=n, field=key)
        task = require(obj, "task", str, path, n) if obj.get("task") is not None else "unknown"
        method = require(obj, "method", str, path, n) if obj.get("method") is not None else "unknown"
        tools = require(obj, "tools", bool, path, n) if obj.get("tools") is not None else True
        rec = make_record(messages, f"conversations-{path.stem}-{n}", source="conversations", task=task or "unknown",
                          method=method or "unknown", tools=tools)
        out.append(validate_record(rec, path, n))
    return out


# --------------------------------------------------------------------------- OpenAI tool calls

_OPENAI_ROLES = ("system", "user", "assistant", "tool")


def is_tool_calling(obj: dict) -> bool:
    """Whether a record with `messages` is in OpenAI's fine-tuning shape with tools (tools declared, a call, a
    tool turn or a `weight` in it: `corpus --format openai-tools` writes records with no tools that way too)."""
    messages = obj.get("messages")
    return "tools" in obj or (isinstance(messages, list) and any(
        isinstance(m, dict) and (m.get("tool_calls") or m.get("role") == "tool" or "weight" in m) for m in messages))


def _tool_schemas(tools, path, line: int) -> list[dict]:
    if isinstance(tools, str):  # a Hugging Face column may hold the list as JSON text
        try:
            tools = json.loads(tools) if tools.strip() else []
        except json.JSONDecodeError as e:
            raise DataError(path, f"not JSON ({e.msg})", line=line, field="tools") from None
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise DataError(path, f"expected a list of tool schemas, got {type(tools).__name__}", line=line, field="tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise DataError(path, "expected {type: function, function: {name, ...}}", line=line, field=f"tools[{i}]")
    return tools


def _openai_turn(turn, path, line: int, fld: str) -> dict:
    """One OpenAI message checked, with `loss` from its `weight` (assistant turns: 1 unless weight is 0)."""
    if not isinstance(turn, dict):
        raise DataError(path, f"expected a JSON object, got {type(turn).__name__}", line=line, field=fld)
    role = turn.get("role")
    if role not in _OPENAI_ROLES:
        raise DataError(path, f"expected one of {', '.join(_OPENAI_ROLES)}, got {role!r}", line=line,
                        field=f"{fld}.role")
    content, calls = turn.get("content"), turn.get("tool_calls") or []
    if not (isinstance(content, str) or (content is None and calls)):
        raise DataError(path, f"expected str (or null beside tool_calls), got {type(content).__name__}", line=line,
                        field=f"{fld}.content")
    if not isinstance(calls, list) or (calls and role != "assistant"):
        raise DataError(path, "tool_calls must be a list, on an assistant turn", line=line, field=f"{fld}.tool_calls")
    for j, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        where = f"{fld}.tool_calls[{j}].function"
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"].strip():
            raise DataError(path, "expected {name: str, arguments: JSON string or object}", line=line, field=where)
        args = fn.get("arguments", {})
        if isinstance(args, str) and args.strip():
            try:
                json.loads(args)
            except json.JSONDecodeError as e:
                raise DataError(path, f"not JSON ({e.msg})", line=line, field=f"{where}.arguments") from None
        elif not isinstance(args, dict | str):
            raise DataError(path, f"expected a JSON string or object, got {type(args).__name__}", line=line,
                            field=f"{where}.arguments")
    weight = turn.get("weight", 1)
    if weight not in (0, 1):
        raise DataError(path, f"expected 0 or 1, got {weight!r}", line=line, field=f"{fld}.weight")
    out = {k: turn[k] for k in ("role", "content", "tool_calls", "tool_call_id") if k in turn}
    out["loss"] = role == "assistant" and weight == 1
    return out


def openai_tools_record(obj: dict, path, line: int, source: str = "openai_tools") -> dict:
    """One OpenAI tool-calling record as a `fireflan.chat/1` record (ReAct turns), or a DataError naming the
    line and field. Optional record fields `task` and `method`, as for conversation files."""
    turns = require(obj, "messages", list, path, line)
    if not turns:
        raise DataError(path, "no turns", line=line, field="messages")
    tools = _tool_schemas(obj.get("tools"), path, line)
    messages = [_openai_turn(t, path, line, f"messages[{i}]") for i, t in enumerate(turns)]
    react = [{**m, "loss": bool(m.get("loss"))} for m in from_tool_calls(messages, declared=bool(tools))]
    if not any(m["loss"] for m in react):
        raise DataError(path, "no assistant turn is trained on (every weight is 0)", line=line, field="messages")
    wrong = role_order_error([m["role"] for m in react])
    if wrong is not None:
        raise DataError(path, f"{wrong[1]} (after tool calls became ReAct turns: is a call without its result?)",
                        line=line, field="messages")
    task = require(obj, "task", str, path, line) if obj.get("task") is not None else "unknown"
    method = require(obj, "method", str, path, line) if obj.get("method") is not None else "react"
    uses_tools = bool(tools) or any(m.get("tool_calls") for m in messages)
    rec = make_record(react, f"{source}-{Path(path).stem}-{line}", source=source, task=task or "unknown",
                      method=method or "react", tools=uses_tools)
    if tools:
        rec["meta"]["tool_schemas"] = tools  # what a hermes-format model is trained to see declared
    return validate_record(rec, path, line)


def import_openai_tools(path) -> list[dict]:
    """OpenAI tool-calling records (JSON list or JSONL): OpenAI's fine-tuning files, or a Hugging Face data set's
    rows with `messages` and `tools`."""
    return [openai_tools_record(obj, path, n) for n, obj in read_records(Path(path))]


def detect_kind(obj: dict) -> str | None:
    """The importer for a file whose first record is `obj`: 'fireact_gpt', 'fireact_alpaca', 'conversations',
    'openai_tools'."""
    if "messages" in obj and is_tool_calling(obj):
        return "openai_tools"
    if "messages" in obj:
        return "fireact_gpt"
    if "instruction" in obj and "output" in obj:
        return "fireact_alpaca"
    if "conversation" in obj or "conversations" in obj:
        return "conversations"
    return None


def import_file(path, kind: str = "auto", report: ImportReport | None = None) -> list[dict]:
    """Import a file with the importer `kind` names, or ('auto') the one its first record's shape calls for."""
    path = Path(path)
    if kind == "auto":
        first = next(iter(read_records(path)), None)
        if first is None:
            raise DataError(path, "no records")
        kind = detect_kind(first[1])
        if kind is None:
            raise DataError(path, "unknown record shape: expected 'messages' (FireAct gpt_format, or OpenAI tool "
                            "calls with 'tools'), 'instruction'/'output' (FireAct alpaca) or 'conversation(s)'",
                            line=first[0])
    if kind == "fireact_gpt":
        return import_fireact_gpt(path, report)
    if kind == "fireact_alpaca":
        return import_fireact_alpaca(path, report)
    if kind == "conversations":
        return import_conversations(path)
    if kind == "openai_tools":
        return import_openai_tools(path)
    raise ValueError(f"unknown kind {kind!r}; expected 'auto' or one of {', '.join(KINDS)}")
