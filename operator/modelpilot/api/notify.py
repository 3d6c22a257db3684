"""Notifications: the channels a resource sends its news to, and how each delivery went.

A channel's address and credentials live in an opted-in Secret of the resource's namespace
(the webhook URL, the PagerDuty routing key, or an ``smtp://``/``smtps://`` URL); the spec names
the Secret key, never the value.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from .common import ApiModel, Rule, SecretKeyReference

__all__ = ["SEVERITIES", "UNIQUE_CHANNEL_NAMES", "DeliveryStatus", "NotificationChannel", "Severity"]

Severity = Literal["info", "warning", "critical"]
#: Severities from the least to the most urgent.
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")


class NotificationChannel(ApiModel):
    """Where a resource's condition changes and lifecycle news are sent."""

    name: str = Field(
        min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="The channel's name in status."
    )
    type: Literal["slack", "teams", "webhook", "email", "pagerduty"] = Field(description="The receiver's kind.")
    secret: SecretKeyReference = Field(
        description="The Secret key (the Secret labelled modelpilot.dev/opt-in=true) holding the address: the incoming "
        "webhook URL (slack, teams, webhook), the routing key (pagerduty) or an smtp:// or smtps:// URL (email)."
    )
    min_severity: Severity = Field(default="warning", description="Send news of this severity and above. Default warning.")
    to: list[str] = Field(default_factory=list, max_length=20, description="Recipients (email only).")
    sender: str | None = Field(default=None, max_length=254, description="The From address (email only).")

    rules: ClassVar[tuple[Rule[NotificationChannel], ...]] = (
        Rule(
            "(self.type == 'email') == (has(self.to) && size(self.to) > 0)",
            "email channels need recipients in to, and only email channels take them",
            lambda channel: (channel.type == "email") == bool(channel.to),
            ".to",
        ),
    )


class DeliveryStatus(ApiModel):
    """How the latest news reached one channel."""

    channel: str = Field(description="The channel's name.")
    state: Literal["Delivered", "Pending", "Retrying", "Failed", "RateLimited"] = Field(
        description="Delivered, waiting to be grouped or sent, retrying after a failure, given up, or held by the rate limit."
    )
    last_attempt: datetime | None = Field(default=None, description="When a delivery was last tried.")
    last_delivered: datetime | None = Field(default=None, description="When a message last reached the channel.")
    attempts: int = Field(default=0, ge=0, description="Tries of the current message.")
    suppressed: int = Field(default=0, ge=0, description="Notices held by the rate limit and folded into a later message.")
    message: str = Field(default="", max_length=1024, description="Why the last attempt failed, without secrets.")


#: Channel names are how status tells deliveries apart: a spec's rule on its notifications list.
UNIQUE_CHANNEL_NAMES: Rule[Any] = Rule(
    "!has(self.notifications) || self.notifications.all(c, self.notifications.exists_one(d, d.name == c.name))",
    "notification channel names must be unique",
    lambda spec: len({c.name for c in spec.notifications}) == len(spec.notifications),
    ".notifications",
)
