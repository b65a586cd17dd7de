"""The command line: `python -m fireflan VERB ...` (python-fire). Heavy imports stay inside verbs.

    python -m fireflan world --seed 0 --out runs/world
    python -m fireflan dbworld --seed 0 --out runs/dbworld
    python -m fireflan search "Who directed The Last Nafern?" --corpus runs/world
    python -m fireflan score runs/world/predictions.jsonl runs/world/test.jsonl --task world
    python -m fireflan teach --task world --teacher scripted --methods react,cot,reflexion --out runs/teach
    python -m fireflan improve --start runs/hotpotqa/model --data runs/hotpotqa/world --out runs/hotpotqa/improve
    python -m fireflan judge --model runs/hotpotqa/model/gguf/model-q8_0.gguf --data runs/hotpotqa/world
"""

from __future__ import annotations

import json
import sys

from fireflan.audit import audit
from fireflan.chat import ChatConfig, chat
from fireflan.corpus.build import CorpusConfig, build_corpus
from fireflan.corpus.show import ShowConfig, show
from fireflan.doctor import DoctorConfig, doctor
from fireflan.evaluate import EvalConfig, evaluate
from fireflan.export import ExportConfig, describe, export
from fireflan.improve import ImproveConfig, improve
from fireflan.io import iter_jsonl
from fireflan.judgeval import JudgeEvalConfig, judge_eval
from fireflan.options import check_flags, command, one_line_errors, with_long_help
from fireflan.report import ReportConfig, report
from fireflan.serve import ServeConfig, serve
from fireflan.tasks import load_examples
from fireflan.tasks.score import score_files, score_one
from fireflan.teach import TeachConfig, teach
from fireflan.tools.wiki import Wiki
from fireflan.train.grpo import GRPOConfig, grpo
from fireflan.train.trainer import TrainConfig, train
from fireflan.worlds.db import DBWorldConfig, write_dbtasks
from fireflan.worlds.wiki import WorldConfig, write_world


class CLI:
    """fireflan: make small language models into tool-using agents on one machine."""

    def search(self, query, corpus: str = "runs/world", lookup: str | None = None):
        """Print what the wiki tool returns for search[QUERY] (then lookup[LOOKUP], if given).

        Args:
            query: a page title or free words.
            corpus: a corpus JSONL, a world folder, or an official HotpotQA JSON file.
            lookup: a keyword to look up in the page found.
        """
        wiki = Wiki.from_file(corpus)
        print(wiki.search(str(query)))
        if lookup is not None:
            print(wiki.lookup(str(lookup)))

    def audit(self, trajectories, task: str = "hotpotqa", data: str | None = None, split: str | None = None):
        """How imitable a teacher's trajectories are (fireflan.audit): searches a student could not write from
        the screen, comparisons stated, lookups that repeat what was shown, final thoughts that quote the
        answer, the variety of the wording. Prints JSON.

        Args:
            trajectories: a teach folder's trajectories.jsonl.
            task: the task of its questions.
            data: the questions' file or folder (their types and gold pages).
            split: the split, where the data has several.
        """
        examples = load_examples(task, data, split)
        print(json.dumps(audit([rec for _, rec in iter_jsonl(trajectories)], examples), indent=1))

    def score(self, pred, gold, task: str = "hotpotqa"):
        """Score answers; prints {"em": ..., "f1": ...} as JSON.

        PRED and GOLD are either two answers ("Paris" "paris") or two files: predictions (JSONL of
        {"_id" or "id", "answer" or "prediction"}, a JSON {id: answer}, or the official HotpotQA
        {"answer": {id: answer}}) and the task's questions. A question with no prediction scores 0.

        Args:
            pred: an answer, or a predictions file.
            gold: the gold answer, or the task's data file (a world folder for --task world).
            task: world | hotpotqa | bamboogle | strategyqa | mmlu | dbbench (queries only: a statement is
                scored on the table an episode leaves).
        """
        named = [x for x in (pred, gold) if _is_path(x) or _names_a_file(x)]
        if missing := [x for x in named if not _is_path(x)]:
            raise FileNotFoundError(f"{missing[0]}: no such file (to score two answers, give them without a "
                                    f"file suffix)")
        result = score_files(pred, gold, task) if named else score_one(str(pred), str(gold), task)
        print(json.dumps(result))


def _run_doctor(config):
    doctor(config)


def _run_world(config, out):
    counts = write_world(config, out)
    print(json.dumps({"out": str(out), **counts}))


def _run_dbworld(config, out):
    print(json.dumps({"out": str(out), **write_dbtasks(config, out)}))


def _run_teach(config):
    summary = teach(config)
    print(json.dumps(summary))
    if summary["stopped"]:
        print(f"fireflan: stopped: {summary['stopped']}; finished work is kept, re-run to continue",
              file=sys.stderr)


def _run_corpus(config):
    stats = build_corpus(config)
    keys = ("records", "train", "val", "duplicates_removed", "too_long_dropped", "capability_mix",
            "negative_shares", "tokens")
    print(json.dumps({k: stats[k] for k in keys}))


def _run_show(config):
    show(config)


def _run_train(config):
    summary = train(config)
    if config.plan:  # the plan was printed; its figures as JSON for scripts
        print(json.dumps({"backend": summary["backend"], "fits": summary["fits"], **summary["plan"]}))
        return
    print(json.dumps({k: summary[k] for k in ("saved", "steps", "train_loss", "val_loss", "seconds")}))


def _run_grpo(config):
    summary = grpo(config)
    print(json.dumps({k: summary[k] for k in ("saved", "steps", "prompts", "reward_first", "reward_last", "seconds")}))


def _run_export(config):
    summary = export(config)
    print(describe(summary))
    print(f"export: {config.model}/export.json")


def _run_evaluate(config):
    metrics = evaluate(config)
    print(json.dumps(metrics))


def _run_improve(config):
    summary = improve(config)
    for row in summary["rounds"]:
        low, high = row["em_ci95"]
        gained = f", {row['questions_gained']} questions gained" if row["round"] else " (the start model)"
        print(f"round {row['round']}: EM {row['em']:.3f} ({low:.3f}-{high:.3f}){gained}")
    print(json.dumps({k: summary[k] for k in ("em_gain", "gguf", "plot")}))


def _run_judge(config):
    print(json.dumps(judge_eval(config)))


def _run_chat(config):
    chat(config)


def _run_serve(config):
    serve(config)


def _run_report(config):
    from pathlib import Path

    written = report(config)
    if written.suffix == ".md":
        print(f"report: {written}")
    if config.html:
        page = Path(config.html) / "index.html"
        print(f"page: {page} (open it in a browser: {page.resolve().as_uri()})")


def _runs_as_arguments(cmd):
    """`report A B C` as well as `report A,B,C` or `--runs A,B,C`: the run folders, joined by commas."""
    import inspect

    def report(*folders, **flags):
        named = [flags.pop("runs")] if flags.get("runs") else []
        flat = [str(f) for x in (*named, *folders) for f in (x if isinstance(x, list | tuple) else [x])]
        return cmd(runs=",".join(flat), **flags)

    params = [inspect.Parameter("folders", inspect.Parameter.VAR_POSITIONAL)]
    params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in inspect.signature(cmd).parameters.values()]
    report.__signature__ = inspect.Signature(params)
    report.__doc__ = cmd.__doc__ + "\n    folders: evaluation folders (the same as --runs A,B)"
    return report


# The stage verbs, one table: each one's flags are the fields of its stage's options (one source for the command
# line, the recipes and --help), and what it runs prints the stage's summary. `search`, `audit` and `score`
# are the methods of CLI above.
VERBS = {
    "world": command(WorldConfig, _run_world, "Write the embedded world: OUT/{train,dev,test}.jsonl (HotpotQA schema) "
                     "and OUT/corpus.jsonl.", extra=(("out", "runs/world", "folder to write"),)),
    "dbworld": command(DBWorldConfig, _run_dbworld, "Write AgentBench-shaped DB tasks (list tables, the embedded "
                       "world's entities): OUT/{train,dev,test}.jsonl.", extra=(("out", "runs/dbworld", "folder to "
                                                                                  "write"),)),
    "teach": command(TeachConfig, _run_teach, "Run a teacher over a task's questions; keep every trajectory "
                     "(resumable)."),
    "corpus": command(CorpusConfig, _run_corpus, "Turn trajectories (or FireAct / AgentInstruct files) into SFT chat "
                      "records (`corpus show CORPUS`: one record token by token, trained tokens marked).",
                      positional=("inputs",)),
    "corpus_show": command(ShowConfig, _run_show, "One corpus record token by token through the tokenizer and chat "
                           "template training uses, trained tokens highlighted.", positional=("corpus",)),
    "train": command(TrainConfig, _run_train, "Fine-tune a base model on a corpus (LoRA or full; TRL on CPU, Unsloth "
                     "on CUDA)."),
    "grpo": command(GRPOConfig, _run_grpo, "GRPO (TRL's GRPOTrainer) of a model's ReAct steps, the environment as "
                    "the reward: EM/F1 of a finish, gold pages reached, the format."),
    "export": command(ExportConfig, _run_export, "Merge, convert to GGUF, quantize, verify, write an Ollama "
                      "Modelfile.", positional=("model",)),
    "evaluate": command(EvalConfig, _run_evaluate, "Run an agent over a task's questions and measure it "
                        "(resumable)."),
    "improve": command(ImproveConfig, _run_improve, "Improve a fine-tuned agent on its own rollouts: rounds of "
                       "rejection sampling (or GRPO), each exported and evaluated."),
    "judge": command(JudgeEvalConfig, _run_judge, "Measure a model's judge role on held-out judge records (accuracy, "
                     "AUC)."),
    "chat": command(ChatConfig, _run_chat, "An offline agent chat in the terminal."),
    "serve": command(ServeConfig, _run_serve, "Serve a GGUF behind an OpenAI-compatible endpoint with tool calling "
                     "(http://127.0.0.1:8000/v1).", positional=("model",)),
    "doctor": command(DoctorConfig, _run_doctor, "What this machine has (torch and its CUDA build, the driver, the "
                      "GPU and bf16, Unsloth, llama.cpp's backend) and what train and evaluate will use on it."),
    "report": _runs_as_arguments(command(ReportConfig, _run_report, "Compare evaluation runs: a Markdown table and "
                                         "plots, or (--html) a page to browse: trajectories side by side, metrics, "
                                         "plots, training curve, corpus statistics.")),
}
for _name, _verb in VERBS.items():
    setattr(CLI, _name, staticmethod(_verb))


def _is_path(value) -> bool:
    from pathlib import Path

    return isinstance(value, str) and Path(value).exists()


def _names_a_file(value) -> bool:
    """'preds.jsonl', 'runs/x/test.json': written as a file is (an answer never ends so)."""
    return isinstance(value, str) and value.lower().endswith((".json", ".jsonl", ".jsonl.gz", ".csv"))


def main(argv=None):
    """Run a verb. Bad input ends with one line naming what is wrong and exit status 2 (`one_line_errors`)."""
    import fire

    argv = with_long_help(sys.argv[1:] if argv is None else list(argv))
    if argv[:2] == ["corpus", "show"]:  # a sub-verb of corpus
        argv = ["corpus_show", *argv[2:]]
    with one_line_errors("fireflan"):
        verb = getattr(CLI(), argv[0], None) if argv and not argv[0].startswith("-") else None
        if callable(verb):
            check_flags(verb, argv[1:], f"fireflan {argv[0].replace('_', ' ')}")
        fire.Fire(CLI(), command=argv, name="fireflan")


if __name__ == "__main__":
    main(sys.argv[1:])
