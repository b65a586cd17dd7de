"""The chat template every base fireflan prepares carries (Gemma's turn format), and its plain form.

    tokenizer.chat_template = CHAT_TEMPLATE          # training: {% generation %} marks assistant turns
    gguf_template = plain_template(CHAT_TEMPLATE)    # GGUF files and plain Jinja: the marks removed
"""

from __future__ import annotations

START, END = "<start_of_turn>", "<end_of_turn>"

# Gemma's turn format. Gemma has no system role: a system turn is put before the first user turn.
# The {% generation %} marks are for trainers that mask by template (TRL's assistant_only_loss);
# they are removed from the template written into a GGUF (llama.cpp's Jinja does not know them).
CHAT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- set ns = namespace(system='') -%}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}"
    "{%- set ns.system = message['content'] + '\\n\\n' -%}"
    "{%- elif message['role'] == 'user' -%}"
    "{{- '<start_of_turn>user\\n' + ns.system + message['content'] + '<end_of_turn>\\n' -}}"
    "{%- set ns.system = '' -%}"
    "{%- else -%}"
    "{{- '<start_of_turn>model\\n' -}}"
    "{% generation %}{{- message['content'] + '<end_of_turn>' -}}{% endgeneration %}"
    "{{- '\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)


def plain_template(template: str = CHAT_TEMPLATE) -> str:
    """The template without the {% generation %} marks (for GGUF files and plain Jinja)."""
    return template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
