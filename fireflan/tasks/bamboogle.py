"""Bamboogle (Press et al. 2022): 125 two-hop questions Google cannot answer directly.

A CSV with `Question,Answer` columns (the authors' file), or the hub copy. Scored like HotpotQA.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fireflan.io import DataError
from fireflan.tasks.base import Example, limit, load_hub
from fireflan.tasks.scoring import score_span

NAME = "bamboogle"
HUB = "chiayewken/bamboogle"


def load(source=None, split: str = "test", n: int | None = None) -> list[Example]:
    if source is None:
        rows = [(i, r) for i, r in enumerate(load_hub(HUB, None, split), start=1)]
        path = HUB
    else:
        path = Path(source)
        if not path.exists():
            raise DataError(path, "no such file")
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            for col in ("Question", "Answer"):
                if col not in (reader.fieldnames or []):
                    raise DataError(path, "missing column (the header must name Question,Answer)", line=1, field=col)
            rows = [(i, r) for i, r in enumerate(reader, start=2)]  # line 1 is the header
    out = []
    for line, r in rows:
        for col in ("Question", "Answer"):
            if not (r.get(col) or "").strip():
                raise DataError(path, "empty", line=line, field=col)
        out.append(Example(id=f"bamboogle-{line}", question=r["Question"].strip(),
                           answer=r["Answer"].strip(), task=NAME, type="bridge"))
    return limit(out, n)


def score(prediction: str, example: Example) -> dict:
    return score_span(prediction, example.answer)
