"""AgentBench DB: the loader, the sqlite environment and its guards, scoring, the generator, the
scripted expert, and teach / corpus / evaluate with --task dbbench."""

import hashlib
import json
import random
import re
import time
from collections import Counter

import pytest
from helpers import run_cli, shared

from fireflan.agent.loop import AgentConfig, run_episode
from fireflan.corpus.format import trajectory_record
from fireflan.io import DataError
from fireflan.models.fake import BatchReplayModel, ReplayModel
from fireflan.models.scripted import ScriptedExpert, answer_from_observation, split_values, sql_mistake, unquoted
from fireflan.tasks import bind, dbbench, get_task, open_task
from fireflan.tasks.dbbench import answers_match, check_reference, example_from_record, parse_answer
from fireflan.tools.sql import STATEMENT_TYPES, SqlEnv, SqlTool, affinity, answers_from_rows, content_hash
from fireflan.worlds.db import DBWorldConfig, generate_dbtasks, qualified_name, write_dbtasks

DEV = "agentbench_dbbench_dev.jsonl"

TABLE = {"table_name": "Film Catalogue", "table_info": {
    "columns": [{"name": "Title", "type": "TEXT"}, {"name": "Release year", "type": "INTEGER"},
                {"name": "Director", "type": "TEXT"}],
    "rows": [["Velmora", 1987, "Aldo Brenik"], ["The Glass Harbor", 2001, "Sena Drou"],
             ["Return to Kest", 1994, "Aldo Brenik"]]}}


def _record(**overrides):
    rec = {"description": "Who directed Velmora?", "label": ["Aldo Brenik"], "table": TABLE, "type": ["other"],
           "sql": {"query": "SELECT `Director` FROM `Film Catalogue` WHERE `Title` = 'Velmora'"}}
    return {**rec, **overrides}


def _statement(sql, kind="UPDATE"):
    """A statement task whose expected hash is the table after `sql`."""
    env = SqlEnv(TABLE)
    env.execute(sql)
    rec = _record(type=[kind], label=[sql], answer_md5=f"[('{env.table_hash()}',)]", description="Change it.")
    rec.pop("sql")
    return example_from_record(rec, "inline", 1, "s1")


@pytest.fixture(scope="module")
def small_tasks(tmp_path_factory):
    """Generated DB tasks on disk (seed 3): 80 train, 30 dev, 30 test."""
    out = tmp_path_factory.mktemp("dbworld")
    write_dbtasks(DBWorldConfig(seed=3, train=80, dev=30, test=30), out)
    return out


# --------------------------------------------------------------------------- the shared dev file

def test_every_shared_dev_record_loads():
    path = shared(DEV)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    examples = dbbench.load(path)
    assert len(examples) == len(lines) == 60
    for ex in examples:
        assert ex.task == "dbbench" and ex.table["table_info"]["rows"] and "headers of this table" in ex.question
        if ex.type in STATEMENT_TYPES:
            assert len(ex.answer_md5) > 32 and ex.sql.split()[0].upper() == ex.type
        else:
            assert ex.labels and ex.answer
    assert Counter(ex.type in STATEMENT_TYPES for ex in examples) == {True: 40, False: 20}


def test_reference_solutions_reproduce_the_expected_answers():
    """Every INSERT/UPDATE gives the record's table hash; a query's own `sql` often is no solution of it
    (written for MySQL, or wrong), so those that do not reproduce their label cannot be checked."""
    examples = dbbench.load(shared(DEV))
    results = [(ex, *check_reference(ex)) for ex in examples]
    statements = [(ex, ok) for ex, ok, _ in results if ex.type in STATEMENT_TYPES]
    queries = [(ex, ok, why) for ex, ok, why in results if ex.type not in STATEMENT_TYPES]
    assert all(ok for _, ok in statements) and len(statements) == 40
    reproduced = sum(ok is True for _, ok, _ in queries)
    unchecked = [(ex.id, why) for ex, ok, why in queries if not ok]
    print(f"\nreference solutions: {sum(ok for _, ok in statements)}/40 statements reproduce answer_md5; "
          f"{reproduced}/20 queries reproduce their label; {len(unchecked)} cannot be checked:")
    for ex_id, why in unchecked:
        print(f"  {ex_id}: {why[:110]}")
    assert reproduced >= 4 and reproduced + len(unchecked) == 20


def test_the_expected_hash_is_not_the_unchanged_table():
    for ex in dbbench.load(shared(DEV)):
        if ex.type in STATEMENT_TYPES:
            assert dbbench.score("", ex, SqlEnv(ex.table).table_hash())["em"] == 0.0


# --------------------------------------------------------------------------- loading

def test_bad_records_name_the_file_line_and_field(tmp_path):
    bad_row = _record(table={"table_name": "T", "table_info": {"columns": [{"name": "a"}], "rows": [[1, 2]]}})
    cases = [(bad_row, "field 'table.table_info.rows'"), ({**_record(), "type": ["JOIN"]}, "field 'type'"),
             ({k: v for k, v in _record().items() if k != "description"}, "field 'description'"),
             (_record(type=["UPDATE"], answer_md5="abc"), "field 'answer_md5'")]
    for rec, field in cases:
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(_record()) + "\n" + json.dumps(rec) + "\n")
        with pytest.raises(DataError, match=rf"bad.jsonl:2: {field}"):
            dbbench.load(path)


def test_world_records_keep_their_shape():
    ex = get_task("world").load(None, split="dev", n=1)[0]
    assert not {"table", "labels", "answer_md5", "sql"} & set(ex.to_record())
    assert example_from_record(_record(), "x", 1, "a").to_record()["labels"] == ["Aldo Brenik"]


# --------------------------------------------------------------------------- the environment

def test_execute_shows_rows_changes_and_errors():
    env = SqlEnv(TABLE)
    assert env.step("execute", "SELECT `Title` FROM `Film Catalogue` WHERE `Release year` > 1990").text == \
        "[('The Glass Harbor',), ('Return to Kest',)]"
    assert env.execute("SELECT COUNT(*) FROM `Film Catalogue` WHERE Director = 'aldo brenik'") == "[(2,)]"  # NOCASE
    assert env.execute("UPDATE `Film Catalogue` SET `Release year` = 1 WHERE Director = 'Aldo Brenik'") == \
        "Query OK, 2 rows affected."
    assert env.execute("```sql SELECT 1 ```").endswith("syntax error")  # step() strips Markdown fences
    assert env.step("execute", "```sql SELECT 1 ```").text == "[(1,)]"
    assert env.step("search", "x").text.startswith("Unknown action 'search'")
    assert env.step("execute", "  ").text.startswith("execute needs one SQL statement")
    done = env.step("finish", "done")
    assert done.done and done.answer == "done"
    assert affinity("INT") == "INTEGER" and affinity("DECIMAL") == "REAL" and affinity("DATE").startswith("TEXT")


def test_malicious_and_broken_sql_are_observations(tmp_path):
    """ATTACH, VACUUM INTO, extensions, settings, huge values, two statements, bad syntax: each an
    'Error: ...' observation, nothing written to disk, the database intact."""
    env = SqlEnv(TABLE)
    evil = tmp_path / "evil.db"
    cases = {f"ATTACH DATABASE '{evil}' AS evil": "not authorized",
             f"VACUUM INTO '{evil}'": "authorization denied",
             "SELECT load_extension('/tmp/x.so')": "not authorized to use function: load_extension",
             "PRAGMA writable_schema = 1": "not authorized",
             "PRAGMA main.max_page_count = 99999999": "not authorized",
             "SELECT zeroblob(1000000000)": "string or blob too big",
             "SELECT readfile('/etc/passwd')": "no such function: readfile",
             "SELECT 1; DROP TABLE `Film Catalogue`": "one statement at a time",
             "SELEC * FROM `Film Catalogue`": "syntax error",
             "SELECT * FROM Film Catalogue": "no such table: Film",
             "SELECT ?": "Incorrect number of bindings"}
    for sql, error in cases.items():
        text = env.step("execute", sql).text
        assert text.startswith("Error: ") and error in text, (sql, text)
        env.rounds = 0
    assert not evil.exists()
    assert env.execute("PRAGMA table_info(`Film Catalogue`)").startswith("[(0, 'Title', 'TEXT'")
    assert env.execute("SELECT COUNT(*) FROM `Film Catalogue`") == "[(3,)]"


def test_runaway_statements_are_stopped_within_the_time_budget():
    """A 10-million-row recursive CTE, cross joins of 10^12 and 3^20 rows, an endless CTE, a table of
    10^8 rows: each ends as an observation in about the budget (1 s); the database still answers."""
    env = SqlEnv(TABLE, max_rounds=10)
    t = "`Film Catalogue`"
    runaway = ["WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10000000) SELECT COUNT(*) FROM n",
               "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n LIMIT 10000) "
               "SELECT COUNT(*) FROM n a, n b, n c",
               "SELECT * FROM " + ", ".join(f"{t} t{i}" for i in range(20)) + " ORDER BY random() LIMIT 1",
               "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT MAX(x) FROM n",
               "CREATE TABLE big AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
               "LIMIT 100000000) SELECT x, randomblob(1000) FROM n"]
    for sql in runaway:
        started = time.perf_counter()
        text = env.step("execute", sql).text
        took = time.perf_counter() - started
        print(f"\n{took:.2f} s: {sql[:60]}... -> {text[:70]}")
        assert text.startswith("Error: ") and took < 2.5, (sql, text, took)
    assert env.execute("SELECT COUNT(*) FROM `Film Catalogue`") == "[(3,)]"
    # an endless result is cut at max_rows rows without running to the end
    assert "only the first 50 rows" in env.execute("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 "
                                                   "FROM n) SELECT x FROM n")


def test_round_limit_and_state_restore():
    env = SqlEnv(TABLE, max_rounds=2)
    saved = env.state()
    assert env.step("execute", "DELETE FROM `Film Catalogue`").text == "Query OK, 3 rows affected."
    assert env.table_hash() is None  # an empty table: MySQL's md5 of NULL
    env.step("execute", "SELECT 1")
    assert "limit of 2 statements" in env.step("execute", "SELECT 1").text
    assert env.step("finish", "done").done
    env.restore(saved)
    assert env.rounds == 0 and env.execute("SELECT COUNT(*) FROM `Film Catalogue`") == "[(3,)]"
    assert env.execute("PRAGMA main.max_page_count").startswith("Error")  # the guards survive a restore
    assert "capped in size" in env.execute("CREATE TABLE big AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL "
                                           "SELECT x + 1 FROM n LIMIT 1000000) SELECT randomblob(1000) FROM n")
    env.reset()
    assert env.rounds == 0 and env.table_hash() == SqlEnv(TABLE).table_hash()


# --------------------------------------------------------------------------- scoring

def test_answers_are_read_and_compared_as_agentbench_does():
    assert parse_answer('["A", "B"]') == ["A", "B"] and parse_answer("1, 2") == ["1", "2"]
    assert parse_answer("Paris, France") == ["Paris, France"] and parse_answer(" 7 ") == ["7"]
    assert parse_answer("__import__('os')") == ["__import__('os')"]  # read, never evaluated
    assert answers_from_rows([(3,)]) == ["3"] and answers_from_rows([]) == ["none"]
    assert answers_from_rows([(None,)]) == ["none"] and answers_from_rows([("a",), ("b",)]) == ["a", "b"]
    assert answers_match(["1"], ["1.0"]) and answers_match(["b", "a"], ["a", "b"])
    assert answers_match(["Velmora"], ["velmora "]) and answers_match(["NULL"], ["none"])
    assert not answers_match(["a"], ["a", "b"]) and not answers_match(["2"], ["2.5"])


def test_query_and_statement_scores():
    ex = example_from_record(_record(label=["Velmora", "Return to Kest"], type=["comparison"]), "x", 1, "q")
    assert dbbench.score('["Return to Kest", "Velmora"]', ex) == {"em": 1.0, "f1": 1.0}
    assert dbbench.score("Velmora", ex) == {"em": 0.0, "f1": pytest.approx(2 / 3)}
    right = "UPDATE `Film Catalogue` SET `Director` = 'Sena Drou' WHERE `Title` = 'Velmora'"
    ex = _statement(right)
    env, score = bind(get_task("dbbench"), SqlTool(), ex)
    assert score("done")["em"] == 0.0  # nothing done yet
    env.execute(right)
    assert score("anything") == {"em": 1.0, "f1": 1.0}
    env.reset()
    env.execute(right.replace("Sena Drou", "Sena Drau"))
    assert score("done")["em"] == 0.0
    assert content_hash([("a", 1)]) == hashlib.md5(hashlib.md5(b"a,1").hexdigest()[:5].encode()).hexdigest()


def test_branches_keep_one_database_each():
    """Side-by-side branches swap databases through state()/restore(): a wrong UPDATE in one branch
    does not leak into the others, and each is scored on its own table."""
    from fireflan.agent.methods import run_branches

    right = "UPDATE `Film Catalogue` SET `Director` = 'Sena Drou' WHERE `Title` = 'Velmora'"
    ex = _statement(right)
    env, score = bind(get_task("dbbench"), SqlTool(), ex)
    wrong = right.replace("Velmora", "Return to Kest")
    model = BatchReplayModel([f"Thought: a\nAction: execute[{right}]", f"Thought: b\nAction: execute[{wrong}]",
                              f"Thought: c\nAction: execute[{right}]"] + ["Thought: d\nAction: finish[done]"] * 3)
    traj = run_branches(model, env, ex, k=3, score=score, early_stop=False)
    assert model.batches == [3, 3] and traj.extra["sampled"] == 3
    assert traj.success and traj.score["em"] == 1.0


# --------------------------------------------------------------------------- the generator

def test_generator_is_deterministic_with_disjoint_splits():
    config = DBWorldConfig(seed=3, train=80, dev=30, test=30)
    splits = generate_dbtasks(config)
    assert splits == generate_dbtasks(config) and splits != generate_dbtasks(DBWorldConfig(seed=4, train=80))
    assert {k: len(v) for k, v in splits.items()} == {"train": 80, "dev": 30, "test": 30}
    questions = {s: {r["description"] for r in recs} for s, recs in splits.items()}
    assert not (questions["train"] & questions["dev"] or questions["train"] & questions["test"]
                or questions["dev"] & questions["test"])
    keys = {s: {row[0] for r in recs if r["source"].startswith("fireflan-world")  # the world's entities
                for row in r["table"]["table_info"]["rows"]} for s, recs in splits.items()}
    assert keys["train"] and not keys["train"] & keys["test"] and not keys["train"] & keys["dev"]
    types = Counter(r["type"][0] for r in splits["train"])
    assert set(types) >= {"other", "counting", "comparison", "ranking", "INSERT", "UPDATE"}
    assert 0.5 <= (types["INSERT"] + types["UPDATE"]) / 80 <= 0.8  # AgentBench's dev set: 2/3 statements
    lists = [r for r in splits["train"] if r["source"].startswith("fireflan-lists")]
    assert len(lists) >= 40 and all(c["type"] == "TEXT" for r in lists for c in r["table"]["table_info"]["columns"])
    assert any(" " in c["name"] or "(" in c["name"] for r in lists for c in r["table"]["table_info"]["columns"])
    assert any(t.startswith("aggregation") for t in types)
    words = Counter(min(len(r["table"]["table_name"].replace("_", " ").split()), 3) for r in lists)
    assert words[3] >= len(lists) // 5, words  # a season, years or place in the name, as half of AgentBench's
    for split, recs in splits.items():
        for i, rec in enumerate(recs):
            ex = example_from_record(rec, split, i, "x")
            assert check_reference(ex)[0] is True, (rec["description"], rec["label"])
            assert set(rec) >= {"description", "label", "table", "type", "heads", "add_description", "create"}


def test_scripted_expert_solves_every_generated_task(small_tasks):
    task = get_task("dbbench")
    for split in ("train", "test"):
        examples = task.load(small_tasks, split=split)
        for method in ("react", "reflexion"):
            expert = ScriptedExpert(examples, method=method, seed=1, lookup_share=0.3)
            for ex in examples:
                env, score = bind(task, SqlTool(), ex)
                traj = run_episode(expert, env, ex, method=method, config=AgentConfig(), score=score,
                                   judge=lambda a, _messages, score=score: score(a)["em"] == 1.0)
                assert traj.success, (method, ex.question, [s.raw for s in traj.steps])
                spaced = any(" " in name for name in re.findall(r"`([^`]*)`", ex.sql))
                if method == "reflexion" and spaced:  # unquoted, such names fail: the mistake it reflects on
                    assert traj.steps[0].observation.startswith("Error") and "Reflection:" in traj.steps[1].thought


def test_qualified_names_keep_the_name_and_its_style():
    forms = {qualified_name("Football Standings", random.Random(seed), share=1.0) for seed in range(60)}
    assert all("Football Standings" in f and f != "Football Standings" for f in forms) and len(forms) > 20
    assert any(re.fullmatch(r"Football Standings \d{4}–\d{2}", f) for f in forms)
    snake = {qualified_name("football_standings", random.Random(seed), share=1.0) for seed in range(30)}
    assert all(" " not in f and "football_standings" in f for f in snake)
    assert qualified_name("Medal Tally", random.Random(0), share=0.0) == "Medal Tally"


def test_sql_mistakes_are_the_ones_small_models_make():
    heads = ["Position", "Club", "Games played", "Floors", "Area (km²)", "Reigns:"]
    sql = ("INSERT INTO `Football Standings` (`Position`, `Club`, `Games played`) "
           "VALUES ('10', 'St Kest''s Rovers', 18)")
    made = {}
    for seed in range(200):
        wrong, kind, fix = sql_mistake(sql, "Football Standings", heads, random.Random(seed))
        made.setdefault(kind, set()).add((wrong, tuple(sorted(fix.items()))))
    assert made["table"] == {(sql.replace("`Football Standings`", "`Football`"), (("bad", "`Football`"),))}
    columns = {wrong: dict(fix) for wrong, fix in made["column"]}
    for bad, good in [("Games_played", "Games played"), ("Games", "Games played"), ("Positions", "Position"),
                      ("Clubs", "Club")]:
        assert columns[sql.replace(f"`{good}`", f"`{bad}`", 1)] == {"bad": f"`{bad}`", "good": f"`{good}`"}
    assert made["quote"] == {(sql.replace("'St Kest''s Rovers'", "'St Kest's Rovers'"),
                              (("bad", "'St Kest's Rovers'"), ("good", "'St Kest''s Rovers'")))}
    assert {split_values(w.split("VALUES (")[1][:-1])[0] for w, _ in made["value"]} == {"'10'", "'St Kest''s Rovers'"}
    # a header guessed in the other number, cut before its brackets or colon (AgentBench: Floor, Area, Reigns)
    for name, guess in [("Floors", "Floor"), ("Area (km²)", "Area"), ("Reigns:", "Reigns")]:
        query = f"SELECT `{name}` FROM `T`"
        guesses = {sql_mistake(query, "T", heads, random.Random(seed))[0] for seed in range(30)}
        assert f"SELECT `{guess}` FROM `T`" in guesses, guesses
    # nothing to get wrong: a one-word table with one-word headers that have no other number, and no INSERT
    assert sql_mistake("SELECT `Class` FROM `episodes`", "episodes", ["Class"], random.Random(0)) is None
    assert split_values("'a, b', 3, 'it''s'") == ["'a, b'", "3", "'it''s'"]


def _mistake_kind(error: str) -> str:
    if error.startswith("no such table"):
        return "table"
    if error.startswith("no such column") or "has no column named" in error:
        return "column"
    if re.fullmatch(r"\d+ values for \d+ columns", error):
        return "value"
    return "quote" if error.endswith("syntax error") else error


def test_the_expert_recovers_from_its_mistakes_and_never_trains_on_them(small_tasks):
    task = get_task("dbbench")
    examples = task.load(small_tasks, split="train")
    expert = ScriptedExpert(examples, method="react", seed=1, lookup_share=0.0, mistake_share=1.0)
    kinds = Counter()
    for ex in examples:
        env, score = bind(task, SqlTool(), ex)
        traj = run_episode(expert, env, ex, method="react", config=AgentConfig(), score=score)
        assert traj.success, (ex.question, [s.raw for s in traj.steps])
        reference = ex.sql.replace("\n", " ").strip()
        first = traj.steps[0]
        if first.observation.startswith("Error:"):  # the mistake failed (so it changed nothing); then the fix
            kinds[_mistake_kind(first.observation.removeprefix("Error: "))] += 1
            assert traj.steps[1].argument == reference
            assert traj.steps[1].thought.startswith(("The error says", "It failed ("))
            flags = [m["loss"] for m in trajectory_record(traj)["messages"] if m["role"] == "assistant"]
            assert flags == [False] + [True] * (len(traj.steps) - 1)
        else:  # nothing in this SQL to get wrong
            assert first.argument == reference and sql_mistake(reference, ex.table["table_name"], [
                c["name"] for c in ex.table["table_info"]["columns"]], random.Random(0)) is None
    assert set(kinds) == {"table", "column", "value", "quote"} and sum(kinds.values()) >= len(examples) // 2, kinds


def test_expert_helpers():
    assert unquoted("SELECT `Home city` FROM `Band Directory`") == "SELECT Home city FROM Band Directory"
    assert answer_from_observation("[('Velmora',)]") == "Velmora"
    assert answer_from_observation("[(3,), (5,)]") == '["3", "5"]'
    assert answer_from_observation("Error: no such table: x") is None


def test_open_task_and_few_shot_prompt(small_tasks):
    from fireflan.agent.prompts import few_shot_prefix

    task, examples, tool = open_task("dbbench", str(small_tasks), "dev", 5)
    assert task.NAME == "dbbench" and len(examples) == 5 and isinstance(tool, SqlTool)
    assert len(open_task("dbbench", None, "test", 3)[1]) == 3  # the generated tasks of the default seed
    text = few_shot_prefix("react", 3, "dbbench")[0]["content"]
    assert "execute[SQL]" in text and text.count("Question: ") == 3 and "Action: execute[UPDATE" in text
    assert "execute[" not in few_shot_prefix("cot", 3, "dbbench")[0]["content"]


# --------------------------------------------------------------------------- the stages

def test_teach_corpus_and_a_mix_with_the_world_through_the_cli(small_tasks, small_world, tmp_path):
    out = json.loads(run_cli("teach", "--task", "dbbench", "--data", small_tasks, "--out", tmp_path / "db",
                             "--limit", "40").stdout.splitlines()[-1])
    assert out["success"] == out["trajectories"] >= 40 and set(out["methods"]) == {"react", "reflexion"}
    run_cli("teach", "--task", "world", "--data", small_world, "--out", tmp_path / "world", "--limit", "20",
            "--methods", "react")
    inputs = f"{tmp_path / 'db' / 'trajectories.jsonl'},{tmp_path / 'world' / 'trajectories.jsonl'}"
    run_cli("corpus", inputs, "--out", tmp_path / "corpus", "--tasks", "world=0.5,dbbench=0.5",
            "--style", "agentflan", "--capabilities", "format=0.5,retrieval=0.5")
    stats = json.loads((tmp_path / "corpus" / "stats.json").read_text())
    assert stats["task_mix"] == {"dbbench": 0.5, "world": 0.5}
    records = [json.loads(x) for x in (tmp_path / "corpus" / "train.jsonl").read_text().splitlines()]
    db = [r for r in records if r["meta"]["task"] == "dbbench" and r["meta"]["negative"] is None]
    assert db and all("execute[SQL]" in r["messages"][0]["content"] for r in db)
    retrieval = [r for r in db if r["meta"]["capability"] == "retrieval"]
    for r in retrieval:  # SQL turns train, except one whose statement failed (the reflexion's unquoted try)
        turns = r["messages"]
        for i, m in enumerate(turns):
            if m["role"] == "assistant":
                failed = i + 1 < len(turns) and turns[i + 1]["content"].startswith("Observation: Error:")
                assert m["loss"] == ("Action: execute[" in m["content"] and not failed), (m, failed)
    assert retrieval


def test_evaluate_writes_metrics_per_type(small_tasks, tmp_path):
    from fireflan.evaluate import EvalConfig, evaluate

    examples = get_task("dbbench").load(small_tasks, split="test")
    config = EvalConfig(out=str(tmp_path / "expert"), task="dbbench", data=str(small_tasks), limit=12)
    metrics = evaluate(config, model=ScriptedExpert(examples))
    assert metrics["questions"] == 12 and metrics["em"] == 1.0 and metrics["dbbench"]["overall_cat_accuracy"] == 1.0
    assert sum(metrics["dbbench"]["count_by_type"].values()) >= 12

    # a model that writes malicious and broken SQL: observations, a finished evaluation, no crash
    bad = ["Thought: a\nAction: execute[ATTACH DATABASE '/tmp/fireflan-evil.db' AS e]",
           "Thought: b\nAction: execute[WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
           "SELECT COUNT(*) FROM n]",
           "Thought: c\nAction: execute[SELEC oops]", "Thought: d\nAction: finish[42]"]
    model = ReplayModel(bad * 2)
    started = time.perf_counter()
    metrics = evaluate(EvalConfig(out=str(tmp_path / "bad"), task="dbbench", data=str(small_tasks), limit=2),
                       model=model)
    assert metrics["questions"] == 2 and metrics["turns"] == 4.0 and time.perf_counter() - started < 10
    steps = [json.loads(x)["steps"] for x in (tmp_path / "bad" / "trajectories.jsonl").read_text().splitlines()]
    assert all(s[i]["observation"].startswith("Error: ") for s in steps for i in range(3))
    with pytest.raises(ValueError, match="--noise and --constrain"):
        evaluate(EvalConfig(out=str(tmp_path / "noise"), task="dbbench", data=str(small_tasks), noise=0.5),
                 model=model)
