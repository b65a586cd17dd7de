"""The main recipe end to end at a tiny scale: teach -> corpus -> train -> export -> evaluate -> report."""

import json
from pathlib import Path

import pytest
from helpers import hotpot_file, run_cli


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    for module in ("torch", "transformers", "peft", "gguf", "llama_cpp"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[train,infer]')")
    from fireflan.export.convert import ConverterUnavailable, converter_dir

    try:
        converter_dir()
    except ConverterUnavailable as e:
        pytest.skip(f"llama.cpp's converter could not be fetched (no package index?): {str(e).splitlines()[0]}")
    from fireflan.recipes.hotpotqa import HotpotQARecipe, main

    out = tmp_path_factory.mktemp("recipe") / "run"
    options = HotpotQARecipe(out=str(out), base="tiny", train_questions=40, max_steps=4, batch_size=2,
                             prompted="embedded", eval_questions=3, shots=1, agent_calls=2, agent_tokens=24, probes=2)
    return out, options, main(options)


def test_the_recipe_writes_every_stage_and_the_comparison(recipe_run, capsys):
    out, _, result = recipe_run
    for path in ("world/test.jsonl", "teach/trajectories.jsonl", "corpus/train.jsonl", "model/train.json",
                 "model/gguf/model-q8_0.gguf", "model/gguf/Modelfile", "eval-prompted/metrics.json",
                 "eval-finetuned/metrics.json", "report.md", "html/index.html"):
        assert (out / path).is_file(), path
    assert set(result["runs"]) == {"prompted", "fine-tuned"}
    prompted, tuned = result["runs"]["prompted"], result["runs"]["fine-tuned"]
    assert prompted["questions"] == tuned["questions"] == 3
    assert prompted["few_shot"] is True and tuned["few_shot"] is False
    assert result["em_gain"] == pytest.approx(tuned["em"] - prompted["em"])
    assert "no_tools" in tuned["probes"]
    report = (out / "report.md").read_text()
    assert "eval-prompted" in report and "eval-finetuned" in report
    assert sorted(Path(p).name for p in result["plots"]) == ["loss.png", "report-em.png", "report-noise.png",
                                                            "report-turns.png"]  # not the other recipes'
    assert json.loads((out / "model" / "train.json").read_text())["steps"] == 4


def test_a_finished_recipe_does_no_work_and_prints_the_table_again(recipe_run, capsys):
    from fireflan.recipes.hotpotqa import main

    out, options, first = recipe_run
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.parent.name != "stages"
              and p.suffix not in (".png", ".md") and "html" not in p.parts}  # the report is written again
    again = main(options)
    printed = capsys.readouterr().out
    assert printed.count("nothing to do") == 7  # world, teach, corpus, train, export, two evaluations
    assert "EM" in printed and "fine-tuning bought" in printed and "index.html" in printed
    assert again["runs"] == first["runs"]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing rewritten


def test_the_recipe_help_lists_its_options():
    proc = run_cli("--help", module="fireflan.recipes.hotpotqa")
    out = proc.stdout + proc.stderr  # fire writes help to stderr when not on a terminal
    for flag in ("--train_questions", "--max_steps", "--eval_questions", "--teacher", "--base", "--config"):
        assert flag in out
    assert "training questions the teacher solves" in out


def test_a_recipe_file_names_its_command_and_unknown_options_are_refused(tmp_path):
    from helpers import ROOT

    from fireflan.recipes.common import read_options
    from fireflan.recipes.hotpotqa import HotpotQARecipe

    path = ROOT / "recipes" / "hotpotqa.toml"
    assert path.read_text().startswith("# python -m fireflan.recipes.hotpotqa --config recipes/hotpotqa.toml")
    options = read_options(HotpotQARecipe, str(path), max_steps=3)
    assert options.max_steps == 3 and options.out == "runs/hotpotqa"
    gpu = ROOT / "recipes" / "hotpotqa-gpu.toml"  # the documented GPU variant parses into the same options
    assert gpu.read_text().startswith("# python -m fireflan.recipes.hotpotqa --config recipes/hotpotqa-gpu.toml")
    assert read_options(HotpotQARecipe, str(gpu)).backend == "unsloth"
    bad = tmp_path / "bad.toml"
    bad.write_text('max_step = 3\n')
    with pytest.raises(ValueError, match=r"bad.toml: unknown option\(s\) \['max_step'\]"):
        read_options(HotpotQARecipe, str(bad))
    proc = run_cli("--config", bad, module="fireflan.recipes.hotpotqa", check=False)
    assert proc.returncode == 2 and "max_step" in proc.stderr and "Traceback" not in proc.stderr


def test_the_other_recipes_reuse_the_main_run_and_add_their_comparisons(recipe_run, capsys):
    from dataclasses import asdict

    from fireflan.recipes import agentflan, branches, multitask, robustness

    out, options, _ = recipe_run
    common = asdict(options)

    noisy = robustness.main(robustness.RobustnessRecipe(**common, noise="0,0.5"))
    assert set(noisy["runs"]) == {"prompted p=0", "fine-tuned p=0", "prompted p=0.5", "fine-tuned p=0.5"}
    assert json.loads((out / "eval-finetuned-noise0.5" / "metrics.json").read_text())["noise"] == 0.5
    assert (out / "robustness-noise.png").is_file()

    rows = "react,react-2x,branches,branches-step2,backtrack"
    real = hotpot_file(out / "world", out.parent / "hotpot_dev.json", n=2)  # the official schema, read as real data
    common["real_data"] = str(real)
    methods = branches.main(branches.BranchesRecipe(**common, methods=rows, method_questions=2, k=3, judge_questions=3,
                                                    real_methods="react,branches-step2"))
    assert set(methods["runs"]) == {"react", "react-2x", "branches", "branches-step2", "backtrack"}
    assert set(methods["real"]) == {"react", "branches-step2"} and methods["real"]["react"]["task"] == "hotpotqa"
    assert methods["real"]["branches-step2"]["questions"] == 2  # all of the file's questions
    assert json.loads((out / "eval-real-branches-step2" / "config.json").read_text())["branch_by"] == "step"
    del common["real_data"]
    assert json.loads((out / "eval-finetuned-branches-step2" / "config.json").read_text())["branch_by"] == "step"
    longer = json.loads((out / "eval-finetuned-react-2x" / "config.json").read_text())
    assert longer["max_calls"] == 2 * options.agent_calls
    assert methods["runs"]["branches"]["questions"] == 2 and methods["runs"]["branches"]["branch_agreement"] is not None
    assert methods["judge"]["records"] == methods["judge"]["yes_records"] * 2 > 0  # the judge measured on its own

    aligned = agentflan.main(agentflan.AgentFlanRecipe(**common))
    assert set(aligned["runs"]) == {"FireAct format", "Agent-FLAN"}
    corpus = [json.loads(x) for x in (out / "corpus-agentflan" / "train.jsonl").read_text().splitlines()]
    assert any(m["role"] == "system" for rec in corpus for m in rec["messages"])
    assert json.loads((out / "eval-agentflan" / "metrics.json").read_text())["probes"]["no_tools"]["questions"] >= 1

    mixed = multitask.main(multitask.MultitaskRecipe(**common))
    assert set(mixed["runs"]) == {"ReAct-only, react", "ReAct-only, cot", "multi, react", "multi, cot"}
    taught = [json.loads(x)["method"] for x in (out / "teach-multi" / "trajectories.jsonl").read_text().splitlines()]
    assert {"react", "reflexion"} <= set(taught)
    printed = capsys.readouterr().out
    assert "robustness" in printed and "branch agreement" in printed and "on real HotpotQA" in printed
    assert "tool use when none is needed" in printed
    for result in (noisy, methods, aligned, mixed):  # each recipe's page, its path printed
        assert result["page"] in printed and Path(result["page"]).is_file()


def test_every_recipe_has_a_config_naming_its_command_and_help_with_its_options():
    from helpers import ROOT

    for name, flag in (("robustness", "--noise"), ("branches", "--method_questions"), ("agentflan", "--negatives"),
                       ("multitask", "--extra")):
        path = ROOT / "recipes" / f"{name}.toml"
        assert path.read_text().startswith(f"# python -m fireflan.recipes.{name} --config recipes/{name}.toml")
        proc = run_cli("--help", module=f"fireflan.recipes.{name}")
        shown = proc.stdout + proc.stderr
        assert flag in shown and "--max_steps" in shown


def test_a_stage_finished_before_an_option_was_added_is_not_run_again(tmp_path):
    """A newer fireflan's stage options hold fields an older run's marker lacks: at their defaults they cannot
    have changed what the stage did, so the stage is not run again (its paid work is not redone); set to
    anything else, or with a recorded option changed, it runs."""
    from dataclasses import dataclass

    from fireflan.recipes.common import same_options, stage

    @dataclass
    class Old:
        steps: int = 10

    @dataclass
    class New:
        steps: int = 10
        plan: bool = False

    runs = []
    stage(tmp_path, "train", Old(steps=5), lambda c: runs.append(c) or {"ok": 1})
    assert stage(tmp_path, "train", New(steps=5), lambda c: runs.append(c) or {"ok": 2}) == {"ok": 1}
    assert len(runs) == 1
    assert not same_options({"steps": 5}, New(steps=5, plan=True)) and not same_options({"steps": 5}, New(steps=6))
    assert same_options({"steps": 5, "gone": 1}, New(steps=5))  # an option no longer known is passed over


def test_a_stage_run_again_and_killed_leaves_no_marker_of_its_earlier_run(tmp_path):
    """Found when an export run again with new options was stopped after it had removed its old GGUF: its
    earlier marker still said finished, and the next run went on to evaluate a file that was not there."""
    from dataclasses import dataclass

    from fireflan.recipes.common import stage

    @dataclass
    class Options:
        quant: str = "q8_0"

    stage(tmp_path, "export", Options(), lambda c: {"gguf": "model-q8_0.gguf"})

    def killed(config):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stage(tmp_path, "export", Options(quant="f16"), killed)
    assert not (tmp_path / "stages" / "export.json").exists()
    ran = []
    stage(tmp_path, "export", Options(), lambda c: ran.append(c) or {})
    assert ran  # the earlier options again: run, since nothing says that they finished


def test_the_improve_recipe_adds_rounds_to_the_main_run_and_a_weak_teachers(recipe_run, capsys, monkeypatch):
    """Rounds on the main run's tiny model (its rollouts by a model that is right on even seeds, as the tiny model
    never is), the control, the noisy check; then a weak teacher's run and the gap its rounds recover."""
    from dataclasses import asdict

    from helpers.coin import CoinModel

    from fireflan import improve as improve_stage
    from fireflan.recipes import improve
    from fireflan.tasks import open_task

    out, options, first = recipe_run
    questions = open_task("world", str(out / "world"), "train")[1]
    monkeypatch.setattr(improve_stage, "load_model", lambda path, **kw: (CoinModel(questions), False))
    small = dict(asdict(options), rounds=1, round_questions=3, k=2, round_steps=2)
    result = improve.main(improve.ImproveRecipe(**small))
    rounds = result["rounds"]
    assert [r["round"] for r in rounds] == [0, 1] and rounds[0]["em"] == first["runs"]["fine-tuned"]["em"]
    assert rounds[1]["rollouts"] == 6 and rounds[1]["successes"] == 3 and rounds[1]["kept"] == 3
    assert rounds[1]["questions_gained"] == 0  # the full teacher had solved them all
    taught = (out / "corpus" / "train.jsonl").read_text().count("\n")
    data = (out / "improve" / "round-1" / "data.jsonl").read_text().splitlines()
    assert sum(json.loads(x).get("extra", {}).get("source") == "self" for x in data) == 3
    assert rounds[1]["corpus_records"] > taught - 3  # the teacher's records and the kept ones (some held out)
    assert json.loads((out / "improve" / "round-1" / "model" / "train.json").read_text())["config"]["init_adapter"] \
        == str(out / "model" / "adapter")
    assert (out / "improve" / "round-1" / "model" / "gguf" / "model-q8_0.gguf").is_file()
    assert result["control"]["train_steps"] == 2 and set(result["noise"]) == {"start", "last round"}
    assert (out / "improve" / "rounds.png").is_file() and Path(result["page"]).is_file()
    printed = capsys.readouterr().out
    assert "questions gained" in printed and "control" in printed

    again = improve.main(improve.ImproveRecipe(**small))  # finished: nothing runs again
    assert again["rounds"] == rounds and "== improve: finished before" in capsys.readouterr().out

    grpo = improve.main(improve.ImproveRecipe(**{**small, "method": "grpo", "control": False, "noise": 0}))
    assert grpo["rounds"][1]["train_steps"] == 2 and grpo["rounds"][1]["reward_last"] is not None
    assert (out / "improve-grpo" / "round-1" / "model" / "rewards.csv").is_file()
    assert json.loads((out / "improve-grpo" / "round-1" / "model" / "train.json").read_text())["stage"] == "grpo"

    weak = improve.main(improve.ImproveRecipe(**{**small, "teacher_success": 0.5, "control": False, "noise": 0}))
    folder = out / "weak-teacher-0.5"
    summary = json.loads((folder / "teach" / "summary.json").read_text())
    assert summary["success"] < summary["trajectories"]
    assert weak["rounds"][1]["gained_over_teacher"] >= 1  # questions the weak teacher failed, solved by the model
    assert "gap_recovered" in weak and not (folder / "eval-prompted").exists()
    trained = json.loads((folder / "model" / "train.json").read_text())
    assert trained["config"]["max_steps"] == round(options.max_steps * 0.5)  # the same passes over half the data
    assert Path(weak["page"]).is_relative_to(folder) and "eval-control" in (out / "improve.md").read_text()  # own pages

    finished = {p: p.stat().st_mtime_ns for p in (out / "improve" / "round-1").rglob("*")  # (its evaluation is
                if p.is_file() and p.name in ("rollouts.jsonl", "trajectories.jsonl", "adapter_model.safetensors",
                                              "model-q8_0.gguf", "train.jsonl")}  # resumed: its summary is rewritten)
    assert len(finished) >= 5
    more = improve.main(improve.ImproveRecipe(**{**small, "rounds": 2, "noise": 0}))  # a second round on the run
    assert [r["round"] for r in more["rounds"]] == [0, 1, 2] and more["rounds"][1]["em"] == rounds[1]["em"]
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # round 1 not redone: none of its files rewritten
    second = json.loads((out / "control-2" / "train.json").read_text())  # the control's second link, as round 2
    assert second["config"]["init_adapter"] == str(out / "control" / "adapter") and second["steps"] == 2
    assert more["control"]["train_steps"] == 4 and more["control"]["eval_folder"] == str(out / "eval-control-2")


def test_the_real_recipe_teaches_on_official_files_and_measures_both_settings(tmp_path):
    """recipes/hotpotqa-real.toml at a tiny scale: the expert walks an official-schema train file, the tiny model
    is trained and exported, then answers two dev files at once, side by side, each question in its own
    paragraphs and again with every paragraph pooled; the prompted baseline on the first few only."""
    for module in ("torch", "transformers", "peft", "gguf", "llama_cpp"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[train,infer]')")
    from helpers import ROOT

    from fireflan.export.convert import ConverterUnavailable, converter_dir
    from fireflan.recipes.common import read_options
    from fireflan.recipes.hotpotqa import HotpotQARecipe, main
    from fireflan.worlds.wiki import WorldConfig, write_world

    try:
        converter_dir()
    except ConverterUnavailable as e:
        pytest.skip(f"llama.cpp's converter could not be fetched (no package index?): {str(e).splitlines()[0]}")
    world = tmp_path / "world"
    write_world(WorldConfig(train=40, dev=1, test=12), world)
    keep = ("_id", "question", "answer", "type", "level", "supporting_facts", "context")
    rows = {s: [{k: r[k] for k in keep} for r in map(json.loads, (world / f"{s}.jsonl").read_text().splitlines())
                if r["supporting_facts"]] for s in ("train", "test")}
    train, first, second = tmp_path / "train.json", tmp_path / "dev-a.json", tmp_path / "dev-b.json"
    train.write_text(json.dumps(rows["train"]))
    first.write_text(json.dumps(rows["test"][:3]))
    second.write_text(json.dumps(rows["test"][3:6]))
    options = read_options(HotpotQARecipe, str(ROOT / "recipes" / "hotpotqa-real.toml"), out=str(tmp_path / "run"),
                           base="tiny", train_data=str(train), eval_data=f"{first},{second}", max_steps=3,
                           prompted="embedded", prompted_questions=2, shots=1, agent_calls=2, agent_tokens=24,
                           pool_eval=True, eval_batch=2, world_questions=8)
    assert (ROOT / "recipes" / "hotpotqa-real.toml").read_text().startswith(
        "# python -m fireflan.recipes.hotpotqa --config recipes/hotpotqa-real.toml")
    result = main(options)
    assert set(result["runs"]) == {"prompted", "fine-tuned", "pool"}
    assert result["runs"]["prompted"]["questions"] == 2
    assert result["runs"]["fine-tuned"]["questions"] == result["runs"]["pool"]["questions"] == 6  # both files
    run = tmp_path / "run"
    settings = {name: json.loads((run / name / "config.json").read_text()) for name in ("eval-finetuned", "eval-pool")}
    assert settings["eval-finetuned"]["context"] == "question" and settings["eval-pool"]["context"] == "pool"
    assert settings["eval-finetuned"]["batch"] == 2
    summary = json.loads((run / "teach" / "summary.json").read_text())
    assert summary["success"] == summary["trajectories"] > 20 and "skipped_underivable" in summary
    assert summary["audit"]["searches_underivable"] == 0
    tasks = {json.loads(x)["meta"]["task"] for x in (run / "corpus" / "train.jsonl").read_text().splitlines()}
    assert tasks == {"hotpotqa", "world"}  # the embedded world's questions beside the real ones
