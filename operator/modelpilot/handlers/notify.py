"""The operator's notifier: one per process, it groups, rate-limits, sends and retries the
notices of every resource's condition changes, and keeps their delivery state for status.

Ticks hand it their conditions before and after (``notify``) and write what it reports
(``delivery_status``) into the next status. Delivery state lives in memory: a restarted
operator forgets notices not yet sent, as a restarted Alertmanager without storage does.
Only the acting replica runs ticks, so each notice is sent once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, TypeVar

from modelpilot.api import Condition, ResourceStatus, now_utc
from modelpilot.api.notify import DeliveryStatus, NotificationChannel
from modelpilot.reconcile import OwnerRef
from modelpilot.reconcile.notify import (
    ChannelState,
    Message,
    delivered,
    due_at,
    failed,
    for_channel,
    notices,
    offer,
    take,
)
from modelpilot.reconcile.notify import delivery_status as channel_delivery
from modelpilot.sources.kubernetes import KubernetesReader
from modelpilot.sources.notify import Attempt, send

__all__ = ["NOTIFIER", "ChannelKey", "Notifier", "delivery_status", "notify", "with_delivery"]

log = logging.getLogger(__name__)

#: A resource not heard of for this long (deleted, or its namespace) is forgotten, with the
#: channels no one else uses.
FORGET_AFTER = timedelta(hours=1)
#: The longest the loop sleeps with nothing due: it also sweeps forgotten resources.
IDLE_WAKE = 60.0

StatusT = TypeVar("StatusT", bound=ResourceStatus)
Sender = Callable[[str, NotificationChannel, Message], Awaitable[Attempt]]


class ChannelKey(NamedTuple):
    """One channel of one namespace: resources naming the same channel and Secret share its
    grouping and rate limit, since their messages reach the same people."""

    namespace: str
    name: str
    type: str
    secret: str
    key: str

    @classmethod
    def of(cls, namespace: str, channel: NotificationChannel) -> ChannelKey:
        return cls(namespace, channel.name, channel.type, channel.secret.name, channel.secret.key)


@dataclass
class _Subscriber:
    channels: dict[str, ChannelKey]
    seen: datetime


@dataclass
class Notifier:
    """Channel states, the resources subscribed to them, and the task that delivers."""

    sender: Sender
    channels: dict[ChannelKey, ChannelState] = field(default_factory=dict)
    specs: dict[ChannelKey, NotificationChannel] = field(default_factory=dict)
    subscribers: dict[tuple[str, str, str], _Subscriber] = field(default_factory=dict)
    _wake: asyncio.Event | None = None
    _task: asyncio.Task[None] | None = None
    _sending: set[asyncio.Task[None]] = field(default_factory=set)

    async def notify(
        self,
        kind: str,
        namespace: str,
        name: str,
        spec_channels: Sequence[NotificationChannel],
        before: Sequence[Condition],
        after: Sequence[Condition],
        now: datetime,
    ) -> None:
        """Queue the notices of ``before`` -> ``after`` on the resource's channels."""
        found = notices(kind, namespace, name, before, after, now) if spec_channels else []
        subscribed = {}
        for channel in spec_channels:
            key = subscribed[channel.name] = ChannelKey.of(namespace, channel)
            self.specs[key] = channel
            state = self.channels.get(key, ChannelState())
            self.channels[key] = offer(state, for_channel(found, channel), now)
        self.subscribers[(kind, namespace, name)] = _Subscriber(subscribed, now)
        if found:
            self._start()

    def delivery_status(self, kind: str, namespace: str, name: str, now: datetime) -> list[DeliveryStatus]:
        """Each channel's delivery, for the resource's status; none before its first notice."""
        subscriber = self.subscribers.get((kind, namespace, name))
        if subscriber is None:
            return []
        return [
            channel_delivery(channel, self.channels[key], now)
            for channel, key in subscriber.channels.items()
            if key in self.channels and self.channels[key] != ChannelState()
        ]

    def _start(self) -> None:
        running = self._task is not None and not self._task.done() and self._task.get_loop() is asyncio.get_running_loop()
        if self._wake is None or not running:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name="modelpilot-notifier")
        self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            now = now_utc()
            self._forget(now)
            for key, state in list(self.channels.items()):
                self.channels[key], message = take(state, now)
                if message is not None:
                    task = asyncio.create_task(self._deliver(key, message))
                    self._sending.add(task)
                    task.add_done_callback(self._sending.discard)
            due = [d for d in (due_at(s, now) for s in self.channels.values()) if d is not None]
            sleep = min(IDLE_WAKE, max(0.0, (min(due) - now).total_seconds())) if due else IDLE_WAKE
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=sleep)
            except TimeoutError:
                pass

    async def _deliver(self, key: ChannelKey, message: Message) -> None:
        try:
            attempt = await self.sender(key.namespace, self.specs[key], message)
        except Exception as err:  # a bug in a sender must not stop the notifier
            log.exception("notification to %s/%s failed", key.namespace, key.name)
            attempt = Attempt(False, f"failed: {type(err).__name__}")
        now, state = now_utc(), self.channels.get(key, ChannelState())
        if attempt.ok:
            self.channels[key] = delivered(state, now)
        else:
            self.channels[key] = failed(state, now, attempt.message, permanent=attempt.permanent)
            log.warning("notification to channel %s in %s not delivered: %s", key.name, key.namespace, attempt.message)
        if self._wake is not None:
            self._wake.set()

    def _forget(self, now: datetime) -> None:
        gone = [k for k, s in self.subscribers.items() if now - s.seen > FORGET_AFTER]
        for resource in gone:
            del self.subscribers[resource]
        if gone:
            used = {key for s in self.subscribers.values() for key in s.channels.values()}
            for key in [k for k, s in self.channels.items() if k not in used and due_at(s, now) is None]:
                del self.channels[key]
                self.specs.pop(key, None)


_KUBE = KubernetesReader()


async def _send(namespace: str, channel: NotificationChannel, message: Message) -> Attempt:
    return await send(_KUBE, namespace, channel, message)


NOTIFIER = Notifier(sender=_send)


async def notify(
    kind: str,
    namespace: str,
    name: str,
    spec_channels: Sequence[NotificationChannel],
    before_conditions: Sequence[Condition],
    after_conditions: Sequence[Condition],
    now: datetime,
) -> None:
    """Queue the notices of a tick's condition changes on the resource's channels."""
    await NOTIFIER.notify(kind, namespace, name, spec_channels, before_conditions, after_conditions, now)


def delivery_status(kind: str, namespace: str, name: str, now: datetime | None = None) -> list[DeliveryStatus]:
    """The resource's delivery state per channel, as the next tick writes it to status."""
    return NOTIFIER.delivery_status(kind, namespace, name, now or now_utc())


def with_delivery(status: StatusT, kind: str, ref: OwnerRef, channels: Sequence[NotificationChannel], now: datetime) -> StatusT:
    """``status`` showing the delivery to each of ``channels``: the notifier's state, or what
    status said before (a restarted operator knows nothing of earlier deliveries)."""
    shown: list[DeliveryStatus] = list(getattr(status, "notifications", []))
    known = {d.channel: d for d in shown} | {d.channel: d for d in delivery_status(kind, ref.namespace, ref.name, now)}
    delivery = [known[c.name] for c in channels if c.name in known]
    return status if delivery == shown else status.model_copy(update={"notifications": delivery})
