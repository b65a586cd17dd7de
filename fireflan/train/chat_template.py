"""The chat template every base fireflan prepares carries (Gemma's turn format), and its plain form.

    tokenizer.chat_template = CHAT_TEMPLATE          # training: {% generation %} marks assistant turns
    gguf_template = plain_template(CHAT_TEMPLATE)    # GGUF files and plain Jinja: the marks removed
"""

from __future__ import annotations

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
