import json
from collections import Counter
from pathlib import Path

import pytest
from helpers import shared

from fireflan.corpus.format import validate_record
from fireflan.corpus.importers import (
    CUT_TEXT_AFTER_ACTION,
    DROPPED_FAKE_OBSERVATION,
    FAILED_EPISODE,
    MOVED_MMLU_OPTIONS,
    SKIPPED_QUESTION_IN_ASSISTANT,
    UNTRAINED_NO_ACTION,
    ImportReport,
    clean_assistant_turn,
    detect_method,
    detect_task,
    has_options,
    import_conversations,
    import_file,
    import_fireact_alpaca,
    import_fireact_gpt,
    move_options_to_question,
    split_alpaca_output,
    take_options,
)
from fireflan.io import DataError
from fireflan.tasks.scoring import parse_letter
from fireflan.tools.actions import ACTION_NAMES, parse_action

ACTIONS = ACTION_NAMES


def fireact(name: str) -> Path:
    """A file of FireAct's published fine-tuning data (../shared/data/fireact), or skip saying why."""
    return shared(f"fireact/{name}")


@pytest.fixture(scope="module")
def imported():
    """{file name: (records, report)} for the real FireAct files, imported once."""
    cache = {}

    def get(name):
        if name not in cache:
            report = ImportReport()
            cache[name] = (import_file(fireact(name), report=report), report)
        return cache[name]

    return get


def roles(rec):
    return [t["role"] for t in rec["messages"]]


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def gpt_row(*turns):
    """{'messages': [...]} from ('user'|'assistant', text) pairs, FireAct's final observation appended."""
    msgs = [{"role": r, "content": c} for r, c in turns]
    return {"messages": msgs + [{"role": "user", "content": "Observation: Episode finished, reward = True"}]}


REACT = [("user", "Who directed Film X?"),
         ("assistant", "Thought: I need to search Film X.\nAction: search[Film X]"),
         ("user", "Observation: Film X was directed by Ann Lee."),
         ("assistant", "Thought: Ann Lee directed it.\nAction: finish[Ann Lee]")]


# ---------------------------------------------------------------- FireAct gpt_format, real files

def test_hotpotqa_gives_500_valid_records_and_every_assistant_turn_parses(imported):
    records, report = imported("gpt_format_hotpotqa.jsonl")
    assert len(records) == 500 and report.read == 500 and report.imported == 500
    for rec in records:
        validate_record(rec)
        assert rec["meta"]["source"] == "fireact" and rec["meta"]["task"] == "hotpotqa"
        assert rec["meta"]["capability"] == "format" and rec["meta"]["tools"] is True
        assert rec["meta"]["negative"] is None
        assert not rec["messages"][-1]["content"].startswith("Observation")  # the final observation is dropped
        for turn in rec["messages"]:
            assert turn["loss"] == (turn["role"] == "assistant")
            if turn["role"] == "assistant":
                parsed = parse_action(turn["content"])
                assert parsed.ok and parsed.action in ACTIONS, turn["content"]
                assert parsed.trailing == "", turn["content"]
            else:
                assert turn is rec["messages"][0] or turn["content"].startswith("Observation: ")
    assert records[0]["meta"]["id"] == "fireact-gpt_format_hotpotqa-1"
    assert len({r["meta"]["id"] for r in records}) == 500
    assert Counter(r["meta"]["method"] for r in records) == {"react": 499, "cot": 1}  # line 51 finishes at once


def test_hotpotqa_multi_action_turn_is_cut_to_its_first_action_and_reported(imported):
    records, report = imported("gpt_format_hotpotqa.jsonl")
    assert report.issues == {CUT_TEXT_AFTER_ACTION: [407]}
    turn = records[406]["messages"][3]["content"]
    assert turn.endswith("\nAction: search[Alden Ehrenreich Tetro]") and "Tye Sheridan Tetro" not in turn


def test_hotpotqa_multimethod(imported):
    records, report = imported("gpt_format_hotpotqa_multimethod.jsonl")
    assert report.read == 733 and len(records) == 733
    assert Counter(r["meta"]["method"] for r in records) == {"react": 499, "cot": 187, "reflexion": 47}
    assert {r["meta"]["task"] for r in records} == {"hotpotqa"}
    assert report.rewards == {"True": 507, "1": 186, "False": 40}
    assert report.count(FAILED_EPISODE) == 40  # kept (all turns still well-formed), but reported
    assert report.count(CUT_TEXT_AFTER_ACTION) == 16  # 'Action: finish[x]\nAction: finish[x]' and line 562
    assert set(report.issues) == {FAILED_EPISODE, CUT_TEXT_AFTER_ACTION}
    for rec in records:
        said = [t for t in rec["messages"] if t["role"] == "assistant"]
        assert all(t["loss"] for t in said)
        assert parse_action(said[-1]["content"]).action == "finish"
        if rec["meta"]["method"] == "cot":
            assert len(said) == 1


def test_multitask_counts_methods_tasks_and_defects(imported):
    records, report = imported("gpt_format_multitask_multimethod.jsonl")
    assert report.read == 2063 and len(records) == 2061
    assert Counter(r["meta"]["task"] for r in records) == {"hotpotqa": 733, "mmlu": 712, "strategyqa": 616}
    assert Counter(r["meta"]["method"] for r in records) == {"react": 1015, "cot": 975, "reflexion": 71}
    assert report.issues[SKIPPED_QUESTION_IN_ASSISTANT] == [1860, 2047]
    assert report.issues[DROPPED_FAKE_OBSERVATION] == [240, 994, 1491, 1588, 1831]
    assert report.issues[UNTRAINED_NO_ACTION] == [264, 283, 983, 992, 1397]
    assert report.count(CUT_TEXT_AFTER_ACTION) == 16
    assert report.count(FAILED_EPISODE) == 49
    assert MOVED_MMLU_OPTIONS not in report.issues  # see test_multitask_mmlu_options_are_in_the_question
    assert "2063 read, 2061 imported" in report.summary()


def test_multitask_every_trained_turn_parses_and_the_untrained_ones_have_no_action(imported):
    records, _ = imported("gpt_format_multitask_multimethod.jsonl")
    untrained = []
    for rec in records:
        validate_record(rec)
        for i, turn in enumerate(rec["messages"]):
            if turn["role"] != "assistant":
                assert not turn["loss"]
                continue
            parsed = parse_action(turn["content"])
            if turn["loss"]:
                assert parsed.ok and parsed.action in ACTIONS and parsed.trailing == "", turn["content"]
            else:
                assert not parsed.ok and "Action" not in turn["content"]
                untrained.append((rec["meta"]["id"].rsplit("-", 1)[1], i))
            assert not turn["content"].startswith("Observation")
    assert untrained == [("264", 13), ("283", 21), ("983", 21), ("992", 19), ("1397", 21)]


def test_multitask_task_detection_agrees_with_where_each_record_comes_from(imported):
    records, _ = imported("gpt_format_multitask_multimethod.jsonl")
    hotpot_questions = {r["messages"][0]["content"] for r in imported("gpt_format_hotpotqa_multimethod.jsonl")[0]}
    for rec in records:
        question = rec["messages"][0]["content"]
        truth = ("hotpotqa" if question in hotpot_questions
                 else "mmlu" if question.startswith("Question:") else "strategyqa")
        assert rec["meta"]["task"] == truth, rec["meta"]["id"]


def test_multitask_mmlu_options_are_in_the_question(imported):
    # The README's quirk ("the MMLU answer options sit in the assistant output") is not in this copy:
    # all 712 MMLU questions carry 'A. ...' to 'D. ...' lines; no assistant turn of any record lists options.
    records, report = imported("gpt_format_multitask_multimethod.jsonl")
    mmlu = [r for r in records if r["meta"]["task"] == "mmlu"]
    assert len(mmlu) == 712 and report.count(MOVED_MMLU_OPTIONS) == 0
    for rec in mmlu:
        question = rec["messages"][0]["content"]
        assert question.startswith("Question: ") and [ln[:3] for ln in question.split("\n")[-4:]] == [
            "A. ", "B. ", "C. ", "D. "]
    answers = Counter(parse_letter(parse_action(r["messages"][-1]["content"]).argument) for r in mmlu)
    assert answers == {"B": 220, "A": 171, "D": 171, "C": 149, None: 1}  # line 1831 gives up: finish[None]
    for rec in records:
        assert all(take_options(t["content"])[0] == [] for t in rec["messages"][1:] if t["role"] == "assistant")


def test_alpaca_gives_the_same_messages_as_gpt_format(imported):
    alpaca, report = imported("alpaca_format_hotpotqa.json")
    gpt, _ = imported("gpt_format_hotpotqa.jsonl")
    assert len(alpaca) == 500 and report.read == 500
    assert [r["messages"] for r in alpaca] == [r["messages"] for r in gpt]
    assert [r["meta"]["method"] for r in alpaca] == [r["meta"]["method"] for r in gpt]
    assert alpaca[0]["meta"]["id"] == "fireact-alpaca_format_hotpotqa-1"
    assert report.issues == {CUT_TEXT_AFTER_ACTION: [407]}


# ---------------------------------------------------------------- FireAct, inline data

def test_gpt_record_shape(tmp_path):
    path = write_jsonl(tmp_path / "gpt_format_tiny.jsonl", [gpt_row(*REACT)])
    (rec,) = import_fireact_gpt(path)
    assert rec["schema"] == "fireflan.chat/1"
    assert rec["messages"] == [{"role": r, "content": c, "loss": r == "assistant"} for r, c in REACT]
    assert rec["meta"] == {"id": "fireact-gpt_format_tiny-1", "source": "fireact", "task": "hotpotqa",
                           "method": "react", "capability": "format", "negative": None, "tools": True,
                           "reward": "True"}


def test_mmlu_options_in_the_assistant_output_move_into_the_question(tmp_path):
    row = gpt_row(("user", "Question: When ice melts, it changes from a"),
                  ("assistant", "A. gas to a liquid\nB. solid to a liquid\nC. liquid to a solid\nD. solid to a gas\n"
                                "Thought: Ice is solid, water is liquid. So the answer is B.\nAction: finish[B]"))
    row["messages"][-1]["content"] = "Observation: Episode finished, reward = 1"
    report = ImportReport()
    (rec,) = import_fireact_gpt(write_jsonl(tmp_path / "multitask.jsonl", [row]), report)
    assert rec["messages"][0]["content"] == ("Question: When ice melts, it changes from a\nA. gas to a liquid\n"
                                             "B. solid to a liquid\nC. liquid to a solid\nD. solid to a gas")
    assert rec["messages"][1]["content"] == ("Thought: Ice is solid, water is liquid. So the answer is B.\n"
                                             "Action: finish[B]")
    assert rec["meta"]["task"] == "mmlu" and rec["meta"]["method"] == "cot"
    assert report.issues == {MOVED_MMLU_OPTIONS: [1]}


def test_move_options_leaves_questions_that_have_them_and_plain_reasoning_alone():
    with_options = [{"role": "user", "content": "Question: 2+2?\nA. 3\nB. 4"},
                    {"role": "assistant", "content": "Thought: A. is wrong\nB. is right\nAction: finish[B]"}]
    assert move_options_to_question(with_options) == (with_options, False)
    plain = [{"role": "user", "content": "Is it?"},
             {"role": "assistant", "content": "Thought: A: no.\nAction: finish[no]"}]
    assert move_options_to_question(plain) == (plain, False)
    assert take_options("Options:\nA. 3\nB. 4\nThought: 4.") == (["A. 3", "B. 4"], "Thought: 4.")
    assert take_options("(A) 3\n(B) 4") == (["A. 3", "B. 4"], "")
    assert has_options("Q?\nA. x\nB. y") and not has_options("Q?\nB. x\nC. y") and not has_options("Plan A. then B.")


def test_known_fireact_defects_are_repaired_and_reported(tmp_path):
    fake = gpt_row(*REACT)
    fake["messages"].insert(-1, {"role": "assistant", "content": "Observation: Episode finished, reward = 1"})
    no_action = gpt_row(REACT[0], ("assistant", "Thought: I think it is Ann Lee."), REACT[2], REACT[3])
    fused = {"messages": [{"role": "assistant", "content": "Is it?\nAction: finish[Thought: yes. Answer: yes.]"},
                          {"role": "user", "content": "Observation: Episode finished, reward = 1"}]}
    twice = gpt_row(*REACT[:3], ("assistant", "Thought: done. Action: finish[Ann Lee]\nAction: finish[Ann Lee]"))
    report = ImportReport()
    records = import_fireact_gpt(write_jsonl(tmp_path / "f.jsonl", [fake, no_action, fused, twice]), report)
    assert [r["meta"]["id"] for r in records] == ["fireact-f-1", "fireact-f-2", "fireact-f-4"]
    assert roles(records[0]) == ["user", "assistant", "user", "assistant"]
    assert [t["loss"] for t in records[1]["messages"]] == [False, False, False, True]
    assert records[2]["messages"][-1]["content"] == "Thought: done. Action: finish[Ann Lee]"
    assert report.issues == {DROPPED_FAKE_OBSERVATION: [1], UNTRAINED_NO_ACTION: [2],
                             SKIPPED_QUESTION_IN_ASSISTANT: [3], CUT_TEXT_AFTER_ACTION: [4]}


def test_split_alpaca_output():
    out = "Thought: a\nAction: search[X]\nObservation: b\nmore b\nThought: c\nAction: finish[Y]\nObservation: done\n"
    assert split_alpaca_output(out) == [
        {"role": "assistant", "content": "Thought: a\nAction: search[X]"},
        {"role": "user", "content": "Observation: b\nmore b"},
        {"role": "assistant", "content": "Thought: c\nAction: finish[Y]"},
        {"role": "user", "content": "Observation: done"}]


def test_alpaca_inline_and_input_joins_the_question(tmp_path):
    rows = [{"instruction": " Who directed Film X? ", "input": "Answer briefly.",
             "output": "Thought: t\nAction: finish[Ann Lee]\nObservation: Episode finished, reward = True\n"}]
    path = tmp_path / "alpaca.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    (rec,) = import_file(path)
    assert [t["content"] for t in rec["messages"]] == ["Who directed Film X? \nAnswer briefly.".strip(),
                                                       "Thought: t\nAction: finish[Ann Lee]"]
    assert rec["meta"]["method"] == "cot"


def test_detect_method_and_task():
    react = [{"role": r, "content": c} for r, c in REACT]
    assert detect_method(react) == "react"
    assert detect_method(react[:1] + react[3:]) == "cot"
    reflect = react[:3] + [{"role": "assistant", "content": "Thought: Now let me do a reflection. Thought: x\n"
                                                             "Action: finish[Ann]"}]
    assert detect_method(reflect) == "reflexion"
    light = [react[0], {"role": "assistant", "content": "Thought: reflection of light.\nAction: finish[x]"}]
    assert detect_method(light) == "cot"
    assert detect_task(react, "True") == "hotpotqa"
    assert detect_task(react, "1") == "strategyqa"  # tool calls with a 1/0 reward
    yes = [{"role": "user", "content": "Is it?"}, {"role": "assistant", "content": "Thought: t\nAction: finish[yes]"}]
    assert detect_task(yes, "1") == "strategyqa"
    assert detect_task([yes[0], {"role": "assistant", "content": "Thought: t\nAction: finish[Yes]"}], "1") == "hotpotqa"
    assert detect_task([{"role": "user", "content": "Question: q\nA. x\nB. y"}, yes[1]], "1") == "mmlu"


def test_clean_assistant_turn():
    assert clean_assistant_turn("Thought: t\nAction: search[A], search[B]") == (
        "Thought: t\nAction: search[A]", True, CUT_TEXT_AFTER_ACTION)
    assert clean_assistant_turn("Thought: t\nAction: finish[A]") == ("Thought: t\nAction: finish[A]", True, None)
    assert clean_assistant_turn("Thought: no action") == ("Thought: no action", False, UNTRAINED_NO_ACTION)
    assert clean_assistant_turn("Thought: t\nAction: play[A]")[1:] == (False, UNTRAINED_NO_ACTION)


# ---------------------------------------------------------------- errors name file, line and field

def test_missing_messages(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [gpt_row(*REACT), {"conversation_id": 3}])
    with pytest.raises(DataError) as e:
        import_fireact_gpt(path)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), 2, "messages")
    assert "g.jsonl:2: field 'messages': missing" in str(e.value)


@pytest.mark.parametrize("row, field", [
    (gpt_row(REACT[0], REACT[0], *REACT[1:]), "messages[1].role"),
    (gpt_row(*REACT[1:]), "messages[0].role"),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "tool", "content": "x"}]}, "messages[1].role"),
    ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Thought: t\nAction: x[y]"},
                   {"role": "user", "content": "Observation: cut off here"}]}, "messages[2].role"),
])
def test_wrong_role_order_and_bad_turns(tmp_path, row, field):
    path = write_jsonl(tmp_path / "g.jsonl", [gpt_row(*REACT), row])
    with pytest.raises(DataError) as e:
        import_fireact_gpt(path)
    assert (e.value.line, e.value.field) == (2, field)


def test_bad_json_line(tmp_path):
    path = write_jsonl(tmp_path / "g.jsonl", [gpt_row(*REACT), gpt_row(*REACT), '{"messages": [oops'])
    with pytest.raises(DataError) as e:
        import_file(path)
    assert e.value.line == 3 and "not valid JSON" in str(e.value)


def test_alpaca_errors(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"instruction": "q", "input": "", "output": "Observation: x\nThought: t"}]))
    with pytest.raises(DataError) as e:
        import_fireact_alpaca(path)
    assert (e.value.line, e.value.field) == (1, "output[1].role")
    path.write_text(json.dumps([{"instruction": "q", "input": ""}]))
    with pytest.raises(DataError) as e:
        import_fireact_alpaca(path)
    assert (e.value.line, e.value.field) == (1, "output")


def test_unknown_shape_and_kind(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [{"text": "hello"}])
    with pytest.raises(DataError, match="unknown record shape"):
        import_file(path)
    with pytest.raises(ValueError, match="unknown kind"):
        import_file(path, kind="sharegpt")


# ---------------------------------------------------------------- conversations

def test_conversations_from_value_without_loss_flags(tmp_path):
    rows = [{"id": "os_0", "conversations": [
        {"from": "human", "value": "List the files."},
        {"from": "gpt", "value": "Think: use ls.\nAct: bash ls"},
        {"from": "human", "value": "a.txt"},
        {"from": "gpt", "value": "Act: answer(a.txt)"}]}]
    path = tmp_path / "agentinstruct.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    (rec,) = import_file(path)
    assert [(t["role"], t["loss"]) for t in rec["messages"]] == [
        ("user", False), ("assistant", True), ("user", False), ("assistant", True)]
    assert rec["messages"][1]["content"] == "Think: use ls.\nAct: bash ls"
    assert rec["meta"] == {"id": "conversations-agentinstruct-1", "source": "conversations", "task": "unknown",
                           "method": "unknown", "capability": "format", "negative": None, "tools": True}


def test_conversations_role_content_with_loss_flags_and_fields(tmp_path):
    rows = [{"conversation": [
        {"role": "system", "content": "You are an agent.", "loss": False},
        {"role": "user", "content": "Hi", "loss": False},
        {"role": "assistant", "content": "OK.", "loss": False},
        {"role": "user", "content": "Do it", "loss": None},
        {"role": "assistant", "content": "Done.", "loss": True}], "task": "os", "method": "react"}]
    (rec,) = import_conversations(write_jsonl(tmp_path / "flan.jsonl", rows))
    assert [(t["role"], t["loss"]) for t in rec["messages"]] == [
        ("system", False), ("user", False), ("assistant", False), ("user", False), ("assistant", True)]
    assert (rec["meta"]["task"], rec["meta"]["method"]) == ("os", "react")


@pytest.mark.parametrize("turns, field", [
    ([{"from": "human", "value": "a", "loss": True}, {"from": "gpt", "value": "b"}], "conversations[0].loss"),
    ([{"from": "human", "value": "a"}, {"from": "human", "value": "b"}], "conversations[1].from"),
    ([{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}, {"from": "human", "value": "c"}],
     "conversations[2].from"),
    ([{"from": "robot", "value": "a"}], "conversations[0].from"),
    ([{"from": "human"}], "conversations[0].value"),
    ([{"from": "human", "value": "a"}, {"from": "gpt", "value": "b", "loss": "yes"}], "conversations[1].loss"),
    ([{"from": "human", "value": "a"}, {"from": "gpt", "value": "b", "loss": False}], "conversations"),
    ([], "conversations"),
])
def test_conversation_errors(tmp_path, turns, field):
    ok = {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}
    path = write_jsonl(tmp_path / "c.jsonl", [ok, {"conversations": turns}])
    with pytest.raises(DataError) as e:
        import_conversations(path)
    assert (e.value.path, e.value.line, e.value.field) == (str(path), 2, field)
