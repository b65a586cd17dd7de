"""The scripted expert: an offline teacher that answers as an expert would, through the real tool.

Given questions with supporting facts (the embedded world, or HotpotQA records), it reads every gold page
by a walk a student could make (`fireflan.models.walk`): each search written from what is on the screen
(the question's names or words, a name as the page just read writes it, a title a result listed), tried on
the tool before it commits; it quotes the sentence that leads on, states a comparison with both values
(`fireflan.models.reading`), and finishes with the gold answer. It is a `Model` like any other: each call
reads the conversation so far and writes the next "Thought: ...\\nAction: ...", so the loop executes every
action against the tool and each thought quotes what the tool actually returned. If an observation lacks
what was expected (noise, another wiki) it recovers from what the screen shows, and gives up honestly after
three tries. A question no such walk answers is left to `teach`, which skips and counts it.

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
from fireflan.models import walk
from fireflan.models.base import Usage
from fireflan.models.reading import comparison, content_words, name_spans
from fireflan.models.walk import Hop, phrase_in, surface
from fireflan.tasks.scoring import normalize_answer
from fireflan.tools.actions import parse_action
from fireflan.tools.sql import STATEMENT_TYPES, answers_from_rows
from fireflan.tools.wiki import Page, Wiki

_VAGUE_FAILED = [
    'Reflection: searching "{q}" brought up {got}, which is not the page I need. A vague query finds the '
    "wrong page; I should search {t} instead.",
    'Reflection: my search "{q}" was too vague and returned {got}. I should search what the question names: '
    "{t}.",
]
_VAGUE_LUCKY = ['Searching "{q}" already found the page I need.']
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


WORDINGS = ("plain", "varied")


class FirstWording(random.Random):
    """The wording of a plain expert: every choice of phrasing is the first one (walk.READ[0], ...)."""

    def choice(self, seq):
        return seq[0]


_LEVELS = {"easy": 0, "medium": 1, "hard": 2}
_KINDS = {"notool": 0, "single": 1, "comparison": 2, "bridge": 3}  # bridge questions need a hop found first


def _finds(words: list[str], sentences: list[str], wanted: str) -> str | None:
    """The longest of `words` (the first of those as long; longer than three letters) whose first sentence
    among `sentences` is `wanted`: what lookup[word] would show first."""
    found = [w for w in words if len(w) > 3 and next((s for s in sentences if w.lower() in s.lower()), None) == wanted]
    return max(found, key=len) if found else None  # the longest: a name or a content word more than "only"


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
                 name: str = "scripted-expert", tool=None, reverse_share: float = 0.3, detour_share: float = 0.2,
                 walks: dict | None = None, variant: int = 0, wording: str = "plain", answer_lookup: bool = False,
                 back_detours: bool = False):
        if not 0 <= success_share <= 1:
            raise ValueError(f"the scripted expert's success share must be within 0..1, got {success_share}")
        if wording not in WORDINGS:
            raise ValueError(f"the scripted expert's wording must be one of {', '.join(WORDINGS)}, got {wording!r}")
        self.by_question = {ex.question.strip(): ex for ex in examples}
        self.method, self.seed, self.lookup_share, self.name = method, seed, lookup_share, name
        # the wiki its searches are tried on before it commits (None: one over the questions' paragraphs)
        # walks: {question id: its planned walk}, shared by experts of one seed over one tool (planned once)
        self.tool, self._own_wiki, self.walks = tool, None, {} if walks is None else walks
        self.reverse_share = reverse_share  # comparisons read the side named second first
        self.detour_share = detour_share  # walks that search a name bringing a wrong page first, and recover
        self.back_detours = back_detours  # such a detour may bring back the page just read (`walk._back`)
        self.variant = variant  # 0: the best walk; 1, 2, ...: another way where the pages allow one (teach --walks)
        self.wording = wording  # varied: each thought's phrasing drawn with the seed; plain: always the first
        self.answer_lookup = answer_lookup  # look up a word of the question that finds the answer's sentence
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
                thought = f"The last fact found: {q} -> {a}. {walk.say_answer(rng, example.answer)}"
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

    # -- the walk
    def _rng(self, example, step: int) -> random.Random:
        return random.Random(f"{self.seed}-{example.id}-{self.method}-{step}")

    def route(self, example) -> list[Hop] | None:
        """The walk through the wiki this expert takes for `example` (planned once), or None when no walk a
        student could make reaches every gold page (`fireflan.models.walk`)."""
        if example.id not in self.walks:
            reverse = (self._rng(example, 4000).random() < self.reverse_share) != (self.variant % 2 == 1)
            detour = self.variant > 0 or self._rng(example, 4001).random() < self.detour_share
            self.walks[example.id] = walk.plan_walk(example, lambda q: self._probe(example, q), reverse=reverse,
                                                     detour=detour, other=self.variant > 0, back=self.back_detours)
        return self.walks[example.id]

    def _probe(self, example, query: str) -> str:
        """What a search for `query` returns, without moving the episode's tool (its state is put back)."""
        tool = self._tool_for(example)
        saved = tool.state()
        try:
            return tool.search(query)
        finally:
            tool.restore(saved)

    def _tool_for(self, example):
        """The wiki the question is asked with: the one given (one per question where it says so), else
        one over the paragraphs of every question this expert was given."""
        if self.tool is not None:
            return self.tool.for_example(example) if hasattr(self.tool, "for_example") else self.tool
        if self._own_wiki is None:
            pages = {}
            for ex in self.by_question.values():
                for title, sentences in ex.context:
                    pages.setdefault(title, Page(title, tuple(s.strip() for s in sentences if s.strip())))
            self._own_wiki = Wiki(list(pages.values()))
        return self._own_wiki

    # -- one step
    def _next(self, example, history) -> str:
        if example.table:
            return self._next_sql(example, history)
        rng = self._rng(example, len(history)) if self.wording == "varied" else FirstWording()
        answer = example.answer
        fails = self.fails(example)
        if not example.supporting_facts:  # a question that needs no tool
            answer = self.wrong_answer(example, None) if fails else answer
            reasoning = notool_reasoning(example.question, answer)
            lead = "" if self.method == "cot" else "This needs no search. "
            return f"Thought: {lead}{reasoning} {walk.say_answer(rng, answer)}\nAction: finish[{answer}]"
        hops = self.route(example)
        if hops is None:
            return self._say(["I cannot find a way to the pages this question needs."], "finish[unknown]")

        pending, i = [], 0  # thoughts to say before the next action; position in the history
        if self.method == "reflexion":
            vague = self._vague_query(example)
            if not history:
                return self._say([rng.choice(_VAGUE_FIRST)], f"search[{vague}]")
            obs = history[0][2]
            lucky = hops[0].target is not None and walk.shows(example, hops[0].target, obs)
            i = 0 if lucky else 1
            if len(history) == 1:  # the reflection comes right after the vague search, once
                got = walk.best_match(obs) or "nothing useful"
                thought = _VAGUE_LUCKY if lucky else _VAGUE_FAILED
                pending.append(rng.choice(thought).format(q=vague, got=got, t=hops[0].query))

        read = []  # (hop, observation) of each hop done, and lookups' results after it
        for k, hop in enumerate(hops):
            after = hops[k + 1] if k + 1 < len(hops) else None
            attempts, done = [], None
            while i < len(history) and done is None:
                action, argument, obs = history[i]
                i += 1
                if action == "lookup" and read:
                    read[-1][2].append(obs)
                elif self._reached(example, hop, after, action, argument, obs):
                    done = obs
                else:
                    attempts.append((action, argument, obs))
            if done is None:
                return self._towards(example, hops, k, read, attempts, pending, rng)
            read.append((hop, done, []))
            if hop.target is not None and i == len(history) and (found := self._lookup(example, read)):
                keyword, said = found
                return self._say([*self._followed(hop, rng), rng.choice(said).format(k=keyword, t=hop.name)],
                                 f"lookup[{keyword}]")
            if fails and hop.target is not None:  # a weak teacher's mistake: it answers from the first page it reads
                wrong = self.wrong_answer(example, hop.target)
                return self._say([self._quote(example, hop, done, wrong, rng), walk.say_answer(rng, wrong)],
                                 f"finish[{wrong}]")
        read[-1][2].extend(obs for action, _, obs in history[i:] if action == "lookup")  # on the last page
        return self._conclude(example, read, pending, rng)

    @staticmethod
    def _reached(example, hop: Hop, after: Hop | None, action, argument, obs) -> bool:
        """Whether a step did what `hop` was for: brought its page, or (a detour) listed the next page's title."""
        if action != "search":
            return False
        if hop.target is not None:
            return walk.shows(example, hop.target, obs)
        return normalize_answer(argument or "") == normalize_answer(hop.query) and (
            obs == hop.observation or after is not None and after.target in walk.similar_titles(obs))

    def _towards(self, example, hops, k: int, read, attempts, pending, rng) -> str:
        """The next search of hop `k`, after `attempts` that did not bring its page, and what to say before it."""
        hop = hops[k]
        target = hop.target or hops[k + 1].target
        if len(attempts) >= 3:
            return self._say([*pending, rng.choice(walk.GIVE_UP).format(t=surface(target))], "finish[unknown]")
        if attempts:  # the tool did not return what the walk expected (noise, or another wiki): recover
            _, argument, obs = attempts[-1]
            if target in walk.similar_titles(obs) and normalize_answer(argument or "") != normalize_answer(target):
                said = walk.first_words(walk.page_text(obs))
                return self._say([*pending, rng.choice(walk.DETOUR).format(m=walk.best_match(obs) or argument, s=said,
                                                                      t=target)], f"search[{target}]")
            return self._say([*pending, rng.choice(walk.RETRY).format(t=hop.query)], f"search[{hop.query}]")
        if pending:  # a reflection already says what to search
            return self._say(pending, f"search[{hop.query}]")
        if not read:
            return self._say([self._opening(example, hops, rng)], f"search[{hop.query}]")
        before, obs, looked = read[-1]
        if before.target is None:  # a detour: a page that is not the one needed
            said = walk.first_words(walk.page_text(obs))
            seen = walk.best_match(obs) or before.query
            if self.back_detours and any(h.target == seen for h, _, _ in read[:-1]):  # a page read before
                thoughts = [rng.choice(walk.BACK_PAGE).format(m=seen, p=before.query)]
                if hop.source == "page" and len(read) > 1:  # where the next name is on the page read before
                    page, shown, looked = read[-2]
                    thoughts += [self._quote(example, page, shown, hop.query, rng, looked),
                                 rng.choice(walk.NEXT_FROM_PAGE).format(n=hop.query)]
                else:
                    thoughts.append(rng.choice(walk.RETRY_OTHER).format(q=hop.query))
                return self._say(thoughts, f"search[{hop.query}]")
            if hop.source == "similar":  # its result listed this page's title
                other = walk.DETOUR if walk.best_match(obs) else walk.OTHER_PAGE
                return self._say([rng.choice(other).format(m=seen, s=said, t=hop.query)], f"search[{hop.query}]")
            return self._say([rng.choice(walk.WRONG_PAGE).format(m=walk.surface(seen), q=hop.query)],
                             f"search[{hop.query}]")
        followed = [] if looked else self._followed(before, rng)  # said before its lookup, if it had one
        thoughts = [*followed, self._quote(example, before, obs, hop.query, rng, looked)]
        thoughts.append(rng.choice(walk.NEXT_FROM_PAGE if hop.source == "page" else walk.NEXT_FROM_QUESTION).format(
            n=hop.query))
        return self._say(thoughts, f"search[{hop.query}]")

    def _opening(self, example, hops: list[Hop], rng) -> str:
        """The first thought: what the question gives to start from, and the plan when it is plain."""
        first = hops[0]
        targets = [h for h in hops if h.target is not None]
        named = any(normalize_answer(first.query) == normalize_answer(s) for s in name_spans(example.question)) \
            or phrase_in(surface(first.target or ""), example.question)
        second = surface(targets[1].target) if len(targets) > 1 else ""
        other = second if phrase_in(second, example.question) else targets[-1].query  # as the question names it
        if example.type == "comparison" and len(targets) == 2:
            return rng.choice(walk.OPEN_COMPARE).format(q=first.query, u=other)
        if not named:
            return rng.choice(walk.OPEN_DESCRIBED).format(q=first.query)
        if len(targets) == 1:
            return rng.choice(walk.OPEN_SINGLE).format(q=first.query)
        if targets[1].source == "question":
            return rng.choice(walk.OPEN_COMPARE[:2] + walk.OPEN_COMPARE[3:]).format(q=first.query, u=other)
        choices = walk.OPEN_BRIDGE if len(hops) == len(targets) else [t for t in walk.OPEN_BRIDGE if "{n}" not in t]
        return rng.choice(choices).format(q=first.query, n=["one", "two", "three", "four"][len(targets) - 1])

    @staticmethod
    def _followed(hop: Hop, rng) -> list[str]:
        """What the expert says of a page that came as a search's best match rather than by its title."""
        return [rng.choice(walk.FOLLOWED).format(q=hop.query, t=hop.target)] if hop.best else []

    def _quote(self, example, hop: Hop, obs: str, key: str, rng, shown: list[str] = ()) -> str:
        """A short quote of the page `hop` read: the sentence that holds `key` (the next search, the answer),
        else its first supporting sentence; only what the observations showed."""
        visible = [s for s in walk.sentences_of(example, hop.target) if s in obs or any(s in o for o in shown)]
        facts = [s for s in walk.facts_of(example, hop.target) if s in visible]
        sentence = walk.sentence_with(facts, key) or walk.sentence_with(visible, key) or (facts or visible or [""])[0]
        return rng.choice(walk.READ).format(t=hop.name, s=walk.clip(sentence, key))

    def _lookup(self, example, read) -> tuple[str, list[str]] | None:
        """A word of the screen to look up on the page just found, when its search did not show a supporting
        sentence (a search engine's snippet), and the lookup would find that sentence first; with
        `answer_lookup`, also a word of the question that finds the sentence holding the answer first, where
        that is not the page's first sentence (a reader's way to the line it needs). Returns the word and the
        phrasings of the thought before it, or None."""
        hop, obs, after = read[-1]
        sentences = walk.sentences_of(example, hop.target)
        if after:
            return None  # one lookup a page
        missing = [s for s in walk.facts_of(example, hop.target) if s not in obs]
        if missing:
            screen = " ".join([example.question, *(o for _, o, _ in read[:-1])])
            word = _finds(content_words(screen), sentences, missing[0])
            return (word, walk.LOOKUP) if word else None
        if not self.answer_lookup or example.type == "comparison" or normalize_answer(example.answer) in ("yes", "no"):
            return None
        holding = [s for s in walk.facts_of(example, hop.target) if phrase_in(example.answer, s)]
        if not holding or holding[0] == sentences[0]:
            return None
        words = [w for w in content_words(example.question) if not phrase_in(w, example.answer)]
        word = _finds(words, sentences, holding[0])
        return (word, walk.LOOKUP_ANSWER) if word else None

    def _conclude(self, example, read, pending, rng) -> str:
        """The final thought: the sentence that holds the answer quoted, or the comparison stated with both
        values, then finish with the gold answer."""
        answer = example.answer
        pages = [(hop, obs, after) for hop, obs, after in read if hop.target is not None]
        last = pages[-1][0]
        followed = [] if pages[-1][2] else self._followed(last, rng)  # said before its lookup, if it had one
        if example.type == "comparison" and len(pages) == 2:
            sides = [(h.name, " ".join(walk.facts_of(example, h.target))) for h, _, _ in pages]
            stated = example.reasoning or comparison(example.question, sides, answer)
            if stated:
                end = [] if phrase_in(answer, stated.split(",")[-1]) else [walk.say_answer(rng, answer)]
                return self._say([*pending, *followed, stated, *end], f"finish[{answer}]")
            key = answer if normalize_answer(answer) not in ("yes", "no") else ""
            quotes = [self._quote(example, h, o, key, rng, a) for h, o, a in pages]
            return self._say([*pending, *followed, *quotes, walk.say_answer(rng, answer)],
                             f"finish[{answer}]")
        holding = [(h, o, a) for h, o, a in pages
                   if any(phrase_in(answer, s) for s in walk.sentences_of(example, h.target) if s in o or
                          any(s in x for x in a))]
        h, o, a = (holding or pages)[-1]
        quote = self._quote(example, h, o, answer, rng, a)
        return self._say([*pending, *followed, quote, walk.say_answer(rng, answer)],
                         f"finish[{answer}]")

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
