"""GRPO: reinforcement learning of the agent's steps with the wiki as the reward, through TRL's GRPOTrainer.

    python -m fireflan grpo --trajectories runs/teach/trajectories.jsonl --data runs/world \\
        --init-adapter runs/model/adapter --out runs/grpo --max-steps 200
    python -m fireflan grpo --data runs/world --base tiny --out runs/grpo-tiny --max-steps 20

What is trained. A prompt is a state of the ReAct loop: the question, then the assistant / "Observation: ..."
turns so far, as `Trajectory.messages()` writes them (every prefix of a teacher's successful trajectory that
ends before an assistant turn; with no trajectories, each question alone). The model writes the next step;
GRPO samples `num_generations` of them per prompt and moves the policy towards those that score above
their group's mean. The prompt is rendered with the same chat template, the same way, as in SFT and at
inference (`fireflan.train.data.encode` renders it so: the test checks the token ids agree).

The reward of a step, summed by TRL with the weights `[format_weight, 1]`:
- `format`: 1 when the text reads as one ReAct step (`parse_action` finds an action and nothing is
  written after it, such as an invented "Observation:"), else 0;
- `environment`: the step is run in the real tool (the wiki over the world's corpus, put back in the
  state the prompt left it in by replaying the prompt's actions). A `finish[x]` earns
  0.5 * EM + 0.5 * F1 of x against the gold answer, by the task's own scorer (EM alone decides the
  teacher's success; F1 gives partial credit for a half-right span); a search or lookup earns
  `progress` (0.2) when its observation shows a sentence of a gold supporting page that no
  observation of the prompt showed yet (the test `fireflan.evaluate.outcome` uses for "reached"),
  else 0. An unreadable step earns 0.
Generation has no stop strings (the agent stops at "Observation"): a model that writes an observation
after its action loses the format reward, as the agent counts it a hallucination.

The model: the base (`embedded`, `tiny`, a Hugging Face id or folder) with LoRA on it, fresh or
started from `--init-adapter` (an SFT run's OUT/adapter, loaded before TRL copies it as the
reference when beta > 0); on a CUDA machine with unsloth installed, Unsloth's FastLanguageModel, as
`fireflan train` loads it. The run writes OUT/rewards.csv (a row per step), OUT/adapter and
OUT/train.json as `fireflan train` does (so `fireflan export --model OUT` merges it), and checkpoints
to OUT/checkpoints; a killed run resumes from the last whole one. TRL's defaults that do not fit a CPU
are set aside (bf16, activation checkpointing); a step of the embedded Gemma (4 completions of 64
tokens) takes about half a minute on one core (bench/grpo_step.py).

Multi-turn (`multi_turn=True`): whole episodes instead of one step, through TRL 1.16's experimental
`environment_factory`: the wiki's search and lookup are offered as tools, TRL generates, parses each
JSON tool call from the model's text, runs it, appends the result as a `tool` turn and generates
again, up to `max_tool_calls` times; the episode is then rewarded as above, step by step (its final
answer, each gold page its observations reached first). The tools' replies are part of the completion
but carry no loss, and count against `max_completion_length`: give it room for pages (256 and more;
a reply that does not fit ends the episode unanswered). TRL reads tool calls only as OpenAI-style
JSON, so this is for models trained with `--action-format hermes` (fireflan.agent.toolcalls).
fireflan's chat template is not one TRL knows, so two things it needs are set here, read from the model's own
template (`turn_tokens`, `generation_prompt`): the tokenizer's `response_template` (how to read
`<tool_call>{...}</tool_call>` and the token that closes a model turn, Gemma's `<end_of_turn>`), and that token
as the tokenizer's EOS during the run (TRL cuts the rendered turn after the last EOS to splice the tool's reply
on; with Gemma's `<eos>` there it would drop the newline after `<end_of_turn>`, and the model would see a turn
boundary it never saw in SFT).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fireflan import evaluate
from fireflan.agent.loop import Trajectory
from fireflan.agent.toolcalls import call_argument, from_tool_calls, parse_tool_call, task_tools, to_tool_calls
from fireflan.io import DataError, iter_jsonl, write_json
from fireflan.options import one_run_per_folder, opt
from fireflan.tasks import Example, get_task, open_task
from fireflan.tools.actions import Parsed, parse_action
from fireflan.train.bases import resolve_base
from fireflan.train.chat_template import END, generation_prompt, turn_tokens
from fireflan.train.data import render_chat, token_ids
from fireflan.train.trainer import (
    SCHEMA_TRAIN,
    TrainConfig,
    choose_backend,
    cuda_available,
    installed,
    last_checkpoint,
    load_model,
    load_weights,
    start_from_adapter,
    trim_log,
)

PROGRESS = 0.2  # the reward of a search/lookup that reaches a new gold page


def response_template(start: str, end: str) -> dict:
    """How TRL (transformers' parse_response) reads a model turn that opens with START and closes with END.

    response_template('<start_of_turn>model\\n', '<end_of_turn>') reads a turn of fireflan's (Gemma's) template."""
    return {"defaults": {"role": "assistant"}, "start_anchor": start,
            "fields": {"tool_calls": {"open": "<tool_call>", "close_pattern": r"</tool_call>\s*", "repeats": True,
                                      "content": "json", "transform": {"type": "function", "function": "{content}"}},
                       "content": {"close_pattern": re.escape(end) + r"\s*", "content": "text"}}}


@dataclass
class GRPOConfig:
    """Options of GRPO training."""

    base: str = opt("embedded", "embedded | tiny | a Hugging Face model id or folder")
    init_adapter: str | None = opt(None, "a LoRA adapter folder to start from (an SFT run's OUT/adapter; its rank and "
                                         "target modules must be --rank and --target-modules); None: a fresh LoRA")
    out: str = opt("runs/grpo", "the model folder to write")
    trajectories: str = opt("", "teacher trajectories.jsonl file(s), comma-separated: each successful one's states "
                                "are prompts ('': each question of --data alone)")
    methods: str = opt("react", "the trajectories' methods whose states are used")
    task: str = opt("world", "the task of the questions (its scorer, its tool)")
    data: str | None = opt(None, "a world folder or the task's file: the gold answers and supporting facts (None: "
                                 "the default world)")
    split: str = opt("train", "the split of --data")
    corpus: str | None = opt(None, "the wiki's corpus, when the questions carry no paragraphs")
    observations: str = opt("pages", "what search returns: pages | snippets")
    limit: int | None = opt(None, "use the first N prompts only (None: all)")
    backend: str = opt("auto", "auto (unsloth on a CUDA GPU, else trl) | trl | unsloth")
    rank: int = opt(16, "LoRA rank")
    alpha: int = opt(32, "LoRA alpha")
    target_modules: str = opt("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "LoRA target modules")
    lr: float = opt(1e-5, "learning rate (constant)")
    max_steps: int = opt(100, "optimizer steps")
    num_generations: int = opt(4, "completions sampled per prompt (the group)")
    prompts_per_step: int = opt(1, "prompts per step")
    max_completion_length: int = opt(64, "tokens a completion may have (multi-turn: all turns and tool replies)")
    max_prompt_length: int = opt(1024, "prompts longer than this many tokens are left out and reported")
    temperature: float = opt(1.0, "sampling temperature")
    beta: float = opt(0.0, "KL coefficient against the starting model (0: no reference model, faster)")
    format_weight: float = opt(0.2, "weight of the format reward (the environment reward has weight 1)")
    progress: float = opt(PROGRESS, "reward of a search/lookup that reaches a new gold page")
    multi_turn: bool = opt(False, "whole episodes through TRL's environment_factory (hermes tool calls; see above)")
    max_tool_calls: int = opt(4, "multi-turn: tool calls per episode")
    save_steps: int = opt(25, "checkpoint every N steps")
    seed: int = opt(0, "seed of initialisation, data order and sampling")
    threads: int | None = opt(None, "CPU threads (None: all cores)")


# --------------------------------------------------------------------------- prompts (pure)

def states(traj: Trajectory) -> list[list[dict]]:
    """The ReAct states of a trajectory: each prefix of its messages that ends before an assistant turn.

    [Q, A1, Obs1, A2] -> [[Q], [Q, A1, Obs1]]
    """
    messages = traj.messages()
    return [messages[:i] for i, m in enumerate(messages) if m["role"] == "assistant"]


def gold_pages(example) -> list[list[str]]:
    """The sentences of each gold supporting page of an example (as `fireflan.evaluate.gold_pages` reads them)."""
    return [sentences for sentences in evaluate.gold_pages(example).values() if sentences]


def prompt_rows(trajectories: list[Trajectory], examples: list, methods=("react",)) -> tuple[list[dict], list[str]]:
    """(rows, ids of trajectories whose question is not among `examples`). A row is a state with what the
    reward needs: {prompt, answer, question_id, task, gold_pages}. No trajectories: each question alone.

    Only successful trajectories of `methods` give states; a state met twice (two trajectories of one
    question) is kept once.
    """
    by_id = {ex.id: ex for ex in examples}
    chosen = [(t.id, states(t)) for t in trajectories if t.success and t.method in methods] if trajectories else \
        [(ex.id, [[{"role": "user", "content": ex.question}]]) for ex in examples]
    rows, seen, missing = [], set(), []
    for qid, prompts in chosen:
        ex = by_id.get(qid)
        if ex is None:
            missing.append(qid)
            continue
        for prompt in prompts:
            key = json.dumps([qid, prompt])
            if key not in seen:
                seen.add(key)
                rows.append({"prompt": prompt, "answer": ex.answer, "question_id": ex.id, "task": ex.task,
                             "gold_pages": gold_pages(ex)})
    return rows, missing


def read_trajectories(paths: str) -> list[Trajectory]:
    """Trajectories of comma-separated trajectories.jsonl files (schema fireflan.trajectory/1)."""
    out = []
    for path in filter(None, (p.strip() for p in paths.split(","))):
        for n, rec in iter_jsonl(path):
            if rec.get("schema") != "fireflan.trajectory/1":
                raise DataError(path, f"not a trajectory (schema {rec.get('schema')!r})", line=n, field="schema")
            out.append(Trajectory.from_record(rec))
    return out


# --------------------------------------------------------------------------- rewards (pure, given a tool)

def completion_text(completion, end: str = END) -> str:
    """A completion as text, without the END that closed the turn (TRL's decoding keeps it where the
    tokenizer does not count it special). TRL gives a conversational prompt's completion as
    [{"role": "assistant", "content": ...}].

    'Action: finish[x]<end_of_turn>' -> 'Action: finish[x]'
    """
    if not isinstance(completion, str):
        completion = "".join(m.get("content") or "" for m in completion if m.get("role") == "assistant")
    return completion.split(end)[0]


def format_reward(completions, hermes: bool = False, end: str = END, **_) -> list[float]:
    """1.0 for each completion that reads as one step of the action format (ReAct text; `hermes`: tool calls
    and a final answer) with nothing written after it, else 0.0; a multi-turn completion needs every turn so.

    ['Thought: t\\nAction: finish[x]', 'Action: finish[x]\\nObservation: made up', 'hello'] -> [1.0, 0.0, 0.0]
    """
    return [float(all(p.ok and not p.trailing for p, _ in steps)) for steps in
            (steps_of(c, hermes, end) for c in completions)]


def steps_of(completion, hermes: bool = False, end: str = END) -> list:
    """[(Parsed, the tool's reply or None)] of a completion. ReAct text is one step whose reply is not yet
    known; a hermes completion (TRL's parsed messages, multi-turn: assistant turns with `tool_calls`, each
    call followed by its `tool` reply) is a step per call and one for a final answer.

    'Action: search[X]' -> [(Parsed(action='search', argument='X'), None)]
    [assistant calls search {"query": "X"}, tool "X is ...", assistant "Final Answer: Y"]
    -> [(Parsed('search', 'X'), 'X is ...'), (Parsed('finish', 'Y'), None)]
    """
    if not hermes:
        return [(parse_action(completion_text(completion, end)), None)]
    messages = [{"role": "assistant", "content": completion}] if isinstance(completion, str) else completion
    steps = []
    for i, m in enumerate(messages):
        if m.get("role") != "assistant":
            continue
        if not m.get("tool_calls"):
            steps.append((parse_tool_call(completion_text([m], end)), None))
            continue
        replies = [r.get("content") for r in messages[i + 1:i + 1 + len(m["tool_calls"])] if r.get("role") == "tool"]
        for k, call in enumerate(m["tool_calls"]):
            fn = call.get("function") or {}
            parsed = Parsed((m.get("content") or "").strip() if k == 0 else "", str(fn.get("name", "")).lower(),
                            call_argument(fn.get("arguments") or {}))
            steps.append((parsed, replies[k] if k < len(replies) else None))
    return steps


def reached(observation: str, pages: list[list[str]]) -> set[int]:
    """Which gold pages (by index) an observation shows a sentence of.

    ('Kest plays jazz. It formed in 1990.', [['Kest plays jazz.'], ['Velmora is a city.']]) -> {0}
    """
    return {i for i, sentences in enumerate(pages) if any(s in observation for s in sentences)}


def step_reward(parsed, observation: str | None, seen: set[int], pages: list[list[str]], score,
                progress: float = PROGRESS) -> float:
    """The environment reward of one parsed step: a finish by its score (0.5 EM + 0.5 F1); a search or lookup
    `progress` when its `observation` reaches a gold page not in `seen` (updated); 0 otherwise."""
    if not parsed.ok:
        return 0.0
    if parsed.action == "finish":
        s = score(parsed.argument)
        return 0.5 * s.get("em", 0.0) + 0.5 * s.get("f1", s.get("em", 0.0))
    new = reached(observation or "", pages) - seen
    seen |= new
    return progress if new else 0.0


def scorer(task: str, answer: str, question_id: str = ""):
    """The task's score function of an answer against the gold `answer`: answer -> {'em', 'f1'}."""
    example = Example(id=question_id, question="", answer=answer, task=task)
    return lambda prediction: get_task(task).score(prediction, example)


class WikiReplay:
    """The wiki put in the state a prompt left it in (its actions replayed; cached per prompt), to run a
    completion's action there. One shared BM25 index."""

    def __init__(self, wiki, cache_size: int = 256):
        self.wiki, self.cache, self.cache_size = wiki, {}, cache_size

    def run(self, prompt: list[dict], action: str, argument: str) -> str:
        actions = tuple((p.action, p.argument) for m in prompt if m["role"] == "assistant"
                        for p in [parse_action(m["content"])] if p.ok and p.action != "finish")
        if actions not in self.cache:
            self.wiki.reset()
            for name, arg in actions:
                self.wiki.step(name, arg)
            if len(self.cache) >= self.cache_size:
                self.cache.pop(next(iter(self.cache)))
            self.cache[actions] = self.wiki.state()
        self.wiki.restore(self.cache[actions])
        return self.wiki.step(action, argument).text


def environment_reward(completions, prompts, answer, task, gold_pages, tool: WikiReplay | None = None,
                       question_id=None, progress: float = PROGRESS, hermes: bool = False, end: str = END,
                       **_) -> list[float]:
    """The environment reward of each completion (see the module's docstring): its steps run in the tool
    (`tool` replays the prompt first; a multi-turn completion carries its tool replies already: a call
    left without one, cut by the length limit, earns nothing)."""
    out = []
    for k, completion in enumerate(completions):
        prompt = prompts[k] if isinstance(prompts[k], list) else []
        pages = gold_pages[k]
        seen = set().union(*[reached(m["content"], pages) for m in prompt if m["role"] in ("user", "tool")])
        score = scorer(task[k], answer[k], question_id[k] if question_id else "")
        total = 0.0
        for parsed, observation in steps_of(completion, hermes, end):
            if observation is None and not hermes and parsed.ok and parsed.action != "finish" and tool:
                observation = tool.run(prompt, parsed.action, parsed.argument)
            total += step_reward(parsed, observation, seen, pages, score, progress)
        out.append(total)
    return out


# --------------------------------------------------------------------------- multi-turn: the wiki as TRL's environment

class WikiEnvironment:
    """The wiki as a TRL environment (`environment_factory=lambda: WikiEnvironment(wiki)`): its public methods
    are the tools the model calls, with the names, argument names and descriptions of fireflan's hermes
    tools (`fireflan.agent.toolcalls.TOOLS`), so the prompt declares them as in SFT."""

    def __init__(self, wiki):
        import copy

        self.wiki = copy.copy(wiki)  # its own page and lookup cursor; the pages and the BM25 index shared

    def reset(self, prompt=None, **_) -> None:
        """Back to the state the prompt left the wiki in (its tool calls replayed)."""
        self.wiki.reset()
        for m in from_tool_calls(prompt or []):
            parsed = parse_action(m["content"]) if m["role"] == "assistant" else None
            if parsed is not None and parsed.ok and parsed.action != "finish":
                self.wiki.step(parsed.action, parsed.argument)

    def search(self, query: str) -> str:
        """Returns the wiki page with this title, or the best-matching passage and similar titles.

        Args:
            query: a page title or a few words
        """
        return self.wiki.search(query)

    def lookup(self, keyword: str) -> str:
        """Returns the next sentence containing the keyword on the last page found.

        Args:
            keyword: a word or phrase
        """
        return self.wiki.lookup(keyword)


# --------------------------------------------------------------------------- the run

def _rewards_log(out: Path, started: float, max_steps: int):
    from transformers import TrainerCallback

    class RewardLog(TrainerCallback):
        """Appends a row per step to OUT/rewards.csv (step, the mean reward and its std, each reward's mean, the
        KL when beta > 0, completion tokens, the step's seconds, seconds since the start), and prints what the
        run will cost after its first step."""

        path = out / "rewards.csv"
        columns = ["step", "reward", "reward_std", "format", "environment", "kl", "completion_tokens",
                   "step_seconds", "seconds"]
        step_started = step_seconds = None
        first = True

        def on_step_begin(self, args, state, control, **kwargs):
            self.step_started = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.step_seconds = time.perf_counter() - self.step_started
            if self.first:  # the first step of this run (a resumed run has fewer left)
                self.first, left = False, max_steps - state.global_step + 1
                print(f"GRPO: step 1 took {self.step_seconds:.1f} s; {left} steps ≈ "
                      f"{self.step_seconds * left / 60:.1f} min", flush=True)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "reward" not in logs:
                return
            new = not self.path.exists()
            with self.path.open("a", newline="") as f:
                w = csv.writer(f)
                if new:
                    w.writerow(self.columns)
                w.writerow([state.global_step, round(logs["reward"], 4), round(logs.get("reward_std", 0.0), 4),
                            round(logs.get("rewards/format/mean", 0.0), 4),
                            round(logs.get("rewards/environment/mean", 0.0), 4),
                            round(logs["kl"], 6) if "kl" in logs else "",  # beta > 0: from the starting model
                            round(logs.get("completions/mean_length", 0.0), 1),
                            round(self.step_seconds or 0.0, 2), round(time.perf_counter() - started, 1)])

    return RewardLog()


def grpo_args(options: GRPOConfig, out: Path, backend: str, **overrides):
    """The GRPOConfig of a run: fp32 and no activation checkpointing on CPU (TRL defaults to bf16 and
    checkpointing), one log and one reward row per step, `prompts_per_step` x `num_generations` completions
    per step, generated afresh every step."""
    import torch
    from trl import GRPOConfig

    gpu = backend == "unsloth" and torch.cuda.is_available()
    args = dict(
        output_dir=str(out / "checkpoints"), gradient_accumulation_steps=1,
        per_device_train_batch_size=options.prompts_per_step * options.num_generations,
        num_generations=options.num_generations, max_completion_length=options.max_completion_length,
        temperature=options.temperature, beta=options.beta,
        learning_rate=options.lr, lr_scheduler_type="constant", max_steps=options.max_steps, logging_steps=1,
        save_steps=options.save_steps, save_total_limit=2, seed=options.seed, data_seed=options.seed,
        reward_weights=[options.format_weight, 1.0], bf16=gpu and torch.cuda.is_bf16_supported(),
        fp16=gpu and not torch.cuda.is_bf16_supported(), report_to="none", remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available(), disable_tqdm=True,
        max_tool_calling_iterations=options.max_tool_calls if options.multi_turn else None)
    # transformers 5.2x names it activation_checkpointing; the 5.17 that Unsloth pins, gradient_checkpointing
    fields = {f.name for f in dataclasses.fields(GRPOConfig)}
    args["activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"] = False
    args.update(overrides)
    return GRPOConfig(**args)


def prepare_prompts(options: GRPOConfig):
    """(rows, wiki): the dataset's rows (`prompt_rows`, in hermes form for multi-turn) and the task's tool."""
    _, examples, wiki = open_task(options.task, options.data, options.split, corpus=options.corpus,
                                  observations=options.observations, context="pool")  # one wiki the rewards replay
    methods = tuple(m.strip() for m in options.methods.split(","))
    rows, missing = prompt_rows(read_trajectories(options.trajectories), examples, methods)
    if missing:
        print(f"fireflan grpo: {len(missing)} trajectories of questions not in {options.data or 'the default world'} "
              f"left out, e.g. {missing[:3]}")
    if options.multi_turn:
        rows = [{**r, "prompt": to_tool_calls(r["prompt"])} for r in rows]
    if options.limit:
        rows = rows[: options.limit]
    if not rows:
        raise ValueError("no prompts: no successful trajectory of the chosen methods has a question in --data")
    return rows, wiki


def fitting(rows: list[dict], tokenizer, max_length: int, tools=None) -> list[dict]:
    """The rows whose prompt (rendered as SFT renders it, with the generation prompt) fits in `max_length`
    tokens; the others are reported and left out, never truncated."""
    lengths = [len(token_ids(tokenizer, render_chat(tokenizer, r["prompt"], True, tools))) for r in rows]
    too_long = [r["question_id"] for r, n in zip(rows, lengths, strict=True) if n > max_length]
    if too_long:
        print(f"fireflan grpo: {len(too_long)} prompt(s) longer than {max_length} tokens left out, e.g. {too_long[:3]}")
    kept = [r for r, n in zip(rows, lengths, strict=True) if n <= max_length]
    if not kept:
        raise ValueError(f"no prompt fits in {max_length} tokens")
    return kept


def reward_funcs(options: GRPOConfig, wiki, end: str = END) -> list:
    """[format, environment]: the reward functions as TRL calls them (it logs each under its `__name__`); END closes
    the model's turns."""
    replay = WikiReplay(wiki)

    def environment(completions, prompts, **kwargs):
        return environment_reward(completions, prompts, tool=None if options.multi_turn else replay,
                                  progress=options.progress, hermes=options.multi_turn, end=end, **kwargs)

    def form(completions, **kwargs):
        return format_reward(completions, options.multi_turn, end)

    form.__name__ = "format"
    return [form, environment]


@one_run_per_folder()
def grpo(options: GRPOConfig) -> dict:
    """Run (or resume) GRPO training; returns and writes OUT/train.json (beside OUT/adapter, OUT/rewards.csv)."""
    import warnings

    import datasets
    import torch

    started = time.perf_counter()
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(options.threads or os.cpu_count() or 1)
    rows, wiki = prepare_prompts(options)  # before minutes of loading

    backend = choose_backend(options.backend, cuda_available(), installed("unsloth"))
    if backend == "unsloth":  # before transformers and TRL, which Unsloth patches when it is imported
        import unsloth  # noqa: F401
    base = resolve_base(options.base)
    from transformers import set_seed

    set_seed(options.seed)  # before the adapter is made: its initial weights are drawn from this seed
    config = TrainConfig(base=options.base, backend=backend, rank=options.rank, alpha=options.alpha,
                         target_modules=options.target_modules, seed=options.seed, init_adapter=options.init_adapter,
                         max_length=options.max_prompt_length + options.max_completion_length)
    model, tokenizer = load_model(config, base, backend)  # as `fireflan train` loads it: the same template
    if options.init_adapter:  # before TRL copies the adapter as its reference (beta > 0)
        start_from_adapter(model, config)
    rows = fitting(rows, tokenizer, options.max_prompt_length, task_tools(options.task) if options.multi_turn else None)

    extra, eos, end = {}, tokenizer.eos_token, turn_tokens(tokenizer).end
    if options.multi_turn:
        wiki.rank("warm up", 1)  # build the BM25 index once; each environment shares it
        tokenizer.response_template = response_template(generation_prompt(tokenizer), end)
        tokenizer.eos_token = end  # see the module's docstring
        extra["environment_factory"] = lambda: WikiEnvironment(wiki)
    from trl import GRPOTrainer

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="You are using 'environment_factory'")
        trainer = GRPOTrainer(model=model, reward_funcs=reward_funcs(options, wiki, end), processing_class=tokenizer,
                              args=grpo_args(options, out, backend), train_dataset=datasets.Dataset.from_list(rows),
                              callbacks=[_rewards_log(out, started, options.max_steps)], **extra)
    resume = last_checkpoint(out / "checkpoints")
    state = json.loads((Path(resume) / "trainer_state.json").read_text()) if resume else {}
    trim_log(out / "rewards.csv", state.get("global_step", 0))
    if state and state["global_step"] >= state["max_steps"]:  # killed after its last step, before it saved
        steps, train_seconds = state["global_step"], 0.0
        load_weights(trainer.model, Path(resume), True)
    else:
        result = trainer.train(resume_from_checkpoint=resume)
        steps, train_seconds = trainer.state.global_step, result.metrics.get("train_runtime", 0.0)

    tokenizer.eos_token, tokenizer.response_template = eos, None  # saved as SFT saves it
    saved = out / "adapter"
    trainer.model.save_pretrained(saved, selected_adapters=["default"])  # not TRL's frozen "ref" copy
    tokenizer.save_pretrained(saved)
    rewards = _read_rewards(out / "rewards.csv")
    summary = {
        "schema": SCHEMA_TRAIN, "stage": "grpo", "base": base, "base_name": options.base, "lora": True,
        "action_format": "hermes" if options.multi_turn else "react", "backend": backend, "saved": str(saved),
        "resumed_from": resume, "steps": steps, "prompts": len(rows),
        "reward_first": _mean(rewards[:10]), "reward_last": _mean(rewards[-10:]),
        "seconds": round(time.perf_counter() - started, 1), "train_seconds": round(train_seconds, 1),
        "config": asdict(options),
    }
    write_json(out / "train.json", summary)
    return summary


def _read_rewards(path: Path) -> list[float]:
    return [float(r["reward"]) for r in csv.DictReader(path.read_text().splitlines())] if path.exists() else []


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
