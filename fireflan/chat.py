"""An offline agent chat in the terminal: ask a question, watch the agent think, act and read.

    python -m fireflan chat --model runs/model/gguf/model-q8_0.gguf            # over the embedded world
    python -m fireflan chat --model runs/model/gguf/model-q8_0.gguf --corpus my_pages.jsonl
    python -m fireflan chat --model embedded                                    # the base model, few-shot

Type a question; `quit` (or Ctrl-D) ends. Nothing leaves the machine.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from fireflan.agent.loop import AgentConfig
from fireflan.agent.methods import run_method
from fireflan.agent.prompts import few_shot_prefix
from fireflan.models import load_model
from fireflan.options import opt
from fireflan.tasks import make_tool
from fireflan.tasks.base import Example
from fireflan.tools.wiki import Wiki, load_corpus


@dataclass
class ChatConfig:
    """Options of `fireflan chat`."""

    model: str = opt("runs/model/gguf/model-q8_0.gguf", "a GGUF file, or 'embedded' (the base Gemma, few-shot)")
    data: str | None = opt(None, "a world folder whose articles the agent searches (None: the default world)")
    corpus: str | None = opt(None, "a corpus JSONL or HotpotQA JSON file to search instead")
    method: str = opt("react", "react | backtrack | branches | decompose")
    max_calls: int = opt(8, "model calls per question")
    threads: int | None = opt(None, "llama.cpp threads")


def show(step) -> None:
    """Print one step as it happens."""
    if step.thought:
        print(f"  Thought: {step.thought}")
    if step.action is not None:
        print(f"  Action: {step.action}[{step.argument}]")
    if step.action != "finish":
        print(f"  Observation: {step.observation[:400]}")
    sys.stdout.flush()


def chat(config: ChatConfig, model=None, lines=None) -> int:
    """The read-answer loop; returns how many questions were answered. `lines` replaces stdin (tests)."""
    if config.max_calls < 1:
        raise ValueError(f"--max-calls must be 1 or more (model calls per question), got {config.max_calls}")
    if model is None:
        model, needs_shots = load_model(config.model, threads=config.threads)
    else:
        needs_shots = False
    tool = Wiki(load_corpus(config.corpus)) if config.corpus else make_tool("world", [], config.data)
    prefix = few_shot_prefix("react") if needs_shots else []
    agent = AgentConfig(max_calls=config.max_calls, max_tokens=160)
    print(f"fireflan chat: {getattr(model, 'name', config.model)} over {len(tool.pages)} pages. "
          "Ask a question; 'quit' ends.")
    answered = 0
    source = iter(lines) if lines is not None else _stdin()
    for n, question in enumerate(source, start=1):
        question = question.strip()
        if question.lower() in ("quit", "exit"):
            break
        if not question:
            continue
        example = Example(id=f"chat-{n}", question=question, answer="", task="chat")
        kwargs = {"on_step": show} if config.method in ("react", "backtrack") else {}
        traj = run_method(config.method, model, tool, example, prefix=prefix, config=agent, **kwargs)
        if not kwargs:
            for step in traj.steps:
                show(step)
        print(f"Answer: {traj.answer if traj.answer is not None else '(no answer within the step limit)'}")
        answered += 1
    return answered


def _stdin():
    while True:
        try:
            yield input("question> ")
        except EOFError:
            print()
            return
