"""Reasoning methods at inference for small models (arXiv 2403.19962), on top of the ReAct loop.
The judge below is the model itself in the judge's role (fireflan.agent.roles, fireflan.agent.judge).

- branches by trajectory: up to k trajectories sampled (temperature, seeds seed..seed+k-1); answers
  normalised and voted; a tie goes to the branch that finished in the fewest steps (then the first
  sampled); sampling stops early once an answer holds a strict majority of k; `extra` records every
  branch's answer, the votes and how often the sampled branches agree.
- branches by step (the paper's multi-branch): at each step `candidates` actions, the first greedy and
  the rest sampled from the same prompt (one batched decode); identical actions count once, unreadable
  ones never win; when more than one distinct action is left, the judge scores each (after running it:
  it reads the observation) and the highest P(yes) is taken; a tie goes to the earliest candidate, the
  greedy one first; with one distinct action the judge is not asked.
- decompose: the planner splits the question into sub-questions (one line, or a first sub-question that
  only restates the question: plain ReAct); each is solved by a sub-episode with the answers found so
  far in its question; the judge reads each sub-answer and, when it says no (the sub-question is not
  answered), the sub-episode starts once more with its failed attempt in the question, as backtracking
  restarts (the turn the model was taught; the better-rated attempt is kept); a final call composes
  the answer (when it writes no finish, the last sub-answer found is the answer: a chain's last hop
  answers its question).
- backtrack: the ReAct loop, where a failed step (unparseable, a repeated action, a search that finds
  nothing) is taken back and sampled again (`AgentConfig.backtracks`); then the paper's restart: when
  the judge rejects the answer, or the episode ends without one, it starts over with the failed
  attempt in the question, at most `restarts` times; the attempt the judge rates highest is kept (a
  tie: the earlier one), the others' steps are discarded.

The judge's yes is taken at its thresholds (fireflan.agent.judge.Thresholds: 0.5 unless calibrated on
held-out judge records by `fireflan judge`), and candidates are ranked by their margin over them.

All return a `Trajectory` whose `budget()` counts every model call (the judge's included), token and
second spent, so methods compare at equal cost.

    traj = run_method("branches", model, wiki, example, k=5)
    traj = run_method("branches", model, wiki, example, branch_by="step", candidates=2)
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import replace

from fireflan.agent import roles
from fireflan.agent.judge import Thresholds, yes_probabilities
from fireflan.agent.loop import (
    LOOP_METHODS,
    AgentConfig,
    Step,
    Trajectory,
    episode,
    make_step,
    restore_tool,
    run_episode,
    tool_state,
)
from fireflan.models.base import Usage
from fireflan.tasks.base import Example
from fireflan.tasks.scoring import normalize_answer
from fireflan.tools.actions import ACTION_NAMES, parse_action

INFERENCE_METHODS = (*LOOP_METHODS, "branches", "decompose", "backtrack")
UNCALIBRATED = Thresholds()  # P(yes) >= 0.5 is a yes
BRANCH_BY = ("trajectory", "step")


def _total(trajs: list[Trajectory], extra_steps: list[Step] = (), spent: Usage | None = None) -> dict:
    """Calls and tokens of trajectories, steps outside them (a plan) and other spending (the judge)."""
    budgets = [t.budget() for t in trajs]
    steps, spent = list(extra_steps), spent or Usage()
    return {"calls": sum(b["calls"] for b in budgets) + len(steps) + spent.calls,
            "prompt_tokens": sum(b["prompt_tokens"] for b in budgets) + sum(s.prompt_tokens for s in steps)
            + spent.prompt_tokens,
            "completion_tokens": sum(b["completion_tokens"] for b in budgets)
            + sum(s.completion_tokens for s in steps) + spent.completion_tokens}


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


def sample_trajectories(model, tool, example, branches, *, temperature: float = 0.7,
                        config: AgentConfig | None = None, seed: int = 0, score=None) -> list[Trajectory]:
    """The ReAct trajectories of `branches` (indices: branch i samples with seed + i) at `temperature`,
    all of them, in order: side by side in one batched decode when the model has one (as `branches`
    does), else one after another. Self-improvement samples its rollouts so."""
    config = replace(config or AgentConfig(), temperature=temperature)
    if hasattr(model, "generate_batch") and hasattr(tool, "state"):
        done = {}
        _wave(model, tool, example, list(branches), config, seed, score, {}, done, lambda: False)
        return [done[i] for i in branches]
    return [run_episode(model, tool, example, method="react", config=config, seed=seed + i, score=score)
            for i in branches]


def _certain(trajs: list[Trajectory], k: int) -> bool:
    counts = Counter(normalize_answer(t.answer) for t in trajs if t.answer is not None)
    return bool(counts) and max(counts.values()) > k // 2


def _branches_together(model, tool, example, k, config, seed, score, early_stop, kwargs):
    """(finished trajectories in branch order, unfinished ones abandoned by the early stop).

    With early stopping, k // 2 + 1 branches start side by side; if they agree, a majority is already
    certain and the rest are never sampled. The rest start the moment the finished and running ones
    can no longer make a majority (two answers differ, say), beside those still running, rather than
    after them: the same branches run as in two waves, in fewer and fuller batched calls."""
    done = {}

    def certain() -> bool:
        return early_stop and _certain(list(done.values()), k)

    def hopeless(live: int) -> bool:  # no answer can reach a majority with the branches now running
        counts = Counter(normalize_answer(t.answer) for t in done.values() if t.answer is not None)
        return max(counts.values(), default=0) + live <= k // 2

    abandoned = _wave(model, tool, example, range(k), config, seed, score, kwargs, done, certain,
                      width=k // 2 + 1 if early_stop else k, more=hopeless)
    return [done[i] for i in sorted(done)], abandoned


def _wave(model, tool, example, branches, config, seed, score, kwargs, done: dict, certain, width: int | None = None,
          more=lambda live: False) -> list[Trajectory]:
    """Step `branches` side by side (one batched model call per step, the tool's state swapped per
    branch) into `done`, until they finish or `certain()`; returns those abandoned unfinished. The first
    `width` (None: all) start at once; the others start when `more(live)` says the `live` running ones are
    not enough, up to `width` running."""
    pending = list(branches)
    width = width or len(pending)
    loops, requests, states = {}, {}, {}

    def start(i):
        loops[i] = episode(tool, example, method="react", config=config, seed=seed + i, score=score,
                           model_name=getattr(model, "name", "?"), **kwargs)
        requests[i] = next(loops[i])
        states[i] = tool.state()

    starting, pending = pending[:width], pending[width:]
    for i in starting:
        start(i)
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
        if pending and not certain() and more(len(requests)):
            starting, pending = pending[:width - len(requests)], pending[width - len(requests):]
            for i in starting:
                start(i)
    for loop in loops.values():
        loop.close()
    return [requests[i].traj for i in sorted(requests)]


def run_side_by_side(model, questions, *, width: int, config: AgentConfig | None = None, prefix=None, seed: int = 0,
                     prompt_name: str = ""):
    """ReAct episodes of different questions stepped side by side: each step of every running episode is one
    batched model call (`model.generate_batch`), so a CPU decodes `width` questions for little more than the
    price of one. `questions` yields (example, tool, score); yields each `Trajectory` as it ends (not in the
    order asked), its budget's seconds the wall time it ran. Greedy decoding gives each episode the text it
    gets alone (llama.cpp's batch, `fireflan.models.batch`)."""
    config = config or AgentConfig()
    questions, live = iter(questions), {}  # id -> [episode loop, its request, its tool, the tool's state, start]

    def start() -> bool:
        try:
            example, tool, score = next(questions)
        except StopIteration:
            return False
        loop = episode(tool, example, method="react", prefix=prefix, config=config, seed=seed, score=score,
                       prompt_name=prompt_name, model_name=getattr(model, "name", "?"))
        live[example.id] = [loop, next(loop), tool, tool_state(tool), time.perf_counter()]
        return True

    while len(live) < width and start():
        pass
    while live:
        ids = list(live)
        outs = model.generate_batch([(live[i][1].messages, live[i][1].temperature, live[i][1].seed) for i in ids],
                                    stop=config.stop, max_tokens=config.max_tokens)
        for i, out in zip(ids, outs, strict=True):
            entry = live[i]
            restore_tool(entry[2], entry[3])  # the tool as this episode left it (a shared wiki's open page)
            try:
                entry[1] = entry[0].send(out)
                entry[3] = tool_state(entry[2])
            except StopIteration as finished:
                traj = finished.value
                traj.extra = {**traj.extra, "budget": {**traj.budget(),
                                                       "seconds": round(time.perf_counter() - entry[4], 4)}}
                del live[i]
                start()
                yield traj


def _generate_all(model, requests: list[tuple], config: AgentConfig) -> list[tuple[str, Usage]]:
    """(text, usage) for each (messages, temperature, seed): one batched decode when the model has one."""
    if hasattr(model, "generate_batch"):
        return model.generate_batch(requests, stop=config.stop, max_tokens=config.max_tokens)
    out = []
    for messages, temperature, seed in requests:
        text = model.generate(messages, stop=config.stop, temperature=temperature, seed=seed,
                              max_tokens=config.max_tokens)
        out.append((text, getattr(model, "last_usage", None) or Usage()))
    return out


def choose_step(model, tool, messages: list[dict], outputs: list[tuple[str, Usage]],
                thresholds: Thresholds = UNCALIBRATED) -> tuple[int, list, Usage]:
    """(the candidate taken, [P(yes) or None per candidate], the judge's cost) among `outputs` for the next
    step of `messages`. Unreadable candidates (an unknown action too) and repeats of an earlier one are not
    judged (None); with fewer than two distinct readable actions the judge is not asked; the highest margin
    of P(yes) over its kind's threshold (answer or step) wins; ties go to the earliest."""
    actions = getattr(tool, "actions", ACTION_NAMES)
    firsts: dict[tuple, int] = {}
    for i, (text, _) in enumerate(outputs):
        parsed = parse_action(text, actions)
        if parsed.ok and parsed.action in actions:
            firsts.setdefault((parsed.action, parsed.argument), i)
    if len(firsts) < 2:
        return (min(firsts.values()) if firsts else 0), [None] * len(outputs), Usage()
    conversations, judged = [], sorted(firsts.values())
    for i in judged:
        text = outputs[i][0]
        parsed = parse_action(text, actions)
        observation = None
        if parsed.action != "finish":
            saved = tool.state() if hasattr(tool, "state") else None
            observation = tool.step(parsed.action, parsed.argument).text
            if saved is not None:
                tool.restore(saved)
        conversations.append(roles.judge_messages(messages, make_step(text, None, parsed, "").content, observation))
    scores, spent = [None] * len(outputs), Usage()
    for i, (p, usage) in zip(judged, yes_probabilities(model, conversations), strict=True):
        scores[i] = round(p, 4)
        spent.add(usage)
    kinds = {i: parse_action(outputs[i][0], actions).action for i in judged}
    best = max(judged, key=lambda i: (thresholds.margin(scores[i], kinds[i]), -i))
    return best, scores, spent


def run_step_branches(model, tool, example, *, candidates: int = 2, temperature: float = 0.7,
                      config: AgentConfig | None = None, seed: int = 0, score=None, prefix=None, prompt_name: str = "",
                      on_step=None, thresholds: Thresholds = UNCALIBRATED) -> Trajectory:
    """The paper's multi-branch reasoning: `candidates` actions at each step, the judge picks one."""
    config = config or AgentConfig()
    if candidates < 1:
        raise ValueError(f"--candidates must be at least 1, got {candidates}")
    loop = episode(tool, example, method="react", prefix=prefix, config=config, seed=seed, score=score,
                   prompt_name=prompt_name, on_step=on_step, model_name=getattr(model, "name", "?"))
    spent, log = Usage(), []
    try:
        request = next(loop)
        while True:
            n = len(request.traj.steps)
            requests = [(request.messages, request.temperature, request.seed)] + [
                (request.messages, max(temperature, request.temperature), seed + 1000 * (n + 1) + j)
                for j in range(1, candidates)]
            outputs = _generate_all(model, requests, config)
            best, scores, judged = choose_step(model, tool, request.messages, outputs, thresholds)
            spent.add(judged)
            for i, (_, usage) in enumerate(outputs):
                if i != best and usage is not None:
                    spent.add(Usage(calls=1, prompt_tokens=usage.prompt_tokens,
                                    completion_tokens=usage.completion_tokens))
            log.append({"candidates": [t for t, _ in outputs], "p_yes": scores, "picked": best})
            request = loop.send(outputs[best])
    except StopIteration as finished:
        traj = finished.value
    return replace(traj, method="branches", extra={"branch_by": "step", "candidates": candidates, "steps": log,
                                                  "budget": _total([traj], spent=spent)})


def run_decompose(model, tool, example, *, config: AgentConfig | None = None, seed: int = 0, score=None,
                  prefix: list[dict] | None = None, max_subquestions: int = 3, judged: bool = True,
                  thresholds: Thresholds = UNCALIBRATED, **kwargs) -> Trajectory:
    """Planner, a sub-episode per sub-question (its answer judged), then the composing call."""
    config = config or AgentConfig()
    prefix = list(prefix or [])
    text = model.generate([*prefix, *roles.plan_messages(example.question)], stop=roles.PLAN_STOP,
                          temperature=config.temperature, seed=seed, max_tokens=config.max_tokens)
    usage = getattr(model, "last_usage", None)
    subs = roles.parse_plan(text, max_subquestions)
    plan = Step(thought=text.strip(), action="plan", argument=" | ".join(subs), observation="", raw=text,
                prompt_tokens=getattr(usage, "prompt_tokens", 0),
                completion_tokens=getattr(usage, "completion_tokens", 0))
    if len(subs) <= 1 or normalize_answer(subs[0]) == normalize_answer(example.question):
        # a simple question, or a plan whose first sub-question is the question itself: plain ReAct
        traj = run_episode(model, tool, example, method="react", config=config, seed=seed, score=score,
                           prefix=prefix, **kwargs)
        return replace(traj, method="decompose", steps=[plan, *traj.steps],
                       extra={"subquestions": subs, "budget": _total([traj], [plan])})
    spent, verdicts, known, episodes = Usage(), [], [], []
    for i, sub in enumerate(subs):
        sub_example = replace(example, id=f"{example.id}/sub{i}", question=roles.subquestion_text(sub, known))
        if judged:  # the judge reads the sub-answer; one it rejects is restarted once with its failed attempt
            ep = run_backtrack(model, tool, sub_example, config=config, backtracks=0, restarts=1, seed=seed,
                               prefix=prefix, thresholds=thresholds, **kwargs)
            verdicts += [a["p_yes"] for a in ep.extra["attempts"] if a["answer"] is not None]
        else:
            ep = run_episode(model, tool, sub_example, method="react", config=config, seed=seed, prefix=prefix,
                             **kwargs)
        episodes.append(ep)
        known.append((sub, ep.answer if ep.answer is not None else "not found"))
    text = model.generate([*prefix, *roles.compose_messages(example.question, known)], stop=config.stop,
                          temperature=config.temperature, seed=seed, max_tokens=config.max_tokens)
    usage = getattr(model, "last_usage", None)
    parsed = parse_action(text)
    found = [a for _, a in known if a != "not found"]
    if parsed.ok and parsed.action == "finish":
        answer = parsed.argument
    else:  # the composer did not answer: the last sub-answer found (a chain's last hop answers the question)
        answer = found[-1] if found else None
    compose = make_step(text, usage, parsed, "" if parsed.ok else parsed.error)
    steps = [plan, *(s for e in episodes for s in e.steps), compose]
    traj = Trajectory(id=example.id, task=example.task, method="decompose", model=getattr(model, "name", "?"),
                      seed=seed, question=example.question, gold=example.answer, steps=steps, answer=answer,
                      discarded=[s for e in episodes for s in e.discarded],
                      extra={"subquestions": subs, "subanswers": [a for _, a in known],
                             "episode_steps": [len(e.steps) for e in episodes], "sub_verdicts": verdicts,
                             "budget": _total(episodes, [plan, compose], spent)})
    traj.apply_score(score)
    return traj


def run_backtrack(model, tool, example, *, config: AgentConfig | None = None, backtracks: int = 2,
                  restarts: int = 2, seed: int = 0, score=None, prefix: list[dict] | None = None,
                  thresholds: Thresholds = UNCALIBRATED, **kwargs) -> Trajectory:
    """Step-level backtracking, then up to `restarts` restarts with the failed attempt in the question."""
    config = replace(config or AgentConfig(), backtracks=backtracks)
    prefix = list(prefix or [])
    attempts, ratings, spent = [], [], Usage()
    for r in range(restarts + 1):
        asked = example if r == 0 else replace(
            example, question=roles.restart_question(example.question, roles.transcript(attempts[-1].steps)))
        traj = run_episode(model, tool, asked, method="react", config=config, seed=seed + r, prefix=prefix, **kwargs)
        attempts.append(traj)
        if traj.answer is None:
            ratings.append(-1.0)
        elif restarts == 0:  # nothing to decide: the judge is not asked
            ratings.append(0.5)
        else:
            messages = [*prefix, *traj.messages()]
            p, usage = yes_probabilities(model, [roles.judge_messages(messages[:-1], messages[-1]["content"],
                                                                      None)])[0]
            spent.add(usage)
            ratings.append(round(p, 4))
            if thresholds.accepts(p, "finish"):
                break
    best = max(range(len(attempts)), key=lambda i: (ratings[i], -i))
    winner = attempts[best]
    others = [s for i, t in enumerate(attempts) if i != best for s in t.steps]
    out = replace(winner, method="backtrack", question=example.question,
                  discarded=[*(s for t in attempts for s in t.discarded), *others],
                  extra={"attempts": [{"answer": t.answer, "p_yes": p, "steps": len(t.steps)}
                                      for t, p in zip(attempts, ratings, strict=True)], "kept": best,
                         "budget": _total(attempts, spent=spent)})
    out.apply_score(score)
    return out


def run_method(method: str, model, tool, example: Example, *, config: AgentConfig | None = None, k: int = 5,
               backtracks: int = 2, branch_temperature: float = 0.7, branch_by: str = "trajectory",
               candidates: int = 2, restarts: int = 2, thresholds: Thresholds = UNCALIBRATED, judged: bool = True,
               **kwargs) -> Trajectory:
    """Any method by name: react | cot | reflexion | branches | decompose | backtrack. The trajectory's
    budget gets the method's wall-clock seconds."""
    started = time.perf_counter()
    if method in LOOP_METHODS:
        traj = run_episode(model, tool, example, method=method, config=config, **kwargs)
    elif method == "backtrack":
        traj = run_backtrack(model, tool, example, config=config, backtracks=backtracks, restarts=restarts,
                             thresholds=thresholds, **kwargs)
    elif method == "branches" and branch_by == "step":
        traj = run_step_branches(model, tool, example, candidates=candidates, temperature=branch_temperature,
                                 config=config, thresholds=thresholds, **kwargs)
    elif method == "branches" and branch_by == "trajectory":
        traj = run_branches(model, tool, example, k=k, temperature=branch_temperature, config=config, **kwargs)
    elif method == "branches":
        raise ValueError(f"--branch-by must be one of {', '.join(BRANCH_BY)}, got {branch_by!r}")
    elif method == "decompose":
        traj = run_decompose(model, tool, example, config=config, thresholds=thresholds, judged=judged, **kwargs)
    else:
        raise ValueError(f"unknown method {method!r}; the methods are {', '.join(INFERENCE_METHODS)}")
    traj.extra = {**traj.extra, "budget": {**traj.budget(), "seconds": round(time.perf_counter() - started, 4)}}
    return traj
