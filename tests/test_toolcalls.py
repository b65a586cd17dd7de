"""OpenAI tool calls: ReAct <-> tool-call messages, the hermes parser, the template's tool turns, the
openai-tools corpus and its importer, and training in the hermes format (tool turns never carry loss)."""

import json

import pytest

from fireflan.agent.toolcalls import (
    FINAL,
    call_argument,
    from_tool_calls,
    parse_tool_call,
    task_tools,
    to_react_text,
    to_tool_calls,
)
from fireflan.corpus.format import make_record, openai_record
from fireflan.corpus.importers import import_file, openai_tools_record
from fireflan.io import DataError

REACT = [{"role": "user", "content": "Where was Aldo Brenik born?", "loss": False},
         {"role": "assistant", "content": "Thought: I need his page.\nAction: search[Aldo Brenik]", "loss": True},
         {"role": "user", "content": "Observation: Aldo Brenik was born in Velmora.", "loss": False},
         {"role": "assistant", "content": "Thought: Found it.\nAction: finish[Velmora]", "loss": True}]


def test_react_turns_become_tool_calls_and_back():
    tools = task_tools("world")
    calls = to_tool_calls(REACT, tools)
    assert [m["role"] for m in calls] == ["user", "assistant", "tool", "assistant"]
    call = calls[1]["tool_calls"][0]
    assert calls[1]["content"] == "I need his page." and call["function"]["name"] == "search"
    assert json.loads(call["function"]["arguments"]) == {"query": "Aldo Brenik"}
    assert calls[2] == {"role": "tool", "tool_call_id": call["id"], "content": "Aldo Brenik was born in Velmora.",
                        "loss": False}
    assert calls[3]["content"] == f"Found it.\n{FINAL} Velmora" and "tool_calls" not in calls[3]
    assert from_tool_calls(calls) == REACT
    assert [t["function"]["name"] for t in tools] == ["search", "lookup"]
    assert [t["function"]["name"] for t in task_tools("dbbench")] == ["execute"]


def test_parallel_calls_dict_arguments_and_a_plain_final_reply_are_read():
    """Hugging Face rows: arguments as dicts; several calls in one turn are taken one after another, each
    followed by its own result (matched by id, whatever order the results come in)."""
    messages = [
        {"role": "user", "content": "Compare A and B."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "search", "arguments": {"query": "A"}}},
            {"id": "b", "type": "function", "function": {"name": "get", "arguments": {"x": 1, "y": "z"}}}]},
        {"role": "tool", "tool_call_id": "b", "content": "B page"},
        {"role": "tool", "tool_call_id": "a", "content": "A page"},
        {"role": "assistant", "content": "A is older."}]
    assert from_tool_calls(messages) == [
        {"role": "user", "content": "Compare A and B."},
        {"role": "assistant", "content": "Action: search[A]"},
        {"role": "user", "content": "Observation: A page"},
        {"role": "assistant", "content": 'Action: get[{"x": 1, "y": "z"}]'},
        {"role": "user", "content": "Observation: B page"},
        {"role": "assistant", "content": "Action: finish[A is older.]"}]
    assert call_argument('{"sql": "SELECT 1"}') == "SELECT 1" and call_argument("") == ""
    assert call_argument("not json") == "not json"


@pytest.mark.parametrize("text, action, argument, thought", [
    ('I need X.\n<tool_call>{"name": "search", "arguments": {"query": "X"}}</tool_call>', "search", "X", "I need X."),
    ('<tool_call>\n{"name": "lookup", "arguments": "{\\"keyword\\": \\"born\\"}"}', "lookup", "born", ""),
    ("Thought: so it is Y.\nFinal Answer: Y", "finish", "Y", "so it is Y."),
    ('<tool_call>{"name": "Fly", "arguments": {}}</tool_call>', "fly", "", ""),
])
def test_hermes_replies_are_parsed(text, action, argument, thought):
    parsed = parse_tool_call(text)
    assert (parsed.action, parsed.argument, parsed.thought, parsed.error) == (action, argument, thought, None)


def test_unreadable_hermes_replies_are_errors_the_model_can_read():
    for text, why in [("<tool_call>{oops", "does not parse"), ('<tool_call>{"arguments": {}}', '"name"'),
                      ("I think it is Y.", "no <tool_call>")]:
        parsed = parse_tool_call(text)
        assert parsed.action is None and why in parsed.error
        assert to_react_text(text) == text  # handed on as it is: the loop reports the format error
    assert to_react_text('a\n<tool_call>{"name": "search", "arguments": {"query": "Q"}}') == \
        "Thought: a\nAction: search[Q]"


# --------------------------------------------------------------------------- the chat template

@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    pytest.importorskip("transformers", reason="the train extra is not installed")
    from transformers import AutoTokenizer

    from fireflan.train.bases import build_tiny

    return AutoTokenizer.from_pretrained(build_tiny(tmp_path_factory.mktemp("base") / "tiny"))


def test_the_template_renders_tools_calls_and_results_as_their_own_turns(tokenizer):
    pytest.importorskip("trl", reason="the train extra is not installed")
    from trl.chat_template_utils import is_chat_template_prefix_preserving, supports_tool_calling

    assert supports_tool_calling(tokenizer) and is_chat_template_prefix_preserving(tokenizer)
    tools = task_tools("world")
    text = tokenizer.apply_chat_template(to_tool_calls(REACT, tools), tools=tools, tokenize=False)
    assert "- search(query): Returns the wiki page" in text and "- lookup(keyword)" in text
    assert ('<start_of_turn>model\nI need his page.\n<tool_call>{"name": "search", "arguments": '
            '{"query": "Aldo Brenik"}}</tool_call><end_of_turn>') in text
    assert "<start_of_turn>user\n<tool_response>\nAldo Brenik was born in Velmora.\n</tool_response>" in text
    # without tools the ReAct rendering is unchanged
    plain = tokenizer.apply_chat_template(REACT, tokenize=False)
    assert "<tool" not in plain and "Action: search[Aldo Brenik]<end_of_turn>" in plain


def test_in_the_hermes_format_tool_turns_never_carry_loss(tokenizer):
    pytest.importorskip("trl", reason="the train extra is not installed")
    from fireflan.train.data import IGNORE, encode, in_action_format

    rec = make_record(REACT, "r", "teach", "world", "react")
    ids, labels = encode(tokenizer, *in_action_format(rec, "hermes"))
    trained = tokenizer.decode([i for i, lab in zip(ids, labels, strict=True) if lab != IGNORE])
    assert trained == ('I need his page.\n<tool_call>{"name": "search", "arguments": {"query": "Aldo Brenik"}}'
                       f"</tool_call><end_of_turn>\nFound it.\n{FINAL} Velmora<end_of_turn>\n")
    masked = tokenizer.decode([i for i, lab in zip(ids, labels, strict=True) if lab == IGNORE])
    assert "<tool_response>\nAldo Brenik was born in Velmora." in masked and "search(query)" in masked
    # a no-tools negative is trained with no tools declared
    bare = make_record(REACT[:1] + [{"role": "assistant", "content": "I cannot look it up.", "loss": True}],
                       "n", "teach", "world", "react", tools=False)
    assert in_action_format(bare, "hermes") == (bare["messages"], None)
    with pytest.raises(ValueError, match="--action-format"):
        in_action_format(rec, "xml")


# --------------------------------------------------------------------------- the openai-tools corpus

def test_corpus_in_openai_tools_format_reads_back_as_the_same_records(tmp_path, small_world):
    from fireflan.corpus.build import CorpusConfig, build_corpus
    from fireflan.teach import TeachConfig, teach
    from fireflan.train.data import read_corpus

    teach(TeachConfig(out=str(tmp_path / "teach"), data=str(small_world), methods="react", limit=30))
    common = dict(inputs=str(tmp_path / "teach" / "trajectories.jsonl"), negatives="no_tools=0.1", val_share=0.0)
    build_corpus(CorpusConfig(out=str(tmp_path / "plain"), **common))
    build_corpus(CorpusConfig(out=str(tmp_path / "tools"), format="openai-tools", **common))
    plain = [json.loads(line) for line in (tmp_path / "plain" / "train.jsonl").read_text().splitlines()]
    tools = [json.loads(line) for line in (tmp_path / "tools" / "train.jsonl").read_text().splitlines()]
    assert len(plain) == len(tools) > 20
    calls = 0
    for p, t in zip(plain, tools, strict=True):
        assert set(t) <= {"messages", "tools", "parallel_tool_calls"}
        for m in t["messages"]:
            assert set(m) <= {"role", "content", "tool_calls", "tool_call_id", "weight"}
            assert ("weight" in m) == (m["role"] == "assistant")
            for call in m.get("tool_calls", []):
                calls += 1
                assert isinstance(json.loads(call["function"]["arguments"]), dict)
        assert ("tools" in t) == p["meta"]["tools"]
        assert openai_tools_record(t, "x", 1)["messages"] == p["messages"]
    assert calls > 20
    # training reads either
    assert [r["messages"] for r in read_corpus(tmp_path / "tools" / "train.jsonl")] == [p["messages"] for p in plain]
    assert [r["messages"] for r in import_file(tmp_path / "tools" / "train.jsonl")] == [p["messages"] for p in plain]


def test_openai_tools_records_with_faults_are_named_by_line_and_field(tmp_path):
    good = openai_record(make_record(REACT, "r", "teach", "world", "react"))

    def broken(change):
        rec = json.loads(json.dumps(good))
        change(rec)
        return rec

    def bad_args(r):
        r["messages"][1]["tool_calls"][0]["function"]["arguments"] = "{nope"

    def untrained(r):
        for m in r["messages"]:
            if m["role"] == "assistant":
                m["weight"] = 0

    cases = [(bad_args, "messages[1].tool_calls[0].function.arguments", "not JSON"),
             (lambda r: r["messages"][2].update(role="robot"), "messages[2].role", "robot"),
             (lambda r: r["messages"][3].update(weight=0.5), "messages[3].weight", "0 or 1"),
             (lambda r: r["messages"][3].update(content=None), "messages[3].content", "null beside tool_calls"),
             (lambda r: r.update(tools="[{"), "tools", "not JSON"),
             (lambda r: r["messages"].pop(2), "messages", "call without its result"),
             (untrained, "messages", "every weight is 0")]
    lines = [json.dumps(good)] + [json.dumps(broken(change)) for change, _, _ in cases]
    for n, (line, (_, field, why)) in enumerate(zip(lines[1:], cases, strict=True), start=2):
        path = tmp_path / f"bad{n}.jsonl"
        path.write_text(lines[0] + "\n" + line + "\n")
        with pytest.raises(DataError, match=why) as e:
            import_file(path)
        assert e.value.line == 2 and e.value.field == field, (field, str(e.value))
    # a Hugging Face row: tools as JSON text, arguments as an object
    hf = broken(lambda r: r.update(tools=json.dumps(r["tools"])))
    hf["messages"][1]["tool_calls"][0]["function"]["arguments"] = {"query": "Aldo Brenik"}
    assert openai_tools_record(hf, "hf.jsonl", 1)["messages"] == REACT


def test_train_refuses_an_unknown_action_format_before_it_loads_a_model(tmp_path):
    pytest.importorskip("torch")
    from fireflan.train.trainer import TrainConfig, train

    with pytest.raises(ValueError, match="--action-format must be one of react, hermes, got 'json'"):
        train(TrainConfig(corpus=str(tmp_path / "none"), base="tiny", out=str(tmp_path / "m"), action_format="json"))
    assert not (tmp_path / "m").exists()


def test_the_no_tools_probe_declares_no_tools_to_a_hermes_model_and_restores_them_after():
    from fireflan.agent.probes import run_probes
    from fireflan.tasks.base import Example

    class Hermes:  # what the probe sees of LlamaModel: use_tools, actions, generate
        actions = ("search", "lookup", "finish")

        def __init__(self):
            self.seen = []

        def use_tools(self, actions):
            self.actions = tuple(actions)

        def generate(self, messages, **_):
            self.seen.append(self.actions)
            return "Action: search[X]" if self.actions != ("finish",) else "I cannot look it up."

    model = Hermes()
    questions = [Example(id=str(i), question=f"Q{i}?", answer="a", task="world", type="notool") for i in range(2)]
    rates = run_probes(model, questions, n=2)
    assert model.seen == [("finish",)] * 2 + [("search", "lookup", "finish")] * 2
    assert rates["no_tools"]["tool_misuse_rate"] == 0.0 and rates["needs_none"]["tool_misuse_rate"] == 1.0
    assert model.actions == ("search", "lookup", "finish")
