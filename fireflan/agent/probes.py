"""Hallucination probes (after Agent-FLAN's Agent-H): does the agent act when it should not?

Two kinds of probe, on the task's own questions:
- no_tools: the system turn says no tools exist; any `Action: name[...]` or made-up
  `Observation:` in the reply is tool misuse;
- needs_none: tools are offered, but the question needs none (the world's arithmetic and given
  definitions); a search or lookup instead of answering is tool misuse.

    rates = run_probes(model, examples, n=20)   # {"no_tools": {...}, "needs_none": {...}}
    rates = run_probes(model, examples, n=20, path="eval/probes.jsonl")   # replies kept, reused next time
"""

from __future__ import annotations

import re

from fireflan.corpus.format import SYSTEM_NO_TOOLS, SYSTEM_TOOLS
from fireflan.io import append_jsonl, resumable_records
from fireflan.tools.actions import parse_action

_ACTION = re.compile(r"\b(?:Action\s*\d*\s*:|(?:search|lookup)\s*\[)", re.IGNORECASE)
_OBSERVATION = re.compile(r"\bObservation\s*\d*\s*:", re.IGNORECASE)


def misuse_without_tools(reply: str) -> dict:
    """What a reply does wrong when no tool exists. 'Action: search[X]' -> {'action': True, ...}"""
    return {"action": bool(_ACTION.search(reply)), "observation": bool(_OBSERVATION.search(reply))}


def run_probes(model, examples, n: int = 20, max_tokens: int = 128, seed: int = 0, path=None) -> dict:
    """Rates of tool misuse and invented observations over up to n questions of each probe.
    With `path` (a JSONL file) each reply is written as it comes and a later call reuses them."""
    done = {(rec["probe"], rec["id"]): rec for rec in resumable_records(path)} if path else {}

    def reply_to(probe: str, ex, system: str, stop: list[str]) -> str:
        if (probe, ex.id) not in done:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": ex.question}]
            reply = model.generate(messages, stop=stop, temperature=0.0, seed=seed, max_tokens=max_tokens)
            done[probe, ex.id] = {"probe": probe, "id": ex.id, "question": ex.question, "reply": reply}
            if path:
                append_jsonl(path, done[probe, ex.id])
        return done[probe, ex.id]["reply"]

    out = {}
    actions = getattr(model, "actions", None)  # a hermes model declares its tools in the prompt: none here
    if actions is not None:
        model.use_tools(("finish",))
    try:
        flags = [misuse_without_tools(reply_to("no_tools", ex, SYSTEM_NO_TOOLS, [])) for ex in examples[:n]]
    finally:
        if actions is not None:
            model.use_tools(actions)
    if flags:
        out["no_tools"] = {"questions": len(flags),
                           "tool_misuse_rate": round(sum(f["action"] for f in flags) / len(flags), 4),
                           "invented_observation_rate": round(sum(f["observation"] for f in flags) / len(flags), 4)}
    needs_none = [ex for ex in examples if ex.type == "notool"][:n]
    acted = [parse_action(reply_to("needs_none", ex, SYSTEM_TOOLS, ["\nObservation", "Observation:"])).action
             in ("search", "lookup") for ex in needs_none]
    if acted:
        out["needs_none"] = {"questions": len(acted), "tool_misuse_rate": round(sum(acted) / len(acted), 4)}
    return out
