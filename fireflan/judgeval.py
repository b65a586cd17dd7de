"""How well a model judges: its P(yes) on held-out judge records, against the verdict they carry.

    python -m fireflan judge --model runs/hotpotqa/model/gguf/model-q8_0.gguf --data runs/hotpotqa/world --split dev

1. the scripted teacher answers `questions` questions of a split the model was not trained on (resumable);
2. judge records are made from its trajectories exactly as `corpus --roles judge=...` makes them (the
   teacher's own steps, and the perturbed ones: a search for the wrong entity, a finish with a wrong
   value, a finish at the first hop), balanced yes/no: OUT/records.jsonl;
3. the model reads each conversation in the judge's role; its P(yes) is kept (OUT/verdicts.jsonl,
   resumable) and compared with the record's verdict at 0.5: OUT/metrics.json (accuracy with its 95%
   interval, on each kind of step, the mean P(yes) of the right and the wrong steps, and the AUC: how
   often a right step gets a higher P(yes) than a wrong one, which is what choosing between candidates
   needs).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from fireflan.agent.judge import yes_probabilities
from fireflan.agent.loop import Trajectory
from fireflan.corpus.roles import make_roles
from fireflan.evaluate import wilson_interval
from fireflan.io import append_jsonl, iter_jsonl, resumable_records, write_json, write_jsonl
from fireflan.models import load_model
from fireflan.models.load import check_model
from fireflan.options import guard_run, one_run_per_folder, opt
from fireflan.teach import TeachConfig, teach
from fireflan.tools.actions import parse_action


@dataclass
class JudgeEvalConfig:
    """Options of `fireflan judge`."""

    model: str = opt("runs/model/gguf/model-q8_0.gguf", "the GGUF whose judge role is measured")
    out: str = opt("runs/judge", "folder for records.jsonl, verdicts.jsonl and metrics.json")
    task: str = opt("world", "a task with the wiki tool: world | hotpotqa")
    data: str | None = opt(None, "the questions (None: the default world)")
    split: str = opt("dev", "held-out questions: not the split the model was trained on")
    questions: int = opt(80, "questions the teacher answers; their trajectories give the records (about 5 each)")
    seed: int = opt(0, "seed of the records' perturbations")
    threads: int | None = opt(None, "CPU threads (None: all)")


def judge_kind(record: dict) -> str:
    """What a judge record asks about: 'right search', 'right finish', ..., 'wrong entity', 'wrong
    value', 'early finish' (the kinds of step corpus --roles judge writes)."""
    messages, meta = record["messages"], record["meta"]
    candidate = [m for m in messages[:-1] if m["role"] == "assistant"][-1]["content"]
    action = parse_action(candidate).action
    if meta["verdict"]:
        return f"right {action}"
    if action != "finish":
        return "wrong entity"
    return "early finish" if "first" in messages[-1]["content"] else "wrong value"


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """P(a random right step scores above a random wrong one), ties counting a half."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def threshold(positives: list[float], negatives: list[float]) -> float:
    """The P(yes) at or above which a yes is taken that best separates right candidates from wrong ones on
    these records: the most balanced accuracy (the mean of the share of right ones at or above it and
    of wrong ones below it), a tie to the point nearest 0.5; 0.5 without both kinds."""
    if not positives or not negatives:
        return 0.5
    values = sorted(set(positives) | set(negatives))
    cuts = [values[0]] + [(a + b) / 2 for a, b in zip(values, values[1:], strict=False)] + [values[-1] + 1e-6]

    def balanced(t):
        return (sum(p >= t for p in positives) / len(positives) + sum(n < t for n in negatives) / len(negatives)) / 2

    return round(max(cuts, key=lambda t: (balanced(t), -abs(t - 0.5))), 4)


def _is_answer(row: dict) -> bool:
    return row["kind"] in ("right finish", "wrong value", "early finish")


def judge_metrics(verdicts: list[dict]) -> dict:
    """Rows {verdict: bool, p_yes, kind} -> accuracy (P(yes) >= 0.5 is a yes), per kind, AUC; the thresholds
    that separate right from wrong answers, and right from wrong other steps, best on these records
    (`fireflan evaluate --judge-calibration` uses them), and the accuracy with them."""
    n = len(verdicts)
    right = [v for v in verdicts if (v["p_yes"] >= 0.5) == v["verdict"]]
    bars = {kind: threshold([v["p_yes"] for v in verdicts if v["verdict"] and _is_answer(v) == answer],
                            [v["p_yes"] for v in verdicts if not v["verdict"] and _is_answer(v) == answer])
            for kind, answer in (("answer", True), ("step", False))}
    calibrated = [v for v in verdicts if (v["p_yes"] >= bars["answer" if _is_answer(v) else "step"]) == v["verdict"]]
    pos = [v["p_yes"] for v in verdicts if v["verdict"]]
    neg = [v["p_yes"] for v in verdicts if not v["verdict"]]
    kinds = sorted({v["kind"] for v in verdicts})
    return {
        "records": n, "yes_records": len(pos), "no_records": len(neg),
        "accuracy": len(right) / n if n else None, "accuracy_ci95": wilson_interval(len(right), n),
        "by_kind": {k: {"n": sum(v["kind"] == k for v in verdicts),
                        "accuracy": sum(v["kind"] == k for v in right) / sum(v["kind"] == k for v in verdicts)}
                    for k in kinds},
        "mean_p_yes_right_steps": sum(pos) / len(pos) if pos else None,
        "mean_p_yes_wrong_steps": sum(neg) / len(neg) if neg else None,
        "auc": auc(pos, neg),
        "auc_answers": auc([v["p_yes"] for v in verdicts if v["verdict"] and _is_answer(v)],
                           [v["p_yes"] for v in verdicts if not v["verdict"] and _is_answer(v)]),
        "auc_steps": auc([v["p_yes"] for v in verdicts if v["verdict"] and not _is_answer(v)],
                         [v["p_yes"] for v in verdicts if not v["verdict"] and not _is_answer(v)]),
        "thresholds": bars,
        "calibrated_accuracy": len(calibrated) / n if n else None,
        "calibrated_accuracy_ci95": wilson_interval(len(calibrated), n),
        "calibrated_by_kind": {k: sum(v["kind"] == k for v in calibrated) / sum(v["kind"] == k for v in verdicts)
                               for k in kinds},
    }


def judge_records(config: JudgeEvalConfig) -> list[dict]:
    """The held-out judge records (made once, then read back: the same records for every model)."""
    out = Path(config.out)
    path = out / "records.jsonl"
    if path.is_file():
        return [rec for _, rec in iter_jsonl(path)]
    taught = teach(TeachConfig(out=str(out / "teach"), task=config.task, data=config.data, split=config.split,
                               limit=config.questions, methods="react", seed=config.seed))
    trajectories = [Trajectory.from_record(r) for r in resumable_records(taught["file"])]
    replies = {s.argument: s.observation for t in trajectories for s in t.steps if s.action == "search"}
    records = make_roles(trajectories, {"judge": 1.0}, 10 * len(trajectories), random.Random(config.seed),
                         replies.get)
    if not records:
        raise ValueError(f"--task {config.task}: no judge records came of {config.questions} questions of "
                         f"split {config.split!r} (the judge role needs the wiki's search)")
    write_jsonl(path, records)
    return records


@one_run_per_folder()
def judge_eval(config: JudgeEvalConfig) -> dict:
    """Measure the model's judge role; returns (and writes OUT/metrics.json) the metrics."""
    from tqdm import tqdm

    out = Path(config.out)
    check_model(config.model)
    guard_run(out, config, may_change=("threads", "out"))
    records = judge_records(config)
    path = out / "verdicts.jsonl"
    done = {v["id"] for v in resumable_records(path)}
    todo = [r for r in records if r["meta"]["id"] not in done]
    if todo:
        model, _ = load_model(config.model, threads=config.threads, seed=config.seed)
        for rec in tqdm(todo, desc="judge", unit="record"):
            conversation = [{"role": m["role"], "content": m["content"]} for m in rec["messages"][:-1]]
            [(p, _)] = yes_probabilities(model, [conversation])
            append_jsonl(path, {"id": rec["meta"]["id"], "verdict": rec["meta"]["verdict"], "kind": judge_kind(rec),
                                "p_yes": round(p, 4)})
    metrics = {"model": config.model, **judge_metrics(resumable_records(path))}
    write_json(out / "metrics.json", metrics)
    return metrics
