import json

import pytest
from helpers import HOTPOT_SAMPLE, shared

from fireflan.io import DataError
from fireflan.tools import NoisyTool, Page, Wiki, load_corpus, parse_action

PAGES = [
    Page("Velmora", ("Velmora is a city in Ostrand.", "It was founded in 1204.", "About 300,000 people live there.")),
    Page("Aldo Brenik", ("Aldo Brenik (born 1962) is an Ostrandi film director.", "He was born in Velmora.",
                         "He directed The Glass Harbor and Return to Kest.")),
    Page("The Glass Harbor", ("The Glass Harbor is a 1994 drama film.", "It was directed by Aldo Brenik.",
                              "The film was produced by Kest Pictures.")),
    Page("Kest Pictures", ("Kest Pictures is a film production company.", "It was founded in 1950.",
                           "Its headquarters are in Velmora.")),
]


@pytest.fixture
def wiki():
    return Wiki(PAGES)


# ---------------------------------------------------------------- search and lookup

def test_search_by_title_is_case_insensitive_and_returns_the_paragraph(wiki):
    assert wiki.search("the glass harbor") == " ".join(PAGES[2].sentences)
    assert wiki.search("  ALDO   brenik ") == " ".join(PAGES[1].sentences)


def test_search_by_words_returns_best_passage_and_similar_titles(wiki):
    obs = wiki.search("who directed the drama film in 1994")
    first, similar = obs.split("\n")
    assert "The Glass Harbor is a 1994 drama film." in first
    assert similar.startswith("Similar: [The Glass Harbor")
    assert similar.endswith("]")


def test_search_with_nothing_in_common(wiki):
    assert wiki.search("zzzz qqqq").startswith('Could not find "zzzz qqqq"')
    assert wiki.lookup("born").startswith("No page is open")
    assert "needs" in wiki.search("   ")


def test_snippets_answer_as_a_search_engine_does():
    """snippets=True: the same page found, but only its lead and the sentence matching the query best."""
    wiki = Wiki(PAGES, snippets=True)
    lead = "Kest Pictures is a film production company."
    assert wiki.search("Kest Pictures headquarters") == f"{lead} Its headquarters are in Velmora."
    assert wiki.search("kest pictures") == f"{lead} It was founded in 1950."
    obs = wiki.search("who directed the drama film in 1994")  # no title: the best BM25 page, no preamble
    assert obs == "The Glass Harbor is a 1994 drama film. It was directed by Aldo Brenik."
    assert "Similar" not in obs and "No page" not in obs
    assert wiki.lookup("Kest") == "(Result 1 / 1) The film was produced by Kest Pictures."  # the whole page opened
    assert wiki.search("zzzz qqqq").startswith('Could not find "zzzz qqqq"')
    assert Wiki([Page("One", ("Only this.",))], snippets=True).search("one") == "Only this."


def test_lookup_walks_the_matching_sentences_of_the_last_page(wiki):
    wiki.search("Aldo Brenik")
    assert wiki.lookup("born") == "(Result 1 / 2) Aldo Brenik (born 1962) is an Ostrandi film director."
    assert wiki.lookup("born") == "(Result 2 / 2) He was born in Velmora."
    assert wiki.lookup("born") == "No more results."
    assert wiki.lookup("DIRECTED") == "(Result 1 / 1) He directed The Glass Harbor and Return to Kest."
    wiki.search("Velmora")
    assert wiki.lookup("founded") == "(Result 1 / 1) It was founded in 1204."


def test_step_runs_actions_and_answers_unknown_ones(wiki):
    assert wiki.step("search", "Velmora").text.startswith("Velmora is a city")
    obs = wiki.step("finish", "Velmora")
    assert obs.done and obs.answer == "Velmora"
    assert "Unknown action 'fly'" in wiki.step("fly", "away").text
    wiki.reset()
    assert wiki.page is None


# ---------------------------------------------------------------- the action parser

@pytest.mark.parametrize("text,action,argument", [
    ("Thought: I need the director.\nAction: search[The Glass Harbor]", "search", "The Glass Harbor"),
    ("Thought 2: hmm\nAction 2: Search[ Aldo Brenik ]", "search", "Aldo Brenik"),
    ("Action:lookup[born]", "lookup", "born"),
    ("Action : FINISH[yes]", "finish", "yes"),
    ("Thought: x\nAction: search [Foo [band]]", "search", "Foo [band]"),
    ("Thought: x\nAction: search[Foo [band] live]", "search", "Foo [band] live"),
    ("Thought: x\nAction: search[A] and [B]", "search", "A"),
    ("Thought: easy.\nfinish[42]", "finish", "42"),
    ("Thought: x\nAction: finish[]", "finish", ""),
])
def test_parser_reads_actions(text, action, argument):
    p = parse_action(text)
    assert p.ok and (p.action, p.argument) == (action, argument)


def test_parser_keeps_thought_and_cuts_trailing_text():
    p = parse_action("Thought: I should search.\nAction: search[Velmora]\nObservation: Velmora is big.")
    assert p.thought == "I should search."
    assert p.trailing == "Observation: Velmora is big."


@pytest.mark.parametrize("text", [
    "Thought: I will just think out loud.", "", "Action: search[Velmora", "search Velmora",
])
def test_parser_turns_unreadable_text_into_an_error_not_an_exception(text):
    p = parse_action(text)
    assert not p.ok and p.action is None and p.error.startswith("Invalid action")


def test_parser_reports_unknown_names_for_the_tool_to_answer(wiki):
    p = parse_action("Action: fly[to the moon]")
    assert p.ok and p.action == "fly"
    assert "Unknown action" in wiki.step(p.action, p.argument).text


# ---------------------------------------------------------------- noise

def test_noise_is_seeded_and_replaces_about_p_of_observations(wiki):
    def run(seed):
        noisy = NoisyTool(Wiki(PAGES), p=0.5, seed=seed)
        return [noisy.step("search", "Velmora").text for _ in range(400)], noisy.replaced

    texts, replaced = run(0)
    assert (texts, replaced) == run(0)
    assert texts != run(1)[0]
    assert 150 <= replaced <= 250
    real = " ".join(PAGES[0].sentences)
    kinds = {"none" if t == "None" else "real" if t == real else "random" for t in texts}
    assert kinds == {"none", "real", "random"} or kinds == {"none", "real"}  # random may hit Velmora itself
    assert "None" in texts


def test_noise_never_touches_finish_and_p0_is_clean(wiki):
    noisy = NoisyTool(wiki, p=1.0, seed=0, kinds=("none",))
    assert noisy.step("search", "Velmora").text == "None"
    assert noisy.step("finish", "x").done
    clean = NoisyTool(Wiki(PAGES), p=0.0)
    assert all(clean.step("search", "Velmora").text.startswith("Velmora") for _ in range(50))
    with pytest.raises(ValueError):
        NoisyTool(wiki, p=1.5)
    with pytest.raises(ValueError):
        NoisyTool(wiki, p=0.5, kinds=("loud",))


# ---------------------------------------------------------------- corpora

def test_corpus_from_jsonl_with_plain_text(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"title": "A", "text": "First one. Second one! Third?"}\n\n{"title": "B", "text": "Only."}\n')
    pages = load_corpus(path)
    assert pages[0] == Page("A", ("First one.", "Second one!", "Third?"))
    assert Wiki(pages).search("a") == "First one. Second one! Third?"


def test_corpus_errors_name_file_line_and_field(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text('{"title": "A", "text": "x"}\n{"text": "no title"}\n')
    with pytest.raises(DataError, match=r"c\.jsonl:2: field 'title': missing"):
        load_corpus(path)
    path.write_text('{"title": "A", "text": 5}\n')
    with pytest.raises(DataError, match=r"c\.jsonl:1: field 'text': expected str, got int"):
        load_corpus(path)
    path.write_text('{"title": "A", "text": "x"}\n{oops\n')
    with pytest.raises(DataError, match=r"c\.jsonl:2: not valid JSON"):
        load_corpus(path)
    with pytest.raises(DataError, match="nothing.jsonl: no such file"):
        load_corpus(tmp_path / "nothing.jsonl")
    bad = tmp_path / "h.json"
    bad.write_text(json.dumps([{"question": "q", "answer": "a", "context": [["T", "not a list"]]}]))
    with pytest.raises(DataError, match=r"h\.json:1: field 'context': context\[0\]"):
        load_corpus(bad)


def test_world_folder_corpus(small_world):
    wiki = Wiki.from_file(small_world)
    page = wiki.pages[0]
    assert wiki.search(page.title.upper()) == page.text


def test_hotpotqa_sample_gold_titles_and_question_retrieval():
    """On real HotpotQA: every supporting title returns its paragraph; the raw question puts a
    gold title among the Similar titles for at least 70% of questions."""
    path = shared(HOTPOT_SAMPLE.name)
    data = json.loads(path.read_text())
    wiki = Wiki.from_file(path)
    hits = 0
    for rec in data:
        context = dict((t, s) for t, s in rec["context"])
        gold = {t for t, _ in rec["supporting_facts"]}
        for title in gold:
            assert wiki.search(title) == " ".join(s.strip() for s in context[title] if s.strip())
        similar = wiki.search(rec["question"]).rsplit("\nSimilar: [", 1)[1][:-1]
        hits += any(f", {t}, " in f", {similar}, " for t in gold)  # titles may hold ", " themselves
    rate = hits / len(data)
    print(f"gold title among Similar for {rate:.1%} of {len(data)} questions")
    assert rate >= 0.70
