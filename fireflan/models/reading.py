"""What the scripted expert reads off the screen: names a student could search, dates, counts, nationalities,
and the comparison two pages decide. Pure functions, each with an example.

The expert may only do what a student could learn to do from the question and the observations, so
its searches come from `name_spans` of what is on the screen and its comparisons from values it can
point at in the pages (`comparison`), never from the gold answer alone.
"""

from __future__ import annotations

import re

from fireflan.tasks.scoring import normalize_answer

_CONNECTORS = {"of", "the", "and", "de", "del", "la", "le", "von", "van", "der", "in", "for", "on", "at", "&", "du",
               "da", "di", "y", "e", "to", "a"}
_WORD = re.compile(r"[\w'’.\-&/]+")
_QUOTE = re.compile(r'"([^"]{2,80})"')
_STOP = {"a", "an", "the", "of", "in", "on", "at", "to", "for", "by", "with", "from", "and", "or", "is", "was", "are",
         "were", "be", "been", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "that", "this",
         "these", "those", "did", "does", "do", "has", "have", "had", "it", "its", "as", "than", "both", "same",
         "also", "one", "ones", "there", "their", "his", "her", "name", "named", "known", "many", "much", "more",
         "most", "s", "between"}
_PLAIN = {"along", "about", "after", "before", "during", "under", "over", "into", "through", "since", "until",
          "within", "without", "against", "among", "located", "called", "page", "which", "whose", "first", "also"}
_QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was", "were",
                   "did", "do", "does", "in", "the", "a", "an", "of", "for", "between", "both"}


def content_words(text: str) -> list[str]:
    """The words of `text` that carry meaning, in order, without repeats.
    'What is the name of the band that Scott Stapp fronted?' -> ['band', 'Scott', 'Stapp', 'fronted']"""
    words = [w.strip(".,;:!?\"'()[]’") for w in text.split()]
    return list(dict.fromkeys(w for w in words if w and w.lower() not in _STOP and not w.endswith("'s")
                              or w.lower().endswith("'s") and w[:-2].lower() not in _STOP and w))


def name_spans(text: str) -> list[str]:
    """Names a reader would search for: quoted titles, and runs of capitalised words (joined by small words
    such as 'of' or 'and'), longest first within each sentence, without a leading question word or article.

    'Was the film "Heavy" directed by James Mangold?' -> ['Heavy', 'James Mangold'];
    'Are Medici and Senet both board games?' -> ['Medici', 'Senet', 'Medici and Senet']
    """
    spans = [m.group(1).strip(" ,.;:") for m in _QUOTE.finditer(text)]
    for sentence in re.split(r"(?<=[.!?])\s+|\s*[;:()\[\]]\s*|,\s+", _QUOTE.sub(" , ", text)):
        run: list[str] = []
        for word in _WORD.findall(sentence) + [""]:
            bare = word.strip(".,'’")
            if bare and (bare[0].isupper() or bare[0].isdigit() and run) and not (not run and bare.lower() in
                                                                                  _QUESTION_WORDS):
                run.append(word.rstrip(".,") if not re.fullmatch(r"[A-Z]\.", word) else word)
            elif bare and run and bare.lower() in _CONNECTORS:
                run.append(word)
            else:
                while run and (run[-1].lower() in _CONNECTORS or run[-1].endswith("'s")):
                    if run[-1].endswith("'s"):
                        run[-1] = run[-1][:-2]
                        break
                    run.pop()
                if run:
                    whole = " ".join(run).rstrip("'’")
                    parts = [p for p in re.split(r" (?:and|&) ", whole) if p != whole and p[:1].isupper()]
                    spans += [*parts, whole]  # 'Medici and Senet' is two names before it is one
                run = []
    seen, out = set(), []
    for span in spans:
        key = normalize_answer(span)
        if key and key not in seen and not (len(span) <= 2 and not span.isdigit()):
            seen.add(key)
            out.append(span)
    return out


_MONTHS = {m: i for i, m in enumerate(["january", "february", "march", "april", "may", "june", "july", "august",
                                       "september", "october", "november", "december"], 1)}
_DATE = re.compile(r"\b(?:(\d{1,2}) ([A-Z][a-z]+),? (\d{4})|([A-Z][a-z]+) (\d{1,2}),? (\d{4})|([A-Z][a-z]+),? (\d{4})|"
                   r"(\d{4}))\b")


def first_date(text: str) -> tuple[str, tuple[int, int, int]] | None:
    """The first date written in `text`, as written and as (year, month, day) (0 for what is not said).
    'Frank De Winne (born 25 April 1961, in Ledeberg)' -> ('25 April 1961', (1961, 4, 25));
    'Arthur's Magazine (1844–1846) was' -> ('1844', (1844, 0, 0))"""
    for m in _DATE.finditer(text):
        if m.group(1) and m.group(2).lower() in _MONTHS:
            return m.group(0), (int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1)))
        if m.group(4) and m.group(4).lower() in _MONTHS:
            return m.group(0), (int(m.group(6)), _MONTHS[m.group(4).lower()], int(m.group(5)))
        if m.group(7) and m.group(7).lower() in _MONTHS:
            return m.group(0), (int(m.group(8)), _MONTHS[m.group(7).lower()], 0)
        year = m.group(9) or m.group(8) or m.group(6) or m.group(3)
        if year and 1000 <= int(year) <= 2099:
            return year, (int(year), 0, 0)
    return None


_NUMBER_WORDS = {w: i for i, w in enumerate(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                             "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
                                             "sixteen", "seventeen", "eighteen", "nineteen", "twenty"])}


def _singular(word: str) -> str:
    """'stories' -> 'story'; 'acts' -> 'act'; 'species' -> 'species'"""
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith(("ss", "us", "ies", "species")):
        return w[:-1]
    return w


def count_of(text: str, noun: str) -> tuple[str, float] | None:
    """How many `noun` the text says: a number (digits, or a word up to twenty) right before the noun, or
    before '-noun'. ('an opera in four acts by Glass', 'acts') -> ('four acts', 4.0);
    ('a 58-story, 664 ft tower', 'stories') -> ('58-story', 58.0); ('over 500 species of plants', 'species')
    -> ('500 species', 500.0)"""
    stem = _singular(noun)
    pattern = re.compile(rf"\b(\d[\d,]*(?:\.\d+)?|{'|'.join(_NUMBER_WORDS)})(?:\s+|-)(?:[a-z]+\s+)?({stem}\w*)\b",
                         re.IGNORECASE)
    for m in pattern.finditer(text):
        if not _singular(m.group(2)).startswith(stem[:max(3, len(stem) - 2)]):
            continue
        raw = m.group(1).lower().replace(",", "")
        value = float(_NUMBER_WORDS[raw]) if raw in _NUMBER_WORDS else float(raw)
        return m.group(0), value
    return None


_HEIGHT = re.compile(r"\b(\d[\d,]*(?:\.\d+)?)[\s-]?(ft|foot|feet|m|metres|meters|metre|meter)\b", re.IGNORECASE)


def height_of(text: str) -> tuple[str, float] | None:
    """A height or length in the text, in metres. ('a 50-story, 692-foot (211 m) office tower') ->
    ('692-foot', 210.9); ('At an elevation of 7205 m it is') -> ('7205 m', 7205.0)"""
    m = _HEIGHT.search(text)
    if m is None:
        return None
    value = float(m.group(1).replace(",", ""))
    return m.group(0), round(value * 0.3048, 1) if m.group(2).lower() in ("ft", "foot", "feet") else value


_NATIONS = [n.replace("-", " ") for n in (
    "American African-American Afghan Albanian Algerian Argentine Argentinian Armenian Australian Austrian "
    "Azerbaijani Bangladeshi Belarusian Belgian Bolivian Bosnian Brazilian British Bulgarian Cambodian "
    "Cameroonian Canadian Chilean Chinese Colombian Congolese Croatian Cuban Cypriot Czech Danish Dutch "
    "Ecuadorian Egyptian English Estonian Ethiopian Filipino Finnish French Georgian German Ghanaian Greek "
    "Guatemalan Haitian Honduran Hungarian Icelandic Indian Indonesian Iranian Iraqi Irish Israeli Italian "
    "Jamaican Japanese Jordanian Kazakh Kenyan Korean Kosovan Kuwaiti Kyrgyz Latvian Lebanese Libyan "
    "Lithuanian Luxembourgish Macedonian Malaysian Maltese Mexican Moldovan Mongolian Montenegrin Moroccan "
    "Nepalese New-Zealand Nigerian Northern-Irish Norwegian Pakistani Palestinian Panamanian Paraguayan "
    "Persian Peruvian Polish Portuguese Puerto-Rican Romanian Russian Salvadoran Saudi Scottish Senegalese "
    "Serbian Singaporean Slovak Slovenian Somali South-African South-Korean Soviet Spanish Sri-Lankan "
    "Sudanese Swedish Swiss Syrian Taiwanese Thai Tunisian Turkish Ugandan Ukrainian Uruguayan Uzbek "
    "Venezuelan Vietnamese Welsh Yugoslav Zimbabwean").split()]
_NATION_WORDS = "|".join(sorted(_NATIONS, key=len, reverse=True))  # longest first: 'South Korean' before 'Korean'
_NATION_RE = re.compile(rf"\b({_NATION_WORDS})\b")


def nationalities(text: str) -> list[str]:
    """The nationality words of a text, in order. 'an English-born American director' -> ['English', 'American']"""
    return list(dict.fromkeys(m.group(1) for m in _NATION_RE.finditer(text)))


_EARLIER = re.compile(r"\b(older|oldest|first|earlier|earliest|before)\b", re.IGNORECASE)
_LATER = re.compile(r"\b(younger|youngest|later|latest|newer|newest|more recent|most recently|last)\b", re.IGNORECASE)
_MORE = re.compile(r"\b(?:more|most|greater|larger number of|higher number of)\s+(?:[a-z]+\s+)?([a-z]+)\b",
                   re.IGNORECASE)
_TALLER = re.compile(r"\b(taller|tallest|higher|highest)\b", re.IGNORECASE)
_NATIONALITY = re.compile(r"\b(nationality|nationalities|same country|from the same|citizens? of the same)\b",
                          re.IGNORECASE)


def _side_of(answer: str, names: list[str]) -> int | None:
    """Which side the answer names ('Frank, Viscount De Winne' names 'Frank De Winne'), or None."""
    gold = set(normalize_answer(answer).split())
    hits = [i for i, n in enumerate(names)
            if _phrase(n, answer) or _phrase(answer, n) or set(normalize_answer(n).split()) <= gold]
    return hits[0] if len(hits) == 1 else None


def _phrase(needle: str, haystack: str) -> bool:
    needle = normalize_answer(needle)
    return bool(needle) and f" {needle} " in f" {normalize_answer(haystack)} "


def comparison(question: str, sides: list[tuple[str, str]], answer: str) -> str | None:
    """A sentence that states how two pages decide a comparison, with both values, or None when no value it
    can read decides it the way the gold answer says (the expert then quotes both pages instead).

    sides: [(name, what its page says), ...] for the two things compared.
    ('Who is older, Ivan Bella or Frank De Winne?', [('Ivan Bella', '... (born 25 May 1964 ...'),
     ('Frank De Winne', '... (born 25 April 1961 ...')], 'Frank De Winne')
    -> 'Ivan Bella: 25 May 1964; Frank De Winne: 25 April 1961. 25 April 1961 is earlier, so Frank De Winne is older.'
    """
    if len(sides) != 2:
        return None
    (a, ta), (b, tb) = sides
    gold = normalize_answer(answer)
    q = question
    if gold in ("yes", "no"):
        return _yes_no(q, a, ta, b, tb, gold == "yes")
    winner = _side_of(answer, [a, b])
    if winner is None:  # the answer is a value the pages give, not one of the two
        if _phrase(answer, ta) and _phrase(answer, tb):
            return f"Both pages say {answer.rstrip('.')}: {a} and {b} have it in common."
        return None
    win, lose = (a, b) if winner == 0 else (b, a)
    texts = (ta, tb) if winner == 0 else (tb, ta)
    earlier, later = _EARLIER.search(q), _LATER.search(q)
    if earlier or later:
        da, db = first_date(texts[0]), first_date(texts[1])
        if da and db and da[1] != db[1]:
            word = (earlier or later).group(1).lower()
            wins_earlier = da[1] < db[1]
            if wins_earlier == bool(earlier) and not (earlier and later):
                order = "earlier" if wins_earlier else "later"
                verdict = f"the one that came {word}" if word in ("first", "last") else word
                return f"{win}: {da[0]}; {lose}: {db[0]}. {da[0]} is {order} than {db[0]}, so {win} is {verdict}."
    if (m := _MORE.search(q)) is not None:
        noun = m.group(1)
        ca, cb = count_of(texts[0], noun), count_of(texts[1], noun)
        if ca and cb and ca[1] > cb[1]:
            return f"{win}: {ca[0]}; {lose}: {cb[0]}. {ca[1]:g} is more than {cb[1]:g}, so {win} has more {noun}."
    if _TALLER.search(q):
        ha, hb = height_of(texts[0]), height_of(texts[1])
        if ha and hb and ha[1] > hb[1]:
            return f"{win}: {ha[0]}; {lose}: {hb[0]}. {win} is the taller."
    if earlier or later or _MORE.search(q) or _TALLER.search(q):
        return None  # a comparison of values none of which could be read: no statement
    # the question's own words that the winner's page says and the other's does not
    own = _distinctive(q, [a, b], texts[0], texts[1])
    if own:
        return f"{win}'s page says \"{own}\"; {lose}'s does not. So it is {win}."
    return None


def _distinctive(question: str, names: list[str], winner: str, loser: str) -> str | None:
    """The longest run of the question's words (names left out, starting and ending on a word that carries
    meaning) that the winner's page has and the loser's lacks.
    ('Which magazine is twice monthly, Reason or CCM?', ..., 'a twice monthly magazine', 'a monthly magazine')
    -> 'twice monthly'"""
    words = [w.strip("?,.:;\"'") for w in question.split()]
    name_words = {w for n in names for w in normalize_answer(n).split()}

    def plain(w: str) -> bool:
        n = normalize_answer(w)
        return not n or n in _STOP or n in _PLAIN or n in name_words

    best = None
    for i in range(len(words)):
        for j in range(len(words), i, -1):
            if plain(words[i]) or plain(words[j - 1]):
                continue
            phrase = " ".join(words[i:j])
            if (best is None or len(phrase) > len(best)) and _phrase(phrase, winner) and not _phrase(phrase, loser):
                best = phrase
    return best


def _yes_no(q: str, a: str, ta: str, b: str, tb: str, yes: bool) -> str | None:
    """The comparison behind a yes/no answer: nationalities, a thing both are (or not), a date."""
    verdict = "yes" if yes else "no"
    if _NATIONALITY.search(q) or re.search(rf"\bboth (from )?({_NATION_WORDS})\b", q):
        na, nb = nationalities(ta), nationalities(tb)
        if na and nb:
            same = bool(set(na) & set(nb))
            asked = _NATION_RE.search(q)
            if asked and not _NATIONALITY.search(q):  # "both American?"
                same = asked.group(1) in na and asked.group(1) in nb
                if same == yes:
                    return f"{a} is {' and '.join(na)} and {b} is {' and '.join(nb)}: " \
                           f"{'both are' if yes else 'not both are'} {asked.group(1)}, so the answer is {verdict}."
                return None
            if same == yes:
                return f"{a} is {' and '.join(na)}; {b} is {' and '.join(nb)}. " \
                       f"{'The same' if yes else 'Not the same'} nationality, so the answer is {verdict}."
            return None
    m = re.match(r"\s*(?:are|were|is|was)\b.*?\bboth\s+(?:an?\s+|the\s+)?([\w\s-]+?)\s*(?:\?|$|,)", q, re.IGNORECASE)
    if m and not re.search(r"\bsame\b", q, re.IGNORECASE):
        thing = m.group(1).strip()
        for name in (a, b):  # "Are both A and B tennis players?": what follows the names
            if name in thing:
                thing = thing.split(name)[-1].strip()
        thing = re.sub(r"^(?:an?|the)\s+", "", thing)
        thing = re.split(r"\s+(?:in|from|at|by|based|with|that|who|which|on|for)\s+", thing)[0]
        if not thing or not thing.split():
            return None
        head = _singular(thing.split(" of ")[-1].split()[-1])  # 'a genus of orchids': orchid
        has = [bool(re.search(rf"\b{re.escape(head)}", t, re.IGNORECASE)) for t in (ta, tb)]
        if all(has) == yes:
            if yes:
                return f"{a}'s page and {b}'s page both say {head}: both are {thing}, so yes."
            if any(has):
                said, missing = (a, b) if has[0] else (b, a)
                return f"{said}'s page says {head} and {missing}'s does not, so they are not both {thing}: no."
            return f"Neither {a}'s page nor {b}'s says {head}, so they are not both {thing}: no."
    return None
