"""Seconds per GRPO step on this CPU: one prompt, 4 completions of up to 64 tokens, the wiki as the reward.

    .venv/bin/python bench/grpo_step.py                        # the embedded Gemma 3 270M, 3 steps, all cores
    .venv/bin/python bench/grpo_step.py --threads 1
    .venv/bin/python bench/grpo_step.py --base tiny --steps 5  # a quick look

`fireflan.train.grpo` as it runs: prompts are the states of the scripted teacher's ReAct trajectories on a
small world (a question, or a question with the pages read so far), a fresh LoRA (r=16 on every
projection) on the base, fp32, beta 0 (no reference model), temperature 1. A step samples
`--generations` completions of one prompt (each up to `--max-tokens` tokens or its <end_of_turn>), scores
them in the wiki and takes one optimizer step; its seconds are timed from the Trainer's step begin to its
step end (OUT/rewards.csv, step_seconds). The base is not fine-tuned: it seldom ends a turn, so most
completions run to the cap, the worst case for generation. Tokens per step are the completions' tokens
together. The last line is one JSON object.
"""

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_trajectories(tmp: Path) -> tuple[Path, Path]:
    """(world folder, trajectories.jsonl): the scripted teacher's ReAct episodes on a small world."""
    from fireflan.teach import TeachConfig, teach
    from fireflan.worlds.wiki import WorldConfig, write_world

    write_world(WorldConfig(seed=3, train=30, dev=5, test=5), tmp / "world")
    teach(TeachConfig(out=str(tmp / "teach"), data=str(tmp / "world"), methods="react", shares="react=1"))
    return tmp / "world", tmp / "teach" / "trajectories.jsonl"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="embedded")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0)
    a = parser.parse_args()
    import os

    from fireflan.train.grpo import GRPOConfig, grpo

    threads = a.threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        world, trajectories = make_trajectories(Path(tmp))
        started = time.perf_counter()
        summary = grpo(GRPOConfig(base=a.base, out=str(Path(tmp) / "grpo"), trajectories=str(trajectories),
                                   data=str(world), max_steps=a.steps, num_generations=a.generations,
                                   max_completion_length=a.max_tokens, threads=threads, save_steps=10_000))
        seconds = time.perf_counter() - started
        rows = list(csv.DictReader((Path(tmp) / "grpo" / "rewards.csv").read_text().splitlines()))
    steps = [float(r["step_seconds"]) for r in rows]
    tokens = [float(r["completion_tokens"]) * a.generations for r in rows]
    print(json.dumps({
        "base": a.base, "threads": threads, "num_generations": a.generations, "max_completion_length": a.max_tokens,
        "prompts_per_step": 1, "steps": len(steps), "step_seconds": steps,
        "s_per_step": round(sum(steps) / len(steps), 2),
        "s_per_step_after_first": round(sum(steps[1:]) / max(len(steps) - 1, 1), 2),
        "tokens_per_step": round(sum(tokens) / len(tokens), 1),
        "generated_tok_s": round(sum(tokens) / sum(steps), 2), "prompts": summary["prompts"],
        "run_seconds_with_loading": round(seconds, 1)}))


if __name__ == "__main__":
    main()
