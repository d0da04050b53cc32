"""``tanhui demo``: no configuration, seeded, serving the pages a newcomer opens first."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tanhui.demo import ADMIN_EMAIL, DEMO_ORGANISATIONS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bare_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TANHUI_")}


@pytest.mark.slow
def test_demo_serves_health_readiness_and_login(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tanhui.cli", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=_bare_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert httpx.get(f"{base}/readyz").json() == {"status": "ok"}
        login = httpx.get(f"{base}/login")
        assert login.status_code == 200 and "csrf_token" in login.text
        signed_in = httpx.post(
            f"{base}/api/v1/auth/session",
            json={"email": ADMIN_EMAIL, "password": "tanhui-demo-2026"},
        )
        assert signed_in.status_code == 200
    finally:
        process.terminate()
        out, _err = process.communicate(timeout=30)
    assert "Demo logins" in out
    for _kind, _name, email, _label in DEMO_ORGANISATIONS:
        assert email in out
    assert (tmp_path / ".tanhui" / "secrets.env").exists()
    assert (tmp_path / ".tanhui" / "demo.db").exists()


def test_demo_seed_is_idempotent(tmp_path: Path) -> None:
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "tanhui.cli", "demo", "--no-serve"],
            cwd=tmp_path,
            env=_bare_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        assert ADMIN_EMAIL in result.stdout
