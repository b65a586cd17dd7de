"""The agent loop driven by scripted fake models, and the scripted expert through the real tool."""

import json

import pytest
from helpers import HOTPOT_SAMPLE, shared

from fireflan.agent.loop import REFLECT, AgentConfig, Trajectory, run_episode
from fireflan.agent.prompts import few_shot_prefix
from fireflan.models.base import render
from fireflan.models.fake import ReplayModel
from fireflan.models.scripted import ScriptedExpert, notool_reasoning
from fireflan.tasks import bind, get_task, make_tool
from fireflan.tasks.base import Example
from fireflan.tools import Page, Wiki

PAGES = [Page("Velmora", ("Velmora is a city in Ostrand.", "It was founded in 1204.")),
         Page("Aldo Brenik", ("Aldo Brenik is a film director.", "He was born in Velmora."))]
EX = Example(id="q1", question="Where was Aldo Brenik born?", answer="Velmora", task="world", type="single",
             supporting_facts=[["Aldo Brenik", 1]], context=[["Aldo Brenik", list(PAGES[1].sentences)]])


def score(answer):
    return get_task("world").score(answer, EX)


def test_react_episode_records_every_step():
    model = ReplayModel(["Thought: I need his page.\nAction: search[Aldo Brenik]",
                         "Thought: He was born in Velmora.\nAction: finish[Velmora]"])
    traj = run_episode(model, Wiki(PAGES), EX, score=score)
    assert traj.success and traj.answer == "Velmora" and len(traj.steps) == 2
    first = traj.steps[0]
    assert (first.thought, first.action, first.argument) == ("I need his page.", "search", "Aldo Brenik")
    assert first.observation == "Aldo Brenik is a film director. He was born in Velmora."
    assert first.prompt_tokens > 0 and first.completion_tokens > 0 and first.seconds >= 0
    # the model saw its own turn and the observation, then was asked again with the stop strings
    second = model.requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": "Thought: I need his page.\nAction: search[Aldo Brenik]"}
    assert second[-1]["content"].startswith("Observation: Aldo Brenik is a film director.")
    assert model.requests[0]["stop"] == ["\nObservation", "Observation:"]


def test_parse_errors_become_observations_and_are_counted():
    model = ReplayModel(["I am not sure what to do.", "Thought: ok\nAction: search[Velmora]",
                         "Thought: done\nAction: finish[Velmora]"])
    traj = run_episode(model, Wiki(PAGES), EX, score=score)
    bad = traj.steps[0]
    assert bad.format_error and bad.action is None and bad.observation.startswith("Invalid action")
    assert model.requests[1]["messages"][-1]["content"].startswith("Observation: Invalid action")
    assert traj.success and sum(s.format_error for s in traj.steps) == 1


def test_invented_observations_are_cut_and_counted():
    # a server that ignores stop strings: the model writes the observation itself
    model = ReplayModel(["Thought: x\nAction: search[Aldo Brenik]\nObservation: He was born on Mars.",
                         "Thought: y\nAction: finish[Velmora]"])
    model_stop_ignored = model
    traj = run_episode(model_stop_ignored, Wiki(PAGES), EX, config=AgentConfig(stop=[]), score=score)
    assert traj.steps[0].hallucinated and not traj.steps[1].hallucinated
    assert "Mars" not in model.requests[1]["messages"][-2]["content"]
    assert "Mars" in traj.steps[0].raw  # kept in the record, cut from the conversation


def test_max_calls_ends_an_episode_without_an_answer():
    model = ReplayModel(["Thought: again\nAction: search[Velmora]"] * 3)
    traj = run_episode(model, Wiki(PAGES), EX, config=AgentConfig(max_calls=3), score=score)
    assert len(traj.steps) == 3 and traj.answer is None and not traj.success and traj.score["em"] == 0.0


def test_cot_has_no_tool_and_one_step():
    model = ReplayModel(["Thought: I guess.\nAction: search[Velmora]"])
    traj = run_episode(model, Wiki(PAGES), EX, method="cot", score=score)
    assert len(traj.steps) == 1 and traj.answer is None
    assert traj.steps[0].observation.startswith("No tools are available")


def test_reflexion_retries_after_a_wrong_answer():
    model = ReplayModel(["Thought: guess\nAction: finish[Ostrand]",
                         "Thought: Reflection: I guessed. Let me search.\nAction: search[Aldo Brenik]",
                         "Thought: found\nAction: finish[Velmora]"])
    judge = lambda a, _messages: score(a)["em"] == 1.0  # noqa: E731
    traj = run_episode(model, Wiki(PAGES), EX, method="reflexion", judge=judge, score=score)
    assert traj.success and traj.steps[0].feedback and traj.answer == "Velmora"
    assert model.requests[1]["messages"][-1]["content"] == REFLECT
    # react does not retry
    model = ReplayModel(["Thought: guess\nAction: finish[Ostrand]"])
    assert not run_episode(model, Wiki(PAGES), EX, method="react", judge=judge, score=score).success


def test_trajectory_round_trip_and_fireact_messages():
    model = ReplayModel(["Thought: a\nAction: search[Aldo Brenik]", "Thought: b\nAction: finish[Velmora]"])
    traj = run_episode(model, Wiki(PAGES), EX, score=score)
    again = Trajectory.from_record(json.loads(json.dumps(traj.to_record())))
    assert again == traj
    roles = [m["role"] for m in traj.messages()]
    assert roles == ["user", "assistant", "user", "assistant"]  # no observation after finish


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        run_episode(ReplayModel([]), Wiki(PAGES), EX, method="tot")


# ---------------------------------------------------------------- the scripted expert

@pytest.mark.parametrize("method", ["react", "reflexion", "cot"])
def test_scripted_expert_succeeds_on_every_world_question(small_world, method):
    """Must show: 100% of its trajectories succeed when replayed through the tool, for all methods."""
    task = get_task("world")
    examples = task.load(small_world, split="train") + task.load(small_world, split="test")
    wiki = make_tool("world", examples, small_world)
    mine = [e for e in examples if (e.type == "notool") == (method == "cot")]
    expert = ScriptedExpert(examples, method=method, seed=1, lookup_share=0.5)
    trajs = [run_episode(expert, wiki, e, method=method, score=lambda a, e=e: task.score(a, e)) for e in mine]
    assert len(trajs) > 20 and all(t.success for t in trajs)
    assert not any(s.format_error or s.hallucinated for t in trajs for s in t.steps)
    # replayed: the recorded model texts, fed back through a fresh tool, give the same trajectories
    for traj, e in zip(trajs[:40], mine[:40], strict=False):
        replay = run_episode(ReplayModel([s.raw for s in traj.steps]), wiki, e, method=method,
                             score=lambda a, e=e: task.score(a, e))
        assert replay.success and [s.observation for s in replay.steps] == [s.observation for s in traj.steps]
    if method == "react":  # a search shows the whole page: a lookup would only repeat it
        assert not any(s.action == "lookup" for t in trajs for s in t.steps)
    if method == "reflexion":
        assert all(t.steps[0].action == "search" for t in trajs)
        assert sum("Reflection:" in t.steps[1].thought for t in trajs) > 0.8 * len(trajs)


def test_scripted_expert_thoughts_quote_what_the_tool_returned(small_world):
    task = get_task("world")
    examples = [e for e in task.load(small_world, split="train") if e.type == "bridge"][:30]
    wiki = make_tool("world", examples, small_world)
    expert = ScriptedExpert(examples, seed=3)
    for e in examples:
        traj = run_episode(expert, wiki, e, score=lambda a, e=e: task.score(a, e))
        for before, step in zip(traj.steps, traj.steps[1:], strict=False):
            quoted = [q for q in step.thought.split('"')[1::2]]
            assert all(q in before.observation or any(q in s.observation for s in traj.steps) for q in quoted)
            assert quoted, step.thought


def test_scripted_expert_varied_wording_varies_with_the_seed(small_world):
    task = get_task("world")
    examples = [e for e in task.load(small_world, split="train") if e.type == "bridge"][:20]
    wiki = make_tool("world", examples, small_world)

    def thoughts(seed):
        expert = ScriptedExpert(examples, seed=seed, wording="varied")
        return [s.thought for e in examples for s in run_episode(expert, wiki, e).steps]

    assert thoughts(0) == thoughts(0)
    assert thoughts(0) != thoughts(1)
    assert len({t.split(" ")[0] for t in thoughts(0)}) >= 4


def test_scripted_expert_recovers_from_noise_and_gives_up_honestly(small_world):
    from fireflan.tools import NoisyTool

    task = get_task("world")
    examples = [e for e in task.load(small_world, split="train") if e.type == "bridge"][:40]
    wiki = make_tool("world", examples, small_world)
    expert = ScriptedExpert(examples)
    noisy = NoisyTool(wiki, p=0.4, seed=0, kinds=("none",))
    trajs = [run_episode(expert, noisy, e, config=AgentConfig(max_calls=12), score=lambda a, e=e: task.score(a, e))
             for e in examples]
    assert noisy.replaced > 10
    assert sum(t.success for t in trajs) >= 0.7 * len(trajs)
    assert all(t.answer in (e.answer, "unknown") for t, e in zip(trajs, examples, strict=True))


@pytest.mark.parametrize("context", ["question", "pool"])
def test_scripted_expert_on_real_hotpotqa(context):
    """Each question's own ten paragraphs (HotpotQA's distractor setting), or one wiki of all of them: the expert
    answers every question it finds a walk for (all but a few: a gold page no name on the screen leads to), by
    searches written from the question and the pages it read."""
    from fireflan.audit import derivable
    from fireflan.teach import unwalkable

    task = get_task("hotpotqa")
    examples = task.load(shared(HOTPOT_SAMPLE.name))
    tool = make_tool("hotpotqa", examples, context=context)
    expert = ScriptedExpert(examples, tool=tool)
    walkable = [e for e in examples if unwalkable(e, expert) is None]
    assert len(walkable) >= 0.93 * len(examples)
    trajs = []
    for e in walkable:
        env, score = bind(task, tool, e)
        trajs.append(run_episode(expert, env, e, score=score))
    assert all(t.success for t in trajs)
    for t in trajs:
        screen = t.question
        for s in t.steps:
            assert s.action != "search" or derivable(s.argument, screen), (t.question, s.argument)
            screen += " " + s.observation


def test_notool_reasoning():
    assert notool_reasoning("What is 17 plus 25?", "42") == "17 plus 25 is 42."
    assert "= 27 years" in notool_reasoning("How many years passed between 1953 and 1980?", "27")
    assert notool_reasoning("Something else?", "x").endswith("x.")


def test_few_shot_prompts_are_generated_and_parse():
    from fireflan.tools.actions import parse_action

    for method in ("react", "cot", "reflexion"):
        prefix = few_shot_prefix(method, shots=3)
        assert len(prefix) == 1 and prefix[0]["role"] == "system"
        text = prefix[0]["content"]
        assert text.count("Question: ") == 3
        for block in text.split("\n\nQuestion: ")[1:]:
            actions = [line for line in block.splitlines() if line.startswith("Action: ")]
            assert actions and actions[-1].startswith("Action: finish[")
            assert all(parse_action(a).ok for a in actions)
    assert few_shot_prefix("react", shots=0)[0]["content"].startswith("Answer the question")
    assert render([{"role": "user", "content": "Q?"}]) == "Question: Q?"
