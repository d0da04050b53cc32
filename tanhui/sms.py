"""Sending text messages. The default provider only logs (no network): real providers plug in
behind :class:`SmsSender` and are chosen by ``TANHUI_SMS_PROVIDER``."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from tanhui.pii import mask_phone

log = logging.getLogger("tanhui.sms")


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None:
        """Deliver ``text`` to the normalised ``phone``; raise on failure."""


@dataclass
class LogSmsSender:
    """Writes each message to the log (phone masked) and keeps the last ones in memory, so a
    developer running the demo can read the sign-in code from the console."""

    outbox: list[tuple[str, str]] = field(default_factory=list)
    keep: int = 100

    def send(self, phone: str, text: str) -> None:
        log.warning("SMS to %s: %s", mask_phone(phone), text)
        self.outbox.append((phone, text))
        del self.outbox[: -self.keep]


_log_sender = LogSmsSender()


def sender(provider: str = "log") -> SmsSender:
    if provider == "log":
        return _log_sender
    raise ValueError(f"unknown SMS provider {provider!r}")


def last_message_to(phone: str) -> str | None:
    """The most recent message the log provider sent to ``phone`` (demo and tests only)."""
    for to, text in reversed(_log_sender.outbox):
        if to == phone:
            return text
    return None
