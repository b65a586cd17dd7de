"""Agent-FLAN (arXiv 2403.12881) against FireAct's format: the same teacher trajectories, trained
once as they come and once aligned to chat with negative samples; what it does to answers and to
hallucinated tool use.

    python -m fireflan.recipes.agentflan                     # on the main recipe's trajectories and model
    python -m fireflan.recipes.agentflan --config recipes/agentflan.toml

1. the main recipe (fireflan.recipes.hotpotqa): its model is the "FireAct format" side (finished
   stages are skipped);
2. corpus: the same trajectories in Agent-FLAN's style (the tools described in a system turn,
   replies as natural text), decomposed by capability (format, reasoning, retrieval,
   understanding) in the given mix, plus negative samples (questions with no tools offered, questions
   that need none, observations that do not help) (OUT/corpus-agentflan);
3. train and export it with the main recipe's settings (OUT/model-agentflan);
4. evaluate it on the same questions, the tools described in the system turn, with the
   hallucination probes;
5. the table: EM and F1 beside the hallucination rates; OUT/agentflan.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fireflan.corpus.build import CorpusConfig, build_corpus
from fireflan.export import ExportConfig, export
from fireflan.options import opt
from fireflan.recipes import hotpotqa
from fireflan.recipes.common import ROWS, comparison, launch, recipe_command, report_pages, stage
from fireflan.train.trainer import train


@dataclass
class AgentFlanRecipe(hotpotqa.HotpotQARecipe):
    """Options of `python -m fireflan.recipes.agentflan` (those of the main recipe, and the Agent-FLAN corpus')."""

    capabilities: str = opt("format=0.4,reasoning=0.2,retrieval=0.2,understanding=0.2",
                            "Agent-FLAN's capability mix of the aligned corpus")
    negatives: str = opt("notool_with_tools=0.05,no_tools=0.05,bad_observation=0.1",
                         "negative samples and their shares of the aligned corpus")


def main(r: AgentFlanRecipe) -> dict:
    out = Path(r.out)

    # 1. the main recipe: the FireAct-format model
    built = hotpotqa.main(r)

    # 2. the aligned corpus, from the same trajectories
    corpus = stage(out, "corpus-agentflan", CorpusConfig(
        inputs=str(out / "teach" / "trajectories.jsonl"), out=str(out / "corpus-agentflan"), style="agentflan",
        capabilities=r.capabilities, negatives=r.negatives, seed=r.seed), build_corpus)
    print(f"   {corpus['train']} records; negatives {corpus['negative_shares']['realised']}")

    # 3. train and export with the same settings
    trained = stage(out, "train-agentflan", hotpotqa.train_options(r, out / "corpus-agentflan",
                                                                   out / "model-agentflan"), train)
    print(f"   loss {trained['train_loss']} over {trained['steps']} steps")
    stage(out, "export-agentflan", ExportConfig(model=str(out / "model-agentflan"), quant=r.quant), export)
    gguf = out / "model-agentflan" / "gguf" / f"model-{r.quant}.gguf"

    # 4. evaluate, the tools described in the system turn as in training
    aligned = hotpotqa.evaluate_stage(r, out, "agentflan", str(gguf), built["eval_data"], built["eval_split"],
                                      prompt="system", probes=max(r.probes, 1))

    # 5. report
    runs = {"FireAct format": built["runs"]["fine-tuned"], "Agent-FLAN": aligned}
    rows = ROWS + [("needs_none", "tool use when none is needed")]
    for metrics in runs.values():
        metrics["needs_none"] = (metrics.get("probes") or {}).get("needs_none", {}).get("tool_misuse_rate")
    written = report_pages(out, "agentflan", [out / "eval-finetuned", out / "eval-agentflan"])
    print(f"\nFireAct's format vs Agent-FLAN's alignment and negatives: the same {r.eval_questions} questions\n")
    print(comparison(runs, rows))
    print(f"\nreport: {written['report']}\npage: {written['page']} (open it in a browser)")
    return {"runs": runs, **written}


cli = recipe_command(AgentFlanRecipe, main, "FireAct's format vs Agent-FLAN's alignment with negative samples.")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.agentflan")
