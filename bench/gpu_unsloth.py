"""The workstation path on a CUDA GPU: Unsloth 4-bit QLoRA beside TRL on the same GPU, then export and verify.

    python bench/gpu_unsloth.py --steps 40 --out $OUT        # on a CUDA machine with fireflan[gpu,infer]

Prepared for the day a GPU is lent (docs/GPU.md says what has run). On a machine without CUDA or
without unsloth it says so and measures nothing. On one with both:

1. a world corpus of the scripted teacher's ReAct trajectories (seconds, offline);
2. the embedded Gemma trained `--steps` steps with `--backend unsloth` (4-bit) and then with
   `--backend trl` (16/32-bit weights), each in its own process: supervised tokens per second and
   peak GPU memory (torch.cuda.max_memory_allocated, read in that process);
3. the Unsloth-trained adapter exported exactly as on the CPU (merged into the 16-bit base, GGUF q8_0,
   read back by llama.cpp and checked against transformers' greedy tokens).

Each step's figures go to OUT/gpu.json as they come (a step that fails is recorded with its error, and the
rest go on); the last line printed is that JSON object. This process never imports Unsloth (whose import
patches transformers for the rest of a process): each training runs in a child, Unsloth's import is tried in
one, and the base is built here, before any child, so the first Unsloth run does not build it.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

def measure(config: dict) -> dict:
    """Train with `config` in this process (fresh: peak GPU memory is this run's alone); its figures."""
    import torch

    from fireflan.train.trainer import TrainConfig, train

    summary = train(TrainConfig(**config))
    return {"backend": summary["backend"], "steps": summary["steps"], "train_seconds": summary["train_seconds"],
            "supervised_tokens": summary["supervised_tokens"], "train_loss": summary["train_loss"],
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2),
            "tokens_per_second": round(summary["supervised_tokens"] / max(summary["train_seconds"], 1e-9), 1)}


def main() -> None:
    import torch

    from fireflan.corpus.build import CorpusConfig, build_corpus
    from fireflan.export import ExportConfig, export
    from fireflan.teach import TeachConfig, teach
    from fireflan.worlds.wiki import WorldConfig, write_world

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--out", default="runs/gpu")
    parser.add_argument("--base", default="embedded", help="embedded | tiny (seconds) | a folder or hub id")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # one training run, in a child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(json.loads(args.measure))))
        return
    from fireflan.doctor import unsloth_import
    from fireflan.train.bases import resolve_base
    from fireflan.train.trainer import installed

    why = None if torch.cuda.is_available() else "no CUDA device: this benchmark is for a GPU machine (docs/GPU.md)"
    if not why and not installed("unsloth"):
        why = "unsloth is not installed: pip install -e '.[gpu,infer]'"
    if not why and (failed := unsloth_import()) != "ok":
        why = f"unsloth cannot be imported here ({failed}); `python -m fireflan doctor` says why"
    if why:  # said, and nothing measured (make bench runs every script)
        print(why)
        print(json.dumps({"skipped": why}))
        return
    out = Path(args.out)
    base = resolve_base(args.base)  # built here, once, before the children
    result = {"device": torch.cuda.get_device_name(), "base": args.base, "steps": args.steps,
              "batch_size": args.batch_size}

    def save():
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu.json").write_text(json.dumps(result, indent=1) + "\n")

    write_world(WorldConfig(seed=0, train=400, dev=10, test=10), out / "world")
    teach(TeachConfig(out=str(out / "teach"), data=str(out / "world"), methods="react"))
    build_corpus(CorpusConfig(inputs=str(out / "teach" / "trajectories.jsonl"), out=str(out / "corpus"),
                              negatives=""))
    for backend in ("unsloth", "trl"):
        config = {"corpus": str(out / "corpus"), "base": base, "out": str(out / f"model-{backend}"),
                  "backend": backend, "max_steps": args.steps, "batch_size": args.batch_size, "save_steps": 1000}
        run = subprocess.run([sys.executable, __file__, "--measure", json.dumps(config)], cwd=ROOT,
                             capture_output=True, text=True)
        result[backend] = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else \
            {"failed": run.stderr[-3000:]}
        save()
    if "failed" not in result["unsloth"]:
        try:
            summary = export(ExportConfig(model=str(out / "model-unsloth"), quant="q8_0"))
            result["export"] = {"merged_into": summary.get("merged_into"), "files": list(summary["files"]),
                                "verify": summary.get("verify"), "warnings": summary.get("warnings")}
        except Exception as e:  # recorded beside the training figures, which are not lost
            result["export"] = {"failed": f"{type(e).__name__}: {str(e)[-3000:]}"}
    if "failed" not in result["unsloth"] and "failed" not in result["trl"]:
        result["unsloth_over_trl_tokens_per_second"] = round(
            result["unsloth"]["tokens_per_second"] / result["trl"]["tokens_per_second"], 2)
    save()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
