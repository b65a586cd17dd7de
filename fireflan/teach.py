"""Teach: run a teacher over a task's questions with each method, and keep every trajectory.

    python -m fireflan teach --task world --teacher scripted --methods react,cot,reflexion --out runs/teach
    python -m fireflan teach --task hotpotqa --data hotpot_train.json --teacher openai --model gpt-4o \\
        --max-usd 5 --out runs/teach-gpt4o

Every trajectory (successful or not) is appended to OUT/trajectories.jsonl as soon as it ends,
flushed to disk. Killed and re-run, teach skips every (question, method, seed) already in the file
and never pays for it twice; a half-written last line from a kill is cut off. A spend cap stops the
run cleanly between two questions.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fireflan.agent import roles
from fireflan.agent.loop import LOOP_METHODS, AgentConfig, Trajectory, run_episode
from fireflan.agent.methods import run_decompose
from fireflan.agent.prompts import few_shot_prefix
from fireflan.audit import audit
from fireflan.io import append_jsonl, iter_jsonl, resumable_records, write_json
from fireflan.models import BudgetExceeded, Usage
from fireflan.models.openai_compat import OpenAIModel
from fireflan.models.scripted import ScriptedExpert, failing
from fireflan.options import guard_run, one_run_per_folder, opt
from fireflan.tasks import bind, open_task
from fireflan.tasks.base import Example
from fireflan.tasks.scoring import normalize_answer

TEACH_METHODS = (*LOOP_METHODS, "decompose")  # decompose: the planner, the sub-episodes and the composer


@dataclass
class TeachConfig:
    """Options of `fireflan teach`."""

    out: str = opt("runs/teach", "folder for trajectories.jsonl and summary.json")
    task: str = opt("world", "world | hotpotqa | bamboogle | strategyqa | mmlu | dbbench")
    data: str | None = opt(None, "a world or dbworld folder, or a task's file (None: the default world or DB "
                                 "tasks, or the hub)")
    split: str = opt("train", "the split to teach on (world: train | dev | test; hotpotqa: hub split names)")
    limit: int | None = opt(None, "the first N questions")
    corpus: str | None = opt(None, "the tool's corpus, when the questions carry no paragraphs")
    context: str = opt("question", "questions that bring their paragraphs (HotpotQA): question (each searches its "
                                   "own, the distractor setting) | pool (one wiki of every question's paragraphs)")
    teacher: str = opt("scripted", "scripted | openai")
    model: str = opt("gpt-4o", "the teacher model's id (openai)")
    base_url: str | None = opt(None, "any OpenAI-compatible server (llama.cpp, vLLM, Ollama)")
    max_usd: float | None = opt(None, "spend cap (openai)")
    prices: str | None = opt(None, "USD per million tokens: 'model=in,out;model2=in,out' or a JSON file")
    methods: str = opt("react,cot,reflexion", "comma-separated methods: react, cot, reflexion, decompose (questions "
                                              "with a plan of two or more sub-questions: the world's)")
    shares: str = opt("react=1,cot=1,reflexion=0.3", "the share of eligible questions run with each method")
    seed: int = opt(0, "the seed of the teacher's sampling and wording; part of each trajectory's key")
    wording: str = opt("plain", "scripted teacher: plain (always the same phrasing for the same situation; a small "
                                "model learns it from fewer steps) | varied (each thought's phrasing drawn with the "
                                "seed)")
    answer_lookup: bool = opt(False, "scripted teacher: on the page that holds the answer, when the answer is not in "
                                      "its first sentence, look up a word of the question that finds its sentence "
                                      "before answering (what a reader does on a long page)")
    back_detours: bool = opt(False, "scripted teacher: a walk that takes a detour may search another name of the page "
                                    "it read, get that page back as the best match, say so and search the right "
                                    "name (the state a student that picks the wrong name is in)")
    walks: int = opt(1, "scripted teacher: walks per question, each with its own seed (seed, seed+1, ...): its own "
                        "wording, and where the pages allow another way (the other comparison page first, a wrong "
                        "page and back)")
    max_calls: int = opt(8, "model calls per episode")
    shots: int = opt(3, "few-shot examples in an LLM teacher's prompt")
    lookup_share: float = opt(0.3, "scripted teacher, DB tasks: how often it looks at the first rows before its SQL "
                                   "(on the wiki it looks a word up only where a search did not show the sentence "
                                   "it needs, as with snippets)")
    mistake_share: float = opt(0.0, "scripted teacher, DB tasks: how often its first SQL has a mistake small "
                                    "models make (a shortened table name, a header with underscores, a missing "
                                    "value) and it recovers from the error; the mistake is never trained on")
    success_share: float = opt(1.0, "scripted teacher: the share of questions it answers right; on the others it "
                                    "answers from the first page it reads, wrong, as a weak teacher fails some")
    failures: str = opt("hardest", "scripted teacher below --success-share 1: which questions it fails: hardest "
                                   "(by level, then kind: bridge over comparison over single-hop, as a real teacher "
                                   "fails hard questions more) | random (a seeded coin per question)")

    def method_list(self) -> list[str]:
        methods = [m.strip() for m in self.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in TEACH_METHODS]
        if bad or not methods:
            raise ValueError(f"--methods must name some of {', '.join(TEACH_METHODS)}; got {self.methods!r}")
        return methods

    def share_map(self) -> dict[str, float]:
        """'react=1,cot=0.5' -> {'react': 1.0, 'cot': 0.5}; methods not named get 1."""
        out = {}
        for part in filter(None, (p.strip() for p in self.shares.split(","))):
            name, _, value = part.partition("=")
            try:
                out[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"--shares expects method=number pairs, got {part!r}") from None
            if not 0 <= out[name.strip()] <= 1:
                raise ValueError(f"--shares: {name} must be within 0..1")
        return out


def eligible(method: str, example, teacher: str) -> bool:
    """Which questions a method applies to. The scripted expert cannot answer a tool question with
    CoT (it knows nothing but what the tool shows), and a question that needs no tool gets CoT and
    ReAct but no Reflexion (there is no search to get wrong)."""
    needs_tool = bool(example.supporting_facts) or example.type != "notool"
    if method == "cot":
        return not needs_tool or teacher != "scripted"
    if method == "reflexion":
        return needs_tool
    if method == "decompose":
        return len(example.subquestions) >= 2
    return True


def sub_examples(example) -> list[Example]:
    """The questions a decomposing teacher's sub-episodes are asked, as `decompose` writes them (the
    gold answers of the earlier ones as known), each answered by its own supporting fact."""
    out, known = [], []
    for i, (sub, answer) in enumerate(example.subquestions):
        out.append(Example(id=f"{example.id}/sub{i}", question=roles.subquestion_text(sub, known), answer=answer,
                           task=example.task, type="single", level="easy",
                           supporting_facts=[example.supporting_facts[i]], context=example.context))
        known.append((sub, answer))
    return out


def ambiguous_plans(examples) -> set[str]:
    """Ids of the questions a sub-question of which reads the same as another question (or sub-question)
    with another answer: a sub-episode sees only its sub-question, so the scripted expert, which knows
    questions by their text, could not tell them apart."""
    answers, subs = defaultdict(set), {}
    for ex in examples:
        answers[ex.question.strip()].add(ex.answer)
        subs[ex.id] = sub_examples(ex) if eligible("decompose", ex, "scripted") else []
        for sub in subs[ex.id]:
            answers[sub.question.strip()].add(sub.answer)
    return {i for i, its in subs.items() if any(len(answers[s.question.strip()]) > 1 for s in its)}


def plan(examples, methods: list[str], shares: dict[str, float], teacher: str, seed: int):
    """[(example, method), ...] in a fixed order: each eligible pair kept with its method's share,
    decided by a seeded coin per (question, method), so a re-run plans the same work."""
    out = []
    for ex in examples:
        for method in methods:
            coin = random.Random(f"{seed}-{ex.id}-{method}").random()
            if eligible(method, ex, teacher) and coin < shares.get(method, 1.0):
                out.append((ex, method))
    return out


def done_keys(path: Path) -> set[tuple[str, str, int]]:
    """(question id, method, seed) of every trajectory in the file; a torn last line is cut off."""
    return {(rec["id"], rec["method"], rec["seed"]) for rec in resumable_records(path)}


def make_teacher(config: TeachConfig, examples, method: str, tool=None, walks: dict | None = None, walk: int = 0):
    """The teacher of `method`: the scripted expert (trying its searches on `tool`; its `walk`-th way through each
    question, with seed + walk) or an OpenAI-compatible model."""
    if config.teacher == "scripted":
        hardest = config.failures == "hardest" and config.success_share < 1  # of the questions asked, not their parts
        wrong = failing(examples, config.success_share, config.seed) if hardest else None
        if method == "decompose":  # a ReAct expert that also knows every sub-question
            examples = [*examples, *(s for ex in examples if eligible("decompose", ex, "scripted")
                                     for s in sub_examples(ex))]
        return ScriptedExpert(examples, method="react" if method == "decompose" else method, seed=config.seed + walk,
                              lookup_share=config.lookup_share, mistake_share=config.mistake_share,
                              success_share=config.success_share, failing=wrong, tool=tool, walks=walks,
                              variant=walk, wording=config.wording, answer_lookup=config.answer_lookup,
                              back_detours=config.back_detours)
    if config.teacher == "openai":
        return OpenAIModel(config.model, base_url=config.base_url, max_usd=config.max_usd, prices=config.prices)
    raise ValueError(f"--teacher must be scripted or openai, got {config.teacher!r}")


@one_run_per_folder()
def teach(config: TeachConfig) -> dict:
    """Run the plan, appending each trajectory as it ends; returns (and writes) the summary."""
    from tqdm import tqdm

    if config.failures not in ("hardest", "random"):
        raise ValueError(f"--failures must be hardest or random, got {config.failures!r}")
    if config.max_calls < 1:
        raise ValueError(f"--max-calls must be 1 or more (model calls per episode), got {config.max_calls}")
    if config.walks < 1 or config.walks > 1 and config.teacher != "scripted":
        raise ValueError(f"--walks must be 1 or more (more than 1: the scripted teacher only), got {config.walks}")
    out = Path(config.out)
    guard_run(out, config, may_change=("limit", "methods", "shares", "seed", "max_usd", "prices", "out", "walks"))
    task, examples, tool = open_task(config.task, config.data, config.split, config.limit, config.corpus,
                                     context=config.context)
    unreachable = underivable = 0
    if config.teacher == "scripted" and config.task != "dbbench":  # it can only say what the pages show
        reachable = [ex for ex in examples if gold_walk(ex) is None]
        unreachable, examples = len(examples) - len(reachable), reachable
        expert = make_teacher(config, examples, "react", tool)  # only walks a student could make are taught
        walkable = [ex for ex in examples if unwalkable(ex, expert) is None]
        underivable, examples = len(examples) - len(walkable), walkable

    methods = config.method_list()
    todo = plan(examples, methods, config.share_map(), config.teacher, config.seed)
    if config.teacher == "scripted" and "decompose" in methods:
        ambiguous = ambiguous_plans(examples)
        todo = [(ex, m) for ex, m in todo if m != "decompose" or ex.id not in ambiguous]
    path = out / "trajectories.jsonl"
    done = done_keys(path)
    todo = [(ex, m, w) for w in range(config.walks) for ex, m in todo]  # each walk: its own seed, seed + w
    remaining = [(ex, m, w) for ex, m, w in todo if (ex.id, m, config.seed + w) not in done]

    first = expert.walks if config.teacher == "scripted" and config.task != "dbbench" else None
    teachers = {(m, w): make_teacher(config, examples, m, tool, first if w == 0 else {}, w)  # walk 0 planned once
                for m in methods for w in range(config.walks)}
    prefixes = {m: ([] if config.teacher == "scripted" else
                    few_shot_prefix("react" if m == "decompose" else m, config.shots, config.task)) for m in methods}
    agent = AgentConfig(max_calls=config.max_calls)
    spent, kept, ok, stopped = Usage(), 0, 0, None
    bar = tqdm(remaining, desc=f"teach {config.task}", unit="q", initial=0)
    for ex, method, w in bar:
        teacher, seed = teachers[method, w], config.seed + w
        env, score = bind(task, tool, ex)  # a DB task: the question's own database, scored on its table
        try:
            if method == "decompose":  # the teacher plans; its sub-answers are not judged
                traj = run_decompose(teacher, env, ex, config=agent, seed=seed, score=score,
                                     prefix=prefixes[method], judged=False)
            else:
                traj = run_episode(teacher, env, ex, method=method, prefix=prefixes[method], config=agent,
                                   seed=seed, judge=lambda a, _messages, score=score: score(a)["em"] == 1.0,
                                   score=score, prompt_name="" if config.teacher == "scripted"
                                   else f"few-shot-{method}-{config.shots}")
        except BudgetExceeded as e:
            stopped = str(e)
            break
        append_jsonl(path, traj.to_record())
        kept += 1
        ok += traj.success
        bar.set_postfix(success=f"{ok / kept:.0%}", usd=f"{sum(t.usage.usd for t in teachers.values()):.2f}",
                        refresh=False)
    bar.close()
    for t in teachers.values():
        spent.add(t.usage)

    summary = summarize(path)
    if any(ex.supporting_facts for ex in examples):  # what a student would learn from them (fireflan.audit)
        summary["audit"] = audit([rec for _, rec in iter_jsonl(path)], examples)
    summary.update({"planned": len(todo), "skipped_done": len(todo) - len(remaining), "ran": kept,
                    "skipped_unreachable": unreachable, "skipped_underivable": underivable,
                    "usd_this_run": round(spent.usd, 4), "calls_this_run": spent.calls,
                    "stopped": stopped})
    write_json(out / "summary.json", summary)
    return summary


def summarize(path: Path) -> dict:
    """Counts and success rates per method over the whole trajectory file."""
    per = {}
    for _, rec in iter_jsonl(path) if path.exists() else []:
        traj = Trajectory.from_record(rec)
        m = per.setdefault(traj.method, {"n": 0, "success": 0, "steps": 0})
        m["n"] += 1
        m["success"] += traj.success
        m["steps"] += len(traj.steps)
    for m in per.values():
        m["success_rate"] = round(m["success"] / m["n"], 4)
        m["mean_steps"] = round(m.pop("steps") / m["n"], 2)
    total = sum(m["n"] for m in per.values())
    return {"trajectories": total, "success": sum(m["success"] for m in per.values()), "methods": per,
            "file": str(path)}


def unwalkable(example, expert) -> str | None:
    """Why the scripted expert cannot answer `example` by a walk a student could make (None: it can): its
    answer is not in the supporting facts (`gold_walk`), or no search written from the screen reaches every
    gold page (`ScriptedExpert.route`)."""
    why = gold_walk(example)
    if why is None and example.supporting_facts and expert.route(example) is None:
        why = "no search written from the question and the pages read reaches every gold page"
    return why


def gold_walk(example) -> str | None:
    """None when the scripted expert can say an example's gold answer from its supporting facts, else why not.
    A "notool" question has no facts and needs no tool.

    Sayable: each supporting fact is a sentence of its page in the context, and a span answer (not yes/no) is
    written in those sentences, in the question, or is one of the titles. Whether a student could reach the
    pages is the expert's walk (`ScriptedExpert.route`).
    """
    if not example.supporting_facts:
        return None if example.type == "notool" else "no supporting facts"
    context = {title: sentences for title, sentences in example.context}
    found = []
    for title, index in example.supporting_facts:
        sentences = context.get(title)
        if sentences is None or not 0 <= index < len(sentences):
            return f"supporting fact [{title!r}, {index}] is not in the context"
        found += [title, sentences[index].strip()]
    answer = normalize_answer(example.answer)
    if answer in ("yes", "no"):
        return None
    haystack = " ".join(normalize_answer(t) for t in [*found, example.question])
    if answer not in haystack:
        return f"the answer {example.answer!r} is not in the supporting sentences"
    return None
