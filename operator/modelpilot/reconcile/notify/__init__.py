"""Notifications, decided: the notices a tick's condition changes give, their delivery to each
channel (grouping, rate limit, retries) as a pure state machine, and the bodies per channel type."""

from .delivery import ChannelState, Message, delivered, delivery_status, due_at, failed, offer, take
from .notices import LIFECYCLE, Notice, Trigger, for_channel, notices, triggers
from .redact import redact
from .render import Email, email, http_bodies

__all__ = [
    "LIFECYCLE",
    "ChannelState",
    "Email",
    "Message",
    "Notice",
    "Trigger",
    "delivered",
    "delivery_status",
    "due_at",
    "email",
    "failed",
    "for_channel",
    "http_bodies",
    "notices",
    "offer",
    "redact",
    "take",
    "triggers",
]
