"""The chat template every base fireflan prepares carries (Gemma's turn format), its plain form, and the
special tokens any base's template uses, read from its tokenizer.

    tokenizer.chat_template = CHAT_TEMPLATE          # training: {% generation %} marks assistant turns
    gguf_template = plain_template(CHAT_TEMPLATE)    # GGUF files and plain Jinja: the marks removed
    turns = turn_tokens(tokenizer)                   # Turns(end='<end_of_turn>', eos='<eos>', bos='<bos>')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

START, END = "<start_of_turn>", "<end_of_turn>"

# Gemma's turn format (chat_template.jinja). Gemma has no system role: a system turn is put before the
# first user turn, and so is the list of `tools` when a request declares them. Tool calls and results have
# turns of their own (the Hermes convention, which llama.cpp's server and Ollama parse): an assistant's calls
# follow its content as <tool_call>{"name": ..., "arguments": {...}}</tool_call>, and a `tool` turn is a user
# turn holding <tool_response>...</tool_response>. `arguments` may be a JSON string (OpenAI) or a mapping
# (Hugging Face). The {% generation %} marks are for trainers that mask by template (TRL's
# assistant_only_loss); they are removed from the template written into a GGUF (llama.cpp's Jinja does not
# know them).
CHAT_TEMPLATE = Path(__file__).with_name("chat_template.jinja").read_text()


def plain_template(template: str = CHAT_TEMPLATE) -> str:
    """The template without the {% generation %} marks (for GGUF files and plain Jinja)."""
    return template.replace("{% generation %}", "").replace("{% endgeneration %}", "")


@dataclass(frozen=True)
class Turns:
    """A base's special tokens by text: `end` closes an assistant turn (generation stops there), `eos` and `bos`
    the tokenizer's own (None where it has none: Qwen has no BOS)."""
    end: str
    eos: str | None
    bos: str | None


REPLY = "fireflan reply 7f3a"  # an assistant turn's text, to find what the template writes after it


def turn_tokens(tokenizer) -> Turns:
    """What a base's chat template closes an assistant turn with, read by rendering one, never from a family's
    names: the first special or added token after the reply (Gemma's <end_of_turn>, Llama 3's <|eot_id|>,
    ChatML's <|im_end|>, Mistral's </s>). A template that closes a turn with no such token cannot stop
    generation: a ValueError says so."""
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Q"}, {"role": "assistant", "content": REPLY}],
                                         tokenize=False)
    after = text.split(REPLY, 1)[1] if REPLY in text else ""
    specials = {t for t in tokenizer.all_special_tokens if t} | {t.content for t in
                                                                  tokenizer.added_tokens_decoder.values()}
    found = sorted((after.find(t), -len(t), t) for t in specials if t in after)
    if not found:
        raise ValueError(f"the chat template closes an assistant turn with {after[:40]!r}, which holds no special "
                         "token: generation could not stop at the end of a turn (give the base a template that "
                         "ends its turns with one)")
    return Turns(end=found[0][2], eos=tokenizer.eos_token, bos=tokenizer.bos_token)


def generation_prompt(tokenizer) -> str:
    """What a base's chat template writes to open an assistant turn ('<start_of_turn>model\\n' for Gemma's;
    '' for a template that writes none, as Mistral's)."""
    question = [{"role": "user", "content": "Q"}]
    opened = tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False)
    closed = tokenizer.apply_chat_template(question, tokenize=False)
    return opened[len(closed):] if opened.startswith(closed) else ""
