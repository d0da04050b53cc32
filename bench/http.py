"""HTTP: ``tanhui serve`` on PostgreSQL (2 workers) under ``wrk``, endpoint by endpoint, against
the same server's ``/healthz`` as the framework's floor.

``python -m bench http`` (PostgreSQL at ``TANHUI_BENCH_DATABASE_URL``, default
``postgresql://postgres@127.0.0.1:5432/postgres``; a scratch database is created, seeded with
the Huzhou demo plus 20 buyers and the Anji cooperative's tonnes listed in 10 listings, and
dropped; Debian's ``wrk`` on PATH):

- for each endpoint, a saturation run (``BENCH_HTTP_CONNECTIONS`` connections, default 16,
  ``BENCH_HTTP_SECONDS`` seconds, default 10): requests/s, p50 and p99 latency, errors;
- then a paced run at about ``BENCH_HTTP_RATE`` requests/s (default 200, from 16 connections,
  each pausing for its share of the cycle minus the mean latency of a calibration run): p50 and
  p99 at that rate, checked against the targets (explorer and search p99 < 50 ms at 200
  requests/s, order creation p99 < 150 ms, no errors).

Endpoints: ``/healthz``; the public explorer (the ``/explorer`` page and
``/api/v1/public/projects``); listing search; order creation (a new Idempotency-Key per request,
20 buyers' tokens in turn, 1 t each, spread over ``BENCH_HTTP_LISTINGS`` listings, default 10:
the orders of one listing are serialised by its row lock, so ``BENCH_HTTP_LISTINGS=1`` measures
that ceiling); the partner events endpoint (pre-signed batches of 10 events, each signature
used once).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.scratch import drop_database, fresh_database

CONNECTIONS = int(os.environ.get("BENCH_HTTP_CONNECTIONS", "16"))
SECONDS = int(os.environ.get("BENCH_HTTP_SECONDS", "10"))
RATE = int(os.environ.get("BENCH_HTTP_RATE", "200"))
PACED_CONNECTIONS = 16
CALIBRATION_SECONDS = 4
WORKERS = 2
BUYERS = 20
LISTINGS = int(os.environ.get("BENCH_HTTP_LISTINGS", "10"))  # orders spread over them
TARGETS_MS = {"explorer page": 50, "explorer API": 50, "listing search": 50, "order creation": 150}


@dataclass
class Result:
    name: str
    mode: str
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


# --- the server and its data ---------------------------------------------------------------


def _environment(url: str, state: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TANHUI_ENV": "test",
            "TANHUI_DATABASE_URL": url,
            "TANHUI_SECRET_KEY": secrets.token_urlsafe(48),
            "TANHUI_DATA_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "TANHUI_STATE_DIR": str(state),
            "TANHUI_SIGNING_KEY_FILE": str(state / "signing_key.pem"),
            "TANHUI_DB_POOL_SIZE": "10",
        }
    )
    return env


def _seed(env: dict[str, str]) -> dict[str, Any]:
    """The demo, 20 buyers with tokens and ``LISTINGS`` listings; returns what the scripts need."""
    script = (
        f"LISTINGS = {LISTINGS}\n"
        + r"""
import json, sys
from sqlmodel import col, select
from market.service import listings
from registry.models import Batch, Project
from registry.service.actors import Actor
from registry.inclusion.demo import PARTNERS_FILE
from tanhui import demo, identity
from tanhui.db import create_engine, unit_of_work
from tanhui.migrate import upgrade
from tanhui.models import Organisation, OrgKind, Resident, Role
from tanhui.settings import get_settings

settings = get_settings()
engine = create_engine(settings)
upgrade(engine)
with unit_of_work(engine) as session:
    demo.seed(session, lambda message: None)
with unit_of_work(engine) as session:
    tokens = []
    for number in range(20):
        buyer = identity.create_organisation(session, name=f"Bench buyer {number}",
                                             kind=OrgKind.enterprise)
        user = identity.create_user(session, email=f"bench{number}@buyers.example.cn",
                                    password="bench buyer password", organisation=buyer,
                                    role=Role.member)
        tokens.append(identity.create_api_token(session, user=user, name="bench").token)
    anji = demo.DEMO_ORGANISATIONS[1][1]
    coop = session.exec(select(Organisation).where(col(Organisation.name) == anji)).one()
    project = session.exec(select(Project).where(col(Project.code) == "AJ0001")).one()
    batch = session.exec(select(Batch).where(col(Batch.project_id) == project.id)).first()
    actor = Actor(ref="system:bench", organisation_id=coop.id, org_kind=coop.kind,
                  role=Role.owner)
    from wallet import service as wallet
    account = wallet.find_account(session, asset=batch.asset_code, owner=f"org:{coop.id}")
    size = wallet.get_balance(session, account.id).available // LISTINGS
    created = [
        listings.create_listing(session, actor=actor, batch_id=batch.id, quantity_t=size,
                                price_fen_per_t=6500)
        for _ in range(LISTINGS)
    ]
    residents = [str(r.id) for r in session.exec(select(Resident)).all()]
partners = json.loads((settings.state_dir / PARTNERS_FILE).read_text(encoding="utf-8"))
bus = next(value for name, value in partners.items() if "公交" in name)
print(json.dumps({"tokens": tokens, "listing_ids": [str(item.id) for item in created],
                  "listed_t": sum(item.quantity_t for item in created),
                  "partner": bus, "residents": residents}))
"""
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"seeding failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "tanhui.cli", "serve", "--port", str(port)]
    command += ["--workers", str(WORKERS)]
    quiet = {**env, "UVICORN_LOG_LEVEL": "warning"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=quiet, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    os.killpg(process.pid, signal.SIGKILL)
    raise RuntimeError(f"the server did not start:\n{log.read_text()[-2000:]}")


# --- wrk -----------------------------------------------------------------------------------

# Each pause is drawn from 0.5x-1.5x its mean, so that the connections, which all start
# together, do not stay in step and arrive as bursts of 16 (which measured the bursts' queueing,
# not the rate's).
PACING = """
local pause = {pause}
function delay()
  return math.floor(pause * (0.5 + math.random()))
end
"""


ORDERS = """
local tokens = {tokens}
local listings = {listings}
local next_id = 0
function setup(thread)
  next_id = next_id + 1
  thread:set("id", next_id)
end
local counter = 0
request = function()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  local key = string.format("bench-%d-%d-%d", id or 0, counter, os.time())
  local listing = listings[(counter % #listings) + 1]
  local body = '{{"lines": [{{"listing_id": "' .. listing .. '", "quantity_t": 1}}], '
    .. '"provider": "sandbox"}}'
  return wrk.format("POST", "/api/v1/market/orders", {{
    ["Authorization"] = "Bearer " .. token,
    ["Idempotency-Key"] = key,
    ["Content-Type"] = "application/json",
  }}, body)
end
"""

EVENTS = """
local batches = dofile("{data}")
local next_offset = 0
function setup(thread)
  thread:set("offset", next_offset)
  next_offset = next_offset + math.floor(#batches / 2)
end
local index = 0
function init(args)
  index = offset or 0
end
request = function()
  index = index + 1
  local item = batches[(index % #batches) + 1]
  return wrk.format("POST", "/api/v1/points/events", {{
    ["X-Tanhui-Partner"] = "{partner}",
    ["X-Tanhui-Signature"] = item[1],
    ["Content-Type"] = "application/json",
  }}, item[2])
end
"""


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"


def _signed_batches(partner: dict[str, str], residents: list[str], count: int) -> str:
    """``count`` signed batches of 10 events as a Lua table (each signature is used once)."""
    stamp = str(int(time.time()) + 5)
    start = datetime.now(UTC) - timedelta(hours=2)
    lines = ["return {"]
    for number in range(count):
        events = [
            {
                "partner_event_id": f"bench-{uuid.uuid4().hex}",
                "resident": {"resident_id": residents[(number * 10 + i) % len(residents)]},
                "scenario": "bus",
                "quantity": "5",
                "occurred_at": (start + timedelta(seconds=number * 10 + i)).isoformat(),
            }
            for i in range(10)
        ]
        raw = json.dumps({"events": events}, separators=(",", ":"))
        digest = hmac.new(
            partner["secret"].encode(), f"{stamp}.{raw}".encode(), hashlib.sha256
        ).hexdigest()
        lines.append(f"{{{_lua_string(f't={stamp},v1={digest}')}, {_lua_string(raw)}}},")
    lines.append("}")
    return "\n".join(lines)


def _wrk(url: str, script: str, folder: Path, *, connections: int, seconds: int) -> str:
    path = folder / f"script-{uuid.uuid4().hex[:8]}.lua"
    path.write_text(script, encoding="utf-8")
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency"]
    command += ["--timeout", "10s", "-s", str(path), url]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 60)
    return done.stdout


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _parse(name: str, mode: str, output: str) -> Result:
    percent = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)\s*$", output, re.MULTILINE))
    if "50" not in percent or "99" not in percent:
        raise RuntimeError(f"unexpected wrk output for {name}:\n{output}")
    requests = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = 0
    for pattern in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: .*?timeout (\d+)"):
        found = re.search(pattern, output)
        errors += int(found.group(1)) if found else 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+)", output)
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    return Result(name, mode, rate, _ms(percent["50"]), _ms(percent["99"]), requests, errors)


def main() -> None:
    if shutil.which("wrk") is None:
        print("http: wrk is not installed (apt-get install wrk); skipped")
        return
    name = f"tanhui_bench_http_{uuid.uuid4().hex[:8]}"
    url = fresh_database(name)
    folder = Path(tempfile.mkdtemp(prefix="tanhui-bench-http-"))
    env = _environment(url, folder)
    process = None
    try:
        started = time.monotonic()
        data = _seed(env)
        print(
            f"http: seeded in {time.monotonic() - started:.0f} s; {WORKERS} workers;"
            f" {data['listed_t']} t in {len(data['listing_ids'])} listings"
        )
        port = _free_port()
        process = _serve(env, port, folder / "server.log")
        base = f"http://127.0.0.1:{port}"
        endpoints: list[tuple[str, str, str]] = [
            ("healthz (floor)", f"{base}/healthz", ""),
            ("explorer page", f"{base}/explorer", ""),
            ("explorer API", f"{base}/api/v1/public/projects", ""),
            ("listing search", f"{base}/api/v1/market/listings?type=bamboo&max_price_fen=9000", ""),
            (
                "order creation",
                base,
                ORDERS.format(
                    tokens="{" + ",".join(f'"{t}"' for t in data["tokens"]) + "}",
                    listings="{" + ",".join(f'"{i}"' for i in data["listing_ids"]) + "}",
                ),
            ),
        ]
        batches = folder / "batches.lua"
        batches.write_text(
            # each signature is accepted once: more batches than the run can send
            _signed_batches(data["partner"], data["residents"], 1_000 * SECONDS),
            encoding="utf-8",
        )
        events_script = EVENTS.format(data=batches, partner=data["partner"]["id"])
        endpoints.append(("partner events (10 per batch)", base, events_script))
        results = []
        for label, target, script in endpoints:
            saturated = _wrk(target, script, folder, connections=CONNECTIONS, seconds=SECONDS)
            results.append(_parse(label, f"{CONNECTIONS} connections", saturated))
            if label.startswith("partner events"):
                continue  # the pre-signed batches are spent by the first run
            results.append(_paced(label, target, script, folder))
        _report(results)
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
        drop_database(name)
        shutil.rmtree(folder, ignore_errors=True)


def _paced(label: str, target: str, script: str, folder: Path) -> Result:
    """About ``RATE`` requests/s from ``PACED_CONNECTIONS`` connections: each connection waits
    between its requests for its share of the cycle minus the mean latency, measured by a short
    calibration run (wrk's Lua has no clock, so the pause is fixed per run)."""
    cycle_ms = PACED_CONNECTIONS * 1000 / RATE

    def run(pause: int, seconds: int) -> str:
        paced_script = script + PACING.format(pause=pause)
        return _wrk(target, paced_script, folder, connections=PACED_CONNECTIONS, seconds=seconds)

    calibration = run(max(0, int(cycle_ms - 2)), CALIBRATION_SECONDS)
    mean = _ms(re.search(r"Latency\s+(\S+)", calibration).group(1))  # type: ignore[union-attr]
    paced = run(max(0, int(cycle_ms - mean)), SECONDS)
    return _parse(label, f"~{RATE} req/s", paced)


def _report(results: list[Result]) -> None:
    floors = {r.mode: r for r in results if r.name.startswith("healthz")}
    print(
        f"{'endpoint':32} {'load':16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        f" {'vs floor':>14} target"
    )
    for result in results:
        floor = floors.get(result.mode)
        if floor is None:
            ratio = ""
        elif "connections" in result.mode:  # saturated: throughput against the floor's
            ratio = f"{result.requests_per_s / floor.requests_per_s:.2f}x req/s"
        else:  # paced: tail latency against the floor's
            ratio = f"{result.p99_ms / max(floor.p99_ms, 0.001):.1f}x p99"
        target = TARGETS_MS.get(result.name)
        verdict = ""
        if target and "req/s" in result.mode:
            reached = result.requests_per_s >= 0.9 * RATE
            verdict = f"p99 < {target} ms at {RATE} req/s: " + (
                "met" if result.p99_ms < target and reached else "MISSED"
            )
            if not reached:
                verdict += f" (only {result.requests_per_s:.0f} req/s reached)"
        if result.errors:
            verdict += " ERRORS"
        print(
            f"{result.name:32} {result.mode:16} {result.requests_per_s:8.0f} {result.p50_ms:8.1f}"
            f" {result.p99_ms:8.1f} {result.errors:7d} {ratio:>14} {verdict}"
        )


if __name__ == "__main__":
    main()
