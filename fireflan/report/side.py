"""Two or more runs' trajectories on the same questions, side by side, as HTML (for a notebook).

    from fireflan.report.side import side_by_side
    side_by_side(["runs/lab/eval-prompted", "runs/lab/eval-finetuned"], count=2)   # displays itself

Questions are picked where the runs disagree (one right, another wrong) first, then the rest, in the
evaluation's order; `ids` picks them by hand. All text from the runs is escaped, never read as HTML.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from importlib.resources import files
from string import Template

from fireflan.report.page import right
from fireflan.report.runs import read_runs


@dataclass
class SideBySide:
    runs: list[str]                 # run names
    questions: list[dict]           # {"id", "question", "gold", "episodes": [trajectory record or None per run]}

    def _repr_html_(self) -> str:
        return to_html(self)


def pick_questions(runs: list[dict], count: int) -> list[str]:
    """Question ids every run answered: where the runs' correctness differs first, then the others."""
    common = [q for q in runs[0]["trajectories"] if all(q in r["trajectories"] for r in runs)]
    marks = {q: [right(r["trajectories"][q]) for r in runs] for q in common}
    differ = [q for q in common if len(set(marks[q])) > 1]
    return (differ + [q for q in common if q not in differ])[:count]


def side_by_side(folders: list, ids: list[str] | None = None, count: int = 2) -> SideBySide:
    """The trajectories of evaluation `folders` on `ids` (or `count` picked questions)."""
    runs = read_runs(folders)
    chosen = ids or pick_questions(runs, count)
    questions = []
    for q in chosen:
        episodes = [r["trajectories"].get(q) for r in runs]
        first = next(e for e in episodes if e is not None)
        questions.append({"id": q, "question": first.get("question", ""), "gold": first.get("gold", ""),
                          "episodes": episodes})
    return SideBySide([r["name"] for r in runs], questions)


def _step(step: dict) -> str:
    e = html.escape
    action = f"{step.get('action') or '?'}[{step.get('argument') or ''}]"
    parts = [f"<div class='ff-thought'>{e(step.get('thought') or '')}</div>",
             f"<div class='ff-action{' ff-error' if step.get('format_error') else ''}'>{e(action)}</div>"]
    if step.get("observation"):
        parts.append(f"<div class='ff-obs'>{e(str(step['observation']))}</div>")
    return "<li>" + "".join(parts) + "</li>"


def _episode(rec: dict | None) -> str:
    if rec is None:
        return "<td>not evaluated</td>"
    mark = "right" if right(rec) else "wrong"
    steps = "".join(_step(s) for s in rec.get("steps", []))
    return (f"<td><ol>{steps}</ol><p class='ff-{mark}'>answer: {html.escape(str(rec.get('answer')))} ({mark})"
            f"</p></td>")


def to_html(view: SideBySide) -> str:
    """The questions as rows of a table (static/side.html, static/side.css), a column per run."""
    static = files("fireflan.report").joinpath("static")
    runs = "".join(f"<th>{html.escape(name)}</th>" for name in view.runs)
    rows = []
    for q in view.questions:
        rows.append(f"<tr><th colspan='{len(view.runs)}' class='ff-q'>{html.escape(q['question'])} "
                    f"<span>(gold: {html.escape(str(q['gold']))}; {html.escape(q['id'])})</span></th></tr>")
        rows.append("<tr>" + "".join(_episode(e) for e in q["episodes"]) + "</tr>")
    return Template(static.joinpath("side.html").read_text()).substitute(
        style=static.joinpath("side.css").read_text(), runs=runs, rows="\n".join(rows))
