"""The embedded world: a seeded, fictional encyclopedia and HotpotQA-style questions over it.

No model can know these facts, so an agent must use the tool to answer: exactly what fine-tuning
has to teach. Entities of seven kinds (countries, cities, people, films, studios/labels/companies,
bands, albums) are linked by relations (born in, directed by, produced by, founded by, member of,
headquartered in, recorded by, released on, located in). Each entity has an article of 3-6
sentences in varied wording; every fact sits in exactly one sentence, so supporting facts are
`[title, sentence_index]` as in HotpotQA.

Splits own disjoint entities (only countries and their capitals are shared), so a test question
is about people, films and bands that no training trajectory ever mentioned.

    python -m fireflan world --seed 0 --out runs/world
    # -> runs/world/{train,dev,test}.jsonl (HotpotQA distractor schema) and corpus.jsonl
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from fireflan.options import opt

SCHEMA_QUESTION = "fireflan.question/1"
SCHEMA_PAGE = "fireflan.page/1"


@dataclass
class WorldConfig:
    """Options of the world generator (`python -m fireflan world --help`)."""

    seed: int = opt(0, "the same seed writes byte-identical files")
    train: int = opt(3000, "questions in the train split")
    dev: int = opt(300, "questions in the dev split")
    test: int = opt(300, "questions in the test split")
    paragraphs: int = opt(10, "paragraphs in each question's context (gold + distractors), as HotpotQA")
    notool_share: float = opt(0.10, "share of questions answerable without the tool (arithmetic, definitions)")

    def __post_init__(self):
        for name in ("train", "dev", "test"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"world option {name} must be a positive integer, got {getattr(self, name)!r}")
        if not 4 <= self.paragraphs <= 50:
            raise ValueError(f"world option paragraphs must be within 4..50, got {self.paragraphs}")
        if not 0.0 <= self.notool_share <= 0.5:
            raise ValueError(f"world option notool_share must be within 0..0.5, got {self.notool_share}")


# --------------------------------------------------------------------------- invented words

_ONSETS = "b br c d dr f g gr h k kl l m n p pr r s st t tr v z th sh j".split()
_VOWELS = "a e i o u a e o ai ei ou".split()
_CODAS = ["", "", "n", "r", "l", "s", "th", "rn", "nd", "k", "m", "x", "st", "v"]


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


class _Names:
    """Unique invented names; titles never repeat (case-insensitively) across the world."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def make(self, build) -> str:
        for _ in range(1000):
            name = build(self.rng)
            if len(name) >= 4 and name.lower() not in self.used:
                self.used.add(name.lower())
                return name
        raise RuntimeError("name space exhausted; lower the world size")

    def word(self, lo=2, hi=3) -> str:
        return self.make(lambda r: _word(r, r.randint(lo, hi)))


def _pick(rng, options):
    return options[rng.randrange(len(options))]


_FILM_NOUNS = ("Letters Harbor Affair Winter Crossing Garden Inheritance Archive Lantern Orchard Signal Tide "
               "Verdict Voyage").split()
_ALBUM_WORDS = "Blue Quiet Paper Golden Hollow Electric Northern Slow Wild Silver".split()
_BAND_NOUNS = "Collective Orchestra Parade Machine Echo Brothers Society Engine".split()
_GENRES_FILM = ["drama", "comedy", "thriller", "science fiction", "documentary", "horror", "musical", "western"]
_GENRES_MUSIC = ["rock", "jazz", "folk", "electronic", "punk", "soul", "indie pop", "metal"]
_INDUSTRIES = [("Industries", "manufacturing"), ("Systems", "software"), ("Motors", "automotive"),
               ("Foods", "food processing"), ("Shipping", "shipping"), ("Holdings", "investment")]
_REGIONS = ["north", "south", "east", "west", "centre"]
_CONTINENTS = ["Ardent", "Meridian", "Solace"]
_DEMONYM = [("ia", "ian"), ("ar", "ari"), ("ova", "ovan"), ("eth", "ethi"), ("un", "unese"), ("and", "andic")]


# --------------------------------------------------------------------------- entities

@dataclass
class Entity:
    kind: str  # country | city | person | film | company | band | album
    name: str
    group: str  # train | dev | test | shared
    facts: dict = field(default_factory=dict)  # fact key -> value (names of other entities as str)


def _year(rng, lo, hi):
    return rng.randint(lo, min(hi, 2024))


def _build_entities(rng: random.Random, names: _Names, n_questions: dict) -> dict[str, list[Entity]]:
    """All entities, by group. Counts scale with the number of questions a group needs."""
    out: dict[str, list[Entity]] = {g: [] for g in ["shared", *n_questions]}
    countries = []
    for _ in range(12):
        stem, (suf, dem) = names.word(2, 2), _pick(rng, _DEMONYM)
        stem = stem.rstrip("aeiou") or stem
        name = names.make(lambda r, s=stem, x=suf: s + x)
        capital = Entity("city", names.word(), "shared")
        c = Entity("country", name, "shared", {
            "demonym": stem + dem, "capital": capital.name, "region": _pick(rng, _REGIONS),
            "continent": _pick(rng, _CONTINENTS), "independence": _year(rng, 1650, 1990)})
        capital.facts = {"country": name, "founded": _year(rng, 700, 1400),
                         "population": rng.randrange(400_000, 4_000_000, 1000), "capital_of": name}
        countries.append(c)
        out["shared"] += [c, capital]
    by_name = {c.name: c for c in countries}

    for group, n in n_questions.items():
        scale = max(n, 30) / 100
        ents = out[group]
        cities = []
        for _ in range(max(8, round(4 * scale))):
            country = _pick(rng, countries)
            name = names.make(lambda r: _pick(r, ["{w}", "{w}", "{w}", "Port {w}", "New {w}", "{w} Falls"]).format(
                w=_word(r, r.randint(2, 3))))
            cities.append(Entity("city", name, group, {
                "country": country.name, "founded": _year(rng, 800, 1900),
                "population": rng.randrange(20_000, 2_500_000, 500)}))

        def person(occupation, born_lo, born_hi, cities=cities, group=group):
            city = _pick(rng, cities)
            gender = _pick(rng, ["he", "she"])
            name = names.make(lambda r: f"{_word(r, 2)} {_word(r, r.randint(2, 3))}")
            return Entity("person", name, group, {
                "occupation": occupation, "born": _year(rng, born_lo, born_hi), "city": city.name,
                "demonym": by_name[city.facts["country"]].facts["demonym"],
                "country": city.facts["country"], "pronoun": gender})

        companies = []
        for kind, count, suffixes in [("studio", 3 * scale, ["Pictures", "Films", "Studios"]),
                                      ("label", 3 * scale, ["Records", "Music", "Sound"]),
                                      ("company", 3 * scale, None)]:
            for _ in range(max(3, round(count))):
                founded = _year(rng, 1850, 2015)
                founder = person("entrepreneur", founded - 60, founded - 22)
                if suffixes:
                    suffix, industry = _pick(rng, suffixes), {"studio": "film production", "label": "music"}[kind]
                else:
                    suffix, industry = _pick(rng, _INDUSTRIES)
                name = names.make(lambda r, s=suffix: f"{_word(r, r.randint(2, 3))} {s}")
                founder.facts["company"] = name
                companies.append(Entity("company", name, group, {
                    "kind": kind, "industry": industry, "founded": founded, "founder": founder.name,
                    "hq": _pick(rng, cities).name}))
                ents.append(founder)
        studios = [c for c in companies if c.facts["kind"] == "studio"]
        labels = [c for c in companies if c.facts["kind"] == "label"]

        films = []
        for _ in range(max(8, round(6 * scale))):
            if films and rng.random() < 0.4:  # a director with several films
                wanted = _pick(rng, films).facts["director"]
                director = next(e for e in ents if e.name == wanted)
            else:
                director = person("film director", 1900, 1990)
                ents.append(director)
            year = _year(rng, director.facts["born"] + 24, director.facts["born"] + 65)
            title = names.make(lambda r: _pick(r, [
                "The {w} {n}", "{w}", "Return to {w}", "A Winter in {w}", "{w}'s {n}", "The Last {w}"
            ]).format(w=_word(r, r.randint(2, 3)), n=_pick(r, _FILM_NOUNS)))
            films.append(Entity("film", title, group, {
                "year": year, "genre": _pick(rng, _GENRES_FILM), "director": director.name,
                "studio": _pick(rng, studios).name}))
            director.facts.setdefault("films", []).append(title)

        bands, albums = [], []
        for _ in range(max(6, round(3 * scale))):
            formed = _year(rng, 1960, 2018)
            name = names.make(lambda r: _pick(r, ["The {w}s", "{w} {n}", "{w}"]).format(
                w=_word(r, r.randint(2, 3)), n=_pick(r, _BAND_NOUNS)))
            members = [person("musician", formed - 35, formed - 17) for _ in range(rng.randint(2, 4))]
            for m in members:
                m.facts["band"] = name
            ents += members
            band = Entity("band", name, group, {
                "formed": formed, "city": _pick(rng, cities).name, "genre": _pick(rng, _GENRES_MUSIC),
                "members": [m.name for m in members]})
            bands.append(band)
            year = formed
            for i in range(rng.randint(1, 3)):
                if year >= 2023:
                    break
                year = _year(rng, year + 1, year + 6)
                title = names.make(lambda r: _pick(r, [
                    "{w}", "Songs for {w}", "{a} {w}", "The {w} Sessions", "Nights in {w}"
                ]).format(w=_word(r, r.randint(2, 3)), a=_pick(r, _ALBUM_WORDS)))
                albums.append(Entity("album", title, group, {
                    "band": name, "year": year, "label": _pick(rng, labels).name, "number": i + 1}))
        ents += cities + companies + films + bands + albums
    return out


# --------------------------------------------------------------------------- articles
# A template names the facts it states; an article states each fact once, so every fact has one
# sentence index. {S} is the subject of a later sentence: the name, a pronoun or "The film".

_ORD = {1: "debut", 2: "second", 3: "third"}

_TEMPLATES = {
    "film": {
        "intro": [
            (("year", "genre"), ["{name} is a {year} {genre} film.", "{name} is a {genre} film released in {year}.",
                                 "Released in {year}, {name} is a {genre} feature film."]),
            (("genre", "director"), ["{name} is a {genre} film directed by {director}.",
                                     "{name} is a {genre} picture made by the filmmaker {director}."]),
            (("genre",), ["{name} is a {genre} film.", "{name} is a feature-length {genre}."]),
        ],
        "year": ["{S} was released in {year}.", "{S} premiered in {year}.", "{S} first reached cinemas in {year}."],
        "genre": ["{S} is usually described as a {genre}.", "Critics filed {S_obj} under {genre}."],
        "director": ["{S} was directed by {director}.", "{director} directed {S_obj}.",
                     "The director of {S_obj} was {director}."],
        "studio": ["{S} was produced by {studio}.", "{studio} produced {S_obj}.",
                   "The production company behind {S_obj} was {studio}."],
        "filler": ["{S} was shot over {n} weeks.", "{S} runs for {minutes} minutes.",
                   "Its score was written for a small string ensemble.", "{S} received mixed reviews at first."],
        "subjects": ["{name}", "The film", "It"],
    },
    "person": {
        "intro": [
            (("born", "demonym", "occupation"), ["{name} (born {born}) is a {demonym} {occupation}.",
                                                 "{name} is a {demonym} {occupation} born in {born}."]),
            (("demonym", "occupation"), ["{name} is a {demonym} {occupation}.",
                                         "{name} is {an_occupation} of {demonym} nationality."]),
            (("born", "city"), ["{name} was born in {city} in {born}."]),
        ],
        "born": ["{S} was born in {born}.", "{S} was born in the year {born}."],
        "city": ["{S} was born in {city}.", "{S} was born in the city of {city}.",
                 "{S} grew up in {city}, where {pronoun} was born."],
        "demonym": ["{S} holds {demonym} citizenship."],
        "occupation": ["{S} works as {an_occupation}.", "{S} is known as {an_occupation}."],
        "films": ["{S} directed {films}.", "The films of {name} include {films}."],
        "band": ["{S} is a member of {band}.", "{S} plays in the band {band}."],
        "company": ["{S} founded {company}.", "{S} is the founder of {company}."],
        "filler": ["{S} studied at the {word} Academy.", "{S} has given few interviews.",
                   "{S} lives with a cat named {word2}."],
        "subjects": ["{name}", "{Pronoun}"],
    },
    "city": {
        "intro": [
            (("country",), ["{name} is a city in {country}.", "{name} is a town in the {region} of {country}."]),
            (("country", "founded"), ["{name} is a city in {country}, founded in {founded}."]),
        ],
        "country": ["{S} lies in {country}."],
        "founded": ["{S} was founded in {founded}.", "The first settlement at {S_obj} dates from {founded}."],
        "population": ["{S} has a population of {population}.",
                       "About {population} people live in {S_obj}."],
        "capital_of": ["{S} is the capital of {capital_of}."],
        "filler": ["{S} is known for its covered markets.", "A river named the {word2} crosses {S_obj}.",
                   "The old town has narrow streets."],
        "subjects": ["{name}", "The city", "It"],
    },
    "country": {
        "intro": [
            (("continent",), ["{name} is a country on the {continent} continent."]),
            (("continent", "capital"),
             ["{name} is a country on the {continent} continent whose capital is {capital}."]),
        ],
        "capital": ["Its capital is {capital}.", "The capital of {name} is {capital}."],
        "demonym": ["{demonym} is the word for people and things from {name}.",
                    "The adjective for {name} is {demonym}."],
        "independence": ["{S} became independent in {independence}.",
                         "{S} declared independence in {independence}."],
        "region": ["Most of its people live in the {region}."],
        "filler": ["{S} has a temperate climate."],
        "subjects": ["{name}", "The country", "It"],
    },
    "company": {
        "intro": [
            (("industry",), ["{name} is a {industry} company.", "{name} is a company in the {industry} business."]),
            (("industry", "founded"), ["{name} is a {industry} company founded in {founded}."]),
            (("industry", "founder"), ["{name} is a {industry} company founded by {founder}."]),
        ],
        "founded": ["{S} was founded in {founded}.", "{S} was established in {founded}."],
        "founder": ["{S} was founded by {founder}.", "{founder} founded {S_obj}.",
                    "The founder of {S_obj} is {founder}."],
        "hq": ["{S} is headquartered in {hq}.", "The headquarters of {S_obj} are in {hq}.",
               "{S} has its head office in {hq}."],
        "filler": ["{S} employs about {n}00 people.", "{S} has offices in three countries.",
                   "Its logo shows a {word} bird."],
        "subjects": ["{name}", "The company", "It"],
    },
    "band": {
        "intro": [
            (("genre",), ["{name} is a {genre} band.", "{name} are a {genre} group."]),
            (("genre", "city"), ["{name} is a {genre} band from {city}."]),
            (("genre", "city", "formed"), ["{name} is a {genre} band formed in {city} in {formed}."]),
        ],
        "formed": ["{S} formed in {formed}.", "{S} was founded in {formed}.", "{S} got together in {formed}."],
        "city": ["{S} was formed in {city}.", "{S} started out in {city}."],
        "members": ["Its members are {members}.", "The band consists of {members}."],
        "filler": ["{S} toured widely in the first years.", "{S} rehearses in an old {word} warehouse."],
        "subjects": ["{name}", "The band"],
    },
    "album": {
        "intro": [
            (("number", "band"), ["{name} is the {ordinal} album by {band}.",
                                  "{name} is the {ordinal} studio record of {band}."]),
            (("number", "band", "year"), ["{name} is the {ordinal} album by {band}, released in {year}."]),
        ],
        "year": ["{S} was released in {year}.", "{S} came out in {year}."],
        "label": ["{S} was released on {label}.", "{label} released {S_obj}.",
                  "{S} was issued by the label {label}."],
        "filler": ["{S} has {n} tracks.", "{S} was recorded in {n} days.", "Its cover shows a {word} lamp."],
        "subjects": ["{name}", "The album", "It"],
    },
}


def _join(items: list[str]) -> str:
    """['a'] -> 'a'; ['a', 'b', 'c'] -> 'a, b and c'"""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _vars(e: Entity, rng: random.Random) -> dict:
    v = {k: (_join(x) if isinstance(x, list) else x) for k, x in e.facts.items()}
    if e.kind == "city" and "region" not in v:
        v["region"] = _pick(rng, _REGIONS)
    if "population" in v:
        v["population"] = f"{v['population']:,}"
    if "occupation" in v:
        v["an_occupation"] = ("an " if v["occupation"][0] in "aeiou" else "a ") + v["occupation"]
    pronoun = e.facts.get("pronoun", "it")
    v.update(name=e.name, Pronoun=pronoun.capitalize(), ordinal=_ORD.get(e.facts.get("number"), "latest"),
             n=rng.randint(3, 19), minutes=rng.randint(80, 150), word=_word(rng, 2), word2=_word(rng, 2))
    return v


def write_article(e: Entity, rng: random.Random) -> tuple[list[str], dict[str, int]]:
    """The sentences of an entity's article and, for each fact, the index of its sentence."""
    t = _TEMPLATES[e.kind]
    facts = [k for k in e.facts if k in t]
    v = _vars(e, rng)
    intros = [(c, opts) for c, opts in t["intro"] if all(k in e.facts for k in c)]
    covers, options = _pick(rng, intros)
    sentences, where = [_pick(rng, options).format(**v)], {k: 0 for k in covers}
    rest = [k for k in facts if k not in where]
    rng.shuffle(rest)
    n_target = max(3, min(6, len(rest) + 1 + rng.randint(0, 2)))
    fillers = list(t["filler"])
    rng.shuffle(fillers)
    body = [(k, _pick(rng, t[k])) for k in rest] + [(None, f) for f in fillers[: n_target - 1 - len(rest)]]
    for key, template in body:
        subject = _pick(rng, t["subjects"]).format(**v)
        obj = subject if subject == e.name else subject.lower()
        sentences.append(template.format(S=subject, S_obj=obj, **v))
        if key is not None:
            where[key] = len(sentences) - 1
    return sentences, where


# --------------------------------------------------------------------------- questions

@dataclass
class _Q:
    question: str
    answer: str
    type: str  # bridge | comparison | single | notool
    level: str
    facts: list  # [(entity, fact key), ...]
    kind: str  # a finer label, e.g. "bridge/film-director-city"


def _bridge(g: dict, rng) -> list[_Q]:
    """Two hops: the subject's page names a second entity whose page holds the answer."""
    chains = [  # subject kind, link fact, answer fact, templates
        ("film", "director", "city", ["In which city was the director of {x} born?",
                                      "Where was the director of the film {x} born?",
                                      "{x} was directed by someone born in which city?"]),
        ("film", "director", "born", ["In what year was the director of {x} born?",
                                      "When was the person who directed {x} born?"]),
        ("film", "director", "demonym", ["What nationality is the director of {x}?"]),
        ("film", "studio", "founder", ["Who founded the studio that produced {x}?",
                                       "Who is the founder of the company that produced the film {x}?"]),
        ("film", "studio", "hq", ["In which city is the studio behind {x} headquartered?"]),
        ("album", "band", "city", ["In which city was the band that recorded {x} formed?",
                                   "Where did the band behind the album {x} form?"]),
        ("album", "band", "formed", ["In what year was the band that made {x} formed?"]),
        ("album", "label", "founder", ["Who founded the record label that released {x}?"]),
        ("album", "label", "hq", ["Where is the label that released {x} headquartered?"]),
        ("company", "founder", "city", ["Where was the founder of {x} born?",
                                        "In which city was the person who founded {x} born?"]),
        ("company", "hq", "country", ["In which country is {x} headquartered?"]),
        ("band", "city", "country", ["In which country was {x} formed?"]),
        ("person", "band", "formed", ["In what year was the band that {x} plays in formed?"]),
        ("person", "company", "founded", ["When was the company founded by {x} established?"]),
        ("city", "country", "capital", ["What is the capital of the country where {x} lies?"]),
    ]
    out = []
    for kind, link, answer, templates in chains:
        for x in g[kind]:
            if link not in x.facts:
                continue
            y = g["by_name"][x.facts[link]]
            if answer not in y.facts:
                continue
            out.append(_Q(_pick(rng, templates).format(x=x.name), str(y.facts[answer]), "bridge", "medium",
                          [(x, link), (y, answer)], f"bridge/{kind}-{link}-{answer}"))
    for x in g["album"]:  # three hops: album -> band -> city -> country
        band = g["by_name"][x.facts["band"]]
        city = g["by_name"][band.facts["city"]]
        out.append(_Q(f"In which country was the band behind the album {x.name} formed?", city.facts["country"],
                      "bridge", "hard", [(x, "band"), (band, "city"), (city, "country")], "bridge/album-band-country"))
    return out


def _comparison(g: dict, rng) -> list[_Q]:
    """Which of two has the larger/smaller value; and yes/no: do two share a value?"""
    specs = [  # kind, fact, templates answering the smaller value, templates answering the larger
        ("film", "year", ["Which film came out first, {a} or {b}?"], ["Which film is more recent, {a} or {b}?"]),
        ("company", "founded", ["Which company was founded first, {a} or {b}?", "Which is older, {a} or {b}?"],
         ["Which was founded more recently, {a} or {b}?"]),
        ("person", "born", ["Who was born first, {a} or {b}?"], ["Who is younger, {a} or {b}?"]),
        ("band", "formed", ["Which band formed earlier, {a} or {b}?"], ["Which band is newer, {a} or {b}?"]),
        ("city", "population", ["Which city is smaller, {a} or {b}?"],
         ["Which city has more inhabitants, {a} or {b}?", "Which has the larger population, {a} or {b}?"]),
        ("album", "year", ["Which album was released first, {a} or {b}?"], ["Which album is newer, {a} or {b}?"]),
    ]
    same = [  # kind, fact, templates
        ("person", "country", ["Are {a} and {b} of the same nationality?", "Do {a} and {b} share a nationality?"]),
        ("company", "hq", ["Are {a} and {b} headquartered in the same city?"]),
        ("film", "director", ["Were {a} and {b} directed by the same person?"]),
        ("city", "country", ["Are {a} and {b} in the same country?"]),
        ("band", "genre", ["Do {a} and {b} play the same kind of music?"]),
        ("film", "studio", ["Were {a} and {b} produced by the same studio?"]),
    ]
    out = []
    for kind, fact, small, large in specs:
        pool = g[kind]
        for _ in range(len(pool)):
            a, b = rng.sample(pool, 2)
            if a.facts[fact] == b.facts[fact]:
                continue
            larger = rng.random() < 0.5
            pick = max if larger else min
            winner = pick((a, b), key=lambda e: e.facts[fact])
            text = _pick(rng, large if larger else small).format(a=a.name, b=b.name)
            out.append(_Q(text, winner.name, "comparison", "medium", [(a, fact), (b, fact)],
                          f"comparison/{kind}-{fact}"))
    for kind, fact, templates in same:
        pool = g[kind]
        for _ in range(len(pool)):
            a = _pick(rng, pool)
            want_yes = rng.random() < 0.5
            partners = [e for e in pool if e is not a and (e.facts[fact] == a.facts[fact]) == want_yes]
            if not partners:
                continue
            b = _pick(rng, partners)
            text = _pick(rng, templates).format(a=a.name, b=b.name)
            fa, fb = ("demonym", "demonym") if fact == "country" and kind == "person" else (fact, fact)
            out.append(_Q(text, "yes" if want_yes else "no", "comparison", "medium", [(a, fa), (b, fb)],
                          f"yesno/{kind}-{fact}"))
    return out


def _single(g: dict, rng) -> list[_Q]:
    specs = [
        ("film", "director", ["Who directed {x}?", "Who was the director of {x}?"]),
        ("film", "year", ["In what year was {x} released?"]),
        ("film", "studio", ["Which studio produced {x}?"]),
        ("person", "city", ["In which city was {x} born?"]),
        ("person", "born", ["When was {x} born?"]),
        ("company", "founder", ["Who founded {x}?"]),
        ("company", "founded", ["When was {x} founded?"]),
        ("company", "hq", ["Where is {x} headquartered?"]),
        ("album", "band", ["Which band recorded {x}?"]),
        ("album", "label", ["Which label released {x}?"]),
        ("band", "city", ["In which city was {x} formed?"]),
        ("city", "country", ["In which country is {x}?"]),
        ("country", "capital", ["What is the capital of {x}?"]),
    ]
    out = []
    for kind, fact, templates in specs:
        for x in g[kind]:
            if fact in x.facts:
                out.append(_Q(_pick(rng, templates).format(x=x.name), str(x.facts[fact]), "single", "easy",
                              [(x, fact)], f"single/{kind}-{fact}"))
    return out


_DEFINED = [("fish", "lives in cold rivers"), ("bird", "nests in cliffs"), ("tree", "grows on hillsides"),
            ("boat", "carries nets for fishing"), ("drum", "is played at weddings"),
            ("pastry", "is filled with plums"), ("dance", "is performed in pairs"), ("tool", "is used to split logs")]


def _notool(rng, n: int) -> list[_Q]:
    """Questions whose answer is in the question itself: arithmetic and given definitions."""
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.25:
            a, b = rng.randint(2, 99), rng.randint(2, 99)
            q, ans = f"What is {a} plus {b}?", a + b
        elif r < 0.45:
            a, b = rng.randint(2, 19), rng.randint(2, 19)
            q, ans = f"What is {a} times {b}?", a * b
        elif r < 0.65:
            a, b = sorted(rng.sample(range(1700, 2024), 2))
            q, ans = f"How many years passed between {a} and {b}?", b - a
        elif r < 0.8:
            w, legs, k = _word(rng, 2).lower(), rng.randint(2, 8), rng.randint(2, 9)
            q, ans = f"A {w} has {legs} legs. How many legs do {k} {w}s have in total?", legs * k
        else:
            w = _word(rng, 3).lower()
            what, does = _pick(rng, _DEFINED)
            q = f"A {w} is a kind of {what} that {does}. What kind of thing is a {w}?"
            ans = what
        out.append(_Q(q, str(ans), "notool", "easy", [], "notool"))
    return out


# --------------------------------------------------------------------------- assembling

def _mix(pools: dict[str, list[_Q]], n: int, notool: float, rng, seen: set) -> list[_Q]:
    """n questions, drawn round-robin-by-share from the pools, never repeating a question text."""
    shares = {"bridge": 0.38, "comparison": 0.30, "single": 0.32}
    want = {"notool": round(n * notool)}
    rest = n - want["notool"]
    want.update({k: round(rest * s) for k, s in shares.items()})
    want["single"] += n - sum(want.values())
    out = []
    for kind in ["bridge", "comparison", "single", "notool"]:
        pool = list(pools[kind])
        rng.shuffle(pool)
        taken = 0
        for q in pool:
            if taken == want[kind]:
                break
            key = q.question.lower()
            if key not in seen:
                seen.add(key)
                out.append(q)
                taken += 1
        if taken < want[kind]:
            raise ValueError(f"the world has only {taken} distinct {kind} questions for {want[kind]} wanted")
    rng.shuffle(out)
    return out


def generate_world(config: WorldConfig) -> tuple[dict[str, list[dict]], list[dict]]:
    """(splits, corpus): question records per split in HotpotQA's distractor schema, and the pages.

    Pure and deterministic: the same config gives the same records.
    """
    rng = random.Random(f"fireflan-world-{config.seed}")
    sizes = {"train": config.train, "dev": config.dev, "test": config.test}
    names = _Names(rng)
    groups = _build_entities(rng, names, sizes)
    every = [e for g in groups.values() for e in g]
    by_name = {e.name: e for e in every}

    pages, where = {}, {}
    for e in every:
        sentences, index = write_article(e, random.Random(f"{config.seed}-article-{e.name}"))
        pages[e.name], where[e.name] = sentences, index
    by_kind = {}
    for e in every:
        by_kind.setdefault(e.kind, []).append(e)

    splits, seen = {}, set()
    for split, n in sizes.items():
        qrng = random.Random(f"{config.seed}-questions-{split}")
        own = [e for e in every if e.group == split or (split == "train" and e.group == "shared")]
        g = {k: [e for e in own if e.kind == k] for k in _TEMPLATES}
        g["by_name"] = by_name
        pools = {"bridge": _bridge(g, qrng), "comparison": _comparison(g, qrng), "single": _single(g, qrng),
                 "notool": _notool(qrng, n * 2)}
        records = []
        for i, q in enumerate(_mix(pools, n, config.notool_share, qrng, seen)):
            gold = list(dict.fromkeys(e.name for e, _ in q.facts))
            kinds = list(dict.fromkeys(by_name[t].kind for t in gold)) or ["film", "person"]
            candidates = [e.name for k in kinds for e in by_kind[k] if e.name not in gold]
            distract = qrng.sample(candidates, min(len(candidates), config.paragraphs - len(gold)))
            context = [[t, pages[t]] for t in gold + distract]
            qrng.shuffle(context)
            records.append({
                "schema": SCHEMA_QUESTION, "_id": f"world-{config.seed}-{split}-{i:05d}", "task": "world",
                "question": q.question, "answer": q.answer, "type": q.type, "level": q.level,
                "kind": q.kind, "supporting_facts": [[e.name, where[e.name][k]] for e, k in q.facts],
                "context": context})
        splits[split] = records
    corpus = [{"schema": SCHEMA_PAGE, "title": e.name, "text": " ".join(pages[e.name]),
               "sentences": pages[e.name], "kind": e.kind} for e in every]
    return splits, corpus


def write_world(config: WorldConfig, out) -> dict[str, int]:
    """Generate the world and write {train,dev,test}.jsonl and corpus.jsonl under `out`."""
    from fireflan.io import write_jsonl

    out = Path(out)
    splits, corpus = generate_world(config)
    counts = {name: write_jsonl(out / f"{name}.jsonl", records) for name, records in splits.items()}
    counts["corpus"] = write_jsonl(out / "corpus.jsonl", corpus)
    return counts
