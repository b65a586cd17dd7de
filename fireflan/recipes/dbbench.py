"""AgentBench DB on one box: the scripted expert solves generated DB tasks in AgentBench's shape, the
small model is fine-tuned on its trajectories, then both it and the prompted base are measured on
generated test tasks and on AgentBench's own records (which no training task was made from).

    python -m fireflan.recipes.dbbench --config recipes/dbbench.toml
    python -m fireflan.recipes.dbbench --real-data dbbench_dev.jsonl     # AgentBench's dev file, wherever it is
    python -m fireflan.recipes.dbbench --help                             # every option

1. tasks: generated DB tasks (OUT/tasks: list tables and the embedded world's entities; fireflan.worlds.db);
2. teach: the scripted expert writes the SQL, runs it, answers (OUT/teach); in a share of the tasks its
   first SQL has a mistake small models make, and it recovers from the error (the mistake is not trained);
3. corpus: its trajectories in FireAct's format (OUT/corpus);
4. train and export (OUT/model, OUT/model/gguf);
5. evaluate the prompted base (few-shot SQL examples) and the fine-tuned model on the generated test
   tasks and, when given, on the real records (OUT/eval-{prompted,finetuned}[-real]);
6. report: EM with its 95% interval and AgentBench's accuracy per type; OUT/report.md and the page.
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
    prompted_model,
    recipe_command,
    report_pages,
    stage,
    train_config,
)
from fireflan.teach import TeachConfig, teach
from fireflan.train.trainer import train
from fireflan.worlds.db import DBWorldConfig, write_dbtasks


@dataclass
class DBBenchRecipe(TrainingOptions, EvaluationOptions):
    """Options of `python -m fireflan.recipes.dbbench`."""

    out: str = opt("runs/dbbench", "the run folder (one sub-folder per stage)")
    real_data: str | None = opt(None, "AgentBench DB records to evaluate on as well (its dev JSONL); never trained on")
    seed: int = opt(0, "seed of the generated tasks, the teacher, training and evaluation")
    train_questions: int = opt(1000, "generated training tasks the teacher solves")
    mistake_share: float = opt(0.5, "how often the teacher's first SQL has a mistake it then recovers from (a "
                                    "shortened table name, a header with underscores, a missing value; never "
                                    "trained on): 0 for none")
    max_steps: int = opt(120, "optimizer steps (2 x 2 records each)")
    eval_questions: int | None = opt(60, "generated test tasks (and real records) to evaluate (None: all)")
    shots: int = opt(3, "few-shot examples in the prompted baseline's prompt")
    agent_tokens: int = opt(192, "tokens per model call: an INSERT of every column of a wide table runs long")


def main(r: DBBenchRecipe) -> dict:
    if r.real_data and not Path(r.real_data).is_file():
        raise FileNotFoundError(f"--real-data: no such file: {r.real_data}")
    out = Path(r.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()

    # 1. generated tasks, 2. the scripted teacher
    tasks = DBWorldConfig(seed=r.seed, train=r.train_questions)
    stage(out, "tasks", tasks, lambda c: write_dbtasks(c, out / "tasks"))
    taught = stage(out, "teach", TeachConfig(out=str(out / "teach"), task="dbbench", data=str(out / "tasks"),
                                             split="train", limit=r.train_questions, methods="react", seed=r.seed,
                                             mistake_share=r.mistake_share),
                   teach)
    print(f"   {taught['success']} of {taught['trajectories']} trajectories succeeded")

    # 3. corpus, 4. train and export
    corpus = stage(out, "corpus", CorpusConfig(inputs=str(out / "teach" / "trajectories.jsonl"),
                                               out=str(out / "corpus"), negatives="", seed=r.seed), build_corpus)
    print(f"   {corpus['train']} training records, mean {corpus['tokens']['mean']:.0f} tokens (estimated)")
    trained = stage(out, "train", train_config(r, out / "corpus", out / "model", seed=r.seed), train)
    print(f"   loss {trained['train_loss']} over {trained['steps']} steps ({trained['backend']})")
    stage(out, "export", ExportConfig(model=str(out / "model"), quant=r.quant), export)
    gguf = out / "model" / "gguf" / f"model-{r.quant}.gguf"

    # 5. evaluate: generated test tasks, then the real records
    prompted = prompted_model(r)
    models = ({"prompted": prompted} if prompted != "none" else {}) | {"fine-tuned": str(gguf)}
    runs, folders = {}, []
    for where, data, split in [("generated", str(out / "tasks"), "test")] + \
            ([("AgentBench", r.real_data, "test")] if r.real_data else []):
        suffix = "" if where == "generated" else "-real"
        for name, model in models.items():
            folder = f"{name.replace('-', '')}{suffix}"
            runs[f"{name}, {where}"] = evaluation_stage(r, out, folder, model, data, split, task="dbbench",
                                                        seed=r.seed)
            folders.append(out / f"eval-{folder}")

    # 6. report
    written = report_pages(out, "report", folders)
    rows = [("em", "EM"), ("em_ci95", "EM, 95% interval"), ("select", "queries (SELECT)"), ("INSERT", "INSERT"),
            ("UPDATE", "UPDATE"), ("format_error_rate", "format errors (of steps)"), ("turns", "turns per task"),
            ("seconds_per_question", "seconds per task")]
    for metrics in runs.values():
        accuracy = (metrics.get("dbbench") or {}).get("accuracy_by_type", {})
        metrics.update(select=accuracy.get("SELECT"), INSERT=accuracy.get("INSERT"), UPDATE=accuracy.get("UPDATE"))
    print(f"\nAgentBench DB: prompted = {prompted} with {r.shots} examples, fine-tuned = {r.base} + LoRA on "
          f"{corpus['train']} generated tasks\n")
    print(comparison(runs, rows))
    print(f"\nreport: {written['report']}\npage: {written['page']} (open it in a browser)\n"
          f"wall time this run: {time.time() - started:.0f} s")
    return {"runs": runs, "gguf": str(gguf), **written}


cli = recipe_command(DBBenchRecipe, main, "Generated AgentBench-shaped DB tasks -> LoRA -> GGUF -> AgentBench DB.")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.dbbench")
