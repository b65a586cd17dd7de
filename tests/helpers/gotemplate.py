"""A small interpreter of Go's text/template, enough to render Ollama chat templates in tests (no Go here)."""

import json
import re

_ACTION = re.compile(r"\{\{(- )?(.*?)( -)?\}\}", re.S)
_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\(|\)|[^\s()]+)')


def go_render(template: str, data: dict) -> str:
    """A small interpreter of Go's text/template, enough for Ollama chat templates: trim markers, range over
    a slice (index, element) or a map (key, value; keys sorted), if / else if / else, := and =, eq ne and or not
    len slice json, fields."""
    parts, pos, trim_next = [], 0, False
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        if trim_next:
            text = text.lstrip(" \t\r\n")
        if m.group(1):
            text = text.rstrip(" \t\r\n")
        parts += [("text", text), ("action", m.group(2).strip())]
        trim_next, pos = bool(m.group(3)), m.end()
    tail = template[pos:]
    parts.append(("text", tail.lstrip(" \t\r\n") if trim_next else tail))
    tree, _, closing = _parse(parts, 0)
    assert closing is None, f"unbalanced {{{{ {closing} }}}}"
    out = []
    _run(tree, [{"$": data}], data, out)
    return "".join(out)


def _parse(parts, i):
    """Nodes up to the action that closes the block: (nodes, index after it, that action or None)."""
    nodes = []
    while i < len(parts):
        kind, body = parts[i]
        i += 1
        if kind == "text":
            nodes.append(("text", body))
        elif body == "end" or body.startswith("else"):
            return nodes, i, body
        elif body.startswith("range "):
            head = re.fullmatch(r"range \$(\w+), \$(\w+) := (.+)", body)
            inner, i, closing = _parse(parts, i)
            assert closing == "end"
            nodes.append(("range", head.groups(), inner))
        elif body.startswith("if "):
            branches, cond = [], body[3:]
            while True:
                inner, i, closing = _parse(parts, i)
                branches.append((cond, inner))
                if closing == "end":
                    break
                cond = closing.removeprefix("else if ") if closing.startswith("else if ") else "true"
            nodes.append(("if", branches))
        else:
            nodes.append(("action", body))
    return nodes, i, None


def _run(nodes, scopes, dot, out):
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "range":
            (index, elem, expr), inner = node[1], node[2]
            items = _eval(expr, scopes, dot) or []
            pairs = sorted(items.items()) if isinstance(items, dict) else enumerate(items)  # Go sorts a map's keys
            for key, item in pairs:
                _run(inner, [*scopes, {index: key, elem: item}], item, out)
        elif node[0] == "if":
            for cond, inner in node[1]:
                if _truth(_eval(cond, scopes, dot)):
                    _run(inner, [*scopes, {}], dot, out)
                    break
        else:
            body = node[1]
            assign = re.fullmatch(r"\$(\w+) (:?=) (.+)", body, re.S)
            if assign:
                name, op, expr = assign.groups()
                value = _eval(expr, scopes, dot)
                target = scopes[-1] if op == ":=" else next(s for s in reversed(scopes) if name in s)
                target[name] = value
            else:
                value = _eval(body, scopes, dot)
                out.append(("true" if value else "false") if isinstance(value, bool) else str(value))


def _truth(v):
    return bool(v)


def _eval(expr, scopes, dot):
    tokens = [t for t in _TOKEN.findall(expr) if t]
    value, rest = _command(tokens, scopes, dot)
    assert not rest, f"cannot parse {expr!r}"
    return value


FUNCS = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "not": lambda a: not _truth(a),
         "and": lambda a, b: b if _truth(a) else a, "or": lambda a, b: a if _truth(a) else b,
         "len": len, "slice": lambda x, i: x[i:],
         # Ollama's json: Go's encoding/json (keys sorted, no spaces)
         "json": lambda v: json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False)}


def _command(tokens, scopes, dot):
    """A pipeline-free command: a function and its arguments, or one operand."""
    if tokens and tokens[0] in FUNCS:
        name, args, tokens = tokens[0], [], tokens[1:]
        while tokens and tokens[0] != ")":
            value, tokens = _operand(tokens, scopes, dot)
            args.append(value)
        return FUNCS[name](*args), tokens
    return _operand(tokens, scopes, dot)


def _operand(tokens, scopes, dot):
    tok, tokens = tokens[0], tokens[1:]
    if tok == "(":
        value, tokens = _command(tokens, scopes, dot)
        assert tokens[0] == ")"
        return value, tokens[1:]
    if tok.startswith('"'):
        return json.loads(tok), tokens
    if tok in ("true", "false"):
        return tok == "true", tokens
    if tok.lstrip("-").isdigit():
        return int(tok), tokens
    if tok.startswith("$"):
        name, *fields = tok[1:].split(".")
        value = next(s[name or "$"] for s in reversed(scopes) if (name or "$") in s)
    elif tok.startswith("."):
        value, fields = dot, tok[1:].split(".")
    else:
        raise AssertionError(f"unknown token {tok!r}")
    for f in filter(None, fields):  # Ollama's Go field names, or the same keys in lower case; missing: nil
        value = value.get(f, value.get(f.lower())) if isinstance(value, dict) else None
    return value, tokens
