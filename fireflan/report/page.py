"""The report as a page to look at: the comparison table, plots and run settings; a question browser
with the runs' trajectories side by side, step by step; the training curve and corpus statistics.

    python -m fireflan report runs/hotpotqa/eval-prompted runs/hotpotqa/eval-finetuned --html runs/hotpotqa/html
    # then open runs/hotpotqa/html/index.html in a browser (from disk: no server, no network)

One folder: index.html, page.css and page.js (fireflan's own: fireflan/report/static), the plots
as PNGs, data.js (tables, settings and one row per question) and steps/NNNN.js (the trajectories of
CHUNK questions each, loaded when one of them is opened). Scripts, not JSON: a page opened from disk
may not fetch files, but it may load scripts. Observations repeat (the same page found again, the
same error), so a steps file keeps each text once in a string table.

The outcome of a question over runs A and B (`outcome`):
    both right | only A right | only B right | both wrong | not in every run
and, per run, why its episode ended as it did (`fireflan.evaluate.outcome`: never reached a gold page,
answer seen but not given, ...), a filter of the question browser.

Training curve and corpus statistics come from --model and --corpus, by default from the folders
beside the runs (the recipes' layout: PARENT/model/loss.csv, PARENT/corpus/stats.json).

The page itself (static/) uses no library and no network: it reads window.FIREFLAN_DATA (data.js) and,
when a question is opened, loads steps/NNNN.js, which calls FIREFLAN_chunk(n, {...}). All text from the
runs (model output, observations, questions) reaches the page as text nodes, never as HTML. Its state
lives in the URL hash, so a view can be linked to, and opened headless:
    index.html#view=questions&outcome=only-eval-finetuned-right&type=bridge&q=world-0-test-00042
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import MISSING
from importlib.resources import files
from pathlib import Path

from fireflan.evaluate import OUTCOMES
from fireflan.evaluate import outcome as episode_outcome
from fireflan.io import DataError
from fireflan.options import saved_setting
from fireflan.report.plots import loss_plot, run_plots
from fireflan.report.runs import metrics_with_turns, question_info, read_runs
from fireflan.report.table import COLUMNS, TOOL_MISUSE, by_run

SCHEMA_HTML = "fireflan.report-html/1"
CHUNK = 200  # questions per steps/NNNN.js file
SETTINGS = ("model", "method", "task", "data", "split", "limit", "seed", "noise", "prompt", "shots", "max_calls",
            "max_tokens", "temperature")
FORMAT_ERROR, HALLUCINATED, FEEDBACK = 1, 2, 4  # bits of a step's flags
STATIC = files("fireflan.report") / "static"  # index.html, page.css, page.js: the page's own files


# --------------------------------------------------------------------------- the page's data (pure)

def _setting(run: dict, key: str):
    """A run's setting, from its config (under an older name too) or its metrics; None where neither has it."""
    value = saved_setting(run["config"], key)
    return run["metrics"].get(key) if value is MISSING else value


def outcome(names: list[str], right: list[bool | None]) -> tuple[str, str]:
    """(id, label) of a question's outcome; None: the question is missing from that run.
    ['p', 'f'], [False, True] -> ('only-f-right', 'only f right')"""
    if any(r is None for r in right):
        return "missing", "not in every run"
    if len(names) == 1:
        return ("right", "right") if right[0] else ("wrong", "wrong")
    every = "both" if len(names) == 2 else "all"
    if all(right):
        return f"{every}-right", f"{every} right"
    if not any(right):
        return f"{every}-wrong", f"{every} wrong"
    which = [n for n, r in zip(names, right, strict=True) if r]
    return "only-" + "-".join(_slug(n) for n in which) + "-right", "only " + " and ".join(which) + " right"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")


def right(rec: dict | None) -> bool | None:
    if rec is None:
        return None
    return bool(rec.get("success", rec.get("score", {}).get("em", 0) >= 1))


class Strings:
    """A string table: each distinct text once, referred to by its index."""

    def __init__(self):
        self.index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        return self.index.setdefault(text, len(self.index))

    def table(self) -> list[str]:
        return list(self.index)


def step_row(step: dict, strings: Strings) -> list:
    """[thought, action, argument, observation (string index), flags, raw (only when it shows more)]"""
    flags = (FORMAT_ERROR * bool(step.get("format_error")) | HALLUCINATED * bool(step.get("hallucinated"))
             | FEEDBACK * bool(step.get("feedback")))
    row = [step.get("thought", ""), step.get("action"), step.get("argument"), strings(step.get("observation", "")),
           flags]
    if step.get("hallucinated") and step.get("raw"):
        row.append(step["raw"])  # what the model wrote after its action: the invented observation
    return row


def trajectory_row(rec: dict, strings: Strings) -> dict:
    score = rec.get("score", {})
    return {"answer": rec.get("answer"), "em": score.get("em"), "f1": score.get("f1"), "prompt": rec.get("prompt", ""),
            "steps": [step_row(s, strings) for s in rec.get("steps", [])],
            "discarded": len(rec.get("discarded", []))}


def why(rec: dict, example) -> int:
    """The index in OUTCOMES of why an episode ended as it did; -1 without the question's paragraphs."""
    if example is None or not example.context:
        return -1
    return list(OUTCOMES).index(episode_outcome(rec, example))


def page_data(runs: list[dict], info: dict | None = None) -> tuple[dict, list[dict]]:
    """(the index of the page: tasks, types, outcomes, one row per question; the steps files' contents).

    A question row: [id, question, gold, task, type, outcome, [[right, turns, answer, why] or None per run]]
    (task, type, outcome and why index the lists beside it; why is -1 where it does not apply).
    """
    info = info or {}
    why_counts = [[0] * len(OUTCOMES) for _ in runs]
    names = [r["name"] for r in runs]
    ids = list(dict.fromkeys(i for r in runs for i in r["trajectories"]))
    tasks, types, outcomes = {}, {}, {}
    rows, chunks = [], []
    for n, qid in enumerate(ids):
        recs = [r["trajectories"].get(qid) for r in runs]
        first = next(rec for rec in recs if rec is not None)
        qtype, facts, example = info.get(qid, ("", [], None))
        oid, label = outcome(names, [right(rec) for rec in recs])
        outcomes.setdefault(oid, [label, 0])[1] += 1
        per_run = [None if rec is None else [int(right(rec)), len(rec.get("steps", [])), rec.get("answer"),
                                             why(rec, example)] for rec in recs]
        for r, cells in enumerate(per_run):
            if cells is not None and cells[3] >= 0:
                why_counts[r][cells[3]] += 1
        rows.append([qid, first.get("question", ""), first.get("gold", ""),
                     tasks.setdefault(first.get("task", ""), len(tasks)), types.setdefault(qtype, len(types)),
                     list(outcomes).index(oid), per_run])
        if n % CHUNK == 0:
            strings = Strings()
            chunks.append({"strings": strings, "questions": []})
        chunks[-1]["questions"].append([[strings(s) for s in facts],
                                        [None if rec is None else trajectory_row(rec, strings) for rec in recs]])
    for chunk in chunks:
        chunk["strings"] = chunk["strings"].table()
    index = {"runs": names, "tasks": list(tasks), "types": list(types),
             "outcomes": [{"id": k, "label": v[0], "count": v[1]} for k, v in outcomes.items()],
             "questions": rows, "chunk": CHUNK, "why": list(OUTCOMES.values()),
             "why_counts": why_counts if any(map(any, why_counts)) else None}
    return index, chunks


def comparison_table(runs: list[dict]) -> dict:
    """The comparison table (models x methods) as text cells, as the Markdown report shows it."""
    probes = any("probes" in r["metrics"] for r in runs)
    return by_run({r["name"]: r["metrics"] for r in runs}, COLUMNS + [TOOL_MISUSE] * probes)


def settings(runs: list[dict]) -> dict:
    """Each run's settings (from config.json and metrics.json), one row per setting."""
    rows = [[key] + [_text(_setting(r, key)) for r in runs] for key in SETTINGS]
    rows.append(["model (as named)"] + [_text(r["metrics"].get("model")) for r in runs])
    rows.append(["few-shot prompt"] + [_text(r["metrics"].get("few_shot")) for r in runs])
    rows.append(["questions"] + [_text(r["metrics"].get("questions")) for r in runs])
    rows.append(["evaluated"] + [r["evaluated"] for r in runs])
    rows.append(["folder"] + [r["folder"] for r in runs])
    return {"head": ["setting"] + [r["name"] for r in runs], "rows": rows}


def _text(value) -> str:
    return "" if value is None else str(value)


def machine() -> dict:
    """Where and when the report was written."""
    return {"date": time.strftime("%Y-%m-%d %H:%M:%S %z"), "platform": platform.platform(),
            "machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}


def training_summary(model_dir: Path) -> dict:
    """What train.json and loss.csv say about a training run (the curve itself is loss.png)."""
    import csv

    out = {"folder": str(model_dir)}
    if (model_dir / "train.json").exists():
        t = json.loads((model_dir / "train.json").read_text())
        c = t.get("config", {})
        out["summary"] = [[k, _text(v)] for k, v in (
            ("base", t.get("base_name") or t.get("base")), ("backend", t.get("backend")),
            ("LoRA", f"rank {c.get('rank')}, alpha {c.get('alpha')}" if t.get("lora") else "no (full)"),
            ("learning rate", c.get("lr")), ("batch size", c.get("batch_size")), ("steps", t.get("steps")),
            ("records", t.get("records")), ("training loss", t.get("train_loss")),
            ("validation loss", t.get("val_loss")),
            ("seconds", t.get("seconds")), ("seed", c.get("seed")))]
    if (model_dir / "loss.csv").exists():
        with (model_dir / "loss.csv").open() as f:
            losses = [float(r["loss"]) for r in csv.DictReader(f)]
        if losses:
            out["loss"] = {"steps": len(losses), "first": round(losses[0], 4), "last": round(losses[-1], 4),
                           "min": round(min(losses), 4)}
    return out


def corpus_summary(corpus_dir: Path) -> dict:
    """The corpus statistics the page shows: sizes, tokens, and the mixes (asked and realised)."""
    s = json.loads((corpus_dir / "stats.json").read_text())
    sizes = [[k, _text(s.get(k))] for k in ("records", "train", "val", "duplicates_removed", "too_long_dropped")]
    sizes += [[f"tokens {k}", _text(v)] for k, v in s.get("tokens", {}).items()]
    mixes = {}
    for name, key in (("capability", "capability_mix"), ("negatives", "negative_shares")):
        mix = s.get(key, {})
        mixes[name] = {"asked": mix.get("asked", {}), "realised": mix.get("realised", {})}
    for name, key in (("task", "task_mix"), ("method", "method_mix"), ("source", "sources")):
        mixes[name] = {"asked": {}, "realised": s.get(key, {})}
    chat = s.get("chat_share", {})
    if chat.get("asked") or chat.get("realised"):
        mixes["chat"] = {"asked": {"chat": chat.get("asked", 0)}, "realised": {"chat": chat.get("realised", 0)}}
    return {"folder": str(corpus_dir), "sizes": sizes, "mixes": mixes}


# --------------------------------------------------------------------------- writing the folder

def find_beside(folders: list, name: str, markers: tuple[str, ...], given=None) -> Path | None:
    """The folder `given` (it must hold one of `markers`), else the first PARENT/NAME beside the runs
    that holds one, else None. (folders ['runs/x/eval-a'], 'model', ('loss.csv',)) -> runs/x/model"""
    if given:
        if not any((Path(given) / m).exists() for m in markers):
            raise DataError(given, f"expected {' or '.join(markers)} in this folder")
        return Path(given)
    for folder in folders:
        candidate = Path(folder).resolve().parent / name
        if any((candidate / m).exists() for m in markers):
            return candidate
    return None


def _write_script(path: Path, prefix: str, value, suffix: str) -> None:
    """A script that hands `value` to the page: PREFIX<value as JSON>SUFFIX."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    path.write_text(f"{prefix}{text}{suffix}\n", encoding="utf-8")


def write_html(run_folders: list, out_dir, model_dir=None, corpus_dir=None, plots: bool = True) -> Path:
    """Write the page into OUT_DIR; returns the path of its index.html."""
    folders = [str(f) for f in run_folders]
    if not folders:
        raise ValueError("the page needs at least one evaluation folder")
    out = Path(out_dir)
    runs = read_runs(folders)
    info, notes = question_info(runs)
    index, chunks = page_data(runs, info)
    (out / "steps").mkdir(parents=True, exist_ok=True)
    for old in (out / "steps").glob("*.js"):  # an earlier page's
        old.unlink()

    images = []
    if plots:
        as_read = [metrics_with_turns(r) for r in runs]
        try:
            images = [{"file": p.name, "title": p.stem.removeprefix("plot-")}
                      for p in run_plots(as_read, out / "plot.png")]
        except ImportError as e:
            notes.append(f"no plots: {e}")
    training = corpus = None
    model = find_beside(folders, "model", ("loss.csv", "train.json"), model_dir)
    if model is not None:
        training = training_summary(model)
        if (model / "loss.png").exists():
            shutil.copyfile(model / "loss.png", out / "loss.png")
            training["plot"] = "loss.png"
        elif plots and (model / "loss.csv").exists():  # a run killed before it drew its curve
            training["plot"] = loss_plot(model / "loss.csv", out / "loss.png").name
    found = find_beside(folders, "corpus", ("stats.json",), corpus_dir)
    if found is not None:
        corpus = corpus_summary(found)

    data = {"schema": SCHEMA_HTML, "title": " vs ".join(index["runs"]), "written": machine(), "notes": notes,
            "table": comparison_table(runs), "settings": settings(runs), "plots": images,
            "training": training, "corpus": corpus, **index}
    _write_script(out / "data.js", "window.FIREFLAN_DATA = ", data, ";")
    for n, chunk in enumerate(chunks):
        _write_script(out / "steps" / f"{n:04d}.js", f"FIREFLAN_chunk({n}, ", chunk, ");")
    for name in ("page.css", "page.js"):
        (out / name).write_text(STATIC.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    index_html = STATIC.joinpath("index.html").read_text(encoding="utf-8")
    (out / "index.html").write_text(index_html.replace("{title}", _html_text(data["title"])), encoding="utf-8")
    return out / "index.html"


def _html_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
