"""How imitable a teacher's trajectories are: what a student would learn from them, counted.

A student sees only the question and the observations. A teacher that searches a title shown
nowhere, concludes from a page it does not quote, or looks up a sentence the search already showed
teaches habits that fail on real questions. `audit(records, examples)` counts them:

    python -m fireflan audit runs/real/teach/trajectories.jsonl --task hotpotqa --data hotpot_train_v1.1.json

- searches not derivable from the screen (the question and the observations before them), and the
  episodes that have one; bridges that open on a page the question does not name, or on the answer's page;
- comparisons whose final thought states both sides and how they compare;
- lookups, those that repeat what an earlier observation showed, those that look up the answer;
- final thoughts that quote the sentence holding the answer; hop thoughts that quote the name searched next;
- the wording: distinct thought sentences once names and quotes are blanked, and plans that promise a
  number of searches the episode does not make.
"""

from __future__ import annotations

import re
from collections import Counter

from fireflan.tasks.scoring import normalize_answer

_QUOTED = re.compile(r'"([^"]+)"')
_COMPARING = re.compile(r"\b(than|both|neither|same|different|differ|earlier|later|older|younger|before|after|"
                        r"more|fewer|less|larger|smaller|bigger|higher|lower|longer|shorter|taller|whereas|while|"
                        r"only one|not both|does not|not the same|also|too)\b", re.IGNORECASE)
_PLAN = re.compile(r"\b(two|three) (searches|steps|hops|pages)\b", re.IGNORECASE)


def phrase_in(needle: str, haystack: str) -> bool:
    """Whether the normalised `needle` is a run of whole words of the normalised `haystack`.
    ('Scott Stapp', 'married to Scott Stapp, a singer') -> True; ('no', 'known') -> False"""
    needle = normalize_answer(needle)
    return bool(needle) and f" {needle} " in f" {normalize_answer(haystack)} "


def derivable(query: str, screen: str) -> bool:
    """Whether a student could write `query` from `screen` (the question and the observations so far):
    the query is a phrase of the screen, or, with no brackets in it, each of its words is on the screen
    (a query made of the question's words). A title's disambiguation shown nowhere is not derivable.

    ('Heavy (film)', 'Who directed Heavy?') -> False; ('Urge Overkill second EP', "Urge Overkill's second EP")
    -> True
    """
    if phrase_in(query, screen):
        return True
    if "(" in query:
        return False
    words = set(normalize_answer(screen).split()) | set(normalize_answer(re.sub(r"['’]s\b", "", screen)).split())
    return bool(normalize_answer(query)) and all(w in words for w in normalize_answer(query).split())


def _blank(thought: str, names: list[str]) -> list[str]:
    """The thought's sentences with quotes and names blanked: its wording, not its content."""
    text = _QUOTED.sub("Q", thought)
    for name in sorted(filter(None, names), key=len, reverse=True):
        text = text.replace(name, "X")
    text = re.sub(r"\b\d[\d,.]*\b", "N", text)
    return [s.strip() for s in re.split(r"(?<=[.!?:])\s+", text) if s.strip()]


def answer_sentence_quoted(thought: str, answer: str, observations: list[str]) -> bool:
    """Whether `thought` quotes text that an observation showed and that holds the answer (yes/no: any quote
    of an observation)."""
    quotes = [q for q in _QUOTED.findall(thought) if any(q.strip(" .") in o for o in observations)]
    if normalize_answer(answer) in ("yes", "no"):
        return bool(quotes)
    return any(phrase_in(answer, q) for q in quotes)


def audit(records: list[dict], examples) -> dict:
    """Counts over trajectory records (`teach`'s trajectories.jsonl, successful ReAct episodes) of the
    questions in `examples` (their types and gold pages)."""
    by_id = {ex.id: ex for ex in examples}
    c = Counter()
    wording = Counter()
    for rec in records:
        ex = by_id.get(rec["id"])
        if ex is None or not rec.get("success") or rec.get("method") != "react" or not ex.supporting_facts:
            continue
        steps = rec["steps"]
        c["episodes"] += 1
        screen = ex.question
        observations, names, bad_episode = [], [ex.answer], False
        gold = list(dict.fromkeys(t for t, _ in ex.supporting_facts))
        context = dict(ex.context)
        holding = {t for t, i in ex.supporting_facts if i < len(context.get(t, [])) and phrase_in(ex.answer,
                                                                                                  context[t][i])}
        answer_page = next(iter(holding)) if len(holding) == 1 else None  # the one page that gives the answer
        searches = [s for s in steps if s["action"] == "search"]
        for n, step in enumerate(steps):
            if step["action"] == "search":
                c["searches"] += 1
                names.append(step["argument"])
                if not derivable(step["argument"], screen):
                    c["searches_underivable"] += 1
                    bad_episode = True
                if n > 0 and searches and step is not searches[0]:
                    c["hop_thoughts"] += 1
                    quotes = _QUOTED.findall(step["thought"])
                    c["hop_thoughts_quoting_next"] += any(phrase_in(step["argument"], q) for q in quotes) or \
                        phrase_in(step["argument"], ex.question)
            elif step["action"] == "lookup":
                c["lookups"] += 1
                shown = step["observation"].split(") ", 1)[-1]
                c["lookups_redundant"] += any(shown in o for o in observations)
                c["lookups_of_the_answer"] += normalize_answer(step["argument"]) == normalize_answer(ex.answer)
            for sentence in _blank(step["thought"], names + gold):
                wording[sentence] += 1
            if (m := _PLAN.search(step["thought"])) is not None:
                c["plans"] += 1
                c["plans_kept"] += {"two": 2, "three": 3}[m.group(1).lower()] == len(searches)
            observations.append(step["observation"])
            screen += " " + step["observation"]
        c["episodes_with_underivable_search"] += bad_episode
        if ex.type == "bridge" and searches:
            c["bridges"] += 1
            first = searches[0]["argument"]
            c["bridges_opening_unnamed"] += not derivable(first, ex.question)
            c["bridges_opening_on_answer_page"] += answer_page is not None and len(gold) > 1 and \
                normalize_answer(first) in (normalize_answer(answer_page), normalize_answer(answer_page.split(" (")[0]))
        final = steps[-1]["thought"] if steps and steps[-1]["action"] == "finish" else ""
        c["final_thoughts_quoting_answer"] += answer_sentence_quoted(final, ex.answer, observations)
        if ex.type == "comparison":
            c["comparisons"] += 1
            outside = _QUOTED.sub(" ", final).replace("'s", "")  # "Senet's page": Senet
            sides = [t.split(" (")[0].replace("'s", "") for t in gold]
            c["comparisons_stated"] += len(sides) >= 2 and bool(_COMPARING.search(outside)) and \
                all(phrase_in(s, outside) or any(phrase_in(w, outside) for w in s.split()[-1:]) for s in sides)
    n = max(c["episodes"], 1)
    return {
        "episodes": c["episodes"],
        "searches": c["searches"],
        "searches_underivable": c["searches_underivable"],
        "share_searches_underivable": round(c["searches_underivable"] / max(c["searches"], 1), 4),
        "share_episodes_with_underivable_search": round(c["episodes_with_underivable_search"] / n, 4),
        "bridges": c["bridges"],
        "bridges_opening_unnamed": c["bridges_opening_unnamed"],
        "bridges_opening_on_answer_page": c["bridges_opening_on_answer_page"],
        "comparisons": c["comparisons"],
        "comparisons_stated": c["comparisons_stated"],
        "lookups": c["lookups"],
        "lookups_redundant": c["lookups_redundant"],
        "lookups_of_the_answer": c["lookups_of_the_answer"],
        "share_final_thoughts_quoting_answer": round(c["final_thoughts_quoting_answer"] / n, 4),
        "share_hop_thoughts_quoting_next": round(c["hop_thoughts_quoting_next"] / max(c["hop_thoughts"], 1), 4),
        "plans": c["plans"],
        "plans_kept": c["plans_kept"],
        "distinct_thought_sentences": len(wording),
        "thought_sentences": sum(wording.values()),
        "share_in_40_most_common": round(sum(k for _, k in wording.most_common(40)) / max(sum(wording.values()), 1),
                                         4),
        "most_common_thought_sentences": [[s, k] for s, k in wording.most_common(5)],
    }
