"""What every tool shares: the observation an action returns, and the protocol a tool follows.

    class Calculator:                    # a new tool: the actions it offers, reset, and step
        actions = ("compute", "finish")
        def reset(self) -> None: ...
        def step(self, action: str, argument: str) -> Observation: ...

A tool with state that backtracking and batched branches must swap also has `state()` and `restore(saved)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Observation:
    text: str
    done: bool = False  # True after finish[...]
    answer: str | None = None  # the finish argument


class Tool(Protocol):
    """An environment the agent acts in: the action names it accepts (its finish among them), `reset` before
    an episode, and `step` for each action."""

    actions: tuple[str, ...]

    def reset(self) -> None: ...

    def step(self, action: str, argument: str) -> Observation: ...
