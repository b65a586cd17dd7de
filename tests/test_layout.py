"""The package's shape: no import circle among fireflan's modules, fireflan's own imports at the top of each
module, package `__init__` files that only re-export, and no page, style sheet, script or template held in
a Python string."""

import ast
import re

from helpers import ROOT

PACKAGE = ROOT / "fireflan"


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(node) -> list[str]:
    """The fireflan modules an import statement names (a `from a import b` names a.b when b is a module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("fireflan")]
    if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fireflan"):
        subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in MODULES]
        return [node.module, *subs]
    return []


def edges(name: str, tree) -> set[str]:
    """What importing module `name` runs: each module it imports and their packages' `__init__`, except
    the packages that hold `name` itself (Python has begun those before it)."""
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    out = set()
    for node in ast.walk(tree):
        for target in imported(node):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in MODULES and prefix not in own and prefix != name:
                    out.add(prefix)
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), as sorted lists."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_circle_and_passes_a_line():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_the_edges_follow_pythons_import_rules():
    tree = ast.parse("from fireflan.tasks.scoring import normalize_answer\nfrom fireflan.agent import loop\n")
    # importing a module of another package runs that package's __init__ too; a sibling's does not
    assert edges("fireflan.models.scripted", tree) == {"fireflan.tasks", "fireflan.tasks.scoring",
                                                       "fireflan.agent", "fireflan.agent.loop"}
    assert "fireflan.tasks" not in edges("fireflan.tasks.world", tree)


def test_no_import_circle_among_fireflans_modules():
    graph = {name: edges(name, ast.parse(path.read_text())) for name, path in MODULES.items()}
    assert sum(map(len, graph.values())) > 100  # the graph was built
    assert cycles(graph) == []


def test_fireflans_own_imports_are_at_the_top_of_each_module():
    inside = []
    for path in MODULES.values():
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        inside += [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
                   if imported(node) and id(node) not in top]
    assert inside == []


def test_a_package_init_only_re_exports():
    for path in PACKAGE.rglob("__init__.py"):
        for node in ast.parse(path.read_text()).body:
            is_docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            names = [t.id for t in node.targets] if isinstance(node, ast.Assign) else []
            is_all = names in (["__all__"], ["__version__"])
            assert is_docstring or is_all or isinstance(node, ast.ImportFrom), f"{path}:{node.lineno}"


CODE = {  # what marks a string as another language's code
    "HTML": re.compile(r"<!doctype html|<html|<body|<script|<style", re.IGNORECASE),
    "CSS": re.compile(r"[\w\-.#]+\s*\{\s*[\w-]+\s*:\s*[^;{}]+;"),
    "JavaScript": re.compile(r"\bfunction\s*\w*\s*\(|=>\s*\{|\bconst\s+\w+\s*=|document\.|window\."),
    "a Go template": re.compile(r"\{\{\s*(?:if|range|end|\.\w+)"),
}


def docstrings(tree) -> set[int]:
    """The ids of a module's docstrings (prose about the code, which may quote it)."""
    owners = [n for n in ast.walk(tree) if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)]
    return {id(n.body[0].value) for n in owners if n.body and isinstance(n.body[0], ast.Expr)}


def test_no_page_style_script_or_template_in_a_python_string():
    found = []
    for path in MODULES.values():
        tree = ast.parse(path.read_text())
        skip = docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and len(node.value) > 40 \
                    and id(node) not in skip:
                found += [f"{path.relative_to(ROOT)}:{node.lineno} {kind}" for kind, mark in CODE.items()
                          if mark.search(node.value)]
    assert found == []


def test_the_code_detector_sees_each_language():
    samples = {"HTML": "<!doctype html><html><body></body></html>", "CSS": "body { margin: 0; }",
               "JavaScript": "const rows = data.map(r => { return r; });",
               "a Go template": "{{ if .System }}x{{ end }}"}
    for kind, text in samples.items():
        assert CODE[kind].search(text), kind


def test_every_module_is_named_in_the_architecture_map():
    """docs/ARCHITECTURE.md's tree names each module file in its package's entry (a module left out of the map is
    one a reader of the map does not know of)."""
    tree = (ROOT / "docs" / "ARCHITECTURE.md").read_text().split("```")[1]
    entries, current = {}, ""
    for line in tree.splitlines():
        if re.match(r"  \S", line):  # a package's entry (`tasks/ ...`), else the top level's modules
            current = line.split()[0].rstrip("/") if line.split()[0].endswith("/") else ""
        entries[current] = entries.get(current, set()) | set(re.findall(r"[\w/]+\.py", line))
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        package, within = (parts[0], "/".join(parts[1:])) if len(parts) > 1 else ("", parts[0])
        if path.name != "__init__.py" and within not in entries.get(package, set()):
            missing.append("/".join(parts))
    assert not missing, f"modules not named in docs/ARCHITECTURE.md: {missing}"


def recipe_tomls():
    """(path, recipe class, its settings) for each recipes/*.toml, the class named by its first line's command."""
    import importlib
    import tomllib
    from dataclasses import is_dataclass

    for path in sorted((ROOT / "recipes").glob("*.toml")):
        module = importlib.import_module(re.match(r"# python -m (fireflan\.recipes\.\w+) ", path.read_text())[1])
        cls = next(v for k, v in vars(module).items() if k.endswith("Recipe") and is_dataclass(v)
                   and v.__module__ == module.__name__)
        yield path, cls, tomllib.loads(path.read_text())


def test_each_recipe_file_holds_only_what_differs_from_its_recipes_defaults():
    """A TOML that repeats a default hides what it changes, and goes stale when the default moves: each file
    sets only what it changes (its recipe's --help shows the rest)."""
    from dataclasses import MISSING, fields

    found = 0
    for path, cls, settings in recipe_tomls():
        defaults = {f.name: f.default for f in fields(cls) if f.default is not MISSING}
        repeated = sorted(k for k, v in settings.items() if k in defaults and defaults[k] == v)
        assert not repeated, f"{path.name} repeats {cls.__name__}'s defaults: {repeated}"
        found += 1
    assert found >= 10
