"""The serve stage: its options, the app, and the server run in the foreground or in a child process."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from dataclasses import dataclass

from fireflan.agent import toolcalls
from fireflan.io import DataError, whole
from fireflan.models.llama import default_threads, gguf_problem, without_amx_repacking
from fireflan.options import opt
from fireflan.serve.app import CHAT_FORMAT, FireflanHandler, RequestCheck


@dataclass
class ServeConfig:
    """Options of `fireflan serve`."""

    model: str = opt("runs/hotpotqa/model/gguf/model-q8_0.gguf", "the GGUF file to serve")
    host: str = opt("127.0.0.1", "the address to listen on (loopback: this machine only)")
    port: int = opt(8000, "the port to listen on")
    n_ctx: int = opt(4096, "llama.cpp's context length, in tokens")
    threads: int | None = opt(None, "llama.cpp threads (None: all cores but one; one on two cores)")
    max_tokens: int = opt(256, "tokens per reply when a request does not say")
    alias: str | None = opt(None, "the model name /v1/models lists (None: the file's name)")


def make_app(config: ServeConfig):
    """The ASGI app: llama-cpp-python's server with the model loaded, fireflan's handler and request check."""
    from llama_cpp.llama_chat_format import LlamaChatCompletionHandlerRegistry
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ModelSettings, ServerSettings

    check_model(config.model)
    LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(
        CHAT_FORMAT, FireflanHandler(config.max_tokens), overwrite=True)
    threads = config.threads or default_threads()
    model = ModelSettings(model=config.model, model_alias=config.alias or os.path.basename(config.model),
                          chat_format=CHAT_FORMAT, n_ctx=config.n_ctx, n_threads=threads, n_threads_batch=threads,
                          verbose=False)
    with without_amx_repacking():
        app = create_app(server_settings=ServerSettings(host=config.host, port=config.port),
                         model_settings=[model])
    app.add_middleware(RequestCheck)
    return app


def check_model(path: str) -> None:
    """A GGUF the server can answer with: there, whole, with a chat template and a known action format."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such GGUF file")
    whole(os.path.dirname(path) or ".")
    if why := gguf_problem(path):
        raise DataError(path, f"not a loadable GGUF: {why}")
    from gguf import GGUFReader

    fields = GGUFReader(path).fields
    if "tokenizer.chat_template" not in fields:
        raise DataError(path, "it has no chat template, so requests cannot be rendered the way the model was "
                        "trained; export it with `fireflan export` (which writes one)",
                        field="tokenizer.chat_template")
    form = fields.get(toolcalls.ACTION_FORMAT_KEY)
    if form is not None and form.contents() not in toolcalls.ACTION_FORMATS:
        raise DataError(path, f"unknown action format {form.contents()!r}; fireflan knows "
                        f"{', '.join(toolcalls.ACTION_FORMATS)}", field=toolcalls.ACTION_FORMAT_KEY)


def serve(config: ServeConfig) -> None:
    """Serve until interrupted (Ctrl-C)."""
    import socket

    import uvicorn

    with socket.socket() as s:  # before the model is loaded: a port in use is said at once
        if not 0 < config.port < 65536:
            raise ValueError(f"--port {config.port}: a port is a number from 1 to 65535")
        try:
            s.bind((config.host, config.port))
        except OSError as e:
            raise ValueError(f"--port {config.port}: cannot listen on {config.host}:{config.port} ({e.strerror}); "
                             "choose another port") from None
    app = make_app(config)
    print(f"fireflan serve: {config.model} at http://{config.host}:{config.port}/v1 (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the system's choice)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(model, port: int | None = None, threads: int | None = None, timeout: float = 300.0, **options):
    """`fireflan serve MODEL` in a child process, up and answering; yields its base URL (…/v1); stopped after.

        with served("model.gguf") as url:
            client = OpenAI(base_url=url, api_key="none")
    """
    import subprocess
    import sys
    import urllib.request

    port = port or free_port()
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in {"port": port, "threads": threads, **options}.items()
             if v is not None]
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "fireflan", "serve", str(model), *flags], stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"fireflan serve {model} exited ({process.returncode}): "
                                   f"{log.read().decode(errors='replace')[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"fireflan serve {model} did not answer in {timeout:.0f} s") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
