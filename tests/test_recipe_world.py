import json

from fireflan.recipes.world import WorldRecipe, main, no_tool_guess


def test_no_tool_guess():
    assert no_tool_guess("Which is older, Kest Pictures or Velt Foods?", "comparison/company-founded", {}) == \
        "Kest Pictures"
    assert no_tool_guess("Who founded Kest Pictures?", "single/company-founder", {"single/company-founder": "X"}) == "X"
    assert no_tool_guess("What?", "unknown", {}) == ""


def test_world_recipe_end_to_end(tmp_path):
    main(WorldRecipe(out=str(tmp_path), seed=0))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["questions"]["test"] == 300
    assert metrics["test_reachable"] == 1.0 and metrics["unreachable"] == []
    assert metrics["similar_recall_at_5"] > 0.9
    # without the tool the world cannot be answered: only yes/no and arithmetic-free luck remain
    assert metrics["no_tool_baseline"]["n"] == 300 and metrics["no_tool_baseline"]["em"] < 0.3
    assert len((tmp_path / "predictions_no_tool.jsonl").read_text().splitlines()) == 300
    assert metrics["teach"]["success"] == metrics["teach"]["trajectories"] > 3000
    assert metrics["corpus"]["records"] > 3000 and (tmp_path / "corpus" / "train.jsonl").exists()


def test_recipe_file_is_valid_and_names_its_command():
    from helpers import ROOT

    from fireflan.recipes.common import load_config

    path = ROOT / "recipes" / "world.toml"
    assert path.read_text().startswith("# python -m fireflan.recipes.world --config recipes/world.toml")
    assert load_config(path) == {}  # the recipe's defaults are its settings (a TOML line changes one)
