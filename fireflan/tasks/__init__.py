"""Tasks: one module per task loads its questions (`load`) and scores an answer (`score`).

    from fireflan.tasks import get_task
    task = get_task("hotpotqa")
    examples = task.load("../shared/data/hotpotqa_dev_sample89.json")
    task.score("Paris", examples[0])  # {'em': 0.0, 'f1': 0.0}
"""

from fireflan.tasks.base import Example
from fireflan.tasks.registry import CONTEXTS, OBSERVATIONS, TASKS, bind, get_task, load_examples, make_tool, open_task

__all__ = ["CONTEXTS", "OBSERVATIONS", "TASKS", "Example", "bind", "get_task", "load_examples", "make_tool",
           "open_task"]
