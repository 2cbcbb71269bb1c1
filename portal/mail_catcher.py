"""A real SMTP server (aiosmtpd) that keeps what it receives: for the demo and the tests."""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class CaughtMail:
    envelope_from: str
    envelope_to: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"] or "")

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""

    def attachments(self) -> list[tuple[str, bytes]]:
        found: list[tuple[str, bytes]] = []
        for part in self.message.iter_attachments():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                found.append((part.get_filename() or "", payload))
        return found


@dataclass
class _Handler:
    mails: list[CaughtMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    received: threading.Condition = field(init=False)
    # Test hook: when set, answer every message with this SMTP error line.
    reject_with: str | None = None

    def __post_init__(self) -> None:
        self.received = threading.Condition(self.lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_with:
            return self.reject_with
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self.received:
            self.mails.append(CaughtMail(envelope.mail_from, list(envelope.rcpt_tos), message))
            self.received.notify_all()
        return "250 Message accepted for delivery"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class MailCatcher:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        # aiosmtpd logs every envelope address at INFO: client addresses stay out of logs.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.host = host
        self.port = port or free_port(host)
        self._handler = _Handler()
        self._controller = Controller(self._handler, hostname=host, port=self.port)

    def start(self) -> MailCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    @property
    def mails(self) -> list[CaughtMail]:
        with self._handler.lock:
            return list(self._handler.mails)

    def reject(self, reply: str | None) -> None:
        self._handler.reject_with = reply

    def wait_for(self, count: int, timeout: float = 10.0) -> list[CaughtMail]:
        """Block until at least `count` messages have arrived (or raise TimeoutError)."""
        with self._handler.received:
            if not self._handler.received.wait_for(
                lambda: len(self._handler.mails) >= count, timeout=timeout
            ):
                raise TimeoutError(f"expected {count} mails, got {len(self._handler.mails)}")
            return list(self._handler.mails)

    def clear(self) -> None:
        with self._handler.lock:
            self._handler.mails.clear()
