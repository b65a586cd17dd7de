"""StrategyQA (Geva et al. 2021): yes/no questions that need implicit reasoning steps.

A JSON list (or JSONL) of records with `question` and a boolean `answer` (FireAct's filtered train
file has `qid, term, description, question, answer`), or a hub data set with those columns.
An answer is right when it starts with yes/no and agrees with the label.
"""

from __future__ import annotations

from pathlib import Path

from fireflan.io import read_records, require
from fireflan.tasks.base import Example, limit, load_hub
from fireflan.tasks.scoring import score_yes_no

NAME = "strategyqa"


def load(source, split: str = "train", n: int | None = None) -> list[Example]:
    """`source` is a local file, or a hub data set id that has question/answer columns."""
    path = Path(source)
    if path.exists() or path.suffix in (".json", ".jsonl"):
        records, where = read_records(path), path
    else:
        records, where = enumerate(load_hub(str(source), None, split), start=1), source
    out = []
    for i, rec in records:
        question = require(rec, "question", str, where, i)
        answer = require(rec, "answer", bool, where, i)
        out.append(Example(id=str(rec.get("qid", rec.get("id", f"strategyqa-{i}"))), question=question,
                           answer="yes" if answer else "no", task=NAME, type="yesno"))
    return limit(out, n)


def score(prediction: str, example: Example) -> dict:
    return score_yes_no(prediction, example.answer == "yes")
