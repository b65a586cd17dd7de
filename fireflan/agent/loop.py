"""The agent loop: ReAct (Thought / Action / Observation) and the methods around it.

    traj = run_episode(model, wiki, example, method="react", prefix=few_shot_prefix("react"))

`episode(...)` is the same loop as a generator that yields each model request and is sent the reply,
so several episodes can be stepped side by side (multi-branch decoding in one batch).

A plain `for` over steps, each building a `Step` record (smolagents' shape). What the model got
wrong becomes an observation it can read (a parse error, an unknown action, an answer judged
wrong under Reflexion); nothing is invented on its behalf. Text the model writes after its action
(an "Observation:" it made up) is cut from the conversation and counted as a hallucination.

Methods (FireAct's three):
- react: the loop, up to `max_calls`;
- cot: one step with no tool: a thought, then finish[answer];
- reflexion: the loop; when `judge(answer, messages)` says a finished answer is wrong, the model is
  told so, asked to reflect, and goes on (at most `trials` attempts in all).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from fireflan.tools.actions import ACTION_NAMES, parse_action
from fireflan.tools.base import Observation

SCHEMA_TRAJECTORY = "fireflan.trajectory/1"
LOOP_METHODS = ("react", "cot", "reflexion")
STOP = ["\nObservation", "Observation:"]
REFLECT = ("Observation: Answer is INCORRECT. In one or two sentences, reflect on what went wrong and how "
           "to do better, then continue.")


@dataclass
class Step:
    thought: str
    action: str | None  # None when the output could not be parsed
    argument: str | None
    observation: str
    raw: str  # the model's text as generated (after the server's stop strings)
    format_error: bool = False
    hallucinated: bool = False  # the model wrote on after its action (e.g. its own "Observation:")
    feedback: bool = False  # a wrong answer told to the model (Reflexion)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    @property
    def content(self) -> str:
        """The assistant turn as it stays in the conversation: the thought and action, nothing after."""
        if self.action is None:
            return self.raw.strip()
        thought = f"Thought: {self.thought}\n" if self.thought else ""
        return f"{thought}Action: {self.action}[{self.argument}]"


@dataclass
class Trajectory:
    id: str
    task: str
    method: str
    model: str
    seed: int
    question: str
    gold: str
    steps: list[Step] = field(default_factory=list)
    answer: str | None = None  # the last finish[...] argument; None if the episode never finished
    score: dict = field(default_factory=dict)
    success: bool = False
    prompt: str = ""  # which prompt prefix the model saw ("" = none: a fine-tuned model)
    discarded: list[Step] = field(default_factory=list)  # steps tried and taken back (backtracking)
    extra: dict = field(default_factory=dict)  # method-specific facts (votes of the branches, a plan, ...)

    def budget(self) -> dict:
        """What the episode cost: model calls and tokens, discarded attempts and branches included."""
        if "budget" in self.extra:
            return dict(self.extra["budget"])
        steps = self.steps + self.discarded
        return {"calls": len(steps), "prompt_tokens": sum(s.prompt_tokens for s in steps),
                "completion_tokens": sum(s.completion_tokens for s in steps)}

    def apply_score(self, score) -> None:
        """Fill `score` with `score(answer) -> {'em', 'f1', ...}` (when given); success is EM == 1."""
        if score is not None:
            self.score = score(self.answer or "")
            self.success = self.answer is not None and self.score.get("em", 0.0) == 1.0

    def to_record(self) -> dict:
        return {"schema": SCHEMA_TRAJECTORY, **asdict(self)}

    @classmethod
    def from_record(cls, rec: dict) -> Trajectory:
        fields = {k: v for k, v in rec.items() if k != "schema"}
        fields["steps"] = [Step(**s) for s in fields.get("steps", [])]
        fields["discarded"] = [Step(**s) for s in fields.get("discarded", [])]
        return cls(**fields)

    def messages(self) -> list[dict]:
        """FireAct's unified format: the question, then assistant / "Observation: ..." turns.

        The observation after the final finish is left out: nothing follows it.
        """
        out = [{"role": "user", "content": self.question}]
        for i, step in enumerate(self.steps):
            out.append({"role": "assistant", "content": step.content})
            last_finish = step.action == "finish" and not step.feedback and i == len(self.steps) - 1
            if not last_finish:
                out.append({"role": "user", "content": f"Observation: {step.observation}"})
        if out[-1]["role"] == "user":
            out.pop()
        return out


@dataclass
class AgentConfig:
    """Options of one episode."""

    max_calls: int = 8  # model calls per episode (all attempts together)
    trials: int = 2  # Reflexion: attempts in all
    temperature: float = 0.0
    max_tokens: int = 256  # per model call
    stop: list[str] = field(default_factory=lambda: list(STOP))
    backtracks: int = 0  # steps that may be taken back and sampled again when they fail
    backtrack_temperature: float = 0.7  # sampling temperature of a retried step


class NoTool:
    """The environment of CoT: only finish[...] exists."""

    pages: list = []

    def reset(self) -> None:
        pass

    def step(self, action: str, argument: str):
        if action == "finish":
            return Observation(f"Episode finished with the answer: {argument}", done=True, answer=argument)
        return Observation(f"No tools are available here: answer with finish[...] instead of {action}[...].")


@dataclass
class Request:
    """What an episode asks of the model next: continue `messages` at `temperature` with `seed`.
    `traj` is the episode so far (so a caller that abandons it still sees what it cost)."""

    messages: list[dict]
    temperature: float
    seed: int
    traj: Trajectory


def run_episode(model, tool, example, *, method: str = "react", prefix: list[dict] | None = None,
                config: AgentConfig | None = None, seed: int = 0, judge=None, score=None,
                prompt_name: str = "", on_step=None) -> Trajectory:
    """Run one question to the end and return its whole trajectory.

    `prefix`: messages before the question (a system prompt, few-shot examples); `judge(answer,
    messages) -> bool` decides Reflexion's retries (a teacher knows the gold answer; the model in the
    judge's role reads `messages`, the conversation up to the finish); `score(answer) -> dict` fills
    the trajectory's score (EM/F1); success is EM == 1. `on_step(step)` is called as each step ends.
    """
    config = config or AgentConfig()
    loop = episode(tool, example, method=method, prefix=prefix, config=config, seed=seed, judge=judge,
                   score=score, prompt_name=prompt_name, on_step=on_step, model_name=getattr(model, "name", "?"))
    try:
        request = next(loop)
        while True:
            text = model.generate(request.messages, stop=config.stop, temperature=request.temperature,
                                  seed=request.seed, max_tokens=config.max_tokens)
            request = loop.send((text, getattr(model, "last_usage", None)))
    except StopIteration as finished:
        return finished.value


def episode(tool, example, *, method: str = "react", prefix: list[dict] | None = None,
            config: AgentConfig | None = None, seed: int = 0, judge=None, score=None, prompt_name: str = "",
            on_step=None, model_name: str = "?"):
    """The loop of `run_episode` with the model left out: a generator that yields a `Request` for each
    model call and is sent back `(text, usage)`; it returns the `Trajectory`. Several episodes can so
    be stepped side by side (multi-branch decoding in one batch)."""
    if method not in LOOP_METHODS:
        raise ValueError(f"unknown method {method!r}; the methods are {', '.join(LOOP_METHODS)}")
    config = config or AgentConfig()
    if method == "cot":
        tool, max_calls = NoTool(), 1
    else:
        max_calls = config.max_calls
    trials_left = config.trials if method == "reflexion" else 1
    tool.reset()
    messages = [*(prefix or []), {"role": "user", "content": example.question}]
    traj = Trajectory(id=example.id, task=example.task, method=method, model=model_name,
                      seed=seed, question=example.question, gold=example.answer, prompt=prompt_name)

    backtracks_left, attempt = config.backtracks, 0
    for _ in range(max_calls):
        started = time.perf_counter()
        while True:
            saved = tool_state(tool)
            temperature = config.temperature if attempt == 0 else max(config.temperature, config.backtrack_temperature)
            text, usage = yield Request(messages, temperature, seed + attempt, traj)
            step, obs = _step(text, usage, tool)
            if backtracks_left == 0 or not failed_step(step, traj.steps):
                break
            restore_tool(tool, saved)  # back to the state before the failed step, and sample another
            step.seconds = round(time.perf_counter() - started, 4)
            traj.discarded.append(step)
            backtracks_left -= 1
            attempt += 1
        traj.steps.append(step)
        if on_step is not None:
            on_step(step)
        messages.append({"role": "assistant", "content": step.content})
        if obs is not None and obs.done:
            traj.answer = obs.answer
            trials_left -= 1
            if judge is not None and trials_left > 0 and not judge(obs.answer, messages):
                step.feedback = True
                step.observation = REFLECT.removeprefix("Observation: ")
                messages.append({"role": "user", "content": REFLECT})
                step.seconds = round(time.perf_counter() - started, 4)
                continue
            step.seconds = round(time.perf_counter() - started, 4)
            break
        messages.append({"role": "user", "content": f"Observation: {step.observation}"})
        step.seconds = round(time.perf_counter() - started, 4)

    traj.apply_score(score)
    return traj


def make_step(text: str, usage, parsed, observation: str) -> Step:
    """A step from the model's text as parsed (`parse_action`), what it cost, and what it observed."""
    return Step(thought=parsed.thought, action=parsed.action, argument=parsed.argument, observation=observation,
                raw=text, format_error=not parsed.ok, hallucinated=bool(parsed.trailing),
                prompt_tokens=getattr(usage, "prompt_tokens", 0),
                completion_tokens=getattr(usage, "completion_tokens", 0))


def _step(text: str, usage, tool):
    """The model's text parsed and its action run: (Step, the tool's Observation or None on a parse error)."""
    parsed = parse_action(text, getattr(tool, "actions", ACTION_NAMES))
    obs = tool.step(parsed.action, parsed.argument) if parsed.ok else None
    return make_step(text, usage, parsed, obs.text if obs is not None else parsed.error), obs


def failed_step(step: Step, previous: list[Step]) -> bool:
    """A step worth taking back: unparseable, a repeat of an earlier action, a search that found nothing,
    or SQL that failed."""
    if step.format_error:
        return True
    if any((p.action, p.argument) == (step.action, step.argument) for p in previous):
        return True
    if step.action == "execute" and step.observation.startswith("Error:"):
        return True
    return step.action == "search" and step.observation.startswith("Could not find")


def tool_state(tool):
    """What an action can change in a tool (None for one without state), to put it back with `restore_tool`."""
    return tool.state() if hasattr(tool, "state") else None


def restore_tool(tool, saved) -> None:
    if saved is not None:
        tool.restore(saved)
