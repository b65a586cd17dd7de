"""teach: resumable, never repeating paid work, stopping cleanly at a spend cap."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT
from helpers.fake_openai import FakeServer, reply

from fireflan import teach as teach_module
from fireflan.models.scripted import difficulty
from fireflan.tasks import get_task, open_task
from fireflan.tasks.base import Example
from fireflan.teach import TeachConfig, ambiguous_plans, done_keys, eligible, plan, teach


def _records(path):
    """The trajectory records without their timings (the only thing that differs between runs)."""
    out = []
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        for step in rec["steps"]:
            step.pop("seconds")
        out.append(rec)
    return out


def _keys(path):
    return [(r["id"], r["method"], r["seed"]) for r in _records(path)]


def test_scripted_teach_on_the_world(small_world, tmp_path):
    summary = teach(TeachConfig(out=str(tmp_path), data=str(small_world), split="train"))
    assert summary["success"] == summary["trajectories"] == summary["ran"] > 200
    assert set(summary["methods"]) == {"react", "cot", "reflexion"}
    assert all(m["success_rate"] == 1.0 for m in summary["methods"].values())
    keys = _keys(tmp_path / "trajectories.jsonl")
    assert len(keys) == len(set(keys))
    again = teach(TeachConfig(out=str(tmp_path), data=str(small_world), split="train"))
    assert again["ran"] == 0 and again["skipped_done"] == summary["planned"]


def test_interrupted_teach_resumes_to_the_same_file(small_world, tmp_path, monkeypatch):
    config = dict(data=str(small_world), split="train", limit=80)
    teach(TeachConfig(out=str(tmp_path / "whole"), **config))

    calls = {"n": 0}
    real = teach_module.run_episode

    def dies_after_40(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 40:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(teach_module, "run_episode", dies_after_40)
    with pytest.raises(KeyboardInterrupt):
        teach(TeachConfig(out=str(tmp_path / "cut"), **config))
    path = tmp_path / "cut" / "trajectories.jsonl"
    assert len(path.read_text().splitlines()) == 40
    with path.open("a") as f:  # and the kill tore the next line in half
        f.write('{"schema": "fireflan.trajectory/1", "id": "world-7-tr')
    monkeypatch.setattr(teach_module, "run_episode", real)
    seen = []
    monkeypatch.setattr(teach_module, "run_episode",
                        lambda model, tool, ex, **kw: seen.append((ex.id, kw["method"])) or real(model, tool, ex, **kw))
    resumed = teach(TeachConfig(out=str(tmp_path / "cut"), **config))
    assert resumed["skipped_done"] == 40
    assert _records(path) == _records(tmp_path / "whole" / "trajectories.jsonl")
    assert len(seen) == len(set(seen)) == resumed["ran"]


def test_killed_process_resumes_without_repeating_work(tmp_path):
    """A real SIGKILL of `python -m fireflan teach`, then a re-run: no key twice, same records."""
    out = tmp_path / "t"
    cmd = [sys.executable, "-m", "fireflan", "teach", "--out", str(out), "--limit", "1500"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = out / "trajectories.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if path.exists() and path.stat().st_size > 200_000:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    keys = _keys(path)
    assert len(keys) == len(set(keys))
    whole = tmp_path / "whole"
    subprocess.run([*cmd[:4], "--out", str(whole), "--limit", "1500"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=120)
    assert _records(path) == _records(whole / "trajectories.jsonl")


def test_spend_cap_stops_cleanly_and_a_rerun_continues(small_world, tmp_path, monkeypatch):
    server = FakeServer()
    try:
        server.default = reply("Thought: I know this.\nAction: finish[Velmora]", prompt=100_000, completion=20_000)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        config = dict(out=str(tmp_path), data=str(small_world), split="train", limit=6, teacher="openai",
                      model="gpt-test", base_url=server.base_url, prices="gpt-test=5,5", methods="cot")
        # each call: 0.12M tokens x $5/M = $0.60; with a $1 cap the third call is refused
        summary = teach(TeachConfig(**config, max_usd=1.0))
        assert summary["stopped"] and "1.0" in summary["stopped"] and summary["ran"] == 2
        assert len(server.requests) == 2
        assert summary["usd_this_run"] == pytest.approx(1.2)
        summary = teach(TeachConfig(**config, max_usd=100.0))
        assert summary["skipped_done"] == 2 and summary["ran"] == summary["planned"] - 2
        assert len(server.requests) == summary["planned"]  # nothing asked twice
        sent = server.requests[0]["json"]["messages"]
        assert sent[0]["role"] == "system" and "Here are some examples." in sent[0]["content"]
    finally:
        server.stop()


def test_plan_and_eligibility():
    tool_q = Example(id="a", question="Who?", answer="x", task="world", type="bridge", supporting_facts=[["T", 0]])
    no_tool = Example(id="b", question="What is 2 plus 2?", answer="4", task="world", type="notool")
    assert eligible("cot", no_tool, "scripted") and not eligible("cot", tool_q, "scripted")
    assert eligible("cot", tool_q, "openai") and not eligible("reflexion", no_tool, "scripted")
    p = plan([tool_q, no_tool], ["react", "cot", "reflexion"], {"reflexion": 0.0}, "scripted", 0)
    assert [(e.id, m) for e, m in p] == [("a", "react"), ("b", "react"), ("b", "cot")]
    assert plan([tool_q] * 1, ["react"], {}, "scripted", 0) == plan([tool_q], ["react"], {}, "scripted", 0)


def test_a_decomposition_whose_sub_question_reads_like_another_is_not_taught():
    """Two questions about two films of one title: the bare "Who directed X?" would be the same text with
    two answers, which the scripted expert (it knows questions by text) cannot answer; such plans are
    dropped, and the world names the first hop as the question does, so that none are."""
    def bridge(i, sub, director):
        return Example(id=i, question=f"Where was the director of {sub} born?", answer="Lek", task="world",
                       type="bridge", supporting_facts=[["X", 0], [director, 0]],
                       subquestions=[[f"Who directed {sub}?", director], ["Where was that director born?", "Lek"]])
    same = [bridge("a", "X", "Ann"), bridge("b", "X", "Bo"), bridge("c", "Y", "Cy")]
    assert ambiguous_plans(same) == {"a", "b"}
    named = [bridge("a", "the 1990 film X", "Ann"), bridge("b", "the 2001 film X", "Bo")]
    assert ambiguous_plans(named) == set()


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--methods"):
        TeachConfig(methods="react,tot").method_list()
    with pytest.raises(ValueError, match="--shares"):
        TeachConfig(shares="react=lots").share_map()
    with pytest.raises(ValueError, match="--teacher"):
        teach(TeachConfig(out=str(tmp_path), teacher="oracle", limit=2))


def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path):
    from fireflan.io import DataError

    path = tmp_path / "trajectories.jsonl"
    path.write_text('{"id": "a", "method": "react", "seed": 0}\nnot json\n{"id": "b", "method": "react", "seed": 0}\n')
    with pytest.raises(DataError, match=r"trajectories\.jsonl:2"):
        done_keys(path)


def test_a_teach_folder_refuses_another_teacher(small_world, tmp_path):
    teach(TeachConfig(out=str(tmp_path), data=str(small_world), limit=3))
    with pytest.raises(ValueError, match="other settings"):
        teach(TeachConfig(out=str(tmp_path), data=str(small_world), limit=3, max_calls=3))
    teach(TeachConfig(out=str(tmp_path), data=str(small_world), limit=5, methods="react"))  # may change


# --------------------------------------------------------------------------- the scripted expert's reading skills

def test_expert_helpers_read_titles_best_matches_and_clauses():
    from fireflan.models.walk import best_match, clip, similar_titles, surface

    assert surface("Kiss and Tell (1945 film)") == "Kiss and Tell" and surface("Bath, Maine") == "Bath, Maine"
    obs = 'No page is titled "Creed". Best match, Creed (band): Creed is a band.\nSimilar: [Creed (band), Creed (film)]'
    assert best_match(obs) == "Creed (band)" and similar_titles(obs) == ["Creed (band)", "Creed (film)"]
    assert best_match("Creed is a band.") is None and similar_titles("Creed is a band.") == []
    long = ("Jaclyn Stapp is a beauty queen, philanthropist and fashion model with pageant roots in Florida and "
            "New York, and she is married to Scott Stapp, former frontman of the band Creed.")
    assert clip(long, "Scott Stapp").endswith("married to Scott Stapp") and len(clip(long, "Scott Stapp").split()) <= 22
    assert clip("Short and plain.", "x") == "Short and plain."
    assert "known" not in clip(long + " It is well known.", "no")  # whole words: 'no' is not in 'known'



def _one_question(question, answer, facts, pages):
    from fireflan.tasks.base import Example
    from fireflan.tools.wiki import Page, Wiki

    wiki = Wiki([Page(t, tuple(s)) for t, s in pages.items()])
    context = [[t, s] for t, s in pages.items()]
    return Example(id="q", question=question, answer=answer, task="world", type="bridge", supporting_facts=facts,
                   context=context), wiki


def test_the_expert_follows_a_best_match_and_retries_a_disambiguated_title():
    from fireflan.agent.loop import run_episode
    from fireflan.models.scripted import ScriptedExpert
    from fireflan.models.walk import best_match, similar_titles

    film = {"Harbor Letters": ["Harbor Letters is a 1998 film directed by Kaelo Brenn."], "Velmora": ["A city."]}
    director = {"Kaelo Brenn (director)": ["Kaelo Brenn (born 1950) is a film director.", "He was born in Velmora."]}
    facts = [["Harbor Letters", 0], ["Kaelo Brenn (director)", 1]]
    question = "Where was the director of the film Harbor Letters born?"

    def walk(pages):
        ex, wiki = _one_question(question, "Velmora", facts, pages)
        traj = run_episode(ScriptedExpert([ex], tool=wiki), wiki, ex, score=lambda a: {"em": float(a == "Velmora")})
        assert traj.success
        return [s.argument for s in traj.steps if s.action == "search"], [s.thought for s in traj.steps]

    # only the bracketed page exists: search[Kaelo Brenn] falls back to it, and the expert follows it
    searches, thoughts = walk({**film, **director})
    assert searches == ["Harbor Letters", "Kaelo Brenn"]  # the name as the page writes it
    assert "Kaelo Brenn (director)" in thoughts[-1] and "Kaelo Brenn" in thoughts[1]
    # the plain title is a musician of the same name: the bracket's word, which the question says, goes with the
    # name (never the bracket itself, which nothing on the screen shows)
    musician = {"Kaelo Brenn": ["Kaelo Brenn (born 1980) is a musician from Ostra."]}
    searches, thoughts = walk({**film, **director, **musician})
    assert searches == ["Harbor Letters", "Kaelo Brenn director"]
    # a title the screen shows (a result's similar titles) may be typed with its bracket
    ex, wiki = _one_question(question, "Velmora", facts, {**film, **director, **musician})
    obs = wiki.search("Brenn director film")
    assert "Kaelo Brenn (director)" in similar_titles(obs) or best_match(obs) == "Kaelo Brenn (director)"


# --------------------------------------------------------------------------- the free FireAct: the expert on HotpotQA

def test_the_scripted_teacher_on_real_hotpotqa_records(tmp_path):
    """The offline teacher over an official HotpotQA file: every question it can walk solved through the wiki of
    its paragraphs, names searched as the question and the pages write them, best matches followed; the few
    whose gold pages no name on the screen leads to skipped and counted (never trained on here: a check)."""
    from helpers import shared

    from fireflan.audit import audit

    data = shared("hotpotqa_dev_sample89.json")
    summary = teach(TeachConfig(out=str(tmp_path), task="hotpotqa", data=str(data), split="validation",
                                methods="react"))
    assert summary["skipped_unreachable"] == 0 and 1 <= summary["skipped_underivable"] <= 5
    assert summary["trajectories"] == summary["success"] == 89 - summary["skipped_underivable"]
    trajectories = [json.loads(x) for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    thoughts = " ".join(s["thought"] for t in trajectories for s in t["steps"])
    assert "best match" in thoughts and max(len(s["thought"].split()) for t in trajectories for s in t["steps"]) < 90
    stats = audit(trajectories, get_task("hotpotqa").load(data))
    assert stats["searches_underivable"] == 0 and stats["lookups"] == 0
    assert stats["comparisons_stated"] >= stats["comparisons"] / 4


def test_the_scripted_teacher_on_the_hubs_train_split(small_world, tmp_path, monkeypatch):
    """With no file, HotpotQA's train split comes from the hub through its loader (faked here: no network),
    in the hub's columnar shape; the teacher skips and counts what the pages cannot answer."""
    import datasets

    from fireflan.tasks import hotpotqa

    rows = []
    for line in (small_world / "train.jsonl").read_text().splitlines()[:12]:
        r = json.loads(line)
        if not r["supporting_facts"]:
            continue
        rows.append({"id": r["_id"], "question": r["question"], "answer": r["answer"], "type": r["type"],
                     "level": r["level"], "supporting_facts": {"title": [t for t, _ in r["supporting_facts"]],
                                                               "sent_id": [i for _, i in r["supporting_facts"]]},
                     "context": {"title": [t for t, _ in r["context"]], "sentences": [s for _, s in r["context"]]}})
    rows[0]["answer"] = "an answer no page holds"
    asked = []
    monkeypatch.setattr(hotpotqa, "load_hub", lambda name, config, split: asked.append((name, config, split))
                        or datasets.Dataset.from_list(rows))
    summary = teach(TeachConfig(out=str(tmp_path), task="hotpotqa", split="train", methods="react"))
    assert asked == [("hotpotqa/hotpot_qa", "distractor", "train")]
    assert summary["skipped_unreachable"] == 1 and summary["trajectories"] == summary["success"] == len(rows) - 1


def test_a_weak_teacher_fails_its_share_of_questions(small_world, tmp_path):
    """By default the hardest questions (a real teacher fails hard ones more); with failures=random, a coin."""
    weak = teach(TeachConfig(out=str(tmp_path / "weak"), data=str(small_world), split="train", methods="react",
                             success_share=0.5))
    records = _records(tmp_path / "weak" / "trajectories.jsonl")
    assert abs(weak["success"] - len(records) / 2) <= 1  # the share, exactly
    failed = [r for r in records if not r["success"]]
    assert all(r["answer"] is not None and r["answer"] != r["gold"] for r in failed)  # a wrong answer, said
    examples = {ex.id: ex for ex in open_task("world", str(small_world), "train")[1]}
    hardness = {ok: [difficulty(examples[r["id"]]) for r in records if r["success"] == ok] for ok in (True, False)}
    assert min(hardness[False]) >= max(hardness[True])  # none it solved is harder than one it failed
    assert {examples[r["id"]].type for r in failed} == {"bridge"}  # the world's hardest kind, most of its questions
    coin = teach(TeachConfig(out=str(tmp_path / "coin"), data=str(small_world), split="train", methods="react",
                             success_share=0.5, failures="random"))
    rate = coin["methods"]["react"]["success_rate"]
    assert 0.38 <= rate <= 0.62, rate  # 200 questions, a coin of 0.5 each
    kinds = {examples[r["id"]].type for r in _records(tmp_path / "coin" / "trajectories.jsonl") if not r["success"]}
    assert len(kinds) > 1  # the coin fails questions of every kind
    again = teach(TeachConfig(out=str(tmp_path / "again"), data=str(small_world), split="train", methods="react",
                              success_share=0.5, failures="random"))
    assert again["success"] == coin["success"]  # the same questions fail for the same seed
    with pytest.raises(ValueError, match="--failures must be hardest or random"):
        teach(TeachConfig(out=str(tmp_path / "bad2"), data=str(small_world), split="train", success_share=0.5,
                          failures="easiest"))
    assert not (tmp_path / "bad2").exists()
    with pytest.raises(ValueError, match="within 0..1"):
        teach(TeachConfig(out=str(tmp_path / "bad"), data=str(small_world), split="train", success_share=1.5))
