"""The roles a small model plays beside the agent (arXiv 2403.19962): planner, judge, and the agent
restarted with a failed attempt. One place writes each role's turns, so what training shows the
model (fireflan.corpus.roles) is exactly what inference asks of it (fireflan.agent.methods).

- planner: [user: PLAN + question] -> "Sub-question 1: ...\\nSub-question 2: ..." (one line if simple);
  each sub-question is then solved by a ReAct episode whose question carries the answers found so
  far ("Known: q -> a" lines), and a composing turn answers the question from them;
- judge: the agent's conversation, the candidate step, then [user: its observation + JUDGE] ->
  "yes: reason" or "no: reason"; the agent's prompt is the judge prompt's prefix, so a model that
  keeps its cache evaluates only the candidate and the question;
- restart: the question with an earlier attempt's transcript and RESTART, answered as ReAct.

    plan_messages("Where was the director of X born?")
    judge_messages(messages, "Thought: ...\\nAction: search[X]", "X is a 1998 film ...")
    parse_verdict("no: that is the wrong page")   # -> False
"""

from __future__ import annotations

import re

PLAN = ("Split the question into the simpler sub-questions that answer it, in order, one per line, each "
        "written as 'Sub-question N: ...'. If it is already simple, write one line.")
COMPOSE = "Using the facts found, answer the question. Write one Thought, then Action: finish[answer]."
JUDGE = "Judge the last step: does it bring the question closer to its right answer? Say yes or no, then why."
JUDGE_ANSWER = "Judge the answer: is it the right answer to the question? Say yes or no, then why."
ATTEMPT = "An earlier attempt:"
RESTART = "Its answer was not the best; adjust the actions based on this history."
PLAN_STOP = ["\n\n", "Action:", "Thought:"]
VERDICT_STOP = ["\n"]


def plan_messages(question: str) -> list[dict]:
    return [{"role": "user", "content": f"{PLAN}\n\nQuestion: {question}"}]


def plan_text(subquestions: list[str]) -> str:
    """The planner's reply. ['Who directed X?', 'Where was that director born?'] ->
    'Sub-question 1: Who directed X?\\nSub-question 2: Where was that director born?'"""
    return "\n".join(f"Sub-question {i}: {q}" for i, q in enumerate(subquestions, start=1))


def parse_plan(text: str, limit: int = 3) -> list[str]:
    """The sub-questions of a planner's reply, at most `limit` ([] when it wrote none)."""
    subs = [m.group(1).strip() for m in re.finditer(r"Sub-question\s*\d*\s*:\s*(.+)", text)]
    return [s for s in subs if s][:limit]


def question_of_plan(content: str) -> str | None:
    """The question of a planner's prompt, or None when `content` is not one."""
    head = f"{PLAN}\n\nQuestion: "
    return content[len(head):].strip() if content.startswith(head) else None


def subquestion_text(sub: str, known: list[tuple[str, str]]) -> str:
    """The question a sub-episode is asked: the sub-question, then what earlier ones found.
    ('Where was that director born?', [('Who directed X?', 'Ann Lee')]) ->
    'Where was that director born?\\nKnown: Who directed X? -> Ann Lee'"""
    return sub + "".join(f"\nKnown: {q} -> {a}" for q, a in known)


def compose_messages(question: str, known: list[tuple[str, str]]) -> list[dict]:
    facts = "\n".join(f"- {q} -> {a}" for q, a in known)
    return [{"role": "user", "content": f"Question: {question}\nFacts found:\n{facts}\n{COMPOSE}"}]


def parse_compose(content: str) -> tuple[str, list[tuple[str, str]]] | None:
    """(question, known) of a composing prompt, or None when `content` is not one."""
    m = re.match(r"Question: (.*?)\nFacts found:\n(.*)\n" + re.escape(COMPOSE) + r"$", content, re.DOTALL)
    if not m:
        return None
    known = [tuple(line[2:].split(" -> ", 1)) for line in m.group(2).split("\n") if " -> " in line]
    return m.group(1), known


def judge_messages(messages: list[dict], candidate: str, observation: str | None) -> list[dict]:
    """The judge's prompt: the agent's conversation so far, the candidate step as the agent's turn, then
    the question (after the step's observation; a finish has none and asks about the answer)."""
    ask = JUDGE_ANSWER if observation is None else f"Observation: {observation}\n\n{JUDGE}"
    return [*messages, {"role": "assistant", "content": candidate}, {"role": "user", "content": ask}]


def verdict_text(ok: bool, reason: str) -> str:
    return f"{'yes' if ok else 'no'}: {reason}"


def parse_verdict(text: str) -> bool | None:
    """True for 'yes...', False for 'no...', None for anything else."""
    word = re.match(r"\s*(\w+)", text.lower())
    return {"yes": True, "no": False}.get(word.group(1)) if word else None


def restart_question(question: str, attempt: str) -> str:
    """The question of a restarted episode: the failed attempt's transcript, and what to do with it."""
    return f"{question}\n\n{ATTEMPT}\n{attempt}\n{RESTART}"


def strip_restart(content: str) -> str:
    """The question of a restarted episode's first turn (content itself when it is not one)."""
    return content.split(f"\n\n{ATTEMPT}\n", 1)[0]


def transcript(steps, words: int = 30) -> str:
    """An attempt's steps as text, each observation cut to its first `words` words (the prompt stays short)."""
    lines = []
    for s in steps:
        lines.append(s.content)
        if s.action != "finish" and s.observation:
            obs = s.observation.split()
            lines.append("Observation: " + " ".join(obs[:words]) + (" ..." if len(obs) > words else ""))
    return "\n".join(lines)
