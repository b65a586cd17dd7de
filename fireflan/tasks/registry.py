"""The tasks by name, and what a stage opens for one: its questions and the tool they are asked with.

    from fireflan.tasks import get_task
    task = get_task("hotpotqa")
    examples = task.load("../shared/data/hotpotqa_dev_sample89.json")
    task.score("Paris", examples[0])  # {'em': 0.0, 'f1': 0.0}
"""

from __future__ import annotations

from fireflan.tasks import bamboogle, dbbench, hotpotqa, mmlu, strategyqa, world
from fireflan.tasks.base import Example
from fireflan.tools.sql import SqlTool
from fireflan.tools.wiki import Page, QuestionWikis, Wiki, load_corpus
from fireflan.worlds.wiki import WorldConfig, generate_world

_MODULES = {m.NAME: m for m in (world, hotpotqa, bamboogle, strategyqa, mmlu, dbbench)}
TASKS = tuple(_MODULES)
OBSERVATIONS = ("pages", "snippets")  # what the wiki's search returns (see tools.wiki)
CONTEXTS = ("question", "pool")  # which paragraphs a question's wiki holds, when they come with the questions


def get_task(name: str):
    """The task module called `name` (it has NAME, load(...) and score(prediction, example))."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; the tasks are: {', '.join(TASKS)}")
    return _MODULES[name]




def load_examples(task: str, data=None, split: str | None = None, n: int | None = None) -> list[Example]:
    """A task's questions: `data` is a local file or folder (None: the world's default or the hub)."""
    t = get_task(task)
    kwargs = {"n": n}
    if split is not None:
        kwargs["split"] = split
    return t.load(data, **kwargs)


def open_task(task: str, data=None, split: str | None = None, limit: int | None = None, corpus=None,
              observations: str = "pages", context: str = "question"):
    """(task module, questions, tool) for a stage's data options. A split applies to the world, the DB
    tasks, HotpotQA and the hub; a local file of another task is read whole. `context`: see `make_tool`
    (a pool holds the paragraphs of every question of the data, not only the first `limit`)."""
    split = split if task in ("world", "hotpotqa", "dbbench") or data is None else None
    examples = load_examples(task, data, split, limit)
    everything = load_examples(task, data, split, None) if context == "pool" and limit is not None else examples
    return get_task(task), examples, make_tool(task, everything, data, corpus, observations, context)


def make_tool(task: str, examples: list[Example], data=None, corpus=None, observations: str = "pages",
              context: str = "question"):
    """The tool for a task's questions: SQL databases for dbbench (one per question, see `bind`), else the wiki.

    `corpus` (a corpus file or world folder) wins; a world folder given as `data` brings its own
    corpus.jsonl; with no data the default world's articles are used; otherwise the questions' own
    `context` paragraphs: with `context="question"` each question searches its own (HotpotQA's
    distractor setting: two gold pages among ten), with `"pool"` one wiki holds the paragraphs of all of
    `examples` (the gold pages among thousands, as a user's own search would have them).
    `observations`: "pages" (the wiki's search returns a whole paragraph) or "snippets" (a search
    engine's two sentences).
    """
    if observations not in OBSERVATIONS:
        raise ValueError(f"unknown observations {observations!r}; choose one of {', '.join(OBSERVATIONS)}")
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}; choose one of {', '.join(CONTEXTS)}")
    wiki = _wiki(task, examples, data, corpus, context)
    if wiki is not None:
        wiki.snippets = observations == "snippets"
        return wiki
    return SqlTool()


def _wiki(task: str, examples: list[Example], data, corpus, context: str):
    """make_tool's wiki (None for the DB tasks)."""
    from pathlib import Path

    if task == "dbbench":
        return None
    if corpus is not None:
        return Wiki(load_corpus(corpus))
    if task == "world" and data is not None and (Path(data) / "corpus.jsonl").exists():
        return Wiki(load_corpus(data))
    if task == "world" and data is None:
        _, pages = generate_world(WorldConfig())
        return Wiki([Page(p["title"], tuple(p["sentences"])) for p in pages])
    if context == "question" and any(ex.context for ex in examples):
        return QuestionWikis()
    pages = {}
    for ex in examples:
        for title, sentences in ex.context:
            pages.setdefault(title, Page(title, tuple(s.strip() for s in sentences if s.strip())))
    if not pages:
        raise ValueError(f"the {task} questions carry no paragraphs to search: pass a corpus file (--corpus)")
    return Wiki(list(pages.values()))


def bind(task, tool, example: Example):
    """(the tool one question is asked with, its score function: answer -> {'em', 'f1'}).

    The wiki serves every question and an answer is scored alone; a DB task's tool gives each question
    its own database (`tool.for_example`), and a statement is scored on the table it leaves.
    """
    env = tool.for_example(example) if hasattr(tool, "for_example") else tool
    if hasattr(task, "scorer"):
        return env, task.scorer(example, env)
    return env, lambda answer: task.score(answer, example)

