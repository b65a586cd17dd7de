import pytest

from fireflan.tasks.scoring import (
    exact_match,
    f1_precision_recall,
    mean_scores,
    normalize_answer,
    parse_letter,
    parse_yes_no,
    score_letter,
    score_yes_no,
)

# (prediction, gold, EM, F1) as HotpotQA's official evaluation script computes them, worked by hand
# from its rules: lower-case, drop punctuation, drop a/an/the, collapse white space; token F1, and 0
# when either side is yes/no/noanswer and they differ.
OFFICIAL = [
    ("Paris", "paris", 1, 1.0),
    ("the Eiffel Tower", "Eiffel Tower", 1, 1.0),
    ("Eiffel Tower in Paris", "Eiffel Tower", 0, 2 / 3),
    ("New York City", "New York", 0, 0.8),
    ("yes", "no", 0, 0.0),
    ("no", "noanswer", 0, 0.0),
    ("yes", "Yes.", 1, 1.0),
    ("yes sir", "yes", 0, 0.0),
    ("Barack  Obama", "barack obama!", 1, 1.0),
    ("an apple a day", "apple day", 1, 1.0),
    ("1,000", "1000", 1, 1.0),
    ("Anne-Marie", "annemarie", 1, 1.0),
    ("cat cat dog", "cat dog dog", 0, 2 / 3),
    ("theater", "the ater", 0, 0.0),
    ("the the", "a", 1, 0.0),  # both normalise to "": equal strings, but no tokens to overlap
    ("Bob Dylan", "Dylan, Bob", 0, 1.0),
]


@pytest.mark.parametrize("pred,gold,em,f1", OFFICIAL)
def test_matches_official_hotpotqa_rules(pred, gold, em, f1):
    assert exact_match(pred, gold) == em
    assert f1_precision_recall(pred, gold)[0] == pytest.approx(f1)


def test_normalize_answer_examples():
    assert normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert normalize_answer("  A   Tale of Two Cities ") == "tale of two cities"


def test_precision_and_recall():
    assert f1_precision_recall("Paris France", "Paris") == pytest.approx((2 / 3, 0.5, 1.0))


@pytest.mark.parametrize("text,want", [
    ("Yes", True), ("yes, because wolves eat meat", True), ("No.", False), ("  false", False),
    ("TRUE", True), ("maybe", None), ("Nobody knows", None), ("", None),
])
def test_parse_yes_no(text, want):
    assert parse_yes_no(text) == want


def test_strategyqa_scoring():
    assert score_yes_no("Yes, it did.", True) == {"em": 1.0, "f1": 1.0}
    assert score_yes_no("No", True)["em"] == 0.0
    assert score_yes_no("It is unclear", False)["em"] == 0.0


@pytest.mark.parametrize("text,want", [
    ("B", "B"), ("(C) Paris", "C"), ("D. 42", "D"), ("The answer is A.", "A"), ("answer: (B)", "B"),
    ("A dog", None), ("none of them", None),
])
def test_parse_letter(text, want):
    assert parse_letter(text) == want


def test_mmlu_scoring():
    assert score_letter("(B) ", "b")["em"] == 1.0
    assert score_letter("C", "B")["em"] == 0.0


def test_mean_scores():
    assert mean_scores([{"em": 1.0, "f1": 1.0}, {"em": 0.0, "f1": 0.5}]) == {"n": 2, "em": 0.5, "f1": 0.75}
    assert mean_scores([]) == {"n": 0}
