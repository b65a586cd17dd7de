"""The agent at run time under llama.cpp: prefix reuse, loop overhead, multi-branch cost.

    .venv/bin/python bench/agent_runtime.py                 # the embedded Gemma, few-shot, world questions
    .venv/bin/python bench/agent_runtime.py --gguf runs/model/gguf/model-q8_0.gguf --questions 4

Measured side by side in one run, on the same questions:
1. step latency with prefix reuse (llama.cpp keeps the evaluated prompt) vs a fresh prompt each step
   (the KV cache reset before every call): ratio, target <= 0.5;
2. the agent loop's generated tokens/s vs raw llama-cpp-python generation on the very prompts the loop
   sent: overhead, target <= 10%;
3. multi-branch k = 5 vs one trajectory, wall time: ratio, target <= 3 (branches share their prompt
   and every token they have in common, and stop once a majority is certain; fireflan.models.batch),
   run twice: the sampling tree's live nodes decoded one per llama_decode call, and all in one call (the
   same branches); where the time goes (prompt evaluation against generated nodes, how often the rest of
   the k branches had to start because the first k // 2 + 1 could not make a majority);
4. per-step branching (2 candidates a step, the model as judge where they differ) vs the greedy
   episodes of 1: ratio, target <= 1.6.
The last line is one JSON object.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class Recording:
    """Wraps a model: remembers each prompt sent; optionally resets llama.cpp's cache before each call."""

    def __init__(self, model, fresh: bool = False):
        self.model, self.fresh, self.prompts = model, fresh, []
        self.name, self.usage = model.name, model.usage

    @property
    def last_usage(self):
        return self.model.last_usage

    def generate(self, messages, **kwargs):
        if self.fresh:
            self.model.llm.reset()
        self.prompts.append((self.model.prompt(messages), kwargs))
        return self.model.generate(messages, **kwargs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", default=None, help="a chat GGUF (default: the embedded base, few-shot)")
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    a = parser.parse_args()

    from fireflan.agent.loop import AgentConfig, run_episode
    from fireflan.agent.methods import run_branches, run_step_branches
    from fireflan.agent.prompts import few_shot_prefix
    from fireflan.models.llama import LlamaModel
    from fireflan.tasks import get_task, make_tool

    if a.gguf:
        model, prefix = LlamaModel(a.gguf, threads=a.threads), []
    else:
        from fireflan.train.bases import embedded_gguf

        model, prefix = LlamaModel(embedded_gguf(), raw=True, threads=a.threads), few_shot_prefix("react", 2)
    examples = [e for e in get_task("world").load(split="test") if e.type == "bridge"][: a.questions]
    wiki = make_tool("world", examples)
    config = AgentConfig(max_calls=4, max_tokens=64)

    def episodes(m, **kw):
        started = time.perf_counter()
        trajs = [run_episode(m, wiki, ex, prefix=prefix, config=config, **kw) for ex in examples]
        return time.perf_counter() - started, trajs

    # 1. prefix reuse vs fresh prompts (the same greedy episodes)
    reuse = Recording(model)
    reuse_s, trajs = episodes(reuse)
    fresh_s, _ = episodes(Recording(model, fresh=True))
    steps = sum(len(t.steps) for t in trajs)
    print(f"prefix reuse {reuse_s / steps:.3f} s/step, fresh prompt {fresh_s / steps:.3f} s/step", flush=True)

    # 2. loop overhead: the same prompts, raw create_completion
    loop_tokens = sum(s.completion_tokens for t in trajs for s in t.steps)
    model.llm.reset()
    started = time.perf_counter()
    raw_tokens = 0
    for prompt, kw in reuse.prompts:
        tokens = model.llm.tokenize(prompt.encode(), add_bos=False, special=True)
        out = model.llm.create_completion(tokens, max_tokens=kw["max_tokens"], temperature=kw["temperature"],
                                          stop=kw["stop"], seed=kw["seed"])
        raw_tokens += out["usage"]["completion_tokens"]
    raw_s = time.perf_counter() - started
    loop_tok_s, raw_tok_s = loop_tokens / reuse_s, raw_tokens / raw_s
    print(f"loop {loop_tok_s:.1f} tok/s, raw {raw_tok_s:.1f} tok/s", flush=True)

    # 3. multi-branch k vs one trajectory (sampled, like the branches)
    started = time.perf_counter()
    for ex in examples:
        run_episode(model, wiki, ex, prefix=prefix, config=AgentConfig(max_calls=4, max_tokens=64, temperature=0.7))
    one_s = time.perf_counter() - started
    decoder = model._decoder(a.k)
    calibrated = decoder.decodes_together_faster()
    runs = {}
    for together in (False, True):  # the live nodes one per llama_decode, or all in one (the same branches)
        decoder.together = together
        before = dict(decoder.stats)
        started = time.perf_counter()
        voted = [run_branches(model, wiki, ex, k=a.k, prefix=prefix, config=config) for ex in examples]
        runs[together] = {"seconds": time.perf_counter() - started, "voted": voted,
                          "stats": {k: round(v - before[k], 3) for k, v in decoder.stats.items()}}
    decoder.together = calibrated
    k_s, voted = runs[calibrated]["seconds"], runs[calibrated]["voted"]
    sampled = sum(t.extra["sampled"] for t in voted) / len(voted)
    rest = sum(t.extra["sampled"] > a.k // 2 + 1 for t in voted)
    print(f"one trajectory {one_s:.1f} s, {a.k} branches {k_s:.1f} s ({sampled:.1f} finished per question; "
          f"the rest started in {rest} of {len(voted)}); nodes one per call {runs[False]['seconds']:.1f} s, "
          f"all in one call {runs[True]['seconds']:.1f} s (this machine: {'together' if calibrated else 'apart'})",
          flush=True)
    for together, run in runs.items():
        print(f"  {'together' if together else 'apart'}: {run['stats']}", flush=True)

    # 4. per-step branching vs the greedy episodes of 1
    started = time.perf_counter()
    stepped = [run_step_branches(model, wiki, ex, candidates=2, prefix=prefix, config=config) for ex in examples]
    step_s = time.perf_counter() - started
    judged = sum(sum(p is not None for p in s["p_yes"]) > 0 for t in stepped for s in t.extra["steps"])
    print(f"greedy {reuse_s:.1f} s, 2 candidates a step {step_s:.1f} s ({judged} steps judged)", flush=True)

    print(json.dumps({
        "prefix_reuse_ratio": round(reuse_s / fresh_s, 3), "reuse_s_per_step": round(reuse_s / steps, 3),
        "fresh_s_per_step": round(fresh_s / steps, 3),
        "loop_overhead": round(1 - loop_tok_s / raw_tok_s, 3), "loop_tok_s": round(loop_tok_s, 1),
        "raw_tok_s": round(raw_tok_s, 1),
        "branches_ratio": round(k_s / one_s, 2), "k": a.k, "one_trajectory_s": round(one_s, 1),
        "branches_s": round(k_s, 1), "branches_nodes_apart_s": round(runs[False]["seconds"], 1),
        "branches_nodes_together_s": round(runs[True]["seconds"], 1), "decodes_together": calibrated,
        "branches_rest_started": rest, "branches_decoder": {str(k): v["stats"] for k, v in runs.items()},
        "branches_finished_per_question": round(sampled, 2),
        "branch_agreement": round(sum(t.extra["agreement"] for t in voted) / len(voted), 3),
        "step_branches_ratio": round(step_s / reuse_s, 2), "step_branches_s": round(step_s, 1),
        "steps_judged": judged,
        "questions": len(examples), "steps": steps, "threads": model.threads,
        "model": model.name}))


if __name__ == "__main__":
    main()
