"""Notification senders against real local receivers: what each refuses, and that no answer
quotes the Secret's value."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import pytest
from aiosmtpd.controller import Controller

from modelpilot.api.notify import NotificationChannel
from modelpilot.reconcile.notify import Message, Notice
from modelpilot.sources.kubernetes import KubernetesReader, secret_text
from modelpilot.sources.notify import send, send_email
from tests.support.http import serving
from tests.support.ports import free_port

NOTICE = Notice(
    "ModelMonitor", "ns", "m", "DataDrift", "True", "FeaturesDrifted", "", "warning", "firing", datetime(2026, 1, 1, tzinfo=UTC)
)
MESSAGE = Message((NOTICE,))


class _Secrets(KubernetesReader):
    """Secrets from a dict, through the real opt-in check."""

    def __init__(self, value: str, opted_in: bool = True):
        super().__init__()
        self.value, self.opted_in = value, opted_in

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        labels = {"modelpilot.dev/opt-in": "true"} if self.opted_in else {}
        return secret_text(f"{namespace}/{name}", labels, {key: base64.b64encode(self.value.encode()).decode()}, key)


def channel(type_: str, **extra: object) -> NotificationChannel:
    return NotificationChannel.model_validate({"name": "c", "type": type_, "secret": {"name": "s", "key": "k"}, **extra})


class _Refusing(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.send_response(404)
        self.end_headers()
        self.wfile.write(f"no hook at {self.path}".encode())  # a receiver that echoes the secret path


@pytest.fixture
def refusing() -> Iterator[str]:
    with serving(_Refusing) as url:
        yield url


async def test_an_answer_that_quotes_the_secret_url_is_redacted(refusing: str) -> None:
    attempt = await send(_Secrets(f"{refusing}/services/T0KEN-S3CRET"), "ns", channel("slack"), MESSAGE)
    assert not attempt.ok and not attempt.permanent
    assert attempt.message.startswith("answered 404") and "T0KEN-S3CRET" not in attempt.message


async def test_an_unlabelled_secret_and_a_wrong_scheme_are_given_up_at_once() -> None:
    unlabelled = await send(_Secrets("https://example.org/x", opted_in=False), "ns", channel("webhook"), MESSAGE)
    assert unlabelled.permanent and "not labelled modelpilot.dev/opt-in=true" in unlabelled.message
    ftp = await send(_Secrets("ftp://example.org/S3CRET"), "ns", channel("teams"), MESSAGE)
    assert ftp.permanent and "S3CRET" not in ftp.message


class _Mailbox:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.count += 1
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Mailbox]]:
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, mailbox
    finally:
        controller.stop()


def test_email_goes_out_and_credentials_never_travel_without_tls(smtp: tuple[int, _Mailbox]) -> None:
    port, mailbox = smtp
    mail = channel("email", to=["a@example.org"])
    sent = send_email(f"smtp://127.0.0.1:{port}", mail, MESSAGE, timedelta(seconds=5))
    assert sent.ok and mailbox.count == 1
    refused = send_email(f"smtp://bot:pa55word@127.0.0.1:{port}", mail, MESSAGE, timedelta(seconds=5))
    assert refused.permanent and "TLS" in refused.message and mailbox.count == 1
    for url in ("http://127.0.0.1/", "smtp://", "smtp://host:notaport"):
        assert send_email(url, mail, MESSAGE, timedelta(seconds=5)).permanent
