"""Corpus records -> token ids and labels, with the loss exactly where the record declares it.

The chat template comes from the tokenizer. Each message's tokens are found by rendering the
conversation up to it: message i spans from the end of `render(messages[:i], generation prompt)`
to the end of `render(messages[:i+1])`; a message with `loss: true` (assistant turns only) gets
its token ids as labels, including the end-of-turn token that teaches the model to stop; every
other position is -100. Observations and questions are never trained on.

    ids, labels = encode(tokenizer, record["messages"])
"""

from __future__ import annotations

from fireflan.agent.toolcalls import ACTION_FORMATS, task_tools, to_tool_calls
from fireflan.corpus.format import check_messages
from fireflan.corpus.importers import is_tool_calling, openai_tools_record
from fireflan.io import DataError, iter_jsonl

IGNORE = -100


class TemplateError(ValueError):
    """The chat template does not render conversations as growing prefixes (cannot mask by turn)."""


TURN_KEYS = ("role", "content", "tool_calls", "tool_call_id", "name")  # what the template reads of a turn


def render_chat(tokenizer, messages, generation_prompt: bool, tools=None) -> str:
    if not messages:
        return ""
    clean = [{k: m[k] for k in TURN_KEYS if k in m} for m in messages]
    return tokenizer.apply_chat_template(clean, tools=tools or None, tokenize=False,
                                         add_generation_prompt=generation_prompt)


def token_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode(tokenizer, messages: list[dict], tools: list[dict] | None = None) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one conversation (with the `tools` it may call, OpenAI schemas); labels are
    -100 except on turns with loss.

    Raises TemplateError if the template does not render prefixes consistently (the masks would
    be wrong), rather than guessing.
    """
    full_text = render_chat(tokenizer, messages, False, tools)
    ids = token_ids(tokenizer, full_text)
    labels = [IGNORE] * len(ids)
    for i, m in enumerate(messages):
        if not m.get("loss"):
            continue
        if m["role"] != "assistant":
            raise DataError("<record>", f"turn {i} is a {m['role']} turn with loss: only assistant turns train",
                            field="messages")
        start_text = render_chat(tokenizer, messages[:i], True, tools)
        end_text = render_chat(tokenizer, messages[: i + 1], False, tools)
        start, end = token_ids(tokenizer, start_text), token_ids(tokenizer, end_text)
        if ids[: len(end)] != end or end[: len(start)] != start:
            raise TemplateError(f"the chat template does not render turn {i} as a prefix of the conversation; "
                                "fireflan cannot tell which tokens belong to it")
        labels[len(start): len(end)] = ids[len(start): len(end)]
    return ids, labels


def read_corpus(path) -> list[dict]:
    """Records of a corpus JSONL (fireflan.chat/1, or OpenAI tool-calling records as `corpus --format
    openai-tools` writes them), checked for the fields training needs."""
    out = []
    for n, rec in iter_jsonl(path):
        if "schema" not in rec and is_tool_calling(rec):
            rec = openai_tools_record(rec, path, n, source="corpus")
        messages = rec.get("messages")
        check_messages(messages, path, n)
        if not any(m.get("loss") for m in messages):
            raise DataError(path, "no turn has loss: true; nothing to train on", line=n, field="messages")
        rec.setdefault("meta", {}).setdefault("id", f"{path}:{n}")
        out.append(rec)
    return out


def in_action_format(rec: dict, action_format: str) -> tuple[list[dict], list[dict] | None]:
    """(messages, tools) of a record as the model is trained on it: `react` as written; `hermes` with its
    actions as OpenAI tool calls and its task's tools declared (or those the record declared; see
    fireflan.agent.toolcalls), unless it is a record where no tools exist (a `no_tools` negative)."""
    if action_format == "react":
        return rec["messages"], None
    if action_format != "hermes":
        raise ValueError(f"--action-format must be one of {', '.join(ACTION_FORMATS)}, got {action_format!r}")
    meta = rec.get("meta") or {}
    if meta.get("tools") is False:
        return rec["messages"], None
    tools = meta.get("tool_schemas") or task_tools(meta.get("task", ""))
    return to_tool_calls(rec["messages"], tools), tools


def tokenize_corpus(records: list[dict], tokenizer, max_length: int,
                    action_format: str = "react") -> tuple[list[dict], list[dict]]:
    """(examples, too_long): examples have input_ids, labels and length; records longer than
    `max_length` tokens are listed in too_long (id and length) and left out, never truncated."""
    examples, too_long = [], []
    for rec in records:
        ids, labels = encode(tokenizer, *in_action_format(rec, action_format))
        if len(ids) > max_length:
            too_long.append({"id": rec["meta"]["id"], "tokens": len(ids)})
            continue
        examples.append({"input_ids": ids, "labels": labels, "length": len(ids)})
    return examples, too_long


def length_batches(lengths: list[int], batch_size: int, seed: int) -> list[int]:
    """An order of the records in which each run of `batch_size` holds records of about the same
    length (little padding) and the batches come in random order (seeded).

    HF's group_by_length sorts each 50-batch block from longest to shortest, so every 50th step ends
    on the shortest records (on ReAct data: the one-step answers), and a checkpoint there has just
    learnt to answer without searching. Shuffling whole batches keeps the padding low without that.

    ([5, 1, 4, 2], batch_size=2, seed=0) -> e.g. [0, 2, 1, 3] or [1, 3, 0, 2]
    """
    import random

    rng = random.Random(seed)
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], rng.random()))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return [i for batch in batches for i in batch]
