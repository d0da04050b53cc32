"""Browser tests: the real demo server and the Debian Chromium, driven by Playwright.

The server is `tanhui demo` started in a temporary folder (its own SQLite database, secrets and
seed), exactly as a newcomer starts it. Chromium is `/usr/bin/chromium` (installed by `.ci/run`
with apt); a downloaded browser is never used. Screenshots go to `build/screenshots/` (git-ignored),
so a test run changes no tracked file; `TANHUI_SCREENSHOTS_DIR=docs/screenshots python -m pytest
tests/e2e` refreshes the README's pictures on purpose.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / os.environ.get("TANHUI_SCREENSHOTS_DIR", "build/screenshots")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.e2e


@dataclass
class LiveServer:
    base_url: str
    folder: Path
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def latest_code(self, after: int = 0) -> str:
        """The newest sign-in code the log SMS provider printed (after log line ``after``)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for line in reversed(self.log[after:]):
                match = re.search(r"验证码为 (\d{6})", line)
                if match:
                    return match.group(1)
            time.sleep(0.1)
        raise AssertionError("no sign-in code in the server log")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("demo")
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TANHUI_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "tanhui.cli", "demo", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", folder, process)

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.log.append(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            raise AssertionError("tanhui demo exited:\n" + "".join(server.log[-40:]))
        try:
            if httpx.get(f"{server.base_url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("tanhui demo did not become ready:\n" + "".join(server.log[-40:]))
        time.sleep(0.5)
    yield server
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed (.ci/run installs it with apt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture
def desktop(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")  # type: ignore[attr-defined]
    yield context.new_page()
    context.close()


@pytest.fixture
def phone(browser: object) -> Iterator[object]:
    """A 390×844 phone, as the residents' app is designed for."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    yield context.new_page()
    context.close()


def screenshot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
