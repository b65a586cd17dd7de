"""fireflan's cache folder: `$FIREFLAN_CACHE`, else `~/.cache/fireflan` (bases, the embedded GGUF, converters),
and the one way an entry of it is built.

    folder = build_once(cache_dir() / "tiny-gemma3", build, whole_folder("fireflan-base.json", ("config.json",)),
                        "tiny model")

`build_once` builds into a private temporary folder beside the target and publishes the result with one
rename, holding an exclusive lock (TARGET.lock) meanwhile: a second process asking for the same entry
waits for the first and then uses its result; an interrupted build leaves only its temporary folder
(removed by the next build), never a half-built entry under the final name. An entry is checked
before it is trusted (`check` says what is wrong with it, or None): a broken one is rebuilt, with a
message saying why.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("FIREFLAN_CACHE") or Path.home() / ".cache" / "fireflan")


def _say(message: str) -> None:
    print(f"[fireflan] {message}", flush=True)


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock on `path` (created if needed) for the length of the block; waits for a holder."""
    import fcntl  # POSIX: Linux and macOS, the platforms llama.cpp's CPU builds and fireflan are tested on

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def build_once(target, build: Callable[[Path], None], check: Callable[[Path], str | None], what: str) -> Path:
    """`target` (a file or folder), built by `build(path)` into a fresh `path` unless it is there and whole."""
    target = Path(target)
    if target.exists() and check(target) is None:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with locked(target.with_name(target.name + ".lock")):
        if target.exists():  # built by another process while this one waited, or broken
            why = check(target)
            if why is None:
                return target
            _say(f"the cached {what} at {target} is broken ({why}); building it again")
            _remove(target)
        for stale in target.parent.glob(f".{target.name}.*.tmp"):  # what killed builds left
            _remove(stale)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            staged = tmp / target.name
            build(staged)
            if (why := check(staged)) is not None:
                raise RuntimeError(f"building the {what} went wrong: {why}")
            os.replace(staged, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _say(f"{what} ready at {target}")
    return target


def seal(folder: Path, marker: str, info: dict) -> None:
    """Write the folder's marker file last: `info` and every file's size (what `whole_folder` checks)."""
    sizes = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / marker).write_text(json.dumps({**info, "sizes": sizes}, indent=1) + "\n")


def whole_folder(marker: str, required: tuple[str, ...] = ()) -> Callable[[Path], str | None]:
    """A check for a sealed folder: its marker is there, every file it lists has its size, the `required`
    files exist, and a config.json among them names its model_type (transformers needs it to load)."""

    def check(folder: Path) -> str | None:
        try:
            sealed = json.loads((folder / marker).read_text())
        except (OSError, ValueError):
            return f"no readable {marker}: its build did not finish"
        for name in required:
            if not (folder / name).is_file():
                return f"{name} is missing"
        for name, size in sealed.get("sizes", {}).items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != size:
                return f"{name} is missing or not {size} bytes"
        if "config.json" in required:
            try:
                json.loads((folder / "config.json").read_text())["model_type"]
            except (OSError, ValueError, KeyError):
                return "config.json has no model_type"
        return None

    return check
