"""A real headless Chromium, driven over the DevTools protocol, for the vis and serve
page tests (tests/test_browser.py).

No Python dependency: Chromium's ``--remote-debugging-pipe`` reads protocol commands
as NUL-terminated JSON on file descriptor 3 and writes answers and events on 4. Keys
and mouse clicks go through ``Input.dispatch*Event``, so the page sees trusted events
exactly as from a person (its key handlers, focus, default actions); nothing is faked
in page script.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

from helpers import track

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
KEYS = {  # key -> (code, windowsVirtualKeyCode) for the keys the tests press
    "Tab": ("Tab", 9),
    "Enter": ("Enter", 13),
    "Escape": ("Escape", 27),
    "ArrowDown": ("ArrowDown", 40),
    "ArrowUp": ("ArrowUp", 38),
    "ArrowRight": ("ArrowRight", 39),
    "ArrowLeft": ("ArrowLeft", 37),
}


def find_chromium() -> str | None:
    """$CHARRNN_CHROMIUM, else the first Chromium on PATH."""
    explicit = os.environ.get("CHARRNN_CHROMIUM")
    if explicit:
        return explicit
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class BrowserError(RuntimeError):
    pass


class Browser:
    """One headless Chromium process with one page (tab) attached."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900):
        self.profile = tempfile.mkdtemp(prefix="charrnn-chromium-")
        cmd_r, cmd_w = os.pipe()
        res_r, res_w = os.pipe()
        # move the child's ends above 10 so that dup2 onto 3 and 4 cannot clobber them
        child_in, child_out = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (cmd_r, res_w))
        os.close(cmd_r)
        os.close(res_w)

        def child_fds():
            os.dup2(child_in, 3)
            os.dup2(child_out, 4)

        args = [
            executable,
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-sync",
            "--mute-audio",
        ]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run its sandbox as root
        self.log = open(os.path.join(self.profile, "chromium.log"), "w")
        self.proc = track(  # killed with the fixture's scope even if close() is never reached
            subprocess.Popen(
                [*args, "about:blank"],
                preexec_fn=child_fds,
                close_fds=False,  # Python's own descriptors are not inheritable; 3 and 4 are
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
            )
        )
        os.close(child_in)
        os.close(child_out)
        self.w, self.r = cmd_w, res_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []
        self.session = None
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)[
            "sessionId"
        ]
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    # ------------------------------------------------------------ the protocol

    def call(self, method: str, params: dict | None = None, session=True, timeout: float = 30.0) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            for reply in self._messages(deadline):
                if reply.get("id") == self.next_id:
                    if "error" in reply:
                        raise BrowserError(f"{method}: {reply['error']}")
                    return reply.get("result", {})
                self.events.append(reply)

    def _messages(self, deadline: float):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.r], [], [], left)[0]:
                raise BrowserError("no answer from Chromium in time")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited (code {self.proc.poll()}); see {self.log.name}")
            self.buf += chunk
        while b"\0" in self.buf:
            raw, self.buf = self.buf.split(b"\0", 1)
            yield json.loads(raw)

    # ------------------------------------------------------------ what a test does

    def open(self, url: str, ready: str = "document.body && document.body.dataset.ready === 'true'") -> None:
        self.call("Page.navigate", {"url": url})
        self.wait_for(ready)

    def eval(self, expression: str, timeout: float = 30.0):
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}, timeout=timeout
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r}: {result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(0.05)

    def key(self, key: str, modifiers: int = 0) -> None:
        """Press and release a named key (KEYS)."""
        code, vk = KEYS[key]
        base = {
            "key": key,
            "code": code,
            "windowsVirtualKeyCode": vk,
            "nativeVirtualKeyCode": vk,
            "modifiers": modifiers,
        }
        # Enter produces a character (a button acts on it, a text area gets a line break);
        # the other keys here only act on their key-down
        down = {"type": "keyDown", "text": "\r", "unmodifiedText": "\r"} if key == "Enter" else {"type": "rawKeyDown"}
        self.call("Input.dispatchKeyEvent", {**down, **base})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    def type(self, text: str) -> None:
        """Type ``text`` one key at a time (keydown with its character, then keyup)."""
        for ch in text:
            if ch == "\n":
                self.key("Enter")
                continue
            self.call("Input.dispatchKeyEvent", {"type": "keyDown", "key": ch, "text": ch, "unmodifiedText": ch})
            self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})

    def click(self, selector: str) -> None:
        """A left click at the middle of the first element matching ``selector``."""
        box = self.eval(
            f"(function(){{var e=document.querySelector({json.dumps(selector)}); if(!e) return null;"
            f"e.scrollIntoView({{block:'center'}}); var r=e.getBoundingClientRect();"
            f"return [r.left + r.width/2, r.top + r.height/2];}})()"
        )
        if box is None:
            raise BrowserError(f"nothing matches {selector!r}")
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})

    def screenshot(self, path: str) -> str:
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False, timeout=5)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.w, self.r):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
