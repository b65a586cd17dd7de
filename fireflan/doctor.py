"""`fireflan doctor`: what this machine has, and what fireflan will use on it and why.

A user with a GPU installs `fireflan[gpu,infer]` and may get a torch that cannot see the GPU (pip takes the torch
Unsloth's pins allow; its wheels need a newer CUDA driver than many machines have), an Unsloth that cannot be
imported, or a llama.cpp built for the CPU only; `train --backend auto` would then train on the CPU without a
word. doctor gathers the facts (versions, torch's CUDA build, the driver's CUDA, the GPU, bf16, Unsloth's import
tried in a child process so its patches stay out of this one, llama.cpp's backend), then says in plain lines
what `train` and `evaluate` will use and what to change.

    python -m fireflan doctor            # the facts, then what fireflan will use
    python -m fireflan doctor --json     # the facts and the advice as JSON
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from dataclasses import dataclass

from fireflan.options import opt
from fireflan.train.trainer import choose_backend

PACKAGES = ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "unsloth_zoo",
            "bitsandbytes", "llama_cpp_python")


@dataclass
class DoctorConfig:
    json: bool = opt(False, "print the facts and the advice as JSON")


# --------------------------------------------------------------------------- the advice (pure)

def cuda_tuple(version: str | None) -> tuple[int, ...] | None:
    """'12.4' -> (12, 4); None or text without a version -> None."""
    m = re.match(r"(\d+)\.(\d+)", version or "")
    return (int(m[1]), int(m[2])) if m else None


def advice(f: dict) -> list[str]:
    """What fireflan will use on a machine with facts F (see `facts`), and what to change, one line each."""
    lines = []
    gpu, torch_cuda = f.get("driver") is not None, f.get("torch_cuda")
    if f["versions"].get("torch") is None:
        lines.append("torch is not installed: train, export and grpo need it (pip install -e '.[train]')")
    elif gpu and not f.get("cuda_available"):
        need, have = cuda_tuple(torch_cuda), cuda_tuple(f["driver"].get("cuda"))
        if torch_cuda is None:
            lines.append(f"torch {f['versions']['torch']} is a CPU build on a machine with an NVIDIA GPU: install a "
                         f"CUDA build (https://pytorch.org/get-started/locally/, CUDA {f['driver'].get('cuda')} or "
                         "older)")
        elif need and have and need > have:
            lines.append(f"torch {f['versions']['torch']} is built for CUDA {torch_cuda}, and this driver "
                         f"({f['driver'].get('version')}) runs CUDA {f['driver']['cuda']} at most: torch sees no GPU. "
                         f"Update the driver, or install a torch built for CUDA {f['driver']['cuda']} or older")
        else:
            lines.append(f"torch {f['versions']['torch']} (CUDA {torch_cuda}) sees no GPU although the driver lists "
                         f"{f['driver'].get('name')}: check CUDA_VISIBLE_DEVICES and the driver")
    unsloth = f["versions"].get("unsloth") is not None
    if unsloth and f.get("unsloth_import") not in (None, "ok"):
        lines.append(f"unsloth {f['versions']['unsloth']} is installed but its import fails: {f['unsloth_import']}")
    usable = unsloth and f.get("unsloth_import") == "ok"
    backend = choose_backend("auto", bool(f.get("cuda_available")), usable)
    why = ("Unsloth on the GPU, 4-bit LoRA" if backend == "unsloth" else
           "TRL on the GPU (Unsloth is not usable: pip install -e '.[gpu]')" if f.get("cuda_available") else
           "TRL on the CPU" + (" (the GPU is not usable: see above)" if gpu else ""))
    lines.append(f"train --backend auto: {backend}, {why}")
    if f.get("cuda_available") and not f.get("bf16"):
        lines.append("this GPU has no bf16: Unsloth trains in fp16 (Gemma 3 is kept in fp32 by Unsloth)")
    offload = f.get("llama_gpu_offload")
    if f["versions"].get("llama_cpp_python") is None:
        lines.append("llama-cpp-python is not installed: export, evaluate, chat and serve need it "
                     "(pip install -e '.[infer]')")
    else:
        lines.append("evaluate, chat and serve: llama.cpp on the " + ("GPU" if offload else "CPU") + (
            " (this llama-cpp-python was built without GPU support: CMAKE_ARGS='-DGGML_CUDA=on' pip install "
            "--force-reinstall --no-binary llama-cpp-python llama-cpp-python)" if gpu and not offload else ""))
    return lines


def describe(f: dict) -> list[str]:
    """The facts, one line each."""
    v = f["versions"]
    lines = [f"python {f['python']} on {f['platform']}, {f['cpus']} CPUs, {f['ram_gib']} GiB RAM"
             + (f", CPU bf16 ({', '.join(f['cpu_bf16'])})" if f["cpu_bf16"] else ""),
             "packages: " + ", ".join(f"{k} {v[k]}" for k in PACKAGES if v.get(k)),
             "not installed: " + (", ".join(k for k in PACKAGES if not v.get(k)) or "none")]
    if v.get("torch"):
        lines.append(f"torch: {'CUDA ' + f['torch_cuda'] + ' build' if f['torch_cuda'] else 'CPU build'}, "
                     f"GPU {'visible' if f['cuda_available'] else 'not visible'}")
    for d in f.get("devices", []):
        lines.append(f"GPU: {d['name']}, {d['memory_gib']} GiB, compute capability {d['capability']}, "
                     f"bf16 {'yes' if f.get('bf16') else 'no'}")
    driver = f.get("driver")
    lines.append(f"NVIDIA driver {driver['version']} (CUDA {driver['cuda']} at most): {driver['name']}" if driver
                 else "NVIDIA driver: none (nvidia-smi not found or no GPU)")
    if v.get("unsloth"):
        lines.append(f"unsloth import: {f['unsloth_import']}")
    if v.get("llama_cpp_python"):
        lines.append(f"llama.cpp GPU offload: {'yes' if f['llama_gpu_offload'] else 'no'}")
    return lines


# --------------------------------------------------------------------------- the facts

def _version(package: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(package.replace("_", "-"))
    except metadata.PackageNotFoundError:
        return None


def _driver() -> dict | None:
    """The first GPU's name, the driver's version and the CUDA it runs at most (nvidia-smi), or None."""
    try:
        query = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                               capture_output=True, text=True, timeout=30)
        header = subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if query.returncode != 0 or not query.stdout.strip():
        return None
    name, version = [x.strip() for x in query.stdout.splitlines()[0].split(",")][:2]
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", header.stdout)
    return {"name": name, "version": version, "cuda": cuda[1] if cuda else None}


def _cpu_bf16() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return []
    return [x for x in ("avx512_bf16", "amx_bf16") if x in flags]


def unsloth_import() -> str:
    """'ok', or the last line of what importing unsloth raises, tried in a child process (its patches stay there)."""
    try:
        proc = subprocess.run([sys.executable, "-c", "import unsloth"], capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "timed out after 300 s"
    if proc.returncode == 0:
        return "ok"
    return (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]


def facts() -> dict:
    """What `advice` and `describe` read: versions, torch's CUDA build and devices, the driver, Unsloth's import,
    llama.cpp's GPU offload."""
    versions = {k: _version(k) for k in PACKAGES}
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    f = {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
         "ram_gib": round(ram / 2**30, 1), "cpu_bf16": _cpu_bf16(), "versions": versions, "driver": _driver(),
         "torch_cuda": None, "cuda_available": False, "devices": [], "bf16": False}
    if versions["torch"]:
        import torch

        f["torch_cuda"], f["cuda_available"] = torch.version.cuda, torch.cuda.is_available()
        if f["cuda_available"]:
            f["bf16"] = torch.cuda.is_bf16_supported()
            for i in range(torch.cuda.device_count()):
                p = torch.cuda.get_device_properties(i)
                f["devices"].append({"name": p.name, "memory_gib": round(p.total_memory / 2**30, 1),
                                     "capability": f"{p.major}.{p.minor}"})
    if versions["unsloth"]:
        f["unsloth_import"] = unsloth_import()
    if versions["llama_cpp_python"]:
        import llama_cpp

        f["llama_gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
    return f


def doctor(config: DoctorConfig) -> dict:
    """Print the facts and the advice (or, with --json, both as JSON); returns them."""
    import json

    f = facts()
    result = {"facts": f, "advice": advice(f)}
    print(json.dumps(result, indent=1) if config.json else "\n".join(describe(f) + [""] + result["advice"]))
    return result
