"""evaluate driven by a scripted model: metrics, noise, prompts, resume."""

import json

import pytest

from fireflan.evaluate import EvalConfig, evaluate, summarize
from fireflan.models.fake import ReplayModel
from fireflan.models.scripted import ScriptedExpert


def test_metrics_of_a_scripted_expert_and_resume(small_world, tmp_path):
    from fireflan.tasks import get_task

    examples = get_task("world").load(small_world, split="test")
    config = EvalConfig(out=str(tmp_path), data=str(small_world), limit=20)
    metrics = evaluate(config, model=ScriptedExpert(examples))
    assert metrics["questions"] == 20 and metrics["em"] == 1.0 and metrics["format_error_rate"] == 0.0
    assert metrics["few_shot"] is False and metrics["ran_now"] == 20
    again = evaluate(EvalConfig(out=str(tmp_path), data=str(small_world), limit=30), model=ScriptedExpert(examples))
    assert again["resumed"] == 20 and again["ran_now"] == 10 and again["questions"] == 30
    fewer = evaluate(EvalConfig(out=str(tmp_path), data=str(small_world), limit=5), model=ScriptedExpert(examples))
    assert fewer["questions"] == 5 and fewer["ran_now"] == 0  # the first 5 of the 30 in the folder, nothing run


def test_format_errors_and_invented_observations_are_measured(small_world, tmp_path):
    outputs = ["I do not know.", "Thought: x\nAction: finish[Velmora]\nResult: Velmora, as I imagine it."] * 3
    metrics = evaluate(EvalConfig(out=str(tmp_path), data=str(small_world), limit=3, max_calls=2),
                       model=ReplayModel(outputs))
    assert metrics["turns"] == 2.0
    assert metrics["format_error_rate"] == 0.5 and metrics["hallucinated_observation_rate"] == 0.5


def test_noise_and_few_shot_prompt(small_world, tmp_path):
    from fireflan.tasks import get_task

    examples = get_task("world").load(small_world, split="test")
    expert = ScriptedExpert(examples)
    metrics = evaluate(EvalConfig(out=str(tmp_path / "n"), data=str(small_world), limit=20, noise=0.5,
                                  max_calls=12), model=expert)
    assert metrics["noise"] == 0.5 and metrics["turns"] > 2.5
    replay = ReplayModel(["Thought: x\nAction: finish[no]"])
    evaluate(EvalConfig(out=str(tmp_path / "f"), data=str(small_world), limit=1, prompt="fewshot"), model=replay)
    assert "Here are some examples." in replay.requests[0]["messages"][0]["content"]
    with pytest.raises(ValueError, match="--noise"):
        evaluate(EvalConfig(out=str(tmp_path / "x"), noise=2.0), model=replay)
    with pytest.raises(ValueError, match="--observations must be one of pages, snippets, got 'google'"):
        evaluate(EvalConfig(out=str(tmp_path / "o"), observations="google"), model=replay)


def test_snippet_observations_reach_the_agent(small_world, tmp_path):
    from fireflan.tasks import get_task, make_tool

    examples = get_task("world").load(small_world, split="test")
    config = EvalConfig(out=str(tmp_path), data=str(small_world), limit=10, observations="snippets")
    metrics = evaluate(config, model=ScriptedExpert(examples))
    rows = [json.loads(line) for line in (tmp_path / "trajectories.jsonl").read_text().splitlines()]
    searched = [s for r in rows for s in r["steps"] if s["action"] == "search"]
    pages, snippets = (make_tool("world", examples, str(small_world), observations=o) for o in ("pages", "snippets"))
    assert searched and all(s["observation"] == snippets.search(s["argument"]) for s in searched)
    assert sum(s["observation"] != pages.search(s["argument"]) for s in searched) >= len(searched) // 2
    assert metrics["questions"] == 10


def test_summarize_empty_and_bad_model(tmp_path):
    assert summarize([]) == {"questions": 0}
    with pytest.raises(ValueError, match="--model"):
        evaluate(EvalConfig(out=str(tmp_path), model="runs/nothing.bin", limit=1))
    assert list(tmp_path.iterdir()) == []  # refused before it wrote its settings


def test_hallucination_probes(small_world, tmp_path):
    from fireflan.agent.probes import misuse_without_tools

    assert misuse_without_tools("Action: search[Velmora]") == {"action": True, "observation": False}
    assert misuse_without_tools("I think search[x] then\nObservation: made up") == {"action": True,
                                                                                     "observation": True}
    assert misuse_without_tools("I cannot look this up.") == {"action": False, "observation": False}

    class Eager:  # always searches, even with no tools: every probe is misuse
        name, last_usage = "eager", None

        def generate(self, messages, **kw):
            return "Thought: let me look.\nAction: search[Velmora]\nObservation: Velmora is big."

    config = EvalConfig(out=str(tmp_path), data=str(small_world), limit=3, probes=4)
    metrics = evaluate(config, model=Eager())
    probes = metrics["probes"]
    assert probes["no_tools"] == {"questions": 4, "tool_misuse_rate": 1.0, "invented_observation_rate": 1.0}
    assert probes["needs_none"]["questions"] == 4 and probes["needs_none"]["tool_misuse_rate"] == 1.0

    # the replies are kept: evaluating again asks the model nothing (a kill's torn last line is cut off)
    kept = tmp_path / "probes.jsonl"
    lines = kept.read_text().splitlines()
    assert len(lines) == 8 and {json.loads(x)["probe"] for x in lines} == {"no_tools", "needs_none"}
    kept.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])

    class Counting(Eager):
        calls = 0

        def generate(self, messages, **kw):
            Counting.calls += 1
            return super().generate(messages, **kw)

    assert evaluate(config, model=Counting())["probes"] == probes and Counting.calls == 1
    assert len(kept.read_text().splitlines()) == 8


def test_report_compares_runs_with_a_table_and_plots(small_world, tmp_path):
    from fireflan.report import ReportConfig, report
    from fireflan.tasks import get_task

    examples = get_task("world").load(small_world, split="test")
    evaluate(EvalConfig(out=str(tmp_path / "clean"), data=str(small_world), limit=10), model=ScriptedExpert(examples))
    evaluate(EvalConfig(out=str(tmp_path / "noisy"), data=str(small_world), limit=10, noise=0.5, max_calls=3),
             model=ScriptedExpert(examples))
    out = report(ReportConfig(runs=f"{tmp_path / 'clean'},{tmp_path / 'noisy'}", out=str(tmp_path / "r.md")))
    text = out.read_text()
    assert "| clean |" in text and "| noisy |" in text and "| 1.000 |" in text
    for name in ("r-em.png", "r-noise.png", "r-turns.png"):
        assert (tmp_path / name).stat().st_size > 1000 and f"({name})" in text
    from fireflan.io import DataError

    with pytest.raises(DataError, match="metrics.json"):
        report(ReportConfig(runs=str(tmp_path), out=str(tmp_path / "x.md")))


def test_a_run_folder_refuses_other_settings(small_world, tmp_path):
    from fireflan.tasks import get_task

    examples = get_task("world").load(small_world, split="test")
    evaluate(EvalConfig(out=str(tmp_path), data=str(small_world), limit=2), model=ScriptedExpert(examples))
    with pytest.raises(ValueError, match=r"other settings \(method: 'react' -> 'backtrack'\)"):
        evaluate(EvalConfig(out=str(tmp_path), data=str(small_world), limit=2, method="backtrack"),
                 model=ScriptedExpert(examples))


# --------------------------------------------------------------------------- why an episode failed

def _example(question="Who directed Harbor Letters and where was he born?", answer="Velmora", **kw):
    from fireflan.tasks.base import Example

    context = [["Harbor Letters", ["Harbor Letters is a 1998 film directed by Kaelo Brenn.", "It is long."]],
               ["Kaelo Brenn", ["Kaelo Brenn (born 1950) is a director.", "He was born in Velmora."]],
               ["Other page", ["Nothing of use is written on this page."]]]
    facts = [["Harbor Letters", 0], ["Kaelo Brenn", 1]]
    return Example(id="q", question=question, answer=answer, task="hotpotqa", type="bridge",
                   supporting_facts=kw.pop("facts", facts), context=kw.pop("context", context), **kw)


def _record(steps, answer=None, em=0.0):
    return {"id": "q", "answer": answer, "score": {"em": em},
            "steps": [{"observation": o, "format_error": e, "raw": r} for o, e, r in steps]}


HARBOR = "Harbor Letters is a 1998 film directed by Kaelo Brenn. It is long."
BRENN = "Kaelo Brenn (born 1950) is a director. He was born in Velmora."
OTHER = "Nothing of use is written on this page."


@pytest.mark.parametrize("steps, answer, em, expected", [
    ([(HARBOR, False, "a"), (BRENN, False, "b"), ("Episode finished", False, "c")], "Velmora", 1.0, "right"),
    ([(HARBOR, False, "a"), ("Invalid action", True, "x"), ("Invalid action", True, "y")], None, 0.0, "format_loop"),
    ([(OTHER, False, "s"), (OTHER, False, "s")], None, 0.0, "format_loop"),  # the same search again
    ([(HARBOR, False, "a"), (BRENN, False, "b"), ("Episode finished", False, "c")], "Kaelo Brenn", 0.0,
     "answer_seen"),
    ([(OTHER, False, "a"), ("Episode finished", False, "c")], "Paris", 0.0, "no_gold_page"),
    ([(HARBOR, False, "a"), ("Episode finished", False, "c")], "Paris", 0.0, "some_gold_pages"),
    ([(OTHER, False, "a"), (HARBOR, False, "b"), (OTHER, False, "c")], None, 0.0, "some_gold_pages"),
])
def test_outcome_names_where_an_episode_went_wrong(steps, answer, em, expected):
    from fireflan.evaluate import outcome

    assert outcome(_record(steps, answer, em), _example()) == expected


def test_outcome_of_yes_no_questions_and_of_questions_without_pages():
    from fireflan.evaluate import outcome, outcome_counts

    yes_no = _example(question="Are Harbor Letters and Kaelo Brenn both from Velmora?", answer="yes")
    both = [(HARBOR, False, "a"), (BRENN, False, "b"), ("Episode finished", False, "c")]
    assert outcome(_record(both, "no"), yes_no) == "yesno_wrong"
    assert outcome(_record(both[:2] + [(OTHER, False, "z")]), yes_no) == "out_of_steps"  # read both, never finished
    plain = _example(answer="Paris", facts=[], context=[])
    assert outcome(_record([(OTHER, False, "a"), ("done", False, "b")], "Rome"), plain) == "wrong_answer"
    assert outcome_counts([_record(both, "Velmora", 1.0)], [plain]) is None  # no paragraphs: the classes do not apply
    counts = outcome_counts([_record(both, "Velmora", 1.0), _record(both, "no")], [yes_no])
    assert counts["right"] == 1 and counts["yesno_wrong"] == 1 and sum(counts.values()) == 2


def test_evaluate_counts_outcomes_and_gives_an_interval(small_world, tmp_path):
    outputs = ["Thought: I know it.\nAction: finish[Nobody]"] * 10
    metrics = evaluate(EvalConfig(out=str(tmp_path), data=str(small_world), limit=10, max_calls=2),
                       model=ReplayModel(outputs))
    assert metrics["em"] == 0.0 and metrics["em_ci95"][0] == 0.0 and 0.2 < metrics["em_ci95"][1] < 0.35
    counts = metrics["outcomes"]
    assert sum(counts.values()) == 10 and counts["right"] == 0
    assert counts["no_gold_page"] + counts["wrong_answer"] == 10  # questions needing no tool have no gold page
