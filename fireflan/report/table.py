"""Comparison tables: runs' metrics as cells, written as Markdown (the report), plain text (the recipes) or
cells (the page). Pure functions.

    t = by_run({"eval-prompted": m1, "eval-finetuned": m2}, COLUMNS)       # one row per run
    t = by_measure({"prompted": m1, "fine-tuned": m2}, ROWS)             # one row per measure
    markdown(t); text(t)
"""

from __future__ import annotations

COLUMNS = [("model", "model"), ("method", "method"), ("noise", "noise"), ("questions", "n"), ("em", "EM"),
           ("em_ci95", "EM 95% CI"), ("f1", "F1"), ("turns", "turns"), ("format_error_rate", "format err."),
           ("hallucinated_observation_rate", "invented obs."), ("calls_per_question", "calls/q"),
           ("prompt_tokens_per_question", "prompt tok/q"), ("completion_tokens_per_question", "gen tok/q"),
           ("seconds_per_question", "s/q")]
TOOL_MISUSE = ("tool_misuse", "tool misuse (probes)")


def cell(value) -> str:
    """A table cell: 3 decimals below 10, 1 above; an interval as low-high; empty for None.
    0.25 -> '0.250'; [0.1319, 0.2972] -> '0.132-0.297'"""
    if isinstance(value, list) and len(value) == 2:
        return "-".join(cell(float(v)) for v in value)
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return "" if value is None else str(value)


def measure(metrics: dict, key: str):
    """A measure of a run's metrics.json; `tool_misuse` is the no-tools probe's misuse rate."""
    if key == "tool_misuse":
        return (metrics.get("probes") or {}).get("no_tools", {}).get("tool_misuse_rate")
    return metrics.get(key)


def by_run(runs: dict[str, dict], columns=COLUMNS, first: str = "run") -> dict:
    """{"head", "rows"}: one row per run ({name: metrics}), one column per (key, label)."""
    return {"head": [first] + [label for _, label in columns],
            "rows": [[name] + [cell(measure(m, key)) for key, _ in columns] for name, m in runs.items()]}


def by_measure(runs: dict[str, dict], rows, first: str = "") -> dict:
    """{"head", "rows"}: one row per (key, label), one column per run ({name: metrics})."""
    return {"head": [first, *runs],
            "rows": [[label] + [cell(measure(m, key)) for m in runs.values()] for key, label in rows]}


def markdown(t: dict) -> str:
    lines = ["| " + " | ".join(t["head"]) + " |", "|---" * len(t["head"]) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in t["rows"]])


def text(t: dict) -> str:
    """Plain text for a terminal: the first column to the left, the others to the right ('-' when empty)."""
    width = max(len(row[0]) for row in [t["head"], *t["rows"]]) + 2
    col = max([14] + [len(h) + 2 for h in t["head"][1:]])
    lines = [t["head"][0].ljust(width) + "".join(h.rjust(col) for h in t["head"][1:])]
    lines += [row[0].ljust(width) + "".join((c or "-").rjust(col) for c in row[1:]) for row in t["rows"]]
    return "\n".join(lines)
