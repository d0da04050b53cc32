"""The PostgreSQL server the tests use: given, found, or started for the run.

The README's one test command must run every test on a fresh machine, PostgreSQL included, so
the suite does not skip the PostgreSQL half when ``TANHUI_TEST_DATABASE_URL`` is unset. In order:

1. ``TANHUI_TEST_DATABASE_URL`` (CI, and anyone with their own server);
2. a local server that lets the ``postgres`` role in without a password (what Debian's and
   Ubuntu's ``postgresql`` package runs on 127.0.0.1:5432), or the current user over the socket;
3. a throwaway server started from the PostgreSQL binaries on the machine (``pg_ctl`` on PATH or
   under ``/usr/lib/postgresql/*/bin``) with pytest-postgresql, stopped when the run ends.

When none works the run stops with the reason and what to do, instead of skipping silently;
``TANHUI_TEST_SKIP_POSTGRES=1`` skips the PostgreSQL tests on purpose.
"""

from __future__ import annotations

import atexit
import functools
import getpass
import glob
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Server:
    url: str | None
    how: str  # where the URL came from, or why there is none


def _accepts(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def _pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return found
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_throwaway(pg_ctl: str) -> Server:
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

    folder = tempfile.mkdtemp(prefix="tanhui-pg-")
    port = _free_port()
    executor = PostgreSQLExecutor(
        executable=pg_ctl,
        host="127.0.0.1",
        port=port,
        datadir=os.path.join(folder, "data"),
        unixsocketdir=folder,
        logfile=os.path.join(folder, "postgresql.log"),
        startparams="-w",
        dbname="postgres",
        user="postgres",
        postgres_options="-c fsync=off -c full_page_writes=off -c max_connections=200",
    )
    executor.start()

    def stop() -> None:
        executor.stop()
        shutil.rmtree(folder, ignore_errors=True)

    atexit.register(stop)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + 60
    while not _accepts(url):  # the port opens before the server accepts connections
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server in {folder} did not accept connections in 60 s")
        time.sleep(0.2)
    return Server(url, f"a throwaway server started with {pg_ctl} in {folder}")


@functools.cache
def server() -> Server:
    """The server for this test process (each xdist worker finds or starts its own)."""
    given = os.environ.get("TANHUI_TEST_DATABASE_URL")
    if given:
        return Server(given, "TANHUI_TEST_DATABASE_URL")
    if os.environ.get("TANHUI_TEST_SKIP_POSTGRES") == "1":
        return Server(None, "TANHUI_TEST_SKIP_POSTGRES=1")
    if _accepts("host=127.0.0.1 port=5432 user=postgres dbname=postgres"):
        return Server("postgresql://postgres@127.0.0.1:5432/postgres", "the local server")
    user = getpass.getuser()
    if _accepts(f"user={user} dbname=postgres"):
        return Server(f"postgresql://{user}@/postgres", "the local server's socket")
    pg_ctl = _pg_ctl()
    if pg_ctl is None:
        return Server(None, "no PostgreSQL server answers and no pg_ctl is installed")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Server(None, "no PostgreSQL server answers, and PostgreSQL will not start as root")
    try:
        return _start_throwaway(pg_ctl)
    except Exception as error:  # any failure to start is reported, not raised mid-collection
        return Server(None, f"starting a throwaway server with {pg_ctl} failed: {error}")


HOW_TO = (
    "The PostgreSQL tests need a server. Install PostgreSQL (e.g. `apt install postgresql`) "
    "so the tests can start a throwaway one, or set TANHUI_TEST_DATABASE_URL="
    "postgresql://user@host:port/db; TANHUI_TEST_SKIP_POSTGRES=1 skips those tests on purpose."
)
