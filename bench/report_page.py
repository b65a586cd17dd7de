"""How long `fireflan report --html` takes on large runs, and how its size grows with them.

    .venv/bin/python bench/report_page.py

Two synthetic evaluations (tests/test_report.py's `synthetic_runs`: one repeats its search, one finds the
answer) of 1,000 and of 10,000 questions, written side by side in one run: seconds, the index the page
loads at once (data.js) per question, the steps files against the trajectories they come from. A
person opens the page after every run, so writing it should take seconds, and grow linearly. The last
line is one JSON object.

Then, where a Chromium is found (as the tests find it: FIREFLAN_CHROMIUM or on the PATH), the page of 3,000
questions opened in it headless: seconds to open, milliseconds for a filter to redraw the list (a person
filters as they read, so a redraw should feel instant: under 0.5 s).
"""

import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers.devtools import Browser, find_chromium  # noqa: E402
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


def in_browser(n: int, root: Path) -> dict | None:
    """Open the page of N questions in headless Chromium; time the opening and a filter's redraw."""
    binary = find_chromium()
    if binary is None:
        print("no Chromium found (set FIREFLAN_CHROMIUM): the page was not timed in a browser")
        return None
    index = write_html(synthetic_runs(root / f"browser-runs-{n}", n), root / f"browser-html-{n}", plots=False)
    browser = Browser(binary, root / "profile")
    try:
        started = time.perf_counter()
        tab = browser.open(f"{index.as_uri()}#view=questions")
        opened = time.perf_counter() - started
        redraw = tab.js("const s = document.getElementById('filter-outcome'); s.value = 'both-right'; "
                        "const t0 = performance.now(); s.dispatchEvent(new Event('change')); performance.now() - t0")
        loop = tab.js("FIREFLAN_PAGE.filterMs")  # of it, the loop over the questions
        shown = tab.js("document.getElementById('count').textContent")
    finally:
        browser.close()
    verdict = "met" if redraw < 500 else "NOT met"
    print(f"{n} questions in Chromium: opened in {opened:.2f} s; a filter redrew the list in {redraw:.1f} ms "
          f"({loop:.1f} ms of it the loop over the questions; {shown}; target 500 ms: {verdict})")
    return {"questions": n, "open_seconds": round(opened, 2), "filter_ms": round(redraw, 1),
            "filter_loop_ms": round(loop, 1)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small, large = measure(1000, Path(tmp)), measure(10000, Path(tmp))
        browser = in_browser(3000, Path(tmp))
    for row in (small, large):
        print(f"{row['questions']:>5} questions x 2 runs: {row['seconds']:.2f} s, data.js "
              f"{row['data_bytes_per_question']} B/question, steps files {row['steps_over_trajectories']:.2f} of "
              f"the trajectories' bytes")
    growth = large["seconds"] / max(small["seconds"], 1e-9)
    print(f"10x the questions: {growth:.1f}x the seconds")
    print(json.dumps({"small": small, "large": large, "growth": round(growth, 2), "browser": browser}))


if __name__ == "__main__":
    main()
