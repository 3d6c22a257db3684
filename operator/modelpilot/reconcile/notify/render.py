"""The bodies of a message per channel type: Slack incoming webhooks, Microsoft Teams (an
Adaptive Card, as Teams workflows take it), a generic webhook, PagerDuty Events API v2 and email.

Bodies hold news only: never an address or a credential. PagerDuty's ``routing_key`` is added by
the sender, after rendering.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from modelpilot.api.notify import SEVERITIES, NotificationChannel

from .delivery import Message
from .notices import Notice

__all__ = [
    "LISTED",
    "WEBHOOK_VERSION",
    "Email",
    "email",
    "headline",
    "http_bodies",
    "pagerduty_events",
    "slack",
    "teams",
    "webhook",
]

#: Notices a chat message or an email lists; the rest are counted ("and 3 more").
LISTED = 20
#: The generic webhook body's version: a receiver can tell a later, changed layout apart.
WEBHOOK_VERSION = "1"

_SLACK_ICON = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}
_TEAMS_COLOR = {"critical": "Attention", "warning": "Warning", "info": "Accent"}


def _title(notice: Notice) -> str:
    what = "RESOLVED" if notice.state == "resolved" else notice.severity.upper()
    return f"[{what}] {notice.kind} {notice.namespace}/{notice.name}: {notice.condition}={notice.status} ({notice.reason})"


def _line(notice: Notice) -> str:
    """One notice in one line of plain text."""
    return f"{_title(notice)}: {notice.message}" if notice.message else _title(notice)


def headline(message: Message) -> str:
    """One line saying what the message is about."""
    notices = message.notices
    if len(notices) == 1 and not message.omitted:
        return _title(notices[0])
    counts = Counter("resolved" if n.state == "resolved" else n.severity for n in notices)
    order = [*reversed(SEVERITIES), "resolved"]
    parts = ", ".join(f"{counts[s]} {s}" for s in order if counts[s])
    resources = sorted({f"{n.kind} {n.namespace}/{n.name}" for n in notices})
    about = resources[0] if len(resources) == 1 else f"{len(resources)} resources"
    return f"modelpilot: {len(notices) + message.omitted} notices about {about} ({parts})"


def _more(message: Message) -> int:
    return max(0, len(message.notices) - LISTED) + message.omitted


def _top(message: Message) -> str:
    firing = [n.severity for n in message.notices if n.state != "resolved"]
    return max(firing, key=SEVERITIES.index) if firing else "resolved"


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (links, mentions): a condition message must stay text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack(message: Message) -> dict[str, Any]:
    """An incoming-webhook body: ``text`` for notifications and clients without blocks, and blocks."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline(message)[:150]}},
    ]
    for notice in message.notices[:LISTED]:
        icon = ":white_check_mark:" if notice.state == "resolved" else _SLACK_ICON[notice.severity]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"{icon} {_slack_escape(_line(notice))}"[:3000]}})
    if more := _more(message):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"and {more} more"}]})
    return {"text": _slack_escape(headline(message)), "blocks": blocks}


def teams(message: Message) -> dict[str, Any]:
    """A Teams workflow (or connector) body: a message with one Adaptive Card."""
    top = _top(message)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": headline(message),
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": "Good" if top == "resolved" else _TEAMS_COLOR[top],
        }
    ]
    for notice in message.notices[:LISTED]:
        facts = [
            ("Resource", f"{notice.kind} {notice.namespace}/{notice.name}"),
            ("Condition", f"{notice.condition}={notice.status} ({notice.reason})"),
            ("Severity", notice.severity),
            ("State", notice.state),
            ("Time", notice.time.isoformat()),
        ]
        body.append({"type": "TextBlock", "text": notice.message or notice.reason, "wrap": True, "separator": True})
        body.append({"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]})
    if more := _more(message):
        body.append({"type": "TextBlock", "text": f"and {more} more", "isSubtle": True})
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    return {
        "type": "message",
        "summary": headline(message),
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def _fields(notice: Notice) -> dict[str, Any]:
    return {
        "kind": notice.kind,
        "namespace": notice.namespace,
        "name": notice.name,
        "condition": notice.condition,
        "status": notice.status,
        "reason": notice.reason,
        "message": notice.message,
        "severity": notice.severity,
        "state": notice.state,
        "time": notice.time.isoformat(),
    }


def webhook(message: Message, channel: str) -> dict[str, Any]:
    """The generic webhook body (docs/notifications.md): every notice with all its fields."""
    return {
        "version": WEBHOOK_VERSION,
        "receiver": channel,
        "notices": [_fields(n) for n in message.notices],
        "omitted": message.omitted,
    }


def pagerduty_events(message: Message) -> list[dict[str, Any]]:
    """Events API v2 events without their routing_key: the newest notice of each resource's
    condition, a trigger or a resolve under one dedup_key per resource and condition."""
    newest = {n.dedup_key: n for n in message.notices}
    events = []
    for key, notice in newest.items():
        events.append(
            {
                "event_action": "resolve" if notice.state == "resolved" else "trigger",
                "dedup_key": key,
                "client": "modelpilot",
                "payload": {
                    "summary": _line(notice)[:1024],
                    "severity": notice.severity,
                    "source": f"{notice.namespace}/{notice.name}",
                    "component": notice.kind,
                    "group": notice.namespace,
                    "class": notice.condition,
                    "timestamp": notice.time.isoformat(),
                    "custom_details": _fields(notice),
                },
            }
        )
    return events


@dataclass(frozen=True)
class Email:
    subject: str
    text: str


def email(message: Message) -> Email:
    """A plain-text email: the headline as subject, one paragraph per notice."""
    paragraphs = []
    for notice in message.notices[:LISTED]:
        fields = _fields(notice)
        paragraphs.append(_line(notice) + "\n" + "\n".join(f"  {k}: {v}" for k, v in fields.items() if k != "message"))
    if more := _more(message):
        paragraphs.append(f"and {more} more")
    paragraphs.append("-- \nSent by modelpilot; the resource's status.notifications shows each channel's delivery.")
    return Email(subject=headline(message)[:200], text="\n\n".join(paragraphs) + "\n")


def http_bodies(channel: NotificationChannel, message: Message) -> list[dict[str, Any]]:
    """The JSON bodies one message is posted as: one, or one per PagerDuty event."""
    if channel.type == "slack":
        return [slack(message)]
    if channel.type == "teams":
        return [teams(message)]
    if channel.type == "pagerduty":
        return pagerduty_events(message)
    if channel.type == "webhook":
        return [webhook(message, channel.name)]
    raise ValueError(f"{channel.type} channels are not posted as JSON")
