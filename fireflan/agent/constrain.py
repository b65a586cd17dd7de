"""Cheap constrained actions: every ReAct step ends in a parseable `Action: name[...]`.

A GBNF grammar in llama.cpp walks the whole 262k-token vocabulary at every generated token (~4x
slower on the embedded Gemma). The only place a ReAct step must be steered is where the action
begins, so this logits processor lets the thought and the argument through untouched and masks
all but a handful of precomputed candidate tokens in two places: on the line after the thought,
which must spell "Action: search[" (or lookup, finish), and right after an "Action:" the model
wrote itself, where only an action name may follow.

    constraint = ActionConstraint(tokenize, detokenize, n_vocab)
    llm.create_completion(prompt, logits_processor=LogitsProcessorList([constraint]))
"""

from __future__ import annotations

import re

from fireflan.tools.actions import ACTION_NAMES

MARK = "Action:"


class ActionConstraint:
    """A llama-cpp-python logits processor; one instance per completion (it tracks the text)."""

    def __init__(self, tokenize, detokenize, n_vocab: int, names=ACTION_NAMES):
        self.detokenize = detokenize
        self.targets = [f" {n}[" for n in names] + [f"{n}[" for n in names]  # after "Action:"
        self.lines = [MARK + t for t in self.targets]  # a whole action line
        self.done = re.compile(r"Action\s*:\s*(" + "|".join(map(re.escape, names)) + r")\s*\[")
        pieces = set()
        for target in self.targets + self.lines:  # every token that starts some remainder of a target
            for k in range(len(target)):
                ids = tokenize(target[k:])
                if ids:
                    pieces.add(ids[0])
        self.candidates = {t: detokenize([t]) for t in sorted(pieces)}
        self.n_vocab = n_vocab
        self.start = None  # where the generated tokens begin in input_ids
        self.masked_steps = 0

    def allowed(self, suffix: str, targets=None) -> list[int] | None:
        """Token ids that keep `suffix` on the way to one of `targets` (default: the action names
        after "Action:"), or None when free: once a whole target is there, the argument is the model's."""
        targets = self.targets if targets is None else targets
        if any(suffix.startswith(t) for t in targets):
            return None
        ok = [t for t, text in self.candidates.items()
              if any((suffix + text).startswith(tg) or tg.startswith(suffix + text) for tg in targets)]
        return ok or None

    def allowed_after(self, text: str) -> list[int] | None:
        """What may follow the generated `text`: free in the thought and the argument; an action
        name after "Action:"; an action line on the line after the thought."""
        if self.done.search(text):
            return None
        at = text.rfind(MARK)
        if at != -1:
            return self.allowed(text[at + len(MARK):])
        if "\n" in text.strip("\n") or (text.endswith("\n") and text.strip()):
            return self.allowed(text[text.rfind("\n") + 1:], self.lines)
        return None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = len(input_ids)
        allowed = self.allowed_after(self.detokenize(list(input_ids[self.start:])))
        if allowed is None:
            return scores
        self.masked_steps += 1
        keep = scores[allowed].copy()
        scores[:] = -float("inf")
        scores[allowed] = keep
        return scores
