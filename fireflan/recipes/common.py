"""What every recipe shares: options from a TOML file and flags, stages that resume, the final table.

    options = read_options(HotpotQARecipe, config="recipes/hotpotqa.toml", max_steps=40)
    result = stage(out, "train", train_config, train)   # skipped when it finished with these options
"""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path

from fireflan.evaluate import OUTCOMES, EvalConfig, evaluate
from fireflan.io import DataError, write_json
from fireflan.options import (
    as_text_lists,
    check_flags,
    claimed,
    one_line_errors,
    opt,
    typed,
    with_long_help,
    with_signature,
)
from fireflan.report import ReportConfig, report
from fireflan.report.table import by_measure, text
from fireflan.train.trainer import TrainConfig


@dataclass
class TrainingOptions:
    """The options of every recipe that fine-tunes: the base, the LoRA run (as `fireflan train` takes them) and
    the GGUF it is exported to. A recipe inherits them and may change a default by declaring the field again."""

    base: str = opt("embedded", "the model to fine-tune: embedded (Gemma 3 270M, offline) | tiny | a HF id or folder")
    backend: str = opt("auto", "auto (unsloth on a CUDA GPU, else trl) | trl | unsloth")
    rank: int = opt(16, "LoRA rank")
    alpha: int | None = opt(None, "LoRA alpha (None: 2 x rank)")
    lr: float = opt(5e-4, "peak learning rate")
    max_steps: int = opt(160, "optimizer steps")
    batch_size: int = opt(2, "records per forward pass")
    grad_accum: int = opt(2, "forward passes per step (batch_size x grad_accum records per step; 2 x 2 needs "
                             "2 GB less memory than 4 x 1 at the same speed)")
    gradient_checkpointing: bool = opt(False, "recompute activations in the backward pass (an 8B model on a 16 GB "
                                              "GPU needs it: `fireflan train --plan`)")
    save_steps: int = opt(10, "a checkpoint every N steps (a stopped run resumes from the last one)")
    quant: str = opt("q8_0", "GGUF type of the fine-tuned model: q8_0 | f16 | q4_k_m")
    threads: int | None = opt(None, "CPU threads for training (None: all cores); llama.cpp picks its own")


@dataclass
class EvaluationOptions:
    """The options of every recipe that evaluates a prompted base beside its fine-tuned model (`fireflan
    evaluate`'s defaults unless a recipe declares the field again)."""

    prompted: str = opt("auto", "the prompted baseline: auto (the embedded Gemma when base=embedded, else none) | "
                                "a GGUF file | none")
    eval_questions: int | None = opt(60, "test questions, the same for both models (None: all)")
    shots: int = opt(2, "few-shot examples in the prompted baseline's prompt")
    agent_calls: int = opt(8, "model calls per question at evaluation")
    agent_tokens: int = opt(128, "tokens per model call at evaluation")
    probes: int = opt(0, "hallucination probes per model (questions with no tools offered; 0: none)")


def prompted_model(r) -> str:
    """The prompted baseline's model (`r`: TrainingOptions and EvaluationOptions): the embedded Gemma for
    base=embedded under `auto`, else as given."""
    return r.prompted if r.prompted != "auto" else ("embedded" if r.base == "embedded" else "none")


def train_config(r: TrainingOptions, corpus: Path, model: Path, seed: int, init_adapter: str | None = None):
    """`fireflan train`'s options for a recipe's training stage: LoRA on its base, into MODEL."""
    return TrainConfig(corpus=str(corpus), base=r.base, out=str(model), backend=r.backend, rank=r.rank,
                       alpha=r.alpha or 2 * r.rank, lr=r.lr, max_steps=r.max_steps, batch_size=r.batch_size,
                       grad_accum=r.grad_accum, save_steps=r.save_steps,
                       gradient_checkpointing=r.gradient_checkpointing, seed=seed, threads=r.threads,
                       init_adapter=init_adapter)


def evaluation_stage(r: EvaluationOptions, out: Path, name: str, model: str, data, split: str, task: str, seed: int,
                     **changes) -> dict:
    """Evaluate `model` on `task`'s questions into OUT/eval-NAME with the recipe's evaluation options (a resumable
    stage); `changes`: any other of `fireflan evaluate`'s options."""
    config = EvalConfig(model=model, out=str(out / f"eval-{name}"), task=task, data=data, split=split,
                        limit=r.eval_questions, shots=r.shots, max_calls=r.agent_calls, max_tokens=r.agent_tokens,
                        seed=seed, probes=r.probes)
    return stage(out, f"eval-{name}", replace(config, **changes), evaluate)


def load_config(path) -> dict:
    """Options from a recipe TOML file; flags given on the command line win over it."""
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise DataError(path, f"not valid TOML ({e})") from None


def read_options(cls, config: str | None = None, **flags):
    """The recipe's options: its dataclass defaults, then the TOML file, then the flags (each checked
    against its field's type)."""
    from_file = typed(cls, load_config(config), f"{config}: ") if config else {}
    options = {**from_file, **typed(cls, as_text_lists(cls, flags))}
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        where = f"{config}: " if config and set(unknown) & set(load_config(config)) else ""
        raise ValueError(f"{where}unknown option(s) {unknown}; the options are {', '.join(sorted(names))}")
    return cls(**options)


def same_options(saved: dict, config) -> bool:
    """Whether a stage that finished with the options `saved` ran as `config` asks. An option the stage did
    not record (one a later version of fireflan added) counts as the same when `config` leaves it at its
    default, which is what the stage did; options no longer known are passed over."""
    options = json.loads(json.dumps(asdict(config)))
    defaults = {f.name: f.default for f in fields(config) if f.default is not MISSING}
    for key, value in options.items():
        if key in saved:
            if saved[key] != value:
                return False
        elif key not in defaults or json.loads(json.dumps(defaults[key])) != value:
            return False
    return True


def stage(out: Path, name: str, config, run):
    """Run `run(config)` unless OUT/stages/NAME.json records that it finished with the same options
    (`same_options`); returns its result (the stage's summary). A stage that stopped half-way resumes by
    itself."""
    marker = Path(out) / "stages" / f"{name}.json"
    options = json.loads(json.dumps(asdict(config)))
    if marker.is_file():
        saved = json.loads(marker.read_text())
        if same_options(saved.get("config") or {}, config):
            print(f"== {name}: finished before ({saved['seconds']:.0f} s), nothing to do")
            return saved["result"]
    print(f"== {name}", flush=True)
    marker.unlink(missing_ok=True)  # a run that is killed half-way must not leave a marker of an earlier one
    started = time.time()
    result = run(config)
    marker.parent.mkdir(parents=True, exist_ok=True)
    seconds = round(time.time() - started, 1)
    write_json(marker, {"config": options, "seconds": seconds, "result": result}, default=str)
    print(f"   {name}: {seconds:.0f} s", flush=True)
    return json.loads(json.dumps(result, default=str))


ROWS = [("em", "EM"), ("em_ci95", "EM, 95% interval"), ("f1", "F1"), ("turns", "turns per question"),
        ("format_error_rate", "format errors (of steps)"),
        ("hallucinated_observation_rate", "invented observations (of steps)"),
        ("tool_misuse", "tool misuse, no tools offered"), ("prompt_tokens_per_question", "prompt tokens per question"),
        ("seconds_per_question", "seconds per question")]


BUDGET_ROWS = [("em", "EM"), ("em_ci95", "EM, 95% interval"), ("f1", "F1"),
               ("calls_per_question", "model calls per question"),
               ("prompt_tokens_per_question", "prompt tokens per question"),
               ("completion_tokens_per_question", "generated tokens per question"),
               ("seconds_per_question", "seconds per question"), ("branch_agreement", "branch agreement"),
               ("backtracked_steps_per_question", "steps taken back per question")]


def report_pages(out: Path, name: str, folders) -> dict:
    """OUT/NAME.md with its plots and the page OUT/html-NAME/index.html over the given run folders;
    returns their paths {"report": ..., "page": ...}."""
    page = report(ReportConfig(runs=",".join(map(str, folders)), out=str(Path(out) / f"{name}.md"),
                               html=str(Path(out) / f"html-{name}")))
    return {"report": str(page), "page": str(Path(out) / f"html-{name}" / "index.html")}


def comparison(runs: dict[str, dict], rows=ROWS) -> str:
    """A plain-text table, one column per run ({name: metrics}), one row per measure."""
    return text(by_measure(runs, rows))


def outcome_table(runs: dict[str, dict]) -> str | None:
    """Why each run's episodes ended as they did (`evaluate.outcome`), as a plain-text table of counts;
    None when no run has them (a task without wiki paragraphs)."""
    if not any(m.get("outcomes") for m in runs.values()):
        return None
    return comparison({n: m.get("outcomes") or {} for n, m in runs.items()}, list(OUTCOMES.items()))


def launch(fn, name: str) -> None:
    """Run a recipe's command line (python-fire); bad input ends with one line and exit status 2, as
    `python -m fireflan` does (`one_line_errors`)."""
    import sys

    import fire

    with one_line_errors(name):
        argv = with_long_help(sys.argv[1:])
        check_flags(fn, argv, f"python -m {name}")
        fire.Fire(fn, command=argv, name=name, serialize=lambda result: None)


def recipe_command(cls, main, summary: str):
    """The recipe's command: flags are the fields of `cls` (listed with their help by --help), plus
    `--config FILE`; flags given win over the file, the file over the defaults."""

    def cmd(config: str | None = None, **flags):
        options = read_options(cls, config, **flags)
        with claimed(options.out):  # its stage markers and report files are this run's alone while it runs
            return main(options)

    return with_signature(cmd, cls, summary, extra=(("config", None, "a TOML file of these options (flags win "
                                                                     "over it)"),))
