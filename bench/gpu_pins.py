"""What a GPU user's `pip install 'fireflan[gpu,infer]'` selects, and fireflan's TRL backend under it on CPU.

    python3 bench/gpu_pins.py                   # resolve, build a CPU twin of it, run the tests (~10 min)
    python3 bench/gpu_pins.py --resolve-only    # only the versions (~1 min)

Unsloth pins its own transformers, trl, peft, datasets and accelerate (and a CUDA torch). This
script asks pip to resolve `fireflan[gpu,infer]` exactly as a GPU workstation would (`--dry-run`
in a scratch virtual environment: nothing of several GB is downloaded), then builds a second
environment with those versions and the CPU torch of this machine in place of the CUDA one, and
runs the TRL-backend tests there (training, the fast loss, export: tests/test_train.py and
tests/test_export.py, default tier). Whoever changes the `gpu` extra, or fireflan's use of those
libraries, reruns it. The last line is one JSON object.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINNED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "unsloth_zoo",
          "bitsandbytes", "xformers", "triton", "llama_cpp_python")
TESTS = ("tests/test_train.py", "tests/test_export.py")


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, text=True, capture_output=True, **kwargs)


def venv(folder: Path) -> Path:
    run(sys.executable, "-m", "venv", folder)
    return folder / "bin" / "python"


def resolve(python: Path, extras: str, report: Path) -> dict[str, str]:
    """{package: version} that pip selects for fireflan[extras] on an empty environment."""
    run(python, "-m", "pip", "install", "--quiet", "--dry-run", "--ignore-installed", "--report", report,
        "-e", f"{ROOT}[{extras}]", cwd=ROOT)
    installs = json.loads(report.read_text())["install"]
    versions = {i["metadata"]["name"].lower().replace("-", "_"): i["metadata"]["version"] for i in installs}
    return {name: versions[name] for name in PINNED if name in versions}


def cpu_twin(python: Path, versions: dict[str, str]) -> None:
    """fireflan's CPU environment (the constraints' torch), then the libraries at the GPU's versions."""
    pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(*pip, "-c", ROOT / "constraints.txt", "torch==2.13.0")
    run(*pip, "-c", ROOT / "constraints.txt", "-e", f"{ROOT}[train,infer,dev]", cwd=ROOT)
    libraries = [f"{n}=={versions[n]}" for n in ("transformers", "trl", "peft", "datasets", "accelerate")]
    run(*pip, *libraries)
    run(python, "-m", "pip", "check")  # nothing left broken, apart from the torch swap (CPU for CUDA)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--extras", default="gpu,infer", help="the extras a GPU user installs")
    parser.add_argument("--resolve-only", action="store_true", help="print the versions, run no test")
    args = parser.parse_args()
    result = {"extras": args.extras}
    with tempfile.TemporaryDirectory(prefix="fireflan-gpu-pins-") as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        result["selected"] = resolve(venv(tmp / "resolve"), args.extras, tmp / "report.json")
        result["resolve_seconds"] = round(time.perf_counter() - started, 1)
        selected = ", ".join(f"{k} {v}" for k, v in result["selected"].items())
        print(f"pip selects for fireflan[{args.extras}]: {selected}")
        if not args.resolve_only:
            python = venv(tmp / "twin")
            try:
                cpu_twin(python, result["selected"])
            except subprocess.CalledProcessError as e:
                sys.exit(f"building the CPU twin failed: {' '.join(map(str, e.cmd))}\n{e.stdout}\n{e.stderr}")
            started = time.perf_counter()
            tests = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *TESTS],
                                   cwd=ROOT, text=True, capture_output=True)
            summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else tests.stderr[-500:]
            print(tests.stdout[-3000:])
            result.update(tests_passed=tests.returncode == 0, tests=summary, test_files=list(TESTS),
                          test_seconds=round(time.perf_counter() - started, 1))
    print(json.dumps(result))
    if "tests_passed" in result and not result["tests_passed"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
