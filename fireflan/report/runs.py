"""Evaluation folders read for a report: each run's name, settings, metrics and trajectories; the questions'
types and supporting facts from the data the runs name."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fireflan.io import DataError, iter_jsonl
from fireflan.tasks import load_examples


def read_runs(folders: list) -> list[dict]:
    """Each evaluation folder's name, settings, metrics and trajectories ({question id: record})."""
    names = run_names(folders)
    runs = []
    for folder, name in zip(folders, names, strict=True):
        folder = Path(folder)
        metrics_path = folder / "metrics.json"
        if not metrics_path.exists():
            raise DataError(metrics_path, "no such file (is this an evaluation folder?)")
        config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").exists() else {}
        trajectories = {}
        if (folder / "trajectories.jsonl").exists():
            for _, rec in iter_jsonl(folder / "trajectories.jsonl"):
                trajectories[str(rec["id"])] = rec  # a question evaluated twice: the last one counts
        runs.append({"name": name, "folder": str(folder), "config": config,
                     "metrics": json.loads(metrics_path.read_text()), "trajectories": trajectories,
                     "evaluated": time.strftime("%Y-%m-%d %H:%M", time.localtime(metrics_path.stat().st_mtime))})
    return runs


def metrics_with_turns(run: dict) -> dict:
    """A run's metrics with its folder (`run`) and the number of steps of each episode (`turn_counts`)."""
    return {**run["metrics"], "run": run["folder"],
            "turn_counts": [len(t.get("steps", [])) for t in run["trajectories"].values()]}


def run_names(folders: list) -> list[str]:
    """Short names: the folder's own name, or parent/name where two runs share one.
    ['a/eval-prompted', 'a/eval-finetuned'] -> ['eval-prompted', 'eval-finetuned']"""
    paths = [Path(f) for f in folders]
    names = [p.name or str(p) for p in paths]
    return [f"{p.parent.name}/{n}" if names.count(n) > 1 else n for p, n in zip(paths, names, strict=True)]


def question_info(runs: list[dict]) -> tuple[dict[str, tuple], list[str]]:
    """{question id: (type, supporting-fact sentences, the Example)} from the evaluations' data, and notes
    on what could not be read. Missing data (the hub offline, a moved file) leaves the page without types."""
    info, notes, seen = {}, [], set()
    for run in runs:
        c = run["config"]
        key = (c.get("task"), c.get("data"), c.get("split"))
        if key in seen or not c.get("task"):
            continue
        seen.add(key)
        try:
            examples = load_examples(c["task"], c.get("data"), c.get("split"))
        except Exception as e:  # any failure to load only costs the page its types and facts
            notes.append(f"{run['name']}: question types and supporting facts unavailable "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            continue
        for ex in examples:
            info.setdefault(ex.id, (ex.type, fact_sentences(ex.supporting_facts, ex.context), ex))
    return info, notes


def fact_sentences(supporting_facts: list, context: list) -> list[str]:
    """The sentences that supporting facts point to.
    [["Paris", 1]], [["Paris", ["Paris is big.", "It is in France."]]] -> ["It is in France."]"""
    paragraphs = {title: sentences for title, sentences in context}
    out = []
    for title, index in supporting_facts:
        sentences = paragraphs.get(title, [])
        if isinstance(index, int) and 0 <= index < len(sentences) and sentences[index].strip():
            out.append(sentences[index].strip())
    return out
