"""A GGUF model run locally with llama-cpp-python, behind the one `generate` interface.

    model = LlamaModel("runs/model/gguf/model-q8_0.gguf")
    text = model.generate(messages, stop=["\\nObservation"], temperature=0.0, seed=0)

Chat models are prompted through the chat template stored in the GGUF (rendered here with Jinja,
so the prompt is exactly what training saw). A file with no template is refused with a clear
message (llama-cpp-python would otherwise fall back silently to the llama-2 format), unless a
template is given or `raw=True` asks for plain few-shot completion, which is how a base model
(the embedded Gemma before fine-tuning) is prompted: FireAct's prompting baseline.

A model trained in the hermes action format (its GGUF says `fireflan.action_format = hermes`) is spoken to
in ReAct all the same: its conversation is rendered as OpenAI tool calls with the environment's tools
declared (`use_tools`), and the tool call it writes is handed back as ReAct text (fireflan.agent.toolcalls),
so every agent method runs on it unchanged.

Each episode's prompt grows turn by turn; llama.cpp keeps the evaluated prefix, so only the new
tokens of each step are evaluated.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

from fireflan.agent import toolcalls
from fireflan.agent.constrain import ActionConstraint
from fireflan.io import DataError, whole
from fireflan.models.base import Usage, render
from fireflan.models.batch import BatchDecoder, Job
from fireflan.tools.actions import ACTION_NAMES


def open_llama(path, **kwargs):
    """`llama_cpp.Llama(model_path=path, **kwargs)`, opened `without_amx_repacking`; a file llama.cpp cannot
    load is named with what is wrong with it."""
    import llama_cpp

    try:
        with without_amx_repacking():
            return llama_cpp.Llama(model_path=str(path), **kwargs)
    except ValueError as e:  # llama.cpp says only "Failed to load model from file"
        why = gguf_problem(path)
        raise DataError(path, f"not a loadable GGUF: {why}" if why else str(e)) from None


@contextlib.contextmanager
def without_amx_repacking():
    """Models opened inside have llama.cpp's weight repacking ("extra buffer types") off on a CPU with AMX:
    there its AMX matrix multiply crashes the process in the first decode (ggml-org/llama.cpp#20824; seen
    here with llama-cpp-python 0.3.36 on a Xeon with AMX_INT8). FIREFLAN_LLAMA_REPACK=1 keeps it on."""
    from llama_cpp import llama_cpp as lib

    if os.environ.get("FIREFLAN_LLAMA_REPACK") == "1" or b"AMX_INT8 = 1" not in lib.llama_print_system_info():
        yield
        return
    defaults = lib.llama_model_default_params

    def no_repacking():
        params = defaults()
        params.use_extra_bufts = False
        return params

    lib.llama_model_default_params = no_repacking  # what Llama() reads its model options from
    try:
        yield
    finally:
        lib.llama_model_default_params = defaults


def gguf_problem(path) -> str | None:
    """Why a GGUF file cannot be loaded, as far as its bytes tell (None when they look whole): not a
    GGUF at all, a header cut short, or tensor data that ends past the end of the file (a truncated copy)."""
    path = Path(path)
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        return f"it does not start with the GGUF magic bytes (starts with {magic!r})"
    from gguf import GGUFReader

    try:
        reader = GGUFReader(path)
    except Exception as e:  # the reader fails in its own ways on a cut header
        return f"its header cannot be read ({type(e).__name__}: {e}); is the file truncated?"
    size = path.stat().st_size
    end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
    if end > size:
        return f"truncated: {size:,} bytes, but its tensors end at byte {end:,}"
    return None


def render_raw(messages: list[dict]) -> str:
    """Messages as plain few-shot text for a base model, ending where the model should continue.

    [system: 'Instructions...', user: 'Q?'] -> 'Instructions...\\n\\nQuestion: Q?\\n'
    """
    parts = [m["content"] for m in messages if m["role"] == "system"]
    body = render([m for m in messages if m["role"] != "system"])
    return "\n\n".join([*parts, body]) + "\n"


class LlamaModel:
    """A GGUF file through llama-cpp-python. `raw=True`: few-shot completion, no chat template."""

    def __init__(self, path, n_ctx: int = 4096, threads: int | None = None, chat_template: str | None = None,
                 raw: bool = False, seed: int = 0, name: str | None = None, constrain_actions: bool = False,
                 action_format: str | None = None, llm=None):
        self.path = str(path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"{self.path}: no such GGUF file")
        whole(Path(self.path).parent)  # not the file of an export stopped before its verification
        self.threads = threads or default_threads()
        # `llm`: a llama_cpp.Llama already open on `path` (the server's), used as it is
        self.llm = llm or open_llama(self.path, n_ctx=n_ctx, n_threads=self.threads, seed=seed, verbose=False)
        self.n_ctx, self._batch = n_ctx, None  # the batch decoder is made on the first generate_batch
        self.raw = raw
        self.template = chat_template or self.llm.metadata.get("tokenizer.chat_template")
        if self.template is None and not raw:
            raise DataError(self.path, "it has no chat template, so the agent's messages cannot be rendered for it: "
                            "a model fine-tuned here gets one from `fireflan export`; a base model is prompted with "
                            "--model embedded (or, from Python, LlamaModel(path, raw=True))",
                            field="tokenizer.chat_template")
        self._jinja = None if raw else _compile(self.template)
        self.bos = self._token_text(self.llm.token_bos())
        self.eos = self._token_text(self.llm.token_eos())
        self.name = name or os.path.basename(self.path)
        self.constrain_actions = constrain_actions
        self.action_format = "react" if raw else action_format or self.llm.metadata.get(toolcalls.ACTION_FORMAT_KEY,
                                                                                      "react")
        if self.action_format not in toolcalls.ACTION_FORMATS:
            raise DataError(self.path, f"unknown action format {self.action_format!r}; fireflan knows "
                            f"{', '.join(toolcalls.ACTION_FORMATS)}", field=toolcalls.ACTION_FORMAT_KEY)
        self.use_tools(ACTION_NAMES)
        self.usage, self.last_usage = Usage(), Usage()

    def use_tools(self, actions) -> None:
        """The environment's actions, declared as tools to a hermes-format model (the wiki's by default)."""
        self.actions, self.tools = tuple(actions), toolcalls.tools_for(actions)

    def _stop(self, stop) -> list[str]:
        return [*(stop or []), *(toolcalls.STOP if self.action_format == "hermes" else [])]

    def _reply(self, text: str) -> str:
        """The model's text as the agent reads it (a hermes tool call as ReAct text)."""
        return toolcalls.to_react_text(text, self.actions) if self.action_format == "hermes" else text

    def constraint(self, names=ACTION_NAMES):
        """A fresh logits processor that allows only these action names after "Action:" (fireflan.agent.constrain)."""
        return ActionConstraint(lambda s: self.llm.tokenize(s.encode(), add_bos=False, special=False),
                                lambda ids: self.llm.detokenize(ids).decode("utf-8", errors="ignore"),
                                self.llm.n_vocab(), names)

    def _token_text(self, token_id: int) -> str:
        if token_id < 0:
            return ""
        return self.llm.detokenize([token_id], special=True).decode("utf-8", errors="replace")

    def prompt(self, messages: list[dict]) -> str:
        """The text the model continues: the chat template with a generation prompt, or raw few-shot text."""
        if self.raw:
            return render_raw(messages)
        if self.action_format == "hermes":
            return self.render(toolcalls.to_tool_calls(messages, self.tools), self.tools)
        return self.render(messages)

    def render(self, messages: list[dict], tools: list[dict] | None = None) -> str:
        """`messages` (OpenAI-shaped, tool calls included) through the model's chat template, ending where
        the model's turn begins."""
        clean = [{k: m[k] for k in ("role", "content", "tool_calls", "tool_call_id") if k in m} for m in messages]
        return self._jinja.render(messages=clean, tools=tools, add_generation_prompt=True, bos_token=self.bos,
                                  eos_token=self.eos)

    def generate(self, messages, *, stop=None, temperature=0.0, seed=None, max_tokens=256) -> str:
        text = self.prompt(messages)
        tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        processors = None
        if self.constrain_actions:
            from llama_cpp import LogitsProcessorList

            processors = LogitsProcessorList([self.constraint()])
        from llama_cpp import StoppingCriteriaList

        # llama-cpp-python (0.3.36) skips its own max_tokens check while the text ends in an unfinished UTF-8
        # character: a model that keeps emitting byte tokens would run to the end of the context
        limit = len(tokens) + max_tokens
        out = self.llm.create_completion(tokens, max_tokens=max_tokens, temperature=temperature,
                                         stop=self._stop(stop), seed=seed, logits_processor=processors,
                                         stopping_criteria=StoppingCriteriaList([lambda ids, _: len(ids) >= limit]))
        usage = out.get("usage", {})
        self.last_usage = Usage(calls=1, prompt_tokens=usage.get("prompt_tokens", len(tokens)),
                                completion_tokens=usage.get("completion_tokens", 0))
        self.usage.add(self.last_usage)
        return self._reply(out["choices"][0]["text"])

    def _decoder(self, n: int) -> BatchDecoder:
        """The batch decoder, made (or remade larger) for `n` sequences."""
        if self._batch is None or self._batch.n_seq < n:
            if self._batch is not None:
                self._batch.close()
            # one memory for all sequences (their shared prefix held once): room for several whole episodes
            self._batch = BatchDecoder(self.llm, n_seq=max(n, 2), n_ctx=max(2, (n + 1) // 2) * self.n_ctx,
                                       threads=self.threads)
        return self._batch

    def _tokens(self, messages: list[dict]) -> list[int]:
        return self.llm.tokenize(self.prompt(messages).encode("utf-8"), add_bos=False, special=True)

    def yes_probabilities(self, conversations: list[list[dict]]) -> list[tuple[float, Usage]]:
        """The judge's P(yes) / (P(yes) + P(no)) for the first token of its reply to each conversation:
        one evaluation of each prompt in the batch decoder (whose sequences hold the agent's conversation
        already, so only the candidate and the judge's question are new), no generation."""
        yes, no = (self.llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in ("yes", "no"))
        prompts = [self._tokens(c) for c in conversations]
        results = []
        for logits, _ in self._decoder(len(prompts)).next_logits(prompts):
            gap = min(float(logits[no]) - float(logits[yes]), 700.0)  # softmax over the two words
            results.append(1.0 / (1.0 + math.exp(gap)))
        usages = [Usage(calls=1, prompt_tokens=len(t), completion_tokens=0) for t in prompts]
        for u in usages:
            self.usage.add(u)
        return list(zip(results, usages, strict=True))

    def generate_batch(self, requests, *, stop=None, max_tokens=256) -> list[tuple[str, Usage]]:
        """Several continuations decoded together (multi-branch reasoning): `requests` are
        (messages, temperature, seed); returns (text, usage) for each, in order. Sequences keep their
        cache between calls, so each branch's next step evaluates only its new tokens."""
        decoder = self._decoder(len(requests))
        jobs = [Job(self._tokens(messages), temperature=temperature, seed=seed or 0,
                    processor=self.constraint() if self.constrain_actions else None)
                for messages, temperature, seed in requests]
        outs = decoder.generate(jobs, stop=self._stop(stop), max_tokens=max_tokens)
        results = []
        for out in outs:
            usage = Usage(calls=1, prompt_tokens=out.prompt_tokens, completion_tokens=out.completion_tokens)
            self.usage.add(usage)
            results.append((self._reply(out.text), usage))
        self.last_usage = results[-1][1] if results else Usage()
        return results


def default_threads() -> int:
    """llama.cpp threads: all cores but one on a big machine; on two cores one thread, which stays
    steady when another process is busy (measured: 2 threads collapse to 1-15 tok/s under load)."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else cores - 1


def _compile(template: str):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    return env.from_string(template)


def _raise(message):
    raise ValueError(f"chat template: {message}")
