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
    metrics = evaluate(EvalConfig(out=str(tmp_path), data=str(small_world), limit=3, max_steps=2),
                       model=ReplayModel(outputs))
    assert metrics["turns"] == 2.0
    assert metrics["format_error_rate"] == 0.5 and metrics["hallucinated_observation_rate"] == 0.5


def test_noise_and_few_shot_prompt(small_world, tmp_path):
    from fireflan.tasks import get_task

    examples = get_task("world").load(small_world, split="test")
    expert = ScriptedExpert(examples)
    metrics = evaluate(EvalConfig(out=str(tmp_path / "n"), data=str(small_world), limit=20, noise=0.5,
                                  max_steps=12), model=expert)
    assert metrics["noise"] == 0.5 and metrics["turns"] > 2.5
    replay = ReplayModel(["Thought: x\nAction: finish[no]"])
    evaluate(EvalConfig(out=str(tmp_path / "f"), data=str(small_world), limit=1, prompt="fewshot"), model=replay)
    assert "Here are some examples." in replay.requests[0]["messages"][0]["content"]
    with pytest.raises(ValueError, match="--noise"):
        evaluate(EvalConfig(out=str(tmp_path / "x"), noise=2.0), model=replay)


def test_summarize_empty_and_bad_model(tmp_path):
    assert summarize([]) == {"questions": 0}
    with pytest.raises(ValueError, match="--model"):
        evaluate(EvalConfig(out=str(tmp_path), model="runs/nothing.bin", limit=1))
    assert json.loads((tmp_path / "config.json").read_text())["model"] == "runs/nothing.bin"


def test_hallucination_probes(small_world, tmp_path):
    from fireflan.probes import misuse_without_tools

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
    evaluate(EvalConfig(out=str(tmp_path / "noisy"), data=str(small_world), limit=10, noise=0.5, max_steps=3),
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
