"""A model that replays given outputs, for driving the agent loop in tests."""

from __future__ import annotations

from fireflan.models.base import Usage, cut_at_stop


class ReplayModel:
    """Returns `outputs` one by one (cut at the stop strings, as a server would); records what it was
    asked. Usage counts whitespace words, so tests can check the accounting.

        model = ReplayModel(["Thought: x\\nAction: finish[1]"])
    """

    def __init__(self, outputs: list[str], name: str = "replay"):
        self.outputs, self.name = list(outputs), name
        self.requests: list[dict] = []
        self.usage, self.last_usage = Usage(), Usage()

    def generate(self, messages, *, stop=None, temperature=0.0, seed=None, max_tokens=256) -> str:
        if not self.outputs:
            raise RuntimeError("ReplayModel has no outputs left: the test scripted too few")
        self.requests.append({"messages": [dict(m) for m in messages], "stop": stop, "temperature": temperature,
                              "seed": seed, "max_tokens": max_tokens})
        text = cut_at_stop(self.outputs.pop(0), stop)
        prompt = sum(len(m["content"].split()) for m in messages)
        self.last_usage = Usage(calls=1, prompt_tokens=prompt, completion_tokens=len(text.split()))
        self.usage.add(self.last_usage)
        return text


class BatchReplayModel(ReplayModel):
    """A ReplayModel that also takes batched requests (as llama.cpp's batch decoder does), answering
    them in order from the same outputs: for testing code that steps several episodes side by side."""

    def __init__(self, outputs: list[str], name: str = "replay"):
        super().__init__(outputs, name)
        self.batches: list[int] = []  # the size of each batched call

    def generate_batch(self, requests, *, stop=None, max_tokens=256):
        self.batches.append(len(requests))
        out = []
        for messages, temperature, seed in requests:
            text = self.generate(messages, stop=stop, temperature=temperature, seed=seed, max_tokens=max_tokens)
            out.append((text, self.last_usage))
        return out
