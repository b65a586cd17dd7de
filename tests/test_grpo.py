"""GRPO: the rewards on hand-written steps, the prompts as SFT renders them, and real runs on the tiny model.

The tiny base has random weights, and LoRA alone cannot move it (its tied output layer gives near-uniform
logits over 700 words), so `toy` first fine-tunes it fully, for a second, into what SFT would leave: a
model that answers the one question of a one-question world right or wrong, half and half. GRPO must then
learn, from the wiki's reward alone, to answer right.
"""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import ROOT

pytest.importorskip("trl", reason="the train extra is not installed (pip install -e '.[train]')")

from fireflan.agent.loop import Step, Trajectory  # noqa: E402
from fireflan.agent.toolcalls import TOOLS, task_tools, to_tool_calls  # noqa: E402
from fireflan.tasks.base import Example  # noqa: E402
from fireflan.tools.wiki import Page, Wiki  # noqa: E402
from fireflan.train.grpo import (  # noqa: E402
    GRPOConfig,
    WikiEnvironment,
    WikiReplay,
    environment_reward,
    format_reward,
    grpo,
    prompt_rows,
    states,
)

PAGES = {"Aldo Brenik": ["Aldo Brenik (born 1950) is a Drenlandic painter.", "Aldo Brenik was born in Velmora."],
         "Velmora": ["Velmora is a city in Drenland.", "It lies on the river Kest."]}
QUESTION = {"_id": "q1", "question": "Where was Aldo Brenik born?", "answer": "Velmora", "type": "single",
            "level": "easy", "supporting_facts": [["Aldo Brenik", 1]], "context": [[t, s] for t, s in PAGES.items()]}
OBSERVATION = " ".join(PAGES["Aldo Brenik"])
RIGHT, WRONG = "Action: finish[Velmora]", "Action: finish[Brenik]"


def trajectory(success=True, method="react", qid="q1") -> Trajectory:
    return Trajectory(id=qid, task="world", method=method, model="scripted", seed=0, question=QUESTION["question"],
                      gold="Velmora", answer="Velmora", success=success, score={"em": float(success)}, steps=[
                          Step("I need his page.", "search", "Aldo Brenik", OBSERVATION, ""),
                          Step("He was born in Velmora.", "finish", "Velmora", "Episode finished", "")])


def example() -> Example:
    return Example(id="q1", question=QUESTION["question"], answer="Velmora", task="world",
                   supporting_facts=QUESTION["supporting_facts"], context=QUESTION["context"])


def rows() -> list[dict]:
    return prompt_rows([trajectory()], [example()])[0]


def wiki() -> Wiki:
    return Wiki([Page(t, tuple(s)) for t, s in PAGES.items()])


def rewards(completions, row, hermes=False) -> list[float]:
    n = len(completions)
    return environment_reward(completions, [row["prompt"]] * n, answer=[row["answer"]] * n, task=[row["task"]] * n,
                              gold_pages=[row["gold_pages"]] * n, tool=WikiReplay(wiki()), hermes=hermes)


# --------------------------------------------------------------------------- prompts and rewards (pure)

def test_every_state_before_an_assistant_turn_is_a_prompt_with_what_the_reward_needs():
    question, after_search = states(trajectory())
    assert question == [{"role": "user", "content": QUESTION["question"]}]
    assert [m["role"] for m in after_search] == ["user", "assistant", "user"]
    assert after_search[2]["content"] == f"Observation: {OBSERVATION}"
    made, missing = prompt_rows([trajectory(), trajectory(method="cot"), trajectory(success=False),
                                 trajectory(qid="elsewhere")], [example()])
    assert [r["prompt"] for r in made] == [question, after_search]  # once each; failures and other methods left out
    assert made[0]["answer"] == "Velmora" and made[0]["question_id"] == "q1" and made[0]["task"] == "world"
    assert made[0]["gold_pages"] == [PAGES["Aldo Brenik"]] and missing == ["elsewhere"]
    alone, _ = prompt_rows([], [example()])  # no trajectories: each question alone
    assert [r["prompt"] for r in alone] == [question]


def test_format_reward_on_hand_written_steps():
    assert format_reward(["Thought: he was born there.\nAction: finish[Velmora]", "search[Velmora]",
                          [{"role": "assistant", "content": "Action: lookup[born]<end_of_turn>"}],
                          "Action: finish[Velmora]\nObservation: I made this up", "I think it is Velmora.",
                          "Action: search[Velmora"]) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    hermes = [[{"role": "assistant", "content": "I need it.", "tool_calls": [
                   {"type": "function", "function": {"name": "search", "arguments": {"query": "Velmora"}}}]},
               {"role": "tool", "name": "search", "content": "Velmora is a city."},
               {"role": "assistant", "content": "Final Answer: Velmora"}],
              [{"role": "assistant", "content": "It is Velmora."}]]
    assert format_reward(hermes, hermes=True) == [1.0, 0.0]


def test_environment_reward_runs_each_step_in_the_wiki():
    question, after_search = rows()
    # a right finish, a wrong one, a half-right span (0.5 EM + 0.5 F1), unparseable text
    assert rewards([RIGHT, WRONG, "Action: finish[Velmora city]", "Velmora, I think."], after_search) == \
        pytest.approx([1.0, 0.0, 0.5 * 2 / 3, 0.0])
    # a search that reaches the gold page earns progress; one that reaches another page, nothing
    assert rewards(["Thought: his page.\nAction: search[Aldo Brenik]", "Action: search[Velmora]",
                    "Action: lookup[born]"], question) == [0.2, 0.0, 0.0]
    # after the prompt has shown the gold page, reaching it again earns nothing
    assert rewards(["Action: search[Aldo Brenik]", "Action: lookup[born]"], after_search) == [0.0, 0.0]


def test_the_wiki_is_replayed_to_the_state_the_prompt_left_it_in():
    question, after_search = (row["prompt"] for row in rows())
    replay = WikiReplay(wiki())
    assert replay.run(after_search, "lookup", "Velmora") == "(Result 1 / 1) Aldo Brenik was born in Velmora."
    assert replay.run(question, "lookup", "born").startswith("No page is open")
    assert replay.run(after_search, "lookup", "Velmora").startswith("(Result 1 / 1)")  # from the cache, afresh


def test_a_multi_turn_episode_is_rewarded_for_its_answer_and_the_pages_it_reached():
    question, _ = rows()
    call = {"role": "assistant", "content": "I need his page.", "tool_calls": [
        {"type": "function", "function": {"name": "search", "arguments": {"query": "Aldo Brenik"}}}]}
    reply = {"role": "tool", "name": "search", "content": OBSERVATION}
    episodes = [[call, reply, {"role": "assistant", "content": "He was born there.\nFinal Answer: Velmora"}],
                [call, reply, {"role": "assistant", "content": "Final Answer: Kest"}],
                [call]]  # cut by the length limit before the reply: nothing reached
    assert rewards(episodes, question, hermes=True) == pytest.approx([1.2, 0.2, 0.0])


def test_the_environment_offers_the_hermes_tools_of_sft():
    from transformers.utils import get_json_schema

    for name in ("search", "lookup"):
        schema = get_json_schema(getattr(WikiEnvironment(wiki()), name))["function"]
        assert {k: schema[k] for k in ("name", "description", "parameters")} == TOOLS[name]["function"]
    env = WikiEnvironment(wiki())
    env.reset(prompt=to_tool_calls(rows()[1]["prompt"]))  # the prompt's search replayed
    assert env.lookup("Velmora") == "(Result 1 / 1) Aldo Brenik was born in Velmora."


def test_prompts_are_tokenized_as_in_sft(toy):
    """What TRL feeds the model (apply_chat_template, tokenized) is what SFT trained on up to the reply."""
    from transformers import AutoTokenizer

    from fireflan.train.data import encode

    tokenizer = AutoTokenizer.from_pretrained(toy / "base")
    for row in rows():
        prompt = row["prompt"]
        trl = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=True)
        ids, labels = encode(tokenizer, [*prompt, {"role": "assistant", "content": RIGHT, "loss": True}])
        assert trl["input_ids"] == ids[: labels.index(next(x for x in labels if x != -100))]
        env = WikiEnvironment(wiki())  # multi-turn: the tools as TRL declares them, from the environment's methods
        hermes = to_tool_calls(prompt)
        assert tokenizer.apply_chat_template(hermes, tools=[env.search, env.lookup], tokenize=False) == \
            tokenizer.apply_chat_template(hermes, tools=task_tools("world"), tokenize=False)


# --------------------------------------------------------------------------- real runs on the tiny model

def _fit(base, tokenizer, conversations, steps, lr=1e-2):
    """Fully fine-tune `base` on (messages with loss) conversations; returns the model."""
    import torch
    from transformers import AutoModelForCausalLM

    from fireflan.train.data import encode

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    encoded = [encode(tokenizer, *c) for c in conversations]
    n = max(len(ids) for ids, _ in encoded)
    batch = {"input_ids": torch.tensor([ids + [0] * (n - len(ids)) for ids, _ in encoded]),
             "attention_mask": torch.tensor([[1] * len(ids) + [0] * (n - len(ids)) for ids, _ in encoded]),
             "labels": torch.tensor([labels + [-100] * (n - len(labels)) for _, labels in encoded])}
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
    return model


def _save(model, tokenizer, tiny, folder):
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    shutil.copyfile(tiny / "tokenizer.model", folder / "tokenizer.model")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """ROOT/{world/, trajectories.jsonl, base/ (answers right or wrong, half and half), hermes/ (the teacher's
    episode in tool calls)}. ~6 s."""
    import torch
    from transformers import AutoTokenizer

    from fireflan.train.bases import build_tiny

    root = tmp_path_factory.mktemp("grpo")
    tiny = build_tiny(root / "tiny")
    (root / "world").mkdir()
    (root / "world" / "corpus.jsonl").write_text("".join(
        json.dumps({"title": t, "text": " ".join(s), "sentences": s}) + "\n" for t, s in PAGES.items()))
    (root / "world" / "train.jsonl").write_text(json.dumps(QUESTION) + "\n")
    (root / "trajectories.jsonl").write_text(json.dumps(trajectory().to_record()) + "\n")
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        react = [([*p, {"role": "assistant", "content": a, "loss": True}],) for p in states(trajectory())
                 for a in (RIGHT, WRONG)]
        _save(_fit(tiny, tokenizer, react, steps=40), tokenizer, tiny, root / "base")
        episode = [{**m, "loss": m["role"] == "assistant"} for m in trajectory().messages()]
        _save(_fit(tiny, tokenizer, [(to_tool_calls(episode), task_tools("world"))], steps=150), tokenizer, tiny,
              root / "hermes")
    finally:
        torch.set_num_threads(threads)
    return root


def options(toy, out, **kw) -> GRPOConfig:
    settings = dict(base=str(toy / "base"), out=str(out), trajectories=str(toy / "trajectories.jsonl"),
                    data=str(toy / "world"), rank=8, alpha=16, lr=1e-3, num_generations=8, max_completion_length=16,
                    threads=1, save_steps=100)
    return GRPOConfig(**{**settings, **kw})


def read_rewards(out) -> list[dict]:
    return list(csv.DictReader((out / "rewards.csv").read_text().splitlines()))


def preference(base, adapter=None) -> float:
    """log p(RIGHT) - log p(WRONG), summed over the episode's states: how much the model prefers the right
    answer where it ends the episode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fireflan.train.data import encode

    tokenizer, model = AutoTokenizer.from_pretrained(base), AutoModelForCausalLM.from_pretrained(base)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)

    def logp(prompt, answer) -> float:
        ids, labels = encode(tokenizer, [*prompt, {"role": "assistant", "content": answer, "loss": True}])
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss
        return -loss.item() * (sum(label != -100 for label in labels) - 1)

    return sum(logp(p, RIGHT) - logp(p, WRONG) for p in states(trajectory()))


def test_grpo_learns_to_answer_right_from_the_wiki_reward(toy, tmp_path, capsys):
    from fireflan.export.merge import read_train

    summary = grpo(options(toy, tmp_path, max_steps=40))
    reward = [float(r["reward"]) for r in read_rewards(tmp_path)]
    assert len(reward) == 40 and summary["steps"] == 40 and summary["prompts"] == 2
    first, last = sum(reward[:10]) / 10, sum(reward[-10:]) / 10
    assert last > first, (first, last)  # right is 1.2 (0.2 format + 1), wrong 0.2: the start is ~0.7
    # the sampled rewards are noisy (8 completions a step): the policy itself must prefer the right answer more
    before, after = preference(toy / "base"), preference(toy / "base", tmp_path / "adapter")
    assert after > before + 1.0, (before, after)  # measured: 0.08 before, 5.9 after 40 steps
    assert "GRPO: step 1 took" in capsys.readouterr().out
    train = read_train(tmp_path)  # what `fireflan export` reads
    assert train["lora"] and train["base"] == str(toy / "base") and train["stage"] == "grpo"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_grpo_starts_from_an_sft_adapter_and_keeps_it_as_its_reference(toy, tmp_path):
    """An adapter that answers right is where the policy starts and, with beta > 0, what TRL's frozen reference
    ("ref") copies: the KL of the first step is 0 (were the adapter loaded after TRL made its copy, the
    reference would be the base, which answers wrong half the time). The copy is not saved as the result."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fireflan.train.data import encode

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(toy / "base")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(toy / "base"), LoraConfig(
        r=8, lora_alpha=16, target_modules=GRPOConfig().target_modules.split(","), task_type="CAUSAL_LM"))
    encoded = [encode(tokenizer, [*p, {"role": "assistant", "content": RIGHT, "loss": True}])
               for p in states(trajectory())]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(30):
        for ids, labels in encoded:
            model(input_ids=torch.tensor([ids]), labels=torch.tensor([labels])).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(tmp_path / "sft" / "adapter")
    start = dict(max_steps=2, beta=0.04, init_adapter=str(tmp_path / "sft" / "adapter"))
    grpo(options(toy, tmp_path / "grpo", **start))
    assert float(read_rewards(tmp_path / "grpo")[0]["kl"]) == pytest.approx(0.0, abs=1e-6)  # loaded late: ~0.01
    assert [p.name for p in (tmp_path / "grpo" / "adapter").iterdir() if p.is_dir()] == []  # no ref/


def test_killed_grpo_resumes_from_its_last_checkpoint(toy, tmp_path):
    out = tmp_path / "run"
    given = dict(max_steps=60, save_steps=2, num_generations=4)
    code = ("from fireflan.train.grpo import GRPOConfig, grpo\n"
            f"grpo(GRPOConfig(**{vars(options(toy, out, **given))!r}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (out / "checkpoints" / "checkpoint-4" / "trainer_state.json").exists():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "training ended before it could be killed"
    summary = grpo(options(toy, out, **given))
    assert summary["resumed_from"] is not None and int(summary["resumed_from"].rsplit("-", 1)[1]) >= 4
    assert summary["steps"] == 60
    assert [int(r["step"]) for r in read_rewards(out)] == list(range(1, 61))  # no step logged twice


def test_multi_turn_episodes_call_the_wiki_through_trl(toy, tmp_path, monkeypatch):
    """TRL's environment_factory runs the model's tool calls in the wiki, and the tokens of the episode are
    the ones SFT renders for it (prompt, call, reply, answer)."""
    import fireflan.train.grpo as module
    from fireflan.train.data import render_chat

    seen = []

    def spy(completions, prompts, **kwargs):
        seen.extend(zip(prompts, completions, kwargs["completion_ids"], strict=True))
        return environment_reward(completions, prompts, **kwargs)

    monkeypatch.setattr(module, "environment_reward", spy)
    grpo(options(toy, tmp_path, base=str(toy / "hermes"), multi_turn=True, max_steps=2, num_generations=4,
                 max_completion_length=256))
    rewards = [float(r["reward"]) for r in read_rewards(tmp_path)]
    assert len(rewards) == 2 and max(rewards) > 1.0  # an episode that searched, read the page and answered right
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(toy / "hermes")
    tools = task_tools("world")
    episodes = [(p, c, ids) for p, c, ids in seen if any(m["role"] == "tool" for m in c)]
    assert episodes, "no episode called a tool"
    for prompt, completion, ids in episodes:
        messages = [{k: v for k, v in m.items() if v is not None} for m in [*prompt, *completion]]
        sft = render_chat(tokenizer, messages, False, tools)
        trl = render_chat(tokenizer, prompt, True, tools) + tokenizer.decode(ids)
        assert sft.startswith(trl) and sft[len(trl):] in ("", "\n")
