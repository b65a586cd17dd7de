"""The scripted expert's walk on real HotpotQA records: searches a student could write from the screen,
comparisons stated with both values, the audit that counts both; the distractor and pool settings;
questions decoded side by side."""

import json

import pytest
from helpers import HOTPOT_SAMPLE, shared

from fireflan.agent.loop import run_episode
from fireflan.audit import audit, derivable
from fireflan.evaluate import EvalConfig, evaluate
from fireflan.models.reading import comparison, count_of, first_date, name_spans, nationalities
from fireflan.models.scripted import ScriptedExpert
from fireflan.models.walk import plan_walk
from fireflan.tasks import bind, get_task, make_tool
from fireflan.tasks.base import Example
from fireflan.tools.wiki import Page, QuestionWikis, Wiki

# ------------------------------------------------------------------------------------------- reading the screen

def test_names_dates_counts_and_nationalities_read_off_a_page():
    assert name_spans('Was the film "Heavy" directed by James Mangold?') == ["Heavy", "James Mangold"]
    assert name_spans("Are Medici and Senet both board games?") == ["Medici", "Senet", "Medici and Senet"]
    assert "ISS A/S" in name_spans("What did Rock Nominees Ltd and ISS A/S have in common?")
    assert first_date("Frank De Winne (born 25 April 1961, in Ledeberg)") == ("25 April 1961", (1961, 4, 25))
    assert first_date("Richard Bach (born June 23, 1936) is") == ("June 23, 1936", (1936, 6, 23))
    assert first_date("no year here") is None
    assert count_of("an opera in four acts by Glass", "acts") == ("four acts", 4.0)
    assert count_of("a 58-story, 664 ft tower", "stories") == ("58-story", 58.0)
    assert nationalities("a Canadian-born American film director") == ["Canadian", "American"]


@pytest.mark.parametrize("question, sides, answer, said", [
    ("Who is older, Ivan Bella or Frank De Winne?",
     [("Ivan Bella", "Ivan Bella (born 25 May 1964) is a Slovak officer."),
      ("Frank De Winne", "Frank, Viscount De Winne (born 25 April 1961, in Ledeberg) is a Belgian officer.")],
     "Frank, Viscount De Winne", ["25 May 1964", "25 April 1961", "earlier", "older"]),
    ("Which has more acts, Anna Bolena or Pelléas et Mélisande?",
     [("Anna Bolena", "Anna Bolena is a tragic opera in two acts."),
      ("Pelléas et Mélisande", "Pelléas et Mélisande is an opera in five acts.")],
     "Pelléas et Mélisande", ["two acts", "five acts", "more"]),
    ("Were Richard Bach and Paul Celan from the same country?",
     [("Richard Bach", "Richard Bach is an American writer."), ("Paul Celan", "Paul Celan was a Romanian poet.")],
     "no", ["American", "Romanian", "no"]),
    ("Are both Lygodium or Maxillaria a genus of orchids?",
     [("Lygodium", "Lygodium is a genus of about 40 species of ferns."),
      ("Maxillaria", "Maxillaria is a large genus of orchids.")], "no", ["Maxillaria", "Lygodium", "orchid", "no"]),
    ("What profession does Nicholas Ray and Elia Kazan have in common?",
     [("Nicholas Ray", "Nicholas Ray was an American film director."),
      ("Elia Kazan", "Elia Kazan was a Greek-American director and producer.")], "director", ["Both", "director"]),
])
def test_a_comparison_is_stated_with_both_values(question, sides, answer, said):
    statement = comparison(question, sides, answer)
    assert statement is not None and all(s in statement for s in said), statement


def test_a_comparison_the_pages_do_not_decide_is_not_stated():
    """A value that decides the other way, or none at all: no statement (the expert quotes both pages)."""
    sides = [("A", "A (born 1950) is a writer."), ("B", "B (born 1960) is a writer.")]
    assert comparison("Who is older, A or B?", sides, "B") is None  # the pages say A: never argue for the gold
    assert comparison("Which band has more members, A or B?", sides, "A") is None  # no counts written


# ------------------------------------------------------------------------------------------- the walk

def _example(question, answer, facts, pages, kind="bridge"):
    context = [[t, s] for t, s in pages.items()]
    return Example(id="q", question=question, answer=answer, task="hotpotqa", type=kind, supporting_facts=facts,
                   context=context), Wiki([Page(t, tuple(s)) for t, s in pages.items()])


def test_the_walk_searches_what_the_question_describes_and_the_name_the_page_writes():
    """Urge Overkill's second EP is not named in the question: the expert searches the question's words, reads
    the page it brings, and takes the next name as that page writes it, never the title's brackets."""
    pages = {"Stull (EP)": ["Stull is the second extended play by the rock band Urge Overkill.",
                            "The EP's title refers to Stull, Kansas."],
             "Stull, Kansas": ["Stull is a community in Kansas.", "It was renamed after its first postmaster, "
                                                                  "Sylvester Stull."],
             "Americruiser": ["Americruiser is the second album by Urge Overkill."]}
    ex, wiki = _example("What postmaster was the indirect namesake of Urge Overkill's second EP?", "Sylvester Stull",
                        [["Stull (EP)", 0], ["Stull (EP)", 1], ["Stull, Kansas", 1]], pages)
    walk = plan_walk(ex, wiki.search)
    assert [h.target for h in walk] == ["Stull (EP)", "Stull, Kansas"]
    assert walk[0].source == "question" and "(" not in walk[0].query and walk[1].source == "page"
    traj = run_episode(ScriptedExpert([ex], tool=wiki), wiki, ex, score=lambda a: {"em": float(a == ex.answer)})
    assert traj.success
    screen = ex.question
    for step in traj.steps:
        assert step.action != "search" or derivable(step.argument, screen)
        screen += " " + step.observation
    assert "Sylvester Stull" in traj.steps[-1].thought  # the final thought quotes the sentence with the answer


def test_with_answer_lookup_the_expert_finds_a_later_answer_sentence_by_a_word_of_the_question():
    """The postmaster is in the second sentence of the last page: the expert looks up "postmaster" (a word of
    the question that finds that sentence first) and quotes what the lookup showed; by default it does not."""
    pages = {"Stull (EP)": ["Stull is the second extended play by the rock band Urge Overkill.",
                            "The EP's title refers to Stull, Kansas."],
             "Stull, Kansas": ["Stull is a community in Kansas.", "It was renamed after its first postmaster, "
                                                                  "Sylvester Stull."]}
    ex, wiki = _example("What postmaster was the indirect namesake of Urge Overkill's second EP?", "Sylvester Stull",
                        [["Stull (EP)", 0], ["Stull (EP)", 1], ["Stull, Kansas", 1]], pages)
    score = lambda a: {"em": float(a == ex.answer)}  # noqa: E731
    looked = run_episode(ScriptedExpert([ex], tool=wiki, answer_lookup=True), wiki, ex, score=score)
    assert looked.success and [s.action for s in looked.steps] == ["search", "search", "lookup", "finish"]
    assert looked.steps[2].argument == "postmaster" and "Sylvester Stull" in looked.steps[2].observation
    assert "postmaster" in looked.steps[2].thought and "Sylvester Stull" in looked.steps[3].thought
    plain = run_episode(ScriptedExpert([ex], tool=wiki), wiki, ex, score=score)
    assert plain.success and [s.action for s in plain.steps] == ["search", "search", "finish"]
    # the answer in the page's first sentence, or a comparison: nothing to look up
    first = {"Stull (EP)": pages["Stull (EP)"], "Stull, Kansas": ["Stull, named for postmaster Sylvester Stull, "
                                                                  "is a community in Kansas."]}
    ex1, wiki1 = _example(ex.question, ex.answer, [["Stull (EP)", 1], ["Stull, Kansas", 0]], first)
    steps = run_episode(ScriptedExpert([ex1], tool=wiki1, answer_lookup=True), wiki1, ex1).steps
    assert "lookup" not in [s.action for s in steps]


def test_with_back_detours_the_expert_shows_the_page_it_read_coming_back_and_the_way_on():
    """A student picks another name of the page it read, gets that page back as the best match and answers from
    it (42 of 120 real dev episodes went so, 41 wrong); with --back-detours an expert's detour shows that state
    and what to do in it: say the page came back, quote where the right name is, search it."""
    pages = {"Jaclyn Stapp": ["Jaclyn Stapp (born 1980) is a beauty queen.",
                              "She is married to Scott Stapp, former frontman of the band Creed."],
             "Creed (band)": ["Creed is an American rock band formed in Tallahassee in 1994.",
                              "The band disbanded in 2004."],
             "Tallahassee": ["Tallahassee is the capital of Florida."]}
    ex, wiki = _example("Jaclyn Stapp is married to the former frontman of a band that disbanded in what year?",
                        "2004", [["Jaclyn Stapp", 1], ["Creed (band)", 1]], pages)
    score = lambda a: {"em": float(a == ex.answer)}  # noqa: E731
    back = run_episode(ScriptedExpert([ex], tool=wiki, detour_share=1.0, back_detours=True), wiki, ex, score=score)
    assert back.success and [s.argument for s in back.steps] == ["Jaclyn Stapp", "Scott Stapp", "Creed", "2004"]
    assert back.steps[1].observation.startswith('No page is titled "Scott Stapp". Best match, Jaclyn Stapp:')
    assert back.steps[2].thought.startswith("That brought back Jaclyn Stapp, the page I have already read, so Scott "
                                            "Stapp has no page here.")
    assert "former frontman of the band Creed" in back.steps[2].thought
    plain = run_episode(ScriptedExpert([ex], tool=wiki, detour_share=1.0), wiki, ex, score=score)
    assert plain.success and [s.argument for s in plain.steps] == ["Jaclyn Stapp", "Creed", "2004"]


def test_a_title_the_screen_shows_among_similar_ones_is_a_detour_the_walk_takes():
    """No name on the screen finds the band's page: the expert searches the name, reads that the best match is
    the town, and types the band's title from the similar titles the result listed (now on the screen)."""
    pages = {"Kest (town)": ["Kest is a town of Kest county, where Kest cheese is made in Kest."],
             "Kest (band)": ["Kest are a group formed in 1990 by Aro Vell."]}
    ex, wiki = _example("Who founded Kest?", "Aro Vell", [["Kest (band)", 0]], pages, kind="single")
    walk = plan_walk(ex, wiki.search)
    assert [(h.query, h.target) for h in walk] == [("Kest", None), ("Kest (band)", "Kest (band)")]
    traj = run_episode(ScriptedExpert([ex], tool=wiki), wiki, ex, score=lambda a: {"em": float(a == ex.answer)})
    assert traj.success and [s.argument for s in traj.steps] == ["Kest", "Kest (band)", "Aro Vell"]
    assert "Kest (band)" in traj.steps[1].thought and "similar" in traj.steps[1].thought
    assert derivable("Kest (band)", ex.question + " " + traj.steps[0].observation)
    assert not derivable("Kest (band)", ex.question)


def test_the_expert_on_the_real_sample_searches_only_what_it_can_derive_and_states_comparisons():
    task = get_task("hotpotqa")
    examples = task.load(shared(HOTPOT_SAMPLE.name))
    tool = make_tool("hotpotqa", examples)
    expert = ScriptedExpert(examples, tool=tool)
    records = []
    for ex in examples:
        if expert.route(ex) is None:
            continue
        env, score = bind(task, tool, ex)
        records.append(run_episode(expert, env, ex, score=score).to_record())
    stats = audit(records, examples)
    assert stats["episodes"] >= 83 and stats["searches_underivable"] == 0 and stats["lookups"] == 0
    assert stats["share_final_thoughts_quoting_answer"] > 0.7 and stats["comparisons_stated"] >= 3


def test_the_audit_flags_a_title_no_one_could_type_and_a_lookup_of_what_was_shown():
    ex = Example(id="q", question="Who directed the film Heavy?", answer="James Mangold", task="hotpotqa",
                 type="bridge", supporting_facts=[["Heavy (film)", 0]],
                 context=[["Heavy (film)", ["Heavy is a 1995 film directed by James Mangold."]]])
    shown = "Heavy is a 1995 film directed by James Mangold."
    record = {"id": "q", "method": "react", "success": True, "steps": [
        {"thought": "Let me search Heavy (film).", "action": "search", "argument": "Heavy (film)",
         "observation": shown},
        {"thought": "Look it up.", "action": "lookup", "argument": "James Mangold",
         "observation": f"(Result 1 / 1) {shown}"},
        {"thought": f'It says "{shown}" So the answer is James Mangold.', "action": "finish",
         "argument": "James Mangold", "observation": ""}]}
    stats = audit([record], [ex])
    assert stats["searches_underivable"] == 1 and stats["lookups_redundant"] == 1
    assert stats["lookups_of_the_answer"] == 1 and stats["share_final_thoughts_quoting_answer"] == 1.0


# ------------------------------------------------------------------------------------------- the settings

def test_each_question_searches_its_own_paragraphs_or_a_pool_of_all(tmp_path):
    records = [{"_id": f"q{i}", "question": f"Where is Kest {i}?", "answer": "Ostra", "type": "bridge",
                "supporting_facts": [[f"Kest {i}", 0]],
                "context": [[f"Kest {i}", [f"Kest {i} is a town in Ostra."]], [f"Other {i}", ["Something else."]]]}
               for i in range(3)]
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(records[:2]))
    second.write_text(json.dumps(records[2:]))
    task = get_task("hotpotqa")
    examples = task.load(f"{first},{second}")  # several files, read in turn
    assert [e.id for e in examples] == ["q0", "q1", "q2"]
    tool = make_tool("hotpotqa", examples)
    assert isinstance(tool, QuestionWikis)
    own = bind(task, tool, examples[0])[0]
    assert {p.title for p in own.pages} == {"Kest 0", "Other 0"}
    assert own.search("Kest 2").startswith("No page is titled")  # another question's page is not in its wiki
    pool = make_tool("hotpotqa", examples, context="pool")
    assert len(pool.pages) == 6 and bind(task, pool, examples[0])[0] is pool
    with pytest.raises(ValueError, match="unknown context"):
        make_tool("hotpotqa", examples, context="everything")
    # evaluate: the pool holds every question of the files, even with --limit
    expert = ScriptedExpert(examples)
    metrics = evaluate(EvalConfig(out=str(tmp_path / "pool"), task="hotpotqa", data=f"{first},{second}", limit=1,
                                  context="pool"), model=expert)
    assert metrics["questions"] == 1 and metrics["em"] == 1.0
    with pytest.raises(ValueError, match="--context must be one of"):
        evaluate(EvalConfig(out=str(tmp_path / "bad"), task="hotpotqa", data=str(first), context="all"))


class Batched:
    """The scripted expert behind `generate_batch`, counting how many requests each call carried."""

    def __init__(self, expert):
        self.expert, self.name, self.calls = expert, "batched-expert", []

    def generate(self, messages, **kw):
        return self.expert.generate(messages, **kw)

    def generate_batch(self, requests, *, stop=None, max_tokens=256):
        self.calls.append(len(requests))
        return [(self.expert.generate(m, stop=stop, temperature=t, seed=s, max_tokens=max_tokens),
                 self.expert.last_usage) for m, t, s in requests]


def test_questions_decoded_side_by_side_give_the_same_episodes(tmp_path):
    data = shared(HOTPOT_SAMPLE.name)
    examples = get_task("hotpotqa").load(data)
    alone = evaluate(EvalConfig(out=str(tmp_path / "one"), task="hotpotqa", data=str(data), limit=12),
                     model=ScriptedExpert(examples))
    batched = Batched(ScriptedExpert(examples))
    together = evaluate(EvalConfig(out=str(tmp_path / "four"), task="hotpotqa", data=str(data), limit=12, batch=4),
                        model=batched)
    assert max(batched.calls) == 4 and sum(batched.calls) == alone["calls_per_question"] * 12
    assert together["em"] == alone["em"] and together["outcomes"] == alone["outcomes"]

    def steps(folder):
        return {r["id"]: [s["raw"] for s in r["steps"]] for r in map(json.loads, (folder / "trajectories.jsonl")
                                                                     .read_text().splitlines())}

    assert steps(tmp_path / "one") == steps(tmp_path / "four")
    with pytest.raises(ValueError, match="--batch must be 1 or more"):
        evaluate(EvalConfig(out=str(tmp_path / "bad"), task="hotpotqa", data=str(data), batch=0))


def test_teach_walks_each_question_more_than_one_way(tmp_path):
    """teach --walks 2: every question twice (seeds 0 and 1), the second walk another way where the pages allow
    it (the other comparison page first, another search to the same page, a wrong page and back); both right,
    every search still written from the screen; a re-run does nothing."""
    from fireflan.teach import TeachConfig, teach

    data = shared(HOTPOT_SAMPLE.name)
    config = TeachConfig(out=str(tmp_path), task="hotpotqa", data=str(data), split="validation", methods="react",
                         limit=30, walks=2)
    summary = teach(config)
    assert summary["trajectories"] == summary["success"] == 2 * (30 - summary["skipped_underivable"])
    assert summary["audit"]["searches_underivable"] == 0
    records = [json.loads(x) for x in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    walks = {}
    for r in records:
        walks.setdefault(r["id"], {})[r["seed"]] = [(s["action"], s["argument"]) for s in r["steps"]]
    assert all(set(w) == {0, 1} for w in walks.values())
    assert sum(w[0] != w[1] for w in walks.values()) >= 8  # another way for many, the same way reworded for the rest
    assert teach(config)["ran"] == 0
    with pytest.raises(ValueError, match="--walks must be 1 or more"):
        teach(TeachConfig(out=str(tmp_path / "bad"), task="hotpotqa", data=str(data), split="validation", walks=0))


def test_plain_wording_says_the_same_thing_the_same_way():
    """--wording plain: the same phrasing for the same situation whatever the seed (varied: drawn with it)."""
    task = get_task("hotpotqa")
    examples = task.load(shared(HOTPOT_SAMPLE.name))[:12]
    tool = make_tool("hotpotqa", examples)

    def thoughts(seed, wording):
        expert = ScriptedExpert(examples, seed=seed, tool=tool, wording=wording, detour_share=0.0, reverse_share=0.0)
        return [s.thought for e in examples for s in run_episode(expert, bind(task, tool, e)[0], e).steps]

    assert thoughts(0, "plain") == thoughts(1, "plain")
    assert thoughts(0, "varied") != thoughts(1, "varied")
    with pytest.raises(ValueError, match="wording must be one of"):
        ScriptedExpert(examples, wording="poetic")
