"""Corpus: trajectories (and imported data) -> chat records for SFT, mixed as asked, with stats.

    python -m fireflan corpus runs/teach/trajectories.jsonl --out runs/corpus
    python -m fireflan corpus runs/teach/trajectories.jsonl --out runs/corpus-flan --style agentflan \\
        --capabilities format=0.4,reasoning=0.2,retrieval=0.2,understanding=0.2 \\
        --negatives notool_with_tools=0.05,no_tools=0.05,bad_observation=0.1
    python -m fireflan corpus ../shared/data/fireact/gpt_format_hotpotqa.jsonl --out runs/corpus-fireact
    python -m fireflan corpus runs/teach/trajectories.jsonl --out runs/corpus-tools --format openai-tools

Steps, each a pure function over lists of records:
1. read: successful trajectories (fireflan.trajectory/1), or FireAct / AgentInstruct files;
2. mix: subsample to the asked task and method shares;
3. capabilities: give each record the capability (loss mask) that keeps the asked mix;
4. roles and negatives: add each kind at its share of the final corpus (roles: judge and backtrack
   records for the inference methods, fireflan.corpus.roles);
5. general chat: mix in a user's chat JSONL at a ratio (off by default);
6. style, de-duplication, token-length cap, train/validation split by question;
7. write OUT/train.jsonl, OUT/val.jsonl (fireflan.chat/1, or with `--format openai-tools` OpenAI's
   fine-tuning shape with tool calls) and OUT/stats.json (realised mix and shares).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from fireflan.agent.loop import SCHEMA_TRAJECTORY, Trajectory
from fireflan.corpus.format import (
    CAPABILITIES,
    FORMATS,
    apply_mask,
    capability_mask,
    check_messages,
    openai_record,
    restyle,
    supported,
    trajectory_record,
)
from fireflan.corpus.importers import import_file
from fireflan.corpus.negatives import NEGATIVES, bad_observation, no_tools, notool_with_tools
from fireflan.corpus.roles import ROLES, make_roles
from fireflan.io import DataError, file_set, iter_jsonl, write_json, write_jsonl
from fireflan.options import one_run_per_folder, opt


@dataclass
class CorpusConfig:
    """Options of `fireflan corpus`."""

    inputs: str = opt("runs/teach/trajectories.jsonl",
                      "comma-separated: trajectories.jsonl files, FireAct gpt/alpaca files, conversations files")
    out: str = opt("runs/corpus", "folder for train.jsonl, val.jsonl and stats.json")
    style: str = opt("fireact", "fireact (FireAct's format) | agentflan (tools in a system turn, natural replies)")
    format: str = opt("fireflan", "how the files are written: fireflan (fireflan.chat/1 records) | openai-tools "
                                  "(OpenAI's fine-tuning shape: messages with tool_calls and tool turns, tools, "
                                  "weight on assistant turns)")
    capabilities: str = opt("format=1", "capability mix, e.g. format=0.4,reasoning=0.2,retrieval=0.2,understanding=0.2")
    tasks: str = opt("", "task mix, e.g. world=0.7,hotpotqa=0.3 (empty: as the inputs come)")
    methods: str = opt("", "method mix, e.g. react=0.6,cot=0.2,reflexion=0.2 (empty: as the inputs come)")
    negatives: str = opt("notool_with_tools=0.05,no_tools=0.05,bad_observation=0.05",
                         "negative kinds and their shares of the final corpus; empty for none")
    roles: str = opt("", "records of the inference methods' roles and their shares of the final corpus, e.g. "
                         "planner=0.1,subquestion=0.2,judge=0.2,backtrack=0.1 (fireflan.corpus.roles; the plans and "
                         "sub-episodes come from `teach --methods decompose`); empty for none")
    chat: str | None = opt(None, "a chat JSONL ({'messages': [...]}) of general data to mix in")
    chat_ratio: float = opt(0.0, "general chat records as a share of the final corpus")
    val_share: float = opt(0.05, "share of questions held out for validation")
    max_tokens: int = opt(2048, "records longer than this (estimated or counted tokens) are dropped")
    tokenizer: str | None = opt(None, "a Hugging Face tokenizer (name or folder) to count tokens; else chars/4")
    seed: int = opt(0, "seed of every sampling choice")


def parse_shares(spec: str, allowed=None, what: str = "mix") -> dict[str, float]:
    """'a=0.5,b=0.5' -> {'a': 0.5, 'b': 0.5}; '' -> {}"""
    out = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        name, sep, value = part.partition("=")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"--{what} expects name=number pairs, got {part!r}") from None
        if not sep or share < 0:
            raise ValueError(f"--{what} expects name=number pairs with numbers >= 0, got {part!r}")
        if allowed is not None and name.strip() not in allowed:
            raise ValueError(f"--{what}: unknown name {name.strip()!r}; choose from {', '.join(allowed)}")
        out[name.strip()] = share
    return out


# --------------------------------------------------------------------------- 1. read

def read_inputs(paths: list[str]) -> tuple[list, list[dict], dict]:
    """(successful trajectories, imported chat records, counts read)."""
    trajectories, imported, counts = [], [], Counter()
    for path in paths:
        path = Path(path)
        first = _first_record(path)
        if first.get("schema") == SCHEMA_TRAJECTORY:
            for n, rec in iter_jsonl(path):
                try:
                    traj = Trajectory.from_record(rec)
                except TypeError as e:
                    raise DataError(path, f"not a trajectory record ({e})", line=n) from None
                counts["trajectories"] += 1
                if traj.success:
                    trajectories.append(traj)
                else:
                    counts["failed_skipped"] += 1
        else:
            for rec in import_file(path):
                if str(rec["meta"].get("reward")).lower() in ("false", "0"):  # a failed episode: not a lesson
                    counts["failed_skipped"] += 1
                    continue
                rec["meta"].setdefault("question_id", rec["meta"]["id"])
                counts[f"imported:{path.name}"] += 1
                imported.append(rec)
    return trajectories, imported, dict(counts)


def _first_record(path: Path) -> dict:
    if path.suffix == ".jsonl":
        for _, rec in iter_jsonl(path):
            return rec
        raise DataError(path, "the file is empty")
    return {}


# --------------------------------------------------------------------------- 2. mix

def subsample(items: list, key, shares: dict[str, float], rng: random.Random) -> list:
    """The largest subsample whose `key` shares equal `shares` (items of unnamed keys dropped).

    Counts {a: 100, b: 10} with shares {a: 0.5, b: 0.5} -> 10 of each.
    """
    if not shares:
        return items
    groups = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    total = sum(shares.values())
    missing = [k for k, s in shares.items() if s > 0 and not groups.get(k)]
    if missing:
        raise ValueError(f"the mix asks for {missing} but the inputs have none; they have {sorted(groups)}")
    n = min(len(groups[k]) / (s / total) for k, s in shares.items() if s > 0)
    out = []
    for k, s in shares.items():
        group = groups.get(k, [])
        out += rng.sample(group, min(len(group), round(n * s / total)))
    return out


# --------------------------------------------------------------------------- 3. capabilities

def assign_capabilities(records: list[dict], shares: dict[str, float], rng: random.Random) -> list[dict]:
    """Give each record one capability (its loss mask) so that the realised mix follows `shares`.

    Greedy: each record takes, among the capabilities it supports, the one furthest below its target.
    """
    total = sum(shares.values())
    target = {c: s / total for c, s in shares.items() if s > 0}
    order = list(range(len(records)))
    rng.shuffle(order)
    # records that support few capabilities choose first, so the flexible ones fill the gaps
    options = [[c for c in supported(r["messages"]) if c in target] for r in records]
    order.sort(key=lambda i: len(options[i]))
    counts, out = Counter(), [None] * len(records)
    for n, i in enumerate(order, start=1):
        if not options[i]:
            continue
        c = max(options[i], key=lambda c: target[c] * n - counts[c])
        counts[c] += 1
        rec = records[i]
        frozen = _frozen_turns(rec)
        flags = capability_mask(rec["messages"], c)
        out[i] = {**rec, "messages": apply_mask(rec["messages"], flags, frozen),
                  "meta": {**rec["meta"], "capability": c}}
    return [r for r in out if r is not None]


def _frozen_turns(rec: dict) -> int:
    """Assistant turns that never carry loss (a failed Reflexion attempt, a failed first SQL): those
    before the last assistant turn that had loss=False in a full-loss record."""
    flags = [m["loss"] for m in rec["messages"] if m["role"] == "assistant"]
    return max((k + 1 for k, f in enumerate(flags) if not f), default=0)


# --------------------------------------------------------------------------- 4. negatives

def make_negatives(trajectories: list, shares: dict[str, float], n_positive: int, extra: int,
                   rng: random.Random) -> list[dict]:
    """Negatives of each kind, each at its share of the final corpus (positives + extra + negatives)."""
    total_share = sum(shares.values())
    if total_share >= 1:
        raise ValueError("negative shares must add up to less than 1")
    final = (n_positive + extra) / (1 - total_share)
    passages = []
    for traj in trajectories:
        for s in traj.steps:
            if s.action == "search" and not s.observation.startswith(("No page", "Could not")):
                passages.append((s.argument, s.observation))
    out = []
    for kind, share in shares.items():
        want = round(final * share)
        pool = list(trajectories)
        rng.shuffle(pool)
        made = []
        for traj in pool:
            if len(made) == want:
                break
            if kind == "bad_observation":
                rec = bad_observation(traj, rng, passages)
            else:
                rec = {"notool_with_tools": notool_with_tools, "no_tools": no_tools}[kind](traj, rng)
            if rec is not None:
                made.append(rec)
        out += made
    return out


# --------------------------------------------------------------------------- 5. general chat

def read_chat(path, n: int, rng: random.Random) -> list[dict]:
    """n records of general chat ({'messages': [...]}), loss on the assistant turns."""
    records = []
    for line, rec in iter_jsonl(path):
        messages = rec.get("messages")
        check_messages(messages, path, line)
        if messages[-1]["role"] != "assistant":
            raise DataError(path, "the last turn must be the assistant's", line=line, field="messages")
        msgs = [{"role": m["role"], "content": m["content"], "loss": m["role"] == "assistant"} for m in messages]
        records.append({"schema": "fireflan.chat/1", "messages": msgs, "meta": {
            "id": f"chat/{Path(path).stem}/{line}", "source": "chat", "task": "chat", "method": "chat",
            "capability": "general", "negative": None, "tools": False, "question_id": f"chat/{line}"}})
    rng.shuffle(records)
    return records[:n]


# --------------------------------------------------------------------------- 6. length, dedupe, split

def token_counter(tokenizer: str | None):
    """A function text -> token count: a Hugging Face tokenizer's, or an estimate of chars / 4."""
    if tokenizer is None:
        return lambda text: (len(text) + 3) // 4, "estimate: characters / 4"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer)
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"]), f"tokenizer: {tokenizer}"


def record_tokens(rec: dict, count) -> int:
    return sum(count(m["content"]) + 4 for m in rec["messages"])  # ~4 template tokens a turn


def dedupe(records: list[dict]) -> tuple[list[dict], int]:
    seen, out = set(), []
    for rec in records:
        key = hashlib.sha1(json.dumps(rec["messages"], sort_keys=True).encode()).hexdigest()
        if key not in seen:
            seen.add(key)
            out.append(rec)
    return out, len(records) - len(out)


def split_by_question(records: list[dict], val_share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Validation holds whole questions (all records of a question on one side), chosen by hash."""
    def held_out(qid: str) -> bool:
        h = int(hashlib.sha1(f"{seed}/{qid}".encode()).hexdigest()[:8], 16)
        return h / 0xFFFFFFFF < val_share

    train = [r for r in records if not held_out(r["meta"]["question_id"])]
    val = [r for r in records if held_out(r["meta"]["question_id"])]
    return train, val


# --------------------------------------------------------------------------- the stage

def shares_of(records: list[dict], field: str) -> dict[str, float]:
    counts = Counter(str(r["meta"].get(field)) for r in records)
    return {k: round(v / max(len(records), 1), 4) for k, v in sorted(counts.items())}


@one_run_per_folder()
def build_corpus(config: CorpusConfig) -> dict:
    rng = random.Random(config.seed)
    capability_mix = parse_shares(config.capabilities, CAPABILITIES, "capabilities")
    negative_mix = parse_shares(config.negatives, NEGATIVES, "negatives")
    role_mix = parse_shares(config.roles, ROLES, "roles")
    if sum(negative_mix.values()) + sum(role_mix.values()) + config.chat_ratio >= 1:
        raise ValueError("--negatives, --roles and --chat-ratio must add up to less than 1")
    if not capability_mix:
        raise ValueError("--capabilities must give at least one capability a share above 0")
    if config.format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {config.format!r}")
    if not 0 <= config.val_share < 1:
        raise ValueError(f"--val-share must be at least 0 and below 1 (a share of the questions), got "
                         f"{config.val_share}")
    if config.max_tokens < 1:
        raise ValueError(f"--max-tokens must be 1 or more, got {config.max_tokens}")

    # 1. read
    trajectories, imported, read = read_inputs([p.strip() for p in config.inputs.split(",") if p.strip()])
    positives = [trajectory_record(t) for t in trajectories if t.method != "decompose"] + imported  # (planner)
    if not positives:
        raise ValueError(f"no successful trajectories or importable records in {config.inputs}")
    # 2. mix by task and method
    positives = subsample(positives, lambda r: r["meta"]["task"], parse_shares(config.tasks, what="tasks"), rng)
    positives = subsample(positives, lambda r: r["meta"]["method"], parse_shares(config.methods, what="methods"),
                          rng)
    kept_ids = {r["meta"]["id"] for r in positives}
    trajectories = [t for t in trajectories if f"{t.id}/{t.method}/{t.seed}" in kept_ids or t.method == "decompose"]
    # 3. capabilities
    positives = assign_capabilities(positives, capability_mix, rng)
    # 5. (sized before negatives, so that negatives are a share of everything)
    chat = []
    if config.chat and config.chat_ratio > 0:
        n_chat = round(len(positives) * config.chat_ratio / max(1 - config.chat_ratio - sum(negative_mix.values())
                                                                - sum(role_mix.values()), 1e-9))
        chat = read_chat(config.chat, n_chat, rng)
    # 4. roles and negatives, each at its share of the final corpus
    final = (len(positives) + len(chat)) / (1 - sum(negative_mix.values()) - sum(role_mix.values()))
    replies = {s.argument: s.observation for t in trajectories for s in t.steps if s.action == "search"}
    role_records = make_roles(trajectories, role_mix, final, rng, replies.get) if role_mix else []
    negatives = make_negatives(trajectories, negative_mix, len(positives), len(chat) + len(role_records),
                               rng) if negative_mix else []
    # 6. style, dedupe, length
    records = [restyle(r, config.style) for r in positives + negatives] + role_records + chat
    records, duplicates = dedupe(records)
    count, counted_by = token_counter(config.tokenizer)
    lengths = [record_tokens(r, count) for r in records]
    kept = [r for r, n in zip(records, lengths, strict=True) if n <= config.max_tokens]
    kept_lengths = sorted(n for n in lengths if n <= config.max_tokens)
    rng.shuffle(kept)
    train, val = split_by_question(kept, config.val_share, config.seed)
    if not train:
        longest = f"; the shortest record has {min(lengths)} tokens, over --max-tokens {config.max_tokens}" \
            if records and not kept else ""
        raise ValueError(f"no training records would be written from {len(records)} record(s){longest}")

    # 7. write
    out = Path(config.out)
    shape = openai_record if config.format == "openai-tools" else (lambda r: r)
    agent = [r for r in kept if r["meta"]["negative"] is None and r["meta"]["source"] not in ("chat", "role")]
    role_kept = [r for r in kept if r["meta"]["source"] == "role"]
    stats = {
        "config": asdict(config), "read": read, "records": len(kept), "train": len(train), "val": len(val),
        "duplicates_removed": duplicates, "too_long_dropped": len(records) - len(kept),
        "tokens": {"counted_by": counted_by, "max_allowed": config.max_tokens,
                   "mean": round(sum(kept_lengths) / max(len(kept_lengths), 1), 1),
                   "p50": _pct(kept_lengths, 0.5), "p95": _pct(kept_lengths, 0.95),
                   "max": kept_lengths[-1] if kept_lengths else 0,
                   "total": sum(kept_lengths)},
        "capability_mix": {"asked": _norm(capability_mix), "realised": shares_of(agent, "capability")},
        "negative_shares": {"asked": negative_mix, "realised": {
            k: v for k, v in shares_of(kept, "negative").items() if k != "None"}},
        "role_shares": {"asked": role_mix, "realised": {
            k: round(v * len(role_kept) / max(len(kept), 1), 4) for k, v in shares_of(role_kept, "role").items()}},
        "judge_verdicts": {"yes": sum(r["meta"].get("verdict") is True for r in role_kept),
                           "no": sum(r["meta"].get("verdict") is False for r in role_kept)},
        "chat_share": {"asked": config.chat_ratio, "realised": round(len(chat) / max(len(kept), 1), 4)},
        "task_mix": shares_of(agent, "task"), "method_mix": shares_of(agent, "method"),
        "sources": shares_of(kept, "source"),
    }
    with file_set(out, "fireflan corpus"):  # train, val and their statistics from one run, or refused by name
        write_jsonl(out / "train.jsonl", [shape(r) for r in train])
        write_jsonl(out / "val.jsonl", [shape(r) for r in val])
        write_json(out / "stats.json", stats)
    return stats


def _norm(shares: dict[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {k: round(v / total, 4) for k, v in shares.items()}


def _pct(sorted_values: list[int], q: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))] if sorted_values else 0
