"""Prompts for teachers and prompted baselines: instructions and few-shot examples.

The few-shot examples are generated, not copied from a paper: the scripted expert solves questions
of a world generated with its own seed (FEW_SHOT_SEED), whose names no run's data shares.

    prefix = few_shot_prefix("react", shots=3)   # [{"role": "system", "content": ...}]
    prefix = few_shot_prefix("react", shots=3, task="dbbench")   # SQL tasks: execute[...] examples
"""

from __future__ import annotations

from functools import lru_cache

from fireflan.agent.loop import run_episode
from fireflan.models.base import render
from fireflan.models.scripted import ScriptedExpert
from fireflan.tasks import bind, get_task
from fireflan.tasks.base import example_from_hotpot
from fireflan.tasks.dbbench import example_from_record
from fireflan.tools.sql import SqlTool
from fireflan.tools.wiki import Page, Wiki
from fireflan.worlds.db import DBWorldConfig, generate_dbtasks
from fireflan.worlds.wiki import WorldConfig, generate_world

FEW_SHOT_SEED = 9173

TOOLS = ("(1) search[title or words]: the page with that title, or else the best-matching passage and a "
         "list of similar titles.\n"
         "(2) lookup[keyword]: the next sentence of the last page found that contains the keyword.\n"
         "(3) finish[answer]: gives the final answer and ends the task.")

INSTRUCTIONS = {
    "react": ("Answer the question by alternating Thought, Action and Observation steps. A Thought reasons "
              "about what you know and what you still need; an Action is one of:\n" + TOOLS +
              "\nWrite one Thought and one Action, then wait for the Observation."),
    "cot": ("Answer the question. Think it through step by step in one Thought, then give the answer as "
            "Action: finish[answer]."),
    "reflexion": ("Answer the question by alternating Thought, Action and Observation steps. A Thought reasons "
                  "about what you know and what you still need; an Action is one of:\n" + TOOLS +
                  "\nWrite one Thought and one Action, then wait for the Observation. When a step goes wrong "
                  "(a search finds the wrong page, an answer is judged incorrect), start the next Thought with "
                  "'Reflection:', say what went wrong and how to do better, and go on."),
}


SQL_TOOLS = ("(1) execute[SQL]: runs one SQL statement, written on one line, and returns its rows or its error. "
             "Quote table and column names with backticks.\n"
             "(2) finish[answer]: gives the final answer and ends the task; several values as a list: "
             "finish[[\"A\", \"B\"]]; after changing the table: finish[done].")

SQL_INSTRUCTIONS = {
    "react": ("Answer the question, or carry out the instruction, by operating a SQLite database, alternating "
              "Thought, Action and Observation steps. A Thought reasons about what you know and what you still "
              "need; an Action is one of:\n" + SQL_TOOLS +
              "\nWrite one Thought and one Action, then wait for the Observation."),
    "cot": ("Answer the question about the table. Think it through step by step in one Thought, then give the "
            "answer as Action: finish[answer]."),
    "reflexion": ("Answer the question, or carry out the instruction, by operating a SQLite database, alternating "
                  "Thought, Action and Observation steps. A Thought reasons about what you know and what you still "
                  "need; an Action is one of:\n" + SQL_TOOLS +
                  "\nWrite one Thought and one Action, then wait for the Observation. When a step goes wrong (an "
                  "error, an answer judged incorrect), start the next Thought with 'Reflection:', say what went "
                  "wrong and how to do better, and go on."),
}


@lru_cache(maxsize=8)
def few_shot_examples(method: str, shots: int = 3) -> tuple[str, ...]:
    """`shots` solved questions of the few-shot world, as text, in the shape of `method`."""
    splits, corpus = generate_world(WorldConfig(seed=FEW_SHOT_SEED, train=60, dev=10, test=10))
    examples = [example_from_hotpot(r, "world", "few-shot", i, str(i)) for i, r in enumerate(splits["train"])]
    wiki = Wiki([Page(p["title"], tuple(p["sentences"])) for p in corpus])
    if method == "cot":
        wanted = ["notool"] * shots
    else:  # a bridge, a comparison, a yes/no question, then more bridges
        wanted = (["bridge", "comparison", "yesno"] + ["bridge"] * shots)[:shots]
    chosen, used = [], set()
    for kind in wanted:
        ex = next(e for e in examples if e.id not in used and (
            (kind == "yesno" and e.answer in ("yes", "no")) or (kind != "yesno" and e.type == kind
                                                               and e.answer not in ("yes", "no"))))
        used.add(ex.id)
        chosen.append(ex)
    expert = ScriptedExpert(chosen, method=method, seed=FEW_SHOT_SEED, lookup_share=0.5)
    return tuple(render(run_episode(expert, wiki, ex, method=method).messages()) for ex in chosen)


@lru_cache(maxsize=8)
def sql_few_shot_examples(method: str, shots: int = 3) -> tuple[str, ...]:
    """`shots` solved DB tasks of the few-shot seed: a lookup, an aggregate, a change, then more lookups.
    CoT gets none (a DB question cannot be answered without running SQL)."""
    if method == "cot":
        return ()
    records = generate_dbtasks(DBWorldConfig(seed=FEW_SHOT_SEED, train=60, dev=0, test=0))["train"]
    examples = [example_from_record(r, "few-shot", i, str(i)) for i, r in enumerate(records)]
    wanted = (["other", "aggregation", "UPDATE"] + ["other"] * shots)[:shots]
    chosen = []
    for kind in wanted:
        chosen.append(next(e for e in examples if e.type.startswith(kind) and e not in chosen))
    expert = ScriptedExpert(chosen, method=method, seed=FEW_SHOT_SEED, lookup_share=0.0)
    task, tool, out = get_task("dbbench"), SqlTool(), []
    for ex in chosen:
        env, _ = bind(task, tool, ex)
        out.append(render(run_episode(expert, env, ex, method=method).messages()))
    return tuple(out)


def few_shot_prefix(method: str, shots: int = 3, task: str = "world") -> list[dict]:
    """The system turn of a prompted model: the instructions, then `shots` worked examples (SQL ones
    for the DB tasks, wiki ones for every other task)."""
    if method not in INSTRUCTIONS:
        raise ValueError(f"no prompt for method {method!r}; the methods are {', '.join(INSTRUCTIONS)}")
    sql = task == "dbbench"
    text = (SQL_INSTRUCTIONS if sql else INSTRUCTIONS)[method]
    examples = (sql_few_shot_examples if sql else few_shot_examples)(method, shots) if shots else ()
    if examples:
        text += "\n\nHere are some examples.\n\n" + "\n\n".join(examples)
    return [{"role": "system", "content": text}]
