"""FireAct on one box: a teacher's ReAct trajectories fine-tune a small model, which then beats its
own few-shot prompted self at multi-hop question answering with a search tool.

    python -m fireflan.recipes.hotpotqa                          # the embedded world and Gemma, CPU
    python -m fireflan.recipes.hotpotqa --config recipes/hotpotqa.toml
    python -m fireflan.recipes.hotpotqa --help                   # every option

1. data: the embedded world (generated into OUT/world), or HotpotQA (the hub, or official JSON files);
2. teach: the teacher solves training questions with ReAct (OUT/teach): the scripted expert offline,
   or any OpenAI-compatible model (`--teacher openai --teacher-model gpt-4o`);
3. corpus: its successful trajectories become chat records in FireAct's format (OUT/corpus);
4. train: LoRA on the base model (OUT/model; TRL on CPU, Unsloth on a GPU);
5. export: merged, converted to GGUF, checked against transformers, Ollama Modelfile (OUT/model/gguf);
6. evaluate the prompted base (few-shot, as FireAct's baseline) and the fine-tuned model (no
   few-shot prompt) on the same test questions (OUT/eval-prompted, OUT/eval-finetuned);
7. report: the comparison table, printed and in OUT/report.md, with plots beside it.

Every stage resumes where it stopped; a finished stage is skipped when its options are unchanged,
so re-running a finished recipe does no work and prints the report again.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from fireflan.corpus.build import CorpusConfig, build_corpus
from fireflan.evaluate import EvalConfig, evaluate
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
    stage,
    train_config,
)
from fireflan.report import ReportConfig, report
from fireflan.teach import TeachConfig, teach
from fireflan.train.trainer import TrainConfig, train
from fireflan.worlds.wiki import WorldConfig, write_world


@dataclass
class HotpotQARecipe(TrainingOptions, EvaluationOptions):
    """Options of `python -m fireflan.recipes.hotpotqa`."""

    out: str = opt("runs/hotpotqa", "the run folder (one sub-folder per stage)")
    task: str = opt("world", "world (the embedded world, generated) | hotpotqa (real HotpotQA)")
    train_data: str | None = opt(None, "hotpotqa: an official JSON file to teach on (None: the hub's train split)")
    eval_data: str | None = opt(None, "hotpotqa: official JSON files to evaluate on, joined by commas (None: the hub's "
                                      "validation split)")
    context: str = opt("question", "hotpotqa: which paragraphs a question searches: question (its own ten, the "
                                   "distractor setting) | pool (every paragraph of the file at once)")
    pool_eval: bool = opt(False, "hotpotqa: also evaluate the fine-tuned model with every paragraph of --eval-data "
                                 "in one wiki (OUT/eval-pool), the harder setting beside the distractor one")
    seed: int = opt(0, "seed of the world, the teacher, training and evaluation")
    train_questions: int = opt(1000, "training questions the teacher solves")
    teacher: str = opt("scripted", "scripted (offline; walks the supporting facts) | openai (any compatible server)")
    teacher_model: str = opt("gpt-4o", "the teacher's model id (openai)")
    teacher_url: str | None = opt(None, "the teacher's server (None: api.openai.com; OPENAI_API_KEY from the env)")
    max_usd: float | None = opt(None, "the teacher's spend cap in USD")
    teacher_success: float = opt(1.0, "scripted teacher: the share of questions it solves (0.5: a weak teacher, as a "
                                      "real one fails some; the rest it answers wrong, and they are not trained on)")
    teacher_failures: str = opt("hardest", "which questions a weak teacher fails: hardest (by level, then kind) | "
                                           "random (a seeded coin per question)")
    wording: str = opt("plain", "scripted teacher: plain (one phrasing for each situation) | varied")
    answer_lookup: bool = opt(False, "scripted teacher: look up a word of the question that finds the answer's "
                                     "sentence on a long page before answering (teach --answer-lookup)")
    back_detours: bool = opt(False, "scripted teacher: detours that bring back the page just read, and the way on "
                                    "from there (teach --back-detours)")
    walks: int = opt(1, "scripted teacher: walks per training question (teach --walks)")
    world_questions: int = opt(0, "hotpotqa: also teach this many questions of the embedded world (OUT/world, "
                                  "OUT/teach-world) and train on both (0: the real questions alone)")
    init_adapter: str | None = opt(None, "train from this LoRA adapter instead of fresh weights, e.g. make all's "
                                         "runs/hotpotqa/model/adapter (the world first, then these questions)")
    fireact: str | None = opt(None, "FireAct's published trajectories (gpt_format_*.jsonl), added to the corpus "
                                    "beside the teacher's (their path: the kit does not ship them)")
    mix: str = opt("", "corpus shares by task, e.g. world=0.7,hotpotqa=0.3 (FireAct's are hotpotqa); empty: all "
                       "records as they come")
    roles: str = opt("", "role records for the inference methods, shares of the corpus, e.g. "
                         "planner=0.1,subquestion=0.2,judge=0.2,backtrack=0.1 (empty: none, as make all)")
    prompted_questions: int | None = opt(None, "the prompted baseline on the first N of them only (None: all; it reads "
                                               "a long few-shot prompt and loops to the step limit, so it is slow)")
    eval_batch: int = opt(1, "questions a GGUF decodes side by side at evaluation (evaluate --batch)")
    agent_calls: int = opt(6, "model calls per question at evaluation")
    agent_tokens: int = opt(96, "tokens per model call at evaluation")
    probes: int = opt(20, "hallucination probes per model (questions with no tools offered; 0: none)")
    real_data: str | None = opt(None, "an official HotpotQA distractor JSON the fine-tuned model is also evaluated "
                                      "on (never trained on), e.g. ../shared/data/hotpotqa_dev_sample89.json")


def main(r: HotpotQARecipe) -> dict:
    out = Path(r.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    data = prepare_data(r, out)                    # 1. data
    teach_step(r, out, data)                       # 2. teach
    corpus_step(r, out)                            # 3. corpus
    trained = train_step(r, out)                   # 4. train
    gguf = export_step(r, out)                     # 5. export
    runs, real = evaluate_steps(r, out, data, gguf)  # 6. evaluate both on the same questions
    return report_step(r, out, data, runs, real, trained, gguf, started)  # 7. report


@dataclass
class Data:
    """Where the recipe's questions come from: a data path (None: the hub) and split, to teach and to test."""

    train: str | None
    eval: str | None
    train_split: str
    eval_split: str


def prepare_data(r: HotpotQARecipe, out: Path) -> Data:
    """The embedded world, generated into OUT/world (task=world), or HotpotQA's files or hub splits."""
    if r.task == "world":
        stage(out, "world", WorldConfig(seed=r.seed), lambda c: write_world(c, out / "world"))
        return Data(str(out / "world"), str(out / "world"), "train", "test")
    if r.task == "hotpotqa":
        if r.world_questions:  # the embedded world beside the real questions
            stage(out, "world", WorldConfig(seed=r.seed), lambda c: write_world(c, out / "world"))
        return Data(r.train_data, r.eval_data, "train", "validation")
    raise ValueError(f"--task must be world or hotpotqa, got {r.task!r}")


def teach_step(r: HotpotQARecipe, out: Path, data: Data) -> dict:
    """The teacher solves the training questions with ReAct (and decomposes, when planner records are asked)."""
    taught = stage(out, "teach", TeachConfig(
        out=str(out / "teach"), task=r.task, data=data.train, split=data.train_split, limit=r.train_questions,
        teacher=r.teacher, model=r.teacher_model, base_url=r.teacher_url, max_usd=r.max_usd,
        methods="react,decompose" if re.search(r"planner|subquestion", r.roles) else "react", seed=r.seed,
        success_share=r.teacher_success, failures=r.teacher_failures, context=r.context, wording=r.wording,
        walks=r.walks, answer_lookup=r.answer_lookup, back_detours=r.back_detours), teach)
    print(f"   {taught['success']} of {taught['trajectories']} trajectories succeeded")
    if r.task == "hotpotqa" and r.world_questions:
        world = stage(out, "teach-world", TeachConfig(
            out=str(out / "teach-world"), task="world", data=str(out / "world"), split="train",
            limit=r.world_questions, methods="react", seed=r.seed, wording=r.wording,
            answer_lookup=r.answer_lookup, back_detours=r.back_detours), teach)
        print(f"   and {world['success']} trajectories on the embedded world")
    return taught


def corpus_step(r: HotpotQARecipe, out: Path) -> dict:
    """The successful ReAct trajectories as chat records in FireAct's format (and FireAct's own, if given)."""
    inputs = [str(out / "teach" / "trajectories.jsonl")] + ([r.fireact] if r.fireact else [])
    if r.task == "hotpotqa" and r.world_questions:
        inputs.append(str(out / "teach-world" / "trajectories.jsonl"))
    corpus = stage(out, "corpus", CorpusConfig(inputs=",".join(inputs), out=str(out / "corpus"), tasks=r.mix,
                                               negatives="", roles=r.roles, seed=r.seed), build_corpus)
    print(f"   {corpus['train']} training records, mean {corpus['tokens']['mean']:.0f} tokens (estimated)")
    return corpus


def train_step(r: HotpotQARecipe, out: Path) -> dict:
    """LoRA on the base (OUT/model: adapter, loss.csv, loss.png)."""
    trained = stage(out, "train", train_options(r, out / "corpus", out / "model"), train)
    print(f"   loss {trained['train_loss']} over {trained['steps']} steps ({trained['backend']})")
    return trained


def export_step(r: HotpotQARecipe, out: Path) -> Path:
    """Merged, converted to GGUF, checked against transformers; returns the GGUF's path."""
    exported = stage(out, "export", ExportConfig(model=str(out / "model"), quant=r.quant), export)
    gguf = out / "model" / "gguf" / f"model-{r.quant}.gguf"
    print(f"   {gguf} ({exported['files'][gguf.name]['bytes'] / 1e6:.0f} MB)")
    return gguf


def evaluate_steps(r: HotpotQARecipe, out: Path, data: Data, gguf: Path) -> tuple[dict, dict | None]:
    """({"prompted": metrics, "fine-tuned": metrics}, metrics on real_data or None): the prompted base and the
    fine-tuned model on the same test questions (OUT/eval-prompted, OUT/eval-finetuned)."""
    runs = {}
    if prompted_model(r) != "none":
        runs["prompted"] = evaluate_stage(r, out, "prompted", prompted_model(r), data.eval, data.eval_split,
                                          limit=r.prompted_questions or r.eval_questions, batch=r.eval_batch)
    runs["fine-tuned"] = evaluate_stage(r, out, "finetuned", str(gguf), data.eval, data.eval_split,
                                        batch=r.eval_batch)
    if r.pool_eval and r.task != "world":  # the same questions, their gold pages among every paragraph of the files
        runs["pool"] = evaluate_stage(r, out, "pool", str(gguf), data.eval, data.eval_split, context="pool", probes=0,
                                      batch=r.eval_batch)
    real = None
    if r.real_data:  # the same model on real questions no one here wrote, with evaluate's defaults
        real = stage(out, "eval-real", EvalConfig(model=str(gguf), out=str(out / "eval-real"), task="hotpotqa",
                                                  data=r.real_data, seed=r.seed), evaluate)
    return runs, real


def report_step(r: HotpotQARecipe, out: Path, data: Data, runs: dict, real: dict | None, trained: dict,
                gguf: Path, started: float) -> dict:
    """The comparison table, printed and in OUT/report.md, with plots and the page OUT/html beside it."""
    page = report(ReportConfig(runs=",".join(str(out / f"eval-{n.replace('-', '')}") for n in runs),
                               out=str(out / "report.md"), html=str(out / "html")))
    table = comparison(runs)
    gain = runs["fine-tuned"]["em"] - runs["prompted"]["em"] if "prompted" in runs else None
    n = runs["fine-tuned"]["questions"]
    fewer = runs["prompted"]["questions"] if "prompted" in runs and runs["prompted"]["questions"] != n else None
    fewer = f" (the prompted baseline on the first {fewer})" if fewer else ""
    print(f"\n{r.task}: {n} {data.eval_split} questions{fewer};"
          f" prompted = {prompted_model(r)} with {r.shots} examples, fine-tuned = {r.base} + LoRA, "
          f"{trained['steps']} steps\n")
    print(table)
    if "pool" in runs:
        print("(pool: the fine-tuned model again, every paragraph of the files in one wiki)")
    why = outcome_table(runs)
    if why:
        print(f"\nwhy the episodes ended as they did (questions):\n{why}")
    if gain is not None:
        print(f"\nfine-tuning bought {100 * gain:+.1f} EM points")
    if real is not None:
        low, high = real["em_ci95"]
        print(f"\nreal HotpotQA ({r.real_data}, {real['questions']} questions): fine-tuned EM {real['em']:.3f} "
              f"(95% interval {low:.3f}-{high:.3f}), F1 {real['f1']:.3f}\n{outcome_table({'real': real})}")
    plots = sorted(str(p) for p in out.glob(f"{Path(page).stem}-*.png")) + \
        [str(p) for p in (out / "model").glob("loss.png")]
    html = out / "html" / "index.html"
    print(f"\nreport: {page}\npage: {html} (open it in a browser)\nplots: {', '.join(plots)}\n"
          f"wall time this run: {time.time() - started:.0f} s")
    return {"runs": runs, "em_gain": gain, "real": real, "report": str(page), "page": str(html), "plots": plots,
            "gguf": str(gguf), "prompted_model": prompted_model(r), "eval_data": data.eval,
            "eval_split": data.eval_split}


def train_options(r: HotpotQARecipe, corpus: Path, model: Path) -> TrainConfig:
    """The training stage's options: LoRA on the recipe's base (from its adapter, where it names one)."""
    return train_config(r, corpus, model, seed=r.seed, init_adapter=r.init_adapter)


def evaluate_stage(r: HotpotQARecipe, out: Path, name: str, model: str, data, split: str, **changes) -> dict:
    """Evaluate `model` on the recipe's test questions into OUT/eval-NAME (a resumable stage)."""
    return evaluation_stage(r, out, name, model, data, split, **{"task": r.task, "seed": r.seed, "context": r.context,
                                                                 **changes})


cli = recipe_command(HotpotQARecipe, main, "Teach, fine-tune, export and evaluate (FireAct): prompted vs fine-tuned.")


if __name__ == "__main__":
    launch(cli, "fireflan.recipes.hotpotqa")
