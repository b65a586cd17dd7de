"""How long `fireflan report --html` takes on large runs, and how its size grows with them.

    .venv/bin/python bench/report_page.py

Two synthetic evaluations (tests/test_report.py's `synthetic_runs`: one repeats its search, one finds the
answer) of 1,000 and of 10,000 questions, written side by side in one run: seconds, the index the page
loads at once (data.js) per question, the steps files against the trajectories they come from. A
person opens the page after every run, so writing it should take seconds, and grow linearly. The last
line is one JSON object.
"""

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_report import synthetic_runs  # noqa: E402

from fireflan.report.page import write_html  # noqa: E402


def measure(n: int, root: Path) -> dict:
    folders = synthetic_runs(root / f"runs-{n}", n)
    started = time.perf_counter()
    write_html(folders, root / f"html-{n}", plots=False)
    seconds = time.perf_counter() - started
    data = (root / f"html-{n}" / "data.js").stat().st_size
    steps = sum(p.stat().st_size for p in (root / f"html-{n}" / "steps").iterdir())
    raw = sum((f / "trajectories.jsonl").stat().st_size for f in folders)
    return {"questions": n, "seconds": round(seconds, 2), "data_bytes_per_question": round(data / n),
            "steps_over_trajectories": round(steps / raw, 3)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small, large = measure(1000, Path(tmp)), measure(10000, Path(tmp))
    for row in (small, large):
        print(f"{row['questions']:>5} questions x 2 runs: {row['seconds']:.2f} s, data.js "
              f"{row['data_bytes_per_question']} B/question, steps files {row['steps_over_trajectories']:.2f} of "
              f"the trajectories' bytes")
    growth = large["seconds"] / max(small["seconds"], 1e-9)
    print(f"10x the questions: {growth:.1f}x the seconds")
    print(json.dumps({"small": small, "large": large, "growth": round(growth, 2)}))


if __name__ == "__main__":
    main()
