"""Headless Chromium (Debian's package) driven over the DevTools protocol, for tests of
the status page: open a URL, evaluate JavaScript in it, resize it, take a screenshot.

Chromium starts with a fresh profile and without its background networking (the
machine has no route out, and nothing in a test may reach beyond loopback)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trio
from trio_websocket import WebSocketConnection, open_websocket_url

from chain.service import TaskStatus

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")


def chromium() -> str | None:
    """The Chromium executable, if installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser(executable: str) -> Iterator[str]:
    """A running headless Chromium; yields its DevTools HTTP address (``http://127.0.0.1:P``)."""
    with tempfile.TemporaryDirectory(prefix="bizra-chromium-") as profile:
        process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text().strip():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("Chromium did not start its DevTools server")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class Page:
    """One tab, over its DevTools WebSocket."""

    def __init__(self, socket: WebSocketConnection) -> None:
        self.socket = socket
        self.next_id = 0

    async def send(self, method: str, **params: Any) -> Any:
        """Call a DevTools method; its result (events that arrive meanwhile are dropped)."""
        self.next_id += 1
        await self.socket.send_message(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(await self.socket.get_message())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float) -> Any:
        """The expression's value once it is truthy; AssertionError after ``timeout``."""
        deadline = trio.current_time() + timeout
        while not (value := await self.evaluate(expression)):
            if trio.current_time() > deadline:
                raise AssertionError(f"not within {timeout} s: {expression}")
            await trio.sleep(0.2)
        return value

    async def resize(self, width: int, height: int, *, mobile: bool = False) -> None:
        await self.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                        deviceScaleFactor=1, mobile=mobile)

    async def screenshot(self, path: Path) -> None:
        result = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(result["data"]))


async def open_page(devtools: str, url: str, nursery: trio.Nursery) -> Page:
    """A new tab at ``url``, its page loaded; closed with ``nursery``'s scope."""
    request = urllib.request.Request(f"{devtools}/json/new?{url}", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        target = json.load(response)
    socket = await nursery.start(_connected, target["webSocketDebuggerUrl"])
    page = Page(socket)
    await page.send("Page.enable")
    await page.wait_for(f"location.href === {json.dumps(url)} && document.readyState === 'complete'", 30)
    return page


async def _connected(url: str, *, task_status: TaskStatus = trio.TASK_STATUS_IGNORED) -> None:
    async with open_websocket_url(url, max_message_size=64 * 1024 * 1024) as socket:
        task_status.started(socket)
        await trio.sleep_forever()
