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

from dataclasses import dataclass
from pathlib import Path

from fireflan.evaluate import OUTCOMES
from fireflan.options import opt
from fireflan.report.page import write_html
from fireflan.report.plots import run_plots
from fireflan.report.runs import metrics_with_turns, read_runs
from fireflan.report.table import COLUMNS, by_measure, by_run, markdown


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


def report(config: ReportConfig) -> Path:
    """Write the Markdown report (and the page, with --html); returns the Markdown file, or the page's
    index.html when only the page was asked for."""
    folders = [f.strip() for f in config.runs.split(",") if f.strip()]
    if not folders:
        raise ValueError("report needs at least one evaluation folder")
    if config.html:
        page = write_html(folders, config.html, model_dir=config.model, corpus_dir=config.corpus)
        if config.out is None:
            return page
    runs = [metrics_with_turns(r) for r in read_runs(folders)]
    out = Path(config.out or "runs/report.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    images = run_plots(runs, out)
    named = {Path(r["run"]).name: r for r in runs}
    text = ["# fireflan report", "", markdown(by_run(named, COLUMNS)), ""]
    if any(r.get("outcomes") for r in runs):
        outcomes = by_measure({n: r.get("outcomes") or {} for n, r in named.items()}, OUTCOMES.items(), "outcome")
        text += ["## Why the episodes ended as they did", "", markdown(outcomes), ""]
    text += [f"![{p.stem}]({p.name})" for p in images]
    out.write_text("\n".join(text) + "\n")
    return out
