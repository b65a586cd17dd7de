"""Corpus records -> token ids and labels, with the loss exactly where the record declares it.

The chat template comes from the tokenizer. Each message's tokens are found by rendering the
conversation up to it: message i spans from the end of `render(messages[:i], generation prompt)`
to the end of `render(messages[:i+1])`; a message with `loss: true` (assistant turns only) gets
its token ids as labels, including the end-of-turn token that teaches the model to stop; every
other position is -100. Observations and questions are never trained on.

    ids, labels = encode(tokenizer, record["messages"])
"""

from __future__ import annotations

from fireflan.corpus.format import check_messages
from fireflan.io import DataError, iter_jsonl

IGNORE = -100


class TemplateError(ValueError):
    """The chat template does not render conversations as growing prefixes (cannot mask by turn)."""


def _render(tokenizer, messages, generation_prompt: bool) -> str:
    if not messages:
        return ""
    clean = [{"role": m["role"], "content": m["content"]} for m in messages]
    return tokenizer.apply_chat_template(clean, tokenize=False, add_generation_prompt=generation_prompt)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode(tokenizer, messages: list[dict]) -> tuple[list[int], list[int]]:
    """(input_ids, labels) of one conversation; labels are -100 except on turns with loss.

    Raises TemplateError if the template does not render prefixes consistently (the masks would
    be wrong), rather than guessing.
    """
    full_text = _render(tokenizer, messages, False)
    ids = _ids(tokenizer, full_text)
    labels = [IGNORE] * len(ids)
    for i, m in enumerate(messages):
        if not m.get("loss"):
            continue
        if m["role"] != "assistant":
            raise DataError("<record>", f"turn {i} is a {m['role']} turn with loss: only assistant turns train",
                            field="messages")
        start_text = _render(tokenizer, messages[:i], True)
        end_text = _render(tokenizer, messages[: i + 1], False)
        start, end = _ids(tokenizer, start_text), _ids(tokenizer, end_text)
        if ids[: len(end)] != end or end[: len(start)] != start:
            raise TemplateError(f"the chat template does not render turn {i} as a prefix of the conversation; "
                                "fireflan cannot tell which tokens belong to it")
        labels[len(start): len(end)] = ids[len(start): len(end)]
    return ids, labels


def read_corpus(path) -> list[dict]:
    """Records of a corpus JSONL (fireflan.chat/1), checked for the fields training needs."""
    out = []
    for n, rec in iter_jsonl(path):
        messages = rec.get("messages")
        check_messages(messages, path, n)
        if not any(m.get("loss") for m in messages):
            raise DataError(path, "no turn has loss: true; nothing to train on", line=n, field="messages")
        rec.setdefault("meta", {}).setdefault("id", f"{path}:{n}")
        out.append(rec)
    return out


def tokenize_corpus(records: list[dict], tokenizer, max_length: int) -> tuple[list[dict], list[dict]]:
    """(examples, too_long): examples have input_ids, labels and length; records longer than
    `max_length` tokens are listed in too_long (id and length) and left out, never truncated."""
    examples, too_long = [], []
    for rec in records:
        ids, labels = encode(tokenizer, rec["messages"])
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
