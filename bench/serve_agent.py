"""The served model driven by an agent framework no one here wrote, against `fireflan evaluate` on the same
questions; and the server under 8 concurrent clients.

    .venv/bin/python bench/serve_agent.py                     # make all's model, its 60 world test questions
    .venv/bin/python bench/serve_agent.py --model M.gguf --data runs/x/world --n 20

1. `fireflan evaluate` (fireflan's own ReAct loop on the GGUF) and the OpenAI Agents SDK (its Runner, the
   world's search and lookup as its function tools, through `fireflan serve`) answer the same questions
   with the same budget (model calls, tokens per call, greedy); EM of each with a 95% interval, how often
   the two give the same answer, seconds per question.
2. 8 client threads send 4 requests each at once (loopback only); every reply is checked; latency median,
   95th percentile and max, beside one client sending the same requests alone.

Measured side by side in one run. The last line is one JSON object. Without the model (make all not run)
it says so and measures nothing.
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fireflan.agent.toolcalls import tools_for  # noqa: E402
from fireflan.evaluate import EvalConfig, evaluate, wilson_interval  # noqa: E402
from fireflan.io import iter_jsonl  # noqa: E402
from fireflan.serve import served  # noqa: E402
from fireflan.serve.frameworks import sdk_agent  # noqa: E402
from fireflan.tasks import open_task  # noqa: E402

RUN = ROOT / "runs" / "hotpotqa"


def framework_answers(url, examples, tool, max_calls):
    """The Agents SDK's final answer to each question (empty when it ran out of turns), and seconds each."""
    import agents

    answers, seconds = [], []
    for ex in examples:
        tool.reset()
        agent, _ = sdk_agent(url, tool)
        started = time.perf_counter()
        try:
            answer = str(agents.Runner.run_sync(agent, ex.question, max_turns=max_calls).final_output)
        except agents.MaxTurnsExceeded:
            answer = ""
        seconds.append(time.perf_counter() - started)
        answers.append(answer)
    return answers, seconds


def post(url, body):
    request = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=600) as r:
        reply = json.loads(r.read())
    assert reply["choices"][0]["finish_reason"] in ("stop", "tool_calls", "length"), reply
    return time.perf_counter() - started


def load(url, questions, clients, each):
    """Latencies of `clients` threads sending `each` requests at once (a tool-calling request per question)."""
    latencies, errors = [], []

    def client(k):
        for i in range(each):
            q = questions[(k * each + i) % len(questions)]
            try:
                latencies.append(post(url, {"messages": [{"role": "user", "content": q}],
                                            "tools": tools_for(("search", "lookup")), "max_tokens": 96}))
            except Exception as e:  # counted, not raised: the figure is how many were answered
                errors.append(repr(e))

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=1800)
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"clients": clients, "requests": clients * each, "answered": len(latencies), "errors": errors[:3],
            "wall_s": round(wall, 2), "median_s": round(statistics.median(ordered), 3) if ordered else None,
            "p95_s": round(ordered[int(0.95 * (len(ordered) - 1))], 3) if ordered else None,
            "max_s": round(ordered[-1], 3) if ordered else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(RUN / "model" / "gguf" / "model-q8_0.gguf"))
    parser.add_argument("--data", default=str(RUN / "world"))
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--max-calls", type=int, default=6)  # the recipe's agent_calls and agent_tokens
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if not Path(args.model).is_file() or not Path(args.data).is_dir():
        print(json.dumps({"skipped": f"no model at {args.model} or no world at {args.data}: run `make all` first"}))
        return
    task, examples, tool = open_task("world", args.data, split="test", limit=args.n)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        metrics = evaluate(EvalConfig(model=args.model, out=tmp, task="world", data=args.data, split="test",
                                      limit=args.n, max_calls=args.max_calls, max_tokens=args.max_tokens,
                                      threads=args.threads))
        evaluate_s = time.perf_counter() - started
        ours = {r["id"]: r.get("answer") or "" for _, r in iter_jsonl(Path(tmp) / "trajectories.jsonl")}
    with served(args.model, threads=args.threads, max_tokens=args.max_tokens) as url:
        answers, seconds = framework_answers(url, examples, tool, args.max_calls)
        alone = load(url, [ex.question for ex in examples], clients=1, each=8)
        eight = load(url, [ex.question for ex in examples], clients=8, each=4)
    em_sdk = [task.score(a, ex)["em"] for a, ex in zip(answers, examples, strict=True)]
    em_ours = [task.score(ours.get(ex.id, ""), ex)["em"] for ex in examples]
    same = sum(" ".join(a.split()).lower() == " ".join(ours.get(ex.id, "").split()).lower()
               for a, ex in zip(answers, examples, strict=True))
    n = len(examples)
    result = {"model": args.model, "questions": n,
              "evaluate_em": round(sum(em_ours) / n, 3), "evaluate_em_95": wilson_interval(sum(em_ours), n),
              "evaluate_metrics_em": metrics.get("em"),  # what evaluate reported itself, the same figure
              "framework_em": round(sum(em_sdk) / n, 3), "framework_em_95": wilson_interval(sum(em_sdk), n),
              "em_points_apart": round(100 * abs(sum(em_sdk) - sum(em_ours)) / n, 1),
              "same_answer": round(same / n, 3),
              "evaluate_s_per_question": round(evaluate_s / n, 2),
              "framework_s_per_question": round(sum(seconds) / n, 2),
              "one_client": alone, "eight_clients": eight}
    for key in ("evaluate_em", "framework_em", "em_points_apart", "same_answer", "evaluate_s_per_question",
                "framework_s_per_question"):
        print(f"{key:28s} {result[key]}")
    for row in (alone, eight):
        print(f"{row['clients']} client(s): {row['answered']}/{row['requests']} answered, median {row['median_s']} s, "
              f"p95 {row['p95_s']} s, max {row['max_s']} s, {row['wall_s']} s in all")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
