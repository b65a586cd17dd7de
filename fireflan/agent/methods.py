"""Reasoning methods at inference for small models (arXiv 2403.19962), on top of the ReAct loop.

- branches: up to k trajectories sampled (temperature, seeds seed..seed+k-1); answers normalised
  and voted; a tie goes to the branch that finished in the fewest steps (then the first sampled);
  sampling stops early once an answer holds a strict majority of k; `extra` records every branch's
  answer, the votes and how often the sampled branches agree.
- decompose: a planning call splits the question into sub-questions; each is solved by a ReAct
  sub-episode (with the answers found so far); a final call composes the answer.
- backtrack: the ReAct loop, where a failed step (unparseable, a repeated action, a search that
  finds nothing) is taken back and sampled again, within a budget (see `AgentConfig.backtracks`).

All return a `Trajectory` whose `budget()` counts every model call and token spent, so methods
compare at equal cost.

    traj = run_method("branches", model, wiki, example, k=5)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from fireflan.agent.loop import METHODS as LOOP_METHODS
from fireflan.agent.loop import AgentConfig, Step, Trajectory, episode, make_step, run_episode
from fireflan.tasks.base import Example
from fireflan.tasks.scoring import normalize_answer
from fireflan.tools.actions import parse_action

METHODS = (*LOOP_METHODS, "branches", "decompose", "backtrack")

PLAN = ("Split the question into the simpler sub-questions that answer it, in order, one per line, each "
        "written as 'Sub-question: ...'. If it is already simple, write one line.")
COMPOSE = "Using the facts found, answer the question. Write one Thought, then Action: finish[answer]."


def _total(trajs: list[Trajectory], extra_steps: list[Step] = ()) -> dict:
    budgets = [t.budget() for t in trajs]
    steps = list(extra_steps)
    return {"calls": sum(b["calls"] for b in budgets) + len(steps),
            "prompt_tokens": sum(b["prompt_tokens"] for b in budgets) + sum(s.prompt_tokens for s in steps),
            "completion_tokens": sum(b["completion_tokens"] for b in budgets)
            + sum(s.completion_tokens for s in steps)}


def vote(trajs: list[Trajectory]) -> tuple[int, Counter]:
    """(index of the winning trajectory, votes by normalised answer).

    Majority of normalised answers; ties go to the trajectory with the fewest steps, then the first.
    Episodes that never finished do not vote (if none finished, the first trajectory wins).
    """
    votes = Counter(normalize_answer(t.answer) for t in trajs if t.answer is not None)
    if not votes:
        return 0, votes
    top = max(votes.values())
    leaders = {a for a, c in votes.items() if c == top}
    candidates = [i for i, t in enumerate(trajs) if t.answer is not None and normalize_answer(t.answer) in leaders]
    return min(candidates, key=lambda i: (len(trajs[i].steps), i)), votes


def run_branches(model, tool, example, *, k: int = 5, temperature: float = 0.7, config: AgentConfig | None = None,
                 seed: int = 0, score=None, early_stop: bool = True, **kwargs) -> Trajectory:
    """k sampled trajectories, voted. `early_stop`: stop once one answer holds a strict majority of k
    (the rest cannot change the voted answer), which saves their cost.

    A model with `generate_batch` (llama.cpp) steps the k branches side by side, one batched call per
    step (the tool's state swapped per branch); any other model samples them one after another."""
    config = replace(config or AgentConfig(), temperature=temperature)
    if hasattr(model, "generate_batch") and hasattr(tool, "state"):
        trajs, abandoned = _branches_together(model, tool, example, k, config, seed, score, early_stop, kwargs)
    else:
        trajs, abandoned = [], []
        for i in range(k):
            trajs.append(run_episode(model, tool, example, method="react", config=config, seed=seed + i,
                                     score=score, **kwargs))
            if early_stop and _certain(trajs, k):
                break
    best, votes = vote(trajs)
    winner = trajs[best]
    agree = votes.most_common(1)[0][1] / len(trajs) if votes else 0.0
    return replace(winner, method="branches", extra={
        "k": k, "sampled": len(trajs), "answers": [t.answer for t in trajs], "votes": dict(votes), "winner": best,
        "agreement": round(agree, 4), "budget": _total(trajs + abandoned)})


def _certain(trajs: list[Trajectory], k: int) -> bool:
    counts = Counter(normalize_answer(t.answer) for t in trajs if t.answer is not None)
    return bool(counts) and max(counts.values()) > k // 2


def _branches_together(model, tool, example, k, config, seed, score, early_stop, kwargs):
    """(finished trajectories in branch order, unfinished ones abandoned by the early stop).

    With early stopping, a first wave of k // 2 + 1 branches runs side by side; if it agrees, a
    majority is already certain and the rest are never sampled. Otherwise the rest run as a second wave."""
    first = k // 2 + 1 if early_stop else k
    done, abandoned = {}, []
    for wave in (range(first), range(first, k)):
        if not wave or (early_stop and _certain(list(done.values()), k)):
            break
        abandoned += _wave(model, tool, example, wave, config, seed, score, kwargs, done,
                           lambda: early_stop and _certain(list(done.values()), k))
    return [done[i] for i in sorted(done)], abandoned


def _wave(model, tool, example, branches, config, seed, score, kwargs, done: dict, certain) -> list[Trajectory]:
    """Step `branches` side by side (one batched model call per step, the tool's state swapped per
    branch) into `done`, until they finish or `certain()`; returns those abandoned unfinished."""
    loops = {i: episode(tool, example, method="react", config=config, seed=seed + i, score=score,
                        model_name=getattr(model, "name", "?"), **kwargs) for i in branches}
    requests, states = {}, {}
    for i, loop in loops.items():
        requests[i] = next(loop)
        states[i] = tool.state()
    while requests and not certain():
        ids = list(requests)
        outs = model.generate_batch([(requests[i].messages, requests[i].temperature, requests[i].seed) for i in ids],
                                    stop=config.stop, max_tokens=config.max_tokens)
        for i, out in zip(ids, outs, strict=True):
            tool.restore(states[i])
            try:
                requests[i] = loops[i].send(out)
                states[i] = tool.state()
            except StopIteration as finished:
                done[i] = finished.value
                del requests[i]
    for loop in loops.values():
        loop.close()
    return [requests[i].traj for i in sorted(requests)]


def run_decompose(model, tool, example, *, config: AgentConfig | None = None, seed: int = 0, score=None,
                  prefix: list[dict] | None = None, max_subquestions: int = 3, **kwargs) -> Trajectory:
    config = config or AgentConfig()
    ask = {"role": "user", "content": f"{PLAN}\n\nQuestion: {example.question}"}
    plan_text = model.generate([*(prefix or []), ask], stop=["\n\n", "Action:"], temperature=config.temperature,
                               seed=seed, max_tokens=config.max_tokens)
    usage = getattr(model, "last_usage", None)
    subs = [m.group(1).strip() for m in re.finditer(r"Sub-question\s*\d*\s*:\s*(.+)", plan_text)]
    subs = [s for s in subs if s][:max_subquestions] or [example.question]
    plan = Step(thought=plan_text.strip(), action="plan", argument=" | ".join(subs), observation="", raw=plan_text,
                prompt_tokens=getattr(usage, "prompt_tokens", 0),
                completion_tokens=getattr(usage, "completion_tokens", 0))
    known, episodes = [], []
    for i, sub in enumerate(subs):
        context = "".join(f"\nKnown: {q} -> {a}" for q, a in known)
        sub_example = replace(example, id=f"{example.id}/sub{i}", question=f"{sub}{context}")
        episode = run_episode(model, tool, sub_example, method="react", config=config, seed=seed, prefix=prefix,
                              **kwargs)
        episodes.append(episode)
        known.append((sub, episode.answer if episode.answer is not None else "not found"))
    facts = "\n".join(f"- {q} -> {a}" for q, a in known)
    text = model.generate([*(prefix or []), {"role": "user", "content":
                                             f"Question: {example.question}\nFacts found:\n{facts}\n{COMPOSE}"}],
                          stop=config.stop, temperature=config.temperature, seed=seed, max_tokens=config.max_tokens)
    usage = getattr(model, "last_usage", None)
    parsed = parse_action(text)
    answer = parsed.argument if parsed.ok and parsed.action == "finish" else None
    compose = make_step(text, usage, parsed, "" if parsed.ok else parsed.error)
    steps = [plan, *(s for e in episodes for s in e.steps), compose]
    traj = Trajectory(id=example.id, task=example.task, method="decompose", model=getattr(model, "name", "?"),
                      seed=seed, question=example.question, gold=example.answer, steps=steps, answer=answer,
                      extra={"subquestions": subs, "subanswers": [a for _, a in known],
                             "budget": _total(episodes, [plan, compose])})
    traj.apply_score(score)
    return traj


def run_method(method: str, model, tool, example: Example, *, config: AgentConfig | None = None, k: int = 5,
               backtracks: int = 2, branch_temperature: float = 0.7, **kwargs) -> Trajectory:
    """Any method by name: react | cot | reflexion | branches | decompose | backtrack."""
    if method in LOOP_METHODS:
        return run_episode(model, tool, example, method=method, config=config, **kwargs)
    if method == "backtrack":
        config = replace(config or AgentConfig(), backtracks=backtracks)
        return replace(run_episode(model, tool, example, method="react", config=config, **kwargs), method="backtrack")
    if method == "branches":
        return run_branches(model, tool, example, k=k, temperature=branch_temperature, config=config, **kwargs)
    if method == "decompose":
        return run_decompose(model, tool, example, config=config, **kwargs)
    raise ValueError(f"unknown method {method!r}; the methods are {', '.join(METHODS)}")
