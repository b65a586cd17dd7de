"""One way for every stage to load a model: a GGUF file, the embedded base, or a model behind an OpenAI server.

    model, needs_shots = load_model("runs/hotpotqa/model/gguf/model-q8_0.gguf")
    model, needs_shots = load_model("embedded")                          # the base: prompted with few shots
    model, needs_shots = load_model("gpt-4o-mini", base_url="https://api.openai.com/v1")
"""

from __future__ import annotations

from pathlib import Path

from fireflan.io import whole
from fireflan.models.llama import LlamaModel
from fireflan.models.openai_compat import OpenAIModel
from fireflan.train.bases import embedded_gguf


def check_model(spec: str, base_url: str | None = None) -> None:
    """Refuse a model `load_model` could not load (not a .gguf, no such file) without loading it: a stage
    checks its model before it writes anything or runs its teacher."""
    if base_url or spec == "embedded":
        return
    if Path(spec).suffix != ".gguf":
        raise ValueError(f"--model must be a .gguf file, 'embedded', or a model id with --base-url; got {spec}")
    if not Path(spec).is_file():
        raise FileNotFoundError(f"{spec}: no such GGUF file")
    whole(Path(spec).parent)


def load_model(spec: str, *, base_url: str | None = None, threads: int | None = None, seed: int = 0,
               constrain: bool = False, actions: tuple[str, ...] | None = None):
    """(model, whether it is a base model that needs a few-shot prompt). `actions`: the environment's, which a
    model trained to call tools (the hermes format) is told are its tools."""
    if base_url:
        return OpenAIModel(spec, base_url=base_url), True
    if spec == "embedded":
        return LlamaModel(embedded_gguf(), raw=True, threads=threads, seed=seed, name="gemma3-270m (base)",
                          constrain_actions=constrain), True
    check_model(spec)
    model = LlamaModel(Path(spec), threads=threads, seed=seed, constrain_actions=constrain)
    if actions:
        model.use_tools(actions)
    return model, False
