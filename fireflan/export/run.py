"""Export: merge the fine-tuned model, convert it to GGUF with llama.cpp's own converter, verify, write a Modelfile.

    python -m fireflan export --model runs/world/model --quant q8_0,q4_k_m
    summary = export(ExportConfig(model="runs/world/model", quant="f16,q8_0,q4_k_m", lora_gguf=True))

Input: the trainer's folder, MODEL/train.json ({"base": folder or hub id, "lora": true|false}) with MODEL/adapter/
(a PEFT LoRA adapter and the tokenizer) or MODEL/full/ (fully fine-tuned weights). Output, beside it:

    MODEL/merged/                  base + adapter merged (fp32 safetensors), tokenizer, tokenizer.model, plain template
    MODEL/gguf/model-<quant>.gguf  f16 and q8_0 written by llama.cpp's converter, q4_k_m quantized from the f16 file
    MODEL/gguf/adapter-f16.gguf    (lora_gguf) the adapter as a GGUF LoRA, with base-f16.gguf, the base it applies to
    MODEL/gguf/Modelfile           `cd MODEL/gguf && ollama create NAME -f Modelfile`
    MODEL/export.json              files, sizes, seconds per step, the verification

Before it reports success every GGUF is read back: it must carry the plain chat template (no {% generation %}
marks) and mark <end_of_turn> as an end-of-generation token (tokenizer.ggml.eot_token_id; <eos> stays the eos
token); llama.cpp must load it, tokenize the chat-formatted prompts exactly as transformers does, and its greedy
tokens are compared with the merged transformers model's on `verify_prompts` prompts (agreement per quant).
For a full fine-tune MODEL/full/ is the merged model (tokenizer.model and the plain template are written into it).

Re-running skips what is done: the merge (a marker file in merged/ names the source it was made from), every GGUF
that exists (each is written to a .partial name and renamed when complete), and the verification of unchanged
files. When the adapter or train.json change, the merged model and the GGUFs are made again.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import re
import shutil
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from fireflan.corpus.format import SYSTEM_TOOLS
from fireflan.export.convert import converter_dir, installed_version, run_script
from fireflan.models.llama import open_llama
from fireflan.options import opt
from fireflan.train.bases import CHAT_TEMPLATE, END, resolve_base
from fireflan.train.chat_template import plain_template
from fireflan.worlds.wiki import WorldConfig, generate_world

SCHEMA = "fireflan.export/1"
QUANTS = ("f16", "q8_0", "q4_k_m")
BY_CONVERTER = ("f16", "q8_0")  # written by convert_hf_to_gguf.py straight from the merged weights
EOS = "<eos>"
MERGE_MARKER = "fireflan-merge.json"
VERIFY_TOKENS = 16  # new tokens compared per prompt
# Ollama stops on these. <end_of_turn> ends every assistant turn; "Observation:" is the agent's own stop string
# (fireflan.agent.loop.STOP): a model that writes an observation itself is cut there, as the agent would cut it.
STOPS = (END, "Observation:")

# The chat template in Ollama's Go-template syntax: the same text as CHAT_TEMPLATE renders with
# add_generation_prompt (a system turn goes before the next user turn, followed by a blank line; BOS comes from
# the GGUF's add_bos_token). As in Ollama's own templates, a trailing assistant message is left open (prefill).
OLLAMA_TEMPLATE = """\
{{- $system := "" }}{{ $hasSystem := false }}
{{- range $i, $m := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- $open := and $last (eq $m.Role "assistant") }}
{{- if eq $m.Role "system" }}{{ $hasSystem = true }}{{ $system = $m.Content }}
{{- else if eq $m.Role "user" }}<start_of_turn>user
{{ if $hasSystem }}{{ $system }}

{{ end }}{{ $m.Content }}<end_of_turn>
{{ $hasSystem = false }}
{{- else }}<start_of_turn>model
{{ $m.Content }}{{ if not $open }}<end_of_turn>
{{ end }}
{{- end }}
{{- if and $last (not $open) }}<start_of_turn>model
{{ end }}
{{- end }}"""


class ExportError(RuntimeError):
    """The export cannot go on, or a written file failed its checks (the message says which and why)."""


@dataclass
class ExportConfig:
    """Options of `fireflan export`."""

    model: str = opt("runs/model", "the trainer's folder: train.json with adapter/ (LoRA) or full/")
    quant: str = opt("q8_0", "comma-separated GGUF types to write: f16, q8_0, q4_k_m (the first is the Modelfile's)")
    lora_gguf: bool = opt(False, "also write the adapter as a GGUF LoRA (adapter-f16.gguf, base-f16.gguf) and check it")
    verify_prompts: int = opt(4, "chat prompts on which llama.cpp's greedy tokens must match transformers' (0: none)")
    threads: int | None = opt(None, "CPU threads for torch and llama.cpp (None: their defaults)")

    def quant_list(self) -> list[str]:
        quants = [q.strip().lower() for q in str(self.quant).split(",") if q.strip()]
        bad = [q for q in quants if q not in QUANTS]
        if bad or not quants:
            raise ValueError(f"--quant must name some of {', '.join(QUANTS)}; got {self.quant!r}")
        return list(dict.fromkeys(quants))


# --------------------------------------------------------------------------- the input


def read_train(model: Path) -> dict:
    """train.json with `lora` and `base` checked against the folders present."""
    path = model / "train.json"
    if not path.is_file():
        raise ExportError(f"{path}: no such file; --model must be the trainer's output folder "
                          "(train.json with adapter/ or full/)")
    info = json.loads(path.read_text())
    info.setdefault("lora", (model / "adapter").is_dir())
    weights = model / ("adapter" if info["lora"] else "full")
    if not weights.is_dir():
        raise ExportError(f"{weights}: no such folder (train.json says lora={str(info['lora']).lower()})")
    if info["lora"] and not info.get("base"):
        raise ExportError(f"{path}: no 'base' (the folder or hub id the adapter was trained on)")
    if info.get("base") in ("tiny", "embedded"):  # fireflan's names for its own bases
        info["base"] = resolve_base(info["base"])
    return info


def source_stamp(model: Path, train: dict) -> str:
    """A short hash of train.json and the sizes and times of the trained weights: it changes when they do."""
    weights = model / ("adapter" if train["lora"] else "full")
    parts = [json.dumps(train, sort_keys=True)]
    for f in sorted(weights.iterdir()):
        if f.suffix in (".safetensors", ".bin") or f.name in ("adapter_config.json", "config.json"):
            st = f.stat()
            parts.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def find_sentencepiece(base: str, *folders: Path) -> Path | None:
    """tokenizer.model from the given folders, the base folder, or (a hub id) the hub cache."""
    for folder in (*folders, Path(base)):
        if (Path(folder) / "tokenizer.model").is_file():
            return Path(folder) / "tokenizer.model"
    if not Path(base).exists():
        try:
            from huggingface_hub import hf_hub_download

            return Path(hf_hub_download(base, "tokenizer.model"))
        except Exception:  # not on the hub, or no network: the tokenizer check of the verification will tell
            return None
    return None


def write_plain_template(folder: Path) -> str:
    """Make the folder's chat template the plain one (llama.cpp reads tokenizer_config.json's, else
    chat_template.jinja); returns it. A folder without a template gets fireflan's."""
    config_path, jinja = folder / "tokenizer_config.json", folder / "chat_template.jinja"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    template = config.get("chat_template")
    if not isinstance(template, str):
        template = jinja.read_text() if jinja.is_file() else CHAT_TEMPLATE
    plain = plain_template(template)
    if isinstance(config.get("chat_template"), str) and config["chat_template"] != plain:
        config["chat_template"] = plain
        config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    if not jinja.is_file() or jinja.read_text() != plain:
        jinja.write_text(plain)
    return plain


def prepare_folder(folder: Path, base: str, *sources: Path) -> list[str]:
    """Ready a HF folder for the converter: tokenizer.model copied in, plain template. Returns warnings."""
    warnings = []
    if not (folder / "tokenizer.model").is_file():
        spm = find_sentencepiece(base, *sources)
        if spm:
            shutil.copyfile(spm, folder / "tokenizer.model")
        else:
            warnings.append(f"no tokenizer.model for {folder} (base {base}): the converter falls back to "
                            "tokenizer.json, which may give a wrong tokenizer")
    write_added_tokens(folder)
    write_plain_template(folder)
    return warnings


def write_added_tokens(folder: Path) -> bool:
    """Copy tokenizer.json's added tokens into tokenizer_config.json's `added_tokens_decoder` when it has none.

    transformers 5 no longer writes that field, and it is where llama.cpp's converter learns that
    <start_of_turn> / <end_of_turn> are single special tokens of a SentencePiece vocabulary: without it they
    become normal pieces that llama.cpp spells out letter by letter ('<', 'st', 'ar', ...).
    """
    config_path, tok_path = folder / "tokenizer_config.json", folder / "tokenizer.json"
    if not tok_path.is_file():
        return False
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    if config.get("added_tokens_decoder"):
        return False
    added = json.loads(tok_path.read_text()).get("added_tokens") or []
    if not added:
        return False
    keys = ("content", "lstrip", "normalized", "rstrip", "single_word", "special")
    config["added_tokens_decoder"] = {str(t["id"]): {k: t[k] for k in keys if k in t} for t in added}
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return True


# --------------------------------------------------------------------------- step 1: merge


def merge(model: Path, train: dict, stamp: str) -> tuple[Path, bool, list[str]]:
    """The merged HF folder, made if needed: (folder, whether work was done, warnings)."""
    if not train["lora"]:
        folder = model / "full"
        before = _folder_state(folder)
        warnings = prepare_folder(folder, train.get("base") or str(folder), folder)
        return folder, _folder_state(folder) != before, warnings
    out, adapter = model / "merged", model / "adapter"
    marker = out / MERGE_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("source") == stamp:
        return out, False, []
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = model / "merged.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    base = AutoModelForCausalLM.from_pretrained(train["base"], dtype=torch.float32)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.save_pretrained(tmp)
    tokenizer_from = adapter if (adapter / "tokenizer_config.json").is_file() else train["base"]
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(tmp)
    warnings = prepare_folder(tmp, train["base"], adapter)
    marker_text = json.dumps({"source": stamp, "base": train["base"], "adapter": str(adapter)}, indent=1)
    (tmp / MERGE_MARKER).write_text(marker_text + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out, True, warnings


def _folder_state(folder: Path) -> list:
    return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir() if f.is_file())


def stage_base(base: str, out: Path) -> Path:
    """A converter input for the base model without touching its folder: links to its files, plain template."""
    src = Path(base)
    if not src.is_dir():
        from huggingface_hub import snapshot_download

        src = Path(snapshot_download(base))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for f in src.iterdir():
        if f.name in ("tokenizer_config.json", "chat_template.jinja"):
            shutil.copyfile(f, out / f.name)
        elif f.is_file():
            (out / f.name).symlink_to(f.resolve())
    prepare_folder(out, base)
    return out


# --------------------------------------------------------------------------- steps 2-3: convert, quantize


def convert_hf(tools: Path, src: Path, out: Path, outtype: str) -> None:
    """llama.cpp's convert_hf_to_gguf.py: src (HF folder) -> out, then the metadata it leaves out (metadata_fixes)."""
    partial, edited = out.with_name(out.name + ".partial"), out.with_name(out.name + ".edit.partial")
    try:
        run_script(tools, "convert_hf_to_gguf.py", [src, "--outfile", partial, "--outtype", outtype],
                   label=f"llama.cpp's convert_hf_to_gguf.py ({src} -> {out.name})")
        changes = metadata_fixes(read_gguf(partial), json.loads((src / "config.json").read_text()))
        if changes:
            run_code(tools, EDIT_METADATA, [partial, edited, json.dumps(changes)], f"editing {out.name}'s metadata")
            partial.unlink()
            partial = edited
        partial.rename(out)
    finally:
        partial.unlink(missing_ok=True)
        edited.unlink(missing_ok=True)


def convert_lora(tools: Path, adapter: Path, base: Path, out: Path) -> None:
    """llama.cpp's convert_lora_to_gguf.py: a PEFT adapter -> a GGUF LoRA (f16) for that base."""
    partial = out.with_name(out.name + ".partial")
    try:
        args = [adapter, "--base", base, "--outfile", partial, "--outtype", "f16"]
        run_script(tools, "convert_lora_to_gguf.py", args,
                   label=f"llama.cpp's convert_lora_to_gguf.py ({adapter} -> {out.name})")
        partial.rename(out)
    finally:
        partial.unlink(missing_ok=True)


def swa_layers(config: dict) -> list[bool] | None:
    """Which layers use sliding-window attention, from a HF config's layer_types (None: not said)."""
    types = config.get("layer_types") or (config.get("text_config") or {}).get("layer_types")
    return [t == "sliding_attention" for t in types] if types else None


def llama_swa_layers(meta: dict) -> list[bool] | None:
    """Which layers llama.cpp runs with sliding-window attention for a gemma3 GGUF: the per-layer array of
    `gemma3.attention.sliding_window_pattern` if present, else every layer but each 6th (its default)."""
    if meta["architecture"] != "gemma3" or meta["block_count"] is None or not meta["sliding_window"]:
        return None
    pattern = meta["swa_pattern"]
    if isinstance(pattern, list):
        return [bool(x) for x in pattern]
    period = pattern if isinstance(pattern, int) else 6
    return [period == 0 or i % period < period - 1 for i in range(meta["block_count"])]


def metadata_fixes(meta: dict, config: dict) -> dict:
    """The keys a converted GGUF lacks (key -> value), from what llama.cpp's converter leaves out:

    - tokenizer.ggml.eot_token_id = <end_of_turn>: the converter sets only bos/eos/unk/pad from the tokenizer
      files; llama.cpp would still guess <end_of_turn> from its text, other runtimes need it said.
    - gemma3.attention.sliding_window_pattern (a bool per layer), when the HF config's layer_types differ from
      llama.cpp's gemma3 default (each 6th layer global): the converter does not write it, and a model with
      another layout (such as fireflan's 2-layer tiny model) would run its global layers as sliding ones.
    """
    changes = {}
    if meta["end_of_turn_id"] is not None and meta["eot_token_id"] != meta["end_of_turn_id"]:
        changes["tokenizer.ggml.eot_token_id"] = meta["end_of_turn_id"]
    want, have = swa_layers(config), llama_swa_layers(meta)
    if want is not None and have is not None and want != have and len(want) == len(have):
        changes[f"{meta['architecture']}.attention.sliding_window_pattern"] = want
    return changes


# Run with llama.cpp's bundled gguf-py: copy a GGUF, adding or replacing metadata keys (ints as UINT32, lists of
# bools as arrays), with the copy routine of its own gguf_new_metadata.py tool.
EDIT_METADATA = """
import json, sys
import gguf
from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata

src, dst, changes = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
reader = gguf.GGUFReader(src, "r")
arch = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
writer = gguf.GGUFWriter(dst, arch=arch, endianess=reader.endianess)
alignment = reader.get_field(gguf.Keys.General.ALIGNMENT)
if alignment is not None:
    writer.data_alignment = alignment.contents()
new = {}
for key, value in changes.items():
    if isinstance(value, list):
        new[key] = MetadataDetails(gguf.GGUFValueType.ARRAY, value, sub_type=gguf.GGUFValueType.BOOL)
    else:
        new[key] = MetadataDetails(gguf.GGUFValueType.UINT32, int(value))
copy_with_new_metadata(reader, writer, new, [])
"""


def run_code(tools: Path, code: str, args: list, label: str) -> None:
    run_script(tools, "-c", [code, *args], label=label)


FTYPES = {"f16": "LLAMA_FTYPE_MOSTLY_F16", "q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0", "q4_k_m": "LLAMA_FTYPE_MOSTLY_Q4_K_M"}


def quantize(src: Path, out: Path, quant: str, threads: int | None = None) -> list[str]:
    """llama.cpp's quantize through the binding (llama_model_quantize); returns its fallback messages
    (tensors whose rows do not split into k-quant blocks get another type)."""
    import contextlib
    import io
    import logging

    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, FTYPES[quant])
    params.nthread = threads or 0
    partial = out.with_name(out.name + ".partial")
    log, logger = io.StringIO(), logging.getLogger("llama-cpp-python")
    level = logger.level
    logger.setLevel(logging.DEBUG)  # llama-cpp-python prints llama.cpp's log to sys.stderr from this level
    try:
        with contextlib.redirect_stderr(log):
            rc = llama_cpp.llama_model_quantize(str(src).encode(), str(partial).encode(), ctypes.byref(params))
    finally:
        logger.setLevel(level)
    if rc != 0:
        partial.unlink(missing_ok=True)
        raise ExportError(f"llama_model_quantize({src.name} -> {quant}) returned {rc}:\n{log.getvalue()[-2000:]}")
    partial.rename(out)
    return [line.strip() for line in log.getvalue().splitlines() if "fallback" in line]


# --------------------------------------------------------------------------- step 4: verify


def read_gguf(path: Path) -> dict:
    """The metadata export checks, read with gguf's reader."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def get(key):
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    tokens = get("tokenizer.ggml.tokens") or []
    index = {t: i for i, t in enumerate(tokens) if t in (END, EOS)}
    arch = get("general.architecture")
    return {"architecture": arch, "type": get("general.type"), "block_count": get(f"{arch}.block_count"),
            "sliding_window": get(f"{arch}.attention.sliding_window"),
            "swa_pattern": get(f"{arch}.attention.sliding_window_pattern"),
            "file_type": get("general.file_type"), "chat_template": get("tokenizer.chat_template"),
            "eos_token_id": get("tokenizer.ggml.eos_token_id"), "eot_token_id": get("tokenizer.ggml.eot_token_id"),
            "end_of_turn_id": index.get(END), "eos_id": index.get(EOS), "n_tokens": len(tokens),
            "tensors": len(reader.tensors),
            "tensor_types": dict(Counter(t.tensor_type.name for t in reader.tensors).most_common())}


def metadata_problems(meta: dict, template: str, config: dict | None = None) -> list[str]:
    """What makes a model GGUF unfit for the agent: no usable template, no stop at <end_of_turn>, or (given
    the HF config) layers that llama.cpp would run with another attention than transformers."""
    problems = []
    if meta["chat_template"] is None:
        problems.append("no tokenizer.chat_template (llama-cpp-python would fall back to llama-2's format)")
    elif "{% generation" in meta["chat_template"]:
        problems.append("tokenizer.chat_template carries {% generation %} marks")
    elif meta["chat_template"] != template:
        problems.append("tokenizer.chat_template differs from the merged folder's plain template")
    if meta["end_of_turn_id"] is None:
        problems.append(f"{END} is not a token")
    elif meta["end_of_turn_id"] not in (meta["eot_token_id"], meta["eos_token_id"]):
        problems.append(f"{END} (id {meta['end_of_turn_id']}) is neither the eot nor the eos token")
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


def verify_gguf(path: Path, template: str, config: dict, prompts: list[dict], n_new: int,
                threads: int | None = None) -> dict:
    """Metadata, llama.cpp load, end-of-generation ids, template rendering, tokenization and greedy agreement
    of one model GGUF against the reference prompts ({"messages", "text", "ids", "hf"})."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    t0 = time.time()
    meta = read_gguf(path)
    problems = metadata_problems(meta, template, config)
    n_ctx = max([len(p["ids"]) for p in prompts] + [0]) + n_new + 16
    llm = load_llama(path, max(n_ctx, 256), threads)
    try:
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        eog = {tok: bool(llama_cpp.llama_vocab_is_eog(vocab, meta[key]))
               for tok, key in ((END, "end_of_turn_id"), (EOS, "eos_id")) if meta[key] is not None}
        problems += [f"llama.cpp does not stop on {tok}" for tok, ok in eog.items() if not ok]
        rendered = tokenized = 0
        runs, forced = [], []
        fmt = Jinja2ChatFormatter(meta["chat_template"], eos_token=EOS, bos_token="<bos>") \
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


def reference(merged: Path, n: int, n_new: int, base: str | None) -> tuple[list[dict], dict]:
    """The verification prompts rendered and tokenized by transformers, with the merged model's greedy tokens;
    and how many of them the base model continues differently (did the fine-tune change anything?)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    stop_ids = [tokenizer.convert_tokens_to_ids(t) for t in (EOS, END)]
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


# --------------------------------------------------------------------------- step 5: Modelfile


def modelfile(gguf_name: str, temperature: float = 0.0) -> str:
    """An Ollama Modelfile for a GGUF beside it, with fireflan's chat template in Go-template syntax."""
    if '"""' in OLLAMA_TEMPLATE:
        raise ValueError('the template may not contain """')
    lines = ["# fireflan export: in this folder, `ollama create NAME -f Modelfile`",
             f"FROM ./{gguf_name}", f'TEMPLATE """{OLLAMA_TEMPLATE}"""']
    lines += [f'PARAMETER stop "{s}"' for s in STOPS]
    lines.append(f"PARAMETER temperature {temperature:g}")
    return "\n".join(lines) + "\n"


MODELFILE_COMMANDS = ("FROM", "ADAPTER", "TEMPLATE", "SYSTEM", "PARAMETER", "MESSAGE", "LICENSE", "REQUIRES")


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(COMMAND, value) pairs of an Ollama Modelfile; raises ValueError on what Ollama would reject.

    'FROM ./m.gguf\\nPARAMETER stop "<end_of_turn>"' -> [('FROM', './m.gguf'), ('PARAMETER', 'stop <end_of_turn>')]
    Values in triple quotes may span lines; a quoted value loses its quotes.
    """
    out, pos = [], 0
    line_re = re.compile(r"[ \t]*(?:#[^\n]*)?(?:\n|$)")
    command_re = re.compile(r"([A-Za-z]+)[ \t]+")
    while pos < len(text):
        blank = line_re.match(text, pos)
        if blank and blank.end() > pos:
            pos = blank.end()
            continue
        m = command_re.match(text, pos)
        if not m or m.group(1).upper() not in MODELFILE_COMMANDS:
            raise ValueError(f"line {text.count(chr(10), 0, pos) + 1}: unknown command {text[pos:].split()[0]!r}")
        command, pos = m.group(1).upper(), m.end()
        if command == "PARAMETER":
            name = re.match(r"(\w+)[ \t]+", text[pos:])
            if not name:
                raise ValueError(f"line {text.count(chr(10), 0, pos) + 1}: PARAMETER needs a name and a value")
            pos += name.end()
        if text.startswith('"""', pos):
            end = text.find('"""', pos + 3)
            if end < 0:
                raise ValueError(f'{command}: unterminated """')
            value, pos = text[pos + 3:end], end + 3
            rest = line_re.match(text, pos)
            if not rest:
                raise ValueError(f'{command}: text after the closing """')
            pos = rest.end()
        else:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            value, pos = text[pos:end].strip(), end + 1
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
        if not value:
            raise ValueError(f"{command} without a value")
        out.append((command, f"{name.group(1)} {value}" if command == "PARAMETER" else value))
    if not any(c == "FROM" for c, _ in out):
        raise ValueError("a Modelfile needs a FROM line")
    return out


# --------------------------------------------------------------------------- the stage


def export(config: ExportConfig) -> dict:
    """Merge, convert, quantize, verify, write the Modelfile; returns (and writes) MODEL/export.json."""
    model = Path(config.model)
    quants = config.quant_list()
    train = read_train(model)
    stamp = source_stamp(model, train)
    out = model / "gguf"
    summary_path = model / "export.json"
    previous = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    out.mkdir(parents=True, exist_ok=True)
    steps, warnings = {}, []
    threads_before = _set_torch_threads(config.threads)
    try:
        t0 = time.time()
        merged, ran, w = merge(model, train, stamp)
        warnings += w
        steps["merge"] = {"seconds": round(time.time() - t0, 2), "ran": ran}
        if ran or (previous and previous.get("source") != stamp):  # GGUFs of another merge are stale
            for f in out.glob("*.gguf*"):
                f.unlink()
            previous = None

        # --- convert (llama.cpp's converter, in subprocesses, two at a time)
        want = {f"model-{q}.gguf" for q in quants if q in BY_CONVERTER}
        if "q4_k_m" in quants:
            want.add("model-f16.gguf")  # quantized from the f16 file
        lora = config.lora_gguf and train["lora"]
        if config.lora_gguf and not train["lora"]:
            warnings.append("lora_gguf: this is a full fine-tune; there is no adapter to export")
        if lora:
            want |= {"base-f16.gguf", "adapter-f16.gguf"}
        order = ["model-f16.gguf", "model-q8_0.gguf", "base-f16.gguf", "adapter-f16.gguf"]
        todo = [f for f in order if f in want and not (out / f).is_file()]
        if todo:
            t0 = time.time()
            tools = converter_dir()
            steps["converter"] = {"seconds": round(time.time() - t0, 2), "ran": True, "dir": str(tools),
                                  "version": installed_version()}
            steps["convert"] = _run_conversions(tools, todo, merged, model, train, out)

        # --- quantize (llama.cpp's quantize, through the binding)
        if "q4_k_m" in quants and not (out / "model-q4_k_m.gguf").is_file():
            t0 = time.time()
            fallbacks = quantize(out / "model-f16.gguf", out / "model-q4_k_m.gguf", "q4_k_m", config.threads)
            steps["quantize"] = {"model-q4_k_m.gguf": round(time.time() - t0, 2), "ran": True,
                                 "fallback_messages": len(fallbacks), "fallback_examples": fallbacks[:3]}

        # --- verify
        files = {f.name: _file_record(f) for f in sorted(out.glob("*.gguf"))}
        verify, verify_ran, t0 = {}, False, time.time()
        template = write_plain_template(merged)
        hf_config = json.loads((merged / "config.json").read_text()) if (merged / "config.json").is_file() else {}
        model_files = [f"model-{q}.gguf" for q in quants]
        stale = [f for f in model_files if not _reusable(previous, f, files[f], config.verify_prompts)]
        if lora and not _reusable(previous, "adapter-f16.gguf", files.get("adapter-f16.gguf"), config.verify_prompts):
            stale.append("adapter-f16.gguf")
        prompts, changed = [], {}
        if stale:
            verify_ran = True
            prompts, changed = reference(merged, config.verify_prompts, VERIFY_TOKENS, train.get("base"))
        else:
            changed = previous["verify"].get("fine_tune", {})
        for name in model_files:
            if name in stale:
                verify[name] = verify_gguf(out / name, template, hf_config, prompts, VERIFY_TOKENS, config.threads)
            else:
                verify[name] = previous["verify"][name]
        if lora:
            if "adapter-f16.gguf" in stale:
                verify["adapter-f16.gguf"] = verify_lora(out, prompts, verify, VERIFY_TOKENS, config.threads)
            else:
                verify["adapter-f16.gguf"] = previous["verify"]["adapter-f16.gguf"]
        verify["fine_tune"] = changed
        if prompts:
            verify["samples"] = [{"question": next(m["content"] for m in p["messages"] if m["role"] == "user"),
                                  "turns": len(p["messages"]), "hf": p["hf_text"]} for p in prompts[:4]]
        elif previous and not verify_ran:
            verify["samples"] = previous["verify"].get("samples", [])
        steps["verify"] = {"seconds": round(time.time() - t0, 2), "ran": verify_ran}

        # --- Modelfile
        text = modelfile(f"model-{quants[0]}.gguf")
        mf = out / "Modelfile"
        steps["modelfile"] = {"ran": not mf.is_file() or mf.read_text() != text}
        if steps["modelfile"]["ran"]:
            mf.write_text(text)
    finally:
        _set_torch_threads(threads_before)

    work = any(s.get("ran") for s in steps.values())
    if previous and not work and previous.get("config") == asdict(config):
        return {**previous, "work_done": False}
    problems = {name: v["problems"] for name, v in verify.items() if isinstance(v, dict) and v.get("problems")}
    for name in ("model-f16.gguf", "model-q8_0.gguf"):
        if name in verify and verify[name].get("prompts_identical", 1.0) < 1.0:
            warnings.append(f"{name}: greedy tokens differ from transformers' on prompts "
                            f"{verify[name]['divergent_prompts']}")
    summary = {"schema": SCHEMA, "model": str(model), "source": stamp, "base": train.get("base"),
               "lora": train["lora"], "merged": str(merged), "quants": quants, "verify_prompts": config.verify_prompts,
               "files": {**files, "Modelfile": {"bytes": (out / "Modelfile").stat().st_size}},
               "steps": steps, "verify": verify, "warnings": warnings, "problems": problems, "ok": not problems,
               "work_done": work, "config": asdict(config)}
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    if problems:
        raise ExportError(f"the exported files failed their checks (see {summary_path}): {problems}")
    return summary


def _run_conversions(tools: Path, todo: list[str], merged: Path, model: Path, train: dict, out: Path) -> dict:
    """Run the converter for each missing file, two at a time; seconds per file."""
    def job(name):
        t0 = time.time()
        if name.startswith("model-"):
            convert_hf(tools, merged, out / name, name.removeprefix("model-").removesuffix(".gguf"))
        elif name == "base-f16.gguf":
            staged = stage_base(train["base"], out / ".base-src")
            try:
                convert_hf(tools, staged, out / name, "f16")
            finally:
                shutil.rmtree(staged, ignore_errors=True)
        else:
            convert_lora(tools, model / "adapter", merged, out / name)
        return round(time.time() - t0, 2)

    with ThreadPoolExecutor(max_workers=2) as pool:
        seconds = dict(zip(todo, pool.map(job, todo), strict=True))
    return {**seconds, "ran": True}


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


def _file_record(path: Path) -> dict:
    st = path.stat()
    return {"bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _reusable(previous: dict | None, name: str, record: dict | None, n_prompts: int) -> bool:
    """A previous verification still holds: same file (size, time), same number of prompts, no problems."""
    if not previous or record is None:
        return False
    old = previous.get("verify", {}).get(name)
    return (old is not None and not old.get("problems") and previous["files"].get(name) == record
            and previous.get("verify_prompts") == n_prompts)


def _set_torch_threads(n: int | None) -> int | None:
    """Set torch's thread count (when n is given and torch is loaded or needed); returns the old value."""
    if n is None:
        return None
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    return old


def describe(summary: dict) -> str:
    """One line per GGUF: size and agreement, for the command line."""
    lines = []
    for name, rec in summary["files"].items():
        v = summary["verify"].get(name, {})
        agree = (f" identical {v['prompts_identical']:.0%}, tokens {v['tokens_matching']:.0%}"
                 if "prompts_identical" in v else "")
        lines.append(f"{name:22s} {rec['bytes'] / 2**20:8.1f} MiB{agree}")
    return "\n".join(lines)

