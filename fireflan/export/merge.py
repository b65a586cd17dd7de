"""The merge step of export: the trained adapter merged into its base as a Hugging Face folder that
llama.cpp's converter reads (tokenizer.model copied in, the added tokens declared, the plain chat template).

    train = read_train(Path("runs/model")); folder, ran, warnings = merge(model, train, source_stamp(model, train))

The merge is skipped when its marker file (MERGE_MARKER) names the same source: train.json and the
sizes and times of the trained weights (`source_stamp`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from fireflan.export.convert import ExportError
from fireflan.train.bases import CHAT_TEMPLATE, resolve_base, sixteen_bit_base, write_added_tokens
from fireflan.train.chat_template import plain_template

MERGE_MARKER = "fireflan-merge.json"


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


def merge_base(base: str) -> str:
    """`sixteen_bit_base` with export's error: the 16-bit model a LoRA adapter trained on `base` merges into."""
    try:
        return sixteen_bit_base(base)
    except ValueError as e:
        raise ExportError(str(e)) from None


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


def merge(model: Path, train: dict, stamp: str, base: str | None = None) -> tuple[Path, bool, list[str]]:
    """The merged HF folder, made if needed: (folder, whether work was done, warnings). `base`: the 16-bit
    model to merge into (None: the trained base, or its 16-bit original, `merge_base`)."""
    if not train["lora"]:
        folder = model / "full"
        before = _folder_state(folder)
        warnings = prepare_folder(folder, train.get("base") or str(folder), folder)
        return folder, _folder_state(folder) != before, warnings
    out, adapter = model / "merged", model / "adapter"
    base = base or merge_base(train["base"])
    marker = out / MERGE_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("source") == stamp and \
            json.loads(marker.read_text()).get("base") == base:
        return out, False, []
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = model / "merged.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    weights = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(weights, adapter).merge_and_unload()
    merged.save_pretrained(tmp)
    tokenizer_from = adapter if (adapter / "tokenizer_config.json").is_file() else base
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(tmp)
    warnings = prepare_folder(tmp, base, adapter)
    marker_text = json.dumps({"source": stamp, "base": base, "adapter": str(adapter)}, indent=1)
    (tmp / MERGE_MARKER).write_text(marker_text + "\n")
    marker.unlink(missing_ok=True)  # first: a kill during the removal must not leave a marker on half a folder
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
