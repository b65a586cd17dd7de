"""Reading a ReAct action from model text: `Thought: ... Action: search[Some title]`.

Pure. Whatever cannot be read becomes a `Parsed` with an `error` that the agent loop turns into
an observation for the model; the parser never raises and never invents a step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ACTION_NAMES = ("search", "lookup", "finish")  # the wiki's actions (FireAct's), the parser's default

# "Action: search[", "Action 2 : Search [", "action:finish["
_PREFIXED = re.compile(r"Action(?:\s*\d+)?\s*:\s*([A-Za-z_]\w*)\s*\[", re.IGNORECASE)
_THOUGHT = re.compile(r"^\s*Thought(?:\s*\d+)?\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    thought: str  # the text before the action, without its "Thought:" label
    action: str | None  # lower-cased action name, None when unreadable
    argument: str | None  # the text inside the brackets, stripped
    trailing: str = ""  # text after the action (e.g. an "Observation:" the model made up)
    error: str | None = None  # why nothing could be read; becomes the observation

    @property
    def ok(self) -> bool:
        return self.error is None


def _closing(text: str, start: int) -> int:
    """Index of the ']' that closes the '[' at text[start-1], on the same line; -1 if none.

    Nested brackets are kept in the argument: 'search[Foo [band]]' -> 'Foo [band]'. When the
    brackets do not balance on the line, the last ']' of the line closes the action.
    """
    depth, end_of_line = 1, text.find("\n", start)
    end_of_line = len(text) if end_of_line == -1 else end_of_line
    for i in range(start, end_of_line):
        if text[i] == "[":
            depth += 1
        elif text[i] == "]":
            depth -= 1
            if depth == 0:
                return i
    return text.rfind("]", start, end_of_line)


def parse_action(text: str, names: tuple[str, ...] = ACTION_NAMES) -> Parsed:
    """Read the first action in `text`.

    'Thought: I need X.\\nAction: Search[X]' -> Parsed(thought='I need X.', action='search', argument='X')
    A bare action line ('lookup[born]') is read too, when its name is one of `names`.
    """
    m = _PREFIXED.search(text)
    if m is None:
        bare = re.compile(r"(?:^|\n)\s*(" + "|".join(map(re.escape, names)) + r")\s*\[", re.IGNORECASE)
        m = bare.search(text)
    if m is None:
        thought = _THOUGHT.sub("", text.strip()).strip()
        names_list = ", ".join(f"{n}[...]" for n in names)
        error = f"Invalid action: no 'Action: name[argument]' found. Use one of {names_list}."
        return Parsed(thought, None, None, "", error)
    close = _closing(text, m.end())
    thought = _THOUGHT.sub("", text[: m.start()].strip()).strip()
    name = m.group(1).lower()
    if close == -1:
        return Parsed(thought, None, None, "", f"Invalid action: '{name}[' has no closing ']'.")
    return Parsed(thought, name, text[m.end() : close].strip(), text[close + 1 :].strip())
