"""FireAct with FireAct's own data: GPT-4's published HotpotQA trajectories fine-tune the small model,
measured on real HotpotQA dev questions (distractor setting), prompted vs fine-tuned.

    python -m fireflan.recipes.fireact --config recipes/fireact.toml
    python -m fireflan.recipes.fireact --fireact PATH/gpt_format_hotpotqa.jsonl \
        --eval-data hotpot_dev_distractor_v1.json
    python -m fireflan.recipes.fireact --help                     # every option

FireAct's files (Chen et al. 2023, MIT licence) are not shipped with the kit: pass the path of
`gpt_format_hotpotqa.jsonl` (500 ReAct trajectories) or `gpt_format_hotpotqa_multimethod.jsonl`
from the authors' repository. The questions come from HotpotQA's train split; the evaluation is on
its dev split: an official distractor JSON (`--eval-data`) or, with a network, the hub's validation
split. The wiki tool searches the paragraphs of the evaluated questions, as in the distractor
setting. Their observations are Google snippets (one or two sentences), ours are whole paragraphs:
the model learns to read short results and meets longer ones at test time; `--observations snippets`
evaluates behind a search engine's answers instead (the lead sentence and the one matching the query).

1. corpus: the trajectories as chat records in FireAct's format (OUT/corpus);
2. train: LoRA on the base model (OUT/model);
3. export: GGUF, checked against transformers, Ollama Modelfile (OUT/model/gguf);
4. evaluate the prompted base (few-shot) and the fine-tuned model on the same dev questions, with
   `evaluate`'s own defaults for steps and tokens (OUT/eval-prompted, OUT/eval-finetuned);
5. report: the table (EM with its 95% interval) and why the episodes failed; OUT/report.md and the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fireflan.corpus.build import CorpusConfig, build_corpus
from fireflan.export import ExportConfig, export
from fireflan.options import opt
from fireflan.recipes.common import (
    EvaluationOptions,
    TrainingOptions,
    comparison,
    evaluation_stage,
    launch,
    outcome_table,
    prompted_model,
    recipe_command,
    report_pages,
    stage,
    train_config,
)
from fireflan.tasks import OBSERVATIONS
from fireflan.train.trainer import train


@dataclass
class FireActRecipe(TrainingOptions, EvaluationOptions):
    """Options of `python -m fireflan.recipes.fireact`."""

    fireact: str | None = opt(None, "FireAct's published trajectories: gpt_format_hotpotqa.jsonl (or its "
                                    "multimethod file); required")
    out: str = opt("runs/fireact", "the run folder (one sub-folder per stage)")
    eval_data: str | None = opt(None, "an official HotpotQA distractor JSON to evaluate on (None: the hub's "
                                      "validation split)")
    eval_questions: int | None = opt(None, "dev questions to evaluate, the same for both models (None: all)")
    seed: int = opt(0, "seed of training and evaluation")
    max_steps: int = opt(160, "optimizer steps (2 x 2 records each: about 1.3 epochs of the 500 trajectories)")
    observations: str = opt("pages", "what the wiki's search returns at evaluation: pages (the whole paragraph, "
                                     "HotpotQA's distractor setting) | snippets (a search engine's two sentences, "
                                     "as FireAct's trajectories saw)")


def main(r: FireActRecipe) -> dict:
    if not r.fireact:
        raise ValueError("--fireact must name FireAct's gpt_format_hotpotqa.jsonl (the kit does not ship it)")
    if not Path(r.fireact).is_file():
        raise FileNotFoundError(f"--fireact: no such file: {r.fireact}")
    if r.observations not in OBSERVATIONS:  # before the training, not after it
        raise ValueError(f"--observations must be one of {', '.join(OBSERVATIONS)}, got {r.observations!r}")
    out = Path(r.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    # 1. corpus: FireAct's trajectories as they were published
    corpus = stage(out, "corpus", CorpusConfig(inputs=r.fireact, out=str(out / "corpus"), negatives="",
                                               seed=r.seed), build_corpus)
    print(f"   {corpus['train']} training records, mean {corpus['tokens']['mean']:.0f} tokens (estimated)")

    # 2. train, 3. export
    trained = stage(out, "train", train_config(r, out / "corpus", out / "model", seed=r.seed), train)
    print(f"   loss {trained['train_loss']} over {trained['steps']} steps ({trained['backend']})")
    stage(out, "export", ExportConfig(model=str(out / "model"), quant=r.quant), export)
    gguf = out / "model" / "gguf" / f"model-{r.quant}.gguf"

    # 4. evaluate both on the same dev questions
    prompted = prompted_model(r)
    models = ({"prompted": prompted} if prompted != "none" else {}) | {"fine-tuned": str(gguf)}
    runs = {name: evaluation_stage(r, out, name.replace("-", ""), model, r.eval_data, "validation", task="hotpotqa",
                                   seed=r.seed, observations=r.observations) for name, model in models.items()}

    # 5. report
    written = report_pages(out, "report", [out / f"eval-{n.replace('-', '')}" for n in runs])
    n = runs["fine-tuned"]["questions"]
    print(f"\nreal HotpotQA dev: {n} questions ({r.eval_data or 'the hub validation split'}); prompted = {prompted} "
          f"with {r.shots} examples, fine-tuned = {r.base} + LoRA on FireAct's {corpus['train']} trajectories\n")
    print(comparison(runs))
    why = outcome_table(runs)
    if why:
        print(f"\nwhy the episodes ended as they did (questions):\n{why}")
    print(f"\nreport: {written['report']}\npage: {written['page']} (open it in a browser)\n"
          f"wall time this run: {time.time() - started:.0f} s")
    return {"runs": runs, "gguf": str(gguf), **written}


cli = recipe_command(FireActRecipe, main, "FireAct's published trajectories -> LoRA -> GGUF -> real HotpotQA dev.")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.fireact")
