"""Report: compare evaluation runs in a Markdown table, with plots; or as a page for the browser.

    python -m fireflan report runs/eval-base runs/eval runs/eval-noise --out runs/report.md
    python -m fireflan report runs/hotpotqa/eval-prompted runs/hotpotqa/eval-finetuned --html runs/hotpotqa/html

Writes the table (one row per run: model, method, noise, EM, F1, turns, errors, cost) to the
Markdown file and beside it three PNGs: EM by run, EM against tool noise (a line per model and
method), and the histogram of turns per question. With --html, a folder with index.html, opened
from disk: the same table and plots, the runs' trajectories side by side per question, the
training curve and the corpus statistics (see fireflan.report.page).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fireflan.io import DataError, iter_jsonl
from fireflan.options import opt

COLUMNS = [("model", "model"), ("method", "method"), ("noise", "noise"), ("questions", "n"), ("em", "EM"),
           ("em_ci95", "EM 95% CI"), ("f1", "F1"), ("turns", "turns"), ("format_error_rate", "format err."),
           ("hallucinated_observation_rate", "invented obs."), ("calls_per_question", "calls/q"),
           ("prompt_tokens_per_question", "prompt tok/q"), ("completion_tokens_per_question", "gen tok/q"),
           ("seconds_per_question", "s/q")]


@dataclass
class ReportConfig:
    """Options of `fireflan report`."""

    runs: str = opt("", "comma-separated evaluation folders (each with metrics.json)")
    out: str | None = opt(None, "the Markdown file to write, plots beside it (None: runs/report.md, or no "
                                "Markdown when --html is given)")
    html: str | None = opt(None, "a folder to write the report page into (index.html, opened from disk)")
    model: str | None = opt(None, "the page's training curve: a model folder with loss.csv (None: PARENT/model "
                                  "beside the runs, if there)")
    corpus: str | None = opt(None, "the page's corpus statistics: a corpus folder with stats.json (None: "
                                   "PARENT/corpus beside the runs, if there)")


def read_run(folder) -> dict:
    path = Path(folder) / "metrics.json"
    if not path.exists():
        raise DataError(path, "no such file (is this an evaluation folder?)")
    metrics = json.loads(path.read_text())
    turns = [len(rec["steps"]) for _, rec in iter_jsonl(Path(folder) / "trajectories.jsonl")] \
        if (Path(folder) / "trajectories.jsonl").exists() else []
    return {**metrics, "run": str(folder), "turn_counts": turns}


def table(runs: list[dict]) -> str:
    """The comparison table in Markdown."""
    lines = ["| run | " + " | ".join(h for _, h in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for r in runs:
        cells = [Path(r["run"]).name] + [cell(r.get(k)) for k, _ in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def outcome_table(runs: list[dict]) -> str | None:
    """Why the episodes ended as they did (`evaluate.outcome`), one column per run, in Markdown; None when
    no run has the classes (a task without wiki paragraphs)."""
    from fireflan.evaluate import OUTCOMES

    if not any(r.get("outcomes") for r in runs):
        return None
    lines = ["| outcome | " + " | ".join(Path(r["run"]).name for r in runs) + " |", "|---" * (len(runs) + 1) + "|"]
    for key, label in OUTCOMES.items():
        lines.append(f"| {label} | " + " | ".join(cell((r.get("outcomes") or {}).get(key)) for r in runs) + " |")
    return "\n".join(lines)


def cell(value) -> str:
    """A table cell: 3 decimals below 10, 1 above; an interval as low-high; empty for None.
    0.25 -> '0.250'; [0.1319, 0.2972] -> '0.132-0.297'"""
    if isinstance(value, list) and len(value) == 2:
        return "-".join(cell(float(v)) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def _save(fig, out: Path, name: str) -> Path:
    """Write a figure beside the report as OUT-NAME.png and close it."""
    import matplotlib.pyplot as plt

    path = out.with_name(f"{out.stem}-{name}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plots(runs: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    names = [Path(r["run"]).name for r in runs]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(runs)), 3.5))
    ax.bar(names, [r.get("em", 0) for r in runs], color="#4c72b0")
    ax.set_ylabel("exact match")
    ax.set_ylim(0, 1)
    ax.set_title("EM by run")
    ax.tick_params(axis="x", rotation=30)
    written.append(_save(fig, out, "em"))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    series = {}
    for r in runs:
        series.setdefault(f"{r.get('model')} / {r.get('method')}", []).append((r.get("noise", 0.0), r.get("em", 0)))
    for label, points in series.items():
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xlabel("tool noise probability")
    ax.set_ylabel("exact match")
    ax.set_ylim(0, 1)
    ax.set_title("EM against tool noise")
    ax.legend(fontsize=7)
    written.append(_save(fig, out, "noise"))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    top = max([max(r["turn_counts"], default=0) for r in runs] + [1])
    for r, name in zip(runs, names, strict=True):
        counts = Counter(r["turn_counts"])
        ax.plot(range(1, top + 1), [counts.get(t, 0) for t in range(1, top + 1)], marker=".", label=name)
    ax.set_xlabel("turns per question")
    ax.set_ylabel("questions")
    ax.set_title("Turns per question")
    ax.legend(fontsize=7)
    written.append(_save(fig, out, "turns"))
    return written


def report(config: ReportConfig) -> Path:
    """Write the Markdown report (and the page, with --html); returns the Markdown file, or the page's
    index.html when only the page was asked for."""
    folders = [f.strip() for f in config.runs.split(",") if f.strip()]
    if not folders:
        raise ValueError("report needs at least one evaluation folder")
    if config.html:
        from fireflan.report.page import write_html

        page = write_html(folders, config.html, model_dir=config.model, corpus_dir=config.corpus)
        if config.out is None:
            return page
    runs = [read_run(f) for f in folders]
    out = Path(config.out or "runs/report.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    images = plots(runs, out)
    text = ["# fireflan report", "", table(runs), ""]
    outcomes = outcome_table(runs)
    if outcomes:
        text += ["## Why the episodes ended as they did", "", outcomes, ""]
    text += [f"![{p.stem}]({p.name})" for p in images]
    out.write_text("\n".join(text) + "\n")
    return out
