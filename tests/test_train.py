"""Training on the tiny model: which tokens carry loss, the fast loss, resume, reports."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT, run_cli

pytest.importorskip("trl", reason="the train extra is not installed (pip install -e '.[train]')")

from fireflan.train.data import IGNORE, encode, tokenize_corpus  # noqa: E402
from fireflan.train.trainer import TrainConfig, choose_backend, corpus_files, train  # noqa: E402

CHAT = [{"role": "system", "content": "Use the tools.", "loss": False},
        {"role": "user", "content": "Where was Aldo Brenik born?", "loss": False},
        {"role": "assistant", "content": "Thought: I need his page.\nAction: search[Aldo Brenik]", "loss": True},
        {"role": "user", "content": "Observation: Aldo Brenik was born in Velmora.", "loss": False},
        {"role": "assistant", "content": "Thought: Found it.\nAction: finish[Velmora]", "loss": True}]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from fireflan.train.bases import build_tiny

    return build_tiny(tmp_path_factory.mktemp("base") / "tiny")


@pytest.fixture(scope="session")
def tokenizer(tiny):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    """A small real corpus: scripted trajectories on a small world, FireAct format."""
    from fireflan.corpus.build import CorpusConfig, build_corpus
    from fireflan.teach import TeachConfig, teach
    from fireflan.worlds.wiki import WorldConfig, write_world

    root = tmp_path_factory.mktemp("corpus")
    write_world(WorldConfig(seed=5, train=120, dev=10, test=10), root / "world")
    teach(TeachConfig(out=str(root / "teach"), data=str(root / "world"), methods="react,cot"))
    build_corpus(CorpusConfig(inputs=str(root / "teach" / "trajectories.jsonl"), out=str(root / "corpus"),
                              negatives="no_tools=0.1"))
    return root / "corpus"


def test_only_assistant_turns_with_loss_carry_labels(tokenizer):
    """The unit test of loss masking: exactly the marked assistant turns (and their end-of-turn) train."""
    ids, labels = encode(tokenizer, CHAT)
    trained = tokenizer.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert trained == ("Thought: I need his page.\nAction: search[Aldo Brenik]<end_of_turn>\n"
                       "Thought: Found it.\nAction: finish[Velmora]<end_of_turn>\n")
    assert all(lab in (IGNORE, i) for i, lab in zip(ids, labels, strict=True))
    # the observation, the question and the system text never carry loss
    masked = tokenizer.decode([i for i, lab in zip(ids, labels, strict=True) if lab == IGNORE])
    assert "Velmora." in masked and "Where was Aldo Brenik born?" in masked and "Use the tools." in masked
    # a turn marked loss: false is context only
    frozen = [dict(m) for m in CHAT]
    frozen[2]["loss"] = False
    ids2, labels2 = encode(tokenizer, frozen)
    assert ids2 == ids
    assert tokenizer.decode([i for i, lab in zip(ids2, labels2, strict=True) if lab != IGNORE]) == \
        "Thought: Found it.\nAction: finish[Velmora]<end_of_turn>\n"


def test_user_turn_with_loss_is_refused(tokenizer):
    from fireflan.io import DataError

    bad = [dict(m) for m in CHAT]
    bad[3]["loss"] = True
    with pytest.raises(DataError, match="turn 3 is a user turn"):
        encode(tokenizer, bad)


def test_records_over_the_cap_are_reported_not_truncated(tokenizer):
    long = [dict(m) for m in CHAT]
    long[3] = {**long[3], "content": "Observation: " + "word " * 400}
    examples, too_long = tokenize_corpus([{"messages": CHAT, "meta": {"id": "short"}},
                                          {"messages": long, "meta": {"id": "long"}}], tokenizer, 200)
    assert [e["length"] for e in examples] == [len(encode(tokenizer, CHAT)[0])]
    assert too_long[0]["id"] == "long" and too_long[0]["tokens"] > 200


def test_fast_loss_equals_the_full_forward_loss(tiny, tokenizer):
    import torch
    from transformers import AutoModelForCausalLM

    from fireflan.train.trainer import make_trainer_class

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    ids, labels = encode(tokenizer, CHAT)
    other_ids, other_labels = encode(tokenizer, CHAT[:3])
    pad = len(ids) - len(other_ids)
    batch = {"input_ids": torch.tensor([ids, other_ids + [0] * pad]),
             "attention_mask": torch.tensor([[1] * len(ids), [1] * len(other_ids) + [0] * pad]),
             "labels": torch.tensor([labels, other_labels + [IGNORE] * pad])}
    Trainer = make_trainer_class()
    trainer = Trainer.__new__(Trainer)  # compute_loss needs no trainer state
    trainer.supervised_tokens = 0
    with torch.no_grad():
        fast = trainer.compute_loss(model, dict(batch))
        full = model(**batch).loss
    assert fast.item() == pytest.approx(full.item(), abs=1e-5)


def test_backend_selection():
    assert choose_backend("auto", cuda=False, unsloth_installed=False) == "trl"
    assert choose_backend("auto", cuda=False, unsloth_installed=True) == "trl"
    assert choose_backend("auto", cuda=True, unsloth_installed=True) == "unsloth"
    assert choose_backend("auto", cuda=True, unsloth_installed=False) == "trl"
    assert choose_backend("trl", cuda=True, unsloth_installed=True) == "trl"
    with pytest.raises(ValueError, match="CUDA"):
        choose_backend("unsloth", cuda=False, unsloth_installed=True)
    with pytest.raises(ValueError, match="not installed"):
        choose_backend("unsloth", cuda=True, unsloth_installed=False)
    with pytest.raises(ValueError, match="--backend"):
        choose_backend("mlx", cuda=False, unsloth_installed=False)


def _trl_loss_runs_on_this_cpu() -> bool:
    """TRL 1.15 (what Unsloth pins) computes SFTTrainer's own loss with a Triton kernel, which comes with CUDA builds
    of torch and not the CPU one (bench/gpu_pins.py runs these tests under it); 1.16 needs none."""
    import importlib.util
    from importlib.metadata import version

    return importlib.util.find_spec("triton") is not None or tuple(map(int, version("trl").split(".")[:2])) >= (1, 16)


UNSLOTH_LOSS = pytest.mark.skipif(not _trl_loss_runs_on_this_cpu(), reason="TRL 1.15's SFTTrainer loss needs Triton, "
                                  "which the CPU build of torch lacks (on a GPU it is there)")


@UNSLOTH_LOSS
def test_the_options_reaching_unsloth(tiny, corpus, tmp_path, monkeypatch):
    """The Unsloth code path, driven through a fake FastLanguageModel (tests/helpers/fake_unsloth.py): 4-bit
    weights, the rank, alpha, dropout, target modules, the maximum length, Unsloth's own checkpointing and seed
    reach it; the model is put in training mode; the trainer then trains with fireflan's chat template and
    labels (loss on the assistant turns only), the loss Unsloth's model computes, and no second
    checkpointing."""
    from helpers.fake_unsloth import install

    import fireflan.train.trainer as trainer_module
    from fireflan.train.bases import CHAT_TEMPLATE

    unsloth = install(monkeypatch)
    seen = {}
    make = trainer_module.make_trainer_class

    def capturing():
        class Capturing(make()):
            def compute_loss(self, model, inputs, *args, **kwargs):
                seen.setdefault("labels", inputs["labels"][0].tolist())
                seen["ids"] = inputs["input_ids"][0].tolist()
                seen["fast_loss"], seen["template"] = self.fast_loss, self.processing_class.chat_template
                seen["checkpointing"] = self.args.to_dict().get("activation_checkpointing",
                                                               self.args.to_dict().get("gradient_checkpointing"))
                return super().compute_loss(model, inputs, *args, **kwargs)
        return Capturing

    monkeypatch.setattr(trainer_module, "make_trainer_class", capturing)
    record, path = _one_record_corpus(corpus, tmp_path, lambda r: r["meta"]["method"] == "react")
    summary = train(TrainConfig(corpus=str(path), base=str(tiny), out=str(tmp_path / "m"), backend="unsloth",
                                rank=8, alpha=16, dropout=0.05, target_modules="q_proj,v_proj", max_length=768,
                                gradient_checkpointing=True, max_steps=2, batch_size=1, save_steps=100, seed=7))
    assert summary["backend"] == "unsloth" and summary["steps"] == 2
    assert [name for name, _ in unsloth.calls] == ["from_pretrained", "get_peft_model", "for_training"]
    load, lora = unsloth.calls[0][1], unsloth.calls[1][1]
    assert load == {"model_name": str(tiny), "max_seq_length": 768, "dtype": None, "load_in_4bit": True,
                    "full_finetuning": False, "use_gradient_checkpointing": "unsloth", "fix_tokenizer": False}
    assert unsloth.env == [{"HF_HUB_OFFLINE": "1", "UNSLOTH_DISABLE_STATISTICS": "1"}]  # a folder: no network
    assert "HF_HUB_OFFLINE" not in os.environ  # only while Unsloth loaded: a recipe's later stages may read the hub
    assert lora == {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
                    "bias": "none", "use_gradient_checkpointing": "unsloth", "random_state": 7}
    assert seen["template"] == CHAT_TEMPLATE and seen["fast_loss"] is False and not seen["checkpointing"]
    from fireflan.corpus.show import load_tokenizer, view

    shown = view(load_tokenizer(str(tiny)), record)  # assistant-only loss: what `corpus show` marks trained
    assert [t.id for t in shown.tokens] == seen["ids"]
    assert [t.kind == "trained" for t in shown.tokens] == [lab != IGNORE for lab in seen["labels"]]
    assert (tmp_path / "m" / "adapter" / "adapter_config.json").is_file()


@UNSLOTH_LOSS
def test_an_adapters_rank_and_modules_are_read_from_its_weights():
    from fireflan.train.trainer import adapter_layout

    layer = "base_model.model.model.layers.{}.self_attn.{}.lora_{}.weight"
    shapes = {layer.format(i, m, ab): ([16, 64] if ab == "A" else [64, 16])
              for i in (0, 1) for m in ("q_proj", "o_proj") for ab in "AB"}
    assert adapter_layout(shapes) == {"r": 16, "target_modules": ["o_proj", "q_proj"]}
    assert adapter_layout({**shapes, layer.format(2, "v_proj", "A"): [8, 64]})["r"] is None  # two ranks: no one r
    assert adapter_layout({}) == {"r": None, "target_modules": []}


def test_a_run_starts_from_an_unsloth_adapter_whose_modules_are_a_regular_expression(tiny, corpus, tmp_path,
                                                                                      monkeypatch):
    """Unsloth's FastModel (Gemma 3) saves target_modules as one regular expression: a later run (an improve
    round, GRPO) that starts from that adapter reads its rank and modules from its weights, not the string."""
    import json

    from helpers.fake_unsloth import install

    from fireflan.io import DataError

    install(monkeypatch)
    _, path = _one_record_corpus(corpus, tmp_path, lambda r: r["meta"]["method"] == "react")
    first = dict(corpus=str(path), base=str(tiny), rank=4, alpha=8, target_modules="q_proj,v_proj", max_steps=1,
                 batch_size=1, save_steps=100)
    train(TrainConfig(**first, out=str(tmp_path / "a"), backend="unsloth"))
    saved = json.loads((tmp_path / "a" / "adapter" / "adapter_config.json").read_text())
    assert isinstance(saved["target_modules"], str)  # as the real FastModel writes it
    adapter = str(tmp_path / "a" / "adapter")
    summary = train(TrainConfig(**first, out=str(tmp_path / "b"), backend="trl", init_adapter=adapter))
    assert summary["steps"] == 1
    with pytest.raises(DataError, match=r"an adapter of rank 4 on \['q_proj', 'v_proj'\]; this run trains rank 8"):
        train(TrainConfig(**{**first, "rank": 8}, out=str(tmp_path / "c"), backend="trl", init_adapter=adapter))


def test_full_fine_tuning_through_unsloth_loads_16_bit_weights(tiny, corpus, tmp_path, monkeypatch):
    from helpers.fake_unsloth import install

    unsloth = install(monkeypatch)
    _, path = _one_record_corpus(corpus, tmp_path, lambda r: r["meta"]["method"] == "react")
    train(TrainConfig(corpus=str(path), base=str(tiny), out=str(tmp_path / "m"), backend="unsloth", lora=False,
                      max_steps=1, batch_size=1, save_steps=100))
    assert [name for name, _ in unsloth.calls] == ["from_pretrained", "for_training"]
    assert unsloth.calls[0][1]["load_in_4bit"] is False and unsloth.calls[0][1]["full_finetuning"] is True
    assert unsloth.calls[0][1]["use_gradient_checkpointing"] is False  # not asked for: not Unsloth's default
    assert (tmp_path / "m" / "full" / "config.json").is_file()


def test_corpus_files(tmp_path):
    from fireflan.io import DataError

    with pytest.raises(DataError, match="train.jsonl"):
        corpus_files(tmp_path)
    (tmp_path / "train.jsonl").write_text("{}\n")
    assert corpus_files(tmp_path) == (tmp_path / "train.jsonl", None)


def test_train_lora_on_the_tiny_model(tiny, corpus, tmp_path):
    out = tmp_path / "model"
    summary = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(out), max_steps=6, save_steps=3,
                                batch_size=4, lr=3e-3))
    assert summary["steps"] == 6 and summary["lora"] and summary["backend"] == "trl"
    assert (out / "adapter" / "adapter_config.json").exists() and (out / "loss.png").exists()
    rows = (out / "loss.csv").read_text().splitlines()
    assert len(rows) == 7 and rows[0].startswith("step,loss")
    losses = [float(r.split(",")[1]) for r in rows[1:]]
    assert losses[-1] < losses[0]  # it learns
    assert summary["val_loss"] is not None and summary["supervised_tokens"] > 0
    assert json.loads((out / "train.json").read_text())["steps"] == 6


def test_killed_training_resumes_from_its_last_checkpoint(tiny, corpus, tmp_path):
    out = tmp_path / "model"
    code = ("from fireflan.train.trainer import TrainConfig, train\n"
            f"train(TrainConfig(corpus={str(corpus)!r}, base={str(tiny)!r}, out={str(out)!r}, max_steps=40,"
            " save_steps=2, batch_size=2))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    summary = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(out), max_steps=40, save_steps=2,
                                batch_size=2))
    assert summary["resumed_from"] is not None and int(summary["resumed_from"].rsplit("-", 1)[1]) >= 4
    assert summary["steps"] == 40
    steps = [int(r.split(",")[0]) for r in (out / "loss.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 41))  # the killed run's steps after its last checkpoint are not logged twice


def test_a_torn_checkpoint_is_passed_over_for_the_one_before(tmp_path, capsys):
    import torch
    from safetensors.torch import save_file

    from fireflan.train.trainer import checkpoint_problem, last_checkpoint, trim_log

    for step in (2, 4, 6, 8):
        path = tmp_path / "checkpoints" / f"checkpoint-{step}"
        path.mkdir(parents=True)
        save_file({"w": torch.zeros(64, 64)}, path / "adapter_model.safetensors")
        torch.save({"state": {}}, path / "optimizer.pt")
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    folder = tmp_path / "checkpoints"
    assert checkpoint_problem(folder / "checkpoint-8") is None
    (folder / "checkpoint-8" / "trainer_state.json").write_text('{"global_st')  # killed while it was written
    weights = folder / "checkpoint-6" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # weights short of their declared size
    optimizer = folder / "checkpoint-4" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:50])
    assert checkpoint_problem(folder / "checkpoint-8") == "trainer_state.json is missing or torn"
    assert checkpoint_problem(folder / "checkpoint-6") == "adapter_model.safetensors is torn"
    assert checkpoint_problem(folder / "checkpoint-4") == "optimizer.pt is torn"
    assert last_checkpoint(folder) == str(folder / "checkpoint-2")
    printed = capsys.readouterr().out
    assert printed.count("not a whole checkpoint") == 3 and "checkpoint-8" in printed

    log = tmp_path / "loss.csv"
    log.write_text("step,loss,learning_rate,supervised_tok_s,seconds\n1,2.5,0.1,9,1\n2,2.4,0.1,9,2\n3,2.3,0.1,9,3\n4,2.")
    trim_log(log, 2)
    assert log.read_text().splitlines() == ["step,loss,learning_rate,supervised_tok_s,seconds", "1,2.5,0.1,9,1",
                                            "2,2.4,0.1,9,2"]
    trim_log(log, 0)  # a fresh start
    assert not log.exists()


def test_the_seed_decides_the_adapter(tiny, corpus, tmp_path):
    from safetensors.numpy import load_file

    def adapter(name, seed):
        train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / name), max_steps=1, seed=seed,
                          threads=1))
        return load_file(tmp_path / name / "adapter" / "adapter_model.safetensors")

    first, again, other = adapter("a", 0), adapter("b", 0), adapter("c", 1)
    assert all((first[k] == again[k]).all() for k in first)  # --seed reproduces a run
    assert any((first[k] != other[k]).any() for k in first)


def test_full_fine_tuning(tiny, corpus, tmp_path):
    summary = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path), lora=False, max_steps=2))
    assert not summary["lora"] and (tmp_path / "full" / "model.safetensors").exists()


def test_length_batches_keep_lengths_together_in_a_shuffled_order():
    from fireflan.train.data import length_batches

    lengths = [(i * 37) % 101 for i in range(400)]
    order = length_batches(lengths, 4, seed=0)
    assert sorted(order) == list(range(400))  # every record once
    batches = [order[i:i + 4] for i in range(0, 400, 4)]
    spread = [max(lengths[j] for j in b) - min(lengths[j] for j in b) for b in batches]
    assert max(spread) <= 2  # similar lengths in each batch: little padding
    means = [sum(lengths[j] for j in b) / 4 for b in batches]
    # not sorted, neither overall nor in 50-batch blocks: the last batches before step 50 are not all the shortest
    assert means != sorted(means) and means != sorted(means, reverse=True)
    assert sum(means[40:50]) / 10 > min(means) + 20
    assert length_batches(lengths, 4, seed=0) == order and length_batches(lengths, 4, seed=1) != order


# --------------------------------------------------------------------------- corpus show: the loss mask made visible

def _one_record_corpus(corpus, tmp_path, pick) -> tuple[dict, object]:
    records = [json.loads(line) for line in (corpus / "train.jsonl").read_text().splitlines()]
    record = next(r for r in records if pick(r))
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(record) + "\n")
    return record, path


@pytest.mark.parametrize("kind", ["react", "cot", "negative"])
def test_corpus_show_marks_exactly_what_the_trainer_trains_on(tiny, corpus, tmp_path, monkeypatch, kind):
    """One training step on a one-record corpus, its batch captured inside the trainer's loss: the tokens
    `corpus show` marks trained are exactly the positions whose labels the loss reads."""
    import fireflan.train.trainer as trainer_module
    from fireflan.corpus.show import load_tokenizer, view

    picks = {"react": lambda r: r["meta"]["method"] == "react" and not r["meta"]["negative"]
             and sum(m["role"] == "assistant" for m in r["messages"]) >= 3,
             "cot": lambda r: r["meta"]["method"] == "cot",
             "negative": lambda r: bool(r["meta"]["negative"])}
    record, path = _one_record_corpus(corpus, tmp_path, picks[kind])
    seen = []
    make = trainer_module.make_trainer_class

    def capturing():
        class Capturing(make()):
            def compute_loss(self, model, inputs, *args, **kwargs):
                seen.append((inputs["input_ids"][0].tolist(), inputs["labels"][0].tolist()))
                return super().compute_loss(model, inputs, *args, **kwargs)
        return Capturing

    monkeypatch.setattr(trainer_module, "make_trainer_class", capturing)
    train(TrainConfig(corpus=str(path), base=str(tiny), out=str(tmp_path / "model"), max_steps=1, batch_size=1,
                      save_steps=100))
    ids, labels = seen[0]
    shown = view(load_tokenizer(str(tiny)), record)
    assert [t.id for t in shown.tokens] == ids
    assert [t.kind == "trained" for t in shown.tokens] == [lab != IGNORE for lab in labels]
    assert shown.counts["trained"] == sum(lab != IGNORE for lab in labels) > 0
    assert shown.counts["tokens"] == sum(shown.counts[k] for k in ("trained", "assistant", "observation", "prompt"))
    if kind == "react":
        assert shown.counts["observation"] > 0
        observed = "".join(t.text for t in shown.tokens if t.kind == "observation")
        assert "Observation:" in observed and "Action:" not in observed


def test_a_model_turn_with_no_loss_is_shown_apart(tiny):
    from fireflan.corpus.show import load_tokenizer, to_html, view

    messages = [{**m, "loss": False} if i == 2 else m for i, m in enumerate(CHAT)]
    shown = view(load_tokenizer(str(tiny)), {"messages": messages, "meta": {"id": "hand-made"}})
    untrained = "".join(t.text for t in shown.tokens if t.kind == "assistant")
    assert "search[Aldo Brenik]" in untrained and "finish[Velmora]" not in untrained
    trained = "".join(t.text for t in shown.tokens if t.kind == "trained")
    assert trained.startswith("Thought: Found it.") and "<start_of_turn>" not in trained
    page = to_html(shown)
    assert page.count('<span class="ff-trained" title=') == shown.counts["trained"] and "hand-made" in page


def test_corpus_show_on_the_command_line(tiny, corpus, tmp_path, capsys):
    from fireflan.cli import main

    page = tmp_path / "record.html"
    main(["corpus", "show", str(corpus), "--index", "2", "--base", str(tiny), "--html", str(page)])
    out = capsys.readouterr().out
    assert "trained (" in out and "observation" in out and page.read_text().startswith("<!doctype html>")
    assert "[[Thought:" in out or "[[Action:" in out  # piped: the trained runs bracketed
    first = json.loads((corpus / "train.jsonl").read_text().splitlines()[0])["meta"]["id"]
    main(["corpus", "show", str(corpus), "--id", first, "--base", str(tiny)])
    assert capsys.readouterr().out.splitlines()[-2].startswith(f"{first}:")
    for bad, said in ((["--id", "no-such-record"], "no record has id 'no-such-record'"),
                      (["--index", "100000"], "--index 100000 is out of range")):
        with pytest.raises(SystemExit) as stop:
            main(["corpus", "show", str(corpus), "--base", str(tiny), *bad])
        assert stop.value.code == 2 and said in capsys.readouterr().err


def test_the_plan_counts_parameters_as_the_published_models_have_them():
    from fireflan.train import plan

    every = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj".split(",")
    published = {"google/gemma-3-270m": 268_098_176, "meta-llama/Llama-3.1-8B-Instruct": 8_030_261_248,
                 "Qwen/Qwen2.5-0.5B-Instruct": 494_032_768, "meta-llama/Llama-3.2-1B-Instruct": 1_235_814_400}
    for name, total in published.items():
        shape, source = plan.read_shape(name)
        assert plan.parameters(shape)["total"] == total and "architectures.json" in source
    llama, _ = plan.read_shape("unsloth/Meta-Llama-3.1-8B-Instruct-bnb-4bit")  # a 4-bit upload: its original's
    assert plan.lora_parameters(llama, 16, every) == 41_943_040  # what PEFT reports for r=16 on all projections
    assert plan.lora_parameters(plan.read_shape("embedded")[0], 16, every) == 3_796_992
    with pytest.raises(ValueError, match="target-modules"):
        plan.lora_parameters(llama, 16, ["qkv"])
    with pytest.raises(ValueError, match="--base no/such-model"):
        plan.read_shape("no/such-model")


def test_the_plan_for_an_8b_model_in_4_bit_on_a_16_gb_gpu():
    """QLoRA keeps the 8B's linear weights in 4 bits (about 5.3 GiB with the 16-bit embeddings); the activations of
    2 x 2,048 tokens fit in 16 GiB only with activation checkpointing."""
    from fireflan.train import plan

    shape, _ = plan.read_shape("meta-llama/Llama-3.1-8B-Instruct")
    kwargs = dict(backend="unsloth", lora=True, rank=16, targets=["q_proj", "v_proj"], batch=2, length=2048,
                  loss_share=0.5)
    free = plan.estimate(shape, checkpointing=False, **kwargs)
    saved = plan.estimate(shape, checkpointing=True, **kwargs)
    assert 5.0 < free["terms"]["weights"] / plan.GIB < 5.6
    assert free["peak"] > 16 * plan.GIB > saved["peak"] and saved["terms"]["weights"] == free["terms"]["weights"]
    cpu = plan.estimate(shape, checkpointing=False, **{**kwargs, "backend": "trl"})
    assert cpu["terms"]["weights"] == 4 * cpu["parameters"]  # fp32 on the CPU
    lines = plan.describe("meta-llama/Llama-3.1-8B-Instruct", "table", "unsloth", free, 16 * plan.GIB, "16 GiB", "x")
    assert "does NOT fit in 16 GiB" in lines[-1] and "--gradient-checkpointing" in lines[-1]


def test_train_plan_prints_and_loads_nothing(corpus, tmp_path):
    out = tmp_path / "never"
    started = time.perf_counter()
    result = run_cli("train", "--plan", "--corpus", str(corpus), "--base", "embedded", "--out", str(out),
                     "--batch-size", "2", "--memory-gb", "0.5")
    assert result.returncode == 0, result.stderr
    assert "parameters 268.1 M, trainable 3.80 M" in result.stdout and "does NOT fit in 0.5 GiB" in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["fits"] is False and figures["peak"] == sum(figures["terms"].values())
    assert not out.exists() and time.perf_counter() - started < 30  # no model was loaded, nothing written


def test_training_starts_from_an_earlier_adapter(tiny, corpus, tmp_path):
    from safetensors.numpy import load_file

    from fireflan.io import DataError

    first = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "a"), max_steps=3, lr=3e-3,
                              threads=1))
    again = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "b"), max_steps=3, lr=3e-3,
                              threads=1, init_adapter=first["saved"]))
    fresh = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "c"), max_steps=3, lr=3e-3,
                              threads=1))
    rows = {n: [float(r.split(",")[1]) for r in (tmp_path / n / "loss.csv").read_text().splitlines()[1:]]
            for n in "abc"}
    assert rows["b"][0] < rows["c"][0]  # it continues where the first run stopped, not from fresh weights
    weights = [load_file(tmp_path / n / "adapter" / "adapter_model.safetensors") for n in "bc"]
    assert any((weights[0][k] != weights[1][k]).any() for k in weights[0])
    with pytest.raises(DataError, match="rank 16"):
        train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "d"), max_steps=1, rank=8,
                          threads=1, init_adapter=first["saved"]))
    with pytest.raises(DataError, match="not a LoRA adapter folder"):
        train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "e"), max_steps=1, threads=1,
                          init_adapter=str(tmp_path)))
    assert fresh["steps"] == again["steps"] == 3
    with pytest.raises(ValueError, match=r"holds a run with other settings \(lr: 0.003 -> 0.001\)"):
        train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "a"), max_steps=4, lr=1e-3, threads=1))
    same = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "a"), max_steps=3, lr=3e-3,
                             threads=2))  # the same run (threads may differ): resumed from its last checkpoint
    assert same["steps"] == 3 and same["resumed_from"]
    more = train(TrainConfig(corpus=str(corpus), base=str(tiny), out=str(tmp_path / "a"), max_steps=5, lr=3e-3,
                             threads=1))  # a finished run asked for more steps trains on from its last checkpoint
    assert more["steps"] == 5 and more["resumed_from"].endswith("checkpoint-3")
    assert len((tmp_path / "a" / "loss.csv").read_text().splitlines()) == 1 + 5  # each step logged once
