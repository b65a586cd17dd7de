"""Every command the docs show parses against the command line it names: the verb exists, each option is one
the verb or recipe takes, and it takes as many positional arguments. (Commands are checked, not run.)"""

import importlib
import re
import shlex

from helpers import ROOT

from fireflan.cli import CLI
from fireflan.options import check_flags, with_long_help

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("*/README.md"))]
COMMAND = re.compile(r"(?:\.venv/bin/)?(?:python -m )?(fireflan(?:\.recipes\.\w+)?)\s+(.*)")


def commands(text: str):
    """(program, arguments) of each command in fenced blocks, and in inline code that gives an option; lines
    with a placeholder list (`[--x]`, `...`, `|`) or shell plumbing are not commands to parse."""
    text = text.replace("\\\n", " ")
    lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) for line in block.splitlines()]
    lines += [span for span in re.findall(r"`((?:python -m )?fireflan[ .][^`]*)`", text) if " --" in span]
    for line in lines:
        m = COMMAND.match(line.split(" #")[0].strip().removeprefix("$ "))
        if m and not re.search(r"\[|\.\.\.|\||<|&&|;|\$\(", m.group(2)):
            yield m.group(1), m.group(2)


def test_every_command_in_the_docs_parses_against_the_command_line():
    checked, wrong = 0, []
    for doc in DOCS:
        for program, rest in commands(doc.read_text()):
            argv = with_long_help(shlex.split(rest))
            if not argv or argv[0].startswith("-") or argv[0].isupper():  # `fireflan --help`, `fireflan VERB`
                continue
            try:
                if program == "fireflan":
                    words = argv[:2] if argv[:2] == ["corpus", "show"] else argv[:1]
                    verb = getattr(CLI(), "_".join(words), None)
                    if verb is None:
                        raise ValueError(f"no verb {' '.join(words)!r}")
                    check_flags(verb, argv[len(words):], program)
                else:
                    check_flags(importlib.import_module(program).cli, argv, program)
                checked += 1
            except ValueError as e:
                wrong.append(f"{doc.relative_to(ROOT)}: {program} {rest}: {e}")
    assert not wrong, "\n".join(wrong)
    assert checked >= 50, checked  # the docs show 60: a parser that finds none would check nothing
