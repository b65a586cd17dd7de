"""The wiki tool: `search[...]`, `lookup[...]` and `finish[...]` over a corpus of paragraphs.

A corpus is any list of pages (title + sentences): the embedded world's articles, the union of the
`context` paragraphs of a HotpotQA split, or a user's JSONL of `{"title", "text"}`.

- search[X]: if X is a title (case-insensitive), that page; otherwise the best BM25 passage
  and a line `Similar: [t1, t2, t3, t4, t5]` of the top titles. With `snippets=True` it answers as
  a search engine does (FireAct's trajectories were made behind one): the same page, but only its
  lead sentence and the sentence sharing the most words with X, with no title or best-match line.
- lookup[K]: the next sentence of the last page found that contains K: `(Result i / n) ...`.
- finish[A]: ends the episode with the answer A.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fireflan.io import DataError, read_records, require
from fireflan.tools.actions import ACTION_NAMES
from fireflan.tools.base import Observation

_WORD = re.compile(r"\w+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


@dataclass(frozen=True)
class Page:
    title: str
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @classmethod
    def from_text(cls, title: str, text: str) -> Page:
        """Split plain text into sentences. ('T', 'One. Two!') -> Page('T', ('One.', 'Two!'))"""
        return cls(title, tuple(s for s in _SENTENCE_END.split(text.strip()) if s))


def normalize_title(title: str) -> str:
    """'  the_Beatles. ' -> 'the beatles'"""
    return " ".join(title.replace("_", " ").lower().split()).strip("\"'`. ")


def _pages_from_hotpot(path, records) -> list[Page]:
    pages = []
    for n, rec in records:
        for i, item in enumerate(require(rec, "context", list, path, n)):
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[1], list)):
                raise DataError(path, f"context[{i}] must be [title, [sentences]]", line=n, field="context")
            pages.append(Page(str(item[0]), tuple(s.strip() for s in item[1] if s.strip())))
    return pages


def load_corpus(path) -> list[Page]:
    """Pages from a corpus JSONL, a world folder (its corpus.jsonl) or an official HotpotQA JSON.

    Titles repeat in a HotpotQA split (two questions share a paragraph): the first one is kept.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "corpus.jsonl"
    if path.suffix == ".json":
        pages = _pages_from_hotpot(path, read_records(path))
    else:
        pages = []
        for n, rec in read_records(path):
            title = require(rec, "title", str, path, n)
            if "sentences" in rec:
                pages.append(Page(title, tuple(require(rec, "sentences", list, path, n))))
            else:
                pages.append(Page.from_text(title, require(rec, "text", str, path, n)))
    if not pages:
        raise DataError(path, "the corpus has no pages")
    unique = {}
    for page in pages:
        unique.setdefault(normalize_title(page.title), page)
    return list(unique.values())


class Wiki:
    """The tool an agent calls. One instance per episode stream; `reset()` between episodes."""

    actions = ACTION_NAMES

    def __init__(self, pages: list[Page], similar: int = 5, snippets: bool = False):
        self.pages = list(pages)
        self.similar = similar
        self.snippets = snippets
        self._by_title = {normalize_title(p.title): p for p in self.pages}
        self._retriever = None
        self.reset()

    @classmethod
    def from_file(cls, path, **kwargs) -> Wiki:
        return cls(load_corpus(path), **kwargs)

    def reset(self) -> None:
        self.page: Page | None = None
        self._keyword, self._results, self._next = None, [], 0

    def state(self) -> tuple:
        """What an action can change (the open page, the lookup cursor), for backtracking."""
        return self.page, self._keyword, list(self._results), self._next

    def restore(self, state: tuple) -> None:
        self.page, self._keyword, results, self._next = state
        self._results = list(results)

    # -- retrieval
    def _index(self):
        import bm25s

        docs = [f"{p.title}. {p.text}" for p in self.pages]
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(docs, stopwords="en", show_progress=False), show_progress=False)
        return retriever

    def rank(self, query: str, k: int) -> list[Page]:
        """The k pages that match `query` best by BM25 (fewer if fewer share a word with it)."""
        import bm25s

        if self._retriever is None:
            self._retriever = self._index()
        tokens = bm25s.tokenize([query], stopwords="en", return_ids=False, show_progress=False)
        if not tokens[0]:
            return []
        k = min(k, len(self.pages))
        docs, scores = self._retriever.retrieve(tokens, k=k, show_progress=False)
        return [self.pages[int(d)] for d, s in zip(docs[0], scores[0], strict=True) if s > 0]

    # -- actions
    def search(self, query: str) -> str:
        self._keyword, self._results, self._next = None, [], 0
        if not query.strip():
            return "search needs a title or some words: search[...]."
        page = self._by_title.get(normalize_title(query))
        if page is not None:
            self.page = page
            return snippet(page, query) if self.snippets else page.text
        ranked = self.rank(query, self.similar)
        if not ranked:
            self.page = None
            return f'Could not find "{query}". Try other words.'
        self.page = ranked[0]
        if self.snippets:
            return snippet(ranked[0], query)
        titles = ", ".join(p.title for p in ranked)
        return f'No page is titled "{query}". Best match, {ranked[0].title}: {ranked[0].text}\nSimilar: [{titles}]'

    def lookup(self, keyword: str) -> str:
        if self.page is None:
            return "No page is open: search[...] a page before lookup[...]."
        if not keyword.strip():
            return "lookup needs a keyword: lookup[...]."
        if keyword != self._keyword:
            needle = keyword.lower()
            self._keyword, self._next = keyword, 0
            self._results = [s for s in self.page.sentences if needle in s.lower()]
        if self._next >= len(self._results):
            return "No more results."
        self._next += 1
        return f"(Result {self._next} / {len(self._results)}) {self._results[self._next - 1]}"

    def step(self, action: str, argument: str) -> Observation:
        """Run one parsed action. Unknown actions are answered, not raised: the model erred."""
        if action == "search":
            return Observation(self.search(argument))
        if action == "lookup":
            return Observation(self.lookup(argument))
        if action == "finish":
            return Observation(f"Episode finished with the answer: {argument}", done=True, answer=argument)
        return Observation(f"Unknown action '{action}'. Valid actions: search[...], lookup[...], finish[...].")


class QuestionWikis:
    """HotpotQA's distractor setting: each question searches only its own paragraphs (its gold pages among
    the distractors it was given). `for_example(example)` is that question's `Wiki` (what `tasks.bind`
    hands an episode); the last few are kept, so an episode and the expert's trial searches share one.

        tool = QuestionWikis()
        wiki = tool.for_example(example)   # a Wiki over example.context
    """

    actions = ACTION_NAMES

    def __init__(self, snippets: bool = False, keep: int = 32):
        self.snippets, self.keep = snippets, keep
        self._wikis: dict[str, Wiki] = {}

    def for_example(self, example) -> Wiki:
        wiki = self._wikis.pop(example.id, None)
        if wiki is None:
            pages = {}
            for title, sentences in example.context:
                pages.setdefault(normalize_title(title), Page(title, tuple(s.strip() for s in sentences if s.strip())))
            if not pages:
                raise ValueError(f"question {example.id} carries no paragraphs to search: pass a corpus (--corpus)")
            wiki = Wiki(list(pages.values()), snippets=self.snippets)
        self._wikis[example.id] = wiki  # the most recent last
        while len(self._wikis) > self.keep:
            del self._wikis[next(iter(self._wikis))]
        return wiki


def snippet(page: Page, query: str) -> str:
    """A search engine's answer from one page: its lead sentence and, after it, the sentence that shares
    the most words with the query (the second sentence when none shares one).

    Page('Kest', ('Kest is a band.', 'It formed in 1990.', 'Kest plays jazz.')), 'Kest genre jazz'
    -> 'Kest is a band. Kest plays jazz.'
    """
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    if len(page.sentences) < 2:
        return page.text
    words = set(_WORD.findall(query.lower())) - set(STOPWORDS_EN_PLUS)
    rest = page.sentences[1:]
    shared = [len(words & set(_WORD.findall(s.lower()))) for s in rest]
    best = max(range(len(rest)), key=lambda i: (shared[i], -i))
    return f"{page.sentences[0]} {rest[best]}"
