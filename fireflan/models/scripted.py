"""The scripted expert: an offline teacher that answers as an expert would, through the real tool.

Given questions with supporting facts (the embedded world, or HotpotQA records), it searches the
right titles, looks a keyword up where a page is long, and finishes with the gold answer. It is a
`Model` like any other: each call reads the conversation so far and writes the next
"Thought: ...\\nAction: ...", so the loop executes every action against the tool, and each thought
quotes what the tool actually returned. If an observation lacks what was expected (noise, a bad
page) it searches again, and gives up honestly after two tries.

Methods: `react`; `cot` (one thought, then finish: for questions that need no tool); `reflexion`
(a vague first search that brings the wrong page, then a reflection and the corrected attempt).
Wording varies with the seed; the same seed gives the same text.

AgentBench DB tasks (`example.table`): it runs the task's reference SQL with execute[...] (now and
then after a look at the first rows) and answers with what the result shows, or finish[done] after
a statement; under `reflexion` it first writes the SQL with its names unquoted, reads the error,
and reflects. With `mistake_share`, that share of its ReAct DB episodes first runs SQL with one of the
mistakes small models make on AgentBench (`sql_mistake`: a shortened table name, a header with
underscores, cut short or guessed, an INSERT missing a value, an apostrophe not doubled), reads the error
and runs the right SQL; the corpus trains on
the recovery, never on the failed statement (`corpus.format.trajectory_record`).
"""

from __future__ import annotations

import ast
import json
import random
import re

from fireflan.agent import roles
from fireflan.models.base import Usage
from fireflan.tasks.scoring import normalize_answer
from fireflan.tools.actions import parse_action
from fireflan.tools.sql import STATEMENT_TYPES, answers_from_rows

_FIRST = [
    "I need to find out about {t} first.",
    "To answer this, I should look up {t}.",
    "The question is about {t}, so let me search for it.",
    "First I need the page on {t}.",
    "Let me start by searching {t}.",
]
_BRIDGE_FIRST = [  # a plan: the first page only leads to the page that answers
    "This takes two searches: {t} first, then the page it leads to.",
    "Two steps: the page on {t} names what I need, and that page has the answer. First, {t}.",
    "{t} is only the first hop; its page will point to the page with the answer. Let me search {t}.",
]
_SINGLE_FIRST = [  # one page answers
    "The page on {t} should say it directly. Let me search {t}.",
    "One search should do: {t}.",
    "The answer should be on the page about {t}.",
]
_COMPARE_FIRST = [
    "I need to compare {t} and {u}. I will search {t} first.",
    "To compare them I need both pages. First, {t}.",
    "Let me look up {t}, then {u}.",
]
_READ = [
    'The page on {t} says: "{s}"',
    'From the {t} article: "{s}"',
    '{t}: "{s}"',
    'According to its page, "{s}"',
]
_NEXT = [
    "Next I need to search {n}.",
    "Now I should look up {n}.",
    "So I need the page on {n} next.",
    "Let me search {n} now.",
]
_ANSWER = ["So the answer is {a}.", "That means the answer is {a}.", "Therefore, the answer is {a}.",
           "So it is {a}."]
_LOOKUP = [
    'The page is long; let me look up "{k}" in it.',
    'I will look for "{k}" on this page.',
    'Let me find the sentence that mentions "{k}".',
]
_RETRY = [
    "The result does not say what I need about {t}. I will search {t} again.",
    "That observation is not the {t} page I expected. Let me search {t} once more.",
]
_VAGUE_FAILED = [
    'Reflection: searching "{q}" brought up {got}, which is not the page I need. A vague query finds the '
    "wrong page; I should search the exact name {t} instead.",
    'Reflection: my search "{q}" was too vague and returned {got}. Next time I should search the entity '
    "named in the question. Let me search {t}.",
]
_VAGUE_LUCKY = ['Searching "{q}" already found the page I need.']
_FOLLOWED = [  # a search that found no exact title, but its best match was the page
    'There is no page titled "{q}", but the best match, {t}, is the one I need.',
    'No page has the exact title "{q}"; the best match, {t}, is the right page.',
]
_NOT_THE_MATCH_LISTED = [  # {s}: the first words of the page it found
    'The best match, {m}, says "{s}": not the page I need, but the similar titles include {t}. Let me search {t}.',
    'That brought {m} ("{s}"), which is something else. {t} is in the list of similar titles, so let me search it.',
]
_NOT_THE_MATCH = [
    'The best match, {m}, says "{s}": not the page I need. Let me search the full title, {t}.',
    'That brought {m} ("{s}"), which is something else. Let me try the fuller name {t}.',
]
_OTHER_PAGE = [  # the plain title is another page of the same name
    'This page on {q} says "{s}": it is about something else; I need the {w}. Let me search {t}.',
    'That is a different {q} ("{s}"), not the {w}. Let me search {t}.',
]
_VAGUE_FIRST = [
    "Let me try a quick search with the key words of the question.",
    "Maybe a search for the main words of the question will find it.",
]


_SQL_PLAN = {
    "other": ["I need the value the question asks for from the row it names.",
              "The answer is in one cell of the table: the row named in the question."],
    "counting": ["I need to count the rows that match.", "Counting the matching rows answers this."],
    "comparison": ["I need the rows whose value passes the comparison.",
                   "I will select the rows that satisfy the condition."],
    "ranking": ["I need to sort the rows by that column and take the first.",
                "Ordering the table by that column gives the answer."],
    "aggregation": ["An aggregate over the matching rows answers this.",
                    "I need to compute the {fn} over the matching rows."],
    "INSERT": ["I need to insert the new row into {t}.", "This asks me to add one row to {t}."],
    "UPDATE": ["I need to update the matching row of {t}.", "This asks me to change a value in {t}."],
    "DELETE": ["I need to delete the matching rows from {t}.", "This asks me to remove rows from {t}."],
}
_SQL_PEEK = ["Let me look at a few rows of {t} first.", "First, a look at the first rows of {t}."]
_SQL_AFTER_PEEK = ["Now I know how the values look.", "The rows show the format of the values."]
_SQL_NAIVE = ["Let me query the table directly.", "I will write the query right away."]
_SQL_REFLECT = ["Reflection: the statement failed ({e}) because I did not quote the names: a table or column "
                "name with spaces, like {t}, must be written in backticks. Let me quote every name.",
                "Reflection: my SQL was rejected ({e}). Names such as {t} contain spaces, so they need "
                "backticks around them. I will quote the names this time."]
_SQL_ANSWER = ["The query returned {o}, so the answer is {a}.", "The result is {o}. So the answer is {a}."]
_SQL_DONE = ["The statement ran: {o} The table now looks as asked, so I am done.",
             "{o} The change is made."]
_SQL_FAILED = ["The query failed ({o}), so I cannot find the answer."]
_SQL_FIX = {  # after a mistake's error: what the error says, and the corrected statement
    "table": ["The error says {e}: the table is not called {bad}. Its full name is {t}.",
              "It failed ({e}): I shortened the table's name. The table is {t}, the whole name."],
    "column": ["The error says {e}: there is no column {bad}. The headers are {heads}, so the column is {good}.",
               "It failed ({e}). The table's headers are {heads}; the one I meant is {good}."],
    "value": ["The error says {e}: I left out a value. One value for each of the columns, in their order.",
              "It failed ({e}): a value is missing. Let me give every column its value from the question, in order."],
    "quote": ["The error says {e}: the apostrophe in {bad} ended the quotes. Inside quotes it is written twice: "
              "{good}.",
              "It failed ({e}). {bad} holds an apostrophe; SQL writes it doubled, {good}."],
}


def surface(title: str) -> str:
    """A page title as running text names it, without Wikipedia's disambiguation in brackets.
    'Kiss and Tell (1945 film)' -> 'Kiss and Tell'; 'Bath, Maine' -> 'Bath, Maine'"""
    return re.sub(r"\s*\([^()]*\)$", "", title).strip() or title


def best_match(observation: str) -> str | None:
    """The title a search fell back to when no page had the exact title, else None.
    'No page is titled "X". Best match, X (film): ...' -> 'X (film)'"""
    m = re.match(r'No page is titled ".*?"\. Best match, (.+?): ', observation, re.DOTALL)
    return m.group(1) if m else None


def similar_titles(observation: str) -> list[str]:
    """The titles of the 'Similar: [a, b]' line of a search result ([] when there is none). Titles
    holding ', ' are split, so only titles without a comma can be matched against it."""
    m = re.search(r"\nSimilar: \[(.*)\]\s*$", observation)
    return [t.strip() for t in m.group(1).split(", ")] if m else []


def clip(sentence: str, key: str, words: int = 22) -> str:
    """A long sentence cut to the clause that holds `key` (or to its first words), so a quote stays short.

    ('Jaclyn Stapp is a beauty queen, philanthropist and fashion model with pageant roots in Florida and New York,
    and she is married to Scott Stapp, former frontman of the band Creed.', 'Scott Stapp')
    -> 'philanthropist and fashion model with pageant roots in Florida and New York, and she is married to Scott Stapp'
    """
    if len(sentence.split()) <= words:
        return sentence
    clauses = re.split(r"(?<=[,;])\s+(?=\w)", sentence)
    norm_key = normalize_answer(key)
    for k, clause in enumerate(clauses):
        if norm_key and norm_key in normalize_answer(clause):
            start = k
            while start > 0 and len(" ".join(clauses[start - 1:k + 1]).split()) <= words:
                start -= 1
            text = " ".join(clauses[start:k + 1]).rstrip(",;")
            return " ".join(text.split()[:words * 2])
    return " ".join(sentence.split()[:words]).rstrip(",;") + " ..."


def _followed(title: str, found, rng) -> list[str]:
    """What the expert says when the page was found as a search's best match rather than by its title."""
    if found is None or best_match(found[1]) != title:
        return []
    return [rng.choice(_FOLLOWED).format(q=found[0], t=title)]


def unquoted(sql: str) -> str:
    """SQL with its backtick quotes dropped: the mistake a beginner makes.
    'SELECT `Home city` FROM `Band Directory`' -> 'SELECT Home city FROM Band Directory'"""
    return re.sub(r"`([^`]*)`", r"\1", sql)


def split_values(values: str) -> list[str]:
    """The items of a VALUES list, split at the commas outside quotes.
    "'a, b', 3, 'it''s'" -> ["'a, b'", '3', "'it''s'"]"""
    items, current, quoted = [], "", False
    for ch in values:
        if ch == "'":
            quoted = not quoted
        if ch == "," and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += ch
    return [*items, current.strip()] if current.strip() else items


def sql_mistake(sql: str, table: str, headers: list[str], rng: random.Random) -> tuple[str, str, dict] | None:
    """A first attempt with a mistake small models make on AgentBench's tables, one that fails when run
    (so it never changes the table): (wrong SQL, kind, what the fix says), or None when `sql` offers none.

    kinds: table (the name shortened to its first word), column (a header written with underscores, cut
    to its first word or before its brackets or colon, or guessed in the other number: `Floor` for
    `Floors`), value (one value of an INSERT left out), quote (an apostrophe in a value not doubled:
    'Don't Stop' for 'Don''t Stop').
    ('SELECT `Games played` FROM `Football Standings`', 'Football Standings', [...]) ->
    ('SELECT `Games played` FROM `Football`', 'table', {'bad': '`Football`'}) (or another kind)
    """
    lower = {h.lower() for h in headers} | {table.lower()}
    options = {"table": [], "column": [], "value": [], "quote": []}
    short = table.split()[0] if " " in table else None
    if short and short.lower() not in lower and f"`{table}`" in sql:
        options["table"].append((sql.replace(f"`{table}`", f"`{short}`"), {"bad": f"`{short}`"}))
    for name in dict.fromkeys(re.findall(r"`([^`]+)`", sql)):
        if name not in headers:
            continue
        cut = re.split(r"\s*[(:]", name)[0].strip()
        number = ("" if not name.isalpha() or name.endswith(("ss", "us")) else
                  name[:-1] if name.endswith("s") else name + "s")  # Floors -> Floor, Year -> Years
        for wrong in dict.fromkeys((name.replace(" ", "_"), name.split()[0], cut, number)):
            if wrong and wrong.lower() not in lower and re.fullmatch(r"[\w. ]+", wrong):
                options["column"].append((sql.replace(f"`{name}`", f"`{wrong}`", 1),
                                          {"bad": f"`{wrong}`", "good": f"`{name}`"}))
    values = re.search(r"\bVALUES \((.*)\)\s*;?$", sql)
    if values and sql.startswith("INSERT") and "`) VALUES" in sql and len(items := split_values(values[1])) >= 2:
        drop = rng.randrange(len(items))
        kept = [v for i, v in enumerate(items) if i != drop]
        options["value"].append((sql[: values.start(1)] + ", ".join(kept) + sql[values.end(1):], {}))
    for value in dict.fromkeys(re.findall(r"'(?:[^']|'')*''(?:[^']|'')*'", sql)):
        options["quote"].append((sql.replace(value, value.replace("''", "'"), 1),
                                 {"bad": value.replace("''", "'"), "good": value}))
    kinds = [k for k, found in options.items() if found]
    if not kinds:
        return None
    kind = rng.choice(kinds)
    wrong, fix = rng.choice(options[kind])
    return wrong, kind, fix


def answer_from_observation(observation: str) -> str | None:
    """The answer a result shows, as finish[...] takes it; None if the observation holds no rows.

    "[('Velmora',)]" -> 'Velmora'; "[(3,), (5,)]" -> '["3", "5"]'; '[]' -> 'none'; "[('5,200',)]" -> '["5,200"]'
    (a value with a comma is written as a list, or it would read as two)
    """
    try:
        rows = ast.literal_eval(observation)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if not isinstance(rows, list) or not all(isinstance(r, tuple) for r in rows):
        return None
    values = answers_from_rows(rows)
    return values[0] if len(values) == 1 and "," not in values[0] else json.dumps(values, ensure_ascii=False)


def notool_reasoning(question: str, answer: str) -> str:
    """The reasoning of a question that needs no tool (the embedded world's arithmetic and definitions).

    'What is 17 plus 25?' -> '17 plus 25 is 42.'
    """
    if m := re.match(r"What is (\d+) plus (\d+)\?", question):
        return f"{m[1]} plus {m[2]} is {int(m[1]) + int(m[2])}."
    if m := re.match(r"What is (\d+) times (\d+)\?", question):
        return f"{m[1]} times {m[2]} is {int(m[1]) * int(m[2])}."
    if m := re.match(r"How many years passed between (\d+) and (\d+)\?", question):
        return f"From {m[1]} to {m[2]} is {m[2]} - {m[1]} = {int(m[2]) - int(m[1])} years."
    if m := re.match(r"A (\w+) has (\d+) legs\. How many legs do (\d+) ", question):
        return f"Each {m[1]} has {m[2]} legs, so {m[3]} of them have {m[3]} x {m[2]} = {int(m[2]) * int(m[3])} legs."
    if m := re.match(r"A (\w+) is a kind of ([\w ]+?) that ", question):
        return f"The question itself says that a {m[1]} is a kind of {m[2]}."
    return f"The question itself gives what I need: {answer}."


_LEVELS = {"easy": 0, "medium": 1, "hard": 2}
_KINDS = {"notool": 0, "single": 1, "comparison": 2, "bridge": 3}  # bridge questions need a hop found first


def difficulty(example) -> tuple[int, int]:
    """How hard a question is for a teacher: its level, then its kind (an unknown one counts as medium)."""
    return _LEVELS.get(example.level, 1), _KINDS.get(example.type, 2)


def _coin(seed: int, example) -> float:
    return random.Random(f"{seed}-{example.id}-fails").random()


def failing(examples, success_share: float, seed: int = 0) -> set[str]:
    """The ids of the hardest `1 - success_share` of `examples` (ties broken by a seeded coin): the questions
    a weak teacher gets wrong, as a real one fails the hard questions more than the easy ones."""
    ranked = sorted(examples, key=lambda ex: (difficulty(ex), _coin(seed, ex)), reverse=True)
    return {ex.id for ex in ranked[:round(len(ranked) * (1 - success_share))]}


class ScriptedExpert:
    """The offline teacher. `examples`: the questions it may be asked (matched by text).

        expert = ScriptedExpert(examples, method="react", seed=0)
        traj = run_episode(expert, wiki, examples[0], method="react")
    """

    def __init__(self, examples, method: str = "react", seed: int = 0, lookup_share: float = 0.3,
                 mistake_share: float = 0.0, success_share: float = 1.0, failing: set[str] | None = None,
                 name: str = "scripted-expert"):
        if not 0 <= success_share <= 1:
            raise ValueError(f"the scripted expert's success share must be within 0..1, got {success_share}")
        self.by_question = {ex.question.strip(): ex for ex in examples}
        self.method, self.seed, self.lookup_share, self.name = method, seed, lookup_share, name
        self.mistake_share, self.success_share = mistake_share, success_share
        self.failing = failing  # the ids of the questions it gets wrong (`failing()`); None: a coin per question
        self.usage, self.last_usage = Usage(), Usage()

    # -- the Model interface
    def generate(self, messages, *, stop=None, temperature=0.0, seed=None, max_tokens=256) -> str:
        text = self._role(messages[-1]["content"]) if messages and messages[-1]["role"] == "user" else None
        if text is None:
            example, history = self._read(messages)
            text = self._next(example, history)
        self.last_usage = Usage(calls=1)
        self.usage.add(self.last_usage)
        return text

    def _example(self, question: str):
        if question not in self.by_question:
            raise KeyError(f"the scripted expert was not given this question: {question[:80]!r}")
        return self.by_question[question]

    def _role(self, content: str) -> str | None:
        """The planner's or the composer's reply (fireflan.agent.roles), or None for an agent's turn."""
        if (question := roles.question_of_plan(content)) is not None:
            example = self._example(question)
            return roles.plan_text([q for q, _ in example.subquestions] or [example.question])
        if (composing := roles.parse_compose(content)) is not None:
            example = self._example(composing[0].strip())
            rng = self._rng(example, 3000)
            if example.type == "comparison" and example.reasoning:
                thought = example.reasoning
            else:
                q, a = composing[1][-1] if composing[1] else (example.question, example.answer)
                thought = f"The last fact found: {q} -> {a}. {rng.choice(_ANSWER).format(a=example.answer)}"
            return self._say([thought], f"finish[{example.answer}]")
        return None

    def _read(self, messages):
        """The question's example and the (action, argument, observation) steps taken so far."""
        start = max(i for i, m in enumerate(messages)
                    if m["role"] == "user" and not m["content"].startswith("Observation:"))
        question = roles.strip_restart(messages[start]["content"]).strip()  # a restart: the question asked
        example = self._example(question)
        history, turns = [], messages[start + 1:]
        for i in range(0, len(turns), 2):
            parsed = parse_action(turns[i]["content"])
            obs = turns[i + 1]["content"].removeprefix("Observation: ") if i + 1 < len(turns) else ""
            history.append((parsed.action, parsed.argument, obs))
        return example, history

    # -- planning
    @staticmethod
    def hops(example) -> list[tuple[str, list[str]]]:
        """[(title, [supporting sentences]), ...] in the order an expert reads them: pages named in
        the question first (the bridge's start, both sides of a comparison)."""
        context = {t: s for t, s in example.context}
        titles = list(dict.fromkeys(t for t, _ in example.supporting_facts))
        facts = {t: [context[t][i].strip() for tt, i in example.supporting_facts if tt == t] for t in titles}
        q = normalize_answer(example.question)
        titles.sort(key=lambda t: normalize_answer(surface(t)) not in q)  # stable: mentioned ones first
        return [(t, facts[t]) for t in titles]

    def _rng(self, example, step: int) -> random.Random:
        return random.Random(f"{self.seed}-{example.id}-{self.method}-{step}")

    def _lookup_keyword(self, example, title: str, sentence: str, rng) -> str | None:
        """A keyword whose first match on the page is `sentence`, if the page is long enough to need it."""
        sentences = next((s for t, s in example.context if t == title), [])
        if len(sentences) < 4 or rng.random() >= self.lookup_share:
            return None
        words = [w.strip(".,;:\"'()") for w in sentence.split()]
        candidates = [w for w in words if len(w) > 4 and w[0].isupper() or w.isdigit() and len(w) == 4]
        for word in candidates:
            first = next((s.strip() for s in sentences if word.lower() in s.lower()), None)
            if first == sentence:
                return word
        return None

    # -- one step
    def _next(self, example, history) -> str:
        if example.table:
            return self._next_sql(example, history)
        rng = self._rng(example, len(history))
        answer = example.answer
        fails = self.fails(example)
        if not example.supporting_facts:  # a question that needs no tool
            answer = self.wrong_answer(example, None) if fails else answer
            reasoning = notool_reasoning(example.question, answer)
            lead = "" if self.method == "cot" else "This needs no search. "
            return f"Thought: {lead}{reasoning} {rng.choice(_ANSWER).format(a=answer)}\nAction: finish[{answer}]"
        hops = self.hops(example)

        pending, i = [], 0  # thoughts to say before the next action; position in the history
        if self.method == "reflexion":
            vague = self._vague_query(example)
            if not history:
                return f"Thought: {rng.choice(_VAGUE_FIRST)}\nAction: search[{vague}]"
            obs = history[0][2]
            lucky = all(s in obs for s in hops[0][1])
            i = 0 if lucky else 1
            if len(history) == 1:  # the reflection comes right after the failed search, once
                got = best_match(obs) or "nothing useful"
                thought = _VAGUE_LUCKY if lucky else _VAGUE_FAILED
                pending.append(rng.choice(thought).format(q=vague, got=got, t=surface(hops[0][0])))

        read = []  # (title, its sentences, the key to quote them by, how it was found) of each hop read
        for n, (title, sentences) in enumerate(hops):
            key = hops[n + 1][0] if n + 1 < len(hops) and example.type != "comparison" else answer
            attempts, found = [], None
            while i < len(history) and found is None:
                action, argument, obs = history[i]
                i += 1
                if action == "search" and all(s in obs for s in sentences):
                    found = (argument, obs)
                else:
                    attempts.append((action, argument, obs))
            if found is None:
                if len(attempts) >= 3:
                    pending.append(f"The tool keeps failing to return {surface(title)}, so I cannot find the answer.")
                    return self._say(pending, "finish[unknown]")
                query, why = self._retry(title, attempts[-1], rng) if attempts else (surface(title), None)
                if why:
                    pending.append(why)
                elif read:
                    pending.append(self._quote(read[-1], rng))
                    pending.append(rng.choice(_NEXT).format(n=query))
                elif not pending and n == 0 and example.type == "comparison" and len(hops) > 1:
                    pending.append(rng.choice(_COMPARE_FIRST).format(t=query, u=surface(hops[1][0])))
                elif not pending:  # (a pending reflection already says what to search)
                    first = _BRIDGE_FIRST if example.type == "bridge" and len(hops) > 1 else \
                        _SINGLE_FIRST if len(hops) == 1 and example.type in ("single", "") else _FIRST
                    pending.append(rng.choice(first).format(t=query))
                return self._say(pending, f"search[{query}]")
            # found by the search at history[i-1]: a long page may be narrowed down with lookup
            keyword = self._lookup_keyword(example, title, sentences[0], self._rng(example, 1000 + n))
            if keyword and len(sentences) == 1:
                if i == len(history):
                    return self._say([*_followed(title, found, rng), rng.choice(_LOOKUP).format(k=keyword)],
                                     f"lookup[{keyword}]")
                if history[i][0] == "lookup":
                    i += 1
                    found = None  # the lookup has been said; the match needs no word more
            read.append((title, sentences, key, found))
            if fails:  # a weak teacher's mistake: it answers from the first page it reads
                wrong = self.wrong_answer(example, title)
                return self._say([self._quote(read[-1], rng), rng.choice(_ANSWER).format(a=wrong)], f"finish[{wrong}]")

        # every hop read: conclude, citing what the pages said
        if example.type == "comparison" and example.reasoning:
            pending += [*_followed(read[-1][0], read[-1][3], rng), example.reasoning]
        else:
            cited = [self._quote(r, rng) for r in read[-2:]]
            pending += cited if example.type == "comparison" else cited[-1:]
            pending.append(rng.choice(_ANSWER).format(a=answer))
        return self._say(pending, f"finish[{answer}]")

    def fails(self, example) -> bool:
        """Whether this question is one the teacher gets wrong: one of `failing`, else by a seeded coin per
        question (1 - `success_share` of them)."""
        if self.failing is not None:
            return example.id in self.failing
        return self.success_share < 1 and _coin(self.seed, example) >= self.success_share

    @staticmethod
    def wrong_answer(example, title: str | None) -> str:
        """What a weak teacher answers: the other one of yes/no, else the page it read (a bridge's first hop,
        one side of a comparison), else a name from the question; never the gold answer."""
        gold = normalize_answer(example.answer)
        if gold in ("yes", "no"):
            return "no" if gold == "yes" else "yes"
        names = re.findall(r"[A-Z][a-z]+(?: [A-Z][a-z]+)*", example.question)
        for guess in (surface(title) if title else None, *names):
            if guess and normalize_answer(guess) != gold and normalize_answer(guess) not in ("who", "what", "which"):
                return guess
        return "unknown"

    @staticmethod
    def _retry(title: str, attempt: tuple, rng) -> tuple[str, str]:
        """(the next search, the thought that says why) after a search that did not bring `title`'s page."""
        action, argument, obs = attempt
        match = best_match(obs)
        wanted = surface(title)
        if match is not None and match != title:
            page = obs.split(": ", 1)[1].split("\nSimilar:")[0]
            said = " ".join(page.split()[:8]).rstrip(".,;")
            if title in similar_titles(obs):
                return title, rng.choice(_NOT_THE_MATCH_LISTED).format(m=match, t=title, s=said)
            return title, rng.choice(_NOT_THE_MATCH).format(m=match, t=title, s=said)
        if action == "search" and argument == wanted != title and match is None and not obs.startswith("Could not"):
            what = title[len(wanted):].strip(" ()")
            said = " ".join(obs.split()[:8]).rstrip(".,;")
            return title, rng.choice(_OTHER_PAGE).format(q=wanted, w=what, t=title, s=said)
        return title, rng.choice(_RETRY).format(t=title)

    @staticmethod
    def _quote(read: tuple, rng) -> str:
        """What a page said, quoted short: the clause of its sentences that holds `key` (the next page's
        name or the answer), after a word on how the page was found when it was a best match."""
        title, sentences, key, found = read
        said = [s for s in sentences if normalize_answer(surface(key)) in normalize_answer(s)] or sentences[:1]
        quote = " ... ".join(clip(s, surface(key)) for s in said[:2])
        return " ".join([*_followed(title, found, rng), rng.choice(_READ).format(t=surface(title), s=quote)])

    def _next_sql(self, example, history) -> str:
        """One step of a DB task: [look at a few rows], run the reference SQL, answer from its result.
        A statement is run once; its answer is `done` (the table is what is scored)."""
        rng = self._rng(example, len(history))
        table = "`" + example.table["table_name"] + "`"
        statement = example.type in STATEMENT_TYPES
        sql = example.sql.replace("\n", " ").strip()  # an action's argument is one line
        naive = unquoted(sql)
        plan = rng.choice(_SQL_PLAN["aggregation" if example.type.startswith("aggregation") else example.type])
        plan = plan.format(t=table, fn=example.type.split("-")[-1])
        # (unquoted, only a name with a space or a sign in it makes the SQL fail: that mistake is the lesson)
        reflexion = self.method == "reflexion" and any(not re.fullmatch(r"\w+", name)
                                                       for name in re.findall(r"`([^`]*)`", sql))
        peek = not reflexion and self._rng(example, 1000).random() < self.lookup_share
        heads = [c["name"] for c in example.table["table_info"]["columns"]]
        mistake = None
        if self.method == "react" and not peek and self._rng(example, 2000).random() < self.mistake_share:
            mistake = sql_mistake(sql, example.table["table_name"], heads, self._rng(example, 2001))
        if not history:
            if reflexion:
                return self._say([plan, rng.choice(_SQL_NAIVE)], f"execute[{naive}]")
            if peek:
                return self._say([rng.choice(_SQL_PEEK).format(t=table)], f"execute[SELECT * FROM {table} LIMIT 3]")
            return self._say([plan], f"execute[{mistake[0] if mistake else sql}]")
        ran = next((obs for action, arg, obs in history if action == "execute" and arg in (sql, naive)
                    and not obs.startswith("Error")), None)
        if ran is None:  # the SQL has not run yet, or it failed unquoted or with a mistake
            last = history[-1][2]
            error = last.removeprefix("Error: ").rstrip(".")
            if reflexion and len(history) == 1 and last.startswith("Error"):
                return self._say([rng.choice(_SQL_REFLECT).format(e=error, t=table)], f"execute[{sql}]")
            if mistake and len(history) == 1 and history[0][1] == mistake[0] and last.startswith("Error"):
                fix = rng.choice(_SQL_FIX[mistake[1]]).format(e=error, t=table, heads=", ".join(heads), **mistake[2])
                return self._say([fix], f"execute[{sql}]")
            if len(history) == 1 and peek:
                return self._say([rng.choice(_SQL_AFTER_PEEK), plan], f"execute[{sql}]")
            return self._say([rng.choice(_SQL_FAILED).format(o=last)], "finish[unknown]")
        if statement:
            return self._say([rng.choice(_SQL_DONE).format(o=ran)], "finish[done]")
        answer = answer_from_observation(ran)
        if answer is None:
            return self._say([rng.choice(_SQL_FAILED).format(o=ran)], "finish[unknown]")
        return self._say([rng.choice(_SQL_ANSWER).format(o=ran, a=answer)], f"finish[{answer}]")

    @staticmethod
    def _say(thoughts: list[str], action: str) -> str:
        return f"Thought: {' '.join(thoughts)}\nAction: {action}"

    @staticmethod
    def _vague_query(example) -> str:
        """The question's common words, without the names in it: a search that rarely finds the page."""
        names = " ".join(t for t, _ in example.supporting_facts)
        words = [w.strip("?,.'\"") for w in example.question.split()]
        plain = [w for w in words if w and w.lower() == w and w not in names]
        return " ".join(plain[:6]) or "information"
