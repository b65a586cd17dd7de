"""FireAct's robustness test: with probability p a tool observation is replaced by noise."""

from __future__ import annotations

import copy
import random

from fireflan.tools.base import Observation

NOISE_KINDS = ("none", "random")


class NoisyTool:
    """Wraps a tool; each search/lookup observation is, with probability `p`, replaced by "None"
    or by a random passage of the corpus (seeded, so a run can be repeated exactly).

        noisy = NoisyTool(wiki, p=0.5, seed=0)
        noisy.step("search", "Velmora").text  # the page, "None", or some other page
    """

    def __init__(self, tool, p: float, seed: int = 0, kinds: tuple[str, ...] = NOISE_KINDS):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"noise probability must be within [0, 1], got {p}")
        unknown = [k for k in kinds if k not in NOISE_KINDS]
        if unknown or not kinds:
            raise ValueError(f"noise kinds must be among {NOISE_KINDS}, got {kinds}")
        self.tool, self.p, self.kinds = tool, p, tuple(kinds)
        self.rng = random.Random(seed)
        self._count = [0]  # how many observations were noise (shared with the tools of `for_example`)

    @property
    def replaced(self) -> int:
        return self._count[0]

    def for_example(self, example):
        """The noisy tool of one question, when the wrapped tool gives each question its own (the same coin)."""
        if not hasattr(self.tool, "for_example"):
            return self
        bound = copy.copy(self)
        bound.tool = self.tool.for_example(example)
        return bound

    @property
    def actions(self) -> tuple[str, ...]:
        return self.tool.actions

    def reset(self) -> None:
        self.tool.reset()

    def step(self, action: str, argument: str) -> Observation:
        obs = self.tool.step(action, argument)
        if action not in ("search", "lookup") or self.rng.random() >= self.p:
            return obs
        self._count[0] += 1
        if self.rng.choice(self.kinds) == "none":
            return Observation("None")
        page = self.tool.pages[self.rng.randrange(len(self.tool.pages))]
        return Observation(page.text)

    def __getattr__(self, name):  # everything else (pages, search, lookup) is the wrapped tool's
        return getattr(self.tool, name)
