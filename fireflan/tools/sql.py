"""The SQL tool of AgentBench DB tasks: one in-memory sqlite database per episode.

- execute[SQL]: runs one statement and returns what a MySQL client would print in AgentBench: the
  rows as a Python list of tuples (`[('Velmora', 1987)]`), `Query OK, 1 row affected.` after a
  change, or `Error: ...`. At most `max_rows` rows are shown and 800 characters (AgentBench's cut).
- finish[A]: ends the episode with the answer A (after changing the table, any text: `finish[done]`).

Whatever a model writes is an observation, never a crash or a hang: a statement runs under a time
budget (a progress handler interrupts it), in a database capped in size, with no file access
(ATTACH, VACUUM INTO and most pragmas are denied by an authorizer, load_extension too) and one
statement per action. After `max_rounds` statements (AgentBench: 5) only finish[...] is accepted.

The table is built from the task's record: columns get the sqlite affinity of their declared type
(INT -> INTEGER, FLOAT/DECIMAL -> REAL, else TEXT with case-insensitive comparison, as MySQL's
default collation), so `WHERE Year > 1990` and `MAX(Population)` compare numbers.

    tool = SqlTool()
    env = tool.for_example(example)       # the question's own database
    env.step("execute", "SELECT COUNT(*) FROM `Film Catalogue`").text  # '[(9,)]'
    env.table_hash()                      # AgentBench's md5 of the table's content
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import time

from fireflan.tools.base import Observation

STATEMENT_TYPES = ("INSERT", "UPDATE", "DELETE")  # AgentBench's kinds scored on the table they leave
MAX_ROUNDS = 5  # statements per episode (AgentBench's max_round)
TIME_LIMIT_S = 1.0  # per statement
MAX_ROWS = 50  # rows shown of a result
MAX_CHARS = 800  # characters shown of an observation (AgentBench cuts there too)
MAX_PAGES = 10_000  # database size cap: 10k pages of 4 KiB = 40 MiB
MAX_VALUE_BYTES = 1_000_000  # the longest string or blob a statement may make
READ_ONLY_PRAGMAS = ("table_info", "table_xinfo", "index_list", "index_info")
DENIED_FUNCTIONS = ("load_extension", "readfile", "writefile", "edit", "fts3_tokenizer")
_DENIED_ACTIONS = (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_CREATE_VTABLE,
                   sqlite3.SQLITE_DROP_VTABLE)


def quote(name: str) -> str:
    """An identifier as sqlite reads it. 'Home city' -> '"Home city"'"""
    return '"' + name.replace('"', '""') + '"'


def affinity(declared: str) -> str:
    """The sqlite column type of a declared type. 'INT' -> 'INTEGER'; 'DECIMAL' -> 'REAL'; 'DATE' -> 'TEXT'"""
    t = declared.strip().upper()
    if "INT" in t:
        return "INTEGER"
    if any(k in t for k in ("REAL", "FLOA", "DOUB", "DEC", "NUMERIC")):
        return "REAL"
    return "TEXT COLLATE NOCASE"


def as_text(value) -> str | None:
    """A value as MySQL's CONCAT_WS reads it. 7 -> '7'; 2.5 -> '2.5'; 2011.0 -> '2011'; None -> None"""
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value).removesuffix(".0")
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def content_hash(rows) -> str | None:
    """AgentBench's hash of a table: md5 of the sorted, comma-joined first 5 hex digits of each row's
    md5 (its non-NULL values joined by ','); None for an empty table (MySQL's md5 of NULL).

    [('a', 1)] -> md5(md5('a,1')[:5])
    """
    digests = sorted(hashlib.md5(",".join(v for v in map(as_text, row) if v is not None).encode()).hexdigest()[:5]
                     for row in rows)
    return hashlib.md5(",".join(digests).encode()).hexdigest() if digests else None


def show(rows: list, more: bool) -> str:
    """Rows as the observation text. ([('a', 1)], False) -> "[('a', 1)]" """
    text = repr([tuple(r) for r in rows])
    if more:
        text += f" ... (only the first {len(rows)} rows are shown)"
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "[TRUNCATED]"


class SqlEnv:
    """One question's database. `reset()` rebuilds it from the table; `state()`/`restore()` snapshot it
    (backtracking and side-by-side branches swap databases through them)."""

    actions = ("execute", "finish")
    pages: list = []  # no wiki pages here (what NoisyTool and negatives read)

    def __init__(self, table: dict, max_rounds: int = MAX_ROUNDS, time_limit: float = TIME_LIMIT_S,
                 max_rows: int = MAX_ROWS):
        self.table, self.name = table, table["table_name"]
        self.columns = table["table_info"]["columns"]
        self.max_rounds, self.time_limit, self.max_rows = max_rounds, time_limit, max_rows
        self.conn: sqlite3.Connection | None = None
        self.reset()

    # -- the database
    def reset(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = sqlite3.connect(":memory:", isolation_level=None)  # autocommit: each statement commits
        self._trusted, self._deadline, self.rounds = True, float("inf"), 0
        cols = ", ".join(f"{quote(c['name'])} {affinity(str(c.get('type', 'TEXT')))}" for c in self.columns)
        self.conn.execute(f"CREATE TABLE {quote(self.name)} ({cols})")
        marks = ", ".join("?" * len(self.columns))
        rows = [[v if v is None or isinstance(v, float) or isinstance(v, int) and abs(v) < 2**63 else str(v)
                 for v in row] for row in self.table["table_info"]["rows"]]
        self.conn.executemany(f"INSERT INTO {quote(self.name)} VALUES ({marks})", rows)
        self.conn.set_authorizer(self._authorize)
        self.conn.set_progress_handler(lambda: time.perf_counter() > self._deadline, 1000)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        self.conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        self._cap_size()

    def _cap_size(self) -> None:
        self._trusted = True
        for db in ("main", "temp"):
            self.conn.execute(f"PRAGMA {db}.max_page_count = {MAX_PAGES}")
        self._trusted = False

    def _authorize(self, action, arg1, arg2, db, trigger) -> int:
        """No files, no extensions, no settings: ATTACH/DETACH (VACUUM INTO attaches), virtual tables,
        load_extension and every pragma but a few that read the schema are denied."""
        if self._trusted:
            return sqlite3.SQLITE_OK
        if action in _DENIED_ACTIONS:
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_PRAGMA and (arg1 not in READ_ONLY_PRAGMAS or db not in (None, "main")):
            return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in DENIED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK

    def run(self, sql: str) -> tuple[list | None, int, bool]:
        """(rows or None for a statement that returns none, rows changed, whether more rows were cut off).
        Raises sqlite3.Error (and ValueError for text sqlite cannot take); the time budget applies."""
        self._deadline = time.perf_counter() + self.time_limit
        cursor = None
        try:
            cursor = self.conn.execute(sql)
            rows = cursor.fetchmany(self.max_rows + 1)
            if cursor.description is None:
                return None, cursor.rowcount, False
            return rows[: self.max_rows], -1, len(rows) > self.max_rows
        finally:
            self._deadline = float("inf")
            if cursor is not None:
                cursor.close()

    def execute(self, sql: str) -> str:
        """Run one statement; its result or its error as text (never raises for the model's SQL)."""
        try:
            rows, changed, more = self.run(sql)
        except sqlite3.Error as e:
            return f"Error: {_explain(e, self.time_limit)}"
        except (ValueError, OverflowError, MemoryError) as e:  # e.g. a NUL character, a huge integer
            return f"Error: {type(e).__name__}: {e}"
        if rows is None:
            return f"Query OK, {changed} row{'s' if changed != 1 else ''} affected." if changed >= 0 else "Query OK."
        return show(rows, more)

    def table_hash(self) -> str | None:
        """AgentBench's md5 of the table as it is now; None when it is empty or gone."""
        cols = ", ".join(quote(c["name"]) for c in self.columns)
        self._trusted = True
        try:
            return content_hash(self.conn.execute(f"SELECT {cols} FROM {quote(self.name)}"))
        except sqlite3.Error:
            return None
        finally:
            self._trusted = False

    def state(self) -> tuple:
        """(the database's bytes, statements run): what an action can change, for backtracking."""
        self._trusted = True  # sqlite reads the pages through a pragma, which the model may not use
        try:
            return self.conn.serialize(), self.rounds
        finally:
            self._trusted = False

    def restore(self, state: tuple) -> None:
        data, rounds = state
        self._trusted = True  # sqlite swaps the database in with an internal ATTACH
        try:
            self.conn.deserialize(data)
        finally:
            self._trusted = False
        self.rounds = rounds
        self._cap_size()  # the size cap belonged to the database that was replaced

    # -- actions
    def step(self, action: str, argument: str) -> Observation:
        if action == "execute":
            sql = _strip_fence(argument or "")
            if not sql:
                return Observation("execute needs one SQL statement: execute[SELECT ...].")
            if self.rounds >= self.max_rounds:
                return Observation(f"The limit of {self.max_rounds} statements is reached: give the answer with "
                                   "finish[...].")
            self.rounds += 1
            return Observation(self.execute(sql))
        if action == "finish":
            return Observation(f"Episode finished with the answer: {argument}", done=True, answer=argument)
        return Observation(f"Unknown action '{action}'. Valid actions: execute[SQL], finish[answer].")


class SqlTool:
    """The tool of a DB task set: each question gets its own `SqlEnv` (`for_example`)."""

    actions = SqlEnv.actions
    pages: list = []

    def __init__(self, max_rounds: int = MAX_ROUNDS, time_limit: float = TIME_LIMIT_S, max_rows: int = MAX_ROWS):
        self.options = {"max_rounds": max_rounds, "time_limit": time_limit, "max_rows": max_rows}

    def for_example(self, example) -> SqlEnv:
        if not example.table:
            raise ValueError(f"question {example.id} has no table: the SQL tool serves AgentBench DB tasks")
        return SqlEnv(example.table, **self.options)


def _strip_fence(sql: str) -> str:
    """'```sql SELECT 1 ```' -> 'SELECT 1' (models trained on Markdown write fences)"""
    return re.sub(r"^```\s*(?:sql)?|```$", "", sql.strip(), flags=re.IGNORECASE).strip()


def _explain(error: sqlite3.Error, limit: float) -> str:
    text = str(error)
    if text == "interrupted":
        return f"the statement ran longer than {limit:g} s and was stopped."
    if text in ("not authorized", "authorization denied") or text.startswith("not authorized"):
        return f"{text} (files, extensions, ATTACH and settings are not available)."
    if text == "database or disk is full":
        return "the database is full (it is capped in size)."
    return text


def answers_from_rows(rows) -> list[str]:
    """A result's values as answers. [(3,)] -> ['3']; [('a',), ('b',)] -> ['a', 'b']; [] or [(None,)] -> ['none']"""
    values = [v for row in rows for v in row]
    if not values or values == [None]:
        return ["none"]
    return ["none" if v is None else str(v) for v in values]
