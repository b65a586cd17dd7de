"""The cheap action constraint, with a character-level fake tokenizer."""

import string

import numpy as np

from fireflan.agent.constrain import ActionConstraint

VOCAB = [" search", "search", " lookup", "lookup", " finish", "finish", " fly", "Action", "Thought",
         *dict.fromkeys(string.ascii_letters + " :[]\n")]
IDS = {t: i for i, t in enumerate(VOCAB)}


def tokenize(text):
    """Greedy longest match over VOCAB."""
    out, i = [], 0
    while i < len(text):
        piece = max((t for t in VOCAB if text.startswith(t, i)), key=len)
        out.append(IDS[piece])
        i += len(piece)
    return out


def detokenize(ids):
    return "".join(VOCAB[i] for i in ids)


def constraint():
    return ActionConstraint(tokenize, detokenize, len(VOCAB))


def test_free_text_is_untouched_and_action_names_are_forced():
    c = constraint()
    prompt = tokenize("x\n")
    scores = np.zeros(len(VOCAB), dtype=np.float32)
    c(prompt, scores)  # the first call marks where generation starts
    thought = prompt + tokenize("Thought x")
    out = c(thought, np.ones(len(VOCAB), dtype=np.float32))
    assert np.all(out == 1.0)  # the thought is free
    at_action = thought + tokenize("\nAction:")
    scores = np.arange(len(VOCAB), dtype=np.float32)
    out = c(at_action, scores)
    allowed = {VOCAB[i] for i in np.flatnonzero(np.isfinite(out))}
    assert {" search", " lookup", " finish", "search", "lookup", "finish"} <= allowed
    assert " fly" not in allowed and "x" not in allowed and "Thought" not in allowed and "A" not in allowed
    assert out[IDS[" finish"]] == IDS[" finish"]  # the allowed keep their scores
    # part-way through a name only its continuation is allowed; after "[" it is free again
    assert {VOCAB[i] for i in c.allowed(" sea")} == {"r"}
    assert c.allowed(" finish[") is None and c.allowed(" search[Velmora") is None
    assert c.masked_steps == 1
    assert np.all(c(at_action + tokenize(" search[x"), np.ones(len(VOCAB), dtype=np.float32)) == 1.0)


def test_prompt_text_does_not_trigger_the_constraint():
    c = constraint()
    prompt = tokenize("Action: fly\nThought x\n")  # "Action:" in the prompt, not in the generation
    c(prompt, np.zeros(len(VOCAB), dtype=np.float32))
    assert np.all(c(prompt + tokenize("x"), np.ones(len(VOCAB), dtype=np.float32)) == 1.0)


def test_the_line_after_the_thought_must_be_an_action():
    c = constraint()
    assert c.allowed_after("Thought x") is None  # the thought is free
    after_thought = {VOCAB[i] for i in c.allowed_after("Thought x\n")}
    assert after_thought == {"Action"}
    assert {VOCAB[i] for i in c.allowed_after("Thought x\nAction")} == {":"}
    assert c.allowed_after("Thought x\nAction: search[Velm") is None  # the argument is free
    assert c.allowed_after("\n") is None  # a blank start is not a thought yet
