"""The embedded world: a seeded, fictional encyclopedia that reads like Wikipedia, and questions over it
that ask like HotpotQA.

No model can know these facts, so an agent must use the tool to answer: exactly what fine-tuning
has to teach. Entities of seven kinds (countries, cities, people, films, companies, bands, albums)
are linked by relations (born in, directed by, starring, produced by, founded by, member of,
headquartered in, recorded by, released by). What makes it read like the real thing:

- titles carry Wikipedia's disambiguations where names collide: a film and an album of one name
  (`Harbor Letters (film)`, `Harbor Letters (album)`), two films of one name (`X (1998 film)`), two
  people of one name (`Kaelo Brenn (director)`), one of them often the plain title; many people share
  a surname. Other pages and the questions name an entity as people write it, without the bracket;
- lead sentences in Wikipedia's shape (`Kaelo Brenn (born July 16, 1966) is a Drenlandic film director,
  screenwriter and producer.`), facts inside longer sentences and lists, nationalities as adjectives,
  dates written two ways (`July 16, 1966`, `16 July 1966`);
- a question's distractor paragraphs are the pages that share the most words with it (BM25), as
  HotpotQA's were retrieved;
- questions in HotpotQA's phrasings (`The director of the 1998 film X was born in what city?`,
  `Were A and B of the same nationality?`, `Which film came out first, A or B?`), answers that are
  spans of a page (a date as written, an adjective), yes/no comparisons that need both pages read;
- the question types in HotpotQA dev's shares: of the questions that need the tool, 0.80 bridge and
  0.20 comparison, with a few single-hop questions kept (0.05 of them; HotpotQA has none).

Every fact sits in one sentence, so supporting facts are `[title, sentence_index]` as in HotpotQA. A
comparison's record also says, in `reasoning`, how its two read values decide it (the scripted expert
says it before answering). Splits own disjoint entities (only countries and their capitals are
shared), so a test question is about people, films and bands that no training trajectory mentioned.

    python -m fireflan world --seed 0 --out runs/world
    # -> runs/world/{train,dev,test}.jsonl (HotpotQA distractor schema) and corpus.jsonl
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from fireflan.io import file_set, write_jsonl
from fireflan.options import opt

SCHEMA_QUESTION = "fireflan.question/2"
SCHEMA_PAGE = "fireflan.page/2"


@dataclass
class WorldConfig:
    """Options of the world generator (`python -m fireflan world --help`)."""

    seed: int = opt(0, "the same seed writes byte-identical files")
    train: int = opt(3000, "questions in the train split")
    dev: int = opt(300, "questions in the dev split")
    test: int = opt(300, "questions in the test split")
    paragraphs: int = opt(10, "paragraphs in each question's context (gold + distractors), as HotpotQA")
    notool_share: float = opt(0.10, "share of questions answerable without the tool (arithmetic, definitions)")
    comparison_share: float = opt(0.20, "share of comparisons among the questions that need the tool "
                                        "(HotpotQA dev: 0.20)")
    single_share: float = opt(0.05, "share of single-hop questions among those that need the tool (HotpotQA has "
                                    "none: the rest are bridge questions, 0.80 of HotpotQA dev)")

    def __post_init__(self):
        for name in ("train", "dev", "test"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"world option {name} must be a positive integer, got {getattr(self, name)!r}")
        if not 4 <= self.paragraphs <= 50:
            raise ValueError(f"world option paragraphs must be within 4..50, got {self.paragraphs}")
        if not 0.0 <= self.notool_share <= 0.5:
            raise ValueError(f"world option notool_share must be within 0..0.5, got {self.notool_share}")
        for name in ("comparison_share", "single_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"world option {name} must be within 0..1, got {getattr(self, name)}")
        if self.comparison_share + self.single_share > 1.0:
            raise ValueError(f"world options comparison_share + single_share must be at most 1 (the rest are bridge "
                             f"questions), got {self.comparison_share} + {self.single_share}")


# --------------------------------------------------------------------------- invented words

_ONSETS = "b br c d dr f g gr h k kl l m n p pr r s st t tr v z th sh j".split()
_VOWELS = "a e i o u a e o ai ei ou".split()
_CODAS = ["", "", "n", "r", "l", "s", "th", "rn", "nd", "k", "m", "x", "st", "v"]


def _word(rng: random.Random, syllables: int) -> str:
    parts = [rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)]
    return ("".join(parts) + rng.choice(_CODAS)).capitalize()


def _pick(rng, options):
    return options[rng.randrange(len(options))]


class _Names:
    """Invented names, unique (case-insensitively) unless a collision is asked for on purpose."""

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


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"]


def format_date(date: tuple[int, int, int], style: str) -> str:
    """(1966, 7, 16), 'us' -> 'July 16, 1966'; 'uk' -> '16 July 1966'"""
    y, m, d = date
    return f"{_MONTHS[m - 1]} {d}, {y}" if style == "us" else f"{d} {_MONTHS[m - 1]} {y}"


def _date(rng, lo: int, hi: int) -> tuple[int, int, int]:
    return rng.randint(lo, min(hi, 2023)), rng.randint(1, 12), rng.randint(1, 28)


def _join(items: list[str]) -> str:
    """['a'] -> 'a'; ['a', 'b', 'c'] -> 'a, b and c'"""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _a(word: str) -> str:
    """'actor' -> 'an actor'"""
    return ("an " if word[0] in "aeiouAEIOU" else "a ") + word


_FILM_NOUNS = ("Letters Harbor Affair Winter Crossing Garden Inheritance Archive Lantern Orchard Signal Tide "
               "Verdict Voyage Summer Bridge Promise Season").split()
_ALBUM_WORDS = "Blue Quiet Paper Golden Hollow Electric Northern Slow Wild Silver".split()
_BAND_NOUNS = "Collective Orchestra Parade Machine Echo Brothers Society Engine".split()
_GENRES_FILM = ["drama", "comedy", "thriller", "science fiction", "documentary", "horror", "musical", "western",
                "romantic comedy", "crime"]
_GENRES_MUSIC = ["rock", "jazz", "folk", "electronic", "punk", "soul", "indie pop", "heavy metal", "hip hop"]
_INDUSTRIES = [("Industries", "manufacturing"), ("Systems", "software"), ("Motors", "automotive"),
               ("Foods", "food processing"), ("Shipping", "shipping"), ("Holdings", "investment")]
_REGIONS = ["north", "south", "east", "west", "centre"]
_CONTINENTS = ["Ardent", "Meridian", "Solace"]
_DEMONYM = [("ia", "ian"), ("ar", "ari"), ("ova", "ovan"), ("eth", "ethi"), ("un", "unese"), ("and", "andic")]
_FESTIVALS = ["Velmar", "Ostrand", "Kelloway", "Brisa", "Tarnow"]
_AWARDS = ["Golden Lantern", "Silver Reed", "Meridian Arts", "Halden", "Crescent"]
_SCHOOLS = ["University of {w}", "{w} Academy of Arts", "{w} Conservatory", "{w} Institute of Technology"]
_CO_ROLES = {"film director": ["screenwriter", "producer", "film editor"],
             "actor": ["singer", "model", "producer"], "musician": ["singer-songwriter", "record producer"],
             "entrepreneur": ["investor", "philanthropist"]}
_DISAMBIG = {"film director": "director", "actor": "actor", "musician": "musician", "entrepreneur": "businessman"}


# --------------------------------------------------------------------------- entities

@dataclass
class Entity:
    kind: str  # country | city | person | film | company | band | album
    name: str  # as other pages and the questions write it
    group: str  # train | dev | test | shared
    facts: dict = field(default_factory=dict)  # fact key -> value (names of other entities as str)
    title: str = ""  # its page's title: the name, or the name with a disambiguation

    def key(self) -> tuple[str, str]:
        """What links name: (the name as pages write it, the kind; a person's trade, as two people may
        share a name)."""
        return self.name, self.kind if self.kind != "person" else f"person:{self.facts['occupation']}"


def _build_entities(rng: random.Random, names: _Names, n_questions: dict) -> dict[str, list[Entity]]:
    """All entities, by group. Counts scale with the number of questions a group needs; some names
    collide on purpose (a film and an album, two people, two films), as Wikipedia's do."""
    out: dict[str, list[Entity]] = {g: [] for g in ["shared", *n_questions]}
    pairs = _countries(rng, names)
    countries = [country for country, _ in pairs]
    out["shared"] += [e for pair in pairs for e in pair]
    for group, n in n_questions.items():
        g = _Group(rng, names, group, max(n, 30) / 100, {c.name: c for c in countries})
        g.cities = _cities(g, countries)
        companies = _companies(g)
        films = _films(g, [c for c in companies if c.facts["kind"] == "studio"])
        bands, albums = _bands(g, films, [c for c in companies if c.facts["kind"] == "label"])
        out[group] += g.people + g.cities + companies + films + bands + albums
    _disambiguate([e for g in out.values() for e in g], rng)
    return out


def _countries(rng, names: _Names) -> list[tuple[Entity, Entity]]:
    """The twelve countries every group shares, each with its capital: [(country, capital)]."""
    countries = []
    for _ in range(12):
        stem, (suf, dem) = names.word(2, 2), _pick(rng, _DEMONYM)
        stem = stem.rstrip("aeiou") or stem
        name = names.make(lambda r, s=stem, x=suf: s + x)
        capital = Entity("city", names.word(), "shared")
        c = Entity("country", name, "shared", {
            "demonym": stem + dem, "capital": capital.name, "region": _pick(rng, _REGIONS),
            "continent": _pick(rng, _CONTINENTS), "independence": _date(rng, 1650, 1990)[0]})
        capital.facts = {"country": name, "founded": rng.randint(700, 1400), "region": _pick(rng, _REGIONS),
                         "population": rng.randrange(400_000, 4_000_000, 1000), "capital_of": name,
                         "census": rng.choice([2010, 2011, 2015, 2020])}
        countries.append((c, capital))
    return countries


@dataclass
class _Group:
    """What the entities of one group (train, dev or test) are made from: the seeded draws, the names, the
    countries by name, and the cities and people made so far (a person is born in one of its cities)."""

    rng: random.Random
    names: _Names
    group: str
    scale: float  # the group's questions / 100 (at least 0.3)
    by_name: dict[str, Entity]  # the countries
    cities: list[Entity] = field(default_factory=list)
    people: list[Entity] = field(default_factory=list)
    surnames: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.surnames = [self.names.word(2, 3) for _ in range(max(12, round(9 * self.scale)))]

    def count(self, per_hundred: float, least: int) -> int:
        return max(least, round(per_hundred * self.scale))

    def demonym(self, city: Entity) -> str:
        return self.by_name[city.facts["country"]].facts["demonym"]

    def person(self, occupation: str, born_lo: int, born_hi: int) -> Entity:
        rng = self.rng
        city = _pick(rng, self.cities)
        gender = _pick(rng, ["he", "she"])
        taken = {p.name for p in self.people if p.facts["occupation"] == occupation}
        twins = [p for p in self.people if p.name not in taken]
        if twins and rng.random() < 0.04:  # the same full name as someone of another trade
            name = _pick(rng, twins).name
        else:
            name = self.names.make(lambda r, family=self.surnames: f"{_word(r, 2)} {_pick(r, family)}")
        born = _date(rng, born_lo, born_hi)
        facts = {"occupation": occupation, "born": born, "city": city.name, "demonym": self.demonym(city),
                 "country": city.facts["country"], "pronoun": gender, "date_style": _pick(rng, ["us", "uk"]),
                 "roles": [occupation] + rng.sample(_CO_ROLES[occupation], rng.randint(0, 2))}
        if born[0] < 1925 or (born[0] < 1950 and rng.random() < 0.5):
            facts["died"] = _date(rng, born[0] + 45, born[0] + 90)
        p = Entity("person", name, self.group, facts)
        self.people.append(p)
        return p


def _cities(g: _Group, countries: list[Entity]) -> list[Entity]:
    """A group's cities; a few share a name with one in another country (pages then write "Name, Country")."""
    rng, cities = g.rng, []
    for _ in range(g.count(4, 8)):
        country = _pick(rng, countries)
        name = g.names.make(lambda r: _pick(r, ["{w}", "{w}", "{w}", "Port {w}", "New {w}", "{w} Falls"]).format(
            w=_word(r, r.randint(2, 3))))
        city = Entity("city", name, g.group, {
            "country": country.name, "founded": rng.randint(800, 1900), "region": _pick(rng, _REGIONS),
            "population": rng.randrange(20_000, 2_500_000, 500), "census": rng.choice([2010, 2011, 2015, 2020])})
        twins = [c for c in cities if c.facts["country"] != country.name and "," not in c.name]
        if twins and rng.random() < 0.08:  # a second city of an existing name, in another country:
            twin = _pick(rng, twins)       # pages then write both as "Name, Country"
            city.name = f"{twin.name}, {country.name}"
            twin.name = f"{twin.name}, {twin.facts['country']}"
        cities.append(city)
    return cities


def _companies(g: _Group) -> list[Entity]:
    """Film studios, record labels and other companies, each with its founder."""
    rng, companies = g.rng, []
    for kind, suffixes in [("studio", ["Pictures", "Films", "Studios"]), ("label", ["Records", "Music", "Sound"]),
                           ("company", None)]:
        for _ in range(g.count(3, 3)):
            founded = rng.randint(1850, 2015)
            founder = g.person("entrepreneur", founded - 60, founded - 22)
            if suffixes:
                suffix, industry = _pick(rng, suffixes), {"studio": "film production", "label": "record"}[kind]
            else:
                suffix, industry = _pick(rng, _INDUSTRIES)
            name = g.names.make(lambda r, s=suffix: f"{_word(r, r.randint(2, 3))} {s}")
            founder.facts["company"] = name
            hq = _pick(rng, g.cities)
            companies.append(Entity("company", name, g.group, {
                "kind": kind, "industry": industry, "founded": founded, "founder": founder.name,
                "hq": hq.name, "demonym": g.demonym(hq)}))
    return companies


def _films(g: _Group, studios: list[Entity]) -> list[Entity]:
    """Films with their directors (some direct several) and stars; a few share a title with an older film."""
    rng, films = g.rng, []
    actors = [g.person("actor", 1930, 2000) for _ in range(g.count(4, 6))]
    for _ in range(g.count(6, 8)):
        if films and rng.random() < 0.4:  # a director with several films
            wanted = _pick(rng, films).facts["director"]
            director = next(e for e in g.people if e.name == wanted and e.facts["occupation"] == "film director")
        else:
            director = g.person("film director", 1900, 1990)
        year = rng.randint(director.facts["born"][0] + 24, min(2023, director.facts["born"][0] + 65))
        if films and rng.random() < 0.07:  # a second film of an existing title, another year
            twin = _pick(rng, films)
            if twin.facts["year"] == year:
                continue
            title = twin.name
        else:
            title = g.names.make(lambda r: _pick(r, [
                "The {w} {n}", "{w}", "Return to {w}", "A Winter in {w}", "{w}'s {n}", "The Last {w}", "{n} of {w}"
            ]).format(w=_word(r, r.randint(2, 3)), n=_pick(r, _FILM_NOUNS)))
        cast = [a for a in actors if a.facts["born"][0] <= year - 16] or actors
        stars = rng.sample(cast, min(len(cast), rng.randint(1, 3)))
        studio = _pick(rng, studios)
        films.append(Entity("film", title, g.group, {
            "year": year, "genre": _pick(rng, _GENRES_FILM), "director": director.name,
            "studio": studio.name, "stars": [s.name for s in stars],
            "demonym": director.facts["demonym"], "festival": _pick(rng, _FESTIVALS)}))
        director.facts.setdefault("films", []).append((title, year))
        for s in stars:
            s.facts.setdefault("films", []).append((title, year))
    return films


def _bands(g: _Group, films: list[Entity], labels: list[Entity]) -> tuple[list[Entity], list[Entity]]:
    """Bands with their members and albums; a few albums are named like a film or a band."""
    rng, bands, albums = g.rng, [], []
    for _ in range(g.count(3, 6)):
        formed = rng.randint(1960, 2018)
        name = g.names.make(lambda r: _pick(r, ["The {w}s", "{w} {n}", "{w}"]).format(
            w=_word(r, r.randint(2, 3)), n=_pick(r, _BAND_NOUNS)))
        members = [g.person("musician", formed - 35, formed - 17) for _ in range(rng.randint(2, 4))]
        for k, m in enumerate(members):
            m.facts["band"] = name
            m.facts["band_role"] = ["lead vocalist", "guitarist", "bassist", "drummer"][k]
        city = _pick(rng, g.cities)
        band = Entity("band", name, g.group, {
            "formed": formed, "city": city.name, "genre": _pick(rng, _GENRES_MUSIC),
            "members": [m.name for m in members], "demonym": g.demonym(city)})
        bands.append(band)
        year = formed
        for i in range(rng.randint(1, 3)):
            if year >= 2022:
                break
            year = rng.randint(year + 1, min(2023, year + 6))
            named = {a.name for a in albums}
            pool = [f.name for f in films if f.name not in named] + [b.name for b in bands
                                                                     if b is not band and b.name not in named]
            if pool and rng.random() < 0.12:  # an album named like a film or a band
                title = _pick(rng, pool)
            else:
                title = g.names.make(lambda r: _pick(r, [
                    "{w}", "Songs for {w}", "{a} {w}", "The {w} Sessions", "Nights in {w}"
                ]).format(w=_word(r, r.randint(2, 3)), a=_pick(r, _ALBUM_WORDS)))
            albums.append(Entity("album", title, g.group, {
                "band": name, "year": year, "released": (year, rng.randint(1, 12), rng.randint(1, 28)),
                "label": _pick(rng, labels).name, "number": i + 1, "genre": band.facts["genre"],
                "date_style": _pick(rng, ["us", "uk"])}))
        band.facts["albums"] = [a.name for a in albums if a.facts["band"] == name]
    return bands, albums


def _disambiguate(entities: list[Entity], rng: random.Random) -> None:
    """Give every entity a unique page title, as Wikipedia does when names collide: one of them may keep
    the plain name (the primary topic), the others get a bracket: `(film)`, `(1998 film)`, `(album)`,
    `(band)`, `(director)`. (Two cities of one name are already written `Name, Country`.)"""
    by_name: dict[str, list[Entity]] = {}
    for e in entities:
        by_name.setdefault(e.name.lower(), []).append(e)
    for same in by_name.values():
        if len(same) == 1:
            same[0].title = same[0].name
            continue
        kinds = [e.kind for e in same]
        for e in same:
            if e.kind == "film":
                e.title = f"{e.name} ({e.facts['year']} film)" if kinds.count("film") > 1 else f"{e.name} (film)"
            elif e.kind == "album":
                e.title = f"{e.name} ({e.facts['band']} album)" if kinds.count("album") > 1 else f"{e.name} (album)"
            elif e.kind == "person":
                trade = _DISAMBIG[e.facts["occupation"]]
                if e.facts["pronoun"] == "she":
                    trade = {"actor": "actress", "businessman": "businesswoman"}.get(trade, trade)
                e.title = f"{e.name} ({trade})"
            else:
                e.title = f"{e.name} ({e.kind})"
        if rng.random() < 0.5:  # the primary topic keeps the plain title
            same[0].title = same[0].name
        titles = [e.title.lower() for e in same]
        if len(set(titles)) < len(titles):
            raise RuntimeError(f"two pages would share the title {same[0].title!r}")


# --------------------------------------------------------------------------- articles
# An article is a list of (sentence, facts it states); every fact is stated once, so it has one
# sentence index. The lead sentence comes first, then the body in a shuffled order, then filler.

def _person_article(e: Entity, g, rng) -> list[tuple[str, tuple]]:
    f = e.facts
    he, his = f["pronoun"].capitalize(), {"he": "his", "she": "her"}[f["pronoun"]]
    surname = e.name.split()[-1]
    born = format_date(f["born"], f["date_style"])
    life = f"born {born}" if "died" not in f else f"{born} – {format_date(f['died'], f['date_style'])}"
    is_ = "was" if "died" in f else "is"
    roles = _join(f["roles"])
    lead = [(f"{e.name} ({life}) {is_} {_a(f['demonym'])} {roles}.", ("born", "demonym", "occupation")),
            (f"{e.name} ({life}) {is_} {_a(f['demonym'])} {roles} from {f['city']}.",
             ("born", "demonym", "occupation", "city"))]
    out = [_pick(rng, lead)]
    body = []
    if "city" not in out[0][1]:
        body.append((_pick(rng, [f"{he} was born in {f['city']}.",
                                 f"Born in {f['city']}, {f['pronoun']} moved to the capital as a teenager.",
                                 f"{surname} was born and raised in {f['city']}."]), ("city",)))
    if f.get("films"):
        listed = _join([f"{t} ({y})" for t, y in f["films"]])
        verb = "directing" if f["occupation"] == "film director" else "starring in"
        body.append((_pick(rng, [f"{he} is best known for {verb} {listed}.",
                                 f"{surname}'s films include {listed}."]), ("films",)))
    if f.get("band"):
        body.append((_pick(rng, [f"{he} is the {f['band_role']} of the band {f['band']}.",
                                 f"{surname} is best known as the {f['band_role']} of {f['band']}."]), ("band",)))
    if f.get("company"):
        body.append((_pick(rng, [f"{he} is the founder of {f['company']}.",
                                 f"{surname} founded {f['company']}, which {his} family still owns."]), ("company",)))
    rng.shuffle(body)
    filler = [f"{he} studied at the {_pick(rng, _SCHOOLS).format(w=_word(rng, 2))}.",
              f"In {min(2023, f['born'][0] + rng.randint(25, 40))}, {f['pronoun']} received the {_pick(rng, _AWARDS)} "
              "Award.",
              f"{surname} has given few interviews about {his} private life.",
              f"{he} lived in {_word(rng, 2)} in the {min(2010, f['born'][0] // 10 * 10 + 10 * rng.randint(2, 5))}s."]
    rng.shuffle(filler)
    return out + body + [(s, ()) for s in filler[: max(rng.randint(1, 2), 2 - len(body))]]


def _film_article(e: Entity, g, rng) -> list[tuple[str, tuple]]:
    f = e.facts
    stars = _join(f["stars"])
    lead = [(f"{e.name} is a {f['year']} {f['demonym']} {f['genre']} film directed by {f['director']}.",
             ("year", "genre", "director")),
            (f"{e.name} is a {f['year']} {f['genre']} film written and directed by {f['director']} and starring "
             f"{stars}.", ("year", "genre", "director", "stars")),
            (f"{e.name} is a {f['demonym']} {f['genre']} film released in {f['year']}.", ("year", "genre"))]
    out = [_pick(rng, lead)]
    said = set(out[0][1])
    body = []
    if "director" not in said:
        body.append((_pick(rng, [f"It was directed by {f['director']} and produced by {f['studio']}.",
                                 f"The film was directed by {f['director']} for {f['studio']}."]),
                     ("director", "studio")))
        said.add("studio")
    if "stars" not in said:
        body.append((_pick(rng, [f"It stars {stars}.", f"The film stars {stars}.",
                                 f"{stars} {'star' if len(f['stars']) > 1 else 'stars'} in the leading roles."]),
                     ("stars",)))
    if "studio" not in said:
        body.append((_pick(rng, [f"The film was produced by {f['studio']}.",
                                 f"It was produced by {f['studio']} on a small budget.",
                                 f"{f['studio']} produced the film."]), ("studio",)))
    rng.shuffle(body)
    filler = [f"It premiered at the {f['festival']} Film Festival in {_pick(rng, _MONTHS)} {f['year']}.",
              f"The film runs for {rng.randint(80, 150)} minutes.",
              "It received mixed reviews from critics, who praised its score.",
              f"The story follows a {_pick(rng, ['young teacher', 'retired sailor', 'journalist', 'widow'])} "
              f"in a small town in the {_pick(rng, _REGIONS)}."]
    rng.shuffle(filler)
    return out + body + [(s, ()) for s in filler[: rng.randint(1, 2)]]


def _band_article(e: Entity, g, rng) -> list[tuple[str, tuple]]:
    f = e.facts
    members = _join(f["members"])
    lead = [(f"{e.name} is {_a(f['demonym'])} {f['genre']} band formed in {f['city']} in {f['formed']}.",
             ("demonym", "genre", "city", "formed")),
            (f"{e.name} are {_a(f['demonym'])} {f['genre']} band from {f['city']}.",
             ("demonym", "genre", "city"))]
    out = [_pick(rng, lead)]
    body = []
    if "formed" not in out[0][1]:
        body.append((_pick(rng, [f"The band formed in {f['formed']}.",
                                 f"Formed in {f['formed']}, the band toured widely in its first years."]), ("formed",)))
    body.append((_pick(rng, [f"The band consists of {members}.", f"Its members are {members}.",
                             f"The lineup consists of {members}."]), ("members",)))
    if f.get("albums"):
        body.append((_pick(rng, [f"Their debut album, {f['albums'][0]}, was well received.",
                                 f"The band released {f['albums'][0]} as their first album."]), ("albums",)))
    rng.shuffle(body)
    filler = [f"They rehearse in an old {_word(rng, 2)} warehouse.", "The band is known for long live shows."]
    return out + body + [(_pick(rng, filler), ())]


def _album_article(e: Entity, g, rng) -> list[tuple[str, tuple]]:
    f = e.facts
    ordinal = {1: "debut", 2: "second", 3: "third"}[f["number"]]
    released = format_date(f["released"], f["date_style"])
    band = g["by_name_kind"][(f["band"], "band")]
    lead = [(f"{e.name} is the {ordinal} studio album by {band.facts['demonym']} {f['genre']} band {f['band']}.",
             ("number", "band", "genre")),
            (f"{e.name} is the {ordinal} album by {f['band']}, released in {f['year']}.", ("number", "band", "year"))]
    out = [_pick(rng, lead)]
    body = []
    if "year" in out[0][1]:
        body.append((_pick(rng, [f"It was released by {f['label']}.", f"{f['label']} released it."]), ("label",)))
    else:
        body.append((_pick(rng, [f"It was released on {released} through {f['label']}.",
                                 f"The album was released on {released} by {f['label']}."]), ("year", "label")))
    filler = [f"It was recorded in {rng.randint(3, 19)} days.", f"The album has {rng.randint(8, 14)} tracks.",
              f"Its cover shows a {_word(rng, 2).lower()} lamp."]
    rng.shuffle(filler)
    return out + body + [(s, ()) for s in filler[: rng.randint(1, 2)]]


def _company_article(e: Entity, g, rng) -> list[tuple[str, tuple]]:
    f = e.facts
    what = {"studio": "film production company", "label": "record label"}.get(f["kind"], f"{f['industry']} company")
    lead = [(f"{e.name} is {_a(f['demonym'])} {what} headquartered in {f['hq']}.", ("hq", "kind")),
            (f"{e.name} is {_a(f['demonym'])} {what} founded in {f['founded']} by {f['founder']}.",
             ("founded", "founder", "kind"))]
    out = [_pick(rng, lead)]
    body = []
    if "founder" not in out[0][1]:
        body.append((_pick(rng, [f"It was founded in {f['founded']} by {f['founder']}.",
                                 f"The company was established by {f['founder']} in {f['founded']}."]),
                     ("founded", "founder")))
    if "hq" not in out[0][1]:
        body.append((_pick(rng, [f"It is headquartered in {f['hq']}.",
                                 f"The company has its head office in {f['hq']}."]), ("hq",)))
    filler = [f"It employs about {rng.randint(2, 90)}00 people.", "It has offices in three countries."]
    return out + body + [(_pick(rng, filler), ())]


def _city_article(e: Entity, g, rng) -> list[tuple[str, tuple]]:
    f, name = e.facts, e.name.split(", ")[0]
    pop = f"{f['population']:,}"
    lead = [(f"{name} is a city in the {f['region']} of {f['country']}.", ("country",)),
            (f"{name} is a city in {f['country']}, founded in {f['founded']}.", ("country", "founded"))]
    out = [_pick(rng, lead)]
    body = [(f"As of the {f['census']} census, the city had a population of {pop}.", ("population",))]
    if "founded" not in out[0][1]:
        body.append((_pick(rng, [f"It was founded in {f['founded']}.",
                                 f"The first settlement there dates from {f['founded']}."]), ("founded",)))
    if "capital_of" in f:
        body.append((f"It is the capital and largest city of {f['capital_of']}.", ("capital_of",)))
    rng.shuffle(body)
    filler = ["It is known for its covered markets.", f"The {_word(rng, 2)} river runs through the city."]
    return out + body + [(_pick(rng, filler), ())]


def _country_article(e: Entity, g, rng) -> list[tuple[str, tuple]]:
    f = e.facts
    return [(f"{e.name} is a country on the {f['continent']} continent.", ("continent",)),
            (f"Its capital and largest city is {f['capital']}.", ("capital",)),
            (f"{e.name} became independent in {f['independence']}.", ("independence",)),
            (f"Its people and language are called {f['demonym']}.", ("demonym",)),
            (f"Most of its people live in the {f['region']}.", ("region",))]


_ARTICLES = {"person": _person_article, "film": _film_article, "band": _band_article, "album": _album_article,
             "company": _company_article, "city": _city_article, "country": _country_article}


def write_article(e: Entity, g: dict, rng: random.Random) -> tuple[list[str], dict[str, int]]:
    """The sentences of an entity's article and, for each fact it states, the index of its sentence."""
    sentences, where = [], {}
    for text, facts in _ARTICLES[e.kind](e, g, rng):
        for key in facts:
            where.setdefault(key, len(sentences))
        sentences.append(text)
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
    reasoning: str = ""  # comparisons: how the two read values decide it
    subquestions: list = field(default_factory=list)  # [(sub-question, its answer), ...] in the planner's order


def _value(e: Entity, key: str) -> str:
    """A fact as the page writes it, i.e. as an answer: a date in the person's style, a name, a year."""
    f = e.facts
    if key == "born":
        return format_date(f["born"], f["date_style"])
    if key == "born_year":
        return str(f["born"][0])
    if key == "population":
        return f"{f['population']:,}"
    if key == "lead_star":
        return f["stars"][0]
    if key == "lead_vocalist":
        return f["members"][0]
    return str(f[key])


def _named(template: str, e: Entity, rng, asked: str = "") -> str:
    """A question template with {x} (or {X} at its start) filled with the entity as `_naming` names it."""
    return _fill(template, _naming(e, rng, asked))


def _naming(e: Entity, rng, asked: str = "") -> str:
    """The entity as HotpotQA's questions name it: with its kind ("the album X"), often with what its
    page's lead says of it ("the 1998 Drenlandic drama film X", "the jazz band X", "the Drenlandic film
    director X"), never the fact `asked`."""
    f = e.facts
    said = {"year": str(f.get("year", "")), "genre": f.get("genre", ""), "demonym": f.get("demonym", ""),
            "occupation": f.get("occupation", "")}
    keep = {k: v for k, v in said.items() if v and k != asked and not (asked == "born" and k == "year")}
    words = [keep[k] for k in ("year", "demonym", "genre") if k in keep and rng.random() < 0.45]
    if e.kind in ("film", "album", "band"):
        x = f"the {' '.join(words + [e.kind])} {e.name}"
    elif e.kind == "person" and "occupation" in keep and rng.random() < 0.4:
        x = f"the {' '.join([keep['demonym']] if 'demonym' in keep and rng.random() < 0.5 else [])} " \
            f"{keep['occupation']} {e.name}".replace("the  ", "the ")
    elif e.kind == "company" and rng.random() < 0.4:
        what = {"studio": "film studio", "label": "record label"}.get(f["kind"], "company")
        x = f"the {what} {e.name}"
    else:
        x = e.name
    return x


def _fill(template: str, x: str) -> str:
    template = "{X}" + template[3:] if template.startswith("{x}") else template
    return template.replace("{X}", x[0].upper() + x[1:]).replace("{x}", x)


_ANSWER_FACT = {"born": "born", "born_year": "born", "city": "city", "hq": "hq", "population": "population",
                "lead_star": "stars", "lead_vocalist": "members"}


# The planner's sub-questions (`subquestions` of a record): one plain question per fact read, in order;
# a later hop names the entity the earlier one found by its role ("that director"), since the plan is
# written before anything is found. Worded without the rng, so adding them changed no question.
_ASK = {  # (entity kind, fact) -> a sub-question about {x}
    ("film", "director"): "Who directed {x}?", ("film", "lead_star"): "Who is the lead actor of {x}?",
    ("film", "studio"): "Which studio produced {x}?", ("film", "year"): "In what year was {x} released?",
    ("film", "genre"): "What genre of film is {x}?", ("album", "band"): "Which band recorded {x}?",
    ("album", "label"): "Which label released {x}?", ("album", "year"): "In what year was {x} released?",
    ("company", "founder"): "Who founded {x}?", ("company", "hq"): "In which city is {x} headquartered?",
    ("company", "founded"): "In what year was {x} founded?", ("band", "city"): "In which city was {x} formed?",
    ("band", "formed"): "In what year was {x} formed?", ("band", "genre"): "What kind of music does {x} play?",
    ("band", "lead_vocalist"): "Who is the lead vocalist of {x}?", ("person", "band"): "Which band does {x} play in?",
    ("person", "company"): "Which company did {x} found?", ("person", "city"): "In which city was {x} born?",
    ("person", "born"): "When was {x} born?", ("person", "born_year"): "In what year was {x} born?",
    ("person", "demonym"): "What nationality is {x}?", ("person", "occupation"): "What is the occupation of {x}?",
    ("city", "country"): "In which country is {x}?", ("city", "population"): "What is the population of {x}?",
    ("country", "capital"): "What is the capital of {x}?",
}
_ROLE = {"director": "director", "lead_star": "actor", "studio": "studio", "band": "band", "label": "label",
         "founder": "founder", "hq": "city", "city": "city", "country": "country", "company": "company",
         "lead_vocalist": "singer"}


def _each(a: Entity, b: Entity, fact: str) -> list[tuple[str, str]]:
    """A comparison's sub-questions: the fact of each side (the comparison itself is the composing step)."""
    return [(_ASK[(e.kind, fact)].format(x=e.name), _value(e, fact)) for e in (a, b)]


def _bridge(g: dict, rng) -> list[_Q]:
    """Two hops: the subject's page names a second entity whose page holds the answer."""
    chains = [  # subject kind, link fact, answer fact, templates ({x}: the subject as the question names it)
        ("film", "director", "city", ["In which city was the director of {x} born?",
                                      "The director of {x} was born in what city?",
                                      "What city was the director of {x} born in?",
                                      "{X} was directed by a filmmaker born in which city?"]),
        ("film", "director", "born", ["When was the director of {x} born?",
                                      "What is the birth date of the director of {x}?"]),
        ("film", "director", "born_year", ["In what year was the director of {x} born?",
                                           "What year was the director of {x} born?",
                                           "{X} was directed by a man or woman born in what year?"]),
        ("film", "director", "demonym", ["What nationality is the director of {x}?",
                                         "What is the nationality of the filmmaker who directed {x}?",
                                         "{X} was directed by a filmmaker of what nationality?"]),
        ("film", "lead_star", "born", ["When was the star of {x} born?",
                                       "The lead actor of {x} was born on what date?"]),
        ("film", "lead_star", "city", ["Where was the lead actor of {x} born?",
                                       "The star of {x} was born in which city?"]),
        ("film", "studio", "founder", ["Who founded the studio that produced {x}?",
                                       "{X} was produced by a company founded by whom?"]),
        ("film", "studio", "hq", ["In which city is the studio that produced {x} headquartered?",
                                  "What city is the company that produced {x} based in?",
                                  "The company that produced {x} is based in what city?"]),
        ("film", "studio", "founded", ["In what year was the studio behind {x} founded?"]),
        ("album", "band", "city", ["In which city was the band that recorded {x} formed?",
                                   "{X} was recorded by a band from which city?"]),
        ("album", "band", "formed", ["In what year was the band that made {x} formed?",
                                     "What year was the band that recorded {x} formed?",
                                     "{X} is an album by a band formed in what year?"]),
        ("album", "band", "lead_vocalist", ["Who is the lead vocalist of the band that released {x}?"]),
        ("album", "label", "founder", ["Who founded the record label that released {x}?",
                                       "Which entrepreneur founded the label that released {x}?"]),
        ("album", "label", "hq", ["Where is the label that released {x} headquartered?"]),
        ("company", "founder", "city", ["Where was the founder of {x} born?",
                                        "The founder of {x} was born in which city?"]),
        ("company", "founder", "born", ["When was the founder of {x} born?"]),
        ("company", "founder", "demonym", ["What nationality is the founder of {x}?",
                                           "What is the nationality of the person who founded {x}?"]),
        ("company", "hq", "country", ["In which country is {x} headquartered?"]),
        ("band", "city", "country", ["In which country was {x} formed?"]),
        ("band", "lead_vocalist", "born", ["When was the lead vocalist of {x} born?",
                                           "The frontman of {x} was born on what date?"]),
        ("person", "band", "formed", ["{x} is a member of a band formed in what year?",
                                      "In what year was the band that {x} plays in formed?"]),
        ("person", "band", "city", ["{x} plays in a band from which city?"]),
        ("person", "company", "founded", ["When was the company founded by {x} established?"]),
        ("person", "company", "hq", ["{x} founded a company headquartered in which city?"]),
        ("city", "country", "capital", ["What is the capital of the country where {x} lies?"]),
    ]
    target_kind = {"director": "person:film director", "lead_star": "person:actor", "studio": "company",
                   "band": "band", "label": "company", "founder": "person:entrepreneur", "hq": "city", "city": "city",
                   "country": "country", "company": "company", "lead_vocalist": "person:musician"}
    out = []
    for kind, link, answer, templates in chains:
        for x in g[kind]:
            fact = _ANSWER_FACT.get(link, link)
            if fact not in x.facts:
                continue
            y = g["by_name_kind"].get((_value(x, link), target_kind[link]))
            if y is None or _ANSWER_FACT.get(answer, answer) not in y.facts:
                continue
            template = _pick(rng, templates)
            named = _naming(x, rng, link)  # the first sub-question names it as the question does (titles repeat)
            subs = [(_ASK[(x.kind, link)].format(x=named), _value(x, link)),
                    (_ASK[(y.kind, answer)].format(x=f"that {_ROLE[link]}"), _value(y, answer))]
            out.append(_Q(_fill(template, named), _value(y, answer), "bridge", "medium",
                          [(x, fact), (y, _ANSWER_FACT.get(answer, answer))], f"bridge/{kind}-{link}-{answer}",
                          subquestions=subs))
    for x in g["album"]:  # three hops: album -> band -> city -> country
        band = g["by_name_kind"][(x.facts["band"], "band")]
        city = g["by_name_kind"][(band.facts["city"], "city")]
        out.append(_Q(f"In which country was the band behind the album {x.name} formed?", city.facts["country"],
                      "bridge", "hard", [(x, "band"), (band, "city"), (city, "country")], "bridge/album-band-country",
                      subquestions=[(_ASK[("album", "band")].format(x=x.name), band.name),
                                    (_ASK[("band", "city")].format(x="that band"), city.name),
                                    (_ASK[("city", "country")].format(x="that city"), city.facts["country"])]))
    return out


def _comparison(g: dict, rng) -> list[_Q]:
    """Which of two has the larger/smaller value; yes/no questions that need both pages read."""
    specs = [  # kind, fact, templates answering the earlier/smaller, templates answering the later/larger, words
        ("film", "year", ["Which film came out first, {a} or {b}?", "Which film was released first, {a} or {b}?",
                          "Which came first, the film {a} or the film {b}?"],
         ["Which film is more recent, {a} or {b}?", "Which film was released later, {a} or {b}?"],
         ("came out in", "earlier", "later")),
        ("company", "founded", ["Which company was founded first, {a} or {b}?", "Which is older, {a} or {b}?"],
         ["Which was founded more recently, {a} or {b}?"], ("was founded in", "earlier", "later")),
        ("person", "born", ["Who was born first, {a} or {b}?", "Who is older, {a} or {b}?"],
         ["Who is younger, {a} or {b}?", "Who was born later, {a} or {b}?"], ("was born on", "earlier", "later")),
        ("band", "formed", ["Which band formed earlier, {a} or {b}?", "Which band was formed first, {a} or {b}?"],
         ["Which band is newer, {a} or {b}?"], ("formed in", "earlier", "later")),
        ("city", "population", ["Which city is smaller, {a} or {b}?", "Which has the smaller population, {a} or {b}?"],
         ["Which city has a higher population, {a} or {b}?", "Which city has more inhabitants, {a} or {b}?"],
         ("has a population of", "smaller", "larger")),
        ("album", "year", ["Which album was released first, {a} or {b}?"], ["Which album is newer, {a} or {b}?"],
         ("came out in", "earlier", "later")),
    ]
    out = []
    for kind, fact, small, large, (verb, lo_word, hi_word) in specs:
        pool = g[kind]
        for _ in range(len(pool)):
            a, b = rng.sample(pool, 2)
            if a.facts[fact] == b.facts[fact] or a.name == b.name:
                continue
            larger = rng.random() < 0.5
            winner = max((a, b), key=lambda e: e.facts[fact]) if larger else min((a, b), key=lambda e: e.facts[fact])
            text = _pick(rng, large if larger else small).format(a=a.name, b=b.name)
            va, vb = _value(a, fact), _value(b, fact)
            a_lower = a.facts[fact] < b.facts[fact]
            word = lo_word if a_lower else hi_word
            reasoning = f"{a.name} {verb} {va} and {b.name} {verb} {vb}; {va} is {word} than {vb}, " \
                        f"so the answer is {winner.name}."
            out.append(_Q(text, winner.name, "comparison", "medium", [(a, fact), (b, fact)],
                          f"comparison/{kind}-{fact}", reasoning, _each(a, b, fact)))
    out += _yes_no(g, rng)
    out += _shared_value(g, rng)
    return out


def _yes_no(g: dict, rng) -> list[_Q]:
    """Yes/no questions whose answer needs a value read from each of two pages."""
    specs = [  # kind, fact, templates ({v}: a's value), how a page's value is said ({e}, {v}, {av}: a/an v)
        ("person", "demonym", ["Were {a} and {b} of the same nationality?", "Are {a} and {b} both {v}?",
                               "Do {a} and {b} share a nationality?"], "{e} is {v}"),
        ("person", "occupation", ["Are {a} and {b} both {v}s?", "Do {a} and {b} have the same profession?"],
         "{e} is {av}"),
        ("company", "hq", ["Are {a} and {b} headquartered in the same city?"], "{e} is headquartered in {v}"),
        ("film", "director", ["Were {a} and {b} directed by the same person?"], "{e} was directed by {v}"),
        ("film", "genre", ["Are {a} and {b} both {v} films?"], "{e} is {av} film"),
        ("city", "country", ["Are {a} and {b} in the same country?", "Are {a} and {b} both located in {v}?"],
         "{e} is in {v}"),
        ("band", "genre", ["Do {a} and {b} play the same kind of music?", "Are {a} and {b} both {v} bands?"],
         "{e} plays {v}"),
        ("film", "studio", ["Were {a} and {b} produced by the same studio?"], "{e} was produced by {v}"),
    ]
    out = []
    for kind, fact, templates, said in specs:
        pool = g[kind]
        for _ in range(len(pool)):
            a = _pick(rng, pool)
            want_yes = rng.random() < 0.5
            partners = [e for e in pool if e is not a and e.name != a.name
                        and (e.facts[fact] == a.facts[fact]) == want_yes]
            if not partners:
                continue
            b = _pick(rng, partners)
            va, vb = _value(a, fact), _value(b, fact)
            text = _pick(rng, templates).format(a=a.name, b=b.name, v=va)
            verdict = "the same, so the answer is yes" if want_yes else "not the same, so the answer is no"
            sa, sb = said.format(e=a.name, v=va, av=_a(va)), said.format(e=b.name, v=vb, av=_a(vb))
            reasoning = f"{sa} and {sb}: {verdict}."
            out.append(_Q(text, "yes" if want_yes else "no", "comparison", "medium", [(a, fact), (b, fact)],
                          f"yesno/{kind}-{fact}", reasoning, _each(a, b, fact)))
    return out


def _shared_value(g: dict, rng) -> list[_Q]:
    """'What kind of music do A and B play?': a value two pages share, read from both."""
    specs = [("band", "genre", ["What kind of music do {a} and {b} play?", "{a} and {b} play which genre?"]),
             ("film", "genre", ["What kind of film are {a} and {b}?", "{a} and {b} are both films of what genre?"]),
             ("person", "demonym", ["What nationality are {a} and {b}?", "{a} and {b} are both of what nationality?"])]
    out = []
    for kind, fact, templates in specs:
        pool = g[kind]
        for _ in range(len(pool) // 3):
            a = _pick(rng, pool)
            partners = [e for e in pool if e is not a and e.name != a.name and e.facts[fact] == a.facts[fact]]
            if not partners:
                continue
            b = _pick(rng, partners)
            v = _value(a, fact)
            reasoning = f"Both pages say {v}, so the answer is {v}."
            out.append(_Q(_pick(rng, templates).format(a=a.name, b=b.name), v, "comparison", "medium",
                          [(a, fact), (b, fact)], f"shared/{kind}-{fact}", reasoning, _each(a, b, fact)))
    return out


def _single(g: dict, rng) -> list[_Q]:
    specs = [
        ("film", "director", ["Who directed {x}?", "Who is the director of {x}?", "{X} was directed by whom?"]),
        ("film", "year", ["In what year was {x} released?", "When was {x} released?",
                          "What year did {x} come out?"]),
        ("film", "studio", ["Which studio produced {x}?", "{X} was produced by which company?",
                            "What company produced {x}?"]),
        ("film", "lead_star", ["Who starred in {x}?", "Who is the lead actor of {x}?"]),
        ("person", "city", ["In which city was {x} born?", "Where was {x} born?"]),
        ("person", "born", ["When was {x} born?", "What is the birth date of {x}?"]),
        ("person", "demonym", ["What nationality is {x}?", "{x} is a person of what nationality?"]),
        ("company", "founder", ["Who founded {x}?", "{x} was founded by whom?"]),
        ("company", "founded", ["When was {x} founded?", "In what year was {x} established?"]),
        ("company", "hq", ["Where is {x} headquartered?", "{x} is based in which city?"]),
        ("album", "band", ["Which band recorded {x}?", "{X} is an album by which band?"]),
        ("album", "label", ["Which label released {x}?", "{X} was released by which record label?",
                            "What record label released {x}?"]),
        ("band", "city", ["In which city was {x} formed?", "Where is {x} from?", "What city is {x} from?"]),
        ("band", "formed", ["In what year was {x} formed?"]),
        ("city", "country", ["In which country is {x}?"]),
        ("city", "population", ["What was the population of {x} at its latest census?"]),
        ("country", "capital", ["What is the capital of {x}?"]),
    ]
    out = []
    for kind, fact, templates in specs:
        for x in g[kind]:
            key = _ANSWER_FACT.get(fact, fact)
            if key in x.facts:
                out.append(_Q(_named(_pick(rng, templates), x, rng, key), _value(x, fact), "single", "easy", [(x, key)],
                              f"single/{kind}-{fact}"))
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

def _mix(pools: dict[str, list[_Q]], n: int, config: WorldConfig, rng, seen: set) -> list[_Q]:
    """n questions, drawn by the config's shares from the pools, never repeating a question text."""
    want = {"notool": round(n * config.notool_share)}
    rest = n - want["notool"]
    want.update(comparison=round(rest * config.comparison_share), single=round(rest * config.single_share))
    want["bridge"] = n - sum(want.values())
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


def _ranked(retriever, questions: list[str], k: int) -> list[list[int]]:
    """For each question, the indices of the (at most k) pages that share the most words with it (BM25)."""
    import bm25s

    tokens = bm25s.tokenize(questions, stopwords="en", show_progress=False)
    docs, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    return [[int(d) for d, s in zip(row, score, strict=True) if s > 0] for row, score in zip(docs, scores, strict=True)]


def _distractors(ranked: list[str], gold: list[str], n: int, titles: list[str], rng) -> list[str]:
    """The n best-ranked pages that are not gold, as HotpotQA chose its distractors (the pages that
    share the most words with the question); random pages fill up when too few share a word."""
    picked = [t for t in dict.fromkeys(ranked) if t not in gold][:n]
    while len(picked) < n:
        t = _pick(rng, titles)
        if t not in gold and t not in picked:
            picked.append(t)
    return picked


def generate_world(config: WorldConfig) -> tuple[dict[str, list[dict]], list[dict]]:
    """(splits, corpus): question records per split in HotpotQA's distractor schema, and the pages.

    Pure and deterministic: the same config gives the same records.
    """
    import bm25s

    rng = random.Random(f"fireflan-world-{config.seed}")
    sizes = {"train": config.train, "dev": config.dev, "test": config.test}
    names = _Names(rng)
    groups = _build_entities(rng, names, sizes)
    every = [e for g in groups.values() for e in g]
    g_all = {"by_name_kind": {e.key(): e for e in every}}

    pages, where = {}, {}
    for e in every:
        sentences, index = write_article(e, g_all, random.Random(f"{config.seed}-article-{e.title}"))
        pages[e.title], where[e.title] = sentences, index
    titles = list(pages)
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize([f"{t}. {' '.join(pages[t])}" for t in titles], stopwords="en",
                                   show_progress=False), show_progress=False)

    splits, seen = {}, set()
    for split, n in sizes.items():
        qrng = random.Random(f"{config.seed}-questions-{split}")
        own = [e for e in every if e.group == split or (split == "train" and e.group == "shared")]
        g = {k: [e for e in own if e.kind == k] for k in _ARTICLES}
        g["by_name_kind"] = {e.key(): e for e in every if e.group in ("shared", split)}
        pools = {"bridge": _bridge(g, qrng), "comparison": _comparison(g, qrng), "single": _single(g, qrng),
                 "notool": _notool(qrng, n * 2)}
        questions = _mix(pools, n, config, qrng, seen)
        ranked = _ranked(retriever, [q.question for q in questions], config.paragraphs + 4)
        records = []
        for i, q in enumerate(questions):
            gold = list(dict.fromkeys(e.title for e, _ in q.facts))
            distract = _distractors([titles[d] for d in ranked[i]], gold, config.paragraphs - len(gold), titles, qrng)
            context = [[t, pages[t]] for t in gold + distract]
            qrng.shuffle(context)
            rec = {"schema": SCHEMA_QUESTION, "_id": f"world-{config.seed}-{split}-{i:05d}", "task": "world",
                   "question": q.question, "answer": q.answer, "type": q.type, "level": q.level, "kind": q.kind,
                   "supporting_facts": [[e.title, where[e.title][k]] for e, k in q.facts], "context": context}
            if q.reasoning:
                rec["reasoning"] = q.reasoning
            rec["subquestions"] = [list(sq) for sq in q.subquestions] or [[q.question, q.answer]]
            records.append(rec)
        splits[split] = records
    corpus = [{"schema": SCHEMA_PAGE, "title": e.title, "text": " ".join(pages[e.title]),
               "sentences": pages[e.title], "kind": e.kind} for e in every]
    return splits, corpus


def write_world(config: WorldConfig, out) -> dict[str, int]:
    """Generate the world and write {train,dev,test}.jsonl and corpus.jsonl under `out`."""
    splits, corpus = generate_world(config)
    with file_set(out, "fireflan world") as out:
        counts = {name: write_jsonl(out / f"{name}.jsonl", records) for name, records in splits.items()}
        counts["corpus"] = write_jsonl(out / "corpus.jsonl", corpus)
    return counts
