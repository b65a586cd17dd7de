"""How long the wiki tool takes: index build, search by title, BM25 search, lookup.

    .venv/bin/python bench/search_latency.py      # (also run by `make bench`)

An agent step costs ~1 s of model time on CPU; the tool should be a rounding error beside it.
Measured side by side in one run on the default embedded world (and on the HotpotQA sample89 corpus
when ../shared/data is there). The last line is one JSON object.
"""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fireflan.tasks import get_task  # noqa: E402
from fireflan.tools.wiki import Wiki  # noqa: E402
from fireflan.worlds.wiki import WorldConfig, write_world  # noqa: E402


def per_call_ms(fn, args) -> float:
    times = []
    for a in args:
        t = time.perf_counter()
        fn(a)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def measure(name: str, wiki: Wiki, questions: list[str], titles: list[str]) -> dict:
    t = time.perf_counter()
    wiki.rank("warm up the index", 1)
    build_s = time.perf_counter() - t
    title_ms = per_call_ms(wiki.search, titles)
    bm25_ms = per_call_ms(wiki.search, questions)
    wiki.search(titles[0])
    lookup_ms = per_call_ms(wiki.lookup, ["in", "was", "the"] * 50)
    row = {"pages": len(wiki.pages), "index_s": round(build_s, 3), "search_title_ms": round(title_ms, 3),
           "search_bm25_ms": round(bm25_ms, 3), "lookup_ms": round(lookup_ms, 4),
           "bm25_over_title": round(bm25_ms / title_ms, 1)}
    print(f"{name:10s} " + "  ".join(f"{k}={v}" for k, v in row.items()))
    return row


def main():
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_world(WorldConfig(), tmp)
        results["world_generate_s"] = round(time.perf_counter() - t, 3)
        examples = get_task("world").load(tmp, split="test")
        titles = [title for ex in examples for title, _ in ex.supporting_facts]
        results["world"] = measure("world", Wiki.from_file(tmp), [ex.question for ex in examples], titles)
    sample = ROOT.parent / "shared" / "data" / "hotpotqa_dev_sample89.json"
    if sample.exists():
        examples = get_task("hotpotqa").load(sample)
        titles = [title for ex in examples for title, _ in ex.supporting_facts]
        results["hotpotqa"] = measure("hotpotqa", Wiki.from_file(sample), [ex.question for ex in examples], titles)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
