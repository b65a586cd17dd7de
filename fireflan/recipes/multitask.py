"""FireAct's multi-method (and multi-task) mixes: a model fine-tuned on ReAct trajectories only
against one fine-tuned on ReAct, CoT and Reflexion trajectories (and other tasks' data), evaluated
on the same questions.

    python -m fireflan.recipes.multitask                     # the embedded world: single vs multi-method
    python -m fireflan.recipes.multitask --extra strategyqa=strategyqa_train.json --fireact-data data/fireact
    python -m fireflan.recipes.multitask --config recipes/multitask.toml

1. the main recipe (fireflan.recipes.hotpotqa): its ReAct-only model is the single-method side
   (finished stages are skipped);
2. teach: the same training questions with ReAct, CoT and Reflexion (OUT/teach-multi), and each extra
   task's training questions (OUT/teach-TASK; the scripted teacher where it can, else --teacher);
3. corpus: all of it mixed, plus FireAct's published trajectories when given (OUT/corpus-multi);
4. train and export with the main recipe's settings (OUT/model-multi);
5. evaluate on the same test questions, with ReAct and with CoT: FireAct's point is that a
   multi-method model can be run either way;
6. the table; OUT/multitask.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fireflan.corpus.build import CorpusConfig, build_corpus
from fireflan.export import ExportConfig, export
from fireflan.options import opt
from fireflan.recipes import hotpotqa
from fireflan.recipes.common import comparison, launch, recipe_command, report_pages, stage
from fireflan.tasks import TASKS
from fireflan.teach import TeachConfig, teach
from fireflan.train.trainer import train


@dataclass
class MultitaskRecipe(hotpotqa.HotpotQARecipe):
    """Options of `python -m fireflan.recipes.multitask` (those of the main recipe, and the mixes')."""

    methods: str = opt("react,cot,reflexion", "the multi-method mix the teacher runs")
    shares: str = opt("react=1,cot=1,reflexion=0.3", "the share of eligible questions run with each method")
    extra: str = opt("", "other tasks to mix in, TASK=FILE pairs (e.g. strategyqa=train.json,mmlu=mmlu.csv); "
                         "TASK alone loads the hub")
    extra_questions: int = opt(300, "training questions taught from each extra task")
    fireact_data: str = opt("", "FireAct's published fine-tuning files to mix in (comma-separated files or folders)")


def parse_extra(spec: str) -> list[tuple[str, str | None]]:
    """'strategyqa=a.json,mmlu' -> [('strategyqa', 'a.json'), ('mmlu', None)]"""
    out = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        task, _, path = part.partition("=")
        if task not in TASKS:
            raise ValueError(f"--extra: unknown task {task!r}; the tasks are {', '.join(TASKS)}")
        out.append((task, path or None))
    return out


def main(r: MultitaskRecipe) -> dict:
    extra = parse_extra(r.extra)
    out = Path(r.out)

    # 1. the main recipe: the single-method model
    built = hotpotqa.main(r)

    # 2. teach the multi-method mix, and the extra tasks
    data = str(out / "world") if r.task == "world" else r.train_data
    stage(out, "teach-multi", TeachConfig(
        out=str(out / "teach-multi"), task=r.task, data=data, split="train", limit=r.train_questions,
        teacher=r.teacher, model=r.teacher_model, base_url=r.teacher_url, max_usd=r.max_usd, methods=r.methods,
        shares=r.shares, seed=r.seed), teach)
    inputs = [str(out / "teach-multi" / "trajectories.jsonl")]
    for task, path in extra:
        stage(out, f"teach-{task}", TeachConfig(
            out=str(out / f"teach-{task}"), task=task, data=path, split="train", limit=r.extra_questions,
            teacher=r.teacher, model=r.teacher_model, base_url=r.teacher_url, max_usd=r.max_usd,
            methods=r.methods, shares=r.shares, seed=r.seed), teach)
        inputs.append(str(out / f"teach-{task}" / "trajectories.jsonl"))
    inputs += [p.strip() for p in r.fireact_data.split(",") if p.strip()]

    # 3. one corpus of it all
    corpus = stage(out, "corpus-multi", CorpusConfig(inputs=",".join(inputs), out=str(out / "corpus-multi"),
                                                     negatives="", seed=r.seed), build_corpus)
    print(f"   {corpus['train']} records")

    # 4. train and export with the same settings
    stage(out, "train-multi", hotpotqa.train_options(r, out / "corpus-multi", out / "model-multi"), train)
    stage(out, "export-multi", ExportConfig(model=str(out / "model-multi"), quant=r.quant), export)
    gguf = out / "model-multi" / "gguf" / f"model-{r.quant}.gguf"

    # 5. evaluate both models with ReAct and with CoT
    def run(name, model, method):
        return hotpotqa.evaluate_stage(r, out, name, model, built["eval_data"], built["eval_split"], method=method,
                                       probes=0)

    runs = {"ReAct-only, react": built["runs"]["fine-tuned"],
            "ReAct-only, cot": run("finetuned-cot", built["gguf"], "cot"),
            "multi, react": run("multi", str(gguf), "react"),
            "multi, cot": run("multi-cot", str(gguf), "cot")}

    # 6. report
    folders = [out / "eval-finetuned", out / "eval-finetuned-cot", out / "eval-multi", out / "eval-multi-cot"]
    written = report_pages(out, "multitask", folders)
    print(f"\nsingle-method (ReAct) vs multi-method ({r.methods}) fine-tuning"
          f"{', with ' + r.extra if extra else ''}: the same {r.eval_questions} questions\n")
    print(comparison(runs))
    print(f"\nreport: {written['report']}\npage: {written['page']} (open it in a browser)")
    return {"runs": runs, **written}


cli = recipe_command(MultitaskRecipe, main, "FireAct's single-method vs multi-method (and multi-task) fine-tuning.")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.multitask")
