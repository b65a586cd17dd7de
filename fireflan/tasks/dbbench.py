"""AgentBench DB (Liu et al. 2023): questions and instructions over one table, solved with SQL.

A record (AgentBench's format, one JSON object a line): `description` (the question), `table`
(`table_name`, `table_info: {columns: [{name, type}], rows}`), `add_description` ("The name of
this table is ..., and the headers of this table are ..."), `type` (["counting"], ["UPDATE"], ...),
`label` (a query's expected answers; for a statement, the statement itself), `answer_md5` (a
statement's expected table hash, `"[('<md5>',)]"`) and, in some, `sql: {query}` (a reference query).
The agent sees the description and the add_description, as in AgentBench.

Scoring as AgentBench does it: a query's answer (`finish[Velmora]`, `finish[["A", "B"]]`) is read as
a list; one value against one label compares as numbers when both are numbers, else as text; more
values compare as sets. (fireflan also ignores case and outer white space, and reads NULL/an empty
result as "none".) A statement (INSERT, UPDATE, DELETE) is right when the table's content hash after
the episode equals `answer_md5`, whatever the answer says.

From a local file or folder (`{split}.jsonl`), or with no source the DB tasks generated over the
embedded world (fireflan.worlds.db).
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections import Counter
from pathlib import Path

from fireflan.io import DataError, read_records, require
from fireflan.tasks.base import Example, limit
from fireflan.tools.sql import STATEMENT_TYPES, SqlEnv, answers_from_rows
from fireflan.worlds.db import DBWorldConfig, generate_dbtasks

NAME = "dbbench"
SPLITS = ("train", "dev", "test")
QUERY_TYPES = ("other", "counting", "comparison", "ranking", "aggregation-SUM", "aggregation-MIN",
               "aggregation-MAX", "aggregation-AVG")
_MD5 = re.compile(r"[0-9a-f]{32}")


def load(source=None, split: str = "train", n: int | None = None, seed: int = 0) -> list[Example]:
    """Tasks of a file, of a folder's `{split}.jsonl`, or (no source) the generated ones of `seed`."""
    if split not in SPLITS and source is None:
        raise ValueError(f"the generated DB tasks' splits are {SPLITS}, not {split!r}")
    if source is None:
        records = enumerate(generate_dbtasks(DBWorldConfig(seed=seed))[split], start=1)
        path, stem = f"<dbworld seed {seed}>/{split}", f"dbworld-{seed}-{split}"
    else:
        path = Path(source)
        if path.is_dir():
            path = path / f"{split}.jsonl"
        records, stem = read_records(path), path.stem
    return limit([example_from_record(rec, path, i, f"{stem}-{i}") for i, rec in records], n)


def example_from_record(rec: dict, path, line, default_id: str) -> Example:
    """An Example from an AgentBench DB record, checked field by field (DataError: file:line: field)."""
    description = require(rec, "description", str, path, line)
    kind = require(rec, "type", list, path, line)
    if not kind or kind[0] not in QUERY_TYPES + STATEMENT_TYPES:
        raise DataError(path, f"expected [one of {', '.join(QUERY_TYPES + STATEMENT_TYPES)}], got {kind!r}",
                        line=line, field="type")
    table = require(rec, "table", dict, path, line)
    name = require(table, "table_name", str, path, line)
    info = require(table, "table_info", dict, path, line)
    columns = require(info, "columns", list, path, line)
    if not columns or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in columns):
        raise DataError(path, "expected a non-empty list of {name, type}", line=line, field="table.table_info.columns")
    for i, row in enumerate(require(info, "rows", list, path, line)):
        if not isinstance(row, list) or len(row) != len(columns):
            raise DataError(path, f"row {i} must be a list of {len(columns)} values", line=line,
                            field="table.table_info.rows")
    labels = require(rec, "label", list, path, line)
    heads = ",".join(c["name"] for c in columns)
    add = rec.get("add_description") or f"The name of this table is {name}, and the headers of this table are {heads}."
    sql = rec.get("sql")
    if sql is not None and not (isinstance(sql, dict) and isinstance(sql.get("query"), str)):
        raise DataError(path, "expected {query: str, ...}", line=line, field="sql")
    fields = {"labels": [str(x) for x in labels], "sql": sql["query"] if sql else ""}
    if kind[0] in STATEMENT_TYPES:
        md5 = require(rec, "answer_md5", str, path, line)
        if not _MD5.search(md5):
            raise DataError(path, f"expected an md5 hash such as [('<32 hex digits>',)], got {md5!r}", line=line,
                            field="answer_md5")
        statement = labels[0] if labels and isinstance(labels[0], str) else ""
        fields = {"answer_md5": md5, "sql": fields["sql"] or statement}
        answer = md5
    else:
        answer = fields["labels"][0] if len(labels) == 1 else json.dumps(fields["labels"], ensure_ascii=False)
    return Example(id=str(rec.get("_id", default_id)), question=f"{description}\n{add}", answer=answer, task=NAME,
                   type=kind[0], level=str(rec.get("source", "")), table=table, **fields)


# --------------------------------------------------------------------------- scoring (pure)

def parse_answer(text: str) -> list[str]:
    """An answer as a list of values, the way AgentBench evaluates it.

    '["A", "B"]' -> ['A', 'B']; '1, 2' -> ['1', '2']; 'Paris, France' -> ['Paris, France']; '7' -> ['7']
    """
    text = (text or "").strip()
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return [text]
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return [text]


def _norm(value: str) -> str:
    """'  "Velmora" ' -> 'velmora'; 'NULL' -> 'none'"""
    text = str(value).strip().strip("'\"").strip().casefold()
    return "none" if text in ("null", "none", "") else text


def _number(value: str) -> float | None:
    """'2011.0' -> 2011.0; '1,429' -> None (AgentBench's float() reads no separators); 'nan' -> None"""
    try:
        x = float(_norm(value))
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def _same(a: str, b: str) -> bool:
    x, y = _number(a), _number(b)
    if x is not None and y is not None:
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
    return _norm(a) == _norm(b)


def answers_match(answer: list[str], labels: list[str]) -> bool:
    """AgentBench's rule: one value against one label compares as numbers (else text); more compare as sets.

    (['1'], ['1.0']) -> True; (['b', 'a'], ['a', 'b']) -> True; (['a'], ['a', 'b']) -> False
    """
    if len(answer) == 1 and len(labels) == 1:
        return _same(answer[0], labels[0])
    return {_canon(a) for a in answer} == {_canon(b) for b in labels}


def _canon(value: str) -> str:
    x = _number(value)
    return repr(float(x)) if x is not None else _norm(value)


def score(prediction: str, example: Example, table_hash: str | None = None) -> dict:
    """{'em', 'f1'}: a query by its answer; a statement by `table_hash` (the table after the episode).

    F1 of a query is the overlap of answer and label sets (partial credit for a list half right).
    """
    if example.type in STATEMENT_TYPES:
        want = _MD5.search(example.answer_md5 or example.answer)
        em = float(table_hash is not None and want is not None and table_hash == want.group(0))
        return {"em": em, "f1": em}
    labels = example.labels or parse_answer(example.answer)
    answer = parse_answer(prediction)
    em = float(answers_match(answer, labels))
    got, gold = {_canon(a) for a in answer}, {_canon(b) for b in labels}
    same = len(got & gold)
    f1 = 0.0 if not same else 2 * same / (len(got) + len(gold))
    return {"em": em, "f1": max(f1, em)}


def scorer(example: Example, env):
    """The score function of one episode in `env` (a SqlEnv): a statement is scored on its table as
    it is when the episode ends."""
    if example.type in STATEMENT_TYPES:
        return lambda answer: score(answer, example, env.table_hash())
    return lambda answer: score(answer, example)


def summarize(records: list[dict], examples: list[Example]) -> dict:
    """AgentBench's report: accuracy per type, SELECT (every query type), and overall_cat_accuracy, the
    mean over the categories SELECT, INSERT, UPDATE, DELETE that occur."""
    types = {ex.id: ex.type for ex in examples}
    right, total = Counter(), Counter()
    for rec in records:
        kind = types.get(rec["id"])
        if kind is None:
            continue
        em = rec["score"].get("em", 0.0)
        for key in (kind, "SELECT" if kind in QUERY_TYPES else None):
            if key:
                right[key] += em
                total[key] += 1
    accuracy = {k: round(right[k] / total[k], 4) for k in sorted(total)}
    cats = [accuracy[c] for c in ("SELECT", *STATEMENT_TYPES) if c in accuracy]
    return {"accuracy_by_type": accuracy, "count_by_type": dict(sorted(total.items())),
            "overall_cat_accuracy": round(sum(cats) / len(cats), 4) if cats else None}


# --------------------------------------------------------------------------- reference solutions

def check_reference(example: Example) -> tuple[bool | None, str]:
    """Run the record's reference solution in a fresh database: (reproduces the expected answer?, what
    happened). None when the record has no reference solution."""
    import sqlite3

    if not example.sql:
        return None, "no reference solution"
    env = SqlEnv(example.table, time_limit=5.0)
    try:
        rows, _, _ = env.run(example.sql)
    except (sqlite3.Error, ValueError) as e:
        return False, f"the reference SQL fails in sqlite: {e}"
    if example.type in STATEMENT_TYPES:
        got = env.table_hash()
        ok = score("", example, got)["em"] == 1.0
        return ok, "the table hash matches" if ok else f"table hash {got} is not the expected {example.answer_md5}"
    answer = answers_from_rows(rows or [])
    ok = answers_match(answer, example.labels)
    return ok, f"got {answer[:5]}, expected {example.labels[:5]}"
