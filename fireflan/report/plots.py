"""The report's plots (EM by run, EM against tool noise, turns per question) and the training loss curve,
drawn with matplotlib (imported when a plot is drawn)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int = 110) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    _pyplot().close(fig)
    return path


def run_plots(runs: list[dict], out: Path) -> list[Path]:
    """OUT-em.png, OUT-noise.png and OUT-turns.png beside OUT, from runs' metrics (`metrics_with_turns`)."""
    plt = _pyplot()
    written = []
    names = [Path(r["run"]).name for r in runs]
    beside = lambda name: out.with_name(f"{out.stem}-{name}.png")  # noqa: E731
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(runs)), 3.5))
    ax.bar(names, [r.get("em", 0) for r in runs], color="#4c72b0")
    ax.set_ylabel("exact match")
    ax.set_ylim(0, 1)
    ax.set_title("EM by run")
    ax.tick_params(axis="x", rotation=30)
    written.append(_save(fig, beside("em")))

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
    written.append(_save(fig, beside("noise")))

    fig, ax = plt.subplots(figsize=(5, 3.5))
    top = max([max(r["turn_counts"], default=0) for r in runs] + [1])
    for r, name in zip(runs, names, strict=True):
        counts = Counter(r["turn_counts"])
        ax.plot(range(1, top + 1), [counts.get(t, 0) for t in range(1, top + 1)], marker=".", label=name)
    ax.set_xlabel("turns per question")
    ax.set_ylabel("questions")
    ax.set_title("Turns per question")
    ax.legend(fontsize=7)
    written.append(_save(fig, beside("turns")))
    return written


def loss_plot(csv_path: Path, png: Path, title: str | None = None) -> Path | None:
    """The training loss per step (loss.csv: step,loss,...) as a PNG; None when there is no loss.csv."""
    if not Path(csv_path).exists():
        return None
    plt = _pyplot()
    with Path(csv_path).open() as f:
        rows = list(csv.DictReader(f))
    steps, losses = [int(r["step"]) for r in rows], [float(r["loss"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(steps, losses, marker="." if len(steps) < 50 else None)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, png, dpi=120)


def rounds_plot(rows: list[dict], png: Path) -> Path:
    """EM by round of self-improvement (round 0: the start model), with its 95% interval, as a PNG."""
    plt = _pyplot()
    rounds = [r["round"] for r in rows]
    em = [r["em"] for r in rows]
    low = [r["em"] - r["em_ci95"][0] for r in rows]
    high = [r["em_ci95"][1] - r["em"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(rounds, em, yerr=[low, high], marker="o", capsize=4)
    for x, y, row in zip(rounds, em, rows, strict=True):
        if row["round"]:
            ax.annotate(f"+{row['questions_gained']} q", (x, y), textcoords="offset points", xytext=(6, -12),
                        fontsize=7)
    ax.set_xticks(rounds)
    ax.set_xlabel("round (0: the start model)")
    ax.set_ylabel("exact match, test questions")
    ax.set_ylim(0, 1)
    ax.set_title("EM by round of self-improvement")
    return _save(fig, Path(png))
