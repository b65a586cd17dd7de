"""Constrained actions vs free decoding, per generated token, side by side in one run.

    .venv/bin/python bench/constrained_decoding.py        # the embedded Gemma, few-shot ReAct prompts

Three ways to generate the same ReAct steps (greedy, same prompts, prompt already evaluated):
free; fireflan's action constraint (fireflan.agent.constrain: masks only right after "Action:"); and a
GBNF grammar of a whole step (llama.cpp's grammar sampling, for reference). Reports seconds per
generated token, the ratios to free decoding (target for fireflan's: <= 1.3) and how many outputs
parse as an action. The last line is one JSON object.
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GRAMMAR = r'''root ::= "Thought: " [^\n]+ "\nAction: " ("search" | "lookup" | "finish") "[" [^\]\n]+ "]"'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=48)
    a = parser.parse_args()

    from llama_cpp import LlamaGrammar, LogitsProcessorList

    from fireflan.agent.prompts import few_shot_prefix
    from fireflan.models.llama import LlamaModel
    from fireflan.tasks import get_task
    from fireflan.tools.actions import parse_action
    from fireflan.train.bases import embedded_gguf

    model = LlamaModel(embedded_gguf(), raw=True)
    prefix = few_shot_prefix("react", 2)
    questions = [e.question for e in get_task("world").load(split="test")[: a.questions]]
    prompts = [model.llm.tokenize(model.prompt([*prefix, {"role": "user", "content": q}]).encode(), add_bos=False,
                                  special=True) for q in questions]
    grammar = LlamaGrammar.from_string(GRAMMAR, verbose=False)

    def run(kind):
        seconds, tokens, parsed = 0.0, 0, 0
        for prompt in prompts:
            model.llm.create_completion(prompt, max_tokens=1, temperature=0.0)  # evaluate the prompt first
            extra = {}
            if kind == "fireflan":
                extra["logits_processor"] = LogitsProcessorList([model.constraint()])
            elif kind == "gbnf":
                extra["grammar"] = grammar
            started = time.perf_counter()
            out = model.llm.create_completion(prompt, max_tokens=a.max_tokens, temperature=0.0,
                                              stop=["\nObservation", "Observation:"], **extra)
            seconds += time.perf_counter() - started
            tokens += out["usage"]["completion_tokens"]
            parsed += parse_action(out["choices"][0]["text"]).ok
        return {"s_per_token": round(seconds / max(tokens, 1), 4), "tokens": tokens, "parsed": parsed}

    results = {kind: run(kind) for kind in ("free", "fireflan", "gbnf")}
    for kind, r in results.items():
        print(kind, json.dumps(r), flush=True)
    free = results["free"]["s_per_token"]
    print(json.dumps({"fireflan_over_free": round(results["fireflan"]["s_per_token"] / free, 3),
                      "gbnf_over_free": round(results["gbnf"]["s_per_token"] / free, 3),
                      "free_s_per_token": free, "fireflan_s_per_token": results["fireflan"]["s_per_token"],
                      "gbnf_s_per_token": results["gbnf"]["s_per_token"],
                      "parsed": {k: f"{r['parsed']}/{len(prompts)}" for k, r in results.items()},
                      "threads": model.threads}))


if __name__ == "__main__":
    main()
