"""Evaluate: run an agent over a task's questions and measure it.

    python -m fireflan evaluate --model runs/model/gguf/model-q8_0.gguf --task world --split test --out runs/eval
    python -m fireflan evaluate --model embedded --method react --limit 50 --out runs/eval-base   # few-shot base
    python -m fireflan evaluate --model gpt-4o --base-url https://api.openai.com/v1 --out runs/eval-gpt4o
    python -m fireflan evaluate --model runs/model/gguf/model-q8_0.gguf --noise 0.5 --out runs/eval-noise

Each finished question's trajectory is appended to OUT/trajectories.jsonl at once; killed and
re-run, evaluation skips the questions already there. OUT/metrics.json holds EM, F1, turns,
format errors, invented observations, latency and tokens (FireAct's point: a fine-tuned agent needs
no few-shot prompt, so it reads far fewer tokens per question).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fireflan.agent.judge import Thresholds
from fireflan.agent.loop import AgentConfig, Trajectory
from fireflan.agent.methods import INFERENCE_METHODS, run_method, run_side_by_side
from fireflan.agent.probes import run_probes
from fireflan.agent.prompts import few_shot_prefix
from fireflan.corpus.format import system_tools
from fireflan.io import append_jsonl, iter_jsonl, resumable_records, write_json
from fireflan.models import load_model
from fireflan.models.load import check_model
from fireflan.options import guard_run, one_run_per_folder, opt
from fireflan.tasks import CONTEXTS, OBSERVATIONS, bind, open_task
from fireflan.tasks.scoring import normalize_answer
from fireflan.tools import NoisyTool


@dataclass
class EvalConfig:
    """Options of `fireflan evaluate`."""

    model: str = opt("runs/model/gguf/model-q8_0.gguf",
                     "a GGUF file, 'embedded' (the base Gemma, few-shot), or a model id served at --base-url")
    out: str = opt("runs/eval", "folder for trajectories.jsonl and metrics.json")
    task: str = opt("world", "world | hotpotqa | bamboogle | strategyqa | mmlu | dbbench")
    data: str | None = opt(None, "a world or dbworld folder, or a task's file, or several HotpotQA files joined by "
                                 "commas (None: the default world or DB tasks)")
    split: str = opt("test", "the split to evaluate")
    limit: int | None = opt(None, "the first N questions")
    corpus: str | None = opt(None, "the tool's corpus, when the questions carry no paragraphs")
    observations: str = opt("pages", "pages | snippets: search returns the whole paragraph (HotpotQA's distractor "
                                     "setting), or a search engine's snippet of it, the lead sentence and the one "
                                     "matching the query best (what FireAct's trajectories saw)")
    context: str = opt("question", "questions that bring their paragraphs (HotpotQA): question (each searches its "
                                   "own ten, HotpotQA's distractor setting) | pool (one wiki of the paragraphs of "
                                   "every question of --data: the gold pages among thousands)")
    method: str = opt("react", "react | cot | reflexion | branches | decompose | backtrack")
    k: int = opt(5, "branches: trajectories sampled and voted")
    branch_temperature: float = opt(0.7, "branches: sampling temperature")
    backtracks: int = opt(2, "backtrack: failed steps that may be taken back and sampled again")
    restarts: int = opt(2, "backtrack: restarts with the failed attempt in the prompt when the judge rejects "
                           "the answer (0: step-level backtracking only)")
    branch_by: str = opt("trajectory", "branches: trajectory (k sampled trajectories voted) | step (candidates "
                                       "per step, the judge picks one)")
    candidates: int = opt(2, "branches by step: actions sampled at each step (the first greedy)")
    judged: bool = opt(True, "decompose: the judge reads each sub-answer and a rejected one is restarted once "
                             "(False: no judge, the plan and its sub-episodes alone)")
    judge_calibration: str | None = opt(None, "a `fireflan judge` metrics.json whose thresholds (answer, step) the "
                                              "methods' judge uses (None: P(yes) >= 0.5 is a yes)")
    prompt: str = opt("auto", "auto | none | fewshot | system: few-shot examples for base and remote models, none "
                              "for fine-tuned GGUFs (they were trained without); system: the tools described in a "
                              "system turn, as in Agent-FLAN-style training")
    shots: int = opt(3, "few-shot examples when prompted")
    noise: float = opt(0.0, "probability that a tool observation is replaced by noise (FireAct: 0.5)")
    max_calls: int = opt(8, "model calls per question")
    max_tokens: int = opt(128, "tokens per model call")
    temperature: float = opt(0.0, "sampling temperature (0: greedy)")
    seed: int = opt(0, "seed of sampling and noise")
    threads: int | None = opt(None, "llama.cpp threads (None: the default for this machine)")
    base_url: str | None = opt(None, "an OpenAI-compatible server for --model")
    constrain: bool = opt(False, "GGUF models: after 'Action:' only an action name may be generated")
    batch: int = opt(1, "react with a GGUF: questions decoded side by side in one llama.cpp batch (1: one at a "
                        "time); greedy answers are the same, the wall time shorter")
    probes: int = opt(0, "hallucination probes: N questions with no tools offered, N that need none (0: off)")


OUTCOMES = {  # why an episode ended as it did, in the order `outcome` tests them
    "right": "right",
    "format_loop": "loop: unfinished, the last outputs unreadable or repeated",
    "answer_seen": "answer string seen, not given",
    "yesno_wrong": "yes/no wrong after reading both pages",
    "no_gold_page": "never reached a gold page",
    "some_gold_pages": "reached only some gold pages (one of two)",
    "out_of_steps": "out of steps after reading every gold page",
    "wrong_answer": "wrong answer after reading every gold page",
}


def gold_pages(example) -> dict[str, list[str]]:
    """{title: its sentences} of the pages an example's supporting facts point to (in the context)."""
    context = {title: sentences for title, sentences in example.context}
    titles = dict.fromkeys(title for title, _ in example.supporting_facts)
    return {t: [s.strip() for s in context.get(t, []) if len(s.strip()) >= 12] for t in titles}


def _contains(haystack: str, needle: str) -> bool:
    """Whether the normalised `needle` is a run of whole words of the normalised `haystack`."""
    needle = normalize_answer(needle)
    return bool(needle) and f" {needle} " in f" {normalize_answer(haystack)} "


def outcome(record: dict, example) -> str:
    """Why an episode ended as it did: one key of OUTCOMES.

    Tested in order: right (EM 1); a format loop (unfinished, its last two steps unreadable or the same
    text twice); the gold answer (not yes/no) written in an observation but not given; a yes/no question
    answered wrong after both pages were read; no gold page reached; only some reached; every gold page
    reached but the episode never finished; or finished with another answer. A page is reached when an
    observation shows one of its sentences. Questions without supporting facts (no tool needed, or a
    task without paragraphs) can only be right, a format loop, out of steps or a wrong answer.
    """
    steps = record.get("steps", [])
    if record.get("score", {}).get("em", 0) >= 1:
        return "right"
    finished = record.get("answer") is not None
    last = steps[-2:]
    if not finished and len(last) == 2 and (all(s["format_error"] for s in last) or last[0]["raw"] == last[1]["raw"]):
        return "format_loop"
    observations = [s["observation"] for s in steps]
    gold = normalize_answer(example.answer)
    if gold not in ("yes", "no") and any(_contains(o, example.answer) for o in observations):
        return "answer_seen"
    pages = gold_pages(example)
    reached = [t for t, sentences in pages.items() if any(s in o for s in sentences for o in observations)]
    if pages and finished and gold in ("yes", "no") and len(reached) == len(pages):
        return "yesno_wrong"
    if pages and not reached:
        return "no_gold_page"
    if pages and len(reached) < len(pages):
        return "some_gold_pages"
    return "wrong_answer" if finished else "out_of_steps"


def outcome_counts(records: list[dict], examples) -> dict[str, int] | None:
    """{outcome: episodes} over the records whose question is among `examples` (None: a task without
    wiki paragraphs, such as the DB tasks, where the classes do not apply)."""
    by_id = {ex.id: ex for ex in examples}
    if not any(ex.context for ex in examples):
        return None
    counts = dict.fromkeys(OUTCOMES, 0)
    for rec in records:
        if rec["id"] in by_id:
            counts[outcome(rec, by_id[rec["id"]])] += 1
    return counts


def wilson_interval(successes: float, n: int, z: float = 1.96) -> list[float]:
    """The 95% Wilson score interval of a proportion, as [low, high]. (7, 89) -> [0.0386, 0.1536]"""
    if n == 0:
        return [0.0, 1.0]
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def summarize(trajectories: list[dict]) -> dict:
    """Metrics over trajectory records. Rates of steps: format errors, invented observations."""
    n = len(trajectories)
    if not n:
        return {"questions": 0}
    trajs = [Trajectory.from_record(t) for t in trajectories]
    budgets = [t.budget() for t in trajs]
    steps = [s for t in trajectories for s in t["steps"]]
    seconds = [b["seconds"] if "seconds" in b else sum(s["seconds"] for s in t["steps"] + t.get("discarded", []))
               for t, b in zip(trajectories, budgets, strict=True)]
    completion = sum(b["completion_tokens"] for b in budgets)
    return {
        "questions": n,
        "em": round(sum(t["score"].get("em", 0.0) for t in trajectories) / n, 4),
        "em_ci95": wilson_interval(sum(t["score"].get("em", 0.0) for t in trajectories), n),
        "f1": round(sum(t["score"].get("f1", 0.0) for t in trajectories) / n, 4),
        "finished": round(sum(t["answer"] is not None for t in trajectories) / n, 4),
        "turns": round(len(steps) / n, 3),
        "format_error_rate": round(sum(s["format_error"] for s in steps) / max(len(steps), 1), 4),
        "hallucinated_observation_rate": round(sum(s["hallucinated"] for s in steps) / max(len(steps), 1), 4),
        "seconds_per_question": round(sum(seconds) / n, 3),
        "seconds_per_step": round(sum(seconds) / max(len(steps), 1), 3),
        "calls_per_question": round(sum(b["calls"] for b in budgets) / n, 2),
        "prompt_tokens_per_question": round(sum(b["prompt_tokens"] for b in budgets) / n, 1),
        "completion_tokens_per_question": round(completion / n, 1),
        "completion_tokens_per_second": round(completion / max(sum(seconds), 1e-9), 2),
        "branch_agreement": round(sum(t.extra.get("agreement", 0) for t in trajs) / n, 4)
        if any("agreement" in t.extra for t in trajs) else None,
        "backtracked_steps_per_question": round(sum(len(t.discarded) for t in trajs) / n, 3),
    }


@one_run_per_folder()
def evaluate(config: EvalConfig, model=None) -> dict:
    """Run (or resume) the evaluation; returns and writes OUT/metrics.json.

    `model`: an object with the model interface, instead of loading `config.model` (tests, libraries).
    No gold answer reaches the agent: Reflexion at evaluation reflects on its own, without a judge.
    """
    from tqdm import tqdm

    if not 0 <= config.noise <= 1:
        raise ValueError(f"--noise must be within 0..1, got {config.noise}")
    if config.method not in INFERENCE_METHODS:
        raise ValueError(f"--method must be one of {', '.join(INFERENCE_METHODS)}, got {config.method!r}")
    if config.observations not in OBSERVATIONS:
        raise ValueError(f"--observations must be one of {', '.join(OBSERVATIONS)}, got {config.observations!r}")
    if config.context not in CONTEXTS:
        raise ValueError(f"--context must be one of {', '.join(CONTEXTS)}, got {config.context!r}")
    if config.prompt not in ("auto", "none", "fewshot", "system"):
        raise ValueError(f"--prompt must be auto, none, fewshot or system, got {config.prompt!r}")
    if config.batch < 1:
        raise ValueError(f"--batch must be 1 or more, got {config.batch}")
    if config.max_calls < 1 or config.max_tokens < 1:
        raise ValueError(f"--max-calls and --max-tokens must be 1 or more, got {config.max_calls} and "
                         f"{config.max_tokens}")
    if config.task == "dbbench" and (config.noise or config.constrain):
        raise ValueError("--noise and --constrain know the wiki's actions only; the DB tasks run execute[...] "
                         "(use --noise 0 and no --constrain)")
    out = Path(config.out)
    thresholds = Thresholds.read(config.judge_calibration) if config.judge_calibration else Thresholds()
    if model is None:
        check_model(config.model, config.base_url)
    guard_run(out, config, may_change=("limit", "threads", "probes", "out", "batch"))
    task, examples, tool = open_task(config.task, config.data, config.split, config.limit, config.corpus,
                                     config.observations, config.context)
    if config.noise:
        tool = NoisyTool(tool, config.noise, seed=config.seed)
    if model is None:
        model, needs_shots = load_model(config.model, base_url=config.base_url, threads=config.threads,
                                        seed=config.seed, constrain=config.constrain, actions=tool.actions)
    else:
        needs_shots = config.prompt == "fewshot"
    fewshot = config.prompt == "fewshot" or (config.prompt == "auto" and needs_shots)
    shots_for = config.method if config.method in ("cot", "reflexion") else "react"
    prefix = few_shot_prefix(shots_for, config.shots, config.task) if fewshot else []
    if config.prompt == "system":
        prefix = [{"role": "system", "content": system_tools(config.task)}]

    path = out / "trajectories.jsonl"
    wanted = {ex.id for ex in examples}  # a folder may hold more (a larger --limit before): report these
    earlier = [rec for rec in resumable_records(path) if rec["id"] in wanted]  # a torn last line is cut off
    done = {rec["id"] for rec in earlier}
    todo = [ex for ex in examples if ex.id not in done]
    agent = AgentConfig(max_calls=config.max_calls, max_tokens=config.max_tokens, temperature=config.temperature)
    started = time.time()
    # a resumed run's bar counts the questions done before, and its EM is over all of them
    bar = tqdm(desc=f"evaluate {config.method}", unit="q", initial=len(done), total=len(examples))
    right = sum(bool(rec.get("success")) for rec in earlier)
    prompt_name = f"few-shot-{shots_for}-{config.shots}" if fewshot else ("system-tools" if config.prompt == "system"
                                                                           else "")
    if config.batch > 1 and config.method == "react" and hasattr(model, "generate_batch"):
        bound = ((ex, *bind(task, tool, ex)) for ex in todo)
        trajectories = run_side_by_side(model, bound, width=config.batch, config=agent, prefix=prefix,
                                        seed=config.seed, prompt_name=prompt_name)
    else:  # one at a time; bind: a DB task's question gets its own database, scored on its table
        trajectories = (run_method(config.method, model, env, ex, prefix=prefix, config=agent, seed=config.seed,
                                   k=config.k, backtracks=config.backtracks,
                                   branch_temperature=config.branch_temperature, branch_by=config.branch_by,
                                   candidates=config.candidates, restarts=config.restarts, thresholds=thresholds,
                                   judged=config.judged, score=score, prompt_name=prompt_name)
                        for ex in todo for env, score in [bind(task, tool, ex)])
    for i, traj in enumerate(trajectories, start=len(done) + 1):
        append_jsonl(path, traj.to_record())
        right += traj.success
        bar.update()
        bar.set_postfix(em=f"{right / i:.2f}", refresh=False)
    bar.close()
    records = [rec for _, rec in iter_jsonl(path) if rec["id"] in wanted]
    metrics = {**summarize(records), "model": getattr(model, "name", config.model), "method": config.method,
               "task": config.task, "split": config.split, "noise": config.noise, "few_shot": fewshot,
               "ran_now": len(todo), "resumed": len(examples) - len(todo),
               "wall_seconds_now": round(time.time() - started, 1), "batch": config.batch}
    if todo:  # what a question cost this run, questions side by side included (their own seconds overlap)
        metrics["wall_seconds_per_question"] = round(metrics["wall_seconds_now"] / len(todo), 3)
    outcomes = outcome_counts(records, examples)
    if outcomes is not None:
        metrics["outcomes"] = outcomes
    if hasattr(task, "summarize"):  # the task's own report (AgentBench DB: accuracy per type)
        metrics[task.NAME] = task.summarize(records, examples)
    if config.probes:
        probe_examples = examples  # "N that need none": fewer among the questions asked, more from the split
        if config.task == "world" and sum(ex.type == "notool" for ex in examples) < config.probes:
            asked = {ex.id for ex in examples}
            probe_examples = examples + [ex for ex in open_task("world", config.data, config.split)[1]
                                         if ex.type == "notool" and ex.id not in asked]
        metrics["probes"] = run_probes(model, probe_examples, n=config.probes, max_tokens=config.max_tokens,
                                       seed=config.seed, path=out / "probes.jsonl")
    write_json(out / "metrics.json", metrics)
    return metrics
