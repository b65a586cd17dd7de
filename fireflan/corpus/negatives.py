"""Agent-FLAN's negative samples: teach the model when *not* to act, and not to invent.

Each maker takes a successful trajectory (and a seeded rng) and returns a chat record, or None
when the trajectory does not suit that kind:

- notool_with_tools: a question that needs no tool, tools offered, answered directly with finish;
- no_tools: no tools offered; a question that needs none is answered in plain words, one that
  would need a search is declined honestly, and no Action is invented in either case;
- bad_observation: a search returns `None` or an unrelated passage; the reply says so and
  searches again, never taking facts from the wrong passage.
"""

from __future__ import annotations

import random

from fireflan.corpus.format import SYSTEM_NO_TOOLS, apply_mask, record, system_tools

NEGATIVES = ("notool_with_tools", "no_tools", "bad_observation")


def _meta(traj, kind: str, capability: str, tools: bool, n: int = 0) -> dict:
    return {"id": f"{traj.id}/{traj.method}/{traj.seed}/{kind}/{n}", "source": "negative", "task": traj.task,
            "method": traj.method, "capability": capability, "negative": kind, "tools": tools,
            "question_id": traj.id}


def _needs_tool(traj) -> bool:
    return any(s.action in ("search", "lookup", "execute") for s in traj.steps)


def notool_with_tools(traj, rng: random.Random) -> dict | None:
    """[system: tools, user: Q, assistant: "Thought: no tool needed ... Action: finish[A]"]"""
    if _needs_tool(traj) or len(traj.steps) != 1 or traj.steps[0].action != "finish":
        return None
    step = traj.steps[0]
    thought = step.thought if "no search" in step.thought.lower() else f"This needs no tool. {step.thought}"
    messages = [{"role": "system", "content": system_tools(traj.task)}, {"role": "user", "content": traj.question},
                {"role": "assistant", "content": f"Thought: {thought}\nAction: finish[{step.argument}]"}]
    return record(apply_mask(messages, [True]), _meta(traj, "notool_with_tools", "reasoning", True))


_DECLINE = [
    "I cannot look anything up in this conversation, and I do not know {what} from memory, so I cannot answer "
    "this reliably.",
    "Answering this needs facts about {what} that I would have to look up, and no search tool is available "
    "here. I don't know the answer.",
    "Without a way to search, I can't find out. I don't have reliable knowledge of {what}.",
]


def no_tools(traj, rng: random.Random) -> dict | None:
    """[system: no tools, user: Q, assistant: a plain answer or an honest "I cannot know"]"""
    if _needs_tool(traj):
        searched = [s.argument for s in traj.steps if s.action == "search"]
        found = [s.argument for s in traj.steps if s.action == "search"
                 and not s.observation.startswith(("No page", "Could not", "None"))]
        first = (found or searched or ["the rows of that table"])[0]  # a DB task runs SQL, not searches
        reply = rng.choice(_DECLINE).format(what=first)
    elif traj.steps and traj.steps[-1].action == "finish":
        thought = traj.steps[-1].thought.replace("This needs no search. ", "")
        reply = f"{thought}" if traj.steps[-1].argument in thought else f"{thought} The answer is {traj.answer}."
    else:
        return None
    messages = [{"role": "system", "content": SYSTEM_NO_TOOLS}, {"role": "user", "content": traj.question},
                {"role": "assistant", "content": reply}]
    return record(apply_mask(messages, [True]), _meta(traj, "no_tools", "format", False))


_SAW_NONE = [
    "The search for {q} returned nothing (None). I will search again.",
    "That returned None, so I learned nothing about {q}. Let me repeat the search.",
]
_SAW_OTHER = [
    "This passage is about {other}, not {q}, so it does not answer anything here. I will search {q} again.",
    "That result describes {other} and says nothing about {q}. Let me search again.",
]


def bad_observation(traj, rng: random.Random, passages: list[tuple[str, str]]) -> dict | None:
    """A search step's observation replaced by `None` or an unrelated passage (title, text), then the
    recovery turn, then the rest of the real trajectory. Loss on the recovery and after it."""
    searches = [i for i, s in enumerate(traj.steps) if s.action == "search" and not s.feedback]
    if not searches:
        return None
    i = rng.choice(searches)
    step = traj.steps[i]
    messages = traj.messages()
    # the assistant turn of step i is message 1 + 2*i; its observation follows
    obs_at = 2 + 2 * i
    if rng.random() < 0.5 or not passages:
        fake, thought = "None", rng.choice(_SAW_NONE).format(q=step.argument)
    else:
        others = [(t, x) for t, x in passages if t.lower() != step.argument.lower() and x != step.observation]
        other, fake = rng.choice(others)
        thought = rng.choice(_SAW_OTHER).format(q=step.argument, other=other)
    recovery = {"role": "assistant", "content": f"Thought: {thought}\nAction: search[{step.argument}]"}
    real = {"role": "user", "content": f"Observation: {step.observation}"}
    noisy = messages[:obs_at] + [{"role": "user", "content": f"Observation: {fake}"}, recovery, real]
    noisy += messages[obs_at + 1:]
    n_assistant = sum(m["role"] == "assistant" for m in noisy)
    flags = [k > i for k in range(n_assistant)]  # the recovery is assistant turn i + 1
    return record(apply_mask(noisy, flags), _meta(traj, "bad_observation", "understanding", True, i))
