"""Supervised tokens per second: fireflan's trainer vs plain TRL SFTTrainer, same records, one run.

    .venv/bin/python bench/train_throughput.py                    # the embedded Gemma 3 270M (minutes)
    .venv/bin/python bench/train_throughput.py --base tiny --steps 4   # a quick look

Both sides get the same tokenized world-corpus records (scripted ReAct / CoT / Reflexion chats,
loss on the assistant turns), the same LoRA (r=16 on all projections), batch size 4, fp32, no
activation checkpointing (plain SFTTrainer's fastest settings on CPU; its defaults, bf16 and
checkpointing, are slower still here), the same threads. Plain: `trl.SFTTrainer` as it comes.
fireflan: the output layer only at loss positions, length-grouped batches. The first step of each
is a warm-up and not counted. Each side runs in a fresh process (one after the other, same records
file): in one process the second trainer ran 3x slower than alone, from threads the first left.
The last line is one JSON object.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_records(tmp: Path, n: int) -> list[dict]:
    from fireflan.corpus.build import CorpusConfig, build_corpus
    from fireflan.teach import TeachConfig, teach
    from fireflan.train.data import read_corpus
    from fireflan.worlds.wiki import WorldConfig, write_world

    write_world(WorldConfig(seed=3, train=max(n, 100), dev=10, test=10), tmp / "world")
    teach(TeachConfig(out=str(tmp / "teach"), data=str(tmp / "world"), methods="react,reflexion",
                      shares="react=1,reflexion=0.3"))
    build_corpus(CorpusConfig(inputs=str(tmp / "teach" / "trajectories.jsonl"), out=str(tmp / "corpus"),
                              negatives="", val_share=0.0))
    return read_corpus(tmp / "corpus" / "train.jsonl")[:n]


def measure(kind: str, base: str, examples: list[dict], steps: int, threads: int) -> dict:
    import datasets
    import torch
    from transformers import TrainerCallback
    from trl import SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from fireflan.train.trainer import TrainConfig, load_model, make_trainer_class, sft_args

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    fast = kind == "fireflan"
    config = TrainConfig(base=base, max_steps=steps + 1, batch_size=4, fast=fast, save_steps=10_000)
    model, tokenizer = load_model(config, base, "trl")
    counted = {"tokens": [], "padded": []}

    class Counting(DataCollatorForLanguageModeling):
        def torch_call(self, batch):
            out = super().torch_call(batch)
            counted["tokens"].append(int((out["labels"][:, 1:] != -100).sum()))
            counted["padded"].append(int(out["input_ids"].numel()))
            return out

    class Clock(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_begin(self, args, state, control, **kwargs):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.t)

    with tempfile.TemporaryDirectory() as out:
        args = sft_args(config, Path(out), "trl", save_strategy="no", logging_steps=10_000, disable_tqdm=True)
        cls = make_trainer_class() if fast else SFTTrainer
        if fast:
            cls.fast = True
        clock = Clock()
        trainer = cls(model=model, args=args, processing_class=tokenizer,
                      train_dataset=datasets.Dataset.from_list(examples),
                      data_collator=Counting(pad_token_id=tokenizer.pad_token_id), callbacks=[clock])
        trainer.train()
    seconds = sum(clock.times[1:])
    tokens = sum(counted["tokens"][1: steps + 1])
    padded = sum(counted["padded"][1: steps + 1])
    return {"steps": steps, "seconds": round(seconds, 2), "s_per_step": round(seconds / steps, 2),
            "supervised_tokens": tokens, "tok_s": round(tokens / seconds, 2), "batch_tokens_with_padding": padded}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="embedded")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--side", choices=["plain", "fireflan"], help=argparse.SUPPRESS)
    parser.add_argument("--examples", help=argparse.SUPPRESS)
    a = parser.parse_args()
    import os
    import subprocess

    from fireflan.train.bases import resolve_base

    threads = a.threads or os.cpu_count() or 1
    base = resolve_base(a.base)
    if a.side:  # one side, in its own process
        examples = json.loads(Path(a.examples).read_text())
        print(json.dumps(measure(a.side, base, examples, a.steps, threads)))
        return

    from transformers import AutoTokenizer

    from fireflan.train.data import tokenize_corpus

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        examples, _ = tokenize_corpus(make_records(Path(tmp), a.records), AutoTokenizer.from_pretrained(base), 1024)
        path = Path(tmp) / "examples.json"
        path.write_text(json.dumps(examples))
        for side in ("plain", "fireflan"):
            proc = subprocess.run([sys.executable, __file__, "--side", side, "--examples", str(path), "--base", base,
                                   "--steps", str(a.steps), "--threads", str(threads)],
                                  capture_output=True, text=True, check=True)
            results[side] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(side, json.dumps(results[side]), flush=True)
    ratio = results["fireflan"]["tok_s"] / results["plain"]["tok_s"]
    print(json.dumps({"ratio": round(ratio, 2), "fireflan_tok_s": results["fireflan"]["tok_s"],
                      "baseline_tok_s": results["plain"]["tok_s"], "base": a.base, "steps": a.steps,
                      "threads": threads, "records": len(examples),
                      "fireflan_s_per_step": results["fireflan"]["s_per_step"],
                      "baseline_s_per_step": results["plain"]["s_per_step"]}))


if __name__ == "__main__":
    main()
