"""corpus: records, loss masks, capabilities, negatives, mixes, stats."""

import json
import random
from collections import Counter

import pytest

from fireflan.agent.loop import Step, Trajectory
from fireflan.corpus.build import CorpusConfig, assign_capabilities, build_corpus, parse_shares, subsample
from fireflan.corpus.format import (
    SYSTEM_NO_TOOLS,
    SYSTEM_TOOLS,
    capability_mask,
    make_record,
    restyle,
    role_order_error,
    supported,
    trajectory_record,
    validate_record,
)
from fireflan.corpus.negatives import bad_observation, no_tools, notool_with_tools
from fireflan.io import DataError
from fireflan.teach import TeachConfig, teach
from fireflan.tools.actions import parse_action


def _traj(steps, method="react", question="Where was Aldo Brenik born?"):
    return Trajectory(id="q1", task="world", method=method, model="m", seed=0, question=question, gold="Velmora",
                      steps=steps, answer=steps[-1].argument, score={"em": 1.0, "f1": 1.0}, success=True)


SEARCH = Step("I need his page.", "search", "Aldo Brenik", "Aldo Brenik was born in Velmora.", "")
FINISH = Step("He was born in Velmora.", "finish", "Velmora", "Episode finished", "")
TRAJ = _traj([SEARCH, FINISH])


@pytest.fixture(scope="module")
def trajectories(tmp_path_factory):
    from fireflan.worlds.wiki import WorldConfig, write_world

    world = tmp_path_factory.mktemp("w")
    write_world(WorldConfig(seed=11, train=400, dev=20, test=20), world)
    out = tmp_path_factory.mktemp("teach")
    teach(TeachConfig(out=str(out), data=str(world), split="train"))
    return out / "trajectories.jsonl"


def _read(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


# ---------------------------------------------------------------- records and masks

def test_fireact_record_trains_assistant_turns_only():
    rec = trajectory_record(TRAJ)
    assert [(m["role"], m["loss"]) for m in rec["messages"]] == [
        ("user", False), ("assistant", True), ("user", False), ("assistant", True)]
    assert rec["messages"][2]["content"] == "Observation: Aldo Brenik was born in Velmora."
    assert rec["meta"]["capability"] == "format" and rec["meta"]["tools"]


def test_capability_masks():
    lookup = Step("narrow it", "lookup", "born", "(Result 1 / 1) He was born in Velmora.", "")
    messages = trajectory_record(_traj([SEARCH, lookup, FINISH]))["messages"]
    assert capability_mask(messages, "format") == [True, True, True]
    assert capability_mask(messages, "retrieval") == [True, True, False]
    assert capability_mask(messages, "reasoning") == [False, False, True]
    assert capability_mask(messages, "understanding") == [False, True, True]
    cot = trajectory_record(_traj([FINISH], method="cot"))["messages"]
    assert supported(cot) == ["format", "reasoning"]
    with pytest.raises(ValueError, match="capability"):
        capability_mask(messages, "charm")


def test_a_wrong_reflexion_attempt_carries_no_loss():
    wrong = Step("guess", "finish", "Ostrand", "Answer is INCORRECT. ...", "", feedback=True)
    rec = trajectory_record(_traj([wrong, SEARCH, FINISH], method="reflexion"))
    flags = [m["loss"] for m in rec["messages"] if m["role"] == "assistant"]
    assert flags == [False, True, True]
    assert rec["messages"][2]["content"].startswith("Observation: Answer is INCORRECT")
    # and capability masking keeps it frozen
    (again,) = assign_capabilities([rec], {"understanding": 1.0}, random.Random(0))
    assert [m["loss"] for m in again["messages"] if m["role"] == "assistant"] == [False, True, True]


def test_a_failed_sql_statement_carries_no_loss():
    mistake = Step("I need the count.", "execute", "SELECT COUNT(*) FROM `Film`", "Error: no such table: Film", "")
    fixed = Step("The table is `Film Catalogue`.", "execute", "SELECT COUNT(*) FROM `Film Catalogue`", "[(3,)]", "")
    done = Step("It is 3.", "finish", "3", "Episode finished", "")
    rec = trajectory_record(_traj([mistake, fixed, done], question="How many films are there?"))
    assert [m["loss"] for m in rec["messages"] if m["role"] == "assistant"] == [False, True, True]
    (again,) = assign_capabilities([rec], {"retrieval": 1.0}, random.Random(0))
    assert [m["loss"] for m in again["messages"] if m["role"] == "assistant"] == [False, True, False]


def test_agentflan_style_has_a_tool_system_turn_and_plain_replies():
    rec = restyle(trajectory_record(TRAJ), "agentflan")
    assert rec["messages"][0] == {"role": "system", "content": SYSTEM_TOOLS, "loss": False}
    assert rec["messages"][2]["content"] == "I need his page.\nAction: search[Aldo Brenik]"
    assert parse_action(rec["messages"][2]["content"]).action == "search"
    with pytest.raises(ValueError, match="style"):
        restyle(rec, "alpaca")


# ---------------------------------------------------------------- negatives

def test_negatives():
    rng = random.Random(0)
    notool = _traj([Step("2 plus 2 is 4.", "finish", "4", "", "")], method="cot", question="What is 2 plus 2?")
    rec = notool_with_tools(notool, rng)
    assert rec["messages"][0]["content"] == SYSTEM_TOOLS and rec["meta"]["negative"] == "notool_with_tools"
    assert parse_action(rec["messages"][-1]["content"]).action == "finish"
    assert notool_with_tools(TRAJ, rng) is None  # needs a tool

    plain = no_tools(notool, rng)
    assert plain["messages"][0]["content"] == SYSTEM_NO_TOOLS and not parse_action(plain["messages"][-1]["content"]).ok
    declined = no_tools(TRAJ, rng)["messages"][-1]["content"]
    assert "Aldo Brenik" in declined and "Velmora" not in declined and "Action" not in declined

    bad = bad_observation(TRAJ, random.Random(1), [("Other Page", "Other Page is about something else.")])
    contents = [m["content"] for m in bad["messages"]]
    assert contents[2] in ("Observation: None", "Observation: Other Page is about something else.")
    assert parse_action(contents[3]).action == "search"
    assert contents[4] == "Observation: Aldo Brenik was born in Velmora."
    assert [m["loss"] for m in bad["messages"] if m["role"] == "assistant"] == [False, True, True]


# ---------------------------------------------------------------- mixing

def test_parse_shares_and_subsample():
    assert parse_shares("a=0.5, b=1") == {"a": 0.5, "b": 1.0}
    assert parse_shares("") == {}
    for bad in ("a", "a=x", "a=-1"):
        with pytest.raises(ValueError):
            parse_shares(bad)
    with pytest.raises(ValueError, match="unknown name"):
        parse_shares("charm=1", ("format",), "capabilities")
    items = ["a"] * 100 + ["b"] * 10
    out = subsample(items, lambda x: x, {"a": 0.5, "b": 0.5}, random.Random(0))
    assert out.count("a") == out.count("b") == 10
    with pytest.raises(ValueError, match="none"):
        subsample(items, lambda x: x, {"c": 1.0}, random.Random(0))


def test_build_corpus_realises_the_asked_mix(trajectories, tmp_path):
    """Must show: stats.json reports the realised mix and negative shares within 2 points of the ask."""
    config = CorpusConfig(inputs=str(trajectories), out=str(tmp_path), style="agentflan",
                          capabilities="format=0.4,reasoning=0.2,retrieval=0.2,understanding=0.2",
                          negatives="notool_with_tools=0.04,no_tools=0.05,bad_observation=0.1")
    stats = build_corpus(config)
    saved = json.loads((tmp_path / "stats.json").read_text())
    assert saved["capability_mix"] == stats["capability_mix"]
    for name, share in stats["capability_mix"]["asked"].items():
        assert abs(stats["capability_mix"]["realised"][name] - share) <= 0.02, name
    for name, share in stats["negative_shares"]["asked"].items():
        assert abs(stats["negative_shares"]["realised"][name] - share) <= 0.02, name
    train, val = _read(tmp_path / "train.jsonl"), _read(tmp_path / "val.jsonl")
    assert len(train) + len(val) == stats["records"] and val
    assert not {r["meta"]["question_id"] for r in train} & {r["meta"]["question_id"] for r in val}
    for rec in train + val:
        roles = [m["role"] for m in rec["messages"]]
        assert roles[-1] == "assistant" and any(m["loss"] for m in rec["messages"])
        assert not any(m["loss"] for m in rec["messages"] if m["role"] != "assistant")
        if rec["meta"]["tools"]:  # every assistant turn parses with the agent's own parser
            assert all(parse_action(m["content"]).ok for m in rec["messages"] if m["role"] == "assistant")
        else:
            assert not any("Action:" in m["content"] for m in rec["messages"] if m["role"] == "assistant")


def test_method_and_task_mix_and_no_negatives(trajectories, tmp_path):
    stats = build_corpus(CorpusConfig(inputs=str(trajectories), out=str(tmp_path), methods="react=0.5,reflexion=0.5",
                                      negatives=""))
    assert stats["method_mix"] == {"react": 0.5, "reflexion": 0.5}
    assert stats["negative_shares"]["realised"] == {}
    assert stats["capability_mix"]["realised"] == {"format": 1.0}


def test_general_chat_is_mixed_at_its_ratio(trajectories, tmp_path):
    chat = tmp_path / "chat.jsonl"
    chat.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"Say {i}."},
                                                     {"role": "assistant", "content": f"{i}."}]}) + "\n"
                            for i in range(2000)))
    stats = build_corpus(CorpusConfig(inputs=str(trajectories), out=str(tmp_path / "c"), chat=str(chat),
                                      chat_ratio=0.2, negatives=""))
    assert abs(stats["chat_share"]["realised"] - 0.2) <= 0.02
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n')
    from fireflan.io import DataError

    with pytest.raises(DataError, match=r"bad\.jsonl:1: field 'messages'"):
        build_corpus(CorpusConfig(inputs=str(trajectories), out=str(tmp_path / "d"), chat=str(bad), chat_ratio=0.1))


def test_length_cap_and_dedupe(trajectories, tmp_path):
    stats = build_corpus(CorpusConfig(inputs=f"{trajectories},{trajectories}", out=str(tmp_path), max_tokens=200,
                                      negatives=""))
    assert stats["duplicates_removed"] > 0 and stats["too_long_dropped"] > 0
    assert stats["tokens"]["max"] <= 200


def test_no_successes_is_an_error(tmp_path):
    path = tmp_path / "t.jsonl"
    failed = {**TRAJ.to_record(), "success": False}
    path.write_text(json.dumps(failed) + "\n")
    with pytest.raises(ValueError, match="no successful"):
        build_corpus(CorpusConfig(inputs=str(path), out=str(tmp_path / "c")))


def test_fireact_import_becomes_a_corpus_whose_turns_all_parse(tmp_path):
    """Must show: FireAct's gpt_format_hotpotqa.jsonl yields 500 valid records, and every assistant turn
    of every corpus record parses with the agent's own action parser."""
    from helpers import shared

    path = shared("fireact/gpt_format_hotpotqa.jsonl")
    stats = build_corpus(CorpusConfig(inputs=str(path), out=str(tmp_path), negatives="", val_share=0.0))
    assert stats["read"] == {"imported:gpt_format_hotpotqa.jsonl": 500} and stats["records"] == 500
    for rec in _read(tmp_path / "train.jsonl"):
        assert rec["meta"]["source"] == "fireact" and rec["messages"][0]["role"] == "user"
        for m in rec["messages"]:
            if m["role"] == "assistant":
                assert parse_action(m["content"]).ok, m["content"]
    multi = build_corpus(CorpusConfig(inputs=str(shared("fireact/gpt_format_multitask_multimethod.jsonl")),
                                      out=str(tmp_path / "m"), negatives=""))
    assert multi["read"]["failed_skipped"] == 49
    assert set(multi["task_mix"]) == {"hotpotqa", "mmlu", "strategyqa"}


# ---------------------------------------------------------------- the record's schema

def test_validate_record():
    msgs = [{"role": "system", "content": "s", "loss": False}, {"role": "user", "content": "q", "loss": False},
            {"role": "assistant", "content": "a", "loss": True}]
    rec = make_record(msgs, "x-1", "fireact", "hotpotqa", "react")
    assert validate_record(rec) is rec
    bad_loss = make_record([{**msgs[1], "loss": True}, msgs[2]], "x", "s", "t", "m")
    with pytest.raises(DataError, match=r"field 'messages\[0\].loss'"):
        validate_record(bad_loss, path="corpus.jsonl", line=7)
    ends_with_user = make_record(msgs + [{"role": "user", "content": "more", "loss": False}], "x", "s", "t", "m")
    with pytest.raises(DataError, match=r"corpus.jsonl:3: field 'messages\[3\].role'"):
        validate_record(ends_with_user, path="corpus.jsonl", line=3)
    no_meta_id = {**rec, "meta": {k: v for k, v in rec["meta"].items() if k != "id"}}
    with pytest.raises(DataError, match=r"field 'meta.id'"):
        validate_record(no_meta_id)
    with pytest.raises(DataError, match="field 'schema'"):
        validate_record({**rec, "schema": "other/1"})
    assert role_order_error(["user", "assistant", "user", "assistant"]) is None
    assert role_order_error(["assistant"])[0] == 0 and role_order_error(["system", "system"])[0] == 1


def test_roles_judge_and_backtrack_records_at_their_shares(trajectories, tmp_path):
    """Judge records balanced yes/no, loss on the verdict only, held out by question; backtrack records
    carry a failed attempt in the restart's question and train on the retry only."""
    from fireflan.agent import roles

    stats = build_corpus(CorpusConfig(inputs=str(trajectories), out=str(tmp_path), negatives="",
                                      roles="judge=0.2,backtrack=0.1"))
    for name, share in stats["role_shares"]["asked"].items():
        assert abs(stats["role_shares"]["realised"][name] - share) <= 0.02, name
    assert abs(stats["judge_verdicts"]["yes"] - stats["judge_verdicts"]["no"]) <= 0.1 * stats["judge_verdicts"]["yes"]
    train, val = _read(tmp_path / "train.jsonl"), _read(tmp_path / "val.jsonl")
    assert not {r["meta"]["question_id"] for r in train} & {r["meta"]["question_id"] for r in val}
    judges = [r for r in train + val if r["meta"].get("role") == "judge"]
    assert judges and any(r["meta"].get("role") == "judge" for r in val)
    for rec in judges:
        *conversation, ask, verdict = rec["messages"]
        assert ask["role"] == "user" and (roles.JUDGE in ask["content"] or ask["content"] == roles.JUDGE_ANSWER)
        assert roles.parse_verdict(verdict["content"]) is rec["meta"]["verdict"] and verdict["loss"]
        assert not any(m["loss"] for m in conversation) and parse_action(conversation[-1]["content"]).ok
    by_kind = Counter((parse_action(r["messages"][-3]["content"]).action, r["meta"]["verdict"]) for r in judges)
    assert by_kind[("search", True)] == by_kind[("search", False)] > 0  # no kind of step is mostly yes or no
    assert by_kind[("finish", True)] == by_kind[("finish", False)] > 0
    wrong_search = next(r for r in judges if not r["meta"]["verdict"] and "search[" in r["messages"][-3]["content"])
    assert wrong_search["messages"][-2]["content"].startswith("Observation: ")  # the wiki's reply to the wrong page
    backtracks = [r for r in train + val if r["meta"].get("role") == "backtrack"]
    assert backtracks
    for rec in backtracks:
        first = rec["messages"][0]["content"]
        assert roles.ATTEMPT in first and first.endswith(roles.RESTART)
        assert all(m["loss"] for m in rec["messages"] if m["role"] == "assistant")
        failed = parse_action(first.split(roles.ATTEMPT)[1].removesuffix(roles.RESTART).strip().split("\n")[-2] + "\n"
                              + first.split(roles.ATTEMPT)[1].removesuffix(roles.RESTART).strip().split("\n")[-1])
        retry = parse_action(rec["messages"][-1]["content"])
        assert failed.action == retry.action == "finish" and failed.argument.lower() != retry.argument.lower()
    with pytest.raises(ValueError, match="roles"):
        build_corpus(CorpusConfig(inputs=str(trajectories), out=str(tmp_path / "x"), roles="critic=0.1"))


def test_planner_records_come_from_a_decomposing_teacher(tmp_path):
    """teach --methods decompose (the scripted expert plans from the world's sub-questions) -> corpus
    --roles planner=...,subquestion=...: the plans; each sub-episode with what was known, the composing
    turn; the decomposed trajectories are not trained on as ReAct records."""
    from fireflan.agent import roles
    from fireflan.worlds.wiki import WorldConfig, write_world

    write_world(WorldConfig(seed=5, train=120, dev=10, test=10), tmp_path / "w")
    summary = teach(TeachConfig(out=str(tmp_path / "t"), data=str(tmp_path / "w"), methods="react,decompose"))
    assert summary["methods"]["decompose"]["success_rate"] == 1.0 and summary["methods"]["decompose"]["n"] > 50
    stats = build_corpus(CorpusConfig(inputs=str(tmp_path / "t" / "trajectories.jsonl"), out=str(tmp_path / "c"),
                                      negatives="", roles="planner=0.3,subquestion=0.2"))
    realised = stats["role_shares"]["realised"]
    assert abs(realised["planner"] - 0.3) <= 0.02 and abs(realised["subquestion"] - 0.2) <= 0.02
    assert "decompose" not in stats["method_mix"]
    records = _read(tmp_path / "c" / "train.jsonl") + _read(tmp_path / "c" / "val.jsonl")
    planner = [r for r in records if r["meta"].get("role") == "planner"]
    plans = [r for r in planner if r["messages"][0]["content"].startswith(roles.PLAN)]
    composes = [r for r in planner if roles.COMPOSE in r["messages"][0]["content"]]
    solving = [r for r in records if r["meta"].get("role") == "subquestion"]
    assert len(plans) + len(composes) == len(planner) and len(plans) > 5 and composes
    lines = [len(roles.parse_plan(r["messages"][1]["content"])) for r in plans]
    assert 0 < lines.count(1) < len(lines) / 2  # the questions not decomposed: one line, as the planner is asked
    assert all(n >= 2 for r, n in zip(plans, lines, strict=True) if r["meta"]["method"] == "decompose")
    subs = [r for r in solving if "\nKnown: " in r["messages"][0]["content"]]
    firsts = [r for r in solving if r not in subs]  # the first sub-question knows nothing
    assert subs and firsts
    assert all(rec["messages"][1]["loss"] for rec in plans)
    for rec in subs + composes:
        assert parse_action(rec["messages"][-1]["content"]).action == "finish"
