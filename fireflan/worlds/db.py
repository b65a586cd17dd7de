"""DB tasks in the shape of AgentBench's: one table, a question or an instruction, a reference SQL.

    python -m fireflan dbworld --seed 0 --out runs/dbworld
    # -> runs/dbworld/{train,dev,test}.jsonl, one AgentBench DB record a line

Most tables (`list_share`, 3/4) are Wikipedia-style lists of invented rows, as AgentBench's come from
WikiSQL and WikiTQ: standings, season results, award winners, ships, buildings, episodes, medal
tallies, draft picks..., named in the styles the records use (`Football Standings`,
`football_standings`; two in five with a season, years or place: `Football Standings 1987–88`,
`schools_in_Penound`), every column TEXT, numbers written as text (`'18'`, `'5,200'`, `'W 27–20'`),
column names with spaces, signs and brackets (`Tonnage (GRT)`, `School/Club Team`, `No.`). The rest
hold the embedded world's entities (films, cities, bands, albums, companies, people of one split, so a
test table holds no entity a training table holds). Task types and their shares follow AgentBench's
dev set: a third INSERT, a third UPDATE, a third queries (other, counting, comparison, ranking,
aggregation-SUM/MIN/MAX/AVG), worded as its records are: WikiSQL's "What is the X when the Y is Z?",
"Which X has a Y of Z, and a W smaller than 17?", WikiTQ's lower-case questions, INSERTs with the
values listed or told as a sentence ("On 2 March 1944, Bidux Queen, a ship registered in ..."),
UPDATEs of one or two columns. The reference SQL is written as sqlite runs MySQL's habits: names in
backticks, values as quoted text, numbers kept as text compared with `CAST(... AS REAL)`.

The generator runs the SQL in the task's database to write the record's `label` (a query's answer)
or `answer_md5` (the table's hash after an INSERT or UPDATE), so every record is solvable by
construction.

    "What is the Tonnage (GRT) when the Name is Najix Queen?" + shipwrecks -> label ["6,548"],
    sql: SELECT `Tonnage (GRT)` FROM `shipwrecks` WHERE `Name` = 'Najix Queen'
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from fireflan.io import file_set, write_jsonl
from fireflan.options import opt
from fireflan.tools.sql import STATEMENT_TYPES, SqlEnv, answers_from_rows
from fireflan.worlds.wiki import _MONTHS, WorldConfig, _build_entities, _Names, _word

SCHEMA_DBTASK = "fireflan.dbtask/1"
SPLITS = ("train", "dev", "test")
# the share of each task type, as in AgentBench's dev set (1/3 queries, 1/3 INSERT, 1/3 UPDATE; no
# DELETE), the rarest query types a little above theirs
TYPE_SHARES = {"other": 0.08, "counting": 0.06, "comparison": 0.07, "ranking": 0.06, "aggregation-SUM": 0.04,
               "aggregation-MIN": 0.03, "aggregation-MAX": 0.03, "aggregation-AVG": 0.03, "INSERT": 0.30,
               "UPDATE": 0.30}


@dataclass
class DBWorldConfig:
    """Options of the DB task generator (`python -m fireflan dbworld --help`)."""

    seed: int = opt(0, "the same seed writes byte-identical files (and uses the entities of the world of that seed)")
    train: int = opt(1000, "tasks in the train split")
    dev: int = opt(100, "tasks in the dev split")
    test: int = opt(100, "tasks in the test split")
    min_rows: int = opt(8, "fewest rows in a task's table")
    max_rows: int = opt(20, "most rows in a task's table")
    list_share: float = opt(0.75, "share of tasks on list tables of invented rows (results, standings, ships...: "
                                  "AgentBench's kind of table); the rest are on the embedded world's entities")

    def __post_init__(self):
        for name in SPLITS:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise ValueError(f"dbworld option {name} must be an integer >= 0, got {getattr(self, name)!r}")
        if not 3 <= self.min_rows <= self.max_rows <= 40:
            raise ValueError(f"dbworld needs 3 <= min_rows <= max_rows <= 40, got {self.min_rows}, {self.max_rows}")
        if not 0.0 <= self.list_share <= 1.0:
            raise ValueError(f"dbworld option list_share must be within 0..1, got {self.list_share}")


# --------------------------------------------------------------------------- tables
# A column: its name, type, the question that asks for it ({k}: the row's key), and what it is:
# `where` (a text column a question filters on: "directed by {v}") or `measure` (a number column).

@dataclass(frozen=True)
class Col:
    name: str
    type: str = "TEXT"
    ask: str = ""
    where: str = ""
    measure: str = ""
    additive: bool = False  # a sum of it means something (population, tracks), unlike years


@dataclass(frozen=True)
class Table:
    kind: str  # the world's entity kind
    name: str
    noun: str
    plural: str
    columns: tuple[Col, ...]  # the first is the key (the entity's name)


TABLES = (
    Table("film", "Film Catalogue", "film", "films", (
        Col("Title"),
        Col("Release year", "INTEGER", "In which year was the film {k} released?", measure="release year"),
        Col("Genre", ask="What genre is the film {k}?", where="in the {v} genre"),
        Col("Director", ask="Who directed the film {k}?", where="directed by {v}"),
        Col("Studio", ask="Which studio produced the film {k}?", where="produced by {v}"),
        Col("Running time", "INTEGER", "How many minutes does the film {k} run?", measure="running time in minutes",
            additive=True))),
    Table("city", "City Register", "city", "cities", (
        Col("City"),
        Col("Country", ask="In which country is {k}?", where="in {v}"),
        Col("Founded", "INTEGER", "In which year was {k} founded?", measure="founding year"),
        Col("Population", "INTEGER", "What is the population of {k}?", measure="population", additive=True))),
    Table("band", "Band Directory", "band", "bands", (
        Col("Band"),
        Col("Genre", ask="What genre of music does {k} play?", where="playing {v}"),
        Col("Home city", ask="In which city was {k} formed?", where="from {v}"),
        Col("Formed", "INTEGER", "In which year was {k} formed?", measure="formation year"),
        Col("Members", "INTEGER", "How many members does {k} have?", measure="number of members", additive=True))),
    Table("album", "Album Releases", "album", "albums", (
        Col("Album"),
        Col("Band", ask="Which band recorded the album {k}?", where="by {v}"),
        Col("Year", "INTEGER", "In which year was the album {k} released?", measure="release year"),
        Col("Record label", ask="Which label released the album {k}?", where="released on {v}"),
        Col("Tracks", "INTEGER", "How many tracks are on the album {k}?", measure="number of tracks",
            additive=True))),
    Table("company", "Company Register", "company", "companies", (
        Col("Company"),
        Col("Industry", ask="In which industry is {k}?", where="in the {v} industry"),
        Col("Founded", "INTEGER", "In which year was {k} founded?", measure="founding year"),
        Col("Founder", ask="Who founded {k}?", where="founded by {v}"),
        Col("Headquarters", ask="Where is {k} headquartered?", where="headquartered in {v}"),
        Col("Employees", "INTEGER", "How many people does {k} employ?", measure="number of employees",
            additive=True))),
    Table("person", "People Index", "person", "people", (
        Col("Name"),
        Col("Occupation", ask="What is the occupation of {k}?", where="who work as {v}s"),
        Col("Birth year", "INTEGER", "In which year was {k} born?", measure="birth year"),
        Col("Birthplace", ask="Where was {k} born?", where="born in {v}"),
        Col("Country", ask="Which country is {k} from?", where="from {v}"))),
)


def row_of(table: Table, e, seed: int) -> list:
    """A world entity as a row of `table`; numbers the world does not state (a film's running time,
    an album's tracks, a company's staff) are drawn once per entity from the seed."""
    f = e.facts

    def drawn(what, lo, hi, step=1):
        return random.Random(f"{seed}-{what}-{e.name}").randrange(lo, hi + 1, step)

    if table.kind == "film":
        return [e.name, f["year"], f["genre"], f["director"], f["studio"], drawn("runtime", 78, 172)]
    if table.kind == "city":
        return [e.name, f["country"], f["founded"], f["population"]]
    if table.kind == "band":
        return [e.name, f["genre"], f["city"], f["formed"], len(f["members"])]
    if table.kind == "album":
        return [e.name, f["band"], f["year"], f["label"], drawn("tracks", 7, 16)]
    if table.kind == "company":
        return [e.name, f["industry"], f["founded"], f["founder"], f["hq"], drawn("staff", 20, 4000, 10)]
    return [e.name, f["occupation"], f["born"][0], f["city"], f["country"]]


# --------------------------------------------------------------------------- list tables
# AgentBench's tables are Wikipedia's lists (WikiSQL, WikiTQ): results, standings, winners, ships...,
# every column TEXT, numbers written as text ('18', '5,200', '2–1'). A family is one such list, with
# names in the styles the records use ('Football Standings', 'football_standings') and a generator
# for each column's values: invented names, dates written two ways, scores with en dashes.

@dataclass(frozen=True)
class Family:
    names: tuple[str, ...]  # the table's name, in the styles the records use
    noun: str  # what a row is: "club"
    plural: str
    columns: tuple[tuple[str, str], ...]  # (column name, value kind; see `list_value`)
    key: int = 0  # the column that names a row
    said: tuple[str, ...] = ()  # narrative INSERTs: a row told as a sentence ({column name} placeholders)


_SPORTS = ["Tennis", "Athletics", "Swimming", "Cycling", "Rowing", "Fencing", "Judo", "Gymnastics"]
_POSITIONS = ["Quarterback", "Running back", "Wide receiver", "Linebacker", "Tackle", "Safety", "Kicker"]
_PARTIES = ["Liberal", "Labour", "Reform", "National", "Green", "Independent"]
_FATES = ["Sunk", "Damaged", "Captured"]
_CLUB_SUFFIXES = ["FC", "United", "Rovers", "Athletic", "City", "Town", "Wanderers"]
_SURNAME_PREFIXES = ["O'", "D'"]
_TITLE_STARTS = ["The", "A", "Night of the", "Return of the"]
_TITLE_STARTS_APOSTROPHE = ["Don't Leave", "Can't Stop", "That's", "Mother's"]

FAMILIES = (
    Family(("Football Standings", "football_standings", "League Table"), "club", "clubs", (
        ("Position", "int:1:20"), ("Club", "club"), ("Games played", "int:18:38"), ("Wins", "int:0:25"),
        ("Draws", "int:0:12"), ("Losses", "int:0:20"), ("Goals scored", "int:10:80"), ("Points", "int:5:80")), 1,
        ("The club {Club} finished in position {Position} with {Wins} wins, {Draws} draws and {Losses} losses "
         "from {Games played} games, scoring {Goals scored} goals for {Points} points.",)),
    Family(("Season Results", "season_results", "Game Schedule"), "game", "games", (
        ("Week", "int:1:17"), ("Date", "date"), ("Opponent", "club"), ("Result", "result"), ("Game site", "place"),
        ("Attendance", "thousands:20000:90000")), 0,
        ("In week {Week}, on {Date}, the team played {Opponent} at {Game site}; the result was {Result} and "
         "{Attendance} people attended.",)),
    Family(("Award Winners", "award_winners", "Sportsperson of the Year"), "year", "years", (
        ("Year", "year"), ("Winner", "person"), ("Sport", "choice:" + "|".join(_SPORTS)), ("Nation", "nation")), 0,
        ("In {Year}, {Winner} of {Nation} won the award for {Sport}.",)),
    Family(("Shipping Incidents", "shipwrecks", "Ships Sunk"), "ship", "ships", (
        ("Date", "date"), ("Name", "ship"), ("Nationality", "nation"), ("Tonnage (GRT)", "thousands:500:9000"),
        ("Fate", "choice:" + "|".join(_FATES))), 1,
        ("On {Date}, {Name}, a ship registered in {Nationality} with a tonnage of {Tonnage (GRT)} GRT, met the "
         "fate {Fate}.",)),
    Family(("Tallest Buildings", "skyscrapers", "Skyscraper Database"), "building", "buildings", (
        ("Rank", "int:1:40"), ("Name", "building"), ("Height ft / m", "height"), ("Floors", "int:20:95"),
        ("Year", "year"), ("City", "place")), 1,
        ("{Name} in {City}, completed in {Year}, is ranked {Rank} with a height of {Height ft / m} and "
         "{Floors} floors.",)),
    Family(("Episode Guide", "episodes", "Series Episodes"), "episode", "episodes", (
        ("No.", "int:1:60"), ("Title", "title"), ("Directed by", "person"), ("Original air date", "date"),
        ("Viewers (millions)", "decimal:2:15")), 1,
        ("The episode {Title}, number {No.}, directed by {Directed by}, first aired on {Original air date} to "
         "{Viewers (millions)} million viewers.",)),
    Family(("Medal Tally", "olympic_medal_counts", "Medal Table"), "nation", "nations", (
        ("Rank", "int:1:30"), ("Nation", "nation"), ("Gold", "int:0:12"), ("Silver", "int:0:12"),
        ("Bronze", "int:0:12"), ("Total", "int:0:30")), 1,
        ("{Nation}, ranked {Rank}, won {Gold} gold, {Silver} silver and {Bronze} bronze medals, {Total} in "
         "total.",)),
    Family(("Elected Members", "parliament_members", "Members of Parliament"), "member", "members", (
        ("Name", "person"), ("Electorate", "place"), ("Party", "choice:" + "|".join(_PARTIES)),
        ("Date of birth", "date"), ("Term", "term")), 0,
        ("{Name} of the {Party} party, born on {Date of birth}, represented {Electorate} from {Term}.",)),
    Family(("Singles Discography", "singles_chart", "Chart History"), "single", "singles", (
        ("Year", "year"), ("Title", "title"), ("Artist", "person"), ("Peak position", "int:1:40"),
        ("Weeks at No. 1", "int:0:9")), 1,
        ("{Artist}'s single {Title}, released in {Year}, peaked at number {Peak position} and spent "
         "{Weeks at No. 1} weeks at No. 1.",)),
    Family(("Draft Picks", "football_draft", "Football Draft Picks"), "player", "players", (
        ("Round", "int:1:12"), ("Pick", "int:1:300"), ("Player", "person"),
        ("Position", "choice:" + "|".join(_POSITIONS)), ("School/Club Team", "school")), 2,
        ("{Player}, a {Position} from {School/Club Team}, was drafted in round {Round} as pick {Pick}.",)),
    Family(("Race Results", "grand_prix_results", "Race Calendar"), "round", "rounds", (
        ("Round", "int:1:20"), ("Circuit", "place"), ("Date", "date"), ("Pole Position", "person"),
        ("Fastest Lap", "person"), ("Winning Driver", "person")), 1,
        ("At {Circuit} on {Date}, round {Round}, {Pole Position} started from pole, {Fastest Lap} set the "
         "fastest lap and {Winning Driver} won.",)),
    Family(("School Locations", "schools", "School Directory"), "school", "schools", (
        ("School", "school"), ("Location", "place"), ("Founded", "year"), ("Enrollment", "thousands:200:4000"),
        ("Mascot", "choice:Eagles|Tigers|Wolves|Falcons|Bears")), 0,
        ("{School} in {Location}, founded in {Founded}, has {Enrollment} students and the {Mascot} as its "
         "mascot.",)),
    Family(("Golf Champions", "golf_winners", "Championship Winners"), "player", "players", (
        ("Player", "person"), ("Country", "nation"), ("Year(s) won", "years"), ("Total", "int:265:300"),
        ("To par", "par")), 0,
        ("{Player} of {Country} won in {Year(s) won} with a total of {Total}, {To par} to par.",)),
    Family(("Radio Stations", "radio_stations", "Translator Stations"), "station", "stations", (
        ("Call sign", "callsign"), ("Frequency MHz", "decimal:88:108"), ("City of license", "place"),
        ("ERP W", "int:10:250"), ("Class", "choice:A|B|D")), 0,
        ("{Call sign} broadcasts on {Frequency MHz} MHz from {City of license} with {ERP W} W, class {Class}.",)),
)


def list_value(kind: str, rng: random.Random) -> str:
    """One invented value of a column kind, as text. 'thousands:500:9000' -> '5,200'; 'date' -> '2 March 1944'"""
    name, _, args = kind.partition(":")
    if name == "int":
        lo, hi = map(int, args.split(":"))
        return str(rng.randint(lo, hi))
    if name == "thousands":
        lo, hi = map(int, args.split(":"))
        return f"{rng.randrange(lo, hi, 7):,}"
    if name == "decimal":
        lo, hi = map(int, args.split(":"))
        return f"{rng.uniform(lo, hi):.1f}"
    if name == "choice":
        return rng.choice(args.split("|"))
    if name == "year":
        return str(rng.randint(1950, 2022))
    if name == "date":
        y, m, d = rng.randint(1940, 2022), rng.randint(1, 12), rng.randint(1, 28)
        return f"{d} {_MONTHS[m - 1]} {y}" if rng.random() < 0.5 else f"{_MONTHS[m - 1]} {d}, {y}"
    if name == "person":  # now and then an apostrophe (16 of AgentBench's 60 dev tables hold one)
        prefix = rng.choice(_SURNAME_PREFIXES) if rng.random() < 0.12 else ""
        return f"{_word(rng, 2)} {prefix}{_word(rng, rng.randint(2, 3))}"
    if name == "club":
        if rng.random() < 0.1:
            return f"St {_word(rng, 2)}'s {rng.choice(_CLUB_SUFFIXES)}"
        return f"{_word(rng, 2)} {rng.choice(_CLUB_SUFFIXES)}"
    if name in ("place", "nation"):
        return _word(rng, rng.randint(2, 3)) + ("ia" if name == "nation" else "")
    if name == "ship":
        return f"{_word(rng, 2)} {rng.choice(['Maru', 'Star', 'Queen', 'Trader', ''])}".strip()
    if name == "building":
        return f"{_word(rng, 2)} {rng.choice(['Tower', 'Center', 'Plaza', 'Building'])}"
    if name == "school":
        return f"{_word(rng, 2)} {rng.choice(['High School', 'College', 'University', 'Academy'])}"
    if name == "title":
        return f'"{rng.choice(_TITLE_STARTS_APOSTROPHE if rng.random() < 0.15 else _TITLE_STARTS)} {_word(rng, 2)}"'
    if name == "result":
        a, b = rng.randint(10, 45), rng.randint(3, 40)
        return f"{'W' if a > b else 'L'} {max(a, b)}–{min(a, b)}"
    if name == "height":
        m = rng.randint(150, 600)
        return f"{round(m * 3.281):,} / {m}"
    if name == "term":
        start = rng.randint(1950, 2015)
        return f"{start}–{start + rng.randint(2, 12)}"
    if name == "years":
        first = rng.randint(1960, 2010)
        return ", ".join(str(first + k * rng.randint(1, 5)) for k in range(rng.randint(1, 3)))
    if name == "par":
        return rng.choice(["+", "-"]) + str(rng.randint(1, 18))
    if name == "callsign":
        return rng.choice("KW") + str(rng.randint(201, 299)) + "".join(rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ")
                                                                      for _ in range(2))
    raise ValueError(f"unknown column kind {kind!r}")


def qualified_name(name: str, rng: random.Random, share: float = 0.4) -> str:
    """A list's name, now and then with the season, years or place that half of AgentBench's longer names
    carry ('Dallas Cowboys 1986 Season', 'skyscrapers_in_Columbus'), in the name's own style.
    'Football Standings' -> 'Football Standings 1987–88' | '1987 Football Standings' | 'Football Standings of
    Drenlavia' | ...; 'football_standings' -> 'football_standings_in_Drenlavia' | 'football_standings_1987'"""
    if rng.random() >= share:
        return name
    year, place = rng.randint(1950, 2020), list_value("place", rng)
    if "_" in name or name.islower():
        forms = [f"{name}_{year}", f"{name}_in_{place}", f"{place.lower()}_{name}"]
    else:
        forms = [f"{name} {year}", f"{year} {name}", f"{name} {year}–{(year + 1) % 100:02d}", f"{name} of {place}",
                 f"{place} {name}", f"{name} and Results"]
    return rng.choice(forms)


def list_rows(family: Family, n: int, rng: random.Random) -> list[list[str]]:
    """n rows of a family's table, no two with the same key; a numbered key (a week, a round) counts up."""
    rows, keys = [], set()
    numbered = family.columns[family.key][1].startswith("int")
    for _ in range(100 * n):
        row = [list_value(kind, rng) for _, kind in family.columns]
        if numbered:
            row[family.key] = str(len(rows) + 1)
        if row[family.key] not in keys:
            keys.add(row[family.key])
            rows.append(row)
            if len(rows) == n:
                return rows
    raise RuntimeError(f"could not make {n} rows of distinct {family.columns[family.key][0]}")


# --------------------------------------------------------------------------- SQL text

def ident(name: str) -> str:
    """A name as AgentBench's MySQL tasks quote it (sqlite reads it too). 'Home city' -> '`Home city`'"""
    return "`" + name.replace("`", "``") + "`"


def literal(value) -> str:
    """7 -> '7'; "Kest's" -> "'Kest''s'" """
    return str(value) if isinstance(value, int) else "'" + str(value).replace("'", "''") + "'"


# --------------------------------------------------------------------------- one task

@dataclass
class _Task:
    type: str
    description: str
    sql: str


def _task(kind: str, table: Table, rows: list[list], spare: list, rng: random.Random) -> _Task | None:
    """A task of `kind` over `rows` (None when these rows do not suit it); `spare` is a row of the same
    kind that is not in the table (what INSERT adds)."""
    q = _EntityTable(table, rows, spare, rng)
    if kind.startswith("aggregation-"):
        return _entity_aggregation(q, kind.split("-")[1])
    if kind not in _ENTITY_KINDS:
        raise ValueError(f"unknown task type {kind!r}")
    return _ENTITY_KINDS[kind](q)


class _EntityTable:
    """What a task over a table of the world's entities is written from: its columns (those a question can
    filter on, those it can measure) and a row drawn from it."""

    def __init__(self, table: Table, rows: list[list], spare: list, rng: random.Random):
        self.table, self.rows, self.spare, self.rng = table, rows, spare, rng
        self.t, self.key = ident(table.name), table.columns[0]
        self.cols = list(enumerate(table.columns))[1:]
        self.texts = [(i, c) for i, c in self.cols if c.where]
        self.numbers = [(i, c) for i, c in self.cols if c.measure]
        self.row = rng.choice(rows)

    def where_value(self, i: int):
        """A value of column i that several rows share, if any."""
        counts = {}
        for r in self.rows:
            counts[r[i]] = counts.get(r[i], 0) + 1
        shared = sorted(v for v, n in counts.items() if n >= 2)
        return self.rng.choice(shared) if shared else None


def _entity_other(q: _EntityTable) -> _Task | None:
    i, c = q.rng.choice([(i, c) for i, c in q.cols if c.ask])
    row = q.row
    same_key = [r for r in q.rows if r[0] == row[0]]
    return _Task("other", c.ask.format(k=row[0]), f"SELECT {ident(c.name)} FROM {q.t} WHERE {ident(q.key.name)} = "
                 f"{literal(row[0])}") if len(same_key) == 1 else None


def _entity_counting(q: _EntityTable) -> _Task | None:
    i, c = q.rng.choice(q.texts)
    v = q.where_value(i) if q.rng.random() < 0.7 else q.row[i]
    return _Task("counting", f"How many {q.table.plural} {c.where.format(v=v)} are in the table?",
                 f"SELECT COUNT(*) FROM {q.t} WHERE {ident(c.name)} = {literal(v)}") if v is not None else None


def _entity_comparison(q: _EntityTable) -> _Task | None:
    rng = q.rng
    i, c = rng.choice(q.numbers)
    values = sorted({r[i] for r in q.rows})
    if len(values) < 3:
        return None
    k = rng.randrange(1, min(4, len(values) - 1) + 1)  # 1..4 answers
    if rng.random() < 0.5:
        x, op, word = values[-k - 1], ">", "greater"
    else:
        x, op, word = values[k], "<", "less"
    return _Task("comparison", f"Which {q.table.plural} have a {c.measure} {word} than {x}?",
                 f"SELECT {ident(q.key.name)} FROM {q.t} WHERE {ident(c.name)} {op} {x}")


def _entity_ranking(q: _EntityTable) -> _Task | None:
    i, c = q.rng.choice(q.numbers)
    high = q.rng.random() < 0.5
    values = sorted(r[i] for r in q.rows)
    if (values[-1] == values[-2]) if high else (values[0] == values[1]):
        return None
    return _Task("ranking", f"Which {q.table.noun} has the {'highest' if high else 'lowest'} {c.measure}?",
                 f"SELECT {ident(q.key.name)} FROM {q.t} ORDER BY {ident(c.name)} {'DESC' if high else 'ASC'} "
                 "LIMIT 1")


def _entity_aggregation(q: _EntityTable, fn: str) -> _Task | None:
    rng, plural = q.rng, q.table.plural
    pool = [(i, c) for i, c in q.numbers if c.additive or fn != "SUM"]
    if not pool:
        return None
    i, c = rng.choice(pool)
    j, w = rng.choice(q.texts)
    v = q.where_value(j)
    scope, cond = (f"the {plural} {w.where.format(v=v)}", f" WHERE {ident(w.name)} = {literal(v)}") \
        if v is not None and rng.random() < 0.7 else (f"all {plural} in the table", "")
    value = f"ROUND(AVG({ident(c.name)}), 1)" if fn == "AVG" else f"{fn}({ident(c.name)})"
    asked = {"SUM": f"What is the total {c.measure} of {scope}?",
             "MIN": f"What is the lowest {c.measure} among {scope}?",
             "MAX": f"What is the highest {c.measure} among {scope}?",
             "AVG": f"What is the average {c.measure} of {scope}, rounded to one decimal place?"}[fn]
    return _Task(f"aggregation-{fn}", asked, f"SELECT {value} FROM {q.t}{cond}")


def _entity_insert(q: _EntityTable) -> _Task | None:
    table, spare = q.table, q.spare
    if spare is None:
        return None
    named = ", ".join(f"{c.name.lower()} {v}" for c, v in zip(table.columns[1:], spare[1:], strict=True))
    names = ", ".join(ident(c.name) for c in table.columns)
    return _Task("INSERT", f"Add the {table.noun} {spare[0]} to the table, with {named}.",
                 f"INSERT INTO {q.t} ({names}) VALUES ({', '.join(literal(v) for v in spare)})")


def _entity_update(q: _EntityTable) -> _Task | None:
    rng, row = q.rng, q.row
    i, c = rng.choice(q.cols)
    if c.type == "INTEGER":
        new = row[i] + rng.choice([-3, -2, -1, 1, 2, 3]) * (100 if row[i] > 5000 else 1)
    else:
        others = sorted({r[i] for r in q.rows} - {row[i]})
        if not others:
            return None
        new = rng.choice(others)
    if sum(r[0] == row[0] for r in q.rows) != 1:
        return None
    said = rng.choice(["Change the {c} of {k} to {v}.", "Set the {c} of the {n} {k} to {v}.",
                       "Update the table: the {c} of {k} is now {v}."])
    return _Task("UPDATE", said.format(c=c.name.lower(), k=row[0], v=new, n=q.table.noun),
                 f"UPDATE {q.t} SET {ident(c.name)} = {literal(new)} WHERE {ident(q.key.name)} = {literal(row[0])}")


def _entity_delete(q: _EntityTable) -> _Task:
    table = q.table
    if q.rng.random() < 0.5:
        i, c = q.rng.choice(q.texts)
        v = q.where_value(i)
        if v is not None:
            return _Task("DELETE", f"Delete every {table.noun} {c.where.format(v=v)} from the table."
                         .replace(f"every {table.noun} who", f"all {table.plural} who"),
                         f"DELETE FROM {q.t} WHERE {ident(c.name)} = {literal(v)}")
    return _Task("DELETE", f"Remove the {table.noun} {q.row[0]} from the table.",
                 f"DELETE FROM {q.t} WHERE {ident(q.key.name)} = {literal(q.row[0])}")


_ENTITY_KINDS = {"other": _entity_other, "counting": _entity_counting, "comparison": _entity_comparison,
                 "ranking": _entity_ranking, "INSERT": _entity_insert, "UPDATE": _entity_update,
                 "DELETE": _entity_delete}


def _numeric(family: Family) -> list[int]:
    """The columns of a family that hold numbers (what comparisons, rankings and aggregates use)."""
    return [i for i, (_, kind) in enumerate(family.columns) if kind.split(":")[0] in ("int", "decimal")]


def _list_task(kind: str, family: Family, name: str, rows: list[list], spare: list, rng: random.Random):
    """A task of `kind` over a list table, worded as WikiSQL's and WikiTQ's questions are, with the SQL
    sqlite runs as MySQL would (numbers written as text compared as numbers: CAST(... AS REAL)); None when the
    table cannot give one of that kind."""
    q = _ListTable(family, name, rows, spare, rng)
    if kind.startswith("aggregation-"):
        return _aggregation(q, kind.split("-")[1])
    write = _LIST_KINDS.get(kind)
    return write(q) if write else None


class _ListTable:
    """What a list task is written from: the table, a row drawn from it, its numeric and shared columns."""

    def __init__(self, family: Family, name: str, rows: list[list], spare: list, rng: random.Random):
        self.family, self.name, self.rows, self.spare, self.rng = family, name, rows, spare, rng
        self.t, self.cols, self.key = ident(name), [c for c, _ in family.columns], family.key
        self.row = rng.choice(rows)
        self.numbers = _numeric(family)
        self.shared = [i for i in range(len(self.cols)) if i != self.key and len({r[i] for r in rows}) < len(rows)]

    def num(self, i: int) -> str:
        return f"CAST({ident(self.cols[i])} AS REAL)"

    def eq(self, i: int, v) -> str:
        return f"{ident(self.cols[i])} = {literal(v)}"


def _other(q: _ListTable) -> _Task:
    rng, cols, key = q.rng, q.cols, q.key
    i = rng.choice([j for j in range(len(cols)) if j != key])
    j = key if rng.random() < 0.5 else rng.choice([c for c in range(len(cols)) if c != i])
    v = q.row[j]
    text = rng.choice(["What is the {A} when the {B} is {b}?", "What {A} has a {B} of {b}?",
                       "What is the {A} that has a {B} listed as {b}?", "what is the {a} for {b}?"])
    return _Task("other", text.format(A=cols[i], a=cols[i].lower(), B=cols[j], b=v),
                 f"SELECT {ident(cols[i])} FROM {q.t} WHERE {q.eq(j, v)}")


def _counting(q: _ListTable) -> _Task | None:
    if not q.shared:
        return None
    j = q.rng.choice(q.shared)
    v = q.rng.choice([r[j] for r in q.rows])
    text = q.rng.choice(["How many {p} have a {B} of {b}?", "What is the total number of {p} with {B} {b}?",
                         "how many {p} are listed with {b} as {B}?"])
    return _Task("counting", text.format(p=q.family.plural, B=q.cols[j], b=v),
                 f"SELECT COUNT(*) FROM {q.t} WHERE {q.eq(j, v)}")


def _comparison(q: _ListTable) -> _Task | None:
    rng, cols = q.rng, q.cols
    if not q.numbers:
        return None
    c = rng.choice(q.numbers)
    i = rng.choice([k for k in range(len(cols)) if k != c])
    values = sorted({float(r[c]) for r in q.rows})
    if len(values) < 4:
        return None
    x = values[rng.randint(1, 3)] if rng.random() < 0.5 else values[-rng.randint(2, 4)]
    x = int(x) if x == int(x) else x
    op, word = (">", rng.choice(["larger than", "more than", "greater than"])) if x > values[len(values) // 2] \
        else ("<", rng.choice(["smaller than", "less than", "fewer than"]))
    if q.shared and rng.random() < 0.5:
        j = rng.choice([k for k in q.shared if k not in (i, c)] or [None])
        if j is not None:
            v = q.row[j]
            return _Task("comparison", f"Which {cols[i]} has a {cols[j]} of {v}, and a {cols[c]} {word} {x}?",
                         f"SELECT {ident(cols[i])} FROM {q.t} WHERE {q.eq(j, v)} AND {q.num(c)} {op} {x}")
    return _Task("comparison", f"Which {cols[i]} has a {cols[c]} {word} {x}?",
                 f"SELECT {ident(cols[i])} FROM {q.t} WHERE {q.num(c)} {op} {x}")


def _ranking(q: _ListTable) -> _Task | None:
    rng, cols, key = q.rng, q.cols, q.key
    if not q.numbers:
        return None
    c = rng.choice(q.numbers)
    high = rng.random() < 0.5
    ordered = sorted(float(r[c]) for r in q.rows)
    if (ordered[-1] == ordered[-2]) if high else (ordered[0] == ordered[1]):
        return None
    i = rng.choice([key] + [k for k in range(len(cols)) if k not in (key, c)])
    text = rng.choice(["Which {A} has the {hl} {C}?", "Name the {A} with the {most} {C}",
                       "which {n} had the {most} {c}?"])
    return _Task("ranking", text.format(A=cols[i], C=cols[c], c=cols[c].lower(), n=q.family.noun,
                                        hl="highest" if high else "lowest", most="most" if high else "least"),
                 f"SELECT {ident(cols[i])} FROM {q.t} ORDER BY {q.num(c)} {'DESC' if high else 'ASC'} LIMIT 1")


def _aggregation(q: _ListTable, fn: str) -> _Task | None:
    rng, cols = q.rng, q.cols
    if not q.numbers:
        return None
    c = rng.choice(q.numbers)
    scoped = [k for k in q.shared if k != c]
    j = rng.choice(scoped) if scoped and rng.random() < 0.8 else None
    cond = f" WHERE {q.eq(j, q.row[j])}" if j is not None else ""
    scope = f" when the {cols[j]} is {q.row[j]}" if j is not None else ""
    text = {"SUM": ["What is the total {C}{s}?", "What is the sum of {C}{s}?"],
            "MIN": ["What is the lowest {C}{s}?", "What was the smallest {C}{s}?"],
            "MAX": ["What is the highest {C}{s}?", "What's the biggest {C}{s}?"],
            "AVG": ["What is the average {C}{s}?", "What is the mean {C}{s}?"]}[fn]
    return _Task(f"aggregation-{fn}", rng.choice(text).format(C=cols[c], s=scope),
                 f"SELECT {fn}({q.num(c)}) FROM {q.t}{cond}")


def _insert(q: _ListTable) -> _Task:
    rng, cols, key, spare, name = q.rng, q.cols, q.key, q.spare, q.name
    names = ", ".join(ident(c) for c in cols)
    sql = f"INSERT INTO {q.t} ({names}) VALUES ({', '.join(literal(v) for v in spare)})"
    values = dict(zip(cols, spare, strict=True))
    style = rng.randrange(4)
    if style == 0:
        rest = [f"'{v}' for '{c}'" for c, v in zip(cols, spare, strict=True) if c != cols[key]]
        text = f"Insert '{spare[key]}' into '{name}' with values {_and(rest)}."
    elif style == 1:
        parts = [f"{c.lower()} {v}" if v.replace(",", "").isdigit() else f"{c.lower()} '{v}'"
                 for c, v in zip(cols, spare, strict=True)]
        text = f"Insert a new record into the '{name}' table with the values of {_and(parts)}."
    elif style == 2:
        text = (f"Insert into the '{name}' table the values for {_and(cols)}, which are "
                f"{_and([repr_text(v) for v in spare])}, respectively.")
    else:
        told = rng.choice(q.family.said)
        for column, value in values.items():  # (not str.format: column names hold dots and slashes)
            told = told.replace("{" + column + "}", value)
        text = told + rng.choice([f" Add this to the {name} table.", f" Record it in the {name} table.",
                                  f" This was inserted into the {name} table."])
    return _Task("INSERT", text, sql)


def _update(q: _ListTable) -> _Task | None:
    rng, cols, key, row, name = q.rng, q.cols, q.key, q.row, q.name
    changed = rng.sample([k for k in range(len(cols)) if k != key], rng.choice([1, 1, 1, 2]))
    new = {k: q.spare[k] for k in changed if q.spare[k] != row[k]}
    if not new or sum(r[key] == row[key] for r in q.rows) != 1:
        return None
    sets = ", ".join(q.eq(k, v) for k, v in new.items())
    said = _and([f"{cols[k]} '{v}'" for k, v in new.items()])
    k0, v0 = next(iter(new.items()))
    text = rng.choice([
        f"Change the {cols[k0]} of {row[key]} in the {name} table to {v0}." if len(new) == 1 else
        f"Update the {name} table so that {row[key]} has {said}.",
        f"In the '{name}' table, update the '{cols[k0]}' column to '{v0}' where the '{cols[key]}' column "
        f"equals {row[key]}." if len(new) == 1 else
        f"In the '{name}' table, set {said} where the '{cols[key]}' is '{row[key]}'.",
        f"Update the {q.family.noun} {row[key]} in {name}: {said}."])
    return _Task("UPDATE", text, f"UPDATE {q.t} SET {sets} WHERE {q.eq(key, row[key])}")


_LIST_KINDS = {"other": _other, "counting": _counting, "comparison": _comparison, "ranking": _ranking,
               "INSERT": _insert, "UPDATE": _update}


def _and(items: list[str]) -> str:
    """['a', 'b', 'c'] -> 'a, b, and c'"""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + ", and " + items[-1]


def repr_text(value: str) -> str:
    """A value as a description quotes it. 'FK Trakai' -> "'FK Trakai'" """
    return f"'{value}'"


def _record(task: _Task, name: str, columns: list[tuple[str, str]], rows: list[list], task_id: str,
            source: str) -> dict | None:
    """The AgentBench record of a task on the table `name` ((column, type) pairs, rows): its SQL run in
    the task's database gives the label or the table hash. None when the result makes a poor task (no
    answer, too many, nothing changed)."""
    heads = [c for c, _ in columns]
    spec = {"table_name": name, "table_info": {"columns": [{"name": c, "type": t} for c, t in columns],
                                               "rows": rows}}
    env = SqlEnv(spec)
    before = env.table_hash()
    result, changed, _ = env.run(task.sql)
    rec = {"schema": SCHEMA_DBTASK, "_id": task_id, "description": task.description}
    if task.type in STATEMENT_TYPES:
        after = env.table_hash()
        if changed < 1 or after == before:
            return None
        rec.update(label=[task.sql], answer_md5=f"[('{after}',)]")
    else:
        labels = answers_from_rows(result)
        if labels == ["none"] or len(labels) > 5:
            return None
        rec.update(label=labels, sql={"query": task.sql, "length": len(task.sql)})
    rec.update({
        "create": {"database": "fireflan-world", "init": ""}, "table": spec, "evaluation": "", "example": "",
        "type": [task.type], "heads": heads, "source": source,
        "add_description": f"The name of this table is {name}, and the headers of this table are "
                           f"{','.join(heads)}."})
    return rec


# --------------------------------------------------------------------------- the splits

def _world_entities(seed: int) -> dict[str, list]:
    """The entities of the embedded world of `seed` (its default sizes), by split group."""
    world = WorldConfig(seed=seed)
    rng = random.Random(f"fireflan-world-{seed}")  # as generate_world starts, so the entities are the same
    return _build_entities(rng, _Names(rng), {"train": world.train, "dev": world.dev, "test": world.test})


def generate_dbtasks(config: DBWorldConfig) -> dict[str, list[dict]]:
    """{split: [AgentBench DB records]}; pure and deterministic, no description repeats across splits."""
    groups = _world_entities(config.seed)
    kinds, shares = list(TYPE_SHARES), list(TYPE_SHARES.values())
    splits, seen = {}, set()
    for split in SPLITS:
        rng = random.Random(f"fireflan-dbworld-{config.seed}-{split}")
        want = getattr(config, split)
        records, tries = [], 0
        while len(records) < want:
            tries += 1
            if tries > 50 * want + 100:
                raise RuntimeError(f"could not make {want} distinct {split} DB tasks; lower the number")
            kind, task_id = rng.choices(kinds, shares)[0], f"dbworld-{config.seed}-{split}-{len(records):05d}"
            if rng.random() < config.list_share:  # a list table of invented rows, as most of AgentBench's
                family = rng.choice(FAMILIES)
                name = qualified_name(rng.choice(family.names), rng)
                rows = list_rows(family, rng.randint(config.min_rows, config.max_rows) + 1, rng)
                task = _list_task(kind, family, name, rows[:-1], rows[-1], rng)
                if task is None or task.description in seen:
                    continue
                rec = _record(task, name, [(c, "TEXT") for c, _ in family.columns], rows[:-1], task_id,
                              f"fireflan-lists-{config.seed}")
            else:  # a table of the embedded world's entities
                table = rng.choice(TABLES)
                pool = sorted((e for e in groups[split] if e.kind == table.kind), key=lambda e: e.name)
                if len(pool) < config.min_rows + 1:
                    continue
                n = rng.randint(config.min_rows, min(config.max_rows, len(pool) - 1))
                chosen = rng.sample(pool, n + 1)
                rows = [row_of(table, e, config.seed) for e in chosen[:n]]
                task = _task(kind, table, rows, row_of(table, chosen[n], config.seed), rng)
                if task is None or task.description in seen:
                    continue
                rec = _record(task, table.name, [(c.name, c.type) for c in table.columns], rows, task_id,
                              f"fireflan-world-{config.seed}")
            if rec is not None:
                seen.add(task.description)
                records.append(rec)
        splits[split] = records
    return splits


def write_dbtasks(config: DBWorldConfig, out) -> dict[str, int]:
    """Generate the DB tasks and write OUT/{train,dev,test}.jsonl."""
    splits = generate_dbtasks(config)
    with file_set(out, "fireflan dbworld") as out:
        return {name: write_jsonl(out / f"{name}.jsonl", records) for name, records in splits.items()}
