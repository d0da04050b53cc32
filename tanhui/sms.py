"""Sending sign-in codes by text message, through the provider ``TANHUI_SMS_PROVIDER`` names.

- ``aliyun``: Alibaba Cloud SMS (Dysmsapi ``SendSms``, API version 2017-05-25) over httpx, signed
  the way its RPC API documents (HMAC-SHA1 of the canonicalised parameters, see :func:`sign`).
  The code travels in the POST body, never in a URL that a proxy would log, and nothing here
  logs it: a failure is logged with the masked phone and the provider's answer code only.
- ``log``: a development double that writes each message to the console and keeps the last ones
  in memory (the demo and the tests read the code from there). Production refuses to start with
  it (:func:`tanhui.settings.check_production`) and it refuses to send there.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import quote

import httpx

from tanhui.errors import DomainError
from tanhui.i18n import N_
from tanhui.pii import mask_phone
from tanhui.settings import Environment, Settings, get_settings

log = logging.getLogger("tanhui.sms")

ALIYUN_API_VERSION = "2017-05-25"


class SmsNotSent(DomainError):
    """The provider did not take the message; nothing of the request is kept."""

    code = "sms/not-sent"
    status = 503
    title = N_("The text message could not be sent; please try again later")


class SmsSender(Protocol):
    def send_code(self, phone: str, code: str, *, minutes: int) -> None:
        """Deliver sign-in ``code`` (valid ``minutes``) to the normalised ``phone``; raise
        :class:`SmsNotSent` on failure."""


def code_text(code: str, minutes: int) -> str:
    """The message as residents read it (the provider's template says the same)."""
    return f"【碳惠】您的登录验证码为 {code}，{minutes} 分钟内有效。"


# --- the development double ---------------------------------------------------------------


@dataclass
class LogSmsSender:
    """Writes each message to the console and keeps the last ones in memory, so a developer
    running the demo can read the sign-in code; never in production."""

    outbox: list[tuple[str, str]] = field(default_factory=list)
    keep: int = 100

    def send_code(self, phone: str, code: str, *, minutes: int) -> None:
        if get_settings().env is Environment.production:
            raise SmsNotSent(N_("No text message provider is configured."))
        text = code_text(code, minutes)
        log.warning("SMS to %s (development console only): %s", mask_phone(phone), text)
        self.outbox.append((phone, text))
        del self.outbox[: -self.keep]


_log_sender = LogSmsSender()


def messages_to(phone: str) -> list[str]:
    """What the log provider sent to ``phone``, oldest first (tests only)."""
    return [text for to, text in _log_sender.outbox if to == phone]


def last_message_to(phone: str) -> str | None:
    """The most recent message the log provider sent to ``phone`` (demo and tests only)."""
    for to, text in reversed(_log_sender.outbox):
        if to == phone:
            return text
    return None


# --- Alibaba Cloud SMS ----------------------------------------------------------------------


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as the RPC signature wants it: only A-Z a-z 0-9 - _ . ~ stay as they
    are; a space is %20, never +."""
    return quote(value, safe="~")


def sign(method: str, params: Mapping[str, str], secret: str) -> str:
    """The RPC signature of ``params`` (every parameter but ``Signature`` itself):
    Base64(HMAC-SHA1(secret + "&", method & %2F & encode(sorted, encoded key=value pairs)))."""
    canonical = "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params)
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def aliyun_phone(normalised: str) -> str:
    """Mainland numbers as 11 digits, others as country code and number without ``+``."""
    return normalised[3:] if normalised.startswith("+86") else normalised.lstrip("+")


@dataclass
class AliyunSmsSender:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str
    endpoint: str
    region: str = "cn-hangzhou"
    timeout_s: float = 10.0

    def request_params(
        self, phone: str, code: str, *, now: datetime | None = None
    ) -> dict[str, str]:
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        params = {
            "AccessKeyId": self.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": aliyun_phone(phone),
            "RegionId": self.region,
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": str(uuid.uuid4()),
            "SignatureVersion": "1.0",
            "TemplateCode": self.template_code,
            "TemplateParam": json.dumps({"code": code}, separators=(",", ":")),
            "Timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": ALIYUN_API_VERSION,
        }
        params["Signature"] = sign("POST", params, self.access_key_secret)
        return params

    def send_code(self, phone: str, code: str, *, minutes: int) -> None:
        masked = mask_phone(phone)
        try:
            response = httpx.post(
                self.endpoint, data=self.request_params(phone, code), timeout=self.timeout_s
            )
            answer = response.json()
        except (httpx.HTTPError, ValueError) as error:
            log.warning("SMS to %s not sent: %s", masked, type(error).__name__)
            raise SmsNotSent() from None
        outcome = answer.get("Code") if isinstance(answer, dict) else None
        if response.status_code != 200 or outcome != "OK":
            request_id = answer.get("RequestId") if isinstance(answer, dict) else None
            log.warning(
                "SMS to %s refused by Aliyun: HTTP %s, %s (request %s)",
                masked,
                response.status_code,
                outcome,
                request_id,
            )
            raise SmsNotSent()
        log.info("SMS to %s accepted by Aliyun (biz id %s)", masked, answer.get("BizId"))


def sender(settings: Settings | None = None) -> SmsSender:
    """The configured provider."""
    settings = settings or get_settings()
    if settings.sms_provider == "log":
        return _log_sender
    if settings.sms_provider == "aliyun":
        assert settings.sms_access_key_id is not None
        assert settings.sms_access_key_secret is not None
        return AliyunSmsSender(
            access_key_id=settings.sms_access_key_id,
            access_key_secret=settings.sms_access_key_secret.get_secret_value(),
            sign_name=settings.sms_sign_name,
            template_code=settings.sms_template_code,
            endpoint=settings.sms_endpoint,
        )
    raise ValueError(f"unknown SMS provider {settings.sms_provider!r}")
