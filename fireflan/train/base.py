"""Base models to fine-tune: the embedded Gemma 3 270M, any Hugging Face model, a tiny test model.

    folder = resolve_base("embedded")   # ~/.cache/fireflan/gemma3-270m (built once, ~1 min)
    folder = resolve_base("tiny")       # a 2-layer Gemma 3 with a locally trained tokenizer (seconds)
    folder = resolve_base("google/gemma-3-270m-it")   # a hub id or a local folder, used as it is

Every folder fireflan prepares holds safetensors weights, a tokenizer with `tokenizer.model`
(SentencePiece: llama.cpp's converter needs it to write the right tokenizer into a GGUF) and the
chat template below, whose assistant turns are marked with `{% generation %}` for assistant-only
loss. The cache folder is `$FIREFLAN_CACHE`, else `~/.cache/fireflan`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

START, END = "<start_of_turn>", "<end_of_turn>"

# Gemma's turn format. Gemma has no system role: a system turn is put before the first user turn.
# The {% generation %} marks are for trainers that mask by template (TRL's assistant_only_loss);
# they are removed from the template written into a GGUF (llama.cpp's Jinja does not know them).
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set ns = namespace(system='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- set ns.system = message['content'] + '\\n\\n' -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{{- '<start_of_turn>user\\n' + ns.system + message['content'] + '<end_of_turn>\\n' -}}"
    "{%- set ns.system = '' -%}"
    "{%- else -%}"
    "{{- '<start_of_turn>model\\n' -}}"
    "{% generation %}{{- message['content'] + '<end_of_turn>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)


def plain_template(template: str = CHAT_TEMPLATE) -> str:
    """The template without the {% generation %} marks (for GGUF files and plain Jinja)."""
    return template.replace("{% generation %}", "").replace("{% endgeneration %}", "")


def cache_dir() -> Path:
    return Path(os.environ.get("FIREFLAN_CACHE") or Path.home() / ".cache" / "fireflan")


def resolve_base(name: str) -> str:
    """A folder (or hub id) to load with `from_pretrained`: 'embedded', 'tiny', or a model id/folder."""
    if name == "embedded":
        return str(prepare_embedded())
    if name == "tiny":
        return str(build_tiny(cache_dir() / "tiny-gemma3"))
    return name


# --------------------------------------------------------------------------- the tiny test model

def _tiny_texts(seed: int) -> list[str]:
    from fireflan.world import WorldConfig, generate_world

    splits, corpus = generate_world(WorldConfig(seed=seed, train=300, dev=10, test=10))
    texts = [p["text"] for p in corpus] + [r["question"] for r in splits["train"]]
    texts += ["Thought: I need to search.\nAction: search[X]\nObservation: Y", "Action: lookup[k]",
              "Action: finish[yes]", "So the answer is"] * 20
    return texts


def build_tiny(out, seed: int = 0, vocab_size: int = 700, hidden: int = 64, layers: int = 2) -> Path:
    """A tiny Gemma 3 (random weights) with a SentencePiece tokenizer trained on world text, fully offline.

    Gemma's special-token layout: <pad>=0, <eos>=1, <bos>=2, <unk>=3, then <start_of_turn>, <end_of_turn>.
    Built once per folder (a `fireflan-base.json` marks it complete).
    """
    out = Path(out)
    if (out / "fireflan-base.json").exists():
        return out
    import sentencepiece as spm
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
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
    (tmp / "fireflan-base.json").write_text(json.dumps({"base": "tiny", "seed": seed}) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# --------------------------------------------------------------------------- the embedded Gemma

def prepare_embedded(out=None) -> Path:
    """The embedded Gemma 3 270M as a trainable safetensors folder (built once into the cache).

    Implemented in fireflan.train.embedded (it needs the `infer` and `train` extras).
    """
    from fireflan.train.embedded import prepare

    return prepare(Path(out) if out else cache_dir() / "gemma3-270m")
