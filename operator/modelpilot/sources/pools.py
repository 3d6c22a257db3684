"""Threads for the blocking clients, one bounded pool per dependency, shared fairly between
namespaces.

The clients (kubernetes, prometheus-api-client, mlflow, urllib) block; their calls run in
threads so the event loop serves every resource. One shared executor would let a tenant's MLflow
or webhook that accepts connections and never answers take every thread, and with them the API
server calls that write other tenants' rollbacks. Each dependency therefore has its own threads,
and a namespace holds at most a share of them: a slot is freed when the thread is, not when the
caller stops waiting, so a stuck call keeps occupying only its own namespace's share.
"""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["KUBERNETES", "MLFLOW", "PROMETHEUS", "WEBHOOKS", "Pool"]

T = TypeVar("T")


@dataclass(eq=False)
class _Slots:
    """The semaphores of one event loop (``modelpilot check`` runs one loop per file)."""

    all: asyncio.Semaphore
    namespaces: dict[str, asyncio.Semaphore] = field(default_factory=dict)


class Pool:
    """``threads`` threads for one dependency; one namespace uses at most ``per_namespace``."""

    def __init__(self, name: str, threads: int, per_namespace: int):
        self.name, self.threads, self.per_namespace = name, threads, per_namespace
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Slots] = weakref.WeakKeyDictionary()

    def _slots(self, namespace: str | None) -> tuple[asyncio.Semaphore, asyncio.Semaphore | None]:
        loop = asyncio.get_running_loop()
        slots = self._loops.get(loop)
        if slots is None:
            slots = self._loops[loop] = _Slots(asyncio.Semaphore(self.threads))
        if namespace is None:
            return slots.all, None
        own = slots.namespaces.setdefault(namespace, asyncio.Semaphore(self.per_namespace))
        return slots.all, own

    async def run(
        self, namespace: str | None, function: Callable[..., T], *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> T:
        """``function(*args, **kwargs)`` in one of the pool's threads, for ``namespace`` (None:
        the operator's own work). ``timeout`` (seconds, from when a thread takes the call)
        raises TimeoutError; the thread's own socket timeout ends the call itself."""
        every, own = self._slots(namespace)
        # A namespace waits for its own share first, so waiting never holds a slot of everyone's.
        if own is not None:
            await own.acquire()
        try:
            await every.acquire()
        except BaseException:
            if own is not None:
                own.release()
            raise
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

        def release(done: asyncio.Future[T]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved here: the caller may have stopped waiting
            every.release()
            if own is not None:
                own.release()

        future.add_done_callback(release)
        if timeout is None:
            return await asyncio.shield(future)
        return await asyncio.wait_for(asyncio.shield(future), timeout)


# A tick makes a handful of calls to each; the scheduler runs at most 4 ticks per namespace.
KUBERNETES = Pool("kubernetes", threads=16, per_namespace=8)
PROMETHEUS = Pool("prometheus", threads=16, per_namespace=4)
MLFLOW = Pool("mlflow", threads=8, per_namespace=2)
WEBHOOKS = Pool("webhooks", threads=8, per_namespace=2)
