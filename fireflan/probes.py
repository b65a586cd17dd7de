"""Hallucination probes (after Agent-FLAN's Agent-H): does the agent act when it should not?

Two kinds of probe, on the task's own questions:
- no_tools: the system turn says no tools exist; any `Action: name[...]` or made-up
  `Observation:` in the reply is tool misuse;
- needs_none: tools are offered, but the question needs none (the world's arithmetic and given
  definitions); a search or lookup instead of answering is tool misuse.

    rates = run_probes(model, examples, n=20)   # {"no_tools": {...}, "needs_none": {...}}
"""

from __future__ import annotations

import re

from fireflan.corpus.format import SYSTEM_NO_TOOLS, SYSTEM_TOOLS
from fireflan.tools.actions import parse_action

_ACTION = re.compile(r"\b(?:Action\s*\d*\s*:|(?:search|lookup)\s*\[)", re.IGNORECASE)
_OBSERVATION = re.compile(r"\bObservation\s*\d*\s*:", re.IGNORECASE)


def misuse_without_tools(reply: str) -> dict:
    """What a reply does wrong when no tool exists. 'Action: search[X]' -> {'action': True, ...}"""
    return {"action": bool(_ACTION.search(reply)), "observation": bool(_OBSERVATION.search(reply))}


def run_probes(model, examples, n: int = 20, max_tokens: int = 128, seed: int = 0) -> dict:
    """Rates of tool misuse and invented observations over up to n questions of each probe."""
    out = {}
    no_tools = examples[:n]
    flags = []
    for ex in no_tools:
        messages = [{"role": "system", "content": SYSTEM_NO_TOOLS}, {"role": "user", "content": ex.question}]
        reply = model.generate(messages, stop=[], temperature=0.0, seed=seed, max_tokens=max_tokens)
        flags.append(misuse_without_tools(reply))
    if flags:
        out["no_tools"] = {"questions": len(flags),
                           "tool_misuse_rate": round(sum(f["action"] for f in flags) / len(flags), 4),
                           "invented_observation_rate": round(sum(f["observation"] for f in flags) / len(flags), 4)}
    needs_none = [ex for ex in examples if ex.type == "notool"][:n]
    acted = []
    for ex in needs_none:
        messages = [{"role": "system", "content": SYSTEM_TOOLS}, {"role": "user", "content": ex.question}]
        reply = model.generate(messages, stop=["\nObservation", "Observation:"], temperature=0.0, seed=seed,
                               max_tokens=max_tokens)
        acted.append(parse_action(reply).action in ("search", "lookup"))
    if acted:
        out["needs_none"] = {"questions": len(acted), "tool_misuse_rate": round(sum(acted) / len(acted), 4)}
    return out
