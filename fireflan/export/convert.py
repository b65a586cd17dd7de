"""Converting to GGUF: llama.cpp's own HF -> GGUF converters, fetched at run time from the llama-cpp-python
sdist; the metadata they leave out; quantization through the binding; reading a GGUF's metadata back.

    tools = converter_dir()   # ~/.cache/fireflan/llama.cpp-0.3.36 (downloaded and extracted once)
    run_script(tools, "convert_hf_to_gguf.py", [folder, "--outfile", "m.gguf", "--outtype", "f16"])

The llama-cpp-python wheel has no converter; its sdist (~77 MB, the version installed here) carries
`vendor/llama.cpp/convert_hf_to_gguf.py`, the `conversion/` package it imports, `convert_lora_to_gguf.py`
and `gguf-py/`. Only those are extracted into the cache; none of it is part of this repository. The
scripts must run against that bundled gguf-py (PyPI's gguf lags behind: `AttributeError: module 'gguf'
has no attribute 'LazyChunkedTensor'`), so they run in a subprocess with PYTHONPATH=<tools>/gguf-py.

The download goes through pip (so pip's own settings apply: PIP_INDEX_URL, PIP_FIND_LINKS, proxies).
A machine without any index can point FIREFLAN_LLAMA_CPP_SDIST at a copy of the sdist file.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections import Counter
from importlib.resources import files
from pathlib import Path

from fireflan.agent.toolcalls import ACTION_FORMAT_KEY
from fireflan.cache import build_once, cache_dir, seal, whole_folder
from fireflan.train.chat_template import Turns, turn_tokens

PACKAGE = "llama-cpp-python"
VENDOR = "vendor/llama.cpp/"
# What the converters need from the sdist: the two scripts, the model classes, the matching gguf-py.
WANTED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/gguf/", "gguf-py/LICENSE")
MARKER = "fireflan-llama-cpp.json"  # written last: a folder without it is not complete
EDIT_METADATA = files("fireflan.export") / "scripts" / "edit_metadata.py"  # run with the bundled gguf-py


class ExportError(RuntimeError):
    """The export cannot go on, or a written file failed its checks (the message says which and why)."""


class ConverterUnavailable(RuntimeError):
    """The converter could not be obtained (no llama-cpp-python installed, no index reachable)."""


class ConverterError(RuntimeError):
    """A converter script failed; the message carries the command and the tail of its output."""


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        raise ConverterUnavailable(f"{PACKAGE} is not installed (pip install 'fireflan[infer]'); the GGUF "
                                   "converter is taken from the sdist of the installed version") from None


def converter_dir(version: str | None = None) -> Path:
    """The folder holding llama.cpp's converters for `version` (default: the installed llama-cpp-python).

    Downloaded and extracted on the first call (fireflan.cache.build_once: one process at a time, published
    by one rename); later calls only check the folder against its marker.
    """
    version = version or installed_version()

    def fetch(staged: Path) -> None:
        with tempfile.TemporaryDirectory(prefix=f".llama.cpp-{version}-sdist-", dir=staged.parent) as tmp:
            sdist = os.environ.get("FIREFLAN_LLAMA_CPP_SDIST") or download_sdist(version, Path(tmp))
            files = extract(Path(sdist), staged)
        seal(staged, MARKER, {"package": PACKAGE, "version": version, "sdist": Path(sdist).name, "files": files})

    return build_once(cache_dir() / f"llama.cpp-{version}", fetch, whole_folder(MARKER, ("convert_hf_to_gguf.py",)),
                      f"llama.cpp {version} converter")


def download_sdist(version: str, dest: Path) -> Path:
    """`pip download` the sdist of llama-cpp-python==version into dest; returns the file."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", f"{PACKAGE}=={version}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob("*.tar.gz"))
    if proc.returncode != 0 or not found:
        raise ConverterUnavailable(
            f"could not download the {PACKAGE} {version} sdist (it carries llama.cpp's GGUF converter); is a "
            f"package index reachable? Or set FIREFLAN_LLAMA_CPP_SDIST to a local copy.\n$ {' '.join(cmd)}\n"
            + tail(proc.stdout + proc.stderr))
    return found[0]


def extract(sdist: Path, out: Path) -> int:
    """Extract the WANTED paths under vendor/llama.cpp/ of the sdist into out; returns the file count."""
    count = 0
    with tarfile.open(sdist) as tar:
        for member in tar:
            top, _, rest = member.name.partition("/")
            rel = rest.removeprefix(VENDOR) if rest.startswith(VENDOR) else None
            if rel is None or not member.isfile() or not rel.startswith(WANTED) or ".." in Path(rel).parts:
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            count += 1
    missing = [w for w in WANTED if not (out / w).exists()]
    if missing:
        raise ConverterUnavailable(f"{sdist.name} lacks {', '.join(VENDOR + m for m in missing)}: this version "
                                   f"of {PACKAGE} does not ship the converter fireflan expects")
    return count


def converter_env(tools: Path) -> dict[str, str]:
    """The environment of a converter run: the bundled gguf-py first on the path, the hub offline."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tools / "gguf-py"), env.get("PYTHONPATH")]))
    env["HF_HUB_OFFLINE"] = "1"
    env["NO_LOCAL_GGUF"] = "1"  # the gguf-py scripts would otherwise insert their own path; ours is the same
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


def run_script(tools: Path, script: str, args: list, timeout: float | None = None,
               label: str | None = None) -> subprocess.CompletedProcess:
    """Run a Python script (one of llama.cpp's, a path relative to tools, or any absolute path) with the
    bundled gguf-py; raises ConverterError, with the command and the tail of its output, on failure."""
    label = label or script
    cmd = [sys.executable, str(tools / script), *map(str, args)]
    shown = " ".join(c if len(c) < 200 else c[:60] + "..." for c in cmd)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=converter_env(tools),
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        raise ConverterError(f"{label} timed out after {timeout} s\n$ {shown}\n{tail(out)}") from None
    if proc.returncode != 0:
        raise ConverterError(f"{label} failed (exit {proc.returncode})\n$ {shown}\n" + tail(proc.stdout + proc.stderr))
    return proc


def tail(text: str, lines: int = 25) -> str:
    """The last lines of a tool's output, for error messages."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------- converting, quantizing

def convert_hf(tools: Path, src: Path, out: Path, outtype: str, action_format: str = "react") -> None:
    """llama.cpp's convert_hf_to_gguf.py: src (HF folder) -> out, then the metadata it leaves out (metadata_fixes)."""
    partial, edited = out.with_name(out.name + ".partial"), out.with_name(out.name + ".edit.partial")
    try:
        run_script(tools, "convert_hf_to_gguf.py", [src, "--outfile", partial, "--outtype", outtype],
                   label=f"llama.cpp's convert_hf_to_gguf.py ({src} -> {out.name})")
        changes = metadata_fixes(read_gguf(partial, folder_turns(src)), json.loads((src / "config.json").read_text()),
                                 action_format)
        if changes:
            run_script(tools, str(EDIT_METADATA), [partial, edited, json.dumps(changes)],
                       label=f"editing {out.name}'s metadata")
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


def metadata_fixes(meta: dict, config: dict, action_format: str = "react") -> dict:
    """The keys a converted GGUF lacks (key -> value), from what llama.cpp's converter leaves out:

    - tokenizer.ggml.eot_token_id = the token that closes an assistant turn (Gemma's <end_of_turn>; read from
      the chat template, `turn_tokens`): the converter sets only bos/eos/unk/pad from the tokenizer files; llama.cpp
      would guess some from their text, other runtimes need it said.
    - gemma3.attention.sliding_window_pattern (a bool per layer), when the HF config's layer_types differ from
      llama.cpp's gemma3 default (each 6th layer global): the converter does not write it, and a model with
      another layout (such as fireflan's 2-layer tiny model) would run its global layers as sliding ones.
    - fireflan.action_format = "hermes" for a model trained to call tools (fireflan.agent.toolcalls), so that
      whoever loads the file knows to declare tools and read tool calls; a ReAct model's file has no such key.
    """
    changes = {}
    if meta["end_of_turn_id"] is not None and meta["eot_token_id"] != meta["end_of_turn_id"]:
        changes["tokenizer.ggml.eot_token_id"] = meta["end_of_turn_id"]
    want, have = swa_layers(config), llama_swa_layers(meta)
    if want is not None and have is not None and want != have and len(want) == len(have):
        changes[f"{meta['architecture']}.attention.sliding_window_pattern"] = want
    if action_format != "react":
        changes[ACTION_FORMAT_KEY] = action_format
    return changes


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


def folder_turns(folder: Path) -> Turns:
    """The special tokens of a model folder's chat template (`turn_tokens` of its tokenizer)."""
    from transformers import AutoTokenizer

    return turn_tokens(AutoTokenizer.from_pretrained(folder))


def read_gguf(path: Path, turns: Turns | None = None) -> dict:
    """The metadata export checks, read with gguf's reader; with `turns`, the ids of its end-of-turn and EOS
    tokens by their text (end_of_turn_id, eos_id: None where the file has no such token)."""
    from gguf import GGUFReader

    reader = GGUFReader(path)

    def get(key):
        field = reader.fields.get(key)
        return field.contents() if field is not None else None

    tokens = get("tokenizer.ggml.tokens") or []
    names = (turns.end, turns.eos) if turns else ()
    index = {t: i for i, t in enumerate(tokens) if t in names}
    arch = get("general.architecture")
    return {"architecture": arch, "type": get("general.type"), "block_count": get(f"{arch}.block_count"),
            "sliding_window": get(f"{arch}.attention.sliding_window"),
            "swa_pattern": get(f"{arch}.attention.sliding_window_pattern"),
            "file_type": get("general.file_type"), "chat_template": get("tokenizer.chat_template"),
            "eos_token_id": get("tokenizer.ggml.eos_token_id"), "eot_token_id": get("tokenizer.ggml.eot_token_id"),
            "end_of_turn_id": index.get(turns.end) if turns else None,
            "eos_id": index.get(turns.eos) if turns else None, "n_tokens": len(tokens),
            "tensors": len(reader.tensors),
            "tensor_types": dict(Counter(t.tensor_type.name for t in reader.tensors).most_common())}
