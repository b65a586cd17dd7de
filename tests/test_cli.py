import json
import subprocess
import sys

import pytest
from helpers import HOTPOT_SAMPLE, ROOT, run_cli, shared


def test_help_is_fast_and_imports_no_heavy_library():
    code = ("import sys, time; t = time.time(); from fireflan.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'trl', 'datasets', 'bm25s', 'llama_cpp')\n"
            "         if m in sys.modules]\n"
            "print('HEAVY', heavy, time.time() - t)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    line = next(x for x in proc.stdout.splitlines() if x.startswith("HEAVY"))
    assert line.startswith("HEAVY []"), line
    shown = proc.stdout + proc.stderr  # fire writes help to stderr when not on a terminal
    assert "world" in shown and "search" in shown and "score" in shown


def test_world_command_writes_the_files(tmp_path):
    out = tmp_path / "w"
    proc = run_cli("world", "--seed", 1, "--train", 40, "--dev", 10, "--test", 12, "--out", out)
    counts = json.loads(proc.stdout)
    assert counts == {"out": str(out), "train": 40, "dev": 10, "test": 12, "corpus": counts["corpus"]}
    assert len((out / "test.jsonl").read_text().splitlines()) == 12
    assert all(set(json.loads(x)) >= {"title", "text"} for x in (out / "corpus.jsonl").read_text().splitlines())


def test_search_command(small_world):
    title = json.loads((small_world / "corpus.jsonl").read_text().splitlines()[5])["title"]
    proc = run_cli("search", title.lower(), "--corpus", small_world)
    assert title in proc.stdout
    proc = run_cli("search", "born in the city", "--corpus", small_world)
    assert "\nSimilar: [" in proc.stdout


def test_search_command_on_official_hotpotqa_json():
    path = shared(HOTPOT_SAMPLE.name)
    proc = run_cli("search", "VIVA Media", "--corpus", path, "--lookup", "founded")
    assert proc.stdout.startswith("VIVA Media GmbH") and "(Result 1 / 1)" in proc.stdout


def test_score_command_with_strings():
    assert json.loads(run_cli("score", "The Beatles", "beatles").stdout) == {"em": 1.0, "f1": 1.0}
    assert json.loads(run_cli("score", "Yes.", "true", "--task", "strategyqa").stdout)["em"] == 1.0
    assert json.loads(run_cli("score", "(C)", "C", "--task", "mmlu").stdout)["em"] == 1.0


def test_score_command_with_files(small_world, tmp_path):
    records = [json.loads(x) for x in (small_world / "test.jsonl").read_text().splitlines()]
    pred = tmp_path / "pred.jsonl"
    lines = [json.dumps({"_id": r["_id"], "answer": r["answer"]}) + "\n" for r in records[:30]]
    pred.write_text("".join(lines) + json.dumps({"_id": "not-a-question", "answer": "x"}) + "\n")
    result = json.loads(run_cli("score", pred, small_world, "--task", "world").stdout)
    assert result == {"n": 60, "em": 0.5, "f1": 0.5, "missing": 30, "unknown": 1}
    pred.write_text("".join(lines) + lines[3])  # a question answered twice: which counts?
    proc = run_cli("score", pred, small_world, "--task", "world", check=False)
    assert proc.returncode == 2 and f"pred.jsonl:31: field '_id': question {records[3]['_id']!r} is answered " \
                                    "twice (first on line 4)" in proc.stderr, proc.stderr
    pred.write_text('{"_id": "q1", "answer": "x"}\n')  # another set's predictions: said, not scored 0
    proc = run_cli("score", pred, small_world, "--task", "world", check=False)
    assert proc.returncode == 2 and "no prediction answers a question of" in proc.stderr, proc.stderr
    official = tmp_path / "pred.json"  # HotpotQA's own prediction format
    data = json.loads(HOTPOT_SAMPLE.read_text()) if HOTPOT_SAMPLE.exists() else None
    if data:
        official.write_text(json.dumps({"answer": {r["_id"]: r["answer"] for r in data}, "sp": {}}))
        assert json.loads(run_cli("score", official, HOTPOT_SAMPLE).stdout)["em"] == 1.0


def test_bad_input_ends_with_a_message_naming_the_file(small_world, tmp_path):
    proc = run_cli("search", "x", "--corpus", tmp_path / "missing.jsonl", check=False)
    assert proc.returncode == 2
    assert "missing.jsonl: no such file" in proc.stderr and "Traceback" not in proc.stderr
    bad = tmp_path / "pred.jsonl"
    bad.write_text('{"_id": "a", "answer": "x"}\n{"answer": "y"}\n')
    proc = run_cli("score", bad, small_world, "--task", "world", check=False)
    assert proc.returncode == 2 and "pred.jsonl:2: field '_id': missing" in proc.stderr


def test_a_missing_model_file_is_named_without_a_traceback(tmp_path):
    proc = run_cli("evaluate", "--model", tmp_path / "nope.gguf", "--task", "world", "--out", tmp_path / "e",
                   check=False)
    assert proc.returncode == 2 and "nope.gguf" in proc.stderr and "Traceback" not in proc.stderr


def test_comma_lists_reach_text_options_as_text(tmp_path):
    """python-fire turns `--methods react,cot` into a tuple; text options take it back as 'react,cot'."""
    proc = run_cli("teach", "--out", tmp_path / "t", "--task", "world", "--methods", "react,cot", "--limit", "10")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary["methods"]) == {"react", "cot"}


def test_files_that_are_not_there_are_errors_never_data(tmp_path):
    """`score p.jsonl h.json` with neither file present once printed {"em": 0.0, ...}: the names scored as answers."""
    proc = run_cli("score", tmp_path / "p.jsonl", tmp_path / "h.json", check=False)
    assert proc.returncode == 2 and "p.jsonl: no such file" in proc.stderr and proc.stdout == ""
    for argv in (("corpus", tmp_path / "none.jsonl", "--out", tmp_path / "c"), ("report", tmp_path / "no-run"),
                 ("evaluate", "--task", "hotpotqa", "--data", tmp_path / "dev.json", "--model", "embedded",
                  "--out", tmp_path / "e")):
        proc = run_cli(*argv, check=False)
        assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr, argv


def test_options_are_checked_against_their_types_in_one_place(tmp_path):
    """python-fire hands `--seed abc` through as text; a stage refuses it, naming the option and the value."""
    from fireflan.options import typed
    from fireflan.worlds.wiki import WorldConfig

    proc = run_cli("world", "--seed", "abc", "--out", tmp_path / "w", check=False)
    assert proc.returncode == 2 and "option --seed must be an integer, got 'abc'" in proc.stderr
    assert not (tmp_path / "w").exists()
    proc = run_cli("teach", "--limit", "1.5", "--out", tmp_path / "t", check=False)
    assert proc.returncode == 2 and "--limit must be an integer (or None), got 1.5" in proc.stderr
    assert typed(WorldConfig, {"seed": 3, "notool_share": 0}) == {"seed": 3, "notool_share": 0.0}
    bad = tmp_path / "r.toml"
    bad.write_text('seed = "zero"\n')
    proc = run_cli("--config", bad, module="fireflan.recipes.hotpotqa", check=False)
    assert proc.returncode == 2 and "r.toml: option --seed must be an integer, got 'zero'" in proc.stderr


def test_an_unknown_flag_is_refused_before_anything_runs(tmp_path):
    """python-fire runs a command without a flag it does not know and complains only when it has finished
    (a whole training at the default steps for `--max-step 100`); fireflan refuses it first, naming the
    flag and the option it most resembles, for the verbs and the recipes alike."""
    proc = run_cli("world", "--sed", "1", "--out", tmp_path / "w", check=False)
    assert proc.returncode == 2 and "unknown option --sed (did you mean --seed?)" in proc.stderr
    assert not (tmp_path / "w").exists()
    proc = run_cli("--max-step", "100", "--out", tmp_path / "r", module="fireflan.recipes.hotpotqa", check=False)
    assert proc.returncode == 2 and "unknown option --max-step (did you mean --max_steps?)" in proc.stderr
    assert not (tmp_path / "r").exists()
    proc = run_cli("world", "--no-tool-share", "0.1", "--out", tmp_path / "n", check=False)
    assert proc.returncode == 2 and "did you mean --notool_share?" in proc.stderr
    proc = run_cli("score", "Paris", "paris", "--task=world")  # known flags, = form, positionals
    assert '"em": 1.0' in proc.stdout


VERBS = {"world": 0, "dbworld": 0, "teach": 0, "corpus": 1, "corpus show": 1, "train": 0, "grpo": 0, "export": 1,
         "evaluate": 0, "improve": 0, "judge": 0, "chat": 0, "serve": 1, "search": 3, "audit": 4, "score": 3,
         "doctor": 0}


RECIPES = sorted(p.stem for p in (ROOT / "fireflan" / "recipes").glob("*.py") if p.stem not in ("__init__", "common"))
BAD = {"positional": "unexpected argument", "short": "option -z: options are written in full",
       "long": "unknown option --zz-top", "bare --": "after `--` only python-fire's", "out is a file": "notes.txt: "}


def _bad_arguments(bad: str, takes: int) -> list[str]:
    return {"positional": [f"p{k}" for k in range(takes + 1)], "short": ["-z", "1"], "long": ["--zz-top", "1"],
            "bare --": ["--", "p"], "out is a file": ["--out", "notes.txt"]}[bad]


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_refuses_a_stray_argument_or_flag_before_anything_is_written(verb, bad, tmp_path, capsys,
                                                                               monkeypatch):
    """python-fire runs a verb with the arguments it can use and complains about the rest afterwards (`teach w1`
    taught the default world, then said `Could not consume arg: w1`); every verb refuses them first, as one line,
    and an --out that is a file is named, not a traceback."""
    import inspect

    from fireflan.cli import CLI, main

    monkeypatch.chdir(tmp_path)  # a verb that ran would write under runs/ here
    (tmp_path / "notes.txt").write_text("mine\n")
    words = verb.split()
    if bad == "out is a file" and "out" not in inspect.signature(getattr(CLI, "_".join(words))).parameters:
        pytest.skip(f"{verb} takes no --out")
    with pytest.raises(SystemExit) as stop:
        main([*words, *_bad_arguments(bad, VERBS[verb])])
    said = capsys.readouterr().err
    assert stop.value.code == 2 and said.startswith("fireflan: error: ") and said.count("\n") == 1, said
    if bad != "out is a file":  # a verb may first refuse a missing input, also by name
        assert BAD[bad] in said, said
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine\n"


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_refuses_bad_arguments_before_anything_is_written(recipe, bad, tmp_path, capsys, monkeypatch):
    import importlib

    from fireflan.recipes.common import launch

    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("mine\n")
    name = f"fireflan.recipes.{recipe}"
    monkeypatch.setattr(sys, "argv", [name, *_bad_arguments(bad, 0)])
    with pytest.raises(SystemExit) as stop:
        launch(importlib.import_module(name).cli, name)
    said = capsys.readouterr().err
    assert stop.value.code == 2 and said.startswith(f"{name}: error: ") and said.count("\n") == 1, said
    assert BAD[bad] in said, said
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"] and (tmp_path / "notes.txt").read_text() == "mine\n"


def test_short_flags_are_refused_naming_the_long_ones_and_h_is_help_everywhere(tmp_path):
    """fire reads `-x` as the one option starting with x: `report -h` was `--html`, and a short flag that works
    today breaks when an option with its letter is added. Options are written in full; `-h` is help."""
    proc = run_cli("evaluate", "-m", "x.gguf", "--out", tmp_path / "e", check=False)
    assert proc.returncode == 2 and "option -m: options are written in full (--max_calls, --max_tokens, --method, " \
                                    "--model)" in proc.stderr
    proc = run_cli("score", "Paris", "paris", "-t", "world", check=False)
    assert proc.returncode == 2 and "(--task)" in proc.stderr
    for args, module in ((["report", "-h"], "fireflan"), (["-h"], "fireflan.recipes.hotpotqa")):
        proc = run_cli(*args, module=module)
        assert "Showing help" in proc.stdout + proc.stderr and "error" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_a_refused_run_leaves_nothing_and_its_corrected_rerun_runs(small_world, tmp_path):
    """A run refused for bad input wrote its settings first, and its corrected rerun was then refused as
    'a run with other settings'; the judge ran its teacher before it looked for its model."""
    out = tmp_path / "T"
    proc = run_cli("teach", "--data", tmp_path / "nosuch", "--out", out, "--limit", 2, check=False)
    assert proc.returncode == 2 and "nosuch" in proc.stderr and not out.exists()
    out.mkdir()  # a folder the user made: the refused run leaves it as it was
    proc = run_cli("teach", "--data", tmp_path / "nosuch", "--out", out, "--limit", 2, check=False)
    assert proc.returncode == 2 and list(out.iterdir()) == []
    (out / "config.json").write_text(json.dumps({"data": "nosuch", "out": str(out)}))  # an older version's leftover
    run_cli("teach", "--data", small_world, "--out", out, "--limit", 2)
    assert len((out / "trajectories.jsonl").read_text().splitlines()) >= 2
    for verb in ("evaluate", "judge"):
        proc = run_cli(verb, "--model", tmp_path / "nosuch.gguf", "--data", small_world, "--out", tmp_path / verb,
                       check=False)
        assert proc.returncode == 2 and "nosuch.gguf: no such GGUF file" in proc.stderr, proc.stderr
        assert not (tmp_path / verb).exists()


def test_settings_that_cannot_give_a_result_are_errors(small_world, tmp_path):
    """`corpus --val-share 1.5` wrote 0 training records and exited 0; `--max-steps 0` ran episodes of no step."""
    run_cli("teach", "--data", small_world, "--out", tmp_path / "T", "--limit", 3)
    trajectories = tmp_path / "T" / "trajectories.jsonl"
    cases = [(["corpus", trajectories, "--val-share", "1.5"], "--val-share must be at least 0 and below 1"),
             (["corpus", trajectories, "--max-tokens", "0"], "--max-tokens must be 1 or more"),
             (["corpus", trajectories, "--max-tokens", "5"], "no training records would be written"),
             (["teach", "--data", small_world, "--max-calls", "0"], "--max-calls must be 1 or more"),
             (["evaluate", "--data", small_world, "--max-calls", "0"], "--max-calls and --max-tokens must be 1"),
             (["chat", "--max-calls", "0"], "--max-calls must be 1 or more"),
             (["evaluate", "--data", small_world, "--max-steps", "3"],
              "unknown option --max-steps (it is --max_calls"),
             (["evaluate", "--data", small_world, "--limit", "0"], "option --limit must be more than 0, got 0"),
             (["train", "--corpus", trajectories, "--max-steps", "-1"], "option --max_steps must be more than 0"),
             (["train", "--corpus", tmp_path / "missing.jsonl"], "missing.jsonl: no such file")]  # before the model
    for args, said in cases:
        out = tmp_path / "out"
        proc = run_cli(*args, *(["--out", out] if args[0] != "chat" else []), check=False)
        assert proc.returncode == 2 and said in proc.stderr, (args, proc.stderr)
        assert not out.exists(), args


def test_a_folder_in_use_by_another_run_is_refused_and_freed_when_its_holder_dies(tmp_path):
    """Two runs writing one folder would interleave their records: the second is refused at once, told
    which process holds it, and writes nothing; a SIGKILLed holder frees the folder (the lock dies with it)."""
    out = tmp_path / "t"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom fireflan.options import claimed\n"
         f"with claimed({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(120)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        proc = run_cli("teach", "--out", out, "--task", "world", "--limit", "3", check=False)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert f"{out.resolve()} is in use by process {holder.pid}" in proc.stderr
        assert [p.name for p in out.iterdir()] == [".fireflan.lock"]  # the refused run wrote nothing
        recipe = subprocess.run([sys.executable, "-m", "fireflan.recipes.hotpotqa", "--out", str(out)], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)  # a recipe on that run folder too
        assert recipe.returncode == 2 and f"{out.resolve()} is in use by process {holder.pid}" in recipe.stderr
    finally:
        holder.kill()
        holder.wait()
    proc = run_cli("teach", "--out", out, "--task", "world", "--limit", "3")
    written = json.loads(proc.stdout.strip().splitlines()[-1])["trajectories"]
    assert written >= 3 and len((out / "trajectories.jsonl").read_text().splitlines()) == written


def test_claims_nest_within_a_process_and_an_empty_folder_they_made_is_removed(tmp_path):
    from fireflan.options import FolderInUse, claimed

    with claimed(tmp_path / "a") as a, claimed(tmp_path / "a"):  # a stage calling another on its folder
        (a / "kept.txt").write_text("x")
        with claimed(tmp_path / "b"):
            pass
    assert (tmp_path / "a" / "kept.txt").exists() and not (tmp_path / "b").exists()
    code = ("import sys\nfrom fireflan.options import claimed, FolderInUse\n"
            f"try:\n    with claimed({str(tmp_path / 'a')!r}):\n        print('claimed')\n"
            "except FolderInUse as e:\n    print('refused', e)\n")
    with claimed(tmp_path / "a"):
        other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert other.stdout.startswith("refused"), other.stdout + other.stderr
    other = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert other.stdout.startswith("claimed"), other.stdout + other.stderr
    assert issubclass(FolderInUse, ValueError)  # the CLI ends it with its message and exit status 2


def test_a_file_system_refusal_is_one_line_naming_the_path_and_what_to_do(tmp_path):
    """An --out that is a file, a path through a file, a folder where a file is read, a port out of range:
    each reached the user as a Python traceback."""
    notes = tmp_path / "notes.txt"
    notes.write_text("mine\n")
    cases = [(["world", "--out", notes], f"{notes}: file exists (a file is there, where a folder is needed"),
             (["world", "--out", notes / "run"], f"{notes / 'run'}: not a directory (a file stands in this path"),
             (["corpus", tmp_path, "--out", tmp_path / "c"], f"{tmp_path}: is a directory (it is a folder, where a "
                                                             "file is needed)"),
             (["serve", notes, "--port", "70000"], "--port 70000: a port is a number from 1 to 65535")]
    for args, said in cases:
        proc = run_cli(*args, check=False)
        assert proc.returncode == 2 and proc.stderr.startswith(f"fireflan: error: {said}"), (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and notes.read_text() == "mine\n"


def test_a_read_only_disk_is_named_with_what_to_do(tmp_path, monkeypatch, capsys):
    import errno
    import pathlib

    from fireflan.cli import main

    def read_only(self, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(pathlib.Path, "mkdir", read_only)
    with pytest.raises(SystemExit) as stop:
        main(["world", "--out", str(tmp_path / "w")])
    said = capsys.readouterr().err
    assert stop.value.code == 2
    assert said == f"fireflan: error: {tmp_path / 'w'}: read-only file system (the file system is read-only: " \
                   "choose a folder you can write (--out))\n"


def test_a_teacher_server_that_refuses_is_one_line_with_its_url_and_exit_1(small_world, tmp_path):
    """A server that is not an OpenAI server (501 and an HTML page) was retried for half a minute, then its
    page was printed inside a traceback."""
    from helpers.fake_openai import FakeServer, page

    server = FakeServer()
    server.default = page(501, "<html><head><title>501 Not Implemented</title></head>\n<body><h1>Not Implemented"
                               "</h1>\n<p>No chat here.</p></body></html>")
    try:
        proc = run_cli("teach", "--data", small_world, "--teacher", "openai", "--model", "m", "--base-url",
                       server.base_url, "--limit", 1, "--out", tmp_path / "T", check=False)
    finally:
        server.stop()
    assert proc.returncode == 1 and len(server.requests) == 1, proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"fireflan: error: m at {server.base_url}: request refused, HTTP 501: 501 Not "
                           "Implemented Not Implemented No chat here.") and "Traceback" not in proc.stderr
    assert not (tmp_path / "T").exists() or not list((tmp_path / "T").glob("*.jsonl"))


def test_a_verb_whose_extra_is_not_installed_names_the_pip_command(small_world, tmp_path, capsys, monkeypatch):
    """`fireflan train` without the `train` extra ended in an ImportError traceback."""
    from fireflan.cli import main

    main(["teach", "--data", str(small_world), "--limit", "3", "--out", str(tmp_path / "t")])
    main(["corpus", str(tmp_path / "t" / "trajectories.jsonl"), "--out", str(tmp_path / "c")])
    capsys.readouterr()
    for module in ("torch", "transformers", "peft", "trl"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed: importing it fails
    with pytest.raises(SystemExit) as stop:
        main(["train", "--corpus", str(tmp_path / "c"), "--base", "tiny", "--out", str(tmp_path / "m")])
    said = capsys.readouterr().err
    assert stop.value.code == 2 and said.startswith("fireflan: error: this needs ") and said.count("\n") == 1, said
    assert said.rstrip().endswith("which is not installed: pip install -e '.[train]'") and not (tmp_path / "m").exists()


def test_a_run_folder_written_before_a_rename_or_the_none_convention_still_resumes(tmp_path):
    """Model calls were `max_steps` and "no limit" 0 until 2026-12-07: a folder of then resumes under today's
    names (its settings read under the old name, its 0 as today's None), and a real change is still refused."""
    import json
    from dataclasses import dataclass

    from fireflan.options import guard_run, opt

    @dataclass
    class Then:
        max_calls: int = opt(8, "model calls")
        limit: int | None = opt(None, "the first N")

    (tmp_path / "config.json").write_text(json.dumps({"max_steps": 8, "limit": 0}))
    (tmp_path / "trajectories.jsonl").write_text("{}\n")  # paid work: the folder is a run, not settings alone
    guard_run(tmp_path, Then())
    assert json.loads((tmp_path / "config.json").read_text()) == {"max_calls": 8, "limit": None}
    (tmp_path / "config.json").write_text(json.dumps({"max_steps": 6, "limit": 0}))
    with pytest.raises(ValueError, match=r"other settings \(max_calls: 6 -> 8\)"):
        guard_run(tmp_path, Then())
