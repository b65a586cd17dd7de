"""FireAct's published trajectories as a corpus: the fireact recipe, and the main recipe's --fireact / --mix /
--real-data, at a tiny scale on files made here (FireAct's own file and real HotpotQA need not be present)."""

import json

import pytest
from helpers import hotpot_file, run_cli


def fireact_file(path, n=12):
    """n trajectories in FireAct's gpt_format: question, Thought/Action turns, Google-snippet observations."""
    lines = []
    for i in range(n):
        messages = [
            {"role": "user", "content": f"Which city is the home of the club number {i}?"},
            {"role": "assistant", "content": f"Thought: I need to search club number {i}.\nAction: search[club {i}]"},
            {"role": "user", "content": f"Observation: Club {i} is a football club based in Velmora {i}."},
            {"role": "assistant", "content": f"Thought: It is based in Velmora {i}.\nAction: finish[Velmora {i}]"},
            {"role": "user", "content": "Observation: Episode finished, reward = True"}]
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def needs_the_stack():
    for module in ("torch", "transformers", "peft", "gguf", "llama_cpp"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[train,infer]')")
    from fireflan.export.convert import ConverterUnavailable, converter_dir

    try:
        converter_dir()
    except ConverterUnavailable as e:
        pytest.skip(f"llama.cpp's converter could not be fetched (no package index?): {str(e).splitlines()[0]}")


def test_the_fireact_recipe_trains_on_fireacts_data_and_evaluates_on_hotpotqa(needs_the_stack, small_world, tmp_path,
                                                                              capsys):
    from fireflan.recipes.fireact import FireActRecipe, main

    data = fireact_file(tmp_path / "gpt_format_hotpotqa.jsonl")
    dev = hotpot_file(small_world, tmp_path / "hotpot_dev.json")
    result = main(FireActRecipe(fireact=str(data), out=str(tmp_path / "run"), eval_data=str(dev), base="tiny",
                                max_steps=2, prompted="none", agent_calls=2, agent_tokens=16, observations="snippets"))
    tuned = result["runs"]["fine-tuned"]
    assert json.loads((tmp_path / "run" / "eval-finetuned" / "config.json").read_text())["observations"] == "snippets"
    assert tuned["task"] == "hotpotqa" and tuned["questions"] == 3 and len(tuned["em_ci95"]) == 2
    assert sum(tuned["outcomes"].values()) == 3
    stats = json.loads((tmp_path / "run" / "corpus" / "stats.json").read_text())
    assert stats["read"] == {"imported:gpt_format_hotpotqa.jsonl": 12} and stats["sources"] == {"fireact": 1.0}
    printed = capsys.readouterr().out
    assert "why the episodes ended as they did" in printed and "EM, 95% interval" in printed
    assert (tmp_path / "run" / "html-report" / "index.html").is_file()


def test_the_fireact_recipe_needs_fireacts_file(tmp_path):
    proc = run_cli("--out", tmp_path / "r", module="fireflan.recipes.fireact", check=False)
    assert proc.returncode == 2 and "--fireact" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli("--fireact", tmp_path / "missing.jsonl", module="fireflan.recipes.fireact", check=False)
    assert proc.returncode == 2 and "missing.jsonl" in proc.stderr
    (tmp_path / "f.jsonl").write_text("")
    proc = run_cli("--fireact", tmp_path / "f.jsonl", "--observations", "google", "--out", tmp_path / "r",
                   module="fireflan.recipes.fireact", check=False)
    assert proc.returncode == 2 and "--observations must be one of pages, snippets" in proc.stderr
    assert not (tmp_path / "r" / "corpus").exists()  # refused before any stage ran


def test_the_main_recipe_mixes_fireacts_trajectories_in_and_measures_real_questions(needs_the_stack, small_world,
                                                                                     tmp_path, capsys):
    from fireflan.recipes.hotpotqa import HotpotQARecipe, main

    data = fireact_file(tmp_path / "gpt_format_hotpotqa.jsonl", n=20)
    real = hotpot_file(small_world, tmp_path / "hotpot_dev.json")
    result = main(HotpotQARecipe(out=str(tmp_path / "run"), base="tiny", train_questions=20, max_steps=2,
                                 prompted="none", eval_questions=2, agent_calls=2, agent_tokens=16, probes=0,
                                 fireact=str(data), mix="world=0.5,hotpotqa=0.5", real_data=str(real)))
    stats = json.loads((tmp_path / "run" / "corpus" / "stats.json").read_text())
    assert stats["task_mix"] == {"hotpotqa": 0.5, "world": 0.5}
    assert result["real"]["task"] == "hotpotqa" and result["real"]["questions"] == 3
    assert "real HotpotQA" in capsys.readouterr().out


def test_the_fireact_config_names_its_command():
    from helpers import ROOT

    from fireflan.recipes.common import read_options
    from fireflan.recipes.fireact import FireActRecipe

    path = ROOT / "recipes" / "fireact.toml"
    assert path.read_text().startswith("# python -m fireflan.recipes.fireact --config recipes/fireact.toml")
    options = read_options(FireActRecipe, str(path))
    assert options.fireact.endswith("gpt_format_hotpotqa.jsonl") and options.max_steps == 160


def test_the_dbbench_recipe_trains_on_generated_tasks_and_measures_real_records(needs_the_stack, tmp_path, capsys):
    from fireflan.recipes.dbbench import DBBenchRecipe, main
    from fireflan.worlds.db import DBWorldConfig, generate_dbtasks

    real = tmp_path / "dev.jsonl"  # stands in for AgentBench's file: records of its format made elsewhere
    real.write_text("".join(json.dumps(r) + "\n" for r in generate_dbtasks(DBWorldConfig(seed=5, train=3, dev=0,
                                                                                         test=0))["train"]))
    result = main(DBBenchRecipe(out=str(tmp_path / "run"), real_data=str(real), train_questions=30, base="tiny",
                                max_steps=2, prompted="none", eval_questions=3, agent_calls=2, agent_tokens=16))
    assert set(result["runs"]) == {"fine-tuned, generated", "fine-tuned, AgentBench"}
    assert result["runs"]["fine-tuned, AgentBench"]["questions"] == 3
    assert "INSERT" in capsys.readouterr().out and (tmp_path / "run" / "eval-finetuned-real" / "metrics.json").is_file()
