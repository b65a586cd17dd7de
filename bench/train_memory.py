"""`fireflan train --plan`'s peak-memory estimate against the peak RSS of real training steps.

    .venv/bin/python bench/train_memory.py          # make all's corpus, the embedded Gemma (minutes)
    .venv/bin/python bench/train_memory.py --corpus runs/hotpotqa/corpus --batches 1,2,4

The longest records of the corpus are put in a corpus of their own (so the batch at the plan's peak is
the one trained on), then for each batch size: the plan (nothing loaded), and `fireflan train` for a
few steps in a fresh process, whose peak resident memory the kernel reports (ru_maxrss of the child).
The issue's bar: the estimate within 25% of the measurement. The last line is one JSON object.
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def longest_records(corpus: Path, n: int, out: Path) -> Path:
    path = corpus / "train.jsonl" if corpus.is_dir() else corpus
    rows = sorted((line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()), key=len,
                  reverse=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_text("\n".join(rows[:n]) + "\n", encoding="utf-8")
    return out


def measured_peak(corpus: Path, base: str, batch: int, steps: int, out: Path) -> tuple[int, float]:
    """(peak RSS in bytes, seconds) of `fireflan train` in a child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    run = subprocess.run([sys.executable, "-m", "fireflan", "train", "--corpus", str(corpus), "--base", base,
                          "--batch-size", str(batch), "--max-steps", str(steps), "--save-steps", "1000",
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"training failed:\n{run.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak <= before:
        sys.exit("run the batch sizes in increasing order: ru_maxrss of children only grows")
    return peak * 1024, json.loads(run.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    from fireflan.train.trainer import TrainConfig, plan_run

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(ROOT / "runs" / "hotpotqa" / "corpus"),
                        help="a corpus folder or train.jsonl (default: make all's)")
    parser.add_argument("--base", default="embedded")
    parser.add_argument("--batches", default="1,2", help="batch sizes, increasing")
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    if not Path(args.corpus).exists():
        print(f"no corpus at {args.corpus}: run `make all` first, or give --corpus; nothing measured")
        print(json.dumps({"skipped": f"no corpus at {args.corpus}"}))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="fireflan-memory-") as tmp:
        batches = [int(b) for b in args.batches.split(",")]
        corpus = longest_records(Path(args.corpus), max(batches) * args.steps, Path(tmp) / "corpus")
        for batch in sorted(batches):
            planned = plan_run(TrainConfig(corpus=str(corpus), base=args.base, batch_size=batch, plan=True))
            peak, seconds = measured_peak(corpus, args.base, batch, args.steps, Path(tmp) / f"model-{batch}")
            rows.append({"batch": batch, "estimate_gib": round(planned["plan"]["peak"] / 2 ** 30, 2),
                         "measured_gib": round(peak / 2 ** 30, 2),
                         "estimate_over_measured": round(planned["plan"]["peak"] / peak, 3), "seconds": seconds})
            print(f"batch {batch}: estimate {rows[-1]['estimate_gib']} GiB, measured peak RSS "
                  f"{rows[-1]['measured_gib']} GiB (x{rows[-1]['estimate_over_measured']})")
    within = all(abs(r["estimate_over_measured"] - 1) <= 0.25 for r in rows)
    print(json.dumps({"base": args.base, "rows": rows, "within_25_percent": within}))


if __name__ == "__main__":
    main()
