"""A stand-in for the `unsloth` package on a machine without a GPU: `FastLanguageModel` with the calls
fireflan makes (from_pretrained, get_peft_model, for_training), each recorded with its arguments.

It loads the model with transformers and adds the adapter with PEFT, in fp32 on the CPU (no 4-bit:
bitsandbytes needs a GPU), so that a run through fireflan's Unsloth code path really trains. As the real
Unsloth (2026.10) does, a Gemma 3 goes through its FastModel path, whose get_peft_model turns the list of
target modules into one regular expression (the adapter_config.json it saves holds that string). What the
tests check is what reaches Unsloth, and what the trainer then does with the model and tokenizer it
returns.

    module = fake_unsloth.install(monkeypatch)      # sys.modules["unsloth"] for the test's duration
    ... train(TrainConfig(backend="unsloth", ...)) ...
    module.calls   # [("from_pretrained", {...}), ("get_peft_model", {...}), ("for_training", {})]
    module.env     # the network settings Unsloth saw when from_pretrained ran

from_pretrained names the parameters of Unsloth's own (unsloth/models/loader.py, 2026.10) that fireflan may
pass, with their defaults there (fix_tokenizer=True, use_gradient_checkpointing="unsloth"); Unsloth passes
any other keyword on to transformers, and so does this fake.
"""

from __future__ import annotations

import sys
import types

NETWORK = ("HF_HUB_OFFLINE", "UNSLOTH_DISABLE_STATISTICS")


class FastLanguageModel:
    calls: list = []
    env: list = []

    @classmethod
    def from_pretrained(cls, model_name="unsloth/Llama-3.2-1B-Instruct", max_seq_length=2048, dtype=None,
                        load_in_4bit=True, load_in_8bit=False, load_in_16bit=False, full_finetuning=False, token=None,
                        device_map="sequential", fix_tokenizer=True, use_gradient_checkpointing="unsloth",
                        random_state=3407, **kwargs):
        import os

        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        cls.calls.append(("from_pretrained", {"model_name": model_name, "max_seq_length": max_seq_length,
                                              "dtype": dtype, "load_in_4bit": load_in_4bit,
                                              "full_finetuning": full_finetuning, "fix_tokenizer": fix_tokenizer,
                                              "use_gradient_checkpointing": use_gradient_checkpointing,
                                              **kwargs}))
        cls.env.append({k: os.environ.get(k) for k in NETWORK})
        model = AutoModelForCausalLM.from_pretrained(model_name, dtype=torch.float32, **kwargs)
        return model, AutoTokenizer.from_pretrained(model_name)

    @classmethod
    def get_peft_model(cls, model, r=16, lora_alpha=16, lora_dropout=0.0, target_modules=None, bias="none",
                       use_gradient_checkpointing="unsloth", random_state=3407, **kwargs):
        from peft import LoraConfig, get_peft_model

        cls.calls.append(("get_peft_model", {"r": r, "lora_alpha": lora_alpha, "lora_dropout": lora_dropout,
                                             "target_modules": target_modules, "bias": bias,
                                             "use_gradient_checkpointing": use_gradient_checkpointing,
                                             "random_state": random_state, **kwargs}))
        if model.config.model_type.startswith("gemma3") and isinstance(target_modules, list):  # FastModel's way
            target_modules = r".*(?:language_model|model).*\.(?:" + "|".join(target_modules) + ")"
        return get_peft_model(model, LoraConfig(r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, bias=bias,
                                                target_modules=target_modules, task_type="CAUSAL_LM"))

    @classmethod
    def for_training(cls, model, use_gradient_checkpointing=True):
        cls.calls.append(("for_training", {}))
        model.train()
        return model


def install(monkeypatch) -> types.ModuleType:
    """A fake `unsloth` module in sys.modules, and fireflan's trainer told that a CUDA device is there."""
    import fireflan.train.trainer as trainer

    for name in NETWORK:  # what the code under test sets in os.environ is taken back after the test
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    module = types.ModuleType("unsloth")
    module.FastLanguageModel = type("FastLanguageModel", (FastLanguageModel,), {"calls": []})
    module.FastLanguageModel.env = []
    module.calls, module.env = module.FastLanguageModel.calls, module.FastLanguageModel.env
    monkeypatch.setitem(sys.modules, "unsloth", module)
    was_installed = trainer.installed
    monkeypatch.setattr(trainer, "installed", lambda name: name == "unsloth" or was_installed(name))
    monkeypatch.setattr(trainer, "cuda_available", lambda: True)
    return module
