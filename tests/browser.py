"""A small Chrome DevTools Protocol client for tests: headless Chromium driven over a pipe, no dependencies.

    with Browser() as browser:
        page = browser.new_page()
        page.goto(path.as_uri())
        page.click("th[data-column='fid']")
        rows = page.evaluate("[...document.querySelectorAll('tr')].length")

With ``--remote-debugging-pipe`` Chromium reads protocol messages on fd 3 and writes them on fd 4, each a
JSON object ended by a NUL byte. An answer repeats its command's id; events that arrive while we wait for
one are kept (``Browser.events``, ``Browser.wait_for_event``). Everything runs in the calling thread.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

TIMEOUT = 30.0  # seconds, for every wait

# subprocess passes descriptors only under their own numbers (pass_fds), and the two pipe ends are
# wherever os.pipe() put them, so they go in as the child's stdin and stdout (which subprocess places
# safely whatever their numbers) and this trampoline, run by the same Python, moves them to 3 and 4,
# points stdin and stdout at /dev/null (Chromium must not write into the protocol) and becomes Chromium.
_ONTO_FDS_3_AND_4 = """\
import os, sys
os.dup2(0, 3)
os.dup2(1, 4)
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 0)
os.dup2(null, 1)
os.execv(sys.argv[1], sys.argv[1:])
"""

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")


class BrowserError(RuntimeError):
    """Chromium answered with an error, a page script threw, or a wait timed out."""


def chromium_path() -> Optional[str]:
    """The Chromium to drive: $CHROMIUM when set, else /usr/bin/chromium, else `chromium` on PATH; None when
    that is not an executable."""
    candidates = [os.environ["CHROMIUM"]] if os.environ.get("CHROMIUM") else ["/usr/bin/chromium", "chromium"]
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return path
    return None


class Browser:
    """Headless Chromium with a fresh profile, closed (terminate, then kill) when the `with` block ends.
    `flags`: command-line switches added to :data:`FLAGS` (e.g. ``--autoplay-policy=no-user-gesture-required``)."""

    def __init__(self, executable: Optional[str] = None, timeout: float = TIMEOUT, flags: Sequence[str] = ()):
        self.executable = executable or chromium_path()
        if self.executable is None:
            raise FileNotFoundError("Chromium is not installed (set CHROMIUM or apt-get install chromium)")
        self.timeout = timeout
        self.flags = tuple(flags)
        self._next_id = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._process: Optional[subprocess.Popen] = None

    def __enter__(self) -> "Browser":
        self._dir = tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True)
        self._log_path = Path(self._dir.name) / "chromium.log"
        to_chromium_r, self._to_chromium = os.pipe()
        self._from_chromium, from_chromium_w = os.pipe()
        argv = [self.executable, *FLAGS, *self.flags, f"--user-data-dir={Path(self._dir.name) / 'profile'}"]
        try:
            with open(self._log_path, "wb") as log:
                self._process = subprocess.Popen([sys.executable, "-I", "-S", "-c", _ONTO_FDS_3_AND_4, *argv],
                                                 stdin=to_chromium_r, stdout=from_chromium_w, stderr=log)
        except BaseException:
            self._close_pipes()
            self._dir.cleanup()
            raise
        finally:
            os.close(to_chromium_r)  # the child has its copies; ours would hide Chromium exiting (no EOF)
            os.close(from_chromium_w)
        try:
            self.send("Target.setDiscoverTargets", {"discover": False})  # the first answer: Chromium is up
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
            self._close_pipes()
            self._dir.cleanup()

    def _close_pipes(self) -> None:
        for fd in (self._to_chromium, self._from_chromium):
            os.close(fd)

    # -- protocol -----------------------------------------------------------------------------------------

    def send(self, method: str, params: Optional[dict] = None, session_id: Optional[str] = None) -> dict:
        """Send one command and return its result; raise BrowserError on an error answer or a timeout."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id:
            message["sessionId"] = session_id
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_chromium, data):]
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline, f"the answer to {method}")
            if reply.get("id") == message["id"]:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')} {reply['error'].get('data', '')}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def wait_for_event(self, method: str, session_id: Optional[str] = None) -> dict:
        """The params of the first `method` event (of `session_id`) not yet waited for."""
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self._events:
                if event["method"] == method and event.get("sessionId") == session_id:
                    self._events.remove(event)
                    return event.get("params", {})
            message = self._receive(deadline, f"the event {method}")
            if "method" in message:
                self._events.append(message)

    def events(self, method: str, session_id: Optional[str] = None) -> list[dict]:
        """The params of every `method` event (of `session_id`) received so far, kept for later calls."""
        return [e.get("params", {}) for e in self._events
                if e["method"] == method and e.get("sessionId") == session_id]

    def drop_events(self, method: str, session_id: Optional[str] = None) -> None:
        """Forget the `method` events received so far, before an action whose own such event we wait for."""
        self._events = [e for e in self._events if not (e["method"] == method and e.get("sessionId") == session_id)]

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._from_chromium], [], [], remaining)[0]:
                raise BrowserError(f"timed out after {self.timeout:.0f} s waiting for {waiting_for}")
            chunk = os.read(self._from_chromium, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium closed the pipe while we waited for {waiting_for} "
                                   f"({self._exit_status()}); its log ends with:\n{self._log_tail()}")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _exit_status(self) -> str:
        try:  # a closed pipe usually means Chromium is exiting: give it a moment to say how
            return f"exit code {self._process.wait(timeout=5)}"
        except subprocess.TimeoutExpired:
            return "still running"

    def _log_tail(self, lines: int = 20) -> str:
        return "\n".join(self._log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- pages --------------------------------------------------------------------------------------------

    def new_page(self, width: int = 1280, height: int = 800) -> "Page":
        """A new tab with a `width` x `height` CSS-pixel viewport, recording the URLs it requests."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, target, session)
        for domain in ("Page", "Runtime", "Network"):
            page.send(f"{domain}.enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page


class Page:
    """One attached tab (a flat-mode CDP session)."""

    def __init__(self, browser: Browser, target_id: str, session_id: str):
        self.browser = browser
        self.target_id = target_id
        self.session_id = session_id

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target_id})

    def send(self, method: str, params: Optional[dict] = None) -> dict:
        return self.browser.send(method, params, self.session_id)

    @property
    def requests(self) -> list[str]:
        """Every URL this page asked for, in order (Network.requestWillBeSent)."""
        return [e["request"]["url"] for e in self.browser.events("Network.requestWillBeSent", self.session_id)]

    def goto(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self.browser.drop_events("Page.loadEventFired", self.session_id)
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.browser.wait_for_event("Page.loadEventFired", self.session_id)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited), as JSON-like data; raises BrowserError
        with the script's message when it throws."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            message = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript error: {message}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """The first truthy value of a JavaScript expression, polled in the page every 20 ms; BrowserError
        when it stays falsy for `timeout` seconds (keep it under the browser's own timeout)."""
        waiting = f"timed out after {timeout:g} s waiting for {expression}"
        return self.evaluate(f"""new Promise((resolve, reject) => {{
            const started = performance.now();
            const check = () => {{
                let value;
                try {{ value = ({expression}); }} catch (err) {{ reject(err); return; }}
                if (value) resolve(value);
                else if (performance.now() - started > {timeout * 1000}) reject(new Error({json.dumps(waiting)}));
                else setTimeout(check, 20);
            }};
            check();
        }})""")

    def click(self, selector: str, at: tuple[float, float] = (0.5, 0.5)) -> None:
        """Click the first element matching `selector` with the mouse, as a user would: the click lands on
        whatever is drawn there, so a covered or invisible element is not clicked. `at`: where, as fractions of
        the element's width and height (the centre by default; e.g. a point along a slider)."""
        box = self.evaluate(f"""(() => {{
            const element = document.querySelector({json.dumps(selector)});
            if (!element) return null;
            element.scrollIntoView({{block: "center", inline: "center"}});
            const r = element.getBoundingClientRect();
            return {{x: r.left + r.width * {float(at[0])}, y: r.top + r.height * {float(at[1])}, width: r.width,
                     height: r.height}};
        }})()""")
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        if not (box["width"] and box["height"]):
            raise BrowserError(f"{selector!r} has no size on the page: it cannot be clicked")
        point = {"x": box["x"], "y": box["y"]}
        self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", **point})
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "button": "left", "clickCount": 1, **point})

    def screenshot(self, path: str | os.PathLike, selector: Optional[str] = None) -> Path:
        """A PNG of the whole page (not only the viewport), or of the first element matching `selector`."""
        if selector is None:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            shot = self._capture({"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
        else:
            clip = self.evaluate(f"""(() => {{
                const element = document.querySelector({json.dumps(selector)});
                if (!element) return null;
                element.scrollIntoView({{block: "nearest"}});
                const r = element.getBoundingClientRect();  // in page coordinates: the clip is the page's
                return {{x: r.left + scrollX, y: r.top + scrollY, width: r.width, height: r.height, scale: 1}};
            }})()""")
            if clip is None:
                raise BrowserError(f"no element matches {selector!r}")
            # Within the viewport when it fits: capturing beyond it lays the page out again without the scrollbar,
            # wider than the element was measured.
            viewport = self.send("Page.getLayoutMetrics")["cssLayoutViewport"]
            shot = self._capture(clip, beyond_viewport=clip["height"] > viewport["clientHeight"])
        path = Path(path)
        path.write_bytes(shot)
        return path

    def _capture(self, clip: dict, beyond_viewport: bool = True) -> bytes:
        shot = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": beyond_viewport,
                                                    "clip": clip})
        return base64.b64decode(shot["data"])
