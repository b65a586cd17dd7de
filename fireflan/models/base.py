"""One model interface for teacher and student.

    text = model.generate(messages, stop=["\\nObservation"], temperature=0.0, seed=0, max_tokens=256)

`messages` are OpenAI-shaped (`[{"role": "system"|"user"|"assistant", "content": str}, ...]`);
the reply is the assistant's text, cut before the first stop string. After each call
`model.last_usage` holds that call's `Usage` and `model.usage` the running total. A backend that
must stop (a spend cap reached) raises `BudgetExceeded` *before* the call it may not make.

Backends (each imports its SDK inside itself):
- `fireflan.models.openai_compat.OpenAIModel`: OpenAI, or any server speaking its protocol;
- `fireflan.models.scripted.ScriptedExpert`: the offline teacher that walks supporting facts;
- `fireflan.models.fake.ReplayModel`: replays given outputs, for tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass
class Usage:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float = 0.0
    retries: int = 0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.usd += other.usd
        self.retries += other.retries


class BudgetExceeded(RuntimeError):
    """The spend cap is reached: the run stops cleanly, finished work is kept."""


class Model(Protocol):
    name: str
    usage: Usage
    last_usage: Usage

    def generate(self, messages: list[dict], *, stop: list[str] | None = None, temperature: float = 0.0,
                 seed: int | None = None, max_tokens: int = 256) -> str: ...


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """The text before the earliest stop string. ('a\\nObservation: b', ['\\nObservation']) -> 'a'"""
    cut = len(text)
    for s in stop or []:
        i = text.find(s)
        if i != -1:
            cut = min(cut, i)
    return text[:cut]


__all__ = ["BudgetExceeded", "Model", "Usage", "cut_at_stop"]


def render(messages: list[dict]) -> str:
    """A conversation as the plain text of a few-shot example.

    [{'role': 'user', 'content': 'Q?'}, {'role': 'assistant', 'content': 'Thought: t\\nAction: finish[a]'}]
    -> 'Question: Q?\\nThought: t\\nAction: finish[a]'
    """
    lines = []
    for m in messages:
        if m["role"] == "user" and not m["content"].startswith("Observation:"):
            lines.append(f"Question: {m['content']}")
        else:
            lines.append(m["content"])
    return "\n".join(lines)
