"""Robustness (FireAct's noisy-tool experiment): the prompted base and the fine-tuned model when
the search tool's observations are replaced by noise ("None" or a random page) with probability p.

    python -m fireflan.recipes.robustness                        # p = 0 and 0.5, on the main recipe's models
    python -m fireflan.recipes.robustness --config recipes/robustness.toml

1. the main recipe (fireflan.recipes.hotpotqa) with the same options: its finished stages are
   skipped, so this reuses its fine-tuned model and its p = 0 evaluations;
2. both models evaluated again with the noisy tool, on the same questions, for each p > 0;
3. the table (a column per model and p) and OUT/robustness.md with the EM-against-noise plot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fireflan.options import opt
from fireflan.recipes import hotpotqa
from fireflan.recipes.common import comparison, launch, recipe_command, report_pages


@dataclass
class RobustnessRecipe(hotpotqa.HotpotQARecipe):
    """Options of `python -m fireflan.recipes.robustness` (those of the main recipe, and the noise)."""

    noise: str = opt("0,0.5", "comma-separated probabilities that an observation is noise (FireAct: 0.5)")


def main(r: RobustnessRecipe) -> dict:

    levels = [float(p) for p in r.noise.split(",") if p.strip()]
    if not levels or any(not 0 <= p <= 1 for p in levels):
        raise ValueError(f"--noise must be comma-separated probabilities within 0..1, got {r.noise!r}")
    out = Path(r.out)

    # 1. the main recipe (skips what is done)
    built = hotpotqa.main(r)
    models = {"prompted": built["prompted_model"], "fine-tuned": built["gguf"]}

    # 2. the same questions with a noisy tool
    runs, folders = {}, []
    for p in levels:
        for name, model in models.items():
            if model == "none":
                continue
            tag = name.replace("-", "")
            if p == 0:
                runs[f"{name} p=0"], folder = built["runs"][name], f"eval-{tag}"
            else:
                folder = f"eval-{tag}-noise{p:g}"
                runs[f"{name} p={p:g}"] = hotpotqa.evaluate_stage(r, out, folder.removeprefix("eval-"), model,
                                                                  built["eval_data"], built["eval_split"],
                                                                  noise=p, probes=0)
            folders.append(str(out / folder))

    # 3. report
    written = report_pages(out, "robustness", folders)
    print(f"\nrobustness: the same {r.eval_questions} questions, observations replaced by noise with probability p\n")
    print(comparison(runs))
    print(f"\nreport: {written['report']} (EM against noise: {out / 'robustness-noise.png'})\n"
          f"page: {written['page']} (open it in a browser)")
    return {"runs": runs, **written}


cli = recipe_command(RobustnessRecipe, main, "Prompted vs fine-tuned under a noisy search tool (FireAct).")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.robustness")
