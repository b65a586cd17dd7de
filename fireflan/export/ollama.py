"""The Modelfile step of export: an Ollama Modelfile beside the GGUF, with fireflan's chat template in Ollama's
Go-template syntax (ollama.tmpl) and the agent's stop strings; and a reader of Modelfiles that rejects what
Ollama would. A base that kept its own chat template gets no TEMPLATE (Ollama takes the one the GGUF carries)
and stops on the token its template closes a turn with.

    cd runs/model/gguf && ollama create fireflan -f Modelfile
"""

from __future__ import annotations

import re
from importlib.resources import files

from fireflan.train.chat_template import END

# Ollama stops on these. <end_of_turn> ends every assistant turn; "Observation:" is the agent's own stop string
# (fireflan.agent.loop.STOP): a model that writes an observation itself is cut there, as the agent would cut it.
STOPS = (END, "Observation:")
# The chat template in Ollama's Go-template syntax (ollama.tmpl): the same text as CHAT_TEMPLATE renders with
# add_generation_prompt (a system turn goes before the next user turn, followed by a blank line; BOS comes from
# the GGUF's add_bos_token). As in Ollama's own templates, a trailing assistant message is left open (prefill).
OLLAMA_TEMPLATE = files("fireflan.export").joinpath("ollama.tmpl").read_text(encoding="utf-8")
# A hermes-format model's template (ollama_tools.tmpl): the tools, tool calls and tool results as the Jinja
# template renders them. Ollama lists a model as tool-capable when its template uses .Tools, and reads the
# model's <tool_call>{...}</tool_call> back as tool calls; it must see the whole call, so it stops only
# where the model would begin to write the tool's reply itself.
OLLAMA_TOOLS_TEMPLATE = files("fireflan.export").joinpath("ollama_tools.tmpl").read_text(encoding="utf-8")
TOOLS_STOPS = (END, "<tool_response>")


def modelfile(gguf_name: str, temperature: float = 0.0, action_format: str = "react", end: str = END,
              fireflans_template: bool = True) -> str:
    """An Ollama Modelfile for a GGUF beside it, with fireflan's chat template in Go-template syntax (a
    hermes-format model's with tools), or, for a base's own template (`fireflans_template` False), none: Ollama
    reads the GGUF's. Generation stops at END, the token that closes an assistant turn."""
    template, stops = (OLLAMA_TOOLS_TEMPLATE, TOOLS_STOPS) if action_format == "hermes" else (OLLAMA_TEMPLATE, STOPS)
    stops = tuple(end if s == END else s for s in stops)
    if '"""' in template:
        raise ValueError('the template may not contain """')
    lines = ["# fireflan export: in this folder, `ollama create NAME -f Modelfile`", f"FROM ./{gguf_name}"]
    lines += [f'TEMPLATE """{template}"""'] if fireflans_template else \
        ["# the base's own chat template: Ollama takes the one in the GGUF (tokenizer.chat_template)"]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines.append(f"PARAMETER temperature {temperature:g}")
    return "\n".join(lines) + "\n"


MODELFILE_COMMANDS = ("FROM", "ADAPTER", "TEMPLATE", "SYSTEM", "PARAMETER", "MESSAGE", "LICENSE", "REQUIRES")


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """(COMMAND, value) pairs of an Ollama Modelfile; raises ValueError on what Ollama would reject.

    'FROM ./m.gguf\\nPARAMETER stop "<end_of_turn>"' -> [('FROM', './m.gguf'), ('PARAMETER', 'stop <end_of_turn>')]
    Values in triple quotes may span lines; a quoted value loses its quotes.
    """
    out, pos = [], 0
    line_re = re.compile(r"[ \t]*(?:#[^\n]*)?(?:\n|$)")
    command_re = re.compile(r"([A-Za-z]+)[ \t]+")
    while pos < len(text):
        blank = line_re.match(text, pos)
        if blank and blank.end() > pos:
            pos = blank.end()
            continue
        m = command_re.match(text, pos)
        if not m or m.group(1).upper() not in MODELFILE_COMMANDS:
            raise ValueError(f"line {text.count(chr(10), 0, pos) + 1}: unknown command {text[pos:].split()[0]!r}")
        command, pos = m.group(1).upper(), m.end()
        if command == "PARAMETER":
            name = re.match(r"(\w+)[ \t]+", text[pos:])
            if not name:
                raise ValueError(f"line {text.count(chr(10), 0, pos) + 1}: PARAMETER needs a name and a value")
            pos += name.end()
        if text.startswith('"""', pos):
            end = text.find('"""', pos + 3)
            if end < 0:
                raise ValueError(f'{command}: unterminated """')
            value, pos = text[pos + 3:end], end + 3
            rest = line_re.match(text, pos)
            if not rest:
                raise ValueError(f'{command}: text after the closing """')
            pos = rest.end()
        else:
            end = text.find("\n", pos)
            end = len(text) if end < 0 else end
            value, pos = text[pos:end].strip(), end + 1
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
        if not value:
            raise ValueError(f"{command} without a value")
        out.append((command, f"{name.group(1)} {value}" if command == "PARAMETER" else value))
    if not any(c == "FROM" for c, _ in out):
        raise ValueError("a Modelfile needs a FROM line")
    return out
