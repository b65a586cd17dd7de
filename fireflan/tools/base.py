"""What every tool shares: the observation an action returns, and the protocol a tool follows.

    class Calculator:                    # a new tool: the actions it offers, and one method per action
        actions = ("compute", "finish")
        def act(self, action: str, argument: str) -> Observation: ...
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
    """An environment the agent acts in: the action names it accepts (its finish among them) and `act`."""

    actions: tuple[str, ...]

    def act(self, action: str, argument: str) -> Observation: ...
