"""Hostile input, generated (hypothesis): the action parser, the JSON/JSONL readers, the scoring
normaliser and the SQL sandbox never fail in any way but the one they name."""

import os
import re
import time

import pytest

hypothesis = pytest.importorskip("hypothesis", reason="hypothesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fireflan.io import DataError, iter_jsonl, read_records, resumable_records  # noqa: E402
from fireflan.tasks.score import read_predictions, score_one  # noqa: E402
from fireflan.tasks.scoring import normalize_answer  # noqa: E402
from fireflan.tools.actions import ACTION_NAMES, parse_action  # noqa: E402
from fireflan.tools.sql import MAX_CHARS, TIME_LIMIT_S, SqlEnv  # noqa: E402

FRAGMENTS = st.sampled_from(["Thought:", "Action:", "action :", "search", "Search", "lookup", "finish", "execute",
                             "[", "]", "[[", "]]", "\n", " ", "Observation:", "x", "Ünïcode", "\x00", "\r\n", "…"])
MODEL_TEXT = st.one_of(st.text(max_size=300), st.lists(FRAGMENTS, max_size=40).map("".join))
FILES = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSONISH = st.one_of(st.binary(max_size=400), st.lists(st.sampled_from(
    [b"{", b"}", b"[", b"]", b'"_id"', b'"answer"', b":", b",", b"1", b'"x"', b"\n", b"\xff", b"\xc3", b"null",
     b'{"_id": "a", "answer": "b"}\n', b"\\u0000", b" "]), max_size=40).map(b"".join))


@settings(max_examples=300, deadline=None)
@given(MODEL_TEXT)
def test_the_action_parser_reads_anything_a_model_writes(text):
    parsed = parse_action(text)
    assert isinstance(parsed.thought, str)
    if parsed.ok:  # a name of the model's making is read as written; the tool answers "Unknown action"
        assert re.fullmatch(r"[a-z_]\w*", parsed.action) and isinstance(parsed.argument, str)
        assert "\n" not in parsed.argument and parsed.argument == parsed.argument.strip()
        if parsed.action not in ACTION_NAMES:
            assert re.search(r"action(\s*\d+)?\s*:", text, re.IGNORECASE)  # only an "Action:" line reads any name
    else:
        assert parsed.action is None and parsed.error.startswith("Invalid action")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.text(max_size=200))
def test_scoring_takes_any_text(prediction, gold):
    norm = normalize_answer(prediction)
    assert normalize_answer(norm) == norm  # normalising twice changes nothing
    for task in ("hotpotqa", "world", "mmlu", "bamboogle"):
        result = score_one(prediction, gold, task)
        assert result["em"] in (0.0, 1.0) and 0.0 <= result.get("f1", result["em"]) <= 1.0
    assert score_one(prediction, prediction, "hotpotqa")["em"] == 1.0
    try:
        assert score_one(prediction, gold, "strategyqa")["em"] in (0.0, 1.0)
    except ValueError as e:  # a gold answer that is not yes/no is named
        assert "StrategyQA gold answer" in str(e)


@FILES
@given(JSONISH, st.sampled_from(["data.jsonl", "data.json"]))
def test_readers_fail_only_with_a_data_error_naming_the_file(tmp_path, raw, name):
    path = tmp_path / name
    path.write_bytes(raw)
    for read in (lambda p: list(iter_jsonl(p)), lambda p: list(read_records(p)), read_predictions):
        try:
            read(path)
        except DataError as e:
            assert str(e).startswith(str(path))


@FILES
@given(JSONISH)
def test_a_resumed_file_keeps_its_whole_records_or_names_the_bad_line(tmp_path, raw):
    path = tmp_path / "trajectories.jsonl"
    path.write_bytes(raw)
    try:
        records = resumable_records(path)
    except DataError as e:
        assert str(e).startswith(f"{path}:")
        return
    assert all(isinstance(r, dict) for r in records)
    assert path.read_bytes() == raw[:len(path.read_bytes())]  # at most a torn last line was cut


TABLE = {"table_name": "t", "table_info": {"columns": [{"name": "a", "type": "INT"}, {"name": "b", "type": "TEXT"}],
                                           "rows": [[1, "x"], [2, "y"]]}}
HOSTILE = st.sampled_from([
    "ATTACH DATABASE '{d}/x.db' AS x", "VACUUM INTO '{d}/y.db'", "SELECT load_extension('{d}/z')",
    "PRAGMA writable_schema = 1", "PRAGMA main.max_page_count = 99999999", "PRAGMA temp_store_directory = '{d}'",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT count(*) FROM r",
    "SELECT randomblob(1000000000)", "SELECT zeroblob(2000000)", "SELECT printf('%.*c', 100000000, 'x')",
    "INSERT INTO t SELECT a + 1, b FROM t", "CREATE TABLE u AS SELECT * FROM t",
    "CREATE VIRTUAL TABLE v USING fts5(c)", "DROP TABLE t", "DELETE FROM t", "SELECT * FROM t",
    "SELECT 99999999999999999999999", "SELECT '\x00'", "SELECT * FROM sqlite_master", "BEGIN", "COMMIT",
    "SELECT edit('x')", "SELECT readfile('/etc/passwd')", "SELECT writefile('{d}/w', 'x')",
    "INSERT INTO t VALUES (3, 'z'); DROP TABLE t", "SELECT", ";", "'", "\"", "--", "/*",
])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(HOSTILE, st.text(max_size=80)), min_size=1, max_size=8))
def test_the_sql_sandbox_takes_any_stream_of_statements(tmp_path, statements):
    env = SqlEnv(TABLE, max_rounds=len(statements))
    before = set(os.listdir(tmp_path))
    for sql in statements:
        started = time.perf_counter()
        obs = env.step("execute", sql.format(d=tmp_path) if "{d}" in sql else sql)
        assert time.perf_counter() - started < TIME_LIMIT_S + 2.0
        assert isinstance(obs.text, str) and len(obs.text) <= MAX_CHARS + 200 and not obs.done
    assert set(os.listdir(tmp_path)) == before  # nothing written outside the in-memory database
    state = env.state()
    env.restore(state)
    assert "1" in env.execute("SELECT 1") and not env.execute("SELECT 1").startswith("Error")  # still usable


WORDS = st.sampled_from(["--seed", "--train", "--dev", "--test", "--paragraphs", "--notool_share", "--notool-share",
                         "--comparison_share", "--out", "--seed=2", "--test=3", "--zz", "-s", "-h2", "--no", "--noout",
                         "p", "--", "0", "1", "3", "-1", "abc", "0.5", "1.5", "x y", "[]", "None", "True", "é",
                         "{}", "w/x"])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(WORDS, max_size=8), st.lists(st.tuples(  # mostly --option value: more runs end well
    st.sampled_from(["--seed", "--test", "--paragraphs", "--notool_share", "--comparison-share", "--out"]),
    st.sampled_from(["0", "1", "2", "0.5", "-1", "1.5", "w"])), max_size=3).map(lambda pairs: sum(pairs, ()))))
def test_any_argument_list_is_refused_before_a_file_is_written_or_runs_to_the_end(tmp_path_factory, capsys, words):
    words = list(words)
    """`fireflan world` (small sizes first, then anything): either one line `fireflan: error: ...`, exit 2 and no
    file written, or a whole world written."""
    import contextlib

    from fireflan.cli import main

    folder = tmp_path_factory.mktemp("cwd")
    argv = ["world", "--train", "4", "--dev", "2", "--test", "2", *words]
    with contextlib.chdir(folder):
        try:
            main(argv)
            code = 0
        except SystemExit as stop:
            code = stop.code
    said = capsys.readouterr().err
    event(f"exit {code}")
    written = [p for p in folder.rglob("*") if p.is_file()]
    if code == 0:
        made = {p.name for p in written}
        assert {"train.jsonl", "dev.jsonl", "test.jsonl", "corpus.jsonl"} <= made and ".incomplete" not in made, argv
    else:
        assert code == 2 and said.startswith("fireflan: error: ") and said.count("\n") == 1, (argv, said)
        assert written == [], (argv, written)
