"""The crash-safety harness: a seeded PostgreSQL database, ``tanhui serve`` in its own process
group, clients that buy, report behaviours and redeem with idempotency keys, and the checks that
every acknowledged request left its whole effect and nothing else."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import Response
from sqlalchemy import Engine, text

from tanhui.auth import SESSION_COOKIE, set_session_cookie
from tanhui.settings import Settings
from tests.factories import cli_env

REQUEST_TIMEOUT_S = 15.0
READY_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cookie_for(key: str) -> str:
    response = Response()
    set_session_cookie(response, key)
    return response.headers["set-cookie"].split(";", 1)[0].split("=", 1)[1]


# --- the server ----------------------------------------------------------------------------


class Server:
    """``tanhui serve`` with two workers, in a process group of its own (SIGKILL takes all)."""

    def __init__(self, settings: Settings, log: Path, workers: int = 2) -> None:
        self.settings = settings
        self.port = free_port()
        self.log = log
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [sys.executable, "-m", "tanhui.cli", "serve", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                env=cli_env(self.settings),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the server did not get ready:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no flushing, mid-request."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


# --- what the clients send -----------------------------------------------------------------


@dataclass
class Call:
    """One logical request, resent with the same key (or the same event ids) until answered."""

    kind: str
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    key: str | None = None
    answers: list[tuple[int, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def first_success(self) -> tuple[int, Any] | None:
        for status, body in self.answers:
            if status < 300:
                return status, body
        return None


@dataclass
class Partner:
    id: str
    secret: str


def signed_headers(partner: Partner, raw: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(partner.secret.encode(), f"{stamp}.".encode() + raw, hashlib.sha256)
    return {
        "X-Tanhui-Partner": partner.id,
        "X-Tanhui-Signature": f"t={stamp},v1={digest.hexdigest()}",
        "Content-Type": "application/json",
    }


def send(client: httpx.Client, call: Call, partner: Partner | None = None) -> bool:
    """Send ``call`` once; True when it was answered (any status below 500)."""
    headers = dict(call.headers)
    if call.key:
        headers["Idempotency-Key"] = call.key
    content = json.dumps(call.body).encode()
    if partner is not None:
        headers.update(signed_headers(partner, content))  # a signature is accepted once
    else:
        headers["Content-Type"] = "application/json"
    try:
        response = client.request(call.method, call.path, content=content, headers=headers)
    except httpx.HTTPError as error:
        call.errors.append(type(error).__name__)
        return False
    try:
        body = response.json()
    except ValueError:
        body = response.text
    call.answers.append((response.status_code, body))
    return response.status_code < 500


def patient_send(
    client: httpx.Client, call: Call, stop: threading.Event, partner: Partner | None = None
) -> bool:
    """What a real client does: resend the same call (same key, same event ids) until it is
    answered, pausing while the server is away; gives up when the load stops (the retry phase
    takes over)."""
    while True:
        if send(client, call, partner):
            return True
        if stop.is_set():
            return False
        time.sleep(0.2)


@dataclass
class Load:
    """The clients' record: every call in the order made."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, call: Call) -> Call:
        with self.lock:
            self.calls.append(call)
        return call

    def of(self, kind: str) -> list[Call]:
        return [call for call in self.calls if call.kind == kind]


@dataclass
class Scenario:
    """Who the clients are: buyers' tokens, the listing, residents' sessions, a partner."""

    buyer_tokens: list[str]
    listing_id: str
    quantity_t: int
    resident_cookies: list[tuple[str, str]]  # (cookie, csrf)
    resident_ids: list[str]
    reward_id: str
    partner: Partner


def buyer_flow(
    client: httpx.Client, load: Load, token: str, scenario: Scenario, stop: threading.Event
) -> None:
    """Order → checkout → sandbox payment, each step with its own key; stops at the first
    unanswered step (the retry phase resumes it)."""
    auth = {"Authorization": f"Bearer {token}"}
    order = load.add(
        Call(
            "order",
            "POST",
            "/api/v1/market/orders",
            auth,
            {
                "lines": [{"listing_id": scenario.listing_id, "quantity_t": scenario.quantity_t}],
                "provider": "sandbox",
            },
            key=str(uuid.uuid4()),
        )
    )
    continue_purchase(client, load, order, auth, stop)


def continue_purchase(
    client: httpx.Client,
    load: Load,
    order: Call,
    auth: dict[str, str],
    stop: threading.Event,
) -> None:
    if not order.first_success and not patient_send(client, order, stop):
        return
    answered = order.first_success
    if answered is None:
        return
    order_id = answered[1]["id"]
    checkout = next(
        (c for c in load.of("checkout") if c.path.endswith(f"/{order_id}/checkout")), None
    ) or load.add(
        Call(
            "checkout",
            "POST",
            f"/api/v1/market/orders/{order_id}/checkout",
            auth,
            {},
            key=str(uuid.uuid4()),
        )
    )
    if not checkout.first_success and not patient_send(client, checkout, stop):
        return
    paid = checkout.first_success
    if paid is None:
        return
    payment_id = paid[1]["payment"]["id"]
    complete = next(
        (c for c in load.of("complete") if f"/{payment_id}/" in c.path), None
    ) or load.add(
        Call(
            "complete",
            "POST",
            f"/api/v1/market/sandbox/payments/{payment_id}/complete",
            auth,
            {},
            key=str(uuid.uuid4()),
        )
    )
    if not complete.first_success:
        patient_send(client, complete, stop)


def events_flow(
    client: httpx.Client, load: Load, scenario: Scenario, number: int, stop: threading.Event
) -> None:
    now = time.time()
    events = [
        {
            "partner_event_id": f"crash-{uuid.uuid4().hex}",
            "resident": {"resident_id": scenario.resident_ids[(number + i) % 3]},
            "scenario": "bus",
            "quantity": "8",
            "occurred_at": _iso(now - 3600 - number * 7 - i),
        }
        for i in range(3)
    ]
    call = load.add(Call("events", "POST", "/api/v1/points/events", {}, {"events": events}))
    patient_send(client, call, stop, scenario.partner)


def redemption_flow(
    client: httpx.Client, load: Load, scenario: Scenario, number: int, stop: threading.Event
) -> None:
    cookie, csrf = scenario.resident_cookies[number % len(scenario.resident_cookies)]
    call = load.add(
        Call(
            "redemption",
            "POST",
            "/api/v1/points/redemptions",
            {"Cookie": f"{SESSION_COOKIE}={cookie}", "X-CSRF-Token": csrf},
            {"reward_id": scenario.reward_id},
            key=str(uuid.uuid4()),
        )
    )
    patient_send(client, call, stop)


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat()


def run_clients(
    base_url: str, scenario: Scenario, load: Load, stop: threading.Event
) -> list[threading.Thread]:
    """Five clients: three buyers, a data partner and a resident, each looping until ``stop``;
    each resends an unanswered call with the same key until it is answered."""

    def loop(work: Callable[[httpx.Client, int], None]) -> None:
        with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
            number = 0
            while not stop.is_set() and number < 400:
                work(client, number)
                number += 1

    def buyer(token: str) -> Callable[[httpx.Client, int], None]:
        return lambda client, _number: buyer_flow(client, load, token, scenario, stop)

    workers = [
        *(buyer(token) for token in scenario.buyer_tokens),
        lambda client, number: events_flow(client, load, scenario, number, stop),
        lambda client, number: redemption_flow(client, load, scenario, number, stop),
    ]
    threads = [threading.Thread(target=loop, args=(work,), daemon=True) for work in workers]
    for thread in threads:
        thread.start()
    return threads


def finish(base_url: str, load: Load, scenario: Scenario) -> None:
    """Retry every unanswered call with its key (resuming interrupted purchases) until each has
    an answer below 500."""
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for _round in range(5):
            pending = [call for call in list(load.calls) if not _answered(call)]
            if not pending:
                break
            for call in pending:
                partner = scenario.partner if call.kind == "events" else None
                send(client, call, partner)
            time.sleep(0.2)
        for order in load.of("order"):
            token = order.headers["Authorization"]
            continue_purchase(client, load, order, {"Authorization": token}, threading.Event())
        for call in load.calls:
            if not _answered(call):
                send(client, call, scenario.partner if call.kind == "events" else None)


def _answered(call: Call) -> bool:
    return any(status < 500 for status, _ in call.answers)


# --- the checks ----------------------------------------------------------------------------


def replay_gives_the_first_answers(base_url: str, load: Load, scenario: Scenario) -> list[str]:
    """Send every answered call again with the same key: the same status and object."""
    problems = []
    with httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S) as client:
        for call in load.calls:
            first = call.first_success
            if first is None:
                continue
            before = len(call.answers)
            send(client, call, scenario.partner if call.kind == "events" else None)
            if len(call.answers) == before:
                problems.append(f"{call.kind} {call.path}: no answer to the replay")
                continue
            status, body = call.answers[-1]
            if call.kind == "events":
                first_receipts = [r["receipt_id"] for r in first[1]["results"]]
                again = [r["receipt_id"] for r in body["results"]]
                if status != 200 or first_receipts != again:
                    problems.append(f"events replay: {first_receipts} then {again}")
            elif status != first[0] or _identity(body) != _identity(first[1]):
                problems.append(
                    f"{call.kind} {call.path} key {call.key}: first {first[0]}"
                    f" {_identity(first[1])}, replay {status} {_identity(body)}"
                )
    return problems


def _identity(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    if "order" in body and isinstance(body["order"], dict):
        return ("outcome", body["order"].get("id"), body["order"].get("status"))
    if "payment" in body:
        return ("payment", body["payment"].get("id"))
    return body.get("id")


def acknowledged_effects_are_stored(engine: Engine, load: Load) -> list[str]:
    """Every success a client saw is in the database, whole."""
    problems = []
    with engine.connect() as connection:
        for call in load.calls:
            first = call.first_success
            if first is None:
                continue
            body = first[1]
            if call.kind == "order":
                row = connection.execute(
                    text("SELECT number FROM market_order WHERE id = :id"), {"id": body["id"]}
                ).first()
                if row is None or row[0] != body["number"]:
                    problems.append(f"order {body['id']} acknowledged but not stored")
            elif call.kind == "checkout":
                row = connection.execute(
                    text("SELECT order_id FROM market_payment WHERE id = :id"),
                    {"id": body["payment"]["id"]},
                ).first()
                if row is None:
                    problems.append(f"payment {body['payment']['id']} acknowledged, not stored")
            elif call.kind == "complete":
                row = connection.execute(
                    text(
                        "SELECT o.status, o.settlement_entry_id, e.id FROM market_order o"
                        " LEFT JOIN wallet_entry e ON e.id = o.settlement_entry_id"
                        " WHERE o.id = :id"
                    ),
                    {"id": body["order"]["id"]},
                ).first()
                if row is None or row[0] != "settled" or row[2] is None:
                    problems.append(f"order {body['order']['id']} paid but {row}")
            elif call.kind == "redemption":
                row = connection.execute(
                    text("SELECT status FROM rewards_redemption WHERE id = :id"), {"id": body["id"]}
                ).first()
                if row is None:
                    problems.append(f"voucher {body['id']} acknowledged but not stored")
            elif call.kind == "events":
                for result in body["results"]:
                    if result["status"] != "accepted":
                        continue
                    row = connection.execute(
                        text("SELECT 1 FROM inclusion_event WHERE id = :id"),
                        {"id": result["receipt_id"]},
                    ).first()
                    if row is None:
                        problems.append(f"receipt {result['receipt_id']} acknowledged, not stored")
    return problems


INVARIANTS = {
    "an order line reserves its tonnes exactly while its order holds them": """
        SELECT ol.id FROM market_order_line ol JOIN market_order o ON o.id = ol.order_id
        WHERE ol.reserved_until IS DISTINCT FROM (CASE WHEN o.status IN
              ('awaiting_payment', 'processing') THEN o.hold_expires_at END)""",
    "a listing's tonnes are listed or sold": """
        SELECT id FROM market_listing WHERE quantity_t <> listed_t + sold_t""",
    "a listing's sold tonnes are its settled orders' tonnes": """
        SELECT l.id FROM market_listing l
        WHERE l.sold_t <> (SELECT coalesce(sum(ol.quantity_t), 0) FROM market_order_line ol
                           JOIN market_order o ON o.id = ol.order_id
                           WHERE ol.listing_id = l.id AND o.status = 'settled')""",
    "an active listing's hold covers its listed tonnes": """
        SELECT l.id FROM market_listing l JOIN wallet_hold h ON h.id = l.wallet_hold_id
        WHERE l.status = 'active' AND (h.status <> 'pending' OR h.amount <> l.listed_t)""",
    # (bank transfers are confirmed by finance; their payment row stays as the instructions)
    "a settled order has its settlement entry (and, paid online, a paid payment)": """
        SELECT o.id FROM market_order o
        WHERE o.status = 'settled' AND (
            NOT EXISTS (SELECT 1 FROM wallet_entry e WHERE e.id = o.settlement_entry_id)
            OR (o.provider IN ('sandbox', 'stripe') AND NOT EXISTS (
                SELECT 1 FROM market_payment p WHERE p.order_id = o.id AND p.status = 'paid')))""",
    "a paid payment belongs to a settled order": """
        SELECT p.id FROM market_payment p JOIN market_order o ON o.id = p.order_id
        WHERE p.status = 'paid' AND o.status NOT IN ('settled', 'refunded')""",
    "a batch's serial blocks cover its tonnes exactly": """
        SELECT b.id FROM registry_batch b
        WHERE b.quantity_t + b.buffer_t <> (SELECT coalesce(sum(s.last - s.first + 1), 0)
                                           FROM registry_serial_block s WHERE s.batch_id = b.id)""",
    "serial blocks never overlap": """
        SELECT a.id FROM registry_serial_block a JOIN registry_serial_block b
        ON a.batch_id = b.batch_id AND a.id < b.id AND a.first <= b.last AND b.first <= a.last""",
    "a voucher's points are held, captured or returned as its state says": """
        SELECT r.id FROM rewards_redemption r JOIN wallet_hold h ON h.id = r.hold_id
        WHERE NOT ((r.status = 'issued' AND h.status = 'pending')
                OR (r.status = 'confirmed' AND h.status = 'captured')
                OR (r.status IN ('cancelled', 'expired') AND h.status IN ('voided', 'expired')))""",
    "a residents' (RES) line's seller share goes to the rewards fund, other lines' never": """
        SELECT p.id FROM market_payout p
        JOIN market_order_line ol ON ol.id = p.line_id
        JOIN registry_project pr ON pr.id = ol.project_id
        WHERE (pr.type = 'residents' AND p.kind = 'cooperative')
           OR (pr.type <> 'residents' AND p.kind = 'rewards_fund')""",
    "a reimbursed voucher was confirmed": """
        SELECT e.id FROM wallet_entry e WHERE e.code = 'reward_reimbursement'
        AND NOT EXISTS (SELECT 1 FROM rewards_redemption r WHERE r.status = 'confirmed'
                        AND e.idempotency_key = 'reward_reimbursement:' || CAST(r.id AS TEXT))""",
    "an idempotency claim is never left without its answer": """
        SELECT id FROM idempotency_record WHERE status_code IS NULL OR response_body IS NULL""",
}


def invariants_hold(engine: Engine) -> list[str]:
    problems = []
    with engine.connect() as connection:
        for name, query in INVARIANTS.items():
            rows = connection.execute(text(query)).all()
            if rows:
                problems.append(f"{name}: {len(rows)} rows break it, e.g. {rows[:3]}")
    return problems


def verify_commands(settings: Settings) -> list[str]:
    problems = []
    for command in (["wallet", "verify"], ["audit", "verify"]):
        done = subprocess.run(
            [sys.executable, "-m", "tanhui.cli", *command],
            env=cli_env(settings),
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            problems.append(f"tanhui {' '.join(command)}: {done.stdout} {done.stderr}"[-2000:])
    return problems


def terminate_backends(engine: Engine, database: str) -> int:
    """Cut every connection of the server's processes to ``database``."""
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = :name AND application_name = 'tanhui'"
                " AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        ).all()
        connection.commit()
    return len(rows)


__all__ = ["timedelta"]
