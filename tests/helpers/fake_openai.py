"""A fake OpenAI-compatible server on 127.0.0.1 for tests: scripted answers, recorded requests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def reply(text, prompt=10, completion=5, status=200, headers=None, usage=True, delay=0.0):
    """A scripted chat-completion response."""
    body = {"id": "c1", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    if usage:
        body["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                         "total_tokens": prompt + completion}
    return {"status": status, "body": body, "headers": headers or {}, "delay": delay}


def error(status, message="boom", headers=None):
    return {"status": status, "body": {"error": {"message": message, "type": "x", "code": None}},
            "headers": headers or {}, "delay": 0.0}


def page(status, html):
    """An HTML error page, as a web server that is not an OpenAI server answers."""
    return {"status": status, "body": html, "headers": {}, "delay": 0.0}


class FakeServer:
    """Answers POST /v1/chat/completions from `script` (then `default`, else 418), recording each request."""

    def __init__(self):
        self.script: list[dict] = []
        self.default: dict | None = None
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with fake.lock:
                    fake.requests.append({"path": self.path, "json": body,
                                          "authorization": self.headers.get("Authorization")})
                    answer = fake.script.pop(0) if fake.script else fake.default
                if self.path != "/v1/chat/completions":
                    answer = error(404, f"no route {self.path}")
                answer = answer or error(418, "fake server: the test scripted too few responses")
                time.sleep(answer["delay"])
                html = isinstance(answer["body"], str)  # a proxy's or a web server's error page
                data = answer["body"].encode() if html else json.dumps(answer["body"]).encode()
                try:
                    self.send_response(answer["status"])
                    self.send_header("Content-Type", "text/html" if html else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in answer["headers"].items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
