"""Records that teach the roles of the inference methods (fireflan.agent.roles) from the teacher's
successful wiki trajectories; the turns are written by the same functions inference uses.

- judge: the conversation up to a step, a candidate step (and its observation), then the judge's
  question -> "yes: ..." or "no: ...". The positives are the teacher's own steps; the negatives are
  realistic mistakes made by perturbing them: a search for the wrong entity (a page another
  trajectory searched), a finish with a wrong value of the same shape (another question's answer),
  a finish before the second hop (with the first hop's entity). Balanced within each kind of step:
  a wrong search beside a right search, a wrong answer beside the right one (a model trained with
  more wrong answers than right ones learnt to say no to every answer and yes to every search).
- planner: from a decomposing teacher's trajectories (`teach --methods decompose`): the question ->
  its sub-questions, and the composing turn (the question and the facts found -> the answer); short
  records both, so many of them cost little training; a question the teacher did not decompose (one
  page, or no tool needed) -> itself as one line, in the share such questions have;
- subquestion: from the same trajectories, each sub-episode as a ReAct record whose question carries
  the answers found so far.
- backtrack: a failed attempt (the teacher's steps with a wrong or early finish) in the question of
  a restart, followed by the teacher's whole trajectory; loss on the retry only.

Each maker takes a trajectory, a seeded rng and pools drawn from the other trajectories, and returns
records (possibly none). Observations of a wrong search are the wiki's own reply, from `search`.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from fireflan.agent import roles
from fireflan.agent.loop import Trajectory
from fireflan.corpus.format import apply_mask, record
from fireflan.models.walk import surface

ROLES = ("planner", "subquestion", "judge", "backtrack")

_YES = {"search": ["the page on {a} is one the question needs.", "{a} is the entity to look up next."],
        "lookup": ["the sentence with {a} holds what the question asks."],
        "finish": ["the pages read say {a}, and that answers the question.", "{a} is what the pages read give."]}
_NO_ENTITY = ["{a} is not an entity the question leads to.", "the page on {a} has nothing the question needs."]
_NO_VALUE = ["the pages read do not say {a}.", "{a} is not what the observations show."]
_NO_EARLY = ["{a} is only the first hop; its own page has not been read yet.",
             "{a} is the entity the first page names, not the answer; its page is still to be read."]


def _meta(traj, role: str, n: int, verdict: bool | None = None) -> dict:
    return {"id": f"{traj.id}/{traj.method}/{traj.seed}/{role}/{n}", "source": "role", "task": traj.task,
            "method": traj.method, "capability": "format", "negative": None, "tools": True,
            "question_id": traj.id, "role": role, **({} if verdict is None else {"verdict": verdict})}


def _before(traj, i: int) -> list[dict]:
    """The conversation the agent saw before step i: the question, steps[:i] and their observations."""
    out = [{"role": "user", "content": traj.question}]
    for s in traj.steps[:i]:
        out += [{"role": "assistant", "content": s.content},
                {"role": "user", "content": f"Observation: {s.observation}"}]
    return out


def _shape(answer: str) -> str:
    """'1998' -> 'year'; 'May 3, 1950' -> 'date'; 'yes' -> 'yesno'; '4,120' -> 'number'; else 'name'."""
    a = answer.strip().lower()
    if a in ("yes", "no"):
        return "yesno"
    if re.fullmatch(r"\d{4}", a):
        return "year"
    if re.fullmatch(r"[\d,.]+", a):
        return "number"
    return "date" if re.search(r"\d", a) else "name"


def _swap(text: str, old: str, new: str) -> str:
    return text.replace(old, new) if old else text


def _finish(thought: str, answer: str) -> str:
    return f"Thought: {thought}\nAction: finish[{answer}]"


def wrong_value(traj, answers: dict[str, list[str]], rng: random.Random) -> str | None:
    """Another question's answer of the same shape as this one's (None when there is none)."""
    right = (traj.answer or "").strip().lower()
    pool = [a for a in answers.get(_shape(traj.answer or ""), []) if a.strip().lower() != right]
    if _shape(traj.answer or "") == "yesno":
        pool = ["no" if right == "yes" else "yes"]
    return rng.choice(pool) if pool else None


def judge_records(traj, rng: random.Random, titles: list[str], answers: dict[str, list[str]], search) -> list[dict]:
    """Judge records of one successful trajectory (see the module's docstring), as many yes as no within each
    kind of step: each wrong search (another page) beside one of the teacher's own searches, each wrong answer
    (another question's value, or the first hop's entity of a bridge, drawn at random) beside the teacher's own
    finish. A judge cannot learn to say yes to searches and no to answers, whatever they hold."""
    steps, last = traj.steps, len(traj.steps) - 1
    if not steps or steps[-1].action != "finish" or any(s.format_error or s.feedback for s in steps):
        return []
    pairs = []  # (a right step's index, (its index, candidate text, observation or None, reason) of a wrong one)
    searches = [i for i, s in enumerate(steps) if s.action == "search"]
    if searches:
        i = rng.choice(searches)
        right = steps[i].argument
        asked = {s.argument for s in steps if s.action == "search"}
        others = [t for t in titles if t not in asked and surface(t).lower() not in traj.question.lower()]
        if others:
            wrong = rng.choice(others)
            thought = _swap(steps[i].thought, surface(right), surface(wrong))
            pairs.append((i, (i, f"Thought: {thought}\nAction: search[{wrong}]", search(wrong),
                              rng.choice(_NO_ENTITY).format(a=wrong))))
    answers_wrong = []
    value = wrong_value(traj, answers, rng)
    if value is not None:
        thought = _swap(steps[last].thought, traj.answer, value)
        answers_wrong.append((last, _finish(thought, value), None, rng.choice(_NO_VALUE).format(a=value)))
    if len(searches) >= 2 and steps[searches[1]].argument:  # a bridge: finish with the first hop's entity
        hop = surface(steps[searches[1]].argument)
        if hop.lower() != (traj.answer or "").lower():
            answers_wrong.append((searches[1], _finish(f"So the answer is {hop}.", hop), None,
                                  rng.choice(_NO_EARLY).format(a=hop)))
    if answers_wrong:
        pairs.append((last, rng.choice(answers_wrong)))
    out = []  # in pairs, right then wrong: a corpus cut to its share keeps whole pairs
    for i, (j, candidate, obs, reason) in pairs:
        s = steps[i]
        said = s.argument if s.action != "finish" else traj.answer
        why = rng.choice(_YES.get(s.action, _YES["search"])).format(a=said)
        out.append(_judge_record(traj, i, s.content, None if s.action == "finish" else s.observation, True, why,
                                 len(out)))
        out.append(_judge_record(traj, j, candidate, obs, False, reason, len(out)))
    return out


def _judge_record(traj, i: int, candidate: str, observation: str | None, ok: bool, reason: str, n: int) -> dict:
    messages = [*roles.judge_messages(_before(traj, i), candidate, observation),
                {"role": "assistant", "content": roles.verdict_text(ok, reason)}]
    flags = [False] * (sum(m["role"] == "assistant" for m in messages) - 1) + [True]
    return record(apply_mask(messages, flags), _meta(traj, "judge", n, ok))


def backtrack_record(traj, rng: random.Random, answers: dict[str, list[str]]) -> dict | None:
    """A restart whose question carries a failed attempt (the teacher's steps ending in a wrong finish, or
    a bridge finished at its first hop), answered by the teacher's whole trajectory."""
    steps = traj.steps
    if not steps or steps[-1].action != "finish" or any(s.format_error or s.feedback for s in steps):
        return None
    searches = [i for i, s in enumerate(steps) if s.action == "search"]
    value = wrong_value(traj, answers, rng)
    hop = surface(steps[searches[1]].argument) if len(searches) >= 2 else ""
    if hop and hop.lower() != (traj.answer or "").lower() and rng.random() < 0.5:
        failed = [*steps[:searches[1]], replace(steps[-1], thought=f"So the answer is {hop}.", argument=hop)]
    elif value is not None:
        failed = [*steps[:-1], replace(steps[-1], thought=_swap(steps[-1].thought, traj.answer, value),
                                       argument=value)]
    else:
        return None
    question = roles.restart_question(traj.question, roles.transcript(failed))
    messages = [{"role": "user", "content": question}, *traj.messages()[1:]]
    return record(apply_mask(messages, [True] * len(steps)), _meta(traj, "backtrack", 0))


def _decomposed(traj) -> bool:
    subs, lengths = traj.extra.get("subquestions", []), traj.extra.get("episode_steps", [])
    return bool(traj.success and len(subs) >= 2 and len(lengths) == len(subs) and sum(lengths) + 2 == len(traj.steps))


def planner_records(traj) -> list[dict]:
    """The planner's two turns, short records both: the plan of a successful decomposed trajectory (the
    question -> its sub-questions) and its composing turn (the question and the facts found -> the answer);
    of a successful ReAct one, the plan alone: the question as one line (`make_roles` passes only the ReAct
    trajectories of questions the teacher did not decompose: one page, or no tool)."""
    if traj.method == "react" and traj.success:
        subs = [traj.question]
    elif _decomposed(traj):
        subs = traj.extra["subquestions"]
    else:
        return []
    plan = [*roles.plan_messages(traj.question), {"role": "assistant", "content": roles.plan_text(subs)}]
    out = [record(apply_mask(plan, [True]), _meta(traj, "planner", 0))]
    if traj.method == "decompose":
        known = list(zip(subs, traj.extra["subanswers"], strict=True))
        compose = [*roles.compose_messages(traj.question, known),
                   {"role": "assistant", "content": traj.steps[-1].content}]
        out.append(record(apply_mask(compose, [True]), _meta(traj, "planner", 1)))
    return out


def subquestion_records(traj) -> list[dict]:
    """Each sub-episode of a successful decomposed trajectory (its question carries what the earlier ones
    found, as `decompose` writes it)."""
    if not _decomposed(traj):
        return []
    subs, answers, lengths = traj.extra["subquestions"], traj.extra["subanswers"], traj.extra["episode_steps"]
    out, known, at = [], [], 1
    for i, (sub, n) in enumerate(zip(subs, lengths, strict=True)):
        episode = Trajectory(id=traj.id, task=traj.task, method="react", model=traj.model, seed=traj.seed,
                             question=roles.subquestion_text(sub, known), gold=answers[i],
                             steps=traj.steps[at:at + n], answer=answers[i])
        at += n
        out.append(record(apply_mask(episode.messages(), [True] * len(episode.steps)),
                          _meta(traj, "subquestion", i)))
        known.append((sub, answers[i]))
    return out


def make_roles(trajectories: list, shares: dict[str, float], final: float, rng: random.Random, search) -> list[dict]:
    """Role records at their shares of a final corpus of `final` records; `search(title)` is the wiki's
    reply to a search. The sub-questions' come from decomposed trajectories, the planner's from those and
    (one line) from the ReAct ones of questions not decomposed, the others from ReAct ones of the wiki's
    tools (a DB task has no pages; a Reflexion attempt opens with a search meant to fail)."""
    wiki = [t for t in trajectories
            if t.success and t.method == "react" and any(s.action == "search" for s in t.steps)]
    titles = sorted({s.argument for t in wiki for s in t.steps if s.action == "search"
                     and not s.observation.startswith(("No page", "Could not"))})
    answers: dict[str, list[str]] = {}
    for t in wiki:
        answers.setdefault(_shape(t.answer), []).append(t.answer)
    out = []
    for role, share in shares.items():
        want, made = round(final * share), []
        if role == "planner":  # every question: the decomposed ones' plans, the others' one line, as they come
            decomposed = {t.id for t in trajectories if t.method == "decompose"}
            pool = [t for t in trajectories if t.method == "decompose" or
                    (t.method == "react" and t.id not in decomposed)] if decomposed else []
        elif role == "subquestion":
            pool = [t for t in trajectories if t.method == "decompose"]
        else:
            pool = list(wiki)
        rng.shuffle(pool)
        for traj in pool:
            if len(made) >= want:
                break
            if role == "planner":
                made += planner_records(traj)
            elif role == "subquestion":
                made += subquestion_records(traj)
            elif role == "judge":
                made += judge_records(traj, rng, titles, answers, search)
            elif (rec := backtrack_record(traj, rng, answers)) is not None:
                made.append(rec)
        out += made[:want - want % 2] if role == "judge" else made[:want]  # judge records come in pairs
    return out
