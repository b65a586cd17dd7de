"""One question of any task, in HotpotQA's distractor schema (extra fields for other tasks)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from fireflan.io import DataError, require


@dataclass(frozen=True)
class Example:
    id: str
    question: str
    answer: str  # the gold answer as text ("yes"/"no" for StrategyQA, the letter for MMLU)
    task: str
    type: str = ""  # bridge | comparison | single | notool (world), HotpotQA's own types, ...
    level: str = ""
    supporting_facts: list = field(default_factory=list)  # [[title, sentence index], ...]
    context: list = field(default_factory=list)  # [[title, [sentences]], ...]
    choices: list = field(default_factory=list)  # MMLU options, in letter order
    # AgentBench DB (fireflan.tasks.dbbench): the question's own table and what is expected of it
    table: dict = field(default_factory=dict)  # {"table_name", "table_info": {"columns", "rows"}}
    labels: list = field(default_factory=list)  # a query's expected answers
    answer_md5: str = ""  # a statement's expected table hash, as AgentBench writes it: "[('<md5>',)]"
    sql: str = ""  # a reference solution: the record's query, or the statement it expects
    reasoning: str = ""  # a comparison of the embedded world: how its two read values decide it
    subquestions: list = field(default_factory=list)  # the world's plan: [[sub-question, its answer], ...]

    def to_record(self) -> dict:
        """The HotpotQA-shaped record (`_id`, not `id`), as written to JSONL (DB fields only when set)."""
        rec = asdict(self)
        rec["_id"] = rec.pop("id")
        for name in ("table", "labels", "answer_md5", "sql", "reasoning", "subquestions"):
            if not rec[name]:
                del rec[name]
        return rec


def example_from_hotpot(rec: dict, task: str, path, n: int, default_id: str) -> Example:
    """An Example from a record in HotpotQA's official schema, checked field by field.

    `question` and `answer` are required; `_id` defaults to `default_id` (the simplified files
    have none); `supporting_facts` and `context` must have HotpotQA's shape when present.
    """
    question = require(rec, "question", str, path, n)
    answer = require(rec, "answer", (str, bool, int), path, n)
    if isinstance(answer, bool):
        answer = "yes" if answer else "no"
    facts = rec.get("supporting_facts", [])
    if not (isinstance(facts, list) and all(isinstance(f, list) and len(f) == 2 for f in facts)):
        raise DataError(path, "expected [[title, sentence_index], ...]", line=n, field="supporting_facts")
    context = rec.get("context", [])
    if not (isinstance(context, list) and all(isinstance(c, list) and len(c) == 2 for c in context)):
        raise DataError(path, "expected [[title, [sentences]], ...]", line=n, field="context")
    reasoning = require(rec, "reasoning", str, path, n) if "reasoning" in rec else ""
    subs = rec.get("subquestions", [])
    if not (isinstance(subs, list) and all(isinstance(s, list) and len(s) == 2 and all(isinstance(x, str) for x in s)
                                           for s in subs)):
        raise DataError(path, "expected [[sub-question, answer], ...]", line=n, field="subquestions")
    return Example(id=str(rec.get("_id", default_id)), question=question, answer=str(answer), task=task,
                   type=str(rec.get("type", "")), level=str(rec.get("level", "")),
                   supporting_facts=facts, context=context, reasoning=reasoning, subquestions=subs)


def limit(examples: list[Example], n: int | None) -> list[Example]:
    """The first n examples (all of them when n is None)."""
    if n is not None and n < 0:
        raise ValueError(f"limit must be >= 0, got {n}")
    return examples if n is None else examples[:n]


def load_hub(name: str, config: str | None, split: str):
    """A split of a Hugging Face hub data set, with an error that says what to do offline."""
    import datasets

    try:
        return datasets.load_dataset(name, config, split=split)
    except Exception as e:  # network, authentication, unknown split: all end the same way
        raise RuntimeError(
            f"could not load {name} ({config or 'default'}, split {split}) from the Hugging Face hub: "
            f"{type(e).__name__}: {e}\nOn a machine without network, pass a local file instead."
        ) from e
