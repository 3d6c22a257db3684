"""One tick for every kind, in one order: load -> observe -> decide -> write status -> apply the
actions -> post the Events.

Conflict policy: a tick decides on the resource as stored (read afresh: a timer's body may
predate the status the last tick wrote) and writes its status only if the resource is still at
the resourceVersion it read. When someone wrote in between, nothing of the tick is kept and the
next tick decides again. Because the status is written before the actions are applied, a
one-time effect is always recorded before it is made, and a decision that finds an effect
missing asks for it again.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Generic, Protocol, TypeVar

from modelpilot.api import (
    ApiModel,
    Kind,
    ResourceStatus,
    SpecError,
    format_duration,
    load_spec,
    load_status,
    now_utc,
)
from modelpilot.reconcile import Decision, EventToPost, OwnerRef, admission_patch, backoff, merge_patch, set_condition
from modelpilot.sources.kubernetes import KubeError, get_resource, post_event, write_status
from modelpilot.sources.pools import KUBERNETES

from . import notify
from .metrics import STATES

__all__ = ["Cluster", "KubeCluster", "TickLogger", "TickSteps", "run_tick"]

log = logging.getLogger(__name__)

#: Backoff after a tick that ended in an unexpected error: doubling from the first to the most.
FIRST_RETRY = timedelta(seconds=5)
MAX_RETRY = timedelta(minutes=5)

#: The logger kopf hands a handler.
TickLogger = logging.Logger | logging.LoggerAdapter[Any]

SpecT = TypeVar("SpecT", bound=ApiModel)
StatusT = TypeVar("StatusT", bound=ResourceStatus)
ObsT = TypeVar("ObsT")
ActionT = TypeVar("ActionT")
RefT = TypeVar("RefT", bound=OwnerRef)


class Cluster(Protocol):
    """Where a tick reads its resource, writes its status and posts its Events."""

    async def read(self, kind: Kind[Any, Any], ref: OwnerRef) -> Mapping[str, Any]: ...

    async def write_status(self, kind: Kind[Any, Any], ref: OwnerRef, resource_version: str, patch: dict[str, Any]) -> bool: ...

    async def post_event(self, body: Mapping[str, Any], event: EventToPost) -> None: ...


SpecIn = TypeVar("SpecIn", bound=ApiModel, contravariant=True)
ObsIn = TypeVar("ObsIn", contravariant=True)
RefIn = TypeVar("RefIn", bound=OwnerRef, contravariant=True)


class Decide(Protocol[SpecIn, StatusT, ObsIn, ActionT, RefIn]):
    """A kind's pure decision, as ``reconcile`` spells it for every kind."""

    def __call__(
        self, spec: SpecIn, previous: StatusT, observations: ObsIn, /, *, ref: RefIn, generation: int | None, now: datetime
    ) -> Decision[StatusT, ActionT]: ...


def _always_due(status: Any, generation: int | None, now: datetime) -> bool:
    return True


@dataclass(frozen=True)
class TickSteps(Generic[SpecT, StatusT, ObsT, ActionT, RefT]):
    """A kind's parts of the tick. ``due`` is asked first, on the watched body, so a resource
    with nothing to do costs no request; ``publish`` exports the new status (gauges)."""

    kind: Kind[SpecT, StatusT]
    ref: type[RefT]
    observe: Callable[[SpecT, StatusT, RefT, Mapping[str, str], datetime], Awaitable[ObsT]]
    decide: Decide[SpecT, StatusT, ObsT, ActionT, RefT]
    apply: Callable[[SpecT, RefT, Sequence[ActionT]], Awaitable[list[str]]]
    due: Callable[[StatusT, int | None, datetime], bool] = _always_due
    publish: Callable[[RefT, SpecT, StatusT], None] | None = None


async def run_tick(
    steps: TickSteps[SpecT, StatusT, ObsT, ActionT, RefT],
    body: Mapping[str, Any],
    cluster: Cluster,
    *,
    logger: TickLogger,
    now: datetime | None = None,
) -> Decision[StatusT, ActionT] | None:
    """Run one tick of the resource ``body`` names; the decision, or None when nothing was decided
    (not due, an invalid spec, or a conflicting write)."""
    now = now or now_utc()
    meta = body["metadata"]
    if not _due(steps, load_status(steps.kind, body.get("status")), meta.get("generation"), now):
        return None
    ref = steps.ref(meta["namespace"], meta["name"], meta["uid"])
    stored = await cluster.read(steps.kind, ref)
    stored_meta, stored_status = stored["metadata"], stored.get("status") or {}
    try:
        spec = load_spec(steps.kind, stored.get("spec"))
    except SpecError:
        # Admission says so as the spec arrives; said here too, for a spec that arrived while
        # no replica was admitting (a leader's failover).
        await _refuse(steps, ref, stored, cluster, now)
        return None
    previous, generation = load_status(steps.kind, stored_status), stored_meta.get("generation")
    if not _due(steps, previous, generation, now):
        return None  # the watched body was older than what is stored, and the stored one is not due
    try:
        observations = await steps.observe(spec, previous, ref, stored_meta.get("annotations") or {}, now)
        # Decisions can be CPU work (statistics): keep them off the loop that serves every resource.
        decision = await asyncio.to_thread(
            functools.partial(steps.decide, spec, previous, observations, ref=ref, generation=generation, now=now)
        )
        if previous.tick_errors:
            decision = replace(decision, status=decision.status.model_copy(update={"tick_errors": 0, "retry_after": None}))
    except Exception as err:  # an answer nobody foresaw, or a bug: said in status, never a frozen one
        logger.exception("tick failed; Ready is Unknown until a tick succeeds")
        decision = Decision(status=_failed(previous, err, generation, now))
    channels = getattr(spec, "notifications", [])
    decision = replace(decision, status=notify.with_delivery(decision.status, steps.kind.kind, ref, channels, now))
    patch = merge_patch(stored_status, decision.status.to_body())
    if patch and not await cluster.write_status(steps.kind, ref, stored_meta["resourceVersion"], patch):
        return None
    for failure in await steps.apply(spec, ref, decision.actions):
        logger.warning("will retry: %s", failure)
    for event in decision.events:
        await cluster.post_event(stored, event)
    if channels:
        kind = steps.kind.kind
        await notify.notify(kind, ref.namespace, ref.name, channels, previous.conditions, decision.status.conditions, now)
    STATES.ticked(steps.kind.kind, ref.namespace, ref.name, decision.status.conditions)
    if steps.publish is not None:
        steps.publish(ref, spec, decision.status)
    return decision


async def _refuse(
    steps: TickSteps[Any, Any, Any, Any, Any], ref: OwnerRef, stored: Mapping[str, Any], cluster: Cluster, now: datetime
) -> None:
    meta, status = stored["metadata"], stored.get("status") or {}
    _, wanted = admission_patch(steps.kind, stored.get("spec"), status, generation=meta.get("generation"), now=now)
    patch = merge_patch({key: status.get(key) for key in wanted}, wanted)
    if patch:
        await cluster.write_status(steps.kind, ref, meta["resourceVersion"], patch)


def _due(steps: TickSteps[Any, StatusT, Any, Any, Any], status: StatusT, generation: int | None, now: datetime) -> bool:
    if status.retry_after is not None and now < status.retry_after and status.observed_generation == generation:
        return False  # backing off after an unexpected error; a changed spec is tried at once
    return steps.due(status, generation, now)


def _failed(previous: StatusT, error: Exception, generation: int | None, now: datetime) -> StatusT:
    """``previous`` with Ready Unknown naming the error, and the next try backed off."""
    errors = previous.tick_errors + 1
    delay = backoff(FIRST_RETRY, MAX_RETRY, errors)
    conditions = set_condition(
        previous.conditions,
        "Ready",
        "Unknown",
        "TickFailed",
        f"{type(error).__name__}: {error}; retrying in {format_duration(delay)}",
        now=now,
        generation=generation,
    )
    update = {"conditions": conditions, "tick_errors": errors, "retry_after": now + delay, "observed_generation": generation}
    return previous.model_copy(update=update)


class KubeCluster:
    """The API server, through the sources' one error policy; Events posted as the operator."""

    async def read(self, kind: Kind[Any, Any], ref: OwnerRef) -> Mapping[str, Any]:
        return await KUBERNETES.run(ref.namespace, get_resource, kind.plural, ref.namespace, ref.name)

    async def write_status(self, kind: Kind[Any, Any], ref: OwnerRef, resource_version: str, patch: dict[str, Any]) -> bool:
        return await KUBERNETES.run(ref.namespace, write_status, kind.plural, ref.namespace, ref.name, resource_version, patch)

    async def post_event(self, body: Mapping[str, Any], event: EventToPost) -> None:
        try:
            await KUBERNETES.run(body["metadata"]["namespace"], post_event, body, event.type, event.reason, event.message)
        except KubeError as err:  # an Event is news, not state: losing one must not fail the tick
            log.warning("could not post Event %s: %s", event.reason, err)
