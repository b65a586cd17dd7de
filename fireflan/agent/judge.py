"""The model in the judge's role: how strongly it says "yes" to a candidate step or answer.

    p, usage = yes_probabilities(model, [judge_messages(messages, candidate, observation)])[0]

A model that exposes its next-token logits (`LlamaModel.yes_probabilities`: one evaluation of the
prompt, no generation) is read directly: p = P(yes) / (P(yes) + P(no)) for the first token of its
reply. Any other model (an OpenAI-compatible server, the scripted expert, a test double) writes its
verdict greedily; "yes..." counts 1, "no..." 0, and anything else 0.5: a judge that cannot decide
leaves the choice to the tie rule of the method that asked.
"""

from __future__ import annotations

from fireflan.agent.roles import VERDICT_STOP, parse_verdict
from fireflan.models.base import Usage


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
