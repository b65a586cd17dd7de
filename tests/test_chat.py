"""chat: the terminal loop, driven by a scripted model (the tmux test with a real GGUF is in test_export)."""

from fireflan.chat import ChatConfig, chat
from fireflan.models.fake import ReplayModel


def test_chat_shows_each_step_and_the_answer(small_world, capsys):
    model = ReplayModel(["Thought: I should look it up.\nAction: search[Velmora]",
                         "Thought: Found.\nAction: finish[Ostrand]"])
    answered = chat(ChatConfig(data=str(small_world)), model=model, lines=["Where is Velmora?", "", "quit", "never"])
    out = capsys.readouterr().out
    assert answered == 1
    assert "Thought: I should look it up." in out and "Action: search[Velmora]" in out
    assert "Observation: " in out and "Answer: Ostrand" in out


def test_chat_with_a_corpus_file(tmp_path, capsys):
    corpus = tmp_path / "pages.jsonl"
    corpus.write_text('{"title": "Kest", "text": "Kest is a small town. It has a harbour."}\n')
    model = ReplayModel(["Thought: a\nAction: search[Kest]", "Thought: b\nAction: finish[a small town]"])
    chat(ChatConfig(corpus=str(corpus)), model=model, lines=["What is Kest?"])
    out = capsys.readouterr().out
    assert "over 1 pages" in out and "Observation: Kest is a small town. It has a harbour." in out
