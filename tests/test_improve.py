"""improve: which questions a round rolls out, what it keeps, resumable rollouts, bad options refused."""

import json

import pytest
from helpers.coin import CoinModel

from fireflan.agent.loop import AgentConfig
from fireflan.improve import ImproveConfig, improve, keep_successes, pick_questions, rollouts, teacher_records
from fireflan.io import DataError
from fireflan.tasks import open_task


def _record(qid, seed, success, steps):
    step = {"thought": "t", "action": "search", "argument": "x", "observation": "o", "raw": "r"}
    return {"id": qid, "seed": seed, "success": success,
            "steps": [dict(step, argument=f"x{i}") for i in range(steps)]}


def test_questions_without_a_success_are_rolled_out_first(small_world):
    examples = open_task("world", str(small_world), "train", 40)[1]
    solved = {ex.id for ex in examples[:30]}
    picked = pick_questions(examples, solved, 15, seed=0, round_=1)
    assert len(picked) == 15 and {ex.id for ex in picked[:10]} == {ex.id for ex in examples[30:]}
    assert [ex.id for ex in pick_questions(examples, solved, 15, seed=0, round_=1)] == [ex.id for ex in picked]
    other = pick_questions(examples, solved, 15, seed=0, round_=2)  # another round: another sample of the rest
    assert {ex.id for ex in other[:10]} == {ex.id for ex in picked[:10]} and other[10:] != picked[10:]


def test_successes_are_kept_once_each_and_the_shortest_when_asked():
    records = [_record("a", 0, True, 3), _record("a", 1, True, 3), _record("a", 2, True, 2),
               _record("a", 3, False, 1), _record("b", 0, False, 2), _record("c", 5, True, 4)]
    kept = keep_successes(records)
    assert [(r["id"], r["seed"]) for r in kept] == [("a", 2), ("a", 0), ("c", 5)]  # seed 1 repeats seed 0's steps
    assert [(r["id"], r["seed"]) for r in keep_successes(records, "shortest")] == [("a", 2), ("c", 5)]


def test_the_teachers_share_of_its_successes(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(_record(f"q{i}", 0, i % 4 != 0, 2)) + "\n" for i in range(400)))
    everything, solved = teacher_records([str(path)], 1.0, seed=0)
    assert len(everything) == len(solved) == 300
    half, again = teacher_records([str(path)], 0.5, seed=0)
    assert again == solved and 120 <= len(half) <= 180
    assert teacher_records([str(path)], 0.5, seed=0)[0] == half


def test_rollouts_sample_k_per_question_and_resume_where_they_stopped(small_world, tmp_path):
    task, examples, tool = open_task("world", str(small_world), "train", 5)
    model = CoinModel(examples)
    path = tmp_path / "rollouts.jsonl"
    recs = rollouts(model, task, tool, examples[:3], path, k=4, temperature=0.7, agent=AgentConfig(max_calls=2),
                    seed=100, round_=1)
    assert len(recs) == 12 and len(model.calls) == 12
    assert {r["seed"] for r in recs} == {100, 101, 102, 103} and {t for _, _, t in model.calls} == {0.7}
    assert sum(r["success"] for r in recs) == 6 and all(r["extra"]["round"] == 1 for r in recs)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:40])  # killed: one whole record lost, one torn
    model.calls.clear()
    again = rollouts(model, task, tool, examples[:4], path, k=4, temperature=0.7, agent=AgentConfig(max_calls=2),
                     seed=100, round_=1)
    assert len(model.calls) == 2 + 4  # the two lost ones, and the new question's four
    assert sorted((r["id"], r["seed"]) for r in again) == sorted((ex.id, 100 + i) for ex in examples[:4]
                                                                 for i in range(4))


def test_bad_options_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ValueError, match="--keep"):
        improve(ImproveConfig(keep="best", out=str(tmp_path)))
    with pytest.raises(ValueError, match="trained on the questions it is measured on"):
        improve(ImproveConfig(split="test", out=str(tmp_path)))
    with pytest.raises(ValueError, match="--teacher-share"):
        improve(ImproveConfig(teacher_share=2, out=str(tmp_path)))
    with pytest.raises(DataError, match="train.json"):
        improve(ImproveConfig(start=str(tmp_path / "nothing"), out=str(tmp_path / "o")))
    assert not (tmp_path / "o").exists()
