"""Headless Chromium for the report page's tests: found or installed, driven over the DevTools protocol."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

SCREENSHOTS = Path("/tmp/fireflan-screenshots")


def find_chromium() -> str | None:
    for name in (os.environ.get("FIREFLAN_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def install_chromium() -> str:
    """apt-get install chromium (after apt-get update if the package lists are stale); '' or why it failed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    why = ""
    for commands in ([install], [["apt-get", "update"], install]):
        try:
            for command in commands:
                subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=True)
            return ""
        except subprocess.CalledProcessError as e:
            why = f"{' '.join(e.cmd)} failed: {(e.stderr or '').strip().splitlines()[-1:] or e.returncode}"
        except (subprocess.TimeoutExpired, OSError) as e:
            why = f"{type(e).__name__}: {e}"
    return why


class Browser:
    """Headless Chromium, driven over the DevTools protocol on a pipe: JSON messages ending in a NUL byte,
    written to the browser's fd 3 and read from its fd 4."""

    def __init__(self, binary: str, profile: Path):
        import fcntl

        def high(fd):  # out of the way of fds 3 and 4, where the browser expects the pipe
            moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            return moved

        to_browser, self._write = map(high, os.pipe())
        self._read, from_browser = map(high, os.pipe())
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--hide-scrollbars", "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"]
        trampoline = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); " \
                     "os.execvp(sys.argv[3], sys.argv[3:])"  # the pipe's ends become the browser's fds 3 and 4
        profile.mkdir(parents=True, exist_ok=True)
        self.log = profile / "chromium.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", trampoline, str(to_browser), str(from_browser),
                                          binary, *flags], pass_fds=(to_browser, from_browser),
                                         stdout=subprocess.DEVNULL, stderr=log)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id = b"", 0

    def call(self, method: str, session: str | None = None, timeout: float = 20, **params) -> dict:
        import select

        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._id:
                    if "error" in reply:
                        raise RuntimeError(f"{method}: {reply['error']}")
                    return reply["result"]
            ready, _, _ = select.select([self._read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"Chromium did not answer {method} in {timeout} s")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"Chromium closed its protocol pipe; its log ends: {self.log.read_text()[-2000:]}")
            self._buffer += chunk

    def open(self, url: str, width: int = 1500, height: int = 1000) -> Tab:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height, deviceScaleFactor=1,
                  mobile=False)
        self.call("Page.navigate", session, url=url)
        tab = Tab(self, session)
        tab.wait("document.readyState === 'complete' && document.body.dataset.view")
        return tab

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
            self.proc.wait(10)
        except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        os.close(self._write)
        os.close(self._read)


class Tab:
    def __init__(self, browser: Browser, session: str):
        self.browser, self.session = browser, session

    def js(self, expression: str):
        result = self.browser.call("Runtime.evaluate", self.session, expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 10):
        deadline = time.monotonic() + timeout
        while not (value := self.js(expression)):
            if time.monotonic() > deadline:
                raise AssertionError(f"the page never showed: {expression}")
            time.sleep(0.05)
        return value

    def screenshot(self, folder: Path, name: str, height: int | None = None) -> Path:
        """Save what is shown as FOLDER/NAME (and in /tmp/fireflan-screenshots); `height`: of the page, beyond
        the window if need be."""
        import base64

        clip = {"clip": {"x": 0, "y": 0, "width": self.js("innerWidth"), "height": height, "scale": 1},
                "captureBeyondViewport": True} if height else {}
        data = self.browser.call("Page.captureScreenshot", self.session, format="png", **clip)["data"]
        path = folder / name
        path.write_bytes(base64.b64decode(data))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)
        return path
