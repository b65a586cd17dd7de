"""docs/COURSE.md's exercises: each a change to the lab's config, parsed from the page itself and run at the
tiny scale (slow tier), so that none of them breaks as the kit changes."""

import importlib
import re
import shlex
from dataclasses import is_dataclass

import pytest
from helpers import ROOT

COURSE = ROOT / "docs" / "COURSE.md"
COMMAND = re.compile(r"`python -m (fireflan\.recipes\.\w+) --config recipes/lab\.toml ([^`]*)`")
TINY = {"base": "tiny", "prompted": "embedded", "train_questions": 30, "max_steps": 3, "batch_size": 2,
        "grad_accum": 1, "eval_questions": 3, "probes": 2}
CAPS = {"eval_questions": 3, "method_questions": 3, "max_steps": 10}  # the exercise's change, at most this


def exercises() -> list[tuple[str, dict]]:
    """(recipe module, {option: value}) of each numbered exercise, in order; values as the command line's
    parser (python-fire) reads them."""
    from fire import parser

    found = []
    for block in re.split(r"\n(?=\d+\. \*\*)", COURSE.read_text().split("## Exercises", 1)[1]):
        if re.match(r"\d+\. \*\*", block):
            command = COMMAND.search(block)
            assert command, f"exercise {block[:40]!r} has no `python -m fireflan.recipes.X --config recipes/lab.toml`"
            words = shlex.split(command.group(2))
            assert len(words) % 2 == 0 and all(w.startswith("--") for w in words[::2]), command.group(0)
            found.append((command.group(1), {k[2:].replace("-", "_"): parser.DefaultParseValue(v)
                                             for k, v in zip(words[::2], words[1::2], strict=True)}))
    return found


def recipe_class(module):
    return next(v for k, v in vars(module).items() if k.endswith("Recipe") and is_dataclass(v)
                and v.__module__ == module.__name__)


def test_the_course_has_six_to_eight_exercises_each_a_small_change_to_the_lab():
    from fireflan.recipes.common import read_options

    found = exercises()
    assert 6 <= len(found) <= 8
    for module_name, flags in found:
        assert "out" in flags and 1 <= len(flags) - 1 <= 4, flags  # its own folder (or the lab's) and a change
        read_options(recipe_class(importlib.import_module(module_name)), str(ROOT / "recipes" / "lab.toml"),
                     **flags)  # every option exists and has a value of its type


@pytest.mark.slow
@pytest.mark.parametrize("n", range(len(exercises())))
def test_each_exercise_runs_at_the_tiny_scale(n, tmp_path):
    pytest.importorskip("trl", reason="the train extra is not installed")
    pytest.importorskip("llama_cpp", reason="the infer extra is not installed")
    from fireflan.recipes import hotpotqa
    from fireflan.recipes.common import read_options

    module_name, flags = exercises()[n]
    lab = ROOT / "recipes" / "lab.toml"
    if flags["out"] == "runs/lab":  # an exercise on make lab's folder: make it first, at the same scale
        hotpotqa.main(read_options(hotpotqa.HotpotQARecipe, str(lab), **TINY, out=str(tmp_path / "lab")))
    options = {**TINY, **flags, "out": str(tmp_path / flags["out"].removeprefix("runs/"))}
    for key, cap in CAPS.items():
        if key in flags:
            options[key] = min(int(flags[key]), cap)
    module = importlib.import_module(module_name)
    result = module.main(read_options(recipe_class(module), str(lab), **options))
    assert result["runs"] and all("em" in m for m in result["runs"].values())
