"""DB tasks over the embedded world: AgentBench DB records whose tables hold its fictional entities.

    python -m fireflan dbworld --seed 0 --out runs/dbworld
    # -> runs/dbworld/{train,dev,test}.jsonl, one AgentBench DB record a line

Each task is one table (films, cities, bands, albums, companies or people, 6-12 rows of one split's
entities: the entities of the embedded world of the same seed, so a table agrees with the wiki's
articles, and a test table holds no entity a training table holds) and a question or an instruction
about it, with a reference SQL. The generator runs that SQL in the task's database to write the
record's `label` (a query's answer) or `answer_md5` (the table's hash after an INSERT, UPDATE or
DELETE), so every record is solvable by construction. Types are AgentBench's: other, counting,
comparison, ranking, aggregation-SUM/MIN/MAX/AVG, INSERT, UPDATE (and DELETE, which AgentBench's
DB set also scores by hash).

    "Who directed the film The Last Nafern?" + Film Catalogue -> label ["Aldo Brenik"],
    sql: SELECT `Director` FROM `Film Catalogue` WHERE `Title` = 'The Last Nafern'
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from fireflan.options import opt

SCHEMA_DBTASK = "fireflan.dbtask/1"
SPLITS = ("train", "dev", "test")
# the share of each task type (AgentBench's dev set: 1/3 queries, 1/3 INSERT, 1/3 UPDATE)
TYPE_SHARES = {"other": 0.16, "counting": 0.08, "comparison": 0.08, "ranking": 0.08, "aggregation-SUM": 0.05,
               "aggregation-MIN": 0.05, "aggregation-MAX": 0.05, "aggregation-AVG": 0.05, "INSERT": 0.14,
               "UPDATE": 0.16, "DELETE": 0.10}


@dataclass
class DBWorldConfig:
    """Options of the DB task generator (`python -m fireflan dbworld --help`)."""

    seed: int = opt(0, "the same seed writes byte-identical files (and uses the entities of the world of that seed)")
    train: int = opt(1000, "tasks in the train split")
    dev: int = opt(100, "tasks in the dev split")
    test: int = opt(100, "tasks in the test split")
    min_rows: int = opt(6, "fewest rows in a task's table")
    max_rows: int = opt(12, "most rows in a task's table")

    def __post_init__(self):
        for name in SPLITS:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"dbworld option {name} must be an integer >= 0, got {getattr(self, name)!r}")
        if not 3 <= self.min_rows <= self.max_rows <= 40:
            raise ValueError(f"dbworld needs 3 <= min_rows <= max_rows <= 40, got {self.min_rows}, {self.max_rows}")


# --------------------------------------------------------------------------- tables
# A column: its name, type, the question that asks for it ({k}: the row's key), and what it is:
# `where` (a text column a question filters on: "directed by {v}") or `measure` (a number column).

@dataclass(frozen=True)
class Col:
    name: str
    type: str = "TEXT"
    ask: str = ""
    where: str = ""
    measure: str = ""
    additive: bool = False  # a sum of it means something (population, tracks), unlike years


@dataclass(frozen=True)
class Table:
    kind: str  # the world's entity kind
    name: str
    noun: str
    plural: str
    columns: tuple[Col, ...]  # the first is the key (the entity's name)


TABLES = (
    Table("film", "Film Catalogue", "film", "films", (
        Col("Title"),
        Col("Release year", "INTEGER", "In which year was the film {k} released?", measure="release year"),
        Col("Genre", ask="What genre is the film {k}?", where="in the {v} genre"),
        Col("Director", ask="Who directed the film {k}?", where="directed by {v}"),
        Col("Studio", ask="Which studio produced the film {k}?", where="produced by {v}"),
        Col("Running time", "INTEGER", "How many minutes does the film {k} run?", measure="running time in minutes",
            additive=True))),
    Table("city", "City Register", "city", "cities", (
        Col("City"),
        Col("Country", ask="In which country is {k}?", where="in {v}"),
        Col("Founded", "INTEGER", "In which year was {k} founded?", measure="founding year"),
        Col("Population", "INTEGER", "What is the population of {k}?", measure="population", additive=True))),
    Table("band", "Band Directory", "band", "bands", (
        Col("Band"),
        Col("Genre", ask="What genre of music does {k} play?", where="playing {v}"),
        Col("Home city", ask="In which city was {k} formed?", where="from {v}"),
        Col("Formed", "INTEGER", "In which year was {k} formed?", measure="formation year"),
        Col("Members", "INTEGER", "How many members does {k} have?", measure="number of members", additive=True))),
    Table("album", "Album Releases", "album", "albums", (
        Col("Album"),
        Col("Band", ask="Which band recorded the album {k}?", where="by {v}"),
        Col("Year", "INTEGER", "In which year was the album {k} released?", measure="release year"),
        Col("Record label", ask="Which label released the album {k}?", where="released on {v}"),
        Col("Tracks", "INTEGER", "How many tracks are on the album {k}?", measure="number of tracks",
            additive=True))),
    Table("company", "Company Register", "company", "companies", (
        Col("Company"),
        Col("Industry", ask="In which industry is {k}?", where="in the {v} industry"),
        Col("Founded", "INTEGER", "In which year was {k} founded?", measure="founding year"),
        Col("Founder", ask="Who founded {k}?", where="founded by {v}"),
        Col("Headquarters", ask="Where is {k} headquartered?", where="headquartered in {v}"),
        Col("Employees", "INTEGER", "How many people does {k} employ?", measure="number of employees",
            additive=True))),
    Table("person", "People Index", "person", "people", (
        Col("Name"),
        Col("Occupation", ask="What is the occupation of {k}?", where="who work as {v}s"),
        Col("Birth year", "INTEGER", "In which year was {k} born?", measure="birth year"),
        Col("Birthplace", ask="Where was {k} born?", where="born in {v}"),
        Col("Country", ask="Which country is {k} from?", where="from {v}"))),
)


def row_of(table: Table, e, seed: int) -> list:
    """A world entity as a row of `table`; numbers the world does not state (a film's running time,
    an album's tracks, a company's staff) are drawn once per entity from the seed."""
    f = e.facts

    def drawn(what, lo, hi, step=1):
        return random.Random(f"{seed}-{what}-{e.name}").randrange(lo, hi + 1, step)

    if table.kind == "film":
        return [e.name, f["year"], f["genre"], f["director"], f["studio"], drawn("runtime", 78, 172)]
    if table.kind == "city":
        return [e.name, f["country"], f["founded"], f["population"]]
    if table.kind == "band":
        return [e.name, f["genre"], f["city"], f["formed"], len(f["members"])]
    if table.kind == "album":
        return [e.name, f["band"], f["year"], f["label"], drawn("tracks", 7, 16)]
    if table.kind == "company":
        return [e.name, f["industry"], f["founded"], f["founder"], f["hq"], drawn("staff", 20, 4000, 10)]
    return [e.name, f["occupation"], f["born"][0], f["city"], f["country"]]


# --------------------------------------------------------------------------- SQL text

def ident(name: str) -> str:
    """A name as AgentBench's MySQL tasks quote it (sqlite reads it too). 'Home city' -> '`Home city`'"""
    return "`" + name.replace("`", "``") + "`"


def literal(value) -> str:
    """7 -> '7'; "Kest's" -> "'Kest''s'" """
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------- one task

@dataclass
class _Task:
    type: str
    description: str
    sql: str


def _task(kind: str, table: Table, rows: list[list], spare: list, rng: random.Random) -> _Task | None:
    """A task of `kind` over `rows` (None when these rows do not suit it); `spare` is a row of the same
    kind that is not in the table (what INSERT adds)."""
    t, key = ident(table.name), table.columns[0]
    cols = list(enumerate(table.columns))[1:]
    texts = [(i, c) for i, c in cols if c.where]
    numbers = [(i, c) for i, c in cols if c.measure]
    row = rng.choice(rows)

    def where_value(i):  # a value of column i that several rows share, if any
        counts = {}
        for r in rows:
            counts[r[i]] = counts.get(r[i], 0) + 1
        shared = sorted(v for v, n in counts.items() if n >= 2)
        return rng.choice(shared) if shared else None

    if kind == "other":
        i, c = rng.choice([(i, c) for i, c in cols if c.ask])
        same_key = [r for r in rows if r[0] == row[0]]
        return _Task(kind, c.ask.format(k=row[0]), f"SELECT {ident(c.name)} FROM {t} WHERE {ident(key.name)} = "
                     f"{literal(row[0])}") if len(same_key) == 1 else None
    if kind == "counting":
        i, c = rng.choice(texts)
        v = where_value(i) if rng.random() < 0.7 else row[i]
        return _Task(kind, f"How many {table.plural} {c.where.format(v=v)} are in the table?",
                     f"SELECT COUNT(*) FROM {t} WHERE {ident(c.name)} = {literal(v)}") if v is not None else None
    if kind == "comparison":
        i, c = rng.choice(numbers)
        values = sorted({r[i] for r in rows})
        if len(values) < 3:
            return None
        k = rng.randrange(1, min(4, len(values) - 1) + 1)  # 1..4 answers
        if rng.random() < 0.5:
            x, op, word = values[-k - 1], ">", "greater"
        else:
            x, op, word = values[k], "<", "less"
        return _Task(kind, f"Which {table.plural} have a {c.measure} {word} than {x}?",
                     f"SELECT {ident(key.name)} FROM {t} WHERE {ident(c.name)} {op} {x}")
    if kind == "ranking":
        i, c = rng.choice(numbers)
        high = rng.random() < 0.5
        values = sorted(r[i] for r in rows)
        if (values[-1] == values[-2]) if high else (values[0] == values[1]):
            return None
        return _Task(kind, f"Which {table.noun} has the {'highest' if high else 'lowest'} {c.measure}?",
                     f"SELECT {ident(key.name)} FROM {t} ORDER BY {ident(c.name)} {'DESC' if high else 'ASC'} "
                     "LIMIT 1")
    if kind.startswith("aggregation-"):
        fn = kind.split("-")[1]
        pool = [(i, c) for i, c in numbers if c.additive or fn != "SUM"]
        if not pool:
            return None
        i, c = rng.choice(pool)
        j, w = rng.choice(texts)
        v = where_value(j)
        scope, cond = (f"the {table.plural} {w.where.format(v=v)}", f" WHERE {ident(w.name)} = {literal(v)}") \
            if v is not None and rng.random() < 0.7 else (f"all {table.plural} in the table", "")
        value = f"ROUND(AVG({ident(c.name)}), 1)" if fn == "AVG" else f"{fn}({ident(c.name)})"
        asked = {"SUM": f"What is the total {c.measure} of {scope}?",
                 "MIN": f"What is the lowest {c.measure} among {scope}?",
                 "MAX": f"What is the highest {c.measure} among {scope}?",
                 "AVG": f"What is the average {c.measure} of {scope}, rounded to one decimal place?"}[fn]
        return _Task(kind, asked, f"SELECT {value} FROM {t}{cond}")
    if kind == "INSERT":
        if spare is None:
            return None
        named = ", ".join(f"{c.name.lower()} {v}" for c, v in zip(table.columns[1:], spare[1:], strict=True))
        names = ", ".join(ident(c.name) for c in table.columns)
        return _Task(kind, f"Add the {table.noun} {spare[0]} to the table, with {named}.",
                     f"INSERT INTO {t} ({names}) VALUES ({', '.join(literal(v) for v in spare)})")
    if kind == "UPDATE":
        i, c = rng.choice(cols)
        if c.type == "INTEGER":
            new = row[i] + rng.choice([-3, -2, -1, 1, 2, 3]) * (100 if row[i] > 5000 else 1)
        else:
            others = sorted({r[i] for r in rows} - {row[i]})
            if not others:
                return None
            new = rng.choice(others)
        if sum(r[0] == row[0] for r in rows) != 1:
            return None
        said = rng.choice(["Change the {c} of {k} to {v}.", "Set the {c} of the {n} {k} to {v}.",
                           "Update the table: the {c} of {k} is now {v}."])
        return _Task(kind, said.format(c=c.name.lower(), k=row[0], v=new, n=table.noun),
                     f"UPDATE {t} SET {ident(c.name)} = {literal(new)} WHERE {ident(key.name)} = {literal(row[0])}")
    if kind == "DELETE":
        if rng.random() < 0.5:
            i, c = rng.choice(texts)
            v = where_value(i)
            if v is not None:
                return _Task(kind, f"Delete every {table.noun} {c.where.format(v=v)} from the table."
                             .replace(f"every {table.noun} who", f"all {table.plural} who"),
                             f"DELETE FROM {t} WHERE {ident(c.name)} = {literal(v)}")
        return _Task(kind, f"Remove the {table.noun} {row[0]} from the table.",
                     f"DELETE FROM {t} WHERE {ident(key.name)} = {literal(row[0])}")
    raise ValueError(f"unknown task type {kind!r}")


def _record(task: _Task, table: Table, rows: list[list], task_id: str, source: str) -> dict | None:
    """The AgentBench record of a task: its SQL run in the task's database gives the label or the
    table hash. None when the result makes a poor task (no answer, too many, nothing changed)."""
    from fireflan.tasks.dbbench import STATEMENT_TYPES, answers_from_rows
    from fireflan.tools.sql import SqlEnv

    heads = [c.name for c in table.columns]
    spec = {"table_name": table.name, "table_info": {
        "columns": [{"name": c.name, "type": c.type} for c in table.columns], "rows": rows}}
    env = SqlEnv(spec)
    before = env.table_hash()
    result, changed, _ = env.run(task.sql)
    rec = {"schema": SCHEMA_DBTASK, "_id": task_id, "description": task.description}
    if task.type in STATEMENT_TYPES:
        after = env.table_hash()
        if changed < 1 or after == before:
            return None
        rec.update(label=[task.sql], answer_md5=f"[('{after}',)]")
    else:
        labels = answers_from_rows(result)
        if labels == ["none"] or len(labels) > 5:
            return None
        rec.update(label=labels, sql={"query": task.sql, "length": len(task.sql)})
    rec.update({
        "create": {"database": "fireflan-world", "init": ""}, "table": spec, "evaluation": "", "example": "",
        "type": [task.type], "heads": heads, "source": source,
        "add_description": f"The name of this table is {table.name}, and the headers of this table are "
                           f"{','.join(heads)}."})
    return rec


# --------------------------------------------------------------------------- the splits

def _world_entities(seed: int) -> dict[str, list]:
    """The entities of the embedded world of `seed` (its default sizes), by split group."""
    from fireflan.world import WorldConfig, _build_entities, _Names  # the world's own generator, unchanged

    world = WorldConfig(seed=seed)
    rng = random.Random(f"fireflan-world-{seed}")  # as generate_world starts, so the entities are the same
    return _build_entities(rng, _Names(rng), {"train": world.train, "dev": world.dev, "test": world.test})


def generate_dbtasks(config: DBWorldConfig) -> dict[str, list[dict]]:
    """{split: [AgentBench DB records]}; pure and deterministic, no description repeats across splits."""
    groups = _world_entities(config.seed)
    kinds, shares = list(TYPE_SHARES), list(TYPE_SHARES.values())
    splits, seen = {}, set()
    for split in SPLITS:
        rng = random.Random(f"fireflan-dbworld-{config.seed}-{split}")
        want = getattr(config, split)
        records, tries = [], 0
        while len(records) < want:
            tries += 1
            if tries > 50 * want + 100:
                raise RuntimeError(f"could not make {want} distinct {split} DB tasks; lower the number")
            table = rng.choice(TABLES)
            pool = sorted((e for e in groups[split] if e.kind == table.kind), key=lambda e: e.name)
            if len(pool) < config.min_rows + 1:
                continue
            n = rng.randint(config.min_rows, min(config.max_rows, len(pool) - 1))
            chosen = rng.sample(pool, n + 1)
            rows = [row_of(table, e, config.seed) for e in chosen[:n]]
            task = _task(rng.choices(kinds, shares)[0], table, rows, row_of(table, chosen[n], config.seed), rng)
            if task is None or task.description in seen:
                continue
            rec = _record(task, table, rows, f"dbworld-{config.seed}-{split}-{len(records):05d}",
                          f"fireflan-world-{config.seed}")
            if rec is not None:
                seen.add(task.description)
                records.append(rec)
        splits[split] = records
    return splits


def write_dbtasks(config: DBWorldConfig, out) -> dict[str, int]:
    """Generate the DB tasks and write OUT/{train,dev,test}.jsonl."""
    from fireflan.io import write_jsonl

    out = Path(out)
    splits = generate_dbtasks(config)
    return {name: write_jsonl(out / f"{name}.jsonl", records) for name, records in splits.items()}
