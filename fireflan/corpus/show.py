"""`corpus show`: one record as training sees it, token by token, with the trained tokens marked.

    python -m fireflan corpus show runs/hotpotqa/corpus --index 3
    python -m fireflan corpus show runs/hotpotqa/corpus --id world-0-train-00884/react/0 --html record.html

The record goes through the same tokenizer, chat template and label code as `fireflan train`
(fireflan.train.data.encode), so what is highlighted is what the loss is computed on: the
assistant's thoughts and actions and their end-of-turn token; never the question, the template's
own markers or an observation. In a notebook, `record_view(...)` displays as HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from importlib import resources
from string import Template

from fireflan.io import DataError
from fireflan.options import opt
from fireflan.train.bases import resolve_base
from fireflan.train.data import IGNORE, TURN_KEYS, encode, in_action_format, read_corpus, render_chat, token_ids
from fireflan.train.trainer import corpus_files, prepare_tokenizer

KINDS = ("trained", "assistant", "observation", "prompt")  # assistant: a model turn with no loss (a negative's)


@dataclass
class ShowConfig:
    """Options of `fireflan corpus show`."""

    corpus: str = opt("runs/corpus", "a corpus folder (its train.jsonl; val.jsonl with --split val) or one JSONL file")
    index: int = opt(0, "the record's position in the file (0: the first)")
    id: str | None = opt(None, "the record's meta.id instead of its position")
    split: str = opt("train", "train | val (a corpus folder's file to read)")
    base: str = opt("embedded", "the base whose tokenizer and chat template training uses: embedded | tiny | a "
                                "Hugging Face id or folder (as `train --base`)")
    action_format: str = opt("react", "react | hermes (as `train --action-format`)")
    html: str | None = opt(None, "also write the record as an HTML page to this file")


@dataclass
class Token:
    text: str
    id: int
    kind: str      # one of KINDS
    turn: int      # the message it belongs to (-1: after the last one)


@dataclass
class RecordView:
    """One record's tokens and counts; displays as HTML in a notebook and in colour in a terminal."""

    id: str
    tokens: list[Token]
    counts: dict = field(default_factory=dict)

    def _repr_html_(self) -> str:
        return to_html(self)

    def __rich__(self):
        return to_rich(self)


def token_kinds(tokenizer, messages: list[dict], tools=None) -> tuple[list[int], list[int], list[int]]:
    """(ids, labels, turn of each token) of a conversation: ids and labels exactly as training's `encode`
    gives them; a token's turn is the first message whose rendering reaches past it, or -1 for the template's
    own tokens before a model turn (`<start_of_turn>model`) and after the last turn."""
    ids, labels = encode(tokenizer, messages, tools)

    def length(upto: int, generation_prompt: bool) -> int:
        return len(token_ids(tokenizer, render_chat(tokenizer, messages[:upto], generation_prompt, tools)))

    ends = [length(i + 1, False) for i in range(len(messages))]
    starts = [length(i, True) if m["role"] == "assistant" else 0 for i, m in enumerate(messages)]
    turns, i = [], 0
    for j in range(len(ids)):
        while i < len(ends) and ends[i] <= j:
            i += 1
        turns.append(i if i < len(ends) and j >= starts[i] else -1)
    return ids, labels, turns


def _kind(message: dict | None, trained: bool) -> str:
    if trained:
        return "trained"
    if message is None:
        return "prompt"
    if message["role"] == "assistant":
        return "assistant"
    if message["role"] == "tool" or str(message.get("content") or "").startswith("Observation:"):
        return "observation"
    return "prompt"


def view(tokenizer, record: dict, action_format: str = "react") -> RecordView:
    """The RecordView of one corpus record (a fireflan.chat/1 record, as `read_corpus` returns it)."""
    messages, tools = in_action_format(record, action_format)
    messages = [{k: m[k] for k in (*TURN_KEYS, "loss") if k in m} for m in messages]
    ids, labels, turns = token_kinds(tokenizer, messages, tools)
    tokens = [Token(tokenizer.decode([t]), t, _kind(messages[turn] if turn >= 0 else None, label != IGNORE), turn)
              for t, label, turn in zip(ids, labels, turns, strict=True)]
    counts = {"tokens": len(tokens), **{k: sum(t.kind == k for t in tokens) for k in KINDS}}
    return RecordView(str((record.get("meta") or {}).get("id", "")), tokens, counts)


def pick(records: list[dict], index: int = 0, id: str | None = None, where: str = "corpus") -> dict:
    """The record with meta.id `id`, else the one at `index`; a clear error naming the file otherwise."""
    if id is not None:
        for rec in records:
            if rec["meta"]["id"] == id:
                return rec
        raise DataError(where, f"no record has id {id!r} (ids look like {records[0]['meta']['id']!r})"
                        if records else "the file holds no records", field="--id")
    if not -len(records) <= index < len(records):
        raise DataError(where, f"--index {index} is out of range: the file holds {len(records)} records")
    return records[index]


def load_tokenizer(base: str):
    """The tokenizer `fireflan train --base BASE` trains with (its chat template, or fireflan's)."""
    from transformers import AutoTokenizer

    folder = resolve_base(base)
    return prepare_tokenizer(AutoTokenizer.from_pretrained(folder), folder)


def record_view(corpus: str, index: int = 0, id: str | None = None, base: str = "embedded", split: str = "train",
                action_format: str = "react", tokenizer=None) -> RecordView:
    """A corpus record as training sees it (for a notebook: it displays itself)."""
    train_file, val_file = corpus_files(corpus)
    if split not in ("train", "val"):
        raise ValueError(f"--split must be train or val, got {split!r}")
    path = train_file if split == "train" else val_file
    if path is None:
        raise DataError(corpus, "this corpus has no validation records", field="--split")
    record = pick(read_corpus(path), index, id, where=str(path))
    return view(tokenizer or load_tokenizer(base), record, action_format)


def _static(name: str) -> Template:
    return Template(resources.files("fireflan.corpus").joinpath("static", name).read_text())


def to_html(v: RecordView) -> str:
    """The record as an HTML fragment (static/record.html): each token a span of its kind (static/show.css),
    its id, text and kind in its tooltip; the counts above."""
    spans = "".join(f'<span class="ff-{t.kind}" title="{t.id} {html.escape(repr(t.text))} {t.kind}">'
                    f"{html.escape(t.text)}</span>" for t in v.tokens)
    c = v.counts
    assistant = f', <span class="ff-assistant">{c["assistant"]} model tokens with no loss</span>' \
        if c["assistant"] else ""
    return _static("record.html").substitute(
        style=resources.files("fireflan.corpus").joinpath("static", "show.css").read_text(), id=html.escape(v.id),
        tokens=c["tokens"], trained=c["trained"], observation=c["observation"], prompt=c["prompt"],
        assistant=assistant, spans=spans)


def to_rich(v: RecordView):
    """The record as rich Text: trained tokens on green (alternating shades, so token edges show), observations
    blue, prompt and template dim."""
    from rich.text import Text

    styles = {"observation": "blue", "prompt": "dim", "assistant": "yellow"}
    text, shade = Text(), 0
    for t in v.tokens:
        if t.kind == "trained":
            shade ^= 1
            style = "black on green" if shade else "black on bright_green"
        else:
            style = styles[t.kind]
        text.append(t.text, style=style)
    return text


def to_marked(v: RecordView) -> str:
    """The record as plain text, each run of trained tokens in [[ ]] (for a pipe, a file, a note)."""
    parts, inside = [], False
    for t in v.tokens:
        if (t.kind == "trained") != inside:
            parts.append("]]" if inside else "[[")
            inside = not inside
        parts.append(t.text)
    return "".join(parts) + ("]]" if inside else "")


def summary_line(v: RecordView) -> str:
    c = v.counts
    extra = f", {c['assistant']} model tokens with no loss" if c["assistant"] else ""
    return (f"{v.id}: {c['tokens']} tokens, {c['trained']} trained ({c['trained'] / max(c['tokens'], 1):.0%}), "
            f"{c['observation']} observation, {c['prompt']} prompt and template{extra}")


def show(config: ShowConfig) -> RecordView:
    """Print one record token by token (trained tokens highlighted); with --html also write it as a page."""
    from pathlib import Path

    from rich.console import Console

    v = record_view(config.corpus, config.index, config.id, config.base, config.split, config.action_format)
    console = Console(highlight=False)
    if console.is_terminal:
        console.print(v)
        print(f"\n{summary_line(v)}")
        console.print(legend())
    else:  # piped or redirected: no colours, so the trained runs are bracketed
        print(to_marked(v))
        print(f"\n{summary_line(v)}\nkey: [[trained tokens]]; everything else carries no loss")
    if config.html:
        Path(config.html).write_text(_static("page.html").substitute(title=html.escape(v.id), record=to_html(v)))
        print(f"page: {config.html}")
    return v


def legend():
    """The colour key under a terminal rendering."""
    from rich.text import Text

    legend = Text("key: ")
    for label, style in (("trained", "black on green"), ("observation", "blue"), ("prompt / template", "dim"),
                         ("model turn, no loss", "yellow")):
        legend.append(label, style=style).append("  ")
    return legend
