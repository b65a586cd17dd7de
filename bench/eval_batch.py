"""Evaluation with questions decoded side by side (`evaluate --batch N`) against one at a time, on the same
questions, in one run.

    .venv/bin/python bench/eval_batch.py --gguf runs/real/model/gguf/model-q8_0.gguf \\
        --data ../shared/data/hotpotqa_dev_300_499.json --questions 16
    .venv/bin/python bench/eval_batch.py        # the embedded Gemma, few-shot, on the default world's test questions

For each width (1, then the others asked): the wall seconds per question, the ratio to one at a time, EM, and
how many questions got the same steps as one at a time (greedy decoding in one batch and alone can part where
two words are nearly tied). llama.cpp at one thread, as `evaluate` runs it on two cores. The last line is one
JSON object.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default="embedded", help="a GGUF file (default: the embedded base, few-shot)")
    parser.add_argument("--task", default=None, help="hotpotqa with --data, else the world")
    parser.add_argument("--data", default=None, help="an official HotpotQA file (or several, joined by commas)")
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--widths", default="4", help="the batch widths to compare with 1, e.g. 2,4,8")
    parser.add_argument("--threads", type=int, default=1)
    a = parser.parse_args()

    from fireflan.evaluate import EvalConfig, evaluate

    task = a.task or ("hotpotqa" if a.data else "world")
    widths = [1, *(int(w) for w in a.widths.split(","))]
    results, steps = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for width in widths:
            out = Path(tmp) / f"batch-{width}"
            started = time.perf_counter()
            metrics = evaluate(EvalConfig(model=a.gguf, out=str(out), task=task, data=a.data, limit=a.questions,
                                          batch=width, threads=a.threads, shots=2))
            seconds = time.perf_counter() - started
            steps[width] = {r["id"]: [s["raw"] for s in r["steps"]]
                            for r in map(json.loads, (out / "trajectories.jsonl").read_text().splitlines())}
            results[width] = {"seconds_per_question": round(seconds / a.questions, 2), "em": metrics["em"],
                              "same_steps_as_one": sum(steps[width][i] == steps[1][i] for i in steps[1])}
    for width in widths:
        results[width]["speed_up"] = round(results[1]["seconds_per_question"] / results[width]["seconds_per_question"],
                                           2)
        print(f"batch {width}: {results[width]['seconds_per_question']} s a question "
              f"({results[width]['speed_up']}x), EM {results[width]['em']:.3f}, "
              f"{results[width]['same_steps_as_one']} of {a.questions} with the steps of one at a time")
    print(json.dumps({"gguf": a.gguf, "task": task, "questions": a.questions, "threads": a.threads,
                      **{f"batch_{w}": r for w, r in results.items()}}))


if __name__ == "__main__":
    main()
