"""The embedded world end to end with the stages built so far: world -> tool -> teach -> corpus.

    python -m fireflan.recipes.world --out runs/world     # a check of the world and its teacher (minutes, no training)
    python -m fireflan.recipes.world --config recipes/world.toml   # the same, from a recipe file

1. write the world (train/dev/test questions in HotpotQA's schema, and the article corpus);
2. open the wiki tool over the corpus;
3. walk every test question's supporting facts through the tool, as an expert teacher will:
   every gold answer must be reachable;
4. search each raw question: how often is a gold page among the `Similar` titles?
5. a baseline that uses no tool (the commonest training answer of the question's kind, or the
   first option of a comparison), scored with the task's scorer: the world cannot be guessed;
6. teach: the scripted expert solves the train split with ReAct, CoT and Reflexion (OUT/teach);
7. corpus: its trajectories become chat records with negatives (OUT/corpus), FireAct's format;
8. write predictions and metrics.json.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from fireflan.corpus.build import CorpusConfig, build_corpus
from fireflan.io import read_records, write_json, write_jsonl
from fireflan.models.scripted import ScriptedExpert
from fireflan.options import opt
from fireflan.recipes.common import launch, recipe_command
from fireflan.tasks import get_task
from fireflan.tasks.score import score_files
from fireflan.teach import TeachConfig, teach, unwalkable
from fireflan.tools.wiki import Wiki
from fireflan.worlds.wiki import WorldConfig, write_world


def no_tool_guess(question: str, kind: str, common: dict[str, str]) -> str:
    """What a model that cannot search would say. 'Which is older, A or B?' -> 'A'"""
    if kind.startswith("comparison/") and ", " in question and " or " in question:
        return question.rsplit(", ", 1)[1].split(" or ")[0]
    return common.get(kind, "")


@dataclass
class WorldRecipe:
    """Options of the world recipe."""

    out: str = opt("runs/world", "the run folder")
    seed: int = opt(0, "the world's seed: the same seed, the same files")


def main(options: WorldRecipe):
    from tqdm import tqdm

    out, seed = Path(options.out), options.seed
    started = time.time()

    # 1. the world
    counts = write_world(WorldConfig(seed=seed), out)
    print(f"world: {json.dumps(counts)} -> {out}")

    # 2. the tool
    wiki = Wiki.from_file(out)
    task = get_task("world")
    test = task.load(out, split="test")

    # 3. + 4. reachability and retrieval
    unreachable, similar_hits, tool_questions = [], 0, 0
    expert = ScriptedExpert(test, tool=wiki)
    for ex in tqdm(test, desc="walk + search", unit="q"):
        why = unwalkable(ex, expert)
        if why:
            unreachable.append({"_id": ex.id, "why": why})
        if ex.supporting_facts:
            tool_questions += 1
            gold = {t for t, _ in ex.supporting_facts}
            similar_hits += bool(gold & {p.title for p in wiki.rank(ex.question, 5)})

    # 5. the no-tool baseline
    kinds = {r["_id"]: r["kind"] for _, r in read_records(out / "test.jsonl")}
    common = {}
    by_kind = Counter((r["kind"], r["answer"]) for _, r in read_records(out / "train.jsonl"))
    for (kind, answer), _ in by_kind.most_common():
        common.setdefault(kind, answer)
    predictions = [{"_id": ex.id, "answer": no_tool_guess(ex.question, kinds[ex.id], common)} for ex in test]
    write_jsonl(out / "predictions_no_tool.jsonl", predictions)
    baseline = score_files(out / "predictions_no_tool.jsonl", out, task="world")

    # 6. teach (resumable: a re-run skips finished trajectories)
    taught = teach(TeachConfig(out=str(out / "teach"), task="world", data=str(out), split="train", seed=seed))

    # 7. corpus
    corpus = build_corpus(CorpusConfig(inputs=str(out / "teach" / "trajectories.jsonl"), out=str(out / "corpus"),
                                       seed=seed))

    # 8. metrics
    metrics = {
        "questions": counts, "test_reachable": 1 - len(unreachable) / len(test),
        "unreachable": unreachable[:20],
        "similar_recall_at_5": similar_hits / max(tool_questions, 1),
        "no_tool_baseline": baseline,
        "teach": {k: taught[k] for k in ("trajectories", "success", "methods")},
        "corpus": {k: corpus[k] for k in ("records", "train", "val", "negative_shares", "tokens")},
        "seconds": round(time.time() - started, 1),
    }
    write_json(out / "metrics.json", metrics)
    print(f"gold answers reachable with the tool: {metrics['test_reachable']:.1%}")
    print(f"a gold page among the top-5 for the raw question: {metrics['similar_recall_at_5']:.1%}")
    print(f"no-tool baseline: EM {baseline['em']:.3f}  F1 {baseline['f1']:.3f}")
    print(f"teach: {taught['success']} of {taught['trajectories']} trajectories succeeded -> {out / 'teach'}")
    print(f"corpus: {corpus['train']} train + {corpus['val']} validation records -> {out / 'corpus'}")
    print(f"metrics -> {out / 'metrics.json'}")


cli = recipe_command(WorldRecipe, main, "The embedded world, its wiki tool, the teacher and scoring checked end "
                                        "to end, without training.")

if __name__ == "__main__":
    launch(cli, "fireflan.recipes.world")
