"""A sampled model that sometimes succeeds, for self-improvement's tests."""

from fireflan.models.base import Usage


class CoinModel:
    """Answers a question right on even seeds and wrong on odd ones (a sampled model that sometimes succeeds);
    counts its calls."""

    name = "coin"

    def __init__(self, examples):
        self.gold = {ex.question: ex.answer for ex in examples}
        self.calls = []
        self.last_usage = Usage(calls=1, prompt_tokens=10, completion_tokens=5)

    def generate(self, messages, *, stop=None, temperature=0.0, seed=None, max_tokens=256):
        self.calls.append((messages[0]["content"], seed, temperature))
        answer = self.gold[messages[0]["content"]] if seed % 2 == 0 else "Nobody"
        return f"Thought: I think I know.\nAction: finish[{answer}]"
