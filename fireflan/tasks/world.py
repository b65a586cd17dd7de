"""The embedded world's questions (see fireflan.worlds.wiki), scored like HotpotQA."""

from __future__ import annotations

from pathlib import Path

from fireflan.io import read_records
from fireflan.tasks.base import Example, example_from_hotpot, limit
from fireflan.tasks.scoring import score_span
from fireflan.worlds.wiki import WorldConfig, generate_world

NAME = "world"
SPLITS = ("train", "dev", "test")


def load(source=None, split: str = "train", n: int | None = None, seed: int = 0) -> list[Example]:
    """Questions of a world folder written by `fireflan world` (or one of its split files).

    With no source, the default world of `seed` is generated in memory (under a second).
    """
    if split not in SPLITS:
        raise ValueError(f"the world's splits are {SPLITS}, not {split!r}")
    if source is None:
        splits, _ = generate_world(WorldConfig(seed=seed))
        records = enumerate(splits[split], start=1)
        path = f"<world seed {seed}>/{split}"
    else:
        path = Path(source)
        path = path / f"{split}.jsonl" if path.is_dir() else path
        records = read_records(path)
    return limit([example_from_hotpot(r, NAME, path, i, f"{split}-{i}") for i, r in records], n)


def score(prediction: str, example: Example) -> dict:
    return score_span(prediction, example.answer)
