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
