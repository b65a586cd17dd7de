"""Answer scoring: HotpotQA's official normalisation, exact match and F1; yes/no; letters.

Pure functions. The HotpotQA rules (also used for Bamboogle and the embedded world):
lower-case, drop punctuation, drop the articles a/an/the, collapse white space; EM compares the
normalised strings; F1 is token overlap, and 0 when either side is yes/no/noanswer and they differ.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPECIAL = ("yes", "no", "noanswer")


def normalize_answer(s: str) -> str:
    """'The  Eiffel-Tower!' -> 'eiffeltower'"""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(prediction: str, gold: str) -> float:
    """('the Beatles', 'Beatles') -> 1.0"""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1_precision_recall(prediction: str, gold: str) -> tuple[float, float, float]:
    """Token-overlap F1, precision and recall. ('Paris France', 'Paris') -> (0.667, 0.5, 1.0)"""
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    if (pred in _SPECIAL or ref in _SPECIAL) and pred != ref:
        return 0.0, 0.0, 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    same = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if same == 0:
        return 0.0, 0.0, 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def f1(prediction: str, gold: str) -> float:
    return f1_precision_recall(prediction, gold)[0]


def score_span(prediction: str, gold: str) -> dict:
    """HotpotQA-style score of one answer: {'em': 0/1, 'f1': float}."""
    return {"em": exact_match(prediction, gold), "f1": f1(prediction, gold)}


_YES_NO = re.compile(r"^\W*(yes|no|true|false)\b", re.IGNORECASE)


def parse_yes_no(text: str) -> bool | None:
    """The yes/no an answer starts with. 'Yes, because ...' -> True; 'maybe' -> None"""
    m = _YES_NO.match(text)
    return None if m is None else m.group(1).lower() in ("yes", "true")


def score_yes_no(prediction: str, gold: bool) -> dict:
    """StrategyQA: the answer must start with yes/no and agree with the boolean label."""
    got = parse_yes_no(prediction)
    em = float(got is not None and got == bool(gold))
    return {"em": em, "f1": em}


_LETTER = re.compile(r"^\W*\(?([A-D])(?:[).:,]|$)")
_LETTER_ANYWHERE = re.compile(r"\b(?:answer|option)\s*(?:is)?\s*:?\s*\(?([A-D])\b")


def parse_letter(text: str) -> str | None:
    """The option letter an answer names. '(B) Paris' -> 'B'; 'The answer is C.' -> 'C'"""
    m = _LETTER.match(text) or _LETTER_ANYWHERE.search(text)
    return m.group(1).upper() if m else None


def score_letter(prediction: str, gold: str) -> dict:
    """MMLU: the letter named by the prediction against the gold letter."""
    em = float(parse_letter(prediction) == gold.strip().upper())
    return {"em": em, "f1": em}


def mean_scores(scores: list[dict]) -> dict:
    """Average each metric over a list of per-answer score dicts; {'n': count} included."""
    if not scores:
        return {"n": 0}
    keys = scores[0].keys()
    return {"n": len(scores), **{k: sum(s[k] for s in scores) / len(scores) for k in keys}}


# --------------------------------------------------------------------------- files

def read_predictions(path) -> dict[str, str]:
    """{question id: answer} from a predictions file.

    Accepted: JSONL of {"_id" | "id", "answer" | "prediction"}; a JSON object {id: answer}; the
    official HotpotQA prediction file {"answer": {id: answer}, "sp": {...}}.
    """
    from pathlib import Path

    from fireflan.io import DataError, iter_jsonl, read_json

    path = Path(path)
    if path.suffix == ".jsonl":
        out = {}
        for n, rec in iter_jsonl(path):
            key = "_id" if "_id" in rec else "id"
            if key not in rec:
                raise DataError(path, "missing", line=n, field="_id")
            field = "answer" if "answer" in rec else "prediction"
            if field not in rec:
                raise DataError(path, "missing", line=n, field="answer")
            out[str(rec[key])] = str(rec[field])
        return out
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("answer"), dict):
        data = data["answer"]
    if not isinstance(data, dict):
        raise DataError(path, "expected {id: answer}, {'answer': {id: answer}} or a .jsonl file")
    return {str(k): str(v) for k, v in data.items()}


def score_files(pred_path, gold_source, task: str = "hotpotqa") -> dict:
    """Mean scores of a predictions file against a task's questions (missing predictions score 0)."""
    from fireflan.tasks import get_task

    t = get_task(task)
    examples = t.load(gold_source, split="test") if task == "world" else t.load(gold_source)
    predictions = read_predictions(pred_path)
    scores = [t.score(predictions.get(ex.id, ""), ex) for ex in examples]
    missing = sum(ex.id not in predictions for ex in examples)
    return {**mean_scores(scores), "missing": missing}


def score_one(prediction: str, gold: str, task: str = "hotpotqa") -> dict:
    """Score one answer against one gold answer with the task's rules."""
    from fireflan.tasks import get_task
    from fireflan.tasks.base import Example

    if task == "strategyqa":
        label = parse_yes_no(gold)
        if label is None:
            raise ValueError(f"a StrategyQA gold answer is yes/no (or true/false), got {gold!r}")
        gold = "yes" if label else "no"
    return get_task(task).score(prediction, Example(id="-", question="", answer=gold, task=task))
