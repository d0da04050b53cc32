"""A local double of Alibaba Cloud SMS (Dysmsapi ``SendSms``, version 2017-05-25) on its wire
format, for the adapter in :mod:`tanhui.sms`.

It listens on 127.0.0.1, takes the RPC request as a GET query or a form-encoded POST body,
checks the common parameters, the AccessKey, the timestamp (15 minutes either way), the
nonce (once only) and the HMAC-SHA1 signature computed here from the documented algorithm
(independently of the adapter's code), and answers Dysmsapi's JSON: ``{"Code": "OK", "Message":
"OK", "BizId": …, "RequestId": …}``, or its error codes (``SignatureDoesNotMatch`` with HTTP 400,
``InvalidAccessKeyId.NotFound`` with 404, ``isv.*`` business errors with HTTP 200).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

REQUIRED = (
    "AccessKeyId",
    "Action",
    "Format",
    "PhoneNumbers",
    "SignName",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "TemplateCode",
    "Timestamp",
    "Version",
    "Signature",
)


def expected_signature(method: str, params: dict[str, str], secret: str) -> str:
    def encode(value: str) -> str:
        # java.net.URLEncoder then the documented replacements: + → %20, * → %2A, %7E → ~
        return quote(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")

    pairs = sorted((key, value) for key, value in params.items() if key != "Signature")
    canonical = "&".join(f"{encode(key)}={encode(value)}" for key, value in pairs)
    to_sign = method + "&" + encode("/") + "&" + encode(canonical)
    digest = hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclass
class AliyunSmsDouble:
    access_key_id: str = field(default_factory=lambda: "LTAI" + secrets.token_hex(8))
    access_key_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    sign_name: str = "碳惠"
    template_code: str = "SMS_480000001"
    base_url: str = ""
    delivered: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    refuse_with: str | None = None  # an isv.* code to answer instead of sending
    nonces: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def codes_to(self, phone: str) -> list[str]:
        return [
            message["params"]["code"] for message in self.delivered if message["phone"] == phone
        ]

    def answer(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()
        with self.lock:
            self.requests.append(params)
        missing = [name for name in REQUIRED if not params.get(name)]
        if missing:
            return 400, _error(request_id, "MissingParameter", f"{missing[0]} is mandatory.")
        if params["Action"] != "SendSms" or params["Version"] != "2017-05-25":
            return 404, _error(request_id, "InvalidAction.NotFound", "Specified api is not found.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return 400, _error(request_id, "InvalidSignatureMethod", "Bad signature method.")
        if params["AccessKeyId"] != self.access_key_id:
            return 404, _error(
                request_id, "InvalidAccessKeyId.NotFound", "Specified access key is not found."
            )
        signature = expected_signature(method, params, self.access_key_secret)
        if not hmac.compare_digest(signature, params["Signature"]):
            return 400, _error(
                request_id,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation.",
            )
        try:
            moment = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC
            )
        except ValueError:
            return 400, _error(request_id, "InvalidTimeStamp.Format", "Bad timestamp.")
        if abs(datetime.now(UTC) - moment) > timedelta(minutes=15):
            return 400, _error(request_id, "InvalidTimeStamp.Expired", "Timestamp expired.")
        with self.lock:
            if params["SignatureNonce"] in self.nonces:
                return 400, _error(
                    request_id, "SignatureNonceUsed", "Specified signature nonce was used."
                )
            self.nonces.add(params["SignatureNonce"])
        if params["SignName"] != self.sign_name:
            return 200, _error(request_id, "isv.SMS_SIGNATURE_ILLEGAL", "签名不合法")
        if params["TemplateCode"] != self.template_code:
            return 200, _error(request_id, "isv.SMS_TEMPLATE_ILLEGAL", "模板不合法")
        phone = params["PhoneNumbers"]
        if not (phone.isascii() and phone.isdigit() and 7 <= len(phone) <= 15):
            return 200, _error(request_id, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        try:
            template_params = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return 200, _error(request_id, "isv.INVALID_JSON_PARAM", "JSON参数不合法")
        if self.refuse_with is not None:
            return 200, _error(request_id, self.refuse_with, "触发流控")
        with self.lock:
            self.delivered.append({"phone": phone, "params": template_params})
        biz_id = f"{secrets.randbelow(10**15):015d}^0"
        return 200, {"Message": "OK", "RequestId": request_id, "BizId": biz_id, "Code": "OK"}


def _error(request_id: str, code: str, message: str) -> dict[str, Any]:
    return {"Message": message, "RequestId": request_id, "Code": code}


def serve() -> Iterator[AliyunSmsDouble]:
    double = AliyunSmsDouble()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str, raw: str) -> None:
            status, body = double.answer(method, dict(parse_qsl(raw, keep_blank_values=True)))
            payload = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._reply("GET", urlsplit(self.path).query)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._reply("POST", self.rfile.read(length).decode())

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    double.base_url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield double
    finally:
        server.shutdown()
        server.server_close()
