"""The ``tanhui`` command: names and flags operators script against."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session

from tanhui import identity
from tanhui.settings import Settings
from tests.factories import run_cli

COMMANDS = [
    [],
    ["db", "upgrade"],
    ["serve"],
    ["demo"],
    ["users", "create"],
    ["tokens", "create"],
    ["audit", "verify"],
    ["audit", "checkpoint"],
]


def _bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TANHUI_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "tanhui")
def test_every_command_has_help(command: list[str], tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tanhui.cli", *command, "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=_bare_env(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_users_create_for_an_organisation_and_a_platform_admin(
    settings: Settings, session: Session
) -> None:
    made = run_cli(
        settings,
        "users",
        "create",
        "--email",
        "Chen@Coop.cn",
        "--password",
        "long enough pw",
        "--org",
        "递铺街道横山坞村",
        "--org-kind",
        "cooperative",
        "--role",
        "owner",
    )
    assert made.returncode == 0, made.stderr
    user = identity.find_user_by_email(session, "chen@coop.cn")
    assert user is not None and user.role == "owner" and str(user.id) == made.stdout.strip()
    session.rollback()  # end the read: on SQLite every transaction holds the one write lock
    admin = run_cli(
        settings,
        "users",
        "create",
        "--email",
        "ops@tanhui.cn",
        "--password",
        "long enough pw",
        "--platform-admin",
    )
    assert admin.returncode == 0, admin.stderr
    duplicate = run_cli(
        settings,
        "users",
        "create",
        "--email",
        "ops@tanhui.cn",
        "--password",
        "long enough pw",
        "--platform-admin",
    )
    assert duplicate.returncode == 2 and "already exists" in duplicate.stderr
    neither = run_cli(
        settings, "users", "create", "--email", "x@y.cn", "--password", "long enough pw"
    )
    assert neither.returncode == 2


def test_malformed_setting_fails_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tanhui.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=_bare_env(tmp_path, TANHUI_DATABASE_URL="mysql://nope", TANHUI_STATE_DIR=str(tmp_path)),
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TANHUI_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr
    bad_key = subprocess.run(
        [sys.executable, "-m", "tanhui.cli", "db", "upgrade"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=_bare_env(tmp_path, TANHUI_DATA_KEY="not-base64!"),
    )
    assert bad_key.returncode == 2 and "TANHUI_DATA_KEY" in bad_key.stderr
    assert len(bad_key.stderr.strip().splitlines()) == 1


def test_production_refuses_placeholder_secrets(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tanhui.cli", "serve", "--port", "8999"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=60,
        env=_bare_env(
            tmp_path,
            TANHUI_ENV="production",
            TANHUI_SECRET_KEY="change-me",
            TANHUI_STATE_DIR=str(tmp_path),
        ),
    )
    assert result.returncode == 2
    assert "refusing to start in production" in result.stderr
    assert "TANHUI_SECRET_KEY" in result.stderr and "TANHUI_DATA_KEY" in result.stderr
    assert not (tmp_path / "secrets.env").exists(), "production never invents secrets"


def test_development_generates_missing_secrets_once(tmp_path: Path) -> None:
    env = _bare_env(
        tmp_path,
        TANHUI_DATABASE_URL=f"sqlite:///{tmp_path}/dev.db",
        TANHUI_STATE_DIR=str(tmp_path / "state"),
    )
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-m", "tanhui.cli", "db", "upgrade"],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env=env,
        )
        assert result.returncode == 0, result.stderr
    secrets_file = tmp_path / "state" / "secrets.env"
    first = secrets_file.read_text()
    assert "TANHUI_SECRET_KEY=" in first and "TANHUI_DATA_KEY=" in first
    assert oct(secrets_file.stat().st_mode & 0o777) == "0o600"
    subprocess.run(
        [sys.executable, "-m", "tanhui.cli", "db", "upgrade"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert secrets_file.read_text() == first


def test_state_folder_is_git_ignored() -> None:
    ignore = (Path(__file__).resolve().parents[2] / ".gitignore").read_text()
    assert ".tanhui/" in ignore and "*.pem" in ignore
