"""fireflan judge: held-out judge records, a model's P(yes) on each, accuracy per kind of step, AUC; resumable."""

import json

import pytest

from fireflan import judgeval
from fireflan.judgeval import JudgeEvalConfig, auc, judge_eval, judge_metrics
from fireflan.models import Usage


class SearchTruster:
    """A judge that says yes to every search or lookup and no to every finish (greedy verdicts)."""

    def __init__(self, fail_after=None):
        self.calls, self.fail_after, self.last_usage = 0, fail_after, Usage(calls=1)

    def generate(self, messages, **_):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # a kill half-way
        candidate = [m for m in messages if m["role"] == "assistant"][-1]["content"]
        return "no: not yet." if "finish[" in candidate else "yes: it reads a page."


def test_metrics_and_auc():
    rows = [{"verdict": True, "p_yes": 0.9, "kind": "right search"},
            {"verdict": True, "p_yes": 0.4, "kind": "right finish"},
            {"verdict": False, "p_yes": 0.4, "kind": "wrong value"},
            {"verdict": False, "p_yes": 0.1, "kind": "wrong entity"}]
    m = judge_metrics(rows)
    assert m["accuracy"] == 0.75 and m["by_kind"]["right finish"]["accuracy"] == 0.0
    assert m["auc"] == (1 + 1 + 0.5 + 1) / 4 and m["mean_p_yes_wrong_steps"] == 0.25
    assert auc([0.5], []) is None and auc([0.2], [0.8]) == 0.0


def test_judge_eval_reads_every_kind_of_step_and_resumes(small_world, tmp_path, monkeypatch):
    (tmp_path / "fake.gguf").write_bytes(b"GGUF")  # judge_eval looks for its model before it writes anything
    config = JudgeEvalConfig(model=str(tmp_path / "fake.gguf"), out=str(tmp_path / "j"), data=str(small_world),
                             split="dev", questions=30)
    monkeypatch.setattr(judgeval, "load_model", lambda *a, **k: (SearchTruster(fail_after=10), False))
    with pytest.raises(KeyboardInterrupt):
        judge_eval(config)
    assert len((tmp_path / "j" / "verdicts.jsonl").read_text().splitlines()) == 10
    judge = SearchTruster()
    monkeypatch.setattr(judgeval, "load_model", lambda *a, **k: (judge, False))
    m = judge_eval(config)
    records = (tmp_path / "j" / "records.jsonl").read_text().splitlines()
    assert judge.calls == len(records) - 10 and m["records"] == len(records)  # nothing judged twice
    assert m["yes_records"] == m["no_records"] > 30  # balanced
    kinds = m["by_kind"]
    assert set(kinds) >= {"right search", "right finish", "wrong entity", "wrong value", "early finish"}
    assert {kinds[k]["accuracy"] for k in ("right search", "wrong value", "early finish")} == {1.0}
    assert kinds["wrong entity"]["accuracy"] == kinds["right finish"]["accuracy"] == 0.0
    assert json.loads((tmp_path / "j" / "metrics.json").read_text())["accuracy"] == m["accuracy"]
    with pytest.raises(ValueError, match="seed"):  # another setting is not mixed into the folder
        judge_eval(JudgeEvalConfig(**{**config.__dict__, "seed": 1}))


def test_thresholds_separate_right_from_wrong_per_kind_and_the_methods_read_them(tmp_path):
    """A judge that leans on the kind of step (low P(yes) on every answer, high on every search) still ranks
    answers: the answer threshold is found below 0.5, where the right ones are told from the wrong."""
    from fireflan.agent.judge import Thresholds
    from fireflan.io import DataError
    from fireflan.judgeval import threshold

    assert threshold([0.3, 0.35], [0.2, 0.25]) == 0.275
    assert threshold([0.9], []) == 0.5 and threshold([0.3], [0.3]) == 0.3  # none or no separation: nearest 0.5
    rows = [{"verdict": True, "p_yes": p, "kind": "right finish"} for p in (0.30, 0.32, 0.28)] + \
           [{"verdict": False, "p_yes": p, "kind": "early finish"} for p in (0.20, 0.22)] + \
           [{"verdict": True, "p_yes": 0.6, "kind": "right search"}, {"verdict": False, "p_yes": 0.55,
                                                                     "kind": "wrong entity"}]
    m = judge_metrics(rows)
    assert m["accuracy"] == 3 / 7  # at 0.5: every answer a no, every search a yes
    assert m["thresholds"] == {"answer": 0.25, "step": 0.575} and m["calibrated_accuracy"] == 1.0
    assert m["auc_answers"] == 1.0 and m["auc_steps"] == 1.0
    (tmp_path / "metrics.json").write_text(json.dumps(m))
    bar = Thresholds.read(tmp_path / "metrics.json")
    assert bar.accepts(0.3, "finish") and not bar.accepts(0.3, "search") and bar.margin(0.3, "finish") > 0
    with pytest.raises(DataError, match="no such file"):
        Thresholds.read(tmp_path / "none.json")
    (tmp_path / "old.json").write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(DataError, match="no judge thresholds"):
        Thresholds.read(tmp_path / "old.json")
