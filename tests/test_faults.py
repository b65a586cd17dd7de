"""Faults injected into real processes: SIGKILL at random moments of a stage, then a re-run, must end
with the very outputs of an uninterrupted run (timings aside) and no torn JSONL line; a full disk
during a write ends with a clear error and leaves the previous complete file."""

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT
from helpers.fake_openai import FakeServer, reply

from fireflan.io import write_jsonl

SEEDS = (0, 1, 2)
TIMING = re.compile(r"seconds|per_second|_s$|tok_s|elapsed|started")
THIS_RUN = {"ran", "skipped_done", "calls_this_run", "usd_this_run", "ran_now", "resumed"}  # the last process's


def _scrub(value):
    """The value without its timings and the last process's own counts (all two runs may differ in)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if not TIMING.search(k) and k not in THIS_RUN}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _outputs(folder):
    """{relative path: content} of every JSON/JSONL file a stage wrote (config.json aside: it names the folder)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        if path.suffix in (".json", ".jsonl") and path.name != "config.json":
            raw = path.read_bytes().replace(str(folder).encode(), b"OUT")
            lines = raw.splitlines(keepends=True)
            if path.suffix == ".jsonl":
                assert all(line.endswith(b"\n") for line in lines), f"{rel}: a torn line survived"
                out[rel] = [_scrub(json.loads(line)) for line in lines if line.strip()]
            else:
                out[rel] = _scrub(json.loads(raw))
    return out


def _diff(a, b, at=""):
    """Where two nested values first differ: 'metrics.json/usage/calls: 41 != 40'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _diff(a.get(k), b.get(k), f"{at}/{k}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _diff(x, y, f"{at}[{i}]")
    return f"{at}: {str(a)[:200]} != {str(b)[:200]}"


def _run(argv, env, timeout=300):
    proc = subprocess.run([sys.executable, "-m", "fireflan", *map(str, argv)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _kill_at_random_then_finish(argv_for, tmp_path, env, name):
    """Run the stage whole once (timed), then for each seed: start it, SIGKILL it at a random moment of
    that time (twice), re-run it to the end; its outputs must equal the whole run's. Returns the count of
    kills that landed while the process was still working."""
    whole = tmp_path / f"{name}-whole"
    started = time.perf_counter()
    _run(argv_for(whole), env)
    span = time.perf_counter() - started
    expected = _outputs(whole)
    assert expected
    landed = 0
    for seed in SEEDS:
        out, rng = tmp_path / f"{name}-{seed}", random.Random(seed)
        for _ in range(2):
            proc = subprocess.Popen([sys.executable, "-m", "fireflan", *map(str, argv_for(out))], cwd=ROOT,
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.05, 0.95) * span)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                landed += 1
            proc.wait(timeout=60)
        _run(argv_for(out), env)
        got = _outputs(out)
        assert got == expected, f"{name}, seed {seed}: the resumed run differs: {_diff(got, expected)}"
    return landed


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "PYTHONPATH": str(ROOT), "FIREFLAN_CACHE": str(tmp_path / "cache"),
            "OPENAI_API_KEY": "sk-test"}


def test_world_teach_and_corpus_killed_at_random_end_as_if_never_killed(tmp_path, env):
    world = tmp_path / "w"
    landed = _kill_at_random_then_finish(lambda o: ["world", "--seed", 3, "--train", 600, "--out", o], tmp_path, env,
                                         "world")
    _run(["world", "--seed", 3, "--train", 600, "--out", world], env)
    landed += _kill_at_random_then_finish(
        lambda o: ["teach", "--data", world, "--limit", 500, "--methods", "react,reflexion", "--out", o],
        tmp_path, env, "teach")
    teach = tmp_path / "teach-whole" / "trajectories.jsonl"
    landed += _kill_at_random_then_finish(
        lambda o: ["corpus", teach, "--out", o, "--roles", "judge=0.2,backtrack=0.1"], tmp_path, env, "corpus")
    assert landed >= len(SEEDS) * 3  # most kills found the process at work (the rest came after it ended)
    print(f"\nkills that landed in world, teach and corpus: {landed} of {len(SEEDS) * 6}")


def test_evaluate_killed_at_random_resumes_without_asking_the_model_twice(tmp_path, env, small_world):
    server = FakeServer()
    try:
        server.default = reply("Thought: I know it.\nAction: finish[yes]", delay=0.04)
        argv = lambda o: ["evaluate", "--model", "m", "--base-url", server.base_url, "--data", small_world,  # noqa: E731
                          "--limit", 40, "--max_calls", 2, "--out", o]
        landed = _kill_at_random_then_finish(argv, tmp_path, env, "evaluate")
        asked = len(server.requests)
    finally:
        server.stop()
    whole = (len(SEEDS) + 1) * 40  # a question's single call, once per run that finished it
    assert asked <= whole + 2 * len(SEEDS) * 2  # at most the call in flight is repeated at each kill
    assert landed >= len(SEEDS)
    print(f"\nkills that landed in evaluate: {landed}; model calls {asked} for {whole} questions answered")


def test_a_full_disk_during_a_write_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "train.jsonl"
    write_jsonl(path, [{"n": 1}, {"n": 2}])
    before = path.read_bytes()

    def records():
        yield {"n": 3}
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_jsonl(path, records())
    assert path.read_bytes() == before and not list(tmp_path.glob("*.tmp"))


def test_a_summary_that_fails_to_write_leaves_the_previous_one_whole(tmp_path):
    from fireflan.io import write_json

    path = tmp_path / "metrics.json"
    write_json(path, {"em": 0.5})
    with pytest.raises(TypeError):
        write_json(path, {"em": 0.6, "model": object()})  # cannot be written
    assert json.loads(path.read_text()) == {"em": 0.5} and not list(tmp_path.glob(".*.tmp"))


def _loss_rows(model):
    rows = (model / "loss.csv").read_text().splitlines()[1:]
    return [(int(r.split(",")[0]), float(r.split(",")[1])) for r in rows]


def _kill_during(argv, env, span, rng, done):
    """Start `fireflan ARGV`, SIGKILL it at a random moment of `span` seconds; True if it was still at work."""
    proc = subprocess.Popen([sys.executable, "-m", "fireflan", *map(str, argv)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.1, 0.95) * span)
    landed = proc.poll() is None and not done()
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return landed


@pytest.mark.slow
def test_train_and_export_killed_at_random_end_as_if_never_killed(tmp_path):
    """The tiny model, trained 12 steps with a checkpoint every 2, killed at random moments (three seeds,
    twice each), then trained to the end: the same losses step by step, each step logged once, the same
    adapter; its export killed the same way ends with the very GGUF of an uninterrupted export."""
    import hashlib

    from safetensors.numpy import load_file

    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the user's cache: the converter and tiny model built once
    world, teach, corpus = tmp_path / "w", tmp_path / "t", tmp_path / "c"
    _run(["world", "--seed", 3, "--train", 80, "--dev", 10, "--test", 10, "--out", world], env)
    _run(["teach", "--data", world, "--limit", 40, "--out", teach], env)
    _run(["corpus", teach / "trajectories.jsonl", "--out", corpus], env)
    train = lambda o: ["train", "--corpus", corpus, "--base", "tiny", "--out", o, "--max_steps", 12,  # noqa: E731
                       "--save_steps", 2, "--batch_size", 2, "--threads", 1]
    whole = tmp_path / "whole"
    started = time.perf_counter()
    _run(train(whole), env)
    span = time.perf_counter() - started
    expected, weights = _loss_rows(whole), load_file(whole / "adapter" / "adapter_model.safetensors")
    landed = 0
    for seed in SEEDS:
        out, rng = tmp_path / f"train-{seed}", random.Random(seed)
        for _ in range(2):
            landed += _kill_during(train(out), env, span, rng, lambda: (out / "train.json").exists())  # noqa: B023
        _run(train(out), env)
        got = _loss_rows(out)
        assert [s for s, _ in got] == list(range(1, 13)), f"seed {seed}: steps logged {[s for s, _ in got]}"
        assert got == expected, f"seed {seed}: the resumed run's losses differ"  # one thread: bit for bit
        resumed = load_file(out / "adapter" / "adapter_model.safetensors")
        assert resumed.keys() == weights.keys()
        assert all((resumed[k] == weights[k]).all() for k in weights), f"seed {seed}: another adapter"

    export = lambda m: ["export", "--model", m, "--verify_prompts", 1, "--threads", 1]  # noqa: E731
    started = time.perf_counter()
    _run(export(whole), env)
    span = time.perf_counter() - started
    gguf = lambda m: hashlib.sha256((m / "gguf" / "model-q8_0.gguf").read_bytes()).hexdigest()  # noqa: E731
    for seed in SEEDS:
        model, rng = tmp_path / f"export-{seed}", random.Random(100 + seed)
        shutil.copytree(whole, model, ignore=shutil.ignore_patterns("gguf", "merged", "export.json"))
        for _ in range(2):
            landed += _kill_during(export(model), env, span, rng, lambda: (model / "export.json").exists())  # noqa: B023
        _run(export(model), env)
        assert gguf(model) == gguf(whole), f"seed {seed}: the resumed export wrote another GGUF"
        summary = json.loads((model / "export.json").read_text())
        assert summary["ok"], summary["problems"]
        assert not list(model.rglob("*.partial")) and not list(model.rglob(".*.tmp"))
    assert landed >= len(SEEDS) * 2
    print(f"\nkills that landed in train and export: {landed} of {len(SEEDS) * 4}")


@pytest.mark.slow
def test_two_recipes_at_once_in_two_run_folders_both_finish_alike(tmp_path):
    """Two people on one machine: the main recipe twice at the same moment (tiny scale, the same seed, one
    cache), in two run folders. Both finish, and with the same seed they give the same episodes."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = ["--base", "tiny", "--train_questions", 40, "--max_steps", 4, "--batch_size", 2, "--prompted", "none",
            "--eval_questions", 3, "--agent_calls", 2, "--agent_tokens", 24, "--probes", 0, "--threads", 1]
    procs = [subprocess.Popen([sys.executable, "-m", "fireflan.recipes.hotpotqa", "--out", tmp_path / name,
                               *map(str, argv)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for name in ("a", "b")]
    for proc in procs:
        printed = proc.communicate(timeout=900)[0]
        assert proc.returncode == 0, printed[-3000:]
    a, b = (_outputs(tmp_path / name / "eval-finetuned") for name in ("a", "b"))
    assert a == b and a["trajectories.jsonl"], _diff(a, b)
    assert not list(tmp_path.rglob("*.partial")) and not list(tmp_path.rglob(".*.tmp"))


def test_a_truncated_world_or_corpus_file_is_named_with_its_line(tmp_path):
    from fireflan.evaluate import open_task
    from fireflan.io import DataError
    from fireflan.train.data import read_corpus
    from fireflan.worlds.wiki import WorldConfig, write_world

    world = tmp_path / "world"
    write_world(WorldConfig(seed=7, train=5, dev=2, test=3), world)
    for name in ("test.jsonl", "corpus.jsonl"):  # a question split, the wiki's pages
        path = world / name
        raw = path.read_bytes()
        path.write_bytes(raw[:-40])  # a copy cut short
        lines = raw[:-40].count(b"\n") + 1
        with pytest.raises(DataError, match=rf"^{re.escape(str(path))}:{lines}: not valid JSON"):
            open_task("world", str(world), "test", None, None)
        path.write_bytes(raw)
    corpus = tmp_path / "train.jsonl"
    turns = [{"role": "user", "content": "q", "loss": False}, {"role": "assistant", "content": "a", "loss": True}]
    corpus.write_text(json.dumps({"messages": turns}) + '\n{"messages": [{"role": "us')
    with pytest.raises(DataError, match=rf"^{re.escape(str(corpus))}:2: not valid JSON"):
        read_corpus(corpus)


def test_a_set_of_files_stopped_half_way_is_refused_by_name_until_written_whole(tmp_path, monkeypatch):
    """Ctrl-C during `world` over an existing world left files of two seeds, each whole, and `teach` then ran
    on the mix; a world, DB world or corpus stopped half-way is now refused by every reader, naming the folder
    and the command, until a run finishes it."""
    import fireflan.corpus.build as build
    import fireflan.worlds.wiki as wiki
    from fireflan.corpus.build import CorpusConfig, build_corpus
    from fireflan.io import DataError, write_jsonl
    from fireflan.tasks import get_task
    from fireflan.teach import TeachConfig, teach
    from fireflan.train.trainer import corpus_files
    from fireflan.worlds.wiki import WorldConfig, write_world

    def stopped_after(n, real=write_jsonl):
        calls = []

        def write(path, records):
            calls.append(path)
            if len(calls) > n:
                raise KeyboardInterrupt
            return real(path, records)
        return write

    world, small = tmp_path / "world", dict(train=30, dev=5, test=5)
    write_world(WorldConfig(seed=1, **small), world)
    monkeypatch.setattr(wiki, "write_jsonl", stopped_after(2))
    with pytest.raises(KeyboardInterrupt):
        write_world(WorldConfig(seed=2, **small), world)  # train and dev of seed 2, test and corpus of seed 1
    for read in (lambda: get_task("world").load(world, split="test"),
                 lambda: teach(TeachConfig(out=str(tmp_path / "t"), data=str(world), limit=2))):
        with pytest.raises(DataError, match=r"world: `fireflan world` \(process \d+\) stopped while writing"):
            read()
    monkeypatch.undo()
    write_world(WorldConfig(seed=2, **small), world)
    assert len(get_task("world").load(world, split="test")) == 5
    teach(TeachConfig(out=str(tmp_path / "t"), data=str(world), limit=4))

    corpus = tmp_path / "corpus"
    monkeypatch.setattr(build, "write_jsonl", stopped_after(1))
    with pytest.raises(KeyboardInterrupt):
        build_corpus(CorpusConfig(inputs=str(tmp_path / "t" / "trajectories.jsonl"), out=str(corpus)))
    with pytest.raises(DataError, match="corpus: `fireflan corpus`"):
        corpus_files(corpus)
