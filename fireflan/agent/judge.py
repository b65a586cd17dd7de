"""The model in the judge's role: how strongly it says "yes" to a candidate step or answer.

    p, usage = yes_probabilities(model, [judge_messages(messages, candidate, observation)])[0]

A model that exposes its next-token logits (`LlamaModel.yes_probabilities`: one evaluation of the
prompt, no generation) is read directly: p = P(yes) / (P(yes) + P(no)) for the first token of its
reply. Any other model (an OpenAI-compatible server, the scripted expert, a test double) writes its
verdict greedily; "yes..." counts 1, "no..." 0, and anything else 0.5: a judge that cannot decide
leaves the choice to the tie rule of the method that asked.

A small model's P(yes) is rarely calibrated at 0.5, and it may lean on the kind of step (it can say yes
to searches and no to answers, whatever they hold). `Thresholds` are the P(yes) above which its yes is
taken, one for answers (finish) and one for other steps, chosen on held-out judge records by `fireflan
judge` (its metrics.json); a candidate's score for ranking is its margin over its kind's threshold.

    bar = Thresholds.read("runs/x/judge/metrics.json")     # or Thresholds() : 0.5 and 0.5
    bar.accepts(p, "finish"); bar.margin(p, "search")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fireflan.agent.roles import VERDICT_STOP, parse_verdict
from fireflan.io import DataError
from fireflan.models.base import Usage


@dataclass(frozen=True)
class Thresholds:
    """The P(yes) at or above which the judge's yes is taken: `answer` for a finish, `step` for any other."""

    answer: float = 0.5
    step: float = 0.5

    def of(self, action: str | None) -> float:
        return self.answer if action == "finish" else self.step

    def accepts(self, p: float, action: str | None = "finish") -> bool:
        return p >= self.of(action)

    def margin(self, p: float, action: str | None) -> float:
        return p - self.of(action)

    @classmethod
    def read(cls, path) -> Thresholds:
        """The thresholds of a `fireflan judge` metrics.json."""
        path = Path(path)
        try:
            found = json.loads(path.read_text())["thresholds"]
            return cls(answer=float(found["answer"]), step=float(found["step"]))
        except FileNotFoundError:
            raise DataError(path, "no such file (a `fireflan judge` metrics.json)") from None
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as e:
            raise DataError(path, f"no judge thresholds in it ({e}); run `fireflan judge` again") from None


def yes_probabilities(model, conversations: list[list[dict]]) -> list[tuple[float, Usage]]:
    """(P(yes), what it cost) for each judge conversation, in order."""
    if not conversations:
        return []
    if hasattr(model, "yes_probabilities"):
        return model.yes_probabilities(conversations)
    out = []
    for conv in conversations:
        text = model.generate(conv, stop=VERDICT_STOP, temperature=0.0, seed=0, max_tokens=24)
        verdict = parse_verdict(text)
        out.append((0.5 if verdict is None else float(verdict), getattr(model, "last_usage", None) or Usage()))
    return out
