"""Improve: the fine-tuned agent learns from its own rollouts, beyond the teacher's trajectories it imitated.

    python -m fireflan improve --start runs/hotpotqa/model --teacher runs/hotpotqa/teach/trajectories.jsonl \\
        --data runs/hotpotqa/world --rounds 2 --out runs/hotpotqa/improve

Rounds of rejection sampling (expert iteration, RFT; AgentEvol's explore-and-learn loop). Round r:
1. rollouts: the current model (round 0: `--start`'s GGUF) samples `k` ReAct trajectories per training
   question at `temperature`, side by side in one batched decode, in the real environment
   (OUT/round-r/rollouts.jsonl, resumed per question and seed). Questions with no success yet (those the
   teacher failed) are sampled first; held-out questions never are (the training split only);
2. keep: the task's own scorer keeps the successful ones (`--keep shortest`: one per question, the one
   with fewest steps), identical ones once (OUT/round-r/kept.jsonl);
3. corpus: the teacher's successful trajectories (`--teacher-share` of them) and every round's kept ones
   so far, as chat records (OUT/round-r/corpus);
4. train: from the previous round's adapter, `--steps` more steps on that corpus (OUT/round-r/model);
5. export to GGUF and evaluate on the test questions, as make all evaluates (OUT/round-r/eval-round-r).
Round 0 is the start model evaluated the same way. OUT/rounds.json has one row per round: EM, the
questions it gained (solved by the model, never by the teacher or an earlier round), tokens and
minutes; OUT/rounds.png draws EM by round. Every part of a round leaves OUT/round-r/done/PART.json
when it finishes; a killed run re-run picks up at the part it was in (rollouts per question, training
from its checkpoint), and raising `--rounds` adds rounds to a finished run.

`--method grpo` trains each round with GRPO (TRL's GRPOTrainer, the environment's reward) instead of
steps 1-4: see fireflan.train.grpo.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from fireflan.agent.loop import AgentConfig, Trajectory
from fireflan.agent.methods import sample_trajectories
from fireflan.corpus.build import CorpusConfig, build_corpus
from fireflan.evaluate import EvalConfig, evaluate
from fireflan.export import ExportConfig, export
from fireflan.io import DataError, append_jsonl, iter_jsonl, read_json, resumable_records, write_json, write_jsonl
from fireflan.models import load_model
from fireflan.options import guard_run, one_run_per_folder, opt, saved_setting
from fireflan.report.plots import rounds_plot
from fireflan.tasks import bind, open_task
from fireflan.train.grpo import GRPOConfig, grpo
from fireflan.train.trainer import TrainConfig, train

KEEP = ("all", "shortest")
IMPROVE_METHODS = ("rft", "grpo")


@dataclass
class ImproveConfig:
    """Options of `fireflan improve`."""

    start: str = opt("runs/hotpotqa/model", "the fine-tuned model to improve: a trainer's folder (train.json, "
                                             "adapter/, gguf/model-QUANT.gguf), e.g. make all's")
    teacher: str = opt("runs/hotpotqa/teach/trajectories.jsonl", "the teacher's trajectories the start model was "
                                                                  "trained on (comma-separated files)")
    out: str = opt("runs/hotpotqa/improve", "folder of the rounds (round-1, round-2, ...)")
    task: str = opt("world", "world | hotpotqa | dbbench: the environment and its scorer")
    data: str | None = opt(None, "a world or dbworld folder, or a task's file (None: the default world)")
    split: str = opt("train", "the questions rolled out (never the test split)")
    limit: int | None = opt(None, "the first N questions of the split (make all's teacher saw 1000)")
    method: str = opt("rft", "rft (rejection sampling: rollouts, keep the successes, SFT) | grpo (TRL's "
                             "GRPOTrainer with the environment's reward)")
    rounds: int = opt(2, "rounds of improvement")
    questions: int = opt(200, "questions rolled out per round (those without a success yet first)")
    k: int = opt(4, "trajectories sampled per question (grpo: completions per prompt, the group)")
    temperature: float = opt(0.7, "sampling temperature of the rollouts")
    keep: str = opt("all", "all (every successful rollout, identical ones once) | shortest (one per question)")
    teacher_share: float = opt(1.0, "share of the teacher's successful trajectories in each round's corpus (1: all; "
                                    "0: the model's own successes only)")
    steps: int = opt(80, "training steps per round, from the previous round's adapter (grpo: GRPO steps)")
    lr: float | None = opt(None, "peak learning rate per round (None: the start model's; grpo: GRPO's 1e-5)")
    quant: str = opt("q8_0", "GGUF type of each round's model (the start model's GGUF of this type is round 0)")
    eval_data: str | None = opt(None, "the questions each round is evaluated on (None: --data's)")
    start_eval: str | None = opt(None, "an evaluation folder of the start model with these settings (make all's "
                                       "eval-finetuned): round 0, not evaluated again")
    eval_split: str = opt("test", "the split of them each round is evaluated on")
    eval_questions: int = opt(60, "test questions, the same every round (make all: 60)")
    agent_calls: int = opt(6, "model calls per question, rollouts and evaluation (make all: 6)")
    agent_tokens: int = opt(96, "tokens per model call (make all: 96)")
    seed: int = opt(0, "seed of the question order, sampling and training")
    threads: int | None = opt(None, "CPU threads for training (None: all cores); llama.cpp picks its own")

    def check(self) -> None:
        if self.method not in IMPROVE_METHODS:
            raise ValueError(f"--method must be one of {', '.join(IMPROVE_METHODS)}, got {self.method!r}")
        if self.keep not in KEEP:
            raise ValueError(f"--keep must be one of {', '.join(KEEP)}, got {self.keep!r}")
        if not 0 <= self.teacher_share <= 1:
            raise ValueError(f"--teacher-share must be within 0..1, got {self.teacher_share}")
        if self.k > 100:
            raise ValueError(f"--k must be at most 100 (each round samples seeds of its own), got {self.k}")
        for name in ("rounds", "questions", "k", "steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.split == self.eval_split and self.eval_data in (None, self.data):
            raise ValueError(f"--split and --eval-split are both {self.split!r}: the model would be trained on the "
                             f"questions it is measured on")


# --------------------------------------------------------------------------- pure parts

def pick_questions(examples, solved: set[str], n: int, seed: int, round_: int) -> list:
    """The `n` questions a round rolls out: those without a success yet first (the teacher's failures:
    where the model's own successes are new data), each group in a seeded order of its own per round."""
    order = lambda ex: random.Random(f"{seed}-{round_}-{ex.id}").random()  # noqa: E731
    fresh = sorted((ex for ex in examples if ex.id not in solved), key=order)
    again = sorted((ex for ex in examples if ex.id in solved), key=order)
    return (fresh + again)[:n]


def steps_key(record: dict) -> tuple:
    """What a trajectory taught: its question and the text of its steps (identical ones are one lesson)."""
    return record["id"], tuple((s["thought"], s["action"], s["argument"]) for s in record["steps"])


def keep_successes(records: list[dict], keep: str = "all") -> list[dict]:
    """The successful trajectories, each lesson once; `shortest`: one per question, with fewest steps
    (then the lowest seed)."""
    ok = sorted((r for r in records if r.get("success")), key=lambda r: (r["id"], len(r["steps"]), r["seed"]))
    unique = list({steps_key(r): r for r in reversed(ok)}.values())[::-1]
    if keep == "shortest":
        unique = list({r["id"]: r for r in reversed(unique)}.values())[::-1]
    return unique


def teacher_records(paths: list[str], share: float, seed: int) -> tuple[list[dict], set[str]]:
    """(the teacher's successful trajectories kept at `share`, ids of every question the teacher solved)."""
    ok = [rec for path in paths for _, rec in iter_jsonl(path) if rec.get("success")]
    solved = {rec["id"] for rec in ok}
    rng = random.Random(f"{seed}-teacher")
    return [rec for rec in ok if rng.random() < share], solved


def round_row(round_: int, metrics: dict, kept: list[dict], rollouts: list[dict], known: set[str],
              teacher_solved: set[str], seconds: dict) -> dict:
    """One row of OUT/rounds.json: the round's EM and what its rollouts found."""
    solved = {r["id"] for r in kept}
    spent = [Trajectory.from_record(r).budget() for r in rollouts]
    return {"round": round_, "em": metrics["em"], "em_ci95": metrics["em_ci95"], "f1": metrics["f1"],
            "questions": metrics["questions"], "rolled_out": len({r["id"] for r in rollouts}),
            "rollouts": len(rollouts), "successes": sum(bool(r.get("success")) for r in rollouts),
            "kept": len(kept), "questions_solved": len(solved), "questions_gained": len(solved - known),
            "gained_over_teacher": len(solved - teacher_solved),
            "prompt_tokens": sum(b.get("prompt_tokens", 0) for b in spent),
            "completion_tokens": sum(b.get("completion_tokens", 0) for b in spent),
            "minutes": {k: round(v / 60, 2) for k, v in seconds.items()},
            "minutes_total": round(sum(seconds.values()) / 60, 2)}


# --------------------------------------------------------------------------- rollouts

def rollouts(model, task, tool, examples, path: Path, *, k: int, temperature: float, agent: AgentConfig,
             seed: int, round_: int) -> list[dict]:
    """k trajectories per question into PATH (appended as each question ends; a re-run samples only the
    (question, seed) pairs missing); returns the records of these questions."""
    from tqdm import tqdm

    have: dict[str, set[int]] = {}
    wanted = {ex.id for ex in examples}
    right = 0  # successes among these questions' rollouts, the resumed ones included
    for rec in resumable_records(path):
        have.setdefault(rec["id"], set()).add(rec["seed"])
        right += bool(rec.get("success")) and rec["id"] in wanted
    bar = tqdm(examples, desc=f"round {round_} rollouts", unit="q")
    for ex in bar:
        missing = [i for i in range(k) if seed + i not in have.get(ex.id, set())]
        if missing:
            env, score = bind(task, tool, ex)
            for traj in sample_trajectories(model, env, ex, missing, temperature=temperature, config=agent,
                                            seed=seed, score=score):
                traj.extra = {**traj.extra, "round": round_, "source": "self"}
                append_jsonl(path, traj.to_record())
                right += traj.success
        bar.set_postfix(successes=right, refresh=False)
    return [rec for _, rec in iter_jsonl(path) if rec["id"] in wanted] if path.exists() else []


# --------------------------------------------------------------------------- the rounds

def _part(folder: Path, name: str, run) -> tuple[dict, float]:
    """(result, seconds) of a round's part: run it, unless FOLDER/done/NAME.json says it finished."""
    marker = folder / "done" / f"{name}.json"
    if marker.is_file():
        saved = read_json(marker)
        return saved["result"], saved["seconds"]
    started = time.time()
    result = run()
    seconds = round(time.time() - started, 1)
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_json(marker, {"result": result, "seconds": seconds}, default=str)
    return json.loads(json.dumps(result, default=str)), seconds


def start_train_config(start: Path) -> TrainConfig:
    """The start model's training options (START/train.json), which every round trains with."""
    path = start / "train.json"
    summary = read_json(path)
    saved = summary.get("config")
    if not summary.get("lora") or not isinstance(saved, dict):
        raise DataError(path, "improve continues a LoRA run whose train.json records its options (`config`)")
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in names})


@dataclass
class Setting:
    """What every round reads: the environment, the questions, the teacher's data, the training options."""

    task: object
    examples: list
    tool: object
    teacher_kept: list[dict]
    teacher_solved: set[str]
    agent: AgentConfig
    train: TrainConfig


@one_run_per_folder()
def improve(config: ImproveConfig) -> dict:
    """Run (or resume) the rounds; returns and writes OUT/improve.json."""
    config.check()
    out, start = Path(config.out), Path(config.start)
    base_train = start_train_config(start)
    gguf, adapter = start / "gguf" / f"model-{config.quant}.gguf", start / "adapter"
    if not gguf.is_file():
        raise DataError(gguf, f"no such file (export the start model with --quant {config.quant} first)")
    guard_run(out, config, may_change=("rounds", "threads", "out", "start_eval"))
    task, examples, tool = open_task(config.task, config.data, config.split, config.limit)
    teacher_kept, teacher_solved = teacher_records([p for p in config.teacher.split(",") if p.strip()],
                                                   config.teacher_share, config.seed)
    setting = Setting(task, examples, tool, teacher_kept, teacher_solved,
                      AgentConfig(max_calls=config.agent_calls, max_tokens=config.agent_tokens), base_train)

    start_eval = reusable_eval(config, gguf)
    first = read_json(start_eval / "metrics.json") if start_eval else evaluate_round(config, out / "round-0", gguf)
    rows = [round_row(0, first, [], [], set(), teacher_solved, {})]
    pool: list[dict] = []  # every round's kept trajectories
    for r in range(1, config.rounds + 1):
        row, kept, gguf, adapter = run_round(config, setting, r, pool, gguf, adapter)
        pool += kept
        rows.append(row)
        write_json(out / "rounds.json", rows)  # after each round: the table so far
    plot = rounds_plot(rows, out / "rounds.png")
    summary = {"rounds": rows, "em_gain": round(rows[-1]["em"] - rows[0]["em"], 4), "gguf": str(gguf),
               "plot": str(plot), "config": asdict(config),
               "eval_folders": [str(start_eval or eval_folder(out / "round-0", 0))] +
                               [str(eval_folder(out / f"round-{r['round']}", r["round"])) for r in rows[1:]]}
    write_json(out / "improve.json", summary)
    return summary


def run_round(config: ImproveConfig, s: Setting, r: int, pool: list[dict], gguf: Path, adapter: Path):
    """One round from the previous one's GGUF and adapter: (its row, its kept trajectories, its GGUF, its
    adapter)."""
    folder = Path(config.out) / f"round-{r}"
    known = s.teacher_solved | {rec["id"] for rec in pool}
    if config.method == "grpo":
        return grpo_round(config, s, r, known, adapter)
    picked, _ = _part(folder, "questions", lambda: [
        ex.id for ex in pick_questions(s.examples, known, config.questions, config.seed, r)])
    by_id = {ex.id: ex for ex in s.examples}
    _, t_roll = _part(folder, "rollouts", lambda: sample_round(config, s, r, [by_id[i] for i in picked], gguf))
    recs = [rec for _, rec in iter_jsonl(folder / "rollouts.jsonl")]
    kept = [rec for _, rec in iter_jsonl(folder / "kept.jsonl")]
    corpus, t_corpus = _part(folder, "corpus", lambda: make_corpus(config, folder, s.teacher_kept + pool + kept))
    trained, t_train = _part(folder, "train", lambda: train(replace(
        s.train, corpus=str(folder / "corpus"), out=str(folder / "model"), max_steps=config.steps,
        init_adapter=str(adapter), lr=config.lr or s.train.lr, seed=config.seed + r, save_steps=10,
        threads=config.threads, limit=None, plan=False)))
    _, t_export = _part(folder, "export", lambda: export(ExportConfig(model=str(folder / "model"),
                                                                      quant=config.quant)))
    gguf = folder / "model" / "gguf" / f"model-{config.quant}.gguf"
    started = time.time()
    metrics = evaluate_round(config, folder, gguf)
    seconds = {"rollouts": t_roll, "corpus": t_corpus, "train": t_train, "export": t_export,
               "evaluate": time.time() - started}
    row = {**round_row(r, metrics, kept, recs, known, s.teacher_solved, seconds),
           "corpus_records": corpus["train"], "train_steps": trained["steps"]}
    return row, kept, gguf, Path(trained["saved"])


def grpo_round(config: ImproveConfig, s: Setting, r: int, known: set[str], adapter: Path):
    """A round of GRPO from the previous adapter (ROUND/model: rewards.csv, adapter), exported and evaluated;
    its rollouts are TRL's, rewarded by the environment, and kept nowhere."""
    folder = Path(config.out) / f"round-{r}"
    trained, t_train = _part(folder, "train", lambda: grpo(GRPOConfig(
        base=s.train.base, init_adapter=str(adapter), out=str(folder / "model"), trajectories=config.teacher,
        task=config.task, data=config.data, split=config.split, limit=None, backend=s.train.backend, rank=s.train.rank,
        alpha=s.train.alpha, target_modules=s.train.target_modules, lr=config.lr or GRPOConfig.lr,
        max_steps=config.steps, num_generations=config.k, temperature=config.temperature, seed=config.seed + r,
        save_steps=10, threads=config.threads)))
    _, t_export = _part(folder, "export", lambda: export(ExportConfig(model=str(folder / "model"),
                                                                      quant=config.quant)))
    gguf = folder / "model" / "gguf" / f"model-{config.quant}.gguf"
    started = time.time()
    metrics = evaluate_round(config, folder, gguf)
    seconds = {"train": t_train, "export": t_export, "evaluate": time.time() - started}
    row = {**round_row(r, metrics, [], [], known, s.teacher_solved, seconds), "train_steps": trained["steps"],
           "reward_first": trained["reward_first"], "reward_last": trained["reward_last"]}
    return row, [], gguf, Path(trained["saved"])


def make_corpus(config: ImproveConfig, folder: Path, trajectories: list[dict]) -> dict:
    """ROUND/data.jsonl (the trajectories a round trains on) as chat records in ROUND/corpus."""
    write_jsonl(folder / "data.jsonl", trajectories)
    return build_corpus(CorpusConfig(inputs=str(folder / "data.jsonl"), out=str(folder / "corpus"), negatives="",
                                     seed=config.seed))


def sample_round(config: ImproveConfig, s: Setting, r: int, chosen: list, gguf: Path) -> dict:
    """The round's rollouts with the previous round's model (ROUND/rollouts.jsonl) and the successes kept
    (ROUND/kept.jsonl)."""
    folder = Path(config.out) / f"round-{r}"
    model, _ = load_model(str(gguf), seed=config.seed)
    recs = rollouts(model, s.task, s.tool, chosen, folder / "rollouts.jsonl", k=config.k,
                    temperature=config.temperature, agent=s.agent, seed=config.seed * 10_000 + 100 * r, round_=r)
    kept = keep_successes(recs, config.keep)
    write_jsonl(folder / "kept.jsonl", kept)
    return {"rollouts": len(recs), "kept": len(kept)}


def eval_folder(folder: Path, round_: int) -> Path:
    return folder / f"eval-round-{round_}"


def evaluate_round(config: ImproveConfig, folder: Path, gguf: Path) -> dict:
    """The round's model on the test questions, as make all evaluates its fine-tuned model (resumable)."""
    return evaluate(eval_config(config, folder, gguf))


SAME_EVALUATION = ("model", "task", "data", "split", "limit", "method", "max_calls", "max_tokens", "temperature",
                   "seed", "noise", "prompt", "observations", "constrain", "corpus")


def reusable_eval(config: ImproveConfig, gguf: Path) -> Path | None:
    """`--start-eval`, when it evaluated the start model as a round is evaluated (else None, said why)."""
    if not config.start_eval:
        return None
    folder = Path(config.start_eval)
    if not (folder / "metrics.json").is_file() or not (folder / "config.json").is_file():
        print(f"fireflan improve: {folder} holds no finished evaluation; round 0 is evaluated")
        return None
    saved, wanted = read_json(folder / "config.json"), asdict(eval_config(config, Path("round-0"), gguf))
    differ = [k for k in SAME_EVALUATION if saved_setting(saved, k) != wanted[k]]
    if differ:
        print(f"fireflan improve: {folder} was evaluated with other {', '.join(differ)}; round 0 is evaluated")
        return None
    return folder


def eval_config(config: ImproveConfig, folder: Path, gguf: Path) -> EvalConfig:
    """How ROUND-N's model is evaluated: make all's settings, into ROUND-N/eval-round-N."""
    round_ = int(folder.name.rsplit("-", 1)[1])
    return EvalConfig(model=str(gguf), out=str(eval_folder(folder, round_)), task=config.task,
                      data=config.eval_data or config.data, split=config.eval_split, limit=config.eval_questions,
                      max_calls=config.agent_calls, max_tokens=config.agent_tokens, seed=config.seed)
