"""What a training run will take, worked out before anything is loaded: `fireflan train --plan`.

    fireflan train --plan --corpus runs/hotpotqa/corpus --base embedded --batch-size 2
    fireflan train --plan --base meta-llama/Llama-3.1-8B-Instruct --backend unsloth --memory-gb 16

From the base's shape (its config.json: a local folder, fireflan's table of well-known bases in
architectures.json, or with a network the hub's) it counts the parameters and the trainable ones, and
estimates the peak memory of a step, term by term:

- weights: fp32 on the CPU (trl); under Unsloth 4-bit NF4 for LoRA (QLoRA: 0.5 byte a weight plus its
  block constants, the embeddings and output layer kept in 16-bit) or 16-bit for full fine-tuning;
- trainable state: each trainable parameter's fp32 weight, gradient and AdamW's two moments (16 bytes;
  a fully fine-tuned fp32 weight is already counted, so 12 more);
- activations kept for the backward pass, per token and layer: the layer's inputs to its norms, the
  query/key/value and attention output, the MLP's gate, up, activation and product (5h + 3q + 3kv + 4i
  numbers); on the CPU, attention under a mask (Gemma's sliding window, padding) runs PyTorch's math
  path, which also keeps its scores and probabilities (2 x heads x length^2 numbers per layer and
  record), where a GPU's fused kernels keep none; with activation checkpointing, one number per hidden
  unit per layer plus one layer's worth again during recomputation;
- the output layer: fireflan's CPU loss computes logits only where the loss is (the records' share of
  assistant tokens), three copies of vocabulary-wide rows (logits, their softcapped/softmaxed form,
  the gradient); TRL's and Unsloth's GPU losses work in chunks, counted as one chunk of 4,096 rows;
- the runtime: on the CPU Python, torch, transformers, TRL and the tokenizer (0.9 GiB, measured: a
  process that has imported them and loaded a tokenizer); on a GPU the CUDA context and kernels (1.0 GiB).

The batch at the peak is `batch_size` records of the longest length the corpus holds (records are
grouped by length, so the longest come together), capped at `max_length`. Everything here is a pure
function of numbers; `describe` turns the result into the lines `--plan` prints.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from fireflan.train.bases import resolve_base, sixteen_bit_base

GIB = 1024 ** 3
TABLE = Path(__file__).with_name("architectures.json")
EMBEDDED_SHAPE = "google/gemma-3-270m"  # the embedded base is Gemma 3 270M (a Q4_K_M GGUF of it)
CPU_RUNTIME = 0.9 * GIB
GPU_RUNTIME = 1.0 * GIB
GPU_LOSS_CHUNK = 4096


@dataclass(frozen=True)
class Shape:
    vocab: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    tied: bool
    model_type: str = ""

    @classmethod
    def from_config(cls, config: dict) -> Shape:
        text = config.get("text_config") or config  # multimodal configs keep the language model's inside
        heads = text["num_attention_heads"]
        return cls(vocab=text["vocab_size"], hidden=text["hidden_size"], layers=text["num_hidden_layers"],
                   heads=heads, kv_heads=text.get("num_key_value_heads") or heads,
                   head_dim=text.get("head_dim") or text["hidden_size"] // heads,
                   intermediate=text["intermediate_size"],
                   tied=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", True))),
                   model_type=text.get("model_type") or config.get("model_type", ""))


def linear_shapes(shape: Shape) -> dict[str, tuple[int, int]]:
    """(in, out) of each projection of one decoder layer, by its usual module name."""
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    return {"q_proj": (shape.hidden, q), "k_proj": (shape.hidden, kv), "v_proj": (shape.hidden, kv),
            "o_proj": (q, shape.hidden), "gate_proj": (shape.hidden, shape.intermediate),
            "up_proj": (shape.hidden, shape.intermediate), "down_proj": (shape.intermediate, shape.hidden)}


def parameters(shape: Shape) -> dict[str, int]:
    """{'embeddings', 'layers', 'output', 'total'}, norms and biases counted as the model's family has them:
    Gemma 2/3 four norms a layer and (3) norms on queries and keys, Qwen2 biases on q/k/v, Qwen3 query/key
    norms, Llama-like two norms."""
    family = shape.model_type
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    norms = (4 if family.startswith("gemma") else 2) * shape.hidden
    if family.startswith(("gemma3", "qwen3")):
        norms += 2 * shape.head_dim
    biases = q + 2 * kv if family.startswith("qwen2") else 0
    per_layer = sum(i * o for i, o in linear_shapes(shape).values()) + norms + biases
    embeddings = shape.vocab * shape.hidden
    output = 0 if shape.tied else shape.vocab * shape.hidden
    layers = per_layer * shape.layers
    return {"embeddings": embeddings, "layers": layers, "output": output,
            "total": embeddings + layers + output + shape.hidden}


def lora_parameters(shape: Shape, rank: int, targets: list[str]) -> int:
    shapes = linear_shapes(shape)
    unknown = [t for t in targets if t not in shapes]
    if unknown:
        raise ValueError(f"--target-modules: {unknown} are not among {', '.join(shapes)}")
    return shape.layers * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)


def estimate(shape: Shape, *, backend: str, lora: bool, rank: int, targets: list[str], batch: int, length: int,
             loss_share: float, checkpointing: bool) -> dict:
    """Peak bytes of one training step, by term (see the module's docstring), with the counts behind them."""
    params = parameters(shape)
    trainable = lora_parameters(shape, rank, targets) if lora else params["total"]
    gpu = backend == "unsloth"
    element = 2 if gpu else 4  # bytes of an activation
    if not gpu:
        weights = 4 * params["total"]
    elif lora:  # NF4 with double-quantised block constants (~0.516 byte), embeddings and output in 16-bit
        weights = 0.516 * (params["layers"]) + 2 * (params["embeddings"] + params["output"])
    else:
        weights = 2 * params["total"]
    state = trainable * (12 if (not lora and not gpu) else 16)
    tokens = batch * length
    q, kv = shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim
    per_token_layer = 5 * shape.hidden + 3 * q + 3 * kv + 4 * shape.intermediate
    scores = 0 if gpu else element * 2 * shape.heads * length * length * batch  # one layer's, math attention
    if checkpointing:
        activations = element * tokens * (shape.hidden * shape.layers + per_token_layer) + scores
    else:
        activations = (element * tokens * per_token_layer + scores) * shape.layers
    rows = min(tokens * loss_share, GPU_LOSS_CHUNK) if gpu else tokens * loss_share
    logits = 3 * 4 * rows * shape.vocab
    runtime = GPU_RUNTIME if gpu else CPU_RUNTIME
    terms = {"weights": weights, "trainable state": state, "activations": activations, "logits": logits,
             "runtime": runtime}
    return {"parameters": params["total"], "trainable": trainable, "tokens_per_step": tokens,
            "terms": {k: int(v) for k, v in terms.items()}, "peak": int(sum(terms.values()))}


def read_shape(base: str) -> tuple[Shape, str]:
    """(the base's shape, where it came from), loading no weights: a folder's config.json, fireflan's table,
    or the hub's config.json (a few kilobytes, with a network)."""
    if base == "embedded":
        base = EMBEDDED_SHAPE
    elif base == "tiny":
        base = resolve_base("tiny")
    config = Path(base) / "config.json"
    if config.is_file():
        return Shape.from_config(json.loads(config.read_text())), str(config)
    table = json.loads(TABLE.read_text())
    name = base if base in table else sixteen_bit_base(base)  # a 4-bit upload has its original's shape
    if name in table:
        return Shape.from_config(table[name]), f"fireflan's table ({TABLE.name})"
    try:
        from transformers import AutoConfig

        return Shape.from_config(AutoConfig.from_pretrained(base).to_dict()), f"the hub's config.json for {base}"
    except Exception as e:  # offline, or not a model id
        raise ValueError(f"--base {base}: no config.json to plan from (not a folder, not in {TABLE.name}, and the "
                         f"hub said: {str(e).splitlines()[0][:160]})") from None


def corpus_lengths(path: Path, max_length: int) -> tuple[int, float, str]:
    """(the longest record's tokens among those the trainer keeps (max_length at most); the share of tokens
    that carry loss; how it was counted) from a corpus JSONL, at four characters a token; no corpus:
    max_length and one half."""
    if not path.is_file():
        return max_length, 0.5, f"no corpus at {path}: records of max_length, half of it trained"
    longest, trained, total = 0, 0, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        messages = json.loads(line).get("messages", [])
        chars = [len(str(m.get("content") or "")) + 16 for m in messages]  # + the turn's markers
        if -(-sum(chars) // 4) > max_length:  # left out by the trainer
            continue
        longest = max(longest, sum(chars))
        total += sum(chars)
        trained += sum(c for c, m in zip(chars, messages, strict=True) if m.get("loss", m.get("role") == "assistant"))
    return min(max_length, -(-longest // 4)), trained / max(total, 1), f"{path} (characters / 4)"


def device_memory(memory_gb: float, backend: str) -> tuple[int, str]:
    """(bytes, what they are) to check the plan against: the given GiB, this GPU's, or this machine's RAM."""
    if memory_gb:
        return int(memory_gb * GIB), f"{memory_gb:g} GiB (--memory-gb)"
    if backend == "unsloth":
        import torch

        if torch.cuda.is_available():
            free, total = torch.cuda.mem_get_info()
            return total, f"{torch.cuda.get_device_name()} ({total / GIB:.1f} GiB)"
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").is_file() else ""
    found = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
    total = int(found.group(1)) * 1024 if found else 0
    return total, f"this machine's memory ({total / GIB:.1f} GiB)"


def describe(base: str, source: str, backend: str, plan: dict, memory: int, memory_text: str,
             lengths_text: str) -> list[str]:
    """The lines `--plan` prints."""
    fits = plan["peak"] <= memory
    lines = [f"plan: {base} ({source}), backend {backend}",
             f"  parameters {plan['parameters'] / 1e6:,.1f} M, trainable {plan['trainable'] / 1e6:,.2f} M "
             f"({100 * plan['trainable'] / plan['parameters']:.2f}%)",
             f"  a step: {plan['tokens_per_step']:,} tokens at the peak ({lengths_text})",
             "  estimated peak memory:"]
    lines += [f"    {name:<16} {value / GIB:7.2f} GiB" for name, value in plan["terms"].items()]
    lines += [f"    {'total':<16} {plan['peak'] / GIB:7.2f} GiB",
              f"  {'fits' if fits else 'does NOT fit'} in {memory_text}" + ("" if fits else
                                                                          ": lower --batch-size or --max-length, "
                                                                          "or turn --gradient-checkpointing on")]
    return lines
