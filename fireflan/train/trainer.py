"""Train: supervised fine-tuning on a corpus, LoRA (or full), on CPU with TRL + PEFT or on a CUDA GPU
with Unsloth's 4-bit QLoRA. The same data path and options for both.

    python -m fireflan train --corpus runs/corpus --base embedded --out runs/model
    python -m fireflan train --corpus runs/corpus --base tiny --out runs/tiny --max-steps 20

Where a CPU step spends its time is the 262k-word output layer, so fireflan's trainer
(`fast=True`, the default) computes it only at the positions that carry loss, groups records of
similar length into a batch (little padding), and uses every core. Checkpoints go to
OUT/checkpoints; a killed run resumes from the last one. The loss curve is OUT/loss.csv and
OUT/loss.png; the adapter OUT/adapter (or the weights OUT/full); OUT/train.json says what was done.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from fireflan.agent.toolcalls import ACTION_FORMATS
from fireflan.io import DataError, whole, write_json
from fireflan.options import guard_run, one_run_per_folder, opt
from fireflan.report.plots import loss_plot
from fireflan.train import plan
from fireflan.train.bases import CHAT_TEMPLATE, END, MARKER, resolve_base
from fireflan.train.data import length_batches, read_corpus, tokenize_corpus

SCHEMA_TRAIN = "fireflan.train/1"
BACKENDS = ("auto", "trl", "unsloth")


@dataclass
class TrainConfig:
    """Options of `fireflan train`."""

    corpus: str = opt("runs/corpus", "a corpus folder (train.jsonl, val.jsonl) or one JSONL file")
    base: str = opt("embedded", "embedded | tiny | a Hugging Face model id or folder")
    out: str = opt("runs/model", "the model folder to write")
    backend: str = opt("auto", "auto (unsloth on a CUDA GPU, else trl) | trl | unsloth")
    lora: bool = opt(True, "LoRA adapters (False: full fine-tuning)")
    rank: int = opt(16, "LoRA rank")
    alpha: int = opt(32, "LoRA alpha")
    dropout: float = opt(0.0, "LoRA dropout")
    target_modules: str = opt("q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj", "LoRA target modules")
    lr: float = opt(2e-4, "peak learning rate (cosine schedule after warm-up)")
    warmup_ratio: float = opt(0.03, "share of steps spent warming up")
    epochs: float = opt(1.0, "passes over the corpus (ignored when --max-steps is given)")
    max_steps: int | None = opt(None, "optimizer steps (None: --epochs' worth)")
    batch_size: int = opt(4, "records per step (per device)")
    grad_accum: int = opt(1, "gradient accumulation steps")
    max_length: int = opt(1024, "records longer than this many tokens are left out and reported")
    save_steps: int = opt(25, "checkpoint every N steps")
    seed: int = opt(0, "seed of initialisation and data order")
    init_adapter: str | None = opt(None, "a LoRA adapter folder (an earlier run's OUT/adapter) whose weights training "
                                         "starts from, instead of fresh ones (LoRA only; the same rank and modules)")
    threads: int | None = opt(None, "CPU threads (None: all cores)")
    fast: bool = opt(True, "output layer only where the loss is, length-grouped batches (False: plain SFTTrainer)")
    gradient_checkpointing: bool = opt(False, "trade compute for memory")
    limit: int | None = opt(None, "train on the first N records only (None: all)")
    plan: bool = opt(False, "print what the run will take (parameters, trainable ones, the peak memory of a step and "
                            "whether it fits) and stop, loading nothing")
    memory_gb: float | None = opt(None, "with --plan: the device memory to plan for, in GiB (None: this machine's GPU "
                                             "or RAM)")
    action_format: str = opt("react", "how the model writes its actions: react (Action: search[X]) | hermes "
                                      "(OpenAI tool calls, <tool_call>{...}</tool_call>, which llama.cpp's server "
                                      "and Ollama parse)")


# --------------------------------------------------------------------------- choices (pure)

def choose_backend(requested: str, cuda: bool, unsloth_installed: bool) -> str:
    """'auto' -> 'unsloth' on a CUDA machine with unsloth installed, else 'trl'. Asking for unsloth
    without CUDA is an error (Unsloth needs a GPU), as is asking for it when it is not installed."""
    if requested not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, got {requested!r}")
    if requested == "auto":
        return "unsloth" if cuda and unsloth_installed else "trl"
    if requested == "unsloth" and not cuda:
        raise ValueError("the unsloth backend needs a CUDA GPU; use --backend trl on this machine")
    if requested == "unsloth" and not unsloth_installed:
        raise ValueError("unsloth is not installed: pip install 'fireflan[gpu,infer]' on the GPU machine")
    return requested


def corpus_files(corpus) -> tuple[Path, Path | None]:
    """(train file, validation file or None) of a corpus folder or a single JSONL file."""
    path = Path(corpus)
    if path.is_dir():
        train, val = whole(path) / "train.jsonl", path / "val.jsonl"
        if not train.exists():
            raise DataError(train, "no such file (a corpus folder holds train.jsonl)")
        return train, (val if val.exists() and val.stat().st_size else None)
    if not path.exists():
        raise DataError(path, "no such file")
    return path, None


# --------------------------------------------------------------------------- loading

def unsloth_options(config: TrainConfig, base: str) -> tuple[dict, dict]:
    """(FastLanguageModel.from_pretrained's arguments, get_peft_model's) for a run: 4-bit weights under
    LoRA (QLoRA), 16-bit ones for full fine-tuning; Unsloth's own activation checkpointing only when asked
    (from_pretrained turns it on by default, which is all a full fine-tune gets); a folder fireflan built keeps
    its tokenizer (Unsloth's fix_tokenizer may load another, without fireflan's whitespace handling)."""
    checkpointing = "unsloth" if config.gradient_checkpointing else False
    load = dict(model_name=base, max_seq_length=config.max_length, dtype=None, load_in_4bit=config.lora,
                full_finetuning=not config.lora, use_gradient_checkpointing=checkpointing,
                fix_tokenizer=not (Path(base) / MARKER).is_file())
    lora = dict(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, bias="none",
                target_modules=config.target_modules.split(","), random_state=config.seed,
                use_gradient_checkpointing=checkpointing)
    return load, lora


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """os.environ with VALUES for the length of the block, as it was after it."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def offline_env(base: str) -> dict[str, str]:
    """The environment Unsloth should load BASE in: a folder on this machine needs no network, and Unsloth's
    from_pretrained otherwise asks the hub (for statistics, and whether the name is a repository; up to 120 s
    where there is none). Set only where not set already, and only while Unsloth imports and loads (the rest of a
    recipe's process may read the hub); a hub id gets nothing ('embedded' and 'tiny' are folders this machine
    builds)."""
    if base not in ("embedded", "tiny") and not Path(base).is_dir():
        return {}
    return {k: v for k, v in (("HF_HUB_OFFLINE", "1"), ("UNSLOTH_DISABLE_STATISTICS", "1")) if k not in os.environ}


def load_model(config: TrainConfig, base: str, backend: str):
    """(model ready to train, tokenizer) for the backend."""
    if backend == "unsloth":  # GPU only: imported nowhere else
        from unsloth import FastLanguageModel

        load, lora = unsloth_options(config, base)
        model, tokenizer = FastLanguageModel.from_pretrained(**load)
        if config.lora:
            model = FastLanguageModel.get_peft_model(model, **lora)
        FastLanguageModel.for_training(model)
    else:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        if config.lora:
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(
                r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, task_type="CAUSAL_LM",
                target_modules=config.target_modules.split(",")))
    return model, prepare_tokenizer(tokenizer, base)


def prepare_tokenizer(tokenizer, base):
    """The base's tokenizer as training uses it: fireflan's chat template where it has none, a pad token."""
    if tokenizer.chat_template is None:
        if END not in tokenizer.get_vocab():
            raise ValueError(f"{base} has no chat template and no {END} token: give it a chat template first")
        tokenizer.chat_template = CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --------------------------------------------------------------------------- the trainer

def make_trainer_class():
    """SFTTrainer with the loss computed at loss-bearing positions only (built lazily: TRL is heavy)."""
    import torch
    import torch.nn.functional as F
    from trl import SFTTrainer

    class FireflanTrainer(SFTTrainer):
        """`fast`: run the backbone, then the output layer only where labels are set.

        Same loss as the full forward (mean over loss tokens), a fraction of the output-layer work:
        on ReAct chats about half the positions are question and observations.
        """

        fast = True  # length-grouped batches
        fast_loss = True  # the output layer at loss positions only (the trl backend; Unsloth has its own loss)
        supervised_tokens = 0

        def _get_train_sampler(self, train_dataset=None):
            if not self.fast:
                return super()._get_train_sampler(train_dataset)
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            lengths = [len(ids) for ids in dataset["input_ids"]]
            return LengthBatches(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                 self.args.seed)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs["labels"][:, 1:]
            mask = labels != -100
            if model.training:
                self.supervised_tokens += int(mask.sum())
            if not (self.fast and self.fast_loss):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            causal = model.get_base_model() if hasattr(model, "get_base_model") else model
            backbone = getattr(causal, causal.base_model_prefix)
            hidden = backbone(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
                              use_cache=False).last_hidden_state[:, :-1]
            logits = causal.get_output_embeddings()(hidden[mask]).float()
            softcap = getattr(causal.config.get_text_config(), "final_logit_softcapping", None)
            if softcap:
                logits = torch.tanh(logits / softcap) * softcap
            total = F.cross_entropy(logits, labels[mask], reduction="sum")
            count = num_items_in_batch if num_items_in_batch is not None else mask.sum().clamp(min=1)
            loss = total / torch.as_tensor(count, device=total.device)
            return (loss, None) if return_outputs else loss

    class LengthBatches(torch.utils.data.Sampler):
        """`length_batches` as a sampler: the Trainer sets the epoch, so each epoch has its own order and a
        resumed run sees the same order again."""

        def __init__(self, lengths, batch_size, seed):
            self.lengths, self.batch_size, self.seed, self.epoch = lengths, batch_size, seed, 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self):
            return len(self.lengths)

        def __iter__(self):
            return iter(length_batches(self.lengths, self.batch_size, self.seed + self.epoch))

    return FireflanTrainer


def _callbacks(out: Path, trainer_ref: dict):
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        """Appends (step, loss, lr, supervised tokens/s, seconds) to OUT/loss.csv at each log."""

        def __init__(self):
            self.started = time.time()
            self.path = out / "loss.csv"

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            trainer = trainer_ref["trainer"]
            elapsed = time.time() - self.started
            tok_s = trainer.supervised_tokens / max(elapsed, 1e-9)
            logs["supervised_tok_s"] = round(tok_s, 1)
            new = not self.path.exists()
            with self.path.open("a", newline="") as f:
                w = csv.writer(f)
                if new:
                    w.writerow(["step", "loss", "learning_rate", "supervised_tok_s", "seconds"])
                w.writerow([state.global_step, logs["loss"], logs.get("learning_rate", ""), round(tok_s, 1),
                            round(elapsed, 1)])

    class ReleaseMemory(TrainerCallback):
        """Hands freed heap memory back to the system after each step. Batches of varying length leave
        glibc's heap fragmented and the resident size creeping up over a long CPU run; malloc_trim
        releases it (Linux with glibc only; elsewhere nothing happens)."""

        def __init__(self):
            import ctypes
            import ctypes.util

            name = ctypes.util.find_library("c")
            libc = ctypes.CDLL(name) if name else None
            self.trim = getattr(libc, "malloc_trim", None)

        def on_step_end(self, args, state, control, **kwargs):
            if self.trim is not None:
                self.trim(0)

    return [LossLog(), ReleaseMemory()]


def plot_loss(out: Path) -> Path | None:
    """OUT/loss.png from OUT/loss.csv (training loss per step)."""
    return loss_plot(out / "loss.csv", out / "loss.png", title=f"fireflan train: {out.name}")


def sft_args(config: TrainConfig, out: Path, backend: str, **overrides):
    """The SFTConfig of a run: fp32 on CPU, no activation checkpointing unless asked, our own data
    preparation (the dataset arrives tokenized, with labels), length-grouped batches when fast."""
    import torch
    from trl import SFTConfig

    gpu = backend == "unsloth" and torch.cuda.is_available()  # 16-bit compute where Unsloth runs; fp32 on CPU
    options = dict(
        output_dir=str(out / "checkpoints"), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr, lr_scheduler_type="cosine", warmup_steps=config.warmup_ratio,
        num_train_epochs=config.epochs, max_steps=config.max_steps or -1, logging_steps=1,
        save_steps=config.save_steps, save_total_limit=2, seed=config.seed, data_seed=config.seed,
        bf16=gpu and torch.cuda.is_bf16_supported(), fp16=gpu and not torch.cuda.is_bf16_supported(),
        report_to="none", max_length=None,
        train_sampling_strategy="random",  # fast: FireflanTrainer's own length-grouped, shuffled batches
        dataset_kwargs={"skip_prepare_dataset": True}, remove_unused_columns=False,
        use_cpu=not torch.cuda.is_available())
    # transformers 5.2x names it activation_checkpointing; the 5.17 that Unsloth pins, gradient_checkpointing
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    options[checkpointing] = config.gradient_checkpointing and backend == "trl"  # Unsloth's model checkpoints itself
    options.update(overrides)
    return SFTConfig(**options)


def plan_run(config: TrainConfig) -> dict:
    """`--plan`: the run's parameters and peak memory, estimated from the base's shape (fireflan.train.plan),
    printed; nothing is loaded. --backend unsloth plans a GPU run even on a machine without one."""
    backend = config.backend
    if backend == "auto":
        backend = choose_backend("auto", cuda_available(), installed("unsloth"))
    shape, source = plan.read_shape(config.base)
    train_file = Path(config.corpus) / "train.jsonl" if Path(config.corpus).is_dir() else Path(config.corpus)
    length, loss_share, counted = plan.corpus_lengths(train_file, config.max_length)
    estimate = plan.estimate(shape, backend=backend, lora=config.lora, rank=config.rank,
                             targets=config.target_modules.split(","), batch=config.batch_size, length=length,
                             loss_share=loss_share, checkpointing=config.gradient_checkpointing)
    memory, memory_text = plan.device_memory(config.memory_gb, backend)
    print("\n".join(plan.describe(config.base, source, backend, estimate, memory, memory_text, counted)))
    return {"plan": estimate, "backend": backend, "memory": memory, "fits": estimate["peak"] <= memory}


@one_run_per_folder()
def train(config: TrainConfig) -> dict:
    """Run (or resume) training; returns and writes OUT/train.json (with --plan: the plan, nothing trained)."""
    if config.plan:
        return plan_run(config)
    import datasets
    import torch

    if config.action_format not in ACTION_FORMATS:  # before minutes of loading
        raise ValueError(f"--action-format must be one of {', '.join(ACTION_FORMATS)}, got {config.action_format!r}")
    started = time.time()
    out = Path(config.out)
    # a resumed run continues from the folder's checkpoints: they must be of this run (more steps may be asked)
    guard_run(out, config, may_change=("max_steps", "epochs", "save_steps", "threads", "backend", "out", "plan",
                                       "memory_gb", "gradient_checkpointing"), name="train-config.json")
    torch.set_num_threads(config.threads or os.cpu_count() or 1)
    unsloth_installed = installed("unsloth")
    backend = choose_backend(config.backend, cuda_available(), unsloth_installed)
    if config.backend == "auto" and backend == "trl" and not cuda_available() and shutil.which("nvidia-smi"):
        print("fireflan train: this machine has an NVIDIA GPU that torch does not see; training on the CPU "
              "(`fireflan doctor` says why)")
    with environment(offline_env(config.base) if backend == "unsloth" else {}):  # while Unsloth imports and loads
        if backend == "unsloth":  # before transformers and TRL, which Unsloth patches when it is imported
            import unsloth  # noqa: F401
        import trl  # noqa: F401  (here, not after minutes of loading: a missing extra is named at once)

        train_file, val_file = corpus_files(config.corpus)  # the corpus read before the model: bad input first
        records = read_corpus(train_file)[: config.limit]
        val_records = read_corpus(val_file) if val_file else []
        base = resolve_base(config.base)
        from transformers import set_seed

        set_seed(config.seed)  # before the adapter is made: its initial weights are drawn from this seed
        model, tokenizer = load_model(config, base, backend)
    examples, too_long = tokenize_corpus(records, tokenizer, config.max_length, config.action_format)
    if too_long:
        print(f"fireflan train: {len(too_long)} record(s) longer than {config.max_length} tokens left out "
              f"(not truncated), e.g. {too_long[:3]}")
    if not examples:
        raise ValueError(f"no record of {train_file} fits in {config.max_length} tokens")
    val_examples = tokenize_corpus(val_records, tokenizer, config.max_length, config.action_format)[0]

    args = sft_args(config, out, backend)
    trainer_ref = {}
    Trainer = make_trainer_class()
    Trainer.fast = config.fast
    Trainer.fast_loss = backend == "trl"  # on a GPU, TRL's and Unsloth's losses already skip unlabelled positions
    trainer = Trainer(model=model, args=args, processing_class=tokenizer,
                      train_dataset=datasets.Dataset.from_list(examples),
                      eval_dataset=datasets.Dataset.from_list(val_examples) if val_examples else None,
                      callbacks=_callbacks(out, trainer_ref))
    trainer_ref["trainer"] = trainer
    resume = last_checkpoint(out / "checkpoints")
    if config.init_adapter and not resume:  # a resumed run has these weights, trained further, in its checkpoint
        start_from_adapter(trainer.model, config)
    state = json.loads((Path(resume) / "trainer_state.json").read_text()) if resume else {}
    trim_log(out / "loss.csv", state.get("global_step", 0))
    if state and state["global_step"] >= planned_steps(trainer, args):  # killed after its last step, before it saved
        steps, train_loss, train_seconds = state["global_step"], _mean_loss(out / "loss.csv"), 0.0
        load_weights(trainer.model, Path(resume), config.lora)  # (the Trainer would take further steps)
    else:
        result = trainer.train(resume_from_checkpoint=resume)
        steps, train_loss = trainer.state.global_step, result.training_loss
        train_seconds = result.metrics.get("train_runtime", 0.0)
    metrics = trainer.evaluate() if val_examples else {}

    saved = out / ("adapter" if config.lora else "full")
    trainer.model.save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    plot_loss(out)
    summary = {
        "schema": SCHEMA_TRAIN, "base": base, "base_name": config.base, "lora": config.lora,
        "action_format": config.action_format, "backend": backend,
        "saved": str(saved), "resumed_from": resume, "steps": steps,
        "train_loss": round(train_loss, 4), "val_loss": round(metrics.get("eval_loss", float("nan")), 4)
        if val_examples else None,
        "records": len(examples), "too_long": too_long, "supervised_tokens": trainer.supervised_tokens,
        "seconds": round(time.time() - started, 1),
        "train_seconds": round(train_seconds, 1),
        "config": asdict(config),
    }
    write_json(out / "train.json", summary)
    return summary


def planned_steps(trainer, args) -> int:
    """The optimizer steps this run asks for: --max-steps, or the epochs' worth of batches (as the
    Trainer counts them). A checkpoint at or past it is finished; a run asked for more trains on."""
    if args.max_steps > 0:
        return args.max_steps
    batches = len(trainer.get_train_dataloader())
    return math.ceil(args.num_train_epochs * max(math.ceil(batches / args.gradient_accumulation_steps), 1))


def last_checkpoint(folder: Path) -> str | None:
    """The newest whole checkpoint, or None. A run killed while it saved one leaves it without its
    trainer state, or with a torn file; that one is passed over (with a message) for the one before."""
    if not folder.exists():
        return None
    for path in sorted(folder.glob("checkpoint-*[0-9]"), key=lambda p: int(p.name.split("-")[1]), reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return str(path)
        print(f"fireflan train: {path} is not a whole checkpoint ({problem}); not resumed from")
    return None


def checkpoint_problem(path: Path) -> str | None:
    """What is wrong with a Trainer checkpoint folder, or None when it is whole: its trainer state must
    parse (the Trainer writes it last), its weights must be whole safetensors, and a saved optimizer
    state must be a whole torch archive (a zip file, its directory at the end)."""
    import zipfile

    try:
        json.loads((path / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return "trainer_state.json is missing or torn"
    weights = [w for w in ("adapter_model.safetensors", "model.safetensors") if (path / w).is_file()]
    if not weights:
        return "no weights"
    for name in weights:
        if not whole_safetensors(path / name):
            return f"{name} is torn"
    for name in ("optimizer.pt", "scheduler.pt"):
        if (path / name).exists() and not zipfile.is_zipfile(path / name):
            return f"{name} is torn"
    return None


def whole_safetensors(path: Path) -> bool:
    """Whether a safetensors file holds all it declares: an 8-byte header length, a JSON header, and
    every tensor's bytes (the largest end offset) after it."""
    try:
        with path.open("rb") as f:
            size = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(size))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
        return path.stat().st_size >= 8 + size + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return False


def load_weights(model, checkpoint: Path, lora: bool) -> None:
    """A finished checkpoint's trained weights into the model: the adapter (LoRA) or all of them."""
    from safetensors.torch import load_file

    if lora:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(checkpoint / "adapter_model.safetensors"))
    else:
        model.load_state_dict(load_file(checkpoint / "model.safetensors"), strict=False)


def adapter_layout(shapes: dict[str, list[int]]) -> dict:
    """{"r", "target_modules"} of a LoRA adapter from its weights' names and shapes (A is rank x input):

    {'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight': [16, 640], ...}
    -> {'r': 16, 'target_modules': ['q_proj', ...]}  (r None when the ranks differ or there is no A)
    """
    a = {name.split(".lora_A.")[0].rsplit(".", 1)[-1]: shape[0] for name, shape in shapes.items() if ".lora_A." in name}
    ranks = set(a.values())
    return {"r": ranks.pop() if len(ranks) == 1 else None, "target_modules": sorted(a)}


def start_from_adapter(model, config: TrainConfig) -> None:
    """Put an earlier run's adapter weights into the fresh LoRA model (a later round continues from the
    last); the folder must hold an adapter of the same rank on the same modules."""
    folder = Path(config.init_adapter)
    weights, settings = folder / "adapter_model.safetensors", folder / "adapter_config.json"
    if not config.lora:
        raise ValueError("--init-adapter starts LoRA training from an adapter; it does not apply to --lora false")
    if not weights.is_file() or not settings.is_file():
        raise DataError(folder, "not a LoRA adapter folder (adapter_model.safetensors and adapter_config.json)")
    from peft import set_peft_model_state_dict
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(weights, "pt") as f:  # the weights say what the adapter is; adapter_config.json's target_modules
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}  # may be Unsloth's regular expression
    found = adapter_layout(shapes)
    wanted = {"r": config.rank, "target_modules": sorted(config.target_modules.split(","))}
    if found != wanted:
        raise DataError(settings, f"an adapter of rank {found['r']} on {found['target_modules']}; this run trains "
                                  f"rank {wanted['r']} on {wanted['target_modules']} (give the same --rank and "
                                  f"--target-modules)")

    loaded = set_peft_model_state_dict(model, load_file(weights))
    if loaded.unexpected_keys:
        raise DataError(weights, f"{len(loaded.unexpected_keys)} weights fit no module of this base, e.g. "
                                 f"{loaded.unexpected_keys[0]} (an adapter of another base?)")


def _mean_loss(path: Path) -> float:
    """The mean training loss in OUT/loss.csv (what the Trainer reports as training_loss); NaN if none."""
    losses = [float(r["loss"]) for r in csv.DictReader(path.read_text().splitlines())] if path.exists() else []
    return sum(losses) / len(losses) if losses else float("nan")


def trim_log(path: Path, step: int) -> None:
    """Keep OUT/loss.csv's whole rows up to `step` (where training resumes; 0: a fresh start), so a
    killed run's rows after its last checkpoint are not logged twice."""
    if not path.exists():
        return
    rows = list(csv.reader(path.read_text().splitlines()))
    kept = [r for r in rows[1:] if len(r) == len(rows[0]) and r[0].isdigit() and int(r[0]) <= step]
    if not kept:
        path.unlink()
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", newline="") as f:
        csv.writer(f).writerows([rows[0], *kept])
    os.replace(tmp, path)


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
