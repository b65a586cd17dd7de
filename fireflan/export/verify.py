"""The verification step of export: every GGUF read back and run under llama.cpp against the merged model in
transformers. It must carry the plain chat template (no {% generation %} marks) and mark the token that
closes an assistant turn (read from the template: `turn_tokens`) as an end-of-generation token; llama.cpp
must load it, render and tokenize the chat prompts exactly as transformers does, and its greedy tokens
are compared with transformers' on `verify_prompts` prompts (agreement per quant).

    turns = folder_turns(merged)
    prompts, changed = reference(merged, turns, 4, VERIFY_TOKENS, base)
    result = verify_gguf(gguf, template, turns, hf_config, prompts, VERIFY_TOKENS)   # {"problems": [...], ...}
"""

from __future__ import annotations

import time
from pathlib import Path

from fireflan.corpus.format import SYSTEM_TOOLS
from fireflan.export.convert import llama_swa_layers, read_gguf, swa_layers
from fireflan.models.llama import open_llama
from fireflan.train.chat_template import Turns
from fireflan.worlds.wiki import WorldConfig, generate_world

VERIFY_TOKENS = 16  # new tokens compared per prompt


def metadata_problems(meta: dict, template: str, end: str, config: dict | None = None) -> list[str]:
    """What makes a model GGUF unfit for the agent: no usable template, no stop at END (the token that closes an
    assistant turn), or (given the HF config) layers that llama.cpp would run with another attention than
    transformers."""
    problems = []
    if meta["chat_template"] is None:
        problems.append("no tokenizer.chat_template (llama-cpp-python would fall back to llama-2's format)")
    elif "{% generation" in meta["chat_template"]:
        problems.append("tokenizer.chat_template carries {% generation %} marks")
    elif meta["chat_template"] != template:
        problems.append("tokenizer.chat_template differs from the merged folder's plain template")
    if meta["end_of_turn_id"] is None:
        problems.append(f"{end} is not a token")
    elif meta["end_of_turn_id"] not in (meta["eot_token_id"], meta["eos_token_id"]):
        problems.append(f"{end} (id {meta['end_of_turn_id']}) is neither the eot nor the eos token")
    if meta["eos_token_id"] is None:
        problems.append("no tokenizer.ggml.eos_token_id")
    want, have = swa_layers(config or {}), llama_swa_layers(meta)
    if want is not None and have is not None and want != have:
        problems.append(f"llama.cpp runs sliding-window attention on layers {have}, transformers on {want}")
    return problems


def verify_messages(n: int) -> list[list[dict]]:
    """n chat prompts like the agent's, in turn: a world question alone, with the tool instructions as system
    turn, and one step into an episode (an assistant action and its observation)."""
    splits, _ = generate_world(WorldConfig(seed=0, train=1, dev=1, test=max(n, 50)))  # the same first ones for any n
    out = []
    for i, rec in enumerate(splits["test"][:n]):
        q = rec["question"]
        if i % 3 == 0:
            out.append([{"role": "user", "content": q}])
        elif i % 3 == 1:
            out.append([{"role": "system", "content": SYSTEM_TOOLS}, {"role": "user", "content": q}])
        else:
            title = (rec.get("supporting_facts") or [[q]])[0][0]
            out.append([{"role": "system", "content": SYSTEM_TOOLS}, {"role": "user", "content": q},
                        {"role": "assistant", "content": f"I need to look up {title}.\nAction: search[{title}]"},
                        {"role": "user", "content": f"Observation: {title} is a page of the world."}])
    return out


def hf_greedy(folder, prompts: list[list[int]], n_new: int, stop_ids: list[int]) -> list[list[int]]:
    """transformers' greedy continuation (do_sample=False) of each prompt, stopping after a stop token."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    out = []
    with torch.no_grad():
        for ids in prompts:
            x = torch.tensor([ids])
            y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n_new, do_sample=False,
                               eos_token_id=stop_ids, pad_token_id=stop_ids[0], top_p=None, top_k=None)
            out.append(y[0, len(ids):].tolist())
    return out


def load_llama(path: Path, n_ctx: int, threads: int | None = None, lora: Path | None = None):
    return open_llama(path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads, seed=0, verbose=False,
                      lora_path=str(lora) if lora else None)


def llama_greedy(llm, ids: list[int], n_new: int, follow: list[int] | None = None) -> list[int]:
    """llama.cpp's argmax token after the prompt, n_new times, stopping after an end-of-generation token.
    With `follow`, the given tokens are fed instead of its own (teacher forcing): its prediction at each."""
    import llama_cpp
    import numpy as np

    vocab, n_vocab = llama_cpp.llama_model_get_vocab(llm.model), llm.n_vocab()
    llm.reset()
    llm.eval(ids)
    out = []
    for i in range(len(follow) if follow is not None else n_new):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(n_vocab,))
        tok = int(logits.argmax())
        out.append(tok)
        nxt = follow[i] if follow is not None else tok
        if follow is None and llama_cpp.llama_vocab_is_eog(vocab, tok):
            break
        llm.eval([nxt])
    return out


def agreement(reference: list[list[int]], runs: list[list[int]], forced: list[list[int]] | None = None) -> dict:
    """Per-prompt identity of greedy outputs, and the share of reference tokens predicted given the same prefix.

    agreement([[1, 2], [3]], [[1, 2], [4]]) -> {'prompts_identical': 0.5, 'tokens_matching': ...}
    `forced` holds teacher-forced predictions (see llama_greedy); without it a run counts its common prefix.
    """
    same = [a == b for a, b in zip(reference, runs, strict=True)]
    total = sum(len(r) for r in reference)
    if forced is None:
        hits = sum(_prefix(a, b) for a, b in zip(reference, runs, strict=True))
    else:
        hits = sum(p == r for ref, pred in zip(reference, forced, strict=True) for p, r in zip(pred, ref, strict=False))
    return {"prompts": len(reference), "prompts_identical": round(sum(same) / max(len(same), 1), 4),
            "tokens_matching": round(hits / max(total, 1), 4),
            "divergent_prompts": [i for i, s in enumerate(same) if not s]}


def _prefix(a: list, b: list) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def verify_gguf(path: Path, template: str, turns: Turns, config: dict, prompts: list[dict], n_new: int,
                threads: int | None = None) -> dict:
    """Metadata, llama.cpp load, end-of-generation ids, template rendering, tokenization and greedy agreement
    of one model GGUF against the reference prompts ({"messages", "text", "ids", "hf"})."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    t0 = time.time()
    meta = read_gguf(path, turns)
    problems = metadata_problems(meta, template, turns.end, config)
    n_ctx = max([len(p["ids"]) for p in prompts] + [0]) + n_new + 16
    llm = load_llama(path, max(n_ctx, 256), threads)
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        eog = {tok: bool(llama_cpp.llama_vocab_is_eog(vocab, meta[key]))
               for tok, key in ((turns.end, "end_of_turn_id"), (turns.eos, "eos_id")) if meta[key] is not None}
        problems += [f"llama.cpp does not stop on {tok}" for tok, ok in eog.items() if not ok]
        rendered = tokenized = 0
        runs, forced = [], []
        fmt = Jinja2ChatFormatter(meta["chat_template"], eos_token=turns.eos or "", bos_token=turns.bos or "") \
            if meta["chat_template"] else None
        for p in prompts:
            if fmt:  # the template as llama-cpp-python's chat completion renders it
                rendered += fmt(messages=p["messages"]).prompt == p["text"]
            tokenized += llm.tokenize(p["text"].encode(), add_bos=False, special=True) == p["ids"]
            run = llama_greedy(llm, p["ids"], n_new)
            runs.append(run)
            forced.append(run if run == p["hf"] else llama_greedy(llm, p["ids"], n_new, follow=p["hf"]))
    finally:
        llm.close()
    if prompts and rendered < len(prompts):
        problems.append(f"llama-cpp-python renders the template differently on {len(prompts) - rendered} prompts")
    if prompts and tokenized < len(prompts):
        problems.append(f"llama.cpp tokenizes {len(prompts) - tokenized} chat prompts differently from transformers")
    result = {"problems": problems, "eog": eog, "eot_token_id": meta["eot_token_id"],
              "eos_token_id": meta["eos_token_id"], "template_renders": rendered, "tokenizer_match": tokenized}
    if prompts:
        result.update(agreement([p["hf"] for p in prompts], runs, forced))
        result["outputs"] = runs
    result["seconds"] = round(time.time() - t0, 2)
    return result


def reference(merged: Path, turns: Turns, n: int, n_new: int, base: str | None) -> tuple[list[dict], dict]:
    """The verification prompts rendered and tokenized by transformers, with the merged model's greedy tokens;
    and how many of them the base model continues differently (did the fine-tune change anything?)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in dict.fromkeys((turns.eos, turns.end)) if t]
    prompts = []
    for messages in verify_messages(n):
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompts.append({"messages": messages, "text": text,
                        "ids": tokenizer(text, add_special_tokens=False)["input_ids"]})
    if not prompts:
        return prompts, {}
    for p, out in zip(prompts, hf_greedy(merged, [p["ids"] for p in prompts], n_new, stop_ids), strict=True):
        p["hf"] = out
        p["hf_text"] = tokenizer.decode(out)
    changed = {}
    if base:
        try:
            base_out = hf_greedy(base, [p["ids"] for p in prompts], n_new, stop_ids)
            diff = sum(b != p["hf"] for b, p in zip(base_out, prompts, strict=True))
            changed = {"prompts_changed_vs_base": round(diff / len(prompts), 4)}
        except (OSError, ValueError) as e:  # a hub base that is not reachable
            changed = {"prompts_changed_vs_base": None, "why": str(e)[:200]}
    return prompts, changed


def verify_lora(out: Path, prompts: list[dict], verify: dict, n_new: int, threads: int | None) -> dict:
    """base-f16.gguf + adapter-f16.gguf under llama.cpp against the merged model (its GGUF and transformers)."""
    t0 = time.time()
    result = {"adapter": read_gguf(out / "adapter-f16.gguf"), "problems": []}
    result["adapter"].pop("chat_template", None)
    n_ctx = max(max([len(p["ids"]) for p in prompts] + [0]) + n_new + 16, 256)
    try:
        llm = load_llama(out / "base-f16.gguf", n_ctx, threads, lora=out / "adapter-f16.gguf")
    except (RuntimeError, ValueError) as e:
        result["problems"].append(f"llama-cpp-python could not apply the adapter: {e}")
        return result
    try:
        runs = [llama_greedy(llm, p["ids"], n_new) for p in prompts]
    finally:
        llm.close()
    base = load_llama(out / "base-f16.gguf", n_ctx, threads)
    try:
        base_runs = [llama_greedy(base, p["ids"], n_new) for p in prompts]
    finally:
        base.close()
    merged_name = next((n for n in ("model-f16.gguf", "model-q8_0.gguf", "model-q4_k_m.gguf") if n in verify), None)
    if prompts:
        result["vs_hf"] = agreement([p["hf"] for p in prompts], runs)
        if merged_name:
            result["vs_" + merged_name] = agreement(verify[merged_name]["outputs"], runs)
        result["base_alone_differs"] = round(sum(a != b for a, b in zip(runs, base_runs, strict=True))
                                             / len(prompts), 4)
    result["seconds"] = round(time.time() - t0, 2)
    return result
