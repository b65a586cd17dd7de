"""Reasoning methods at inference (arXiv 2403.19962) on the fine-tuned model: ReAct, multi-branch
voting, task decomposition and backtracking, on the same questions, with what each one cost.

    python -m fireflan.recipes.branches                       # on the main recipe's fine-tuned model
    python -m fireflan.recipes.branches --config recipes/branches.toml

1. the main recipe (fireflan.recipes.hotpotqa) with the same options: finished stages are skipped,
   so this reuses its fine-tuned model;
2. the judge the methods rely on, measured on its own: the fine-tuned model's P(yes) on judge records
   made from the teacher's trajectories on `judge_questions` dev questions (fireflan.judgeval), and the
   thresholds that separate right from wrong answers and steps best there, which the methods then use
   (`calibrate`);
3. the fine-tuned model evaluated with each method on the first `method_questions` test questions
   (and "react-2x": ReAct with twice the steps, so that a method that only buys compute is seen as such);
4. with --real-data (an official HotpotQA distractor JSON, never trained on): the `real_methods` rows
   again on all of its questions, with the same agent settings, so that the methods are judged on
   questions no one here wrote as well;
5. the tables: EM and F1 beside the budget each method spent (model calls, prompt and generated
   tokens, seconds per question), so that methods are compared at their cost; OUT/branches.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from fireflan.agent.methods import INFERENCE_METHODS
from fireflan.judgeval import JudgeEvalConfig, judge_eval
from fireflan.options import opt
from fireflan.recipes import hotpotqa
from fireflan.recipes.common import BUDGET_ROWS, comparison, launch, recipe_command, report_pages, stage


@dataclass
class BranchesRecipe(hotpotqa.HotpotQARecipe):
    """Options of `python -m fireflan.recipes.branches` (those of the main recipe, and the methods')."""

    methods: str = opt("react,react-2x,branches,branches-step2,branches-step3,decompose,backtrack",
                       "comma-separated methods to compare: any of evaluate's, react-2x (ReAct with twice the "
                       "steps: more compute, no method), branches-stepN (N candidates per step, the judge picks), "
                       "decompose-unjudged (the plan and its sub-episodes, no judge)")
    method_questions: int = opt(50, "test questions per method (the first of the main recipe's)")
    k: int = opt(5, "branches: trajectories sampled and voted")
    branch_temperature: float = opt(0.7, "branches: sampling temperature")
    backtracks: int = opt(2, "backtrack: failed steps that may be taken back and sampled again")
    restarts: int = opt(2, "backtrack: restarts with the failed attempt when the judge rejects the answer")
    real_methods: str = opt("react,branches-step2,backtrack,decompose",
                            "the rows also measured on --real-data (all its questions), in this order")
    judge_questions: int = opt(80, "dev questions whose teacher trajectories give the judge's test records "
                                   "(0: the judge is not measured on its own)")
    calibrate: bool = opt(True, "the methods' judge takes a yes at the thresholds that separate right from wrong "
                                "answers and steps best on those held-out records (False: at P(yes) 0.5)")


def variant(name: str, r: BranchesRecipe) -> tuple[str, dict]:
    """(evaluate's method, its options) of a row. 'branches-step3' -> ('branches', {'branch_by': 'step', ...})"""
    if name == "react-2x":
        return "react", {"max_calls": 2 * r.agent_calls}
    if m := re.fullmatch(r"branches-step(\d+)", name):
        return "branches", {"branch_by": "step", "candidates": int(m.group(1))}
    if name == "decompose-unjudged":
        return "decompose", {"judged": False}
    if name in INFERENCE_METHODS:
        return name, {}
    raise ValueError(f"--methods: unknown row {name!r}; the rows are react-2x, branches-stepN, "
                     f"decompose-unjudged and {', '.join(INFERENCE_METHODS)}")


def main(r: BranchesRecipe) -> dict:
    methods = [m.strip() for m in r.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError(f"--methods must name some of {', '.join(INFERENCE_METHODS)}; got {r.methods!r}")
    rows = {m: variant(m, r) for m in methods}  # every name checked before any work
    real_rows = {m: variant(m, r) for m in map(str.strip, r.real_methods.split(",")) if m and r.real_data}
    out = Path(r.out)

    # 1. the main recipe (skips what is done; its own real-data evaluation is the react row of step 4)
    built = hotpotqa.main(replace(r, real_data=None))

    # 2. the judge on its own (world questions: the wiki's pages make the records), and its thresholds
    judged = None
    if r.judge_questions and r.task == "world":
        judged = stage(out, "judge", JudgeEvalConfig(model=built["gguf"], out=str(out / "judge"), task=r.task,
                                                     data=built["eval_data"], split="dev",
                                                     questions=r.judge_questions, seed=r.seed), judge_eval)
    calibration = str(out / "judge" / "metrics.json") if judged and r.calibrate else None

    # 3. each method on the same questions
    runs, folders = {}, []
    for row, (method, changes) in rows.items():
        if row == "react" and r.probes == 0 and r.method_questions == r.eval_questions:
            runs[row] = built["runs"]["fine-tuned"]  # the main recipe's own evaluation: the same episodes
            folders.append(str(out / "eval-finetuned"))
            continue
        name = f"finetuned-{row}"
        runs[row] = hotpotqa.evaluate_stage(r, out, name, built["gguf"], built["eval_data"], built["eval_split"],
                                            method=method, limit=r.method_questions, k=r.k,
                                            branch_temperature=r.branch_temperature, backtracks=r.backtracks,
                                            restarts=r.restarts, probes=0, judge_calibration=calibration,
                                            **changes)
        folders.append(str(out / f"eval-{name}"))

    # 4. the rows on real questions: all of them, the same agent settings
    real = {}
    for row, (method, changes) in real_rows.items():
        real[row] = hotpotqa.evaluate_stage(r, out, f"real-{row}", built["gguf"], r.real_data, "test",
                                            task="hotpotqa", limit=None, method=method, k=r.k,
                                            branch_temperature=r.branch_temperature, backtracks=r.backtracks,
                                            restarts=r.restarts, probes=0, judge_calibration=calibration,
                                            **changes)
        folders.append(str(out / f"eval-real-{row}"))

    # 5. report
    written = report_pages(out, "branches", folders)
    print(f"\ninference methods on the fine-tuned model: the same {r.method_questions} questions "
          f"(branches: k = {r.k}, temperature {r.branch_temperature}; backtrack: {r.backtracks} steps, "
          f"{r.restarts} restarts)\n")
    print(comparison(runs, BUDGET_ROWS))
    if real:
        some = next(iter(real.values()))
        print(f"\nthe same methods on real HotpotQA ({r.real_data}, {some['questions']} questions, never trained on)\n")
        print(comparison(real, BUDGET_ROWS))
    if judged:
        low, high = judged["accuracy_ci95"]
        print(f"\nthe judge on {judged['records']} held-out records: accuracy {judged['accuracy']:.3f} "
              f"({low:.3f}-{high:.3f}), AUC {judged['auc']:.3f} (answers {judged['auc_answers']:.3f}, other steps "
              f"{judged['auc_steps']:.3f}); mean P(yes) of right steps {judged['mean_p_yes_right_steps']:.3f}, of "
              f"wrong ones {judged['mean_p_yes_wrong_steps']:.3f}; thresholds {judged['thresholds']} "
              f"({'used by the methods' if calibration else 'not used: --calibrate false'}), accuracy with them "
              f"{judged['calibrated_accuracy']:.3f}")
    print(f"\nreport: {written['report']}\npage: {written['page']} (open it in a browser)")
    return {"runs": runs, "real": real, "judge": judged, "folders": dict(zip(list(runs) + [f"real {m}" for m in real],
                                                                        folders, strict=True)), **written}


cli = recipe_command(BranchesRecipe, main,
                     "ReAct, multi-branch, decomposition and backtracking on the fine-tuned model.")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.branches")
