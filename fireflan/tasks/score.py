"""The `score` verb's file handling: a predictions file (or one answer) scored with a task's rules.

    score_files("runs/eval/predictions.jsonl", "../shared/data/hotpotqa_dev_sample89.json", "hotpotqa")
    score_one("Paris", "paris", "hotpotqa")   # {'em': 1.0, 'f1': 1.0}
"""

from __future__ import annotations

from pathlib import Path

from fireflan.io import DataError, iter_jsonl, read_json
from fireflan.tasks.base import Example
from fireflan.tasks.registry import get_task
from fireflan.tasks.scoring import mean_scores, parse_yes_no


def read_predictions(path) -> dict[str, str]:
    """{question id: answer} from a predictions file.

    Accepted: JSONL of {"_id" | "id", "answer" | "prediction"}; a JSON object {id: answer}; the
    official HotpotQA prediction file {"answer": {id: answer}, "sp": {...}}.
    """
    path = Path(path)
    if path.suffix == ".jsonl":
        out, seen = {}, {}
        for n, rec in iter_jsonl(path):
            key = "_id" if "_id" in rec else "id"
            if key not in rec:
                raise DataError(path, "missing", line=n, field="_id")
            field = "answer" if "answer" in rec else "prediction"
            if field not in rec:
                raise DataError(path, "missing", line=n, field="answer")
            qid = str(rec[key])
            if qid in seen:
                raise DataError(path, f"question {qid!r} is answered twice (first on line {seen[qid]}): which one "
                                "counts is not clear", line=n, field=key)
            out[qid], seen[qid] = str(rec[field]), n
        return out
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("answer"), dict):
        data = data["answer"]
    if not isinstance(data, dict):
        raise DataError(path, "expected {id: answer}, {'answer': {id: answer}} or a .jsonl file")
    return {str(k): str(v) for k, v in data.items()}


def score_files(pred_path, gold_source, task: str = "hotpotqa") -> dict:
    """Mean scores of a predictions file against a task's questions (missing predictions score 0; `unknown`
    counts predictions for questions not in the file). No id in common, or an id answered twice, is an error."""
    t = get_task(task)
    examples = t.load(gold_source, split="test") if task == "world" else t.load(gold_source)
    predictions = read_predictions(pred_path)
    ids = {ex.id for ex in examples}
    if not predictions.keys() & ids:
        shown = ", ".join(repr(k) for k in list(predictions)[:2]) or "none"
        raise DataError(pred_path, f"no prediction answers a question of {gold_source} (predictions' ids: {shown}; "
                        f"questions': {', '.join(repr(ex.id) for ex in examples[:2])}): is it the right file?")
    scores = [t.score(predictions.get(ex.id, ""), ex) for ex in examples]
    missing = sum(ex.id not in predictions for ex in examples)
    return {**mean_scores(scores), "missing": missing, "unknown": len(predictions.keys() - ids)}


def score_one(prediction: str, gold: str, task: str = "hotpotqa") -> dict:
    """Score one answer against one gold answer with the task's rules."""
    if task == "strategyqa":
        label = parse_yes_no(gold)
        if label is None:
            raise ValueError(f"a StrategyQA gold answer is yes/no (or true/false), got {gold!r}")
        gold = "yes" if label else "no"
    return get_task(task).score(prediction, Example(id="-", question="", answer=gold, task=task))
