"""A local test double of the Stripe API for the endpoints Tanhui uses, on Stripe's wire format.

The real ``stripe`` SDK talks to it (``TANHUI_STRIPE_API_BASE``): form-encoded bodies with
bracketed keys (``line_items[0][price_data][unit_amount]=7341``), bearer secret keys, the
``Idempotency-Key`` header (a replay returns the first response; the same key with other
parameters is an ``idempotency_error``), JSON objects and ``{"error": {...}}`` answers.
Endpoints: ``POST /v1/checkout/sessions`` (with Stripe's checks: ``mode``, ``currency``,
``expires_at`` between 30 minutes and 24 hours ahead), ``GET /v1/checkout/sessions/{id}``,
``POST /v1/checkout/sessions/{id}/expire``, ``POST /v1/refunds``.

Test helpers play the customer and Stripe's event system: :meth:`StripeDouble.pay` completes a
session (paid now, or ``unpaid`` for delayed methods), :meth:`StripeDouble.event` builds an event
around the session as it is, and :func:`sign` signs a body exactly as Stripe does
(``t=<ts>,v1=<hex HMAC-SHA256 of "{t}.{body}">``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

MIN_EXPIRY_S = 30 * 60
MAX_EXPIRY_S = 24 * 3600
ALLOWED_METHODS = {"card", "wechat_pay", "alipay"}
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_counter = itertools.count(1)


def decode_form(body: str) -> dict[str, Any]:
    """Stripe's bracketed form encoding → nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(key)
        if match is None:
            raise ValueError(f"bad key {key}")
        path = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node: dict[str, Any] = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _listify(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    moment = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{moment}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={moment},v1={digest}"


class StripeError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.code:
            error["code"] = self.code
        return {"error": error}


@dataclass
class StripeDouble:
    secret_key: str = field(default_factory=lambda: "sk_test_" + secrets.token_hex(12))
    webhook_secret: str = field(default_factory=lambda: "whsec_" + secrets.token_hex(16))
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, dict[str, Any], str | None]] = field(default_factory=list)
    idempotent: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    # --- the API -------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: dict[str, Any], key: str | None, auth: str
    ) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests.append((method, path, params, key))
            if auth != f"Bearer {self.secret_key}":
                return 401, StripeError(
                    401, "invalid_request_error", "Invalid API Key provided."
                ).body()
            fingerprint = json.dumps([method, path, params], sort_keys=True)
            if method == "POST" and key and key in self.idempotent:
                earlier, status, body = self.idempotent[key]
                if earlier != fingerprint:
                    return 400, StripeError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same"
                        " parameters they were first used with.",
                    ).body()
                return status, body
            try:
                status, body = 200, self._route(method, path, params)
            except StripeError as error:
                status, body = error.status, error.body()
            if method == "POST" and key:
                self.idempotent[key] = (fingerprint, status, body)
            return status, body

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        parts = [part for part in path.split("/") if part]
        if parts[:3] == ["v1", "checkout", "sessions"]:
            if method == "POST" and len(parts) == 3:
                return self._create_session(params)
            session = self.sessions.get(parts[3]) if len(parts) > 3 else None
            if session is None:
                raise StripeError(
                    404, "invalid_request_error", "No such checkout.session", "resource_missing"
                )
            if method == "GET" and len(parts) == 4:
                return session
            if method == "POST" and len(parts) == 5 and parts[4] == "expire":
                if session["status"] != "open":
                    raise StripeError(
                        400,
                        "invalid_request_error",
                        f"Only Checkout Sessions with a status in [open] can be expired;"
                        f" this one is {session['status']}.",
                    )
                session["status"] = "expired"
                return session
        if parts == ["v1", "refunds"] and method == "POST":
            return self._refund(params)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({path}).")

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time())
        if params.get("mode") != "payment":
            raise StripeError(400, "invalid_request_error", "mode must be payment")
        items = params.get("line_items") or []
        if not items:
            raise StripeError(400, "invalid_request_error", "line_items is required")
        methods = params.get("payment_method_types") or ["card"]
        if not set(methods) <= ALLOWED_METHODS:
            raise StripeError(400, "invalid_request_error", f"bad payment_method_types {methods}")
        expires_at = int(params.get("expires_at") or now + MAX_EXPIRY_S)
        if not now + MIN_EXPIRY_S <= expires_at <= now + MAX_EXPIRY_S:
            raise StripeError(
                400,
                "invalid_request_error",
                "The `expires_at` timestamp must be between 30 minutes and 24 hours from"
                " Checkout Session creation.",
                "parameter_invalid_integer",
            )
        total = 0
        for item in items:
            data = item["price_data"]
            if data.get("currency") != "cny":
                raise StripeError(400, "invalid_request_error", "line item currency must be cny")
            total += int(data["unit_amount"]) * int(item["quantity"])
        session_id = f"cs_test_{next(_counter):04d}{secrets.token_hex(8)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "currency": params.get("currency", "cny"),
            "amount_total": total,
            "amount_subtotal": total,
            "client_reference_id": params.get("client_reference_id"),
            "metadata": params.get("metadata") or {},
            "payment_method_types": methods,
            "payment_intent": None,
            "expires_at": expires_at,
            "created": now,
            "livemode": False,
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
            "url": f"{self.base_url}/pay/{session_id}",
        }
        self.sessions[session_id] = session
        return session

    def _refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent = self.intents.get(str(params.get("payment_intent")))
        if intent is None or intent["status"] != "succeeded":
            raise StripeError(400, "invalid_request_error", "No such payment_intent")
        amount = int(params.get("amount") or intent["amount"] - intent["amount_refunded"])
        if amount <= 0 or amount > intent["amount"] - intent["amount_refunded"]:
            raise StripeError(
                400,
                "invalid_request_error",
                "Refund amount is greater than unrefunded amount on charge",
                "amount_too_large",
            )
        intent["amount_refunded"] += amount
        refund = {
            "id": f"re_test_{secrets.token_hex(10)}",
            "object": "refund",
            "amount": amount,
            "currency": "cny",
            "payment_intent": intent["id"],
            "status": "succeeded",
            "reason": params.get("reason"),
            "metadata": params.get("metadata") or {},
        }
        self.refunds[refund["id"]] = refund
        return refund

    # --- helpers playing the customer and Stripe's event system ---------------------------

    def pay(self, session_id: str, *, delayed: bool = False) -> dict[str, Any]:
        """The customer completes the session: paid now, or (``delayed``) confirmed later."""
        with self.lock:
            session = self.sessions[session_id]
            intent_id = f"pi_test_{secrets.token_hex(10)}"
            self.intents[intent_id] = {
                "id": intent_id,
                "amount": session["amount_total"],
                "amount_refunded": 0,
                "status": "processing" if delayed else "succeeded",
            }
            session["status"] = "complete"
            session["payment_status"] = "unpaid" if delayed else "paid"
            session["payment_intent"] = intent_id
            return dict(session)

    def settle_delayed(self, session_id: str, *, succeeded: bool) -> dict[str, Any]:
        with self.lock:
            session = self.sessions[session_id]
            intent = self.intents[session["payment_intent"]]
            intent["status"] = "succeeded" if succeeded else "requires_payment_method"
            if succeeded:
                session["payment_status"] = "paid"
            return dict(session)

    def expire(self, session_id: str) -> dict[str, Any]:
        with self.lock:
            session = self.sessions[session_id]
            session["status"] = "expired"
            return dict(session)

    def event(
        self, event_type: str, session_id: str, *, event_id: str | None = None
    ) -> dict[str, Any]:
        with self.lock:
            snapshot = (
                dict(self.sessions[session_id])
                if session_id in self.sessions
                else {
                    "id": session_id,
                    "object": "checkout.session",
                    "payment_status": "paid",
                    "amount_total": 100,
                    "currency": "cny",
                }
            )
        return {
            "id": event_id or f"evt_test_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2025-10-29.clover",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": snapshot},
        }

    def signed(
        self, event: dict[str, Any], *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers of a webhook delivery of ``event``."""
        payload = json.dumps(event, separators=(",", ":"))
        header = sign(payload, secret or self.webhook_secret, timestamp)
        return payload.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}

    def refunds_for(self, intent_id: str) -> list[dict[str, Any]]:
        return [refund for refund in self.refunds.values() if refund["payment_intent"] == intent_id]


class _Handler(BaseHTTPRequestHandler):
    double: StripeDouble

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        path, _, query = self.path.partition("?")
        params = decode_form(body if method == "POST" else query)
        status, answer = self.double.handle(
            method,
            path,
            params,
            self.headers.get("Idempotency-Key"),
            self.headers.get("Authorization", ""),
        )
        content = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(8)}")
        self.end_headers()
        self.wfile.write(content)

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")


def serve() -> Iterator[StripeDouble]:
    """Run a double on a free local port until the generator is closed."""
    double = StripeDouble()
    handler = type("Handler", (_Handler,), {"double": double})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    double.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
