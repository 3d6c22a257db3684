"""Notification senders: one message to one channel, its address read from an opted-in Secret.

Slack, Teams, generic webhooks and PagerDuty are JSON POSTs under the release webhooks' rules
(http/https only, TLS verified, no redirects, bounded time, the operator's allowed prefixes);
email goes over SMTP (``smtp://`` with STARTTLS when offered, ``smtps://`` for implicit TLS),
with credentials only over TLS. Nothing raises: every outcome is an ``Attempt``, whose message
never quotes the Secret's value.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import urllib.parse
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from modelpilot.api.notify import NotificationChannel
from modelpilot.reconcile.canary import HookAnswer
from modelpilot.reconcile.notify import Message, email, http_bodies, redact

from .kubernetes import KubeError, KubernetesReader, ObjectMissing, SecretUnusable
from .outbound import allowed
from .pools import WEBHOOKS
from .webhooks import post_json, url_refusal

__all__ = ["PAGERDUTY_EVENTS_URL", "SEND_TIMEOUT", "Attempt", "pagerduty_events_url", "send", "send_email"]

#: Where PagerDuty events go unless MODELPILOT_PAGERDUTY_EVENTS_URL says otherwise (an EU
#: account's endpoint, a proxy, or a test's local receiver).
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
#: One request (or SMTP conversation step) may take this long: a receiver that hangs holds one
#: of its namespace's two webhook threads no longer.
SEND_TIMEOUT = timedelta(seconds=10)
_SMTP_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class Attempt:
    """How one try went; ``permanent``: retrying cannot help until someone fixes something."""

    ok: bool
    message: str
    permanent: bool = False


def pagerduty_events_url() -> str:
    return os.environ.get("MODELPILOT_PAGERDUTY_EVENTS_URL") or PAGERDUTY_EVENTS_URL


async def send(kube: KubernetesReader, namespace: str, channel: NotificationChannel, message: Message) -> Attempt:
    """Deliver ``message`` to ``channel`` of a resource in ``namespace``."""
    ref = channel.secret
    try:
        secret = (await kube.secret_value(namespace, ref.name, ref.key)).strip()
    except KubeError as err:
        # A Secret missing or not opted in waits for a person; an API server that did not answer, not.
        return Attempt(False, f"no address: {err}", permanent=isinstance(err, (SecretUnusable, ObjectMissing)))
    if channel.type == "email":
        attempt = await WEBHOOKS.run(namespace, send_email, secret, channel, message, SEND_TIMEOUT)
    elif channel.type == "pagerduty":
        url = pagerduty_events_url()
        if refusal := url_refusal(url):
            attempt = Attempt(False, refusal.replace("in the Secret", "of PagerDuty events"), permanent=True)
        else:
            bodies = [{**body, "routing_key": secret} for body in http_bodies(channel, message)]
            attempt = await WEBHOOKS.run(namespace, _post_all, url, bodies)
    elif refusal := url_refusal(secret):
        attempt = Attempt(False, refusal, permanent=True)
    else:
        attempt = await WEBHOOKS.run(namespace, _post_all, secret, http_bodies(channel, message))
    return Attempt(attempt.ok, redact(attempt.message, secret), attempt.permanent)


def _post_all(url: str, bodies: list[dict[str, Any]]) -> Attempt:
    answer = HookAnswer(True, "nothing to send")
    for body in bodies:  # PagerDuty dedupes by key: a retry may repeat the events that went through
        answer = post_json(url, body, SEND_TIMEOUT)
        if not answer.ok:
            break
    return Attempt(answer.ok, answer.message)


def _smtp_server(url: str) -> tuple[urllib.parse.SplitResult, str, int] | None:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or _SMTP_PORTS.get(parts.scheme)
    except ValueError:
        return None
    if not url.isprintable() or parts.scheme not in _SMTP_PORTS or not parts.hostname or port is None:
        return None
    return parts, parts.hostname, port


def send_email(url: str, channel: NotificationChannel, message: Message, timeout: timedelta) -> Attempt:
    """One email over SMTP to the server ``url`` names; blocks."""
    server = _smtp_server(url)
    if server is None:
        return Attempt(False, "refused: the address in the Secret is not a valid smtp:// or smtps:// URL", permanent=True)
    parts, host, port = server
    if not allowed(f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"):
        return Attempt(False, "refused: the SMTP server is under no prefix the operator allows", permanent=True)
    user, password = urllib.parse.unquote(parts.username or ""), urllib.parse.unquote(parts.password or "")
    rendered = email(message)
    mail = EmailMessage()
    mail["Subject"] = rendered.subject
    mail["From"] = channel.sender or (user if "@" in user else f"modelpilot@{host}")
    mail["To"] = ", ".join(channel.to)
    mail.set_content(rendered.text)
    context = ssl.create_default_context()
    try:
        smtp: smtplib.SMTP = (
            smtplib.SMTP_SSL(host, port, timeout=timeout.total_seconds(), context=context)
            if parts.scheme == "smtps"
            else smtplib.SMTP(host, port, timeout=timeout.total_seconds())
        )
        with smtp:
            smtp.ehlo()
            secure = parts.scheme == "smtps"
            if not secure and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                secure = True
            if user:
                if not secure:
                    return Attempt(
                        False, "refused: the SMTP server offers no STARTTLS, and credentials go over TLS only", permanent=True
                    )
                smtp.login(user, password)
            refused = smtp.send_message(mail)
    except smtplib.SMTPResponseException as err:
        text = err.smtp_error.decode(errors="replace") if isinstance(err.smtp_error, bytes) else str(err.smtp_error)
        return Attempt(False, f"the SMTP server answered {err.smtp_code}: {text[:200]}")
    except smtplib.SMTPRecipientsRefused as err:
        return Attempt(False, f"the SMTP server refused every recipient ({len(err.recipients)})")
    except (smtplib.SMTPException, OSError, ValueError) as err:  # ssl errors are OSErrors
        return Attempt(False, f"unreachable: {type(err).__name__}: {str(err)[:200]}")
    if refused:
        return Attempt(True, f"sent; the SMTP server refused {len(refused)} of {len(channel.to)} recipients")
    return Attempt(True, f"sent to {len(channel.to)} recipients")
