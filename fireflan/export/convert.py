"""llama.cpp's own HF -> GGUF converters, fetched at run time from the llama-cpp-python sdist.

    tools = converter_dir()   # ~/.cache/fireflan/llama.cpp-0.3.36 (downloaded and extracted once)
    run_script(tools, "convert_hf_to_gguf.py", [folder, "--outfile", "m.gguf", "--outtype", "f16"])

The llama-cpp-python wheel has no converter; its sdist (~77 MB, the version installed here) carries
`vendor/llama.cpp/convert_hf_to_gguf.py`, the `conversion/` package it imports, `convert_lora_to_gguf.py`
and `gguf-py/`. Only those are extracted into the cache; none of it is part of this repository. The
scripts must run against that bundled gguf-py (PyPI's gguf lags behind: `AttributeError: module 'gguf'
has no attribute 'LazyChunkedTensor'`), so they run in a subprocess with PYTHONPATH=<tools>/gguf-py.

The download goes through pip (so pip's own settings apply: PIP_INDEX_URL, PIP_FIND_LINKS, proxies).
A machine without any index can point FIREFLAN_LLAMA_CPP_SDIST at a copy of the sdist file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from fireflan.train.bases import cache_dir

PACKAGE = "llama-cpp-python"
VENDOR = "vendor/llama.cpp/"
# What the converters need from the sdist: the two scripts, the model classes, the matching gguf-py.
WANTED = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion/", "gguf-py/gguf/", "gguf-py/LICENSE")
MARKER = "fireflan-llama-cpp.json"  # written last: a folder without it is not complete


class ConverterUnavailable(RuntimeError):
    """The converter could not be obtained (no llama-cpp-python installed, no index reachable)."""


class ConverterError(RuntimeError):
    """A converter script failed; the message carries the command and the tail of its output."""


def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        raise ConverterUnavailable(f"{PACKAGE} is not installed (pip install 'fireflan[infer]'); the GGUF "
                                   "converter is taken from the sdist of the installed version") from None


def converter_dir(version: str | None = None) -> Path:
    """The folder holding llama.cpp's converters for `version` (default: the installed llama-cpp-python).

    Downloaded and extracted on the first call; later calls only check the marker file.
    """
    version = version or installed_version()
    out = cache_dir() / f"llama.cpp-{version}"
    if (out / MARKER).exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".llama.cpp-{version}-", dir=out.parent) as tmp:
        tmp = Path(tmp)
        sdist = os.environ.get("FIREFLAN_LLAMA_CPP_SDIST") or download_sdist(version, tmp / "download")
        staged = tmp / "tools"
        files = extract(Path(sdist), staged)
        (staged / MARKER).write_text(json.dumps({"package": PACKAGE, "version": version, "sdist": Path(sdist).name,
                                                 "files": files}, indent=1) + "\n")
        if not (out / MARKER).exists():  # else another process finished first
            shutil.rmtree(out, ignore_errors=True)  # what a killed run left (no marker)
            try:
                staged.rename(out)
            except OSError:
                if not (out / MARKER).exists():
                    raise
    return out


def download_sdist(version: str, dest: Path) -> Path:
    """`pip download` the sdist of llama-cpp-python==version into dest; returns the file."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", f"{PACKAGE}=={version}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(dest.glob("*.tar.gz"))
    if proc.returncode != 0 or not found:
        raise ConverterUnavailable(
            f"could not download the {PACKAGE} {version} sdist (it carries llama.cpp's GGUF converter); is a "
            f"package index reachable? Or set FIREFLAN_LLAMA_CPP_SDIST to a local copy.\n$ {' '.join(cmd)}\n"
            + tail(proc.stdout + proc.stderr))
    return found[0]


def extract(sdist: Path, out: Path) -> int:
    """Extract the WANTED paths under vendor/llama.cpp/ of the sdist into out; returns the file count."""
    count = 0
    with tarfile.open(sdist) as tar:
        for member in tar:
            top, _, rest = member.name.partition("/")
            rel = rest.removeprefix(VENDOR) if rest.startswith(VENDOR) else None
            if rel is None or not member.isfile() or not rel.startswith(WANTED) or ".." in Path(rel).parts:
                continue
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            count += 1
    missing = [w for w in WANTED if not (out / w).exists()]
    if missing:
        raise ConverterUnavailable(f"{sdist.name} lacks {', '.join(VENDOR + m for m in missing)}: this version "
                                   f"of {PACKAGE} does not ship the converter fireflan expects")
    return count


def converter_env(tools: Path) -> dict[str, str]:
    """The environment of a converter run: the bundled gguf-py first on the path, the hub offline."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tools / "gguf-py"), env.get("PYTHONPATH")]))
    env["HF_HUB_OFFLINE"] = "1"
    env["NO_LOCAL_GGUF"] = "1"  # the gguf-py scripts would otherwise insert their own path; ours is the same
    env.setdefault("PYTHONIOENCODING", "utf-8")
    return env


def run_script(tools: Path, script: str, args: list, timeout: float | None = None,
               label: str | None = None) -> subprocess.CompletedProcess:
    """Run one of llama.cpp's Python scripts (a path relative to tools; "-c" runs args[0] as code) with the
    bundled gguf-py; raises ConverterError, with the command and the tail of its output, on failure."""
    label = label or script
    cmd = [sys.executable, *(["-c"] if script == "-c" else [str(tools / script)]), *map(str, args)]
    shown = " ".join(c if len(c) < 200 else c[:60] + "..." for c in cmd)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=converter_env(tools),
                              stdin=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(errors="replace")
        raise ConverterError(f"{label} timed out after {timeout} s\n$ {shown}\n{tail(out)}") from None
    if proc.returncode != 0:
        raise ConverterError(f"{label} failed (exit {proc.returncode})\n$ {shown}\n" + tail(proc.stdout + proc.stderr))
    return proc


def tail(text: str, lines: int = 25) -> str:
    """The last lines of a tool's output, for error messages."""
    return "\n".join(text.rstrip().splitlines()[-lines:])
