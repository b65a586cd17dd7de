"""`fireflan serve MODEL.gguf`: the fine-tuned agent behind an OpenAI-compatible endpoint with tool calling.

    python -m fireflan serve runs/hotpotqa/model/gguf/model-q8_0.gguf          # http://127.0.0.1:8000/v1

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="none")

Requests with `tools` are rendered the way the model was trained, its step is read with the agent's parser
and returned as `tool_calls` (finish_reason "tool_calls") or as the answer (content); see
fireflan.serve.reply for what is kept of a request, fireflan.serve.app for how it is built on
llama-cpp-python's server. It needs the `infer` extra.
"""

from fireflan.serve.run import ServeConfig, check_model, free_port, make_app, serve, served

__all__ = ["ServeConfig", "check_model", "free_port", "make_app", "serve", "served"]
