"""`fireflan doctor`: the advice on machines described by their facts, and the verb on this one."""

import json

from helpers import run_cli

from fireflan.doctor import advice, cuda_tuple, describe

VERSIONS = {"torch": "2.14.1", "transformers": "5.25.0", "trl": "1.15.0", "unsloth": "2026.10.9",
            "llama_cpp_python": "0.3.36"}
DRIVER = {"name": "NVIDIA GeForce RTX 4090", "version": "550.54.14", "cuda": "12.4"}


def machine(**changes) -> dict:
    """A workstation with a GPU that works, Unsloth importable and llama.cpp built for CUDA; CHANGES break it."""
    return {"versions": VERSIONS, "driver": DRIVER, "torch_cuda": "12.4", "cuda_available": True, "bf16": True,
            "unsloth_import": "ok", "llama_gpu_offload": True, **changes}


def test_a_torch_built_for_a_newer_cuda_than_the_driver_runs_is_named_and_train_says_it_runs_on_the_cpu():
    lines = advice(machine(torch_cuda="13.0", cuda_available=False, bf16=False))
    assert lines[0] == ("torch 2.14.1 is built for CUDA 13.0, and this driver (550.54.14) runs CUDA 12.4 at most: "
                        "torch sees no GPU. Update the driver, or install a torch built for CUDA 12.4 or older")
    assert "train --backend auto: trl, TRL on the CPU (the GPU is not usable: see above)" in lines


def test_the_workstation_that_works_trains_with_unsloth_and_evaluates_on_the_gpu():
    assert advice(machine()) == ["train --backend auto: unsloth, Unsloth on the GPU, 4-bit LoRA",
                                 "evaluate, chat and serve: llama.cpp on the GPU"]


def test_what_breaks_unsloth_or_llama_cpp_on_a_gpu_machine_is_said_with_what_to_do():
    lines = advice(machine(unsloth_import="NotImplementedError: Unsloth cannot find any torch accelerator",
                           llama_gpu_offload=False, bf16=False))
    assert lines[0].startswith("unsloth 2026.10.9 is installed but its import fails: NotImplementedError")
    assert "train --backend auto: trl, TRL on the GPU (Unsloth is not usable: pip install -e '.[gpu]')" in lines
    assert any(line.startswith("this GPU has no bf16") for line in lines)
    assert any("built without GPU support: CMAKE_ARGS='-DGGML_CUDA=on'" in line for line in lines)
    cpu_build = advice(machine(torch_cuda=None, cuda_available=False))
    assert cpu_build[0].startswith("torch 2.14.1 is a CPU build on a machine with an NVIDIA GPU")
    assert cuda_tuple("12.4") == (12, 4) and cuda_tuple(None) is None


def test_doctor_on_this_machine_names_what_it_has_and_what_train_will_use():
    proc = run_cli("doctor", "--json")
    result = json.loads(proc.stdout)
    facts = result["facts"]
    import torch

    assert facts["versions"]["torch"] == torch.__version__ and facts["torch_cuda"] == torch.version.cuda
    backend = "unsloth" if facts["cuda_available"] and facts.get("unsloth_import") == "ok" else "trl"
    assert any(line.startswith(f"train --backend auto: {backend}") for line in result["advice"])
    shown = describe(facts)
    assert shown[1].startswith("packages: torch ") and shown[3].startswith("torch: ")
