"""What every kind's tick decides: the new status, the actions that make it true, and the Events
of its transitions. One shape for all kinds, so a reader who knows one tick knows them all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Generic, Literal, TypeVar

__all__ = ["HISTORY_LIMIT", "MESSAGE_LIMIT", "Decision", "EventToPost", "backoff", "newest"]

#: Histories in status keep this many entries, newest last.
HISTORY_LIMIT = 20
#: Longest message an Event or a condition carries; the API server refuses much longer ones.
MESSAGE_LIMIT = 1024

StatusT = TypeVar("StatusT")
ActionT = TypeVar("ActionT")
EntryT = TypeVar("EntryT")


@dataclass(frozen=True)
class EventToPost:
    """A Kubernetes Event a decision asks the handler to post."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", self.message[:MESSAGE_LIMIT])


@dataclass(frozen=True)
class Decision(Generic[StatusT, ActionT]):
    """One tick's outcome. The handler writes ``status`` first, then applies ``actions`` in
    order, then posts ``events``: a one-time effect is recorded before it is made."""

    status: StatusT
    actions: list[ActionT] = field(default_factory=list)
    events: list[EventToPost] = field(default_factory=list)


def newest(history: Sequence[EntryT], *added: EntryT) -> list[EntryT]:
    """``history`` with ``added`` appended, cut to the newest HISTORY_LIMIT entries."""
    return [*history, *added][-HISTORY_LIMIT:]


def backoff(first: timedelta, most: timedelta, failures: int) -> timedelta:
    """The wait after ``failures`` failures in a row (at least 1): ``first``, doubling, at most ``most``."""
    doubled: timedelta = first * 2 ** min(failures - 1, 16)
    return min(most, doubled)
