"""The scripted expert's walk through the wiki: which gold pages it reads in which order, each search written
from what is on the screen, and what it says at each step.

A student sees the question and the observations, nothing else. So the expert plans a walk that a student
could make: the first search names what the question names (or, when the question only describes it, the
words it describes it with); the next one takes the bridge name as the page just read writes it; a title's
disambiguation is typed only after the screen showed it (a best match, a list of similar titles). It tries
candidate searches on the tool before it commits (`plan_walk`), so the walk it shows is one that works,
and records whose gold pages no such walk reaches are skipped and counted by `teach`.

    plan = plan_walk(example, probe)   # [Hop(query, target, source, observation), ...] or None
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from fireflan.models.reading import content_words, name_spans
from fireflan.tasks.scoring import normalize_answer


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


def page_text(observation: str) -> str:
    """What a search result says of its page, without the best-match preamble and the similar titles."""
    text = observation.split("\nSimilar: [")[0]
    m = re.match(r'No page is titled ".*?"\. Best match, .+?: ', text, re.DOTALL)
    return text[m.end():] if m else text


def phrase_in(needle: str, haystack: str) -> bool:
    """('Scott Stapp', 'married to Scott Stapp, a singer') -> True; ('no', 'known') -> False"""
    needle = normalize_answer(needle)
    return bool(needle) and f" {needle} " in f" {normalize_answer(haystack)} "


def sentences_of(example, title: str) -> list[str]:
    """The sentences of a page of the question's context."""
    for t, sentences in example.context:
        if t == title:
            return [s.strip() for s in sentences if s.strip()]
    return []


def facts_of(example, title: str) -> list[str]:
    """The supporting sentences of one gold page (the sentence indices past the end of the page dropped)."""
    sentences = next((s for t, s in example.context if t == title), [])
    return [sentences[i].strip() for t, i in example.supporting_facts if t == title and 0 <= i < len(sentences)]


def shows(example, title: str, observation: str) -> bool:
    """Whether an observation is the page `title`: its lead sentence is in it (and, when the lead is too short to
    tell pages apart, its supporting sentences too). Later sentences do not tell: 'It received mixed reviews.'
    may be on many pages."""
    sentences = sentences_of(example, title)
    if not sentences or sentences[0] not in observation:
        return False
    return len(sentences[0]) >= 20 or all(f in observation for f in facts_of(example, title))


@dataclass(frozen=True)
class Hop:
    """One planned search: `query` as the screen shows it; the gold page it brings (None: a detour whose
    result lists the next page's title among similar ones); where the query came from (question: the
    question's names or words; page: the page read before; similar: the titles a result listed); and what the
    tool returned for it when the walk was planned."""

    query: str
    target: str | None
    source: str
    observation: str

    @property
    def best(self) -> bool:
        """Found as a search's best match, not by its title."""
        return best_match(self.observation) == self.target

    @property
    def name(self) -> str:
        """The page as the screen names it: the title searched, or (a best match) its title without brackets."""
        return surface(self.target) if self.best or self.target is None else self.query


def _related(span: str, title: str) -> bool:
    words = set(normalize_answer(surface(title)).split())
    return bool(set(normalize_answer(span).split()) & words)


def candidate_queries(title: str, texts: list[tuple[str, str]]) -> list[tuple[str, str, bool]]:
    """(query, source, related) a reader could type to reach `title`, from `texts` [(source, text on the
    screen)] in the order they are preferred: the title or its surface name where the screen writes it and
    names on the screen that share a word with it (related), then names with the words the question says
    around them and the question's own words (a search for what it describes), then other names.

    ('Ariel (Disney)', [('page', 'She originated the role of Ariel in "The Little Mermaid"')])
    -> [('Ariel', 'page', True), ('The Little Mermaid', 'page', False), ...]
    """
    return _unique([*_related_queries(title, texts), *_other_queries(title, texts)])


def _related_queries(title: str, texts) -> list[tuple[str, str, bool]]:
    out = []
    screen = " ".join(text for _, text in texts)
    said = [w for w in title[len(surface(title)):].strip(" ()").split() if phrase_in(w, screen)]
    for source, text in texts:
        if phrase_in(title, text):
            out.append((title, source, True))
        if phrase_in(surface(title), text):
            out.append((surface(title), source, True))
            if said:  # the name and what the screen says of it: 'Heavy film' for 'Heavy (film)'
                out.append((f"{surface(title)} {' '.join(said)}", source, True))
        out += [(s, source, True) for s in _names(text) if _related(s, title)]
    return out


def _other_queries(title: str, texts) -> list[tuple[str, str, bool]]:
    out = []
    for source, text in texts:
        if source != "question":
            continue
        words = content_words(text)
        for span in _names(text):  # a name and what the question says about it
            if span in text:
                before = content_words(text[:text.index(span)])[-3:]
                after = content_words(text[text.index(span) + len(span):])[:3]
                if after:
                    out.append((f"{span} {' '.join(after)}", source, False))
                if before:
                    out.append((f"{' '.join(before)} {span}", source, False))
        if len(words) >= 2:
            out.append((" ".join(words[:8]), source, False))
    for source, text in texts:
        out += [(s, source, False) for s in _names(text) if not _related(s, title)]
    return out


def _names(text: str) -> list[str]:
    """The names on a page or in a question, two names joined by 'and' searched apart ('Medici', 'Senet')."""
    return [s for s in name_spans(page_text(text)) if not re.search(r" (?:and|&) ", s)]


def _unique(candidates, tried: set[str] = frozenset()) -> list[tuple[str, str, bool]]:
    seen, unique = set(tried), []
    for query, source, related in candidates:
        key = normalize_answer(query)
        if key and key not in seen:
            seen.add(key)
            unique.append((query, source, related))
    return unique


def _reach(example, title: str, texts, probe, tried: set[str], detour: bool = False,
           other: bool = False, back: bool = False) -> list[Hop] | None:
    """The hops that bring `title` from what `texts` show: a search for a name related to it that finds it
    (by title or as the best match); else such a search whose result lists it among similar titles, then its
    title; else a search for what the question describes, or another name, that finds it.

    `detour`: when a related name brings another page first (a namesake, a wrong best match), search it
    first, then the one that works: a walk that shows a wrong page and the way back from it; else (`back`), when
    the page is reached by a name on the page just read and another name there brings that page back (`_back`),
    that name first. `other`: the
    second search that finds it, where there is one (another way to the same page)."""
    results, wrong, candidates, passed = {}, None, [], None
    for related in (True, False):  # the names that share a word with it first; the rest only if they fail
        more = _related_queries(title, texts) if related else _other_queries(title, texts)
        fresh = _unique(more, tried | {normalize_answer(q) for q, _, _ in candidates})[:24 - len(candidates)]
        candidates += fresh
        for query, source, _ in fresh:
            results[query] = obs = probe(query)
            if shows(example, title, obs) and other and passed is None:
                passed = Hop(query, title, source, obs)  # the first way, kept in case there is no second
            elif shows(example, title, obs):
                if detour and wrong is not None:
                    return [Hop(wrong[0], None, wrong[1], results[wrong[0]]), Hop(query, title, source, obs)]
                if detour and back and source == "page" and (
                        again := _back(title, texts, probe, tried | {normalize_answer(query)})):
                    return [again, Hop(query, title, source, obs)]
                return [Hop(query, title, source, obs)]
            if related and wrong is None and not obs.startswith("Could not find") and not any(
                    shows(example, t, obs) for t, _ in example.supporting_facts):  # a page that is no gold page
                wrong = (query, source)
        if passed is not None:
            return [passed]
        for query, source, _ in fresh:
            if title in similar_titles(results[query]):
                return [Hop(query, None, source, results[query]), Hop(title, title, "similar", probe(title))]
    return None


def _back(title: str, texts, probe, tried: set[str], names: int = 8) -> Hop | None:
    """A search for another name on the page just read that brings back a page already read (no page has that
    name; the best match is one read before), as a detour: the misstep students make most is to take such a name
    for the next page and the page they read for its best match. None when no name of the page does that."""
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    pages = [page_text(text) for source, text in texts if source == "page"]
    if not pages:
        return None
    common = set(STOPWORDS_EN_PLUS)
    for query in _names(pages[0])[:names]:
        if _related(query, title) or normalize_answer(query) in tried or set(query.lower().split()) <= common:
            continue  # ('She': a pronoun that starts a sentence is no name)
        obs = probe(query)
        if best_match(obs) and page_text(obs) in pages:
            return Hop(query, None, "page", obs)
    return None


def plan_walk(example, probe, reverse: bool = False, detour: bool = False, other: bool = False,
              back: bool = False) -> list[Hop] | None:
    """The walk an expert makes through the wiki to read every gold page of `example`, each search derived
    from the screen, or None when there is none. `probe(query) -> observation` runs a search without
    changing the episode's tool.

    Orders of the gold pages are tried as a reader would: for a bridge, the page that holds the answer last;
    for a comparison, the two sides in the question's order (`reverse`: the other first). Among the walks
    that reach every page, the one with the fewest detours, then (a bridge) the one that reads the answer's
    page last, then the one with the most names taken from the pages read, is kept. `detour`: the first page
    that a related name gets wrong is reached by way of that wrong page; `other`: each page by its second
    search that finds it, where it has one; `back`: the detour may be one that brings back the page just read."""
    titles = list(dict.fromkeys(t for t, _ in example.supporting_facts))
    if not titles or len(titles) > 4:
        return None
    holds = {t: any(phrase_in(example.answer, s) for s in facts_of(example, t)) for t in titles}
    named = {t: phrase_in(surface(t), example.question) for t in titles}
    orders = list(itertools.permutations(titles)) if len(titles) <= 3 else [tuple(titles)]
    if example.type == "comparison":
        position = {t: normalize_answer(example.question).find(normalize_answer(surface(t))) for t in titles}
        orders.sort(key=lambda o: [position[t] if position[t] >= 0 else 999 for t in o], reverse=reverse)
    else:
        orders.sort(key=lambda o: (not holds[o[-1]], not named[o[0]]))
    best, best_key = None, None
    for order in orders:
        walk = _walk(example, order, probe)
        if walk is None:
            continue
        # fewest detours; then (a bridge) the answer's page read last; then the most names taken from pages read
        key = (sum(h.target is None for h in walk), example.type != "comparison" and not holds[order[-1]],
               -sum(h.source == "page" for h in walk))
        if best_key is None or key < best_key:
            best, best_key = (order, walk), key
        if key[0] == 0 and example.type == "comparison":
            break
    if best is None:
        return None
    if detour or other:
        return _walk(example, best[0], probe, detour, other, back) or best[1]
    return best[1]


def _walk(example, order, probe, detour: bool = False, other: bool = False, back: bool = False) -> list[Hop] | None:
    hops, read = [], []  # read: each observation so far (a page, its similar titles), the last first
    tried: set[str] = set()
    for title in order:
        texts = [("page", t) for t in read] + [("question", example.question)]
        found = _reach(example, title, texts, probe, tried, detour and not any(h.target is None for h in hops), other,
                       back)
        if found is None:
            return None
        hops += found
        tried |= {normalize_answer(h.query) for h in found}
        read.insert(0, found[-1].observation)
    return hops


# ---------------------------------------------------------------------------------------------- what it says

OPEN_BRIDGE = [  # {q}: the first search; {n}: the pages to read
    "The question names {q}, and the page on {q} should lead me to the answer. Let me search {q}.",
    "I will start from what the question gives me: {q}.",
    "First I need to know more about {q}; its page should name what the question is after.",
    "{q} is the starting point here. Its page should point me to the next thing to look up.",
    "This takes {n} pages: first {q}, then whatever its page points to.",
    "Let me begin with {q}; the answer should be one hop away from its page.",
    "To answer this I first need {q}'s page.",
    "The question is built around {q}, so I will search it first.",
]
OPEN_DESCRIBED = [  # the question describes the first page without naming it
    "The question does not name the page I need, so I will search for what it describes: {q}.",
    "Nothing here gives a title, but the question describes it; let me search {q}.",
    "I do not know the title yet. A search for the words of the question, {q}, should find the page.",
    "The page is described rather than named. Let me try {q}.",
]
OPEN_SINGLE = [
    "The page on {q} should say it directly. Let me search {q}.",
    "One search should do: {q}.",
    "The answer should be on the page about {q}.",
    "Let me look {q} up; its page should answer this.",
]
OPEN_COMPARE = [  # {q}: the first side, {u}: the other
    "I need to compare {q} and {u}, so I need both pages. First, {q}.",
    "To compare them I need what each page says. Let me start with {q}.",
    "Let me look up {q}, then {u}.",
    "This compares {q} with {u}. I will read {q}'s page first.",
    "Two pages to read: {q} and {u}. Starting with {q}.",
    "I should check {q} and {u} one at a time, beginning with {q}.",
]
READ = [  # {t}: the page read, {s}: a quote from it
    'The page on {t} says: "{s}"',
    'From the {t} article: "{s}"',
    '{t}: "{s}"',
    'According to its page, "{s}"',
    'The {t} page says "{s}"',
    'I read: "{s}"',
    'Here it says "{s}"',
]
NEXT_FROM_PAGE = [  # {n}: the name the page gives
    "So next I need the page on {n}.",
    "The page names {n}, so that is my next search.",
    "Now I should look up {n}.",
    "That points to {n}. Let me search it.",
    "{n} is the next step.",
    "Let me follow that to {n}.",
]
NEXT_FROM_QUESTION = [  # {n}: another name the question gives
    "Now the other one the question names: {n}.",
    "Next, {n}.",
    "I still need {n}'s page.",
    "Now let me read about {n}.",
    "That is one side. The other is {n}.",
]
ANSWER = ["So the answer is {a}.", "That means the answer is {a}.", "Therefore, the answer is {a}.",
          "So it is {a}.", "The answer is {a}.", "That gives the answer: {a}.", "So, {a}."]
FOLLOWED = [  # a search that found no exact title, but its best match was the page
    'There is no page titled "{q}", but the best match, {t}, is the one I need.',
    'No page has the exact title "{q}"; the best match, {t}, is the right page.',
    'The search for "{q}" led to {t}, which is the page I wanted.',
    "{t} came up as the best match for {q}, and it is the right one.",
]
DETOUR = [  # {m}: the page a search brought, {s}: its first words, {t}: the title listed among similar ones
    'That brought {m} ("{s}"), which is not what I need, but the similar titles include {t}. Let me search {t}.',
    'The best match, {m}, says "{s}": not the page I need. {t} is in the list of similar titles, so let me try it.',
    'This is {m} ("{s}"), something else. Among the similar titles is {t}; that should be it.',
]
OTHER_PAGE = [  # an exact title that is another page of the name: {s} its first words
    'This {m} page ("{s}") is about something else. The similar titles include {t}, so let me search that.',
]
BACK_PAGE = [  # a search whose best match is a page already read: {m} that page, {p} the name searched
    "That brought back {m}, the page I have already read, so {p} has no page here.",
    "The best match is {m} again, which I have read: there is no page on {p}.",
]
RETRY_OTHER = [  # after BACK_PAGE, a name that is not on the page read before: {q}
    "Let me search {q} instead.",
    "I will try {q}.",
]
WRONG_PAGE = [  # a search that brought a page that does not say it: {m} that page, {q} the next search
    "That is the page on {m}, and it does not say what I need. Let me search {q} instead.",
    "{m} is not the page I need here. I will try {q}.",
    "This page on {m} does not answer it. A better search is {q}.",
    "Not this one: the {m} page does not help. Let me look up {q}.",
]
RETRY = [
    "The result does not say what I need about {t}. I will search {t} again.",
    "That observation is not the {t} page I expected. Let me search {t} once more.",
    "That did not give me {t}'s page. Let me try the search again.",
]
LOOKUP = [
    'The page does not show everything; let me look up "{k}" in it.',
    'I will look for "{k}" on this page.',
    'Let me find the sentence that mentions "{k}".',
]
LOOKUP_ANSWER = [  # {k}: a word of the question; {t}: the page read
    'The question asks about "{k}"; let me find the sentence on {t} that mentions it.',
    'I will look for "{k}" on the {t} page: that sentence should hold the answer.',
    'Let me find where the {t} page mentions "{k}".',
]
GIVE_UP = ["The tool keeps failing to return {t}, so I cannot find the answer.",
           "I could not get the page on {t} after several tries, so I cannot answer."]


def say_answer(rng, answer: str) -> str:
    """'So the answer is Waco, Texas.' (one of ANSWER; an answer's own last period not doubled)"""
    return rng.choice(ANSWER).format(a=answer.rstrip("."))


def clip(sentence: str, key: str, words: int = 22) -> str:
    """A long sentence cut to the clause that holds `key` (or to its first words), so a quote stays short. The
    key is matched as whole words ('no' is not in 'known').

    ('Jaclyn Stapp is a beauty queen, philanthropist and fashion model with pageant roots in Florida and New York,
    and she is married to Scott Stapp, former frontman of the band Creed.', 'Scott Stapp')
    -> 'philanthropist and fashion model with pageant roots in Florida and New York, and she is married to Scott Stapp'
    """
    if len(sentence.split()) <= words:
        return sentence
    clauses = re.split(r"(?<=[,;])\s+(?=\w)", sentence)
    for k, clause in enumerate(clauses):
        if key and phrase_in(key, clause):
            start, end = k, k + 1
            while start > 0 and len(" ".join(clauses[start - 1:end]).split()) <= words:
                start -= 1
            while end < len(clauses) and len(" ".join(clauses[start:end]).split()) < 8:  # a clause of a name alone
                end += 1
            text = " ".join(clauses[start:end]).rstrip(",;")
            return " ".join(text.split()[:words * 2])
    return " ".join(sentence.split()[:words]).rstrip(",;") + " ..."


def first_words(text: str, n: int = 8) -> str:
    """'Creed is an American rock band formed in 1994 in Tallahassee.' -> 'Creed is an American rock band formed in'"""
    return " ".join(text.split()[:n]).rstrip(".,;:")


def sentence_with(text_sentences: list[str], key: str) -> str | None:
    """The first sentence that holds `key` as whole words."""
    return next((s for s in text_sentences if phrase_in(key, s)), None)
