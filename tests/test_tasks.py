import json

import pytest
from helpers import HOTPOT_SAMPLE, shared

from fireflan.io import DataError
from fireflan.tasks import TASKS, get_task
from fireflan.tasks.hotpotqa import from_hub_record


def test_registry():
    assert TASKS == ("world", "hotpotqa", "bamboogle", "strategyqa", "mmlu", "dbbench")
    for name in TASKS:
        task = get_task(name)
        assert task.NAME == name and callable(task.load) and callable(task.score)
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        get_task("nope")


# ---------------------------------------------------------------- world

def test_world_loads_from_a_folder_and_in_memory(small_world):
    task = get_task("world")
    test = task.load(small_world, split="test")
    assert len(test) == 60 and test[0].task == "world" and test[0].context
    assert task.load(small_world, split="dev", n=5) == task.load(small_world / "dev.jsonl", n=5)
    in_memory = task.load(split="test", n=3)
    assert len(in_memory) == 3 and in_memory[0].id.startswith("world-0-test-")
    assert task.score(test[0].answer.upper(), test[0]) == {"em": 1.0, "f1": 1.0}
    with pytest.raises(ValueError, match="splits"):
        task.load(small_world, split="validation")


def test_world_file_with_a_missing_field_names_file_line_and_field(small_world, tmp_path):
    lines = (small_world / "test.jsonl").read_text().splitlines()
    broken = json.loads(lines[2])
    del broken["answer"]
    lines[2] = json.dumps(broken)
    (tmp_path / "test.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"test\.jsonl:3: field 'answer': missing"):
        get_task("world").load(tmp_path, split="test")
    with pytest.raises(DataError, match=r"no such file"):
        get_task("world").load(tmp_path, split="dev")


# ---------------------------------------------------------------- hotpotqa

def test_hotpotqa_official_json():
    examples = get_task("hotpotqa").load(shared(HOTPOT_SAMPLE.name))
    assert len(examples) == 89
    ex = examples[0]
    assert ex.id == "5a7613c15542994ccc9186bf" and ex.type in ("bridge", "comparison")
    assert ex.supporting_facts and len(ex.context) == 10


def test_hotpotqa_simplified_file_without_ids_or_context():
    examples = get_task("hotpotqa").load(shared("hotpotqa_dev_simplified_from500.json"), n=10)
    assert len(examples) == 10 and examples[0].context == [] and examples[0].id.endswith("-1")


def test_hotpotqa_errors(tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps([{"question": "q", "answer": "a"}, {"question": "q2"}]))
    with pytest.raises(DataError, match=r"h\.json:2: field 'answer': missing"):
        get_task("hotpotqa").load(path)
    path.write_text(json.dumps([{"question": "q", "answer": "a", "supporting_facts": [["T"]]}]))
    with pytest.raises(DataError, match="field 'supporting_facts'"):
        get_task("hotpotqa").load(path)
    path.write_text('{"question": ')
    with pytest.raises(DataError, match=r"h\.json:1: not valid JSON"):
        get_task("hotpotqa").load(path)


def test_hotpotqa_hub_record_conversion():
    hub = {"id": "x1", "question": "Q?", "answer": "A", "type": "bridge", "level": "hard",
           "supporting_facts": {"title": ["T1", "T2"], "sent_id": [0, 2]},
           "context": {"title": ["T1", "T2"], "sentences": [["a.", " b."], ["c.", " d.", " e."]]}}
    rec = from_hub_record(hub)
    assert rec["_id"] == "x1" and rec["supporting_facts"] == [["T1", 0], ["T2", 2]]
    assert rec["context"] == [["T1", ["a.", " b."]], ["T2", ["c.", " d.", " e."]]]


def test_hub_loading_fails_with_advice_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="pass a local file"):
        get_task("hotpotqa").load(None, split="validation", n=2)


# ---------------------------------------------------------------- others

def test_bamboogle_csv(tmp_path):
    path = tmp_path / "bamboogle.csv"
    path.write_text('Question,Answer\n"Who was president when the Eiffel Tower opened?",Sadi Carnot\n')
    task = get_task("bamboogle")
    (ex,) = task.load(path)
    assert ex.answer == "Sadi Carnot" and task.score("sadi carnot", ex)["em"] == 1.0
    path.write_text("Question,Answer\nA question,\n")
    with pytest.raises(DataError, match=r"bamboogle\.csv:2: field 'Answer': empty"):
        task.load(path)
    path.write_text("Q,A\nx,y\n")
    with pytest.raises(DataError, match="field 'Question'"):
        task.load(path)


def test_strategyqa_file():
    task = get_task("strategyqa")
    examples = task.load(shared("strategyqa_train_filtered.json"))
    assert len(examples) == 2821 and {e.answer for e in examples} == {"yes", "no"}
    ex = examples[0]
    assert task.score("Yes, they did.", ex)["em"] == float(ex.answer == "yes")


def test_strategyqa_bad_label(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps([{"question": "Is it?", "answer": "maybe"}]))
    with pytest.raises(DataError, match=r"s\.json:1: field 'answer': expected bool, got str"):
        get_task("strategyqa").load(path)


def test_mmlu_csv(tmp_path):
    (tmp_path / "astronomy_test.csv").write_text('"Which planet is largest?",Mars,Jupiter,Venus,Earth,B\n')
    task = get_task("mmlu")
    (ex,) = task.load(tmp_path)
    assert ex.question.endswith("\nA. Mars\nB. Jupiter\nC. Venus\nD. Earth") and ex.answer == "B"
    assert task.score("(B) Jupiter", ex)["em"] == 1.0 and task.score("A", ex)["em"] == 0.0
    (tmp_path / "astronomy_test.csv").write_text("q,a,b,c,d,E\n")
    with pytest.raises(DataError, match=r"astronomy_test\.csv:1: field 'answer'"):
        task.load(tmp_path)
