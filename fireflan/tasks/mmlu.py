"""MMLU (Hendrycks et al. 2021): four-option questions; the answer is a letter A-D.

From the hub (`cais/mmlu`, a subject or "all") or the original CSV files (no header:
question, A, B, C, D, answer letter). The options are written into the question text.
"""

from __future__ import annotations

import csv
from pathlib import Path

from fireflan.io import DataError
from fireflan.tasks.base import Example, limit, load_hub
from fireflan.tasks.scoring import score_letter

NAME = "mmlu"
HUB = "cais/mmlu"
LETTERS = "ABCD"


def with_options(question: str, choices: list[str]) -> str:
    """('2+2?', ['3', '4', '5', '6']) -> '2+2?\\nA. 3\\nB. 4\\nC. 5\\nD. 6'"""
    return question.strip() + "".join(f"\n{letter}. {c}" for letter, c in zip(LETTERS, choices, strict=False))


def _example(i, question, choices, answer, subject="") -> Example:
    return Example(id=f"mmlu-{subject or 'csv'}-{i}", question=with_options(question, choices),
                   answer=answer, task=NAME, type=subject, choices=list(choices))


def load(source=None, split: str = "test", n: int | None = None, subject: str = "all") -> list[Example]:
    """A CSV file or a folder of them (`source`), or with no source the hub's `subject`."""
    if source is None:
        rows = load_hub(HUB, subject, split)
        return limit([_example(i, r["question"], r["choices"], LETTERS[r["answer"]], r.get("subject", ""))
                      for i, r in enumerate(rows, start=1)], n)
    path = Path(source)
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    out = []
    for file in files:
        if not file.exists():
            raise DataError(file, "no such file")
        with file.open(newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                if len(row) != 6:
                    raise DataError(file, f"expected 6 columns (question, A, B, C, D, answer), got {len(row)}",
                                    line=line)
                if row[5].strip().upper() not in LETTERS:
                    raise DataError(file, f"answer must be one of A-D, got {row[5]!r}", line=line, field="answer")
                out.append(_example(f"{file.stem}-{line}", row[0], row[1:5], row[5].strip().upper(), file.stem))
    return limit(out, n)


def score(prediction: str, example: Example) -> dict:
    return score_letter(prediction, example.answer)
