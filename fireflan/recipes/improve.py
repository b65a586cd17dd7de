"""Beyond imitation: make all's fine-tuned agent improves on its own rollouts (rejection sampling, RFT).

    python -m fireflan.recipes.improve                           # 2 rounds on make all's run folder
    python -m fireflan.recipes.improve --config recipes/improve.toml
    python -m fireflan.recipes.improve --teacher-success 0.5     # a weak teacher: how much of the gap comes back

1. the main recipe (fireflan.recipes.hotpotqa) with the same options: its finished stages are skipped,
   so this starts from make all's fine-tuned model and its test questions;
2. with `--teacher-success` below 1, the same recipe again with a weak teacher (the scripted expert
   failing that share of the questions, as a real teacher does) into OUT/weak-teacher-P: its model is
   the one improved, and the full teacher's is the mark to recover;
3. `fireflan improve`: rounds of rollouts on the training questions (test questions never sampled),
   the successes kept and added to the teacher's corpus, training from the previous adapter, export,
   and EM on the same test questions as make all (OUT[/weak-teacher-P]/improve/round-N);
4. the control: the rounds' training (round by round, each from the one before) on the teacher's
   corpus alone, so that what the model's own successes bought is told apart from what more steps bought;
5. noise robustness (p = 0.5) of the last round against the start model;
6. the table (a row per round: EM, questions gained, tokens, minutes), EM by round (OUT/.../rounds.png),
   the rounds as runs on the page OUT/html-improve.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from fireflan.evaluate import EvalConfig, evaluate
from fireflan.export import ExportConfig, export
from fireflan.improve import ImproveConfig, improve, start_train_config
from fireflan.options import opt
from fireflan.recipes import hotpotqa
from fireflan.recipes.common import comparison, launch, recipe_command, report_pages, stage
from fireflan.train.trainer import train


@dataclass
class ImproveRecipe(hotpotqa.HotpotQARecipe):
    """Options of `python -m fireflan.recipes.improve` (those of the main recipe, and the rounds')."""

    method: str = opt("rft", "rft (rejection sampling: the model's successful rollouts added to its corpus) | grpo "
                             "(GRPO with the environment's reward; on a CPU, minutes per step: see the README)")
    rounds: int = opt(2, "rounds of improvement")
    round_questions: int = opt(100, "training questions rolled out per round (those without a success yet first)")
    k: int = opt(4, "trajectories sampled per question")
    temperature: float = opt(0.7, "sampling temperature of the rollouts")
    keep: str = opt("all", "all (every successful rollout, identical ones once) | shortest (one per question)")
    teacher_share: float = opt(1.0, "share of the teacher's successful trajectories in each round's corpus")
    round_steps: int = opt(80, "training steps per round, from the previous round's adapter")
    round_lr: float | None = opt(None, "peak learning rate of each round (None: the main recipe's --lr)")
    weak_steps: int | None = opt(None, "training steps of the weak teacher's model (None: the main recipe's "
                                       "--max-steps x --teacher-success, the same passes over its smaller corpus as "
                                       "make all's model makes over the whole: at equal steps the smaller corpus is "
                                       "seen more often, and its model was measured better than the full one)")
    control: bool = opt(True, "also train the start model the same steps on the teacher's corpus alone (what more "
                              "steps buy without the model's own successes)")
    noise: float = opt(0.5, "tool noise of the robustness check of the last round against the start (0: none)")


def main(r: ImproveRecipe) -> dict:
    out = Path(r.out)
    full = hotpotqa.main(replace(r, teacher_success=1.0))         # 1. make all's run (skips what is done)
    run = out
    if r.teacher_success < 1:                                     # 2. a weak teacher's run, to be improved
        run = out / f"weak-teacher-{r.teacher_success:g}"
        steps = r.weak_steps or max(1, round(r.max_steps * r.teacher_success))
        weak = hotpotqa.main(replace(r, out=str(run), prompted="none", real_data=None, max_steps=steps))
    else:
        weak = None
    options = improve_options(r, run)
    improved = stage(run, Path(options.out).name, options, improve)  # 3. the rounds
    control = control_step(r, run, options) if r.control else None  # 4. the same steps, the teacher's data only
    noisy = robustness_step(r, run, improved) if r.noise else {}  # 5. noise robustness, start vs last round
    return report_step(r, run, full, weak, improved, control, noisy)  # 6. table, plot, page


def improve_options(r: ImproveRecipe, run: Path) -> ImproveConfig:
    """`fireflan improve`'s options for the run folder RUN: its model, its teacher, its questions."""
    world, name = r.task == "world", "improve" if r.method == "rft" else f"improve-{r.method}"
    return ImproveConfig(
        start=str(run / "model"), teacher=str(run / "teach" / "trajectories.jsonl"), out=str(run / name),
        start_eval=str(run / "eval-finetuned"),
        task=r.task, data=str(run / "world") if world else r.train_data, eval_data=None if world else r.eval_data,
        eval_split="test" if world else "validation", limit=r.train_questions, method=r.method, rounds=r.rounds,
        questions=r.round_questions, k=r.k, temperature=r.temperature, keep=r.keep, teacher_share=r.teacher_share,
        steps=r.round_steps, lr=r.round_lr, quant=r.quant, eval_questions=r.eval_questions,
        agent_calls=r.agent_calls, agent_tokens=r.agent_tokens, seed=r.seed, threads=r.threads)


def control_step(r: ImproveRecipe, run: Path, options: ImproveConfig) -> dict:
    """The rounds' training without the model's own successes: the start model trained `round_steps` on the
    teacher's corpus alone, then again from that adapter, once per round (each with a fresh schedule, as
    the rounds are); each exported and evaluated on the same questions. RUN/control for the first,
    RUN/control-2, ... for the next; returns the last one's metrics."""
    adapter, base = Path(options.start) / "adapter", start_train_config(Path(options.start))
    for c in range(1, r.rounds + 1):
        tag = "control" if c == 1 else f"control-{c}"
        folder = run / tag
        stage(run, f"{tag}-train", replace(
            base, corpus=str(run / "corpus"), out=str(folder), max_steps=r.round_steps, init_adapter=str(adapter),
            lr=r.round_lr or base.lr, seed=r.seed + c, save_steps=r.save_steps, threads=r.threads), train)
        stage(run, f"{tag}-export", ExportConfig(model=str(folder), quant=r.quant), export)
        metrics = stage(run, f"eval-{tag}", EvalConfig(
            model=str(folder / "gguf" / f"model-{r.quant}.gguf"), out=str(run / f"eval-{tag}"), task=options.task,
            data=options.eval_data or options.data, split=options.eval_split, limit=r.eval_questions,
            max_calls=r.agent_calls, max_tokens=r.agent_tokens, seed=r.seed), evaluate)
        adapter = folder / "adapter"
    return {**metrics, "train_steps": r.round_steps * r.rounds, "eval_folder": str(run / f"eval-{tag}")}


def robustness_step(r: ImproveRecipe, run: Path, improved: dict) -> dict:
    """The start model and the last round's with a noisy tool (probability `noise`), same questions."""
    data = str(run / "world") if r.task == "world" else r.eval_data
    split = "test" if r.task == "world" else "validation"
    start = str(run / "model" / "gguf" / f"model-{r.quant}.gguf")
    return {name: hotpotqa.evaluate_stage(r, run, f"{tag}-noise{r.noise:g}", model, data, split, noise=r.noise,
                                          probes=0)
            for name, tag, model in (("start", "finetuned", start), ("last round", "improved", improved["gguf"]))}


def report_step(r: ImproveRecipe, run: Path, full: dict, weak: dict | None, improved: dict,
                control: dict | None, noisy: dict) -> dict:
    """The table of rounds (and the control), printed; the page RUN/html-improve[-METHOD] with the rounds as runs
    (RUN: OUT, or the weak teacher's folder in it: one run's report never replaces another's)."""
    rows = improved["rounds"]
    runs = {("start" if x["round"] == 0 else f"round {x['round']}"): x for x in rows}
    if control is not None:
        runs[f"control ({control['train_steps']} steps, teacher only)"] = control
    table = comparison(runs, [("em", "EM"), ("em_ci95", "EM, 95% interval"), ("f1", "F1"),
                              ("questions_gained", "questions gained (solved, never before)"),
                              ("gained_over_teacher", "of them, the teacher never solved"),
                              ("kept", "successful rollouts kept"), ("corpus_records", "corpus records"),
                              ("completion_tokens", "rollout tokens generated"),
                              ("minutes_total", "minutes")])
    name = "improve" if r.method == "rft" else f"improve-{r.method}"  # as the stage's folder is named
    written = report_pages(run, name, improved["eval_folders"] + ([control["eval_folder"]] if control else []))
    who = f"a weak teacher ({r.teacher_success:g} of questions solved)" if weak else "the full teacher"
    print(f"\nself-improvement: {r.rounds} rounds of {r.round_questions} training questions x {r.k} rollouts, "
          f"{r.round_steps} steps each; {r.eval_questions} test questions; the start model taught by {who}\n")
    print(table)
    result = {"rounds": rows, "em_gain": improved["em_gain"], "control": control, **written,
              "plot": improved["plot"]}
    last, start = rows[-1]["em"], rows[0]["em"]
    print(f"\nEM {start:.3f} -> {last:.3f} ({100 * (last - start):+.1f} points)"
          + (f"; the control, the same steps on the teacher's data alone: {control['em']:.3f}" if control else ""))
    if weak is not None:
        strong = full["runs"]["fine-tuned"]["em"]
        gap = strong - start
        result["gap_recovered"] = round((last - start) / gap, 3) if gap > 0 else None
        if gap > 0:
            print(f"the full teacher's model: EM {strong:.3f}; of the gap {100 * gap:.1f} points the rounds recovered "
                  f"{100 * (last - start):.1f} ({result['gap_recovered']:.0%})")
        else:
            print(f"the full teacher's model: EM {strong:.3f}, no better than the weak teacher's ({start:.3f}): there "
                  f"is no gap to recover (try --teacher-failures hardest, or a lower --teacher-success)")
    if noisy:
        result["noise"] = {k: v["em"] for k, v in noisy.items()}
        print(f"with tool noise p={r.noise:g}: start EM {noisy['start']['em']:.3f}, last round "
              f"{noisy['last round']['em']:.3f}")
    print(f"\nEM by round: {improved['plot']}\nreport: {written['report']}\npage: {written['page']} (open it in a "
          f"browser)")
    return result


cli = recipe_command(ImproveRecipe, main, "Self-improvement (rejection sampling) of make all's fine-tuned agent.")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.improve")
