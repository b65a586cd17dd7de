"""Multi-branch voting, task decomposition and backtracking, driven by scripted fake models."""

import pytest

from fireflan.agent.loop import AgentConfig, Step, Trajectory, failed_step
from fireflan.agent.methods import run_method, vote
from fireflan.models.fake import ReplayModel
from fireflan.tasks import get_task
from fireflan.tasks.base import Example
from fireflan.tools import Page, Wiki

PAGES = [Page("Velmora", ("Velmora is a city in Ostrand.", "It was founded in 1204.")),
         Page("Aldo Brenik", ("Aldo Brenik is a film director.", "He was born in Velmora.")),
         Page("The Glass Harbor", ("The Glass Harbor is a 1994 film.", "It was directed by Aldo Brenik."))]
EX = Example(id="q1", question="Where was the director of The Glass Harbor born?", answer="Velmora", task="world",
             type="bridge")


def score(answer):
    return get_task("world").score(answer, EX)


def _traj(answer, n_steps):
    steps = [Step("t", "search", "x", "o", "")] * (n_steps - 1) + [Step("t", "finish", answer, "", "")]
    return Trajectory(id="q", task="world", method="react", model="m", seed=0, question="?", gold="", steps=steps,
                      answer=answer)


def test_vote_majority_ties_and_unfinished():
    assert vote([_traj("Paris", 3), _traj("paris.", 4), _traj("Rome", 2)])[0] == 0  # normalised majority
    assert vote([_traj("Rome", 4), _traj("Paris", 2)])[0] == 1  # a tie: the fewest steps wins
    assert vote([_traj("Rome", 2), _traj("Paris", 2)])[0] == 0  # then the first
    unfinished = _traj(None, 1)
    unfinished.answer = None
    assert vote([unfinished, _traj("Rome", 3)])[0] == 1


def test_branches_vote_and_report_agreement():
    model = ReplayModel(["Thought: a\nAction: finish[Ostrand]", "Thought: b\nAction: finish[Velmora]",
                         "Thought: c\nAction: finish[velmora]"])
    traj = run_method("branches", model, Wiki(PAGES), EX, k=3, score=score)
    assert traj.method == "branches" and traj.answer == "Velmora" and traj.success
    assert traj.extra["votes"] == {"ostrand": 1, "velmora": 2} and traj.extra["agreement"] == 0.6667
    assert traj.budget()["calls"] == 3
    assert [r["seed"] for r in model.requests] == [0, 1, 2]
    assert all(r["temperature"] == 0.7 for r in model.requests)


def test_backtracking_takes_back_failed_steps_within_its_budget():
    model = ReplayModel([
        "Thought: a\nAction: search[The Glass Harbor]",
        "Thought: again\nAction: search[The Glass Harbor]",  # a repeat: taken back
        "Thought: nonsense",  # unparseable: taken back
        "Thought: next\nAction: search[Aldo Brenik]",
        "Thought: done\nAction: finish[Velmora]"])
    wiki = Wiki(PAGES)
    traj = run_method("backtrack", model, wiki, EX, backtracks=2, restarts=0, score=score)
    assert traj.method == "backtrack" and traj.success
    assert [s.argument for s in traj.steps] == ["The Glass Harbor", "Aldo Brenik", "Velmora"]
    assert len(traj.discarded) == 2 and traj.budget()["calls"] == 5
    # the retried calls sampled at a temperature, with new seeds; the conversation never saw the failures
    assert [r["temperature"] for r in model.requests] == [0.0, 0.0, 0.7, 0.7, 0.7]
    assert all("nonsense" not in m["content"] for m in model.requests[-1]["messages"])


def test_backtracking_restores_the_tool_state():
    model = ReplayModel(["Thought: a\nAction: search[Aldo Brenik]", "Thought: b\nAction: search[Nowhere Land Zz]",
                         "Thought: c\nAction: lookup[born]", "Thought: d\nAction: finish[Velmora]"])
    wiki = Wiki(PAGES)
    traj = run_method("backtrack", model, wiki, EX, backtracks=1, restarts=0, score=score)
    # the failed search (nothing found) was taken back, so lookup still reads Aldo Brenik's page
    assert traj.steps[1].observation == "(Result 1 / 1) He was born in Velmora."


def test_budget_exhausted_keeps_the_step():
    model = ReplayModel(["Thought: x", "Thought: y", "Thought: z\nAction: finish[Velmora]"])
    traj = run_method("backtrack", model, Wiki(PAGES), EX, backtracks=1, restarts=0, config=AgentConfig(max_calls=2),
                      score=score)
    assert len(traj.discarded) == 1 and traj.steps[0].format_error and traj.success


def test_failed_step_rules():
    ok = Step("t", "search", "A", "A is a city.", "")
    assert not failed_step(ok, [])
    assert failed_step(ok, [ok])
    assert failed_step(Step("t", "search", "B", 'Could not find "B". Try other words.', ""), [])
    assert failed_step(Step("", None, None, "Invalid action", "", format_error=True), [])


def test_decompose_plans_solves_sub_questions_and_composes():
    model = ReplayModel([
        "Sub-question 1: Who directed The Glass Harbor?\nSub-question 2: Where was that director born?",
        "Thought: search it\nAction: search[The Glass Harbor]", "Thought: found\nAction: finish[Aldo Brenik]",
        "yes: the page says so",
        "Thought: search him\nAction: search[Aldo Brenik]", "Thought: found\nAction: finish[Velmora]",
        "yes: his page says so",
        "Thought: The director was born in Velmora.\nAction: finish[Velmora]"])
    traj = run_method("decompose", model, Wiki(PAGES), EX, score=score)
    assert traj.method == "decompose" and traj.success and traj.answer == "Velmora"
    assert traj.extra["subquestions"] == ["Who directed The Glass Harbor?", "Where was that director born?"]
    assert traj.extra["subanswers"] == ["Aldo Brenik", "Velmora"]
    assert traj.budget()["calls"] == 8 and traj.extra["sub_verdicts"] == [1.0, 1.0]
    second = model.requests[4]["messages"][-1]["content"]
    assert "Known: Who directed The Glass Harbor? -> Aldo Brenik" in second
    assert "Facts found" in model.requests[7]["messages"][-1]["content"]


def test_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        run_method("tree", ReplayModel([]), Wiki(PAGES), EX)


def test_branches_stop_once_a_majority_is_certain():
    model = ReplayModel(["Thought: a\nAction: finish[Velmora]"] * 3 + ["Thought: b\nAction: finish[Ostrand]"] * 2)
    traj = run_method("branches", model, Wiki(PAGES), EX, k=5, score=score)
    assert traj.extra["sampled"] == 3 and traj.extra["agreement"] == 1.0 and traj.answer == "Velmora"
    assert len(model.requests) == 3
    from fireflan.agent.methods import run_branches

    model = ReplayModel(["Thought: a\nAction: finish[Velmora]"] * 5)
    full = run_branches(model, Wiki(PAGES), EX, k=5, early_stop=False, score=score)
    assert full.extra["sampled"] == 5 and full.answer == "Velmora"


def test_branches_side_by_side_stop_after_a_first_wave_that_agrees():
    from fireflan.models.fake import BatchReplayModel

    model = BatchReplayModel(["Thought: a\nAction: finish[Velmora]"] * 5)
    traj = run_method("branches", model, Wiki(PAGES), EX, k=5, score=score)
    assert model.batches == [3] and traj.extra["sampled"] == 3 and traj.answer == "Velmora"
    assert [r["seed"] for r in model.requests] == [0, 1, 2]


def test_branches_side_by_side_run_a_second_wave_when_the_first_disagrees():
    from fireflan.models.fake import BatchReplayModel

    model = BatchReplayModel(["Thought: a\nAction: finish[Velmora]", "Thought: b\nAction: finish[Ostrand]",
                              "Thought: c\nAction: finish[Velmora]", "Thought: d\nAction: finish[Ostrand]",
                              "Thought: e\nAction: finish[velmora]"])
    traj = run_method("branches", model, Wiki(PAGES), EX, k=5, score=score)
    assert model.batches == [3, 2] and traj.extra["sampled"] == 5
    assert traj.extra["votes"] == {"velmora": 3, "ostrand": 2} and traj.success
    assert [r["seed"] for r in model.requests] == [0, 1, 2, 3, 4]


def test_branches_side_by_side_keep_their_own_tool_state():
    from fireflan.models.fake import BatchReplayModel

    # one batched call per step: branch 0 reads Aldo Brenik's page, branch 1 Velmora's, each looks up in its own
    model = BatchReplayModel([
        "Thought: a\nAction: search[Aldo Brenik]", "Thought: b\nAction: search[Velmora]",
        "Thought: a\nAction: lookup[born]", "Thought: b\nAction: lookup[founded]",
        "Thought: a\nAction: finish[Velmora]", "Thought: b\nAction: finish[Velmora]"])
    from fireflan.agent.methods import run_branches

    traj = run_branches(model, Wiki(PAGES), EX, k=2, score=score, early_stop=False)
    assert model.batches == [2, 2, 2]
    first, second = model.requests[4]["messages"], model.requests[5]["messages"]
    assert first[-1]["content"] == "Observation: (Result 1 / 1) He was born in Velmora."
    assert second[-1]["content"] == "Observation: (Result 1 / 1) It was founded in 1204."
    assert traj.extra["sampled"] == 2 and traj.budget()["calls"] == 6


def test_an_early_stop_counts_what_the_abandoned_branches_spent():
    from fireflan.models.fake import BatchReplayModel

    # wave 1 (3 branches) splits 2:1; in wave 2 branch 3 makes the majority certain while branch 4 is still
    # searching: branch 4 is abandoned, but its call is in the budget
    model = BatchReplayModel(["Thought: a\nAction: finish[Velmora]", "Thought: b\nAction: finish[Velmora]",
                              "Thought: c\nAction: finish[Ostrand]",
                              "Thought: d\nAction: finish[Velmora]", "Thought: e\nAction: search[Velmora]"])
    traj = run_method("branches", model, Wiki(PAGES), EX, k=5, score=score)
    assert model.batches == [3, 2] and traj.extra["sampled"] == 4 and traj.budget()["calls"] == 5
    assert traj.extra["votes"] == {"velmora": 3, "ostrand": 1} and traj.success


def test_decompose_restarts_a_sub_question_the_judge_says_is_not_answered():
    model = ReplayModel([
        "Sub-question 1: Who directed The Glass Harbor?\nSub-question 2: Where was that director born?",
        "Thought: guess\nAction: finish[Velmora]", "no: nothing was read yet",
        "Thought: search it\nAction: search[The Glass Harbor]", "Thought: found\nAction: finish[Aldo Brenik]",
        "yes: the page names him",
        "Thought: search him\nAction: search[Aldo Brenik]", "Thought: found\nAction: finish[Velmora]",
        "yes: his page says so",
        "Thought: The director was born in Velmora.\nAction: finish[Velmora]"])
    traj = run_method("decompose", model, Wiki(PAGES), EX, score=score)
    assert traj.extra["subanswers"] == ["Aldo Brenik", "Velmora"] and traj.success
    assert traj.extra["sub_verdicts"] == [0.0, 1.0, 1.0]
    judge_prompt = model.requests[2]["messages"]
    assert judge_prompt[-2]["content"].endswith("finish[Velmora]") and "Judge the answer" in judge_prompt[-1]["content"]
    restart = model.requests[3]["messages"][-1]["content"]  # the sub-question again, with its failed attempt
    assert restart.startswith("Who directed The Glass Harbor?") and "finish[Velmora]" in restart
    assert "adjust the actions" in restart
    assert [s.argument for s in traj.discarded] == ["Velmora"] and traj.budget()["calls"] == 10


def test_decompose_falls_back_to_react_on_a_one_line_plan():
    model = ReplayModel(["Sub-question 1: Where was the director of The Glass Harbor born?",
                         "Thought: a\nAction: finish[Velmora]"])
    traj = run_method("decompose", model, Wiki(PAGES), EX, score=score)
    assert traj.success and traj.budget()["calls"] == 2
    assert model.requests[1]["messages"][-1]["content"] == EX.question


def test_decompose_falls_back_to_react_when_the_plan_restates_the_question():
    model = ReplayModel(["Sub-question 1: Where was the director of the Glass Harbor born?\n"
                         "Sub-question 2: Where was that director born?",
                         "Thought: a\nAction: finish[Velmora]"])
    traj = run_method("decompose", model, Wiki(PAGES), EX, score=score)
    assert traj.success and traj.budget()["calls"] == 2 and traj.steps[0].action == "plan"
    assert model.requests[1]["messages"][-1]["content"] == EX.question


def test_decompose_answers_with_the_last_sub_answer_when_the_composer_does_not_finish():
    model = ReplayModel([
        "Sub-question 1: Who directed The Glass Harbor?\nSub-question 2: Where was that director born?",
        "Thought: search it\nAction: search[The Glass Harbor]", "Thought: found\nAction: finish[Aldo Brenik]",
        "yes: the page says so",
        "Thought: search him\nAction: search[Aldo Brenik]", "Thought: found\nAction: finish[Velmora]",
        "yes: his page says so",
        "Thought: The director was born there."])  # no action: the composer failed
    traj = run_method("decompose", model, Wiki(PAGES), EX, score=score)
    assert traj.answer == "Velmora" and traj.success and traj.steps[-1].format_error


def test_branches_by_step_takes_the_candidate_the_judge_prefers():
    from fireflan.models.fake import BatchReplayModel

    model = BatchReplayModel([
        "Thought: a\nAction: search[Velmora]", "Thought: b\nAction: search[The Glass Harbor]",  # step 1
        "no: a city is not the film", "yes: the film's page names its director",  # the judge, per candidate
        "Thought: c\nAction: search[Aldo Brenik]", "Thought: c\nAction: search[Aldo Brenik]",  # the same twice
        "Thought: d\nAction: finish[Velmora]", "Thought: e\nAction: nonsense[x]"])  # one unreadable
    traj = run_method("branches", model, Wiki(PAGES), EX, branch_by="step", candidates=2, score=score)
    assert [s.argument for s in traj.steps] == ["The Glass Harbor", "Aldo Brenik", "Velmora"] and traj.success
    assert [s["p_yes"] for s in traj.extra["steps"]] == [[0.0, 1.0], [None, None], [None, None]]
    assert model.batches == [2, 2, 2]  # the judge was asked only where two distinct actions were left
    judged = model.requests[2]["messages"]
    assert judged[-2]["content"] == "Thought: a\nAction: search[Velmora]"
    assert judged[-1]["content"].startswith("Observation: Velmora is a city")
    assert [r["temperature"] for r in model.requests if r["stop"] != ["\n"]][:2] == [0.0, 0.7]
    assert traj.budget()["calls"] == 8


def test_backtrack_restarts_with_the_failed_attempt_when_the_judge_says_no():
    model = ReplayModel([
        "Thought: guess\nAction: finish[Ostrand]", "no: it never read a page",
        "Thought: this time search\nAction: search[The Glass Harbor]",
        "Thought: next\nAction: search[Aldo Brenik]", "Thought: done\nAction: finish[Velmora]",
        "yes: the pages say so"])
    traj = run_method("backtrack", model, Wiki(PAGES), EX, backtracks=0, restarts=2, score=score)
    assert traj.success and traj.question == EX.question and traj.extra["kept"] == 1
    assert [a["p_yes"] for a in traj.extra["attempts"]] == [0.0, 1.0]
    restart = model.requests[2]["messages"][0]["content"]
    assert restart.startswith(EX.question) and "An earlier attempt:" in restart and "finish[Ostrand]" in restart
    assert "adjust the actions" in restart
    assert [s.argument for s in traj.discarded] == ["Ostrand"] and traj.budget()["calls"] == 6


def test_backtrack_keeps_the_best_judged_attempt_when_every_round_is_rejected():
    model = ReplayModel(["Thought: a\nAction: finish[Velmora]", "maybe",
                         "Thought: b\nAction: finish[Ostrand]", "no: wrong"])
    traj = run_method("backtrack", model, Wiki(PAGES), EX, backtracks=0, restarts=1, score=score)
    assert traj.answer == "Velmora" and traj.extra["kept"] == 0  # 0.5 (undecided) beats 0.0


def test_every_method_reports_its_seconds():
    model = ReplayModel(["Thought: a\nAction: finish[Velmora]"])
    assert run_method("react", model, Wiki(PAGES), EX).budget()["seconds"] >= 0


def test_the_scripted_expert_plans_composes_and_answers_a_restart():
    from fireflan.agent import roles
    from fireflan.agent.loop import run_episode
    from fireflan.models.scripted import ScriptedExpert
    from fireflan.tasks import world

    ex = next(e for e in world.load(split="train") if e.type == "bridge" and len(e.subquestions) == 2)
    expert = ScriptedExpert([ex])
    plan = expert.generate(roles.plan_messages(ex.question))
    assert roles.parse_plan(plan) == [q for q, _ in ex.subquestions]
    composed = expert.generate(roles.compose_messages(ex.question, [tuple(s) for s in ex.subquestions]))
    assert composed.endswith(f"finish[{ex.answer}]") and ex.subquestions[-1][0] in composed
    restarted = roles.restart_question(ex.question, "Thought: a guess\nAction: finish[nobody]")
    assert run_episode(expert, Wiki([Page(t, tuple(s)) for t, s in ex.context]),
                       Example(**{**ex.__dict__, "question": restarted})).answer == ex.answer


class Leaning(ReplayModel):
    """A judge read by P(yes) that leans on the kind of step: 0.3 for any answer, 0.55 for any other step."""

    def yes_probabilities(self, conversations):
        from fireflan.models.base import Usage

        return [(0.3 if "finish[" in c[-2]["content"] else 0.55, Usage(calls=1)) for c in conversations]


def test_a_calibrated_judge_ranks_candidates_by_their_margin_over_their_kinds_threshold():
    from fireflan.agent.judge import Thresholds
    from fireflan.agent.methods import choose_step

    outputs = [("Thought: a\nAction: search[Velmora]", None), ("Thought: b\nAction: finish[Velmora]", None)]
    messages = [{"role": "user", "content": EX.question}]
    best, scores, _ = choose_step(Leaning([]), Wiki(PAGES), messages, outputs)
    assert best == 0 and scores == [0.55, 0.3]  # at 0.5 the search always wins
    best, _, _ = choose_step(Leaning([]), Wiki(PAGES), messages, outputs, Thresholds(answer=0.25, step=0.6))
    assert best == 1  # the answer clears its bar, the search does not


def test_backtrack_takes_an_answer_at_the_calibrated_threshold():
    from fireflan.agent.judge import Thresholds

    rejected = run_method("backtrack", Leaning(["Thought: a\nAction: finish[Velmora]"] * 3), Wiki(PAGES), EX,
                          backtracks=0, restarts=2, score=score)
    assert len(rejected.extra["attempts"]) == 3  # 0.3 < 0.5: restarted twice
    taken = run_method("backtrack", Leaning(["Thought: a\nAction: finish[Velmora]"]), Wiki(PAGES), EX,
                       backtracks=0, restarts=2, score=score, thresholds=Thresholds(answer=0.25))
    assert len(taken.extra["attempts"]) == 1 and taken.success


def test_decompose_without_the_judge_asks_it_nothing():
    from fireflan.recipes.branches import BranchesRecipe, variant

    model = ReplayModel([
        "Sub-question 1: Who directed The Glass Harbor?\nSub-question 2: Where was that director born?",
        "Thought: search it\nAction: search[The Glass Harbor]", "Thought: found\nAction: finish[Aldo Brenik]",
        "Thought: search him\nAction: search[Aldo Brenik]", "Thought: found\nAction: finish[Velmora]",
        "Thought: The director was born in Velmora.\nAction: finish[Velmora]"])
    method, options = variant("decompose-unjudged", BranchesRecipe())
    traj = run_method(method, model, Wiki(PAGES), EX, score=score, **options)
    assert traj.success and traj.extra["sub_verdicts"] == [] and traj.budget()["calls"] == 6


def test_the_rest_of_the_branches_start_beside_a_running_one_once_no_majority_is_possible():
    """Branches 0 and 1 finish at once with different answers while branch 2 still searches: no answer can
    reach three of five with one branch running, so branches 3 and 4 start beside it (a batch of 3), not
    after it; the same five branches run as in two waves, in fewer calls."""
    from fireflan.models.fake import BatchReplayModel

    model = BatchReplayModel([
        "Thought: a\nAction: finish[Velmora]", "Thought: b\nAction: finish[Ostrand]",
        "Thought: c\nAction: search[Aldo Brenik]",                                   # step 1: 0, 1, 2
        "Thought: c\nAction: finish[Velmora]", "Thought: d\nAction: finish[Velmora]",
        "Thought: e\nAction: finish[Ostrand]"])                                      # step 2: 2, 3, 4
    traj = run_method("branches", model, Wiki(PAGES), EX, k=5, score=score)
    assert model.batches == [3, 3] and traj.extra["sampled"] == 5
    assert traj.extra["votes"] == {"velmora": 3, "ostrand": 2} and traj.answer == "Velmora"
    assert [r["seed"] for r in model.requests] == [0, 1, 2, 2, 3, 4]
    # one answer so far and two branches running: a majority is still possible, so nothing more starts
    model = BatchReplayModel([
        "Thought: a\nAction: finish[Velmora]", "Thought: b\nAction: search[Aldo Brenik]",
        "Thought: c\nAction: search[Velmora]",
        "Thought: b\nAction: finish[Velmora]", "Thought: c\nAction: finish[Velmora]"])
    traj = run_method("branches", model, Wiki(PAGES), EX, k=5, score=score)
    assert model.batches == [3, 2] and traj.extra["sampled"] == 3 and traj.answer == "Velmora"
