"""HotpotQA (Yang et al. 2018): multi-hop questions over Wikipedia, scored by EM/F1.

From a local official JSON file (the distractor schema: `_id, question, answer, type, level,
supporting_facts, context`), a JSONL of such records, the ReAct/FireAct simplified file
(question/answer/type only), or the hub (`hotpotqa/hotpot_qa`, distractor or fullwiki).
"""

from __future__ import annotations

from pathlib import Path

from fireflan.io import read_records
from fireflan.tasks.base import Example, example_from_hotpot, limit, load_hub
from fireflan.tasks.scoring import score_span

NAME = "hotpotqa"
HUB = "hotpotqa/hotpot_qa"


def from_hub_record(rec: dict) -> dict:
    """The hub's columnar fields to the official schema.

    {'context': {'title': ['A'], 'sentences': [['s.']]}, 'supporting_facts': {'title': ['A'],
    'sent_id': [0]}, 'id': 'x', ...} -> {'context': [['A', ['s.']]], 'supporting_facts': [['A', 0]],
    '_id': 'x', ...}
    """
    ctx, sf = rec.get("context") or {}, rec.get("supporting_facts") or {}
    return {
        "_id": rec["id"], "question": rec["question"], "answer": rec["answer"],
        "type": rec.get("type", ""), "level": rec.get("level", ""),
        "supporting_facts": [[t, i] for t, i in zip(sf.get("title", []), sf.get("sent_id", []), strict=True)],
        "context": [[t, list(s)] for t, s in zip(ctx.get("title", []), ctx.get("sentences", []), strict=True)],
    }


def load(source=None, split: str = "validation", n: int | None = None,
         setting: str = "distractor") -> list[Example]:
    """Questions from local files (`source`: a path, or several joined by commas, read in turn) or, with no
    source, from the hub."""
    if source is not None:
        examples = []
        for part in str(source).split(","):
            path = Path(part.strip())
            examples += [example_from_hotpot(r, NAME, path, i, f"{path.stem}-{i}") for i, r in read_records(path)]
        return limit(examples, n)
    rows = load_hub(HUB, setting, split)
    rows = rows.select(range(min(n, len(rows)))) if n is not None else rows
    return [example_from_hotpot(from_hub_record(r), NAME, HUB, i, str(i)) for i, r in enumerate(rows, 1)]


def score(prediction: str, example: Example) -> dict:
    return score_span(prediction, example.answer)
