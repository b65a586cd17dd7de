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

The steps, each in its module: merge (merge.py), convert and quantize (convert.py), verify (verify.py: every
GGUF read back and run under llama.cpp against transformers before success is reported), the Modelfile
(ollama.py). For a full fine-tune MODEL/full/ is the merged model (tokenizer.model and the plain template are
written into it).

Re-running skips what is done: the merge (a marker file in merged/ names the source it was made from), every GGUF
that exists (each is written to a .partial name and renamed when complete), and the verification of unchanged
files. When the adapter or train.json change, the merged model and the GGUFs are made again. While an export
runs, MODEL/gguf/.incomplete stands (`io.file_set`): a GGUF of an export stopped before its verification is
refused by every reader (evaluate, chat, serve), naming the export, until a rerun finishes it.
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from fireflan.export.convert import (
    ExportError,
    convert_hf,
    convert_lora,
    converter_dir,
    folder_turns,
    installed_version,
    quantize,
)
from fireflan.export.merge import merge, merge_base, read_train, source_stamp, stage_base, write_plain_template
from fireflan.export.ollama import modelfile
from fireflan.export.verify import VERIFY_TOKENS, reference, verify_gguf, verify_lora
from fireflan.io import file_set, write_json
from fireflan.options import one_run_per_folder, opt
from fireflan.train.chat_template import CHAT_TEMPLATE, Turns, plain_template

SCHEMA = "fireflan.export/1"
QUANTS = ("f16", "q8_0", "q4_k_m")
BY_CONVERTER = ("f16", "q8_0")  # written by convert_hf_to_gguf.py straight from the merged weights


@dataclass
class ExportConfig:
    """Options of `fireflan export`."""

    model: str = opt("runs/model", "the trainer's folder: train.json with adapter/ (LoRA) or full/")
    quant: str = opt("q8_0", "comma-separated GGUF types to write: f16, q8_0, q4_k_m (the first is the Modelfile's)")
    lora_gguf: bool = opt(False, "also write the adapter as a GGUF LoRA (adapter-f16.gguf, base-f16.gguf) and check it")
    verify_prompts: int = opt(4, "chat prompts on which llama.cpp's greedy tokens must match transformers' (0: none)")
    threads: int | None = opt(None, "CPU threads for torch and llama.cpp (None: their defaults)")
    merge_base: str | None = opt(None, "the 16-bit model to merge a LoRA adapter into (None: the trained base, or "
                                       "the 16-bit original of a 4-bit one: X-bnb-4bit -> X)")

    def quant_list(self) -> list[str]:
        quants = [q.strip().lower() for q in str(self.quant).split(",") if q.strip()]
        bad = [q for q in quants if q not in QUANTS]
        if bad or not quants:
            raise ValueError(f"--quant must name some of {', '.join(QUANTS)}; got {self.quant!r}")
        return list(dict.fromkeys(quants))


@one_run_per_folder("model")
def export(config: ExportConfig) -> dict:
    """Merge, convert, quantize, verify, write the Modelfile; returns (and writes) MODEL/export.json."""
    model = Path(config.model)
    quants = config.quant_list()
    train = read_train(model)
    stamp = source_stamp(model, train)
    if train["lora"]:  # a 4-bit (QLoRA) base is merged as its 16-bit original
        train = {**train, "merge_base": config.merge_base or merge_base(train["base"])}
    out = model / "gguf"
    summary_path = model / "export.json"
    previous = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    steps, warnings = {}, []
    lora = config.lora_gguf and train["lora"]
    threads_before = _set_torch_threads(config.threads)
    try:
        with file_set(out, "fireflan export"):  # until verified, every reader refuses the GGUFs by name
            merged, steps["merge"], w = _merge(model, train, stamp, train.get("merge_base"))
            warnings += w
            if config.lora_gguf and not train["lora"]:
                warnings.append("lora_gguf: this is a full fine-tune; there is no adapter to export")
            if steps["merge"]["ran"] or (previous and previous.get("source") != stamp):  # GGUFs of another merge
                for f in out.glob("*.gguf*"):
                    f.unlink()
                previous = None
            steps.update(_convert(quants, lora, merged, model, train, out))
            steps.update(_quantize(quants, out, config.threads))
            template, turns = write_plain_template(merged), folder_turns(merged)  # read once, for both steps
            verify, steps["verify"] = _verify(config, quants, lora, train, merged, out, previous, template, turns)
            steps["modelfile"] = _modelfile(quants, out, train.get("action_format", "react"), template, turns)
    finally:
        _set_torch_threads(threads_before)

    work = any(s.get("ran") for s in steps.values())
    if previous and not work and previous.get("config") == asdict(config):
        return {**previous, "work_done": False}
    return _summary(config, model, stamp, train, merged, quants, out, steps, verify, warnings, work, summary_path)


def _merge(model: Path, train: dict, stamp: str, base: str | None) -> tuple[Path, dict, list[str]]:
    t0 = time.time()
    merged, ran, warnings = merge(model, train, stamp, base)
    return merged, {"seconds": round(time.time() - t0, 2), "ran": ran}, warnings


def _convert(quants: list[str], lora: bool, merged: Path, model: Path, train: dict, out: Path) -> dict:
    """llama.cpp's converter, in subprocesses, two at a time, for each missing file: {"converter", "convert"}."""
    want = {f"model-{q}.gguf" for q in quants if q in BY_CONVERTER}
    if "q4_k_m" in quants:
        want.add("model-f16.gguf")  # quantized from the f16 file
    if lora:
        want |= {"base-f16.gguf", "adapter-f16.gguf"}
    order = ["model-f16.gguf", "model-q8_0.gguf", "base-f16.gguf", "adapter-f16.gguf"]
    todo = [f for f in order if f in want and not (out / f).is_file()]
    if not todo:
        return {}
    t0 = time.time()
    tools = converter_dir()
    return {"converter": {"seconds": round(time.time() - t0, 2), "ran": True, "dir": str(tools),
                          "version": installed_version()},
            "convert": _run_conversions(tools, todo, merged, model, train, out)}


def _quantize(quants: list[str], out: Path, threads: int | None) -> dict:
    """llama.cpp's quantize, through the binding: q4_k_m from the f16 file."""
    if "q4_k_m" not in quants or (out / "model-q4_k_m.gguf").is_file():
        return {}
    t0 = time.time()
    fallbacks = quantize(out / "model-f16.gguf", out / "model-q4_k_m.gguf", "q4_k_m", threads)
    return {"quantize": {"model-q4_k_m.gguf": round(time.time() - t0, 2), "ran": True,
                         "fallback_messages": len(fallbacks), "fallback_examples": fallbacks[:3]}}


def _verify(config: ExportConfig, quants: list[str], lora: bool, train: dict, merged: Path, out: Path,
            previous: dict | None, template: str, turns: Turns) -> tuple[dict, dict]:
    """Every model GGUF (and the LoRA pair) checked, reusing a previous verification of unchanged files:
    (the verification by file, the step's record)."""
    files = {f.name: _file_record(f) for f in sorted(out.glob("*.gguf"))}
    verify, verify_ran, t0 = {}, False, time.time()
    hf_config = json.loads((merged / "config.json").read_text()) if (merged / "config.json").is_file() else {}
    model_files = [f"model-{q}.gguf" for q in quants]
    stale = [f for f in model_files if not _reusable(previous, f, files[f], config.verify_prompts)]
    if lora and not _reusable(previous, "adapter-f16.gguf", files.get("adapter-f16.gguf"), config.verify_prompts):
        stale.append("adapter-f16.gguf")
    prompts, changed = [], {}
    if stale:
        verify_ran = True
        prompts, changed = reference(merged, turns, config.verify_prompts, VERIFY_TOKENS, train.get("base"))
    else:
        changed = previous["verify"].get("fine_tune", {})
    for name in model_files:
        if name in stale:
            verify[name] = verify_gguf(out / name, template, turns, hf_config, prompts, VERIFY_TOKENS, config.threads)
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
    return verify, {"seconds": round(time.time() - t0, 2), "ran": verify_ran}


def _modelfile(quants: list[str], out: Path, action_format: str, template: str, turns: Turns) -> dict:
    text = modelfile(f"model-{quants[0]}.gguf", action_format=action_format, end=turns.end,
                     fireflans_template=template == plain_template(CHAT_TEMPLATE))
    mf = out / "Modelfile"
    ran = not mf.is_file() or mf.read_text() != text
    if ran:
        mf.write_text(text)
    return {"ran": ran}


def _summary(config, model, stamp, train, merged, quants, out, steps, verify, warnings, work, path) -> dict:
    """MODEL/export.json written; an ExportError when a file failed its checks."""
    problems = {name: v["problems"] for name, v in verify.items() if isinstance(v, dict) and v.get("problems")}
    for name in ("model-f16.gguf", "model-q8_0.gguf"):
        if name in verify and verify[name].get("prompts_identical", 1.0) < 1.0:
            warnings.append(f"{name}: greedy tokens differ from transformers' on prompts "
                            f"{verify[name]['divergent_prompts']}")
    files = {f.name: _file_record(f) for f in sorted(out.glob("*.gguf"))}
    summary = {"schema": SCHEMA, "model": str(model), "source": stamp, "base": train.get("base"),
               "merged_into": train.get("merge_base"),
               "lora": train["lora"], "merged": str(merged), "quants": quants, "verify_prompts": config.verify_prompts,
               "files": {**files, "Modelfile": {"bytes": (out / "Modelfile").stat().st_size}},
               "steps": steps, "verify": verify, "warnings": warnings, "problems": problems, "ok": not problems,
               "work_done": work, "config": asdict(config)}
    write_json(path, summary)
    if problems:
        raise ExportError(f"the exported files failed their checks (see {path}): {problems}")
    return summary



def _run_conversions(tools: Path, todo: list[str], merged: Path, model: Path, train: dict, out: Path) -> dict:
    """Run the converter for each missing file, two at a time; seconds per file."""
    def job(name):
        t0 = time.time()
        if name.startswith("model-"):
            convert_hf(tools, merged, out / name, name.removeprefix("model-").removesuffix(".gguf"),
                       train.get("action_format", "react"))
        elif name == "base-f16.gguf":
            staged = stage_base(train["merge_base"], out / ".base-src")
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
