"""Tasks: each module loads questions (`load`) and scores an answer (`score`).

    from fireflan.tasks import get_task
    task = get_task("hotpotqa")
    examples = task.load("../shared/data/hotpotqa_dev_sample89.json")
    task.score("Paris", examples[0])  # {'em': 0.0, 'f1': 0.0}
"""

from __future__ import annotations

import importlib

from fireflan.tasks.base import Example

TASKS = ("world", "hotpotqa", "bamboogle", "strategyqa", "mmlu")


def get_task(name: str):
    """The task module called `name` (it has NAME, load(...) and score(prediction, example))."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(TASKS)}")
    return importlib.import_module(f"fireflan.tasks.{name}")


__all__ = ["TASKS", "Example", "get_task"]
