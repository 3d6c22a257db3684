"""Threads per dependency, shared fairly: one namespace's stuck calls hold only its own share."""

from __future__ import annotations

import asyncio
import threading

import pytest

from modelpilot.sources.pools import Pool


class Calls:
    """A blocking call that counts how many run at once, per namespace, until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.running: dict[str, int] = {}
        self.most: dict[str, int] = {}
        self.started: dict[str, int] = {}

    def blocked(self, namespace: str) -> str:
        with self.lock:
            self.running[namespace] = self.running.get(namespace, 0) + 1
            self.most[namespace] = max(self.most.get(namespace, 0), self.running[namespace])
            self.started[namespace] = self.started.get(namespace, 0) + 1
        self.release.wait(30)
        with self.lock:
            self.running[namespace] -= 1
        return namespace


def test_a_namespace_never_runs_more_than_its_share() -> None:
    pool = Pool("test-share", threads=8, per_namespace=2)
    calls = Calls()

    async def main() -> list[str]:
        started = [asyncio.create_task(pool.run("a", calls.blocked, "a")) for _ in range(6)]
        await asyncio.sleep(0.3)
        calls.release.set()
        return await asyncio.gather(*started)

    assert asyncio.run(main()) == ["a"] * 6
    assert calls.most["a"] == 2


def test_a_namespace_whose_calls_never_end_leaves_the_others_their_threads() -> None:
    pool = Pool("test-stuck", threads=4, per_namespace=2)
    calls = Calls()

    async def main() -> tuple[list[BaseException | str], str, int]:
        # The stuck namespace's callers give up after 0.2 s; their threads stay busy, and keep
        # their slots; its later calls wait for its own share to free up.
        stuck = [asyncio.create_task(pool.run("stuck", calls.blocked, "stuck", timeout=0.2)) for _ in range(4)]
        while sum(task.done() for task in stuck) < 2:  # two callers gave up waiting
            await asyncio.sleep(0.05)
        other = await asyncio.wait_for(pool.run("other", str.upper, "answered"), timeout=20)
        started_before_release = calls.started["stuck"]
        calls.release.set()
        return await asyncio.gather(*stuck, return_exceptions=True), other, started_before_release

    stuck, other, started = asyncio.run(main())
    assert other == "ANSWERED"
    # Only its share of threads ever ran the stuck namespace's calls, though four were asked for.
    assert started == 2 and calls.most["stuck"] == 2
    assert sum(isinstance(result, TimeoutError) for result in stuck) == 2


def test_the_operators_own_calls_use_the_whole_pool() -> None:
    pool = Pool("test-own", threads=3, per_namespace=1)
    calls = Calls()

    async def main() -> list[str]:
        started = [asyncio.create_task(pool.run(None, calls.blocked, "own")) for _ in range(3)]
        await asyncio.sleep(0.3)
        calls.release.set()
        return await asyncio.gather(*started)

    assert asyncio.run(main()) == ["own"] * 3
    assert calls.most["own"] == 3


def test_an_error_in_the_call_reaches_the_caller_and_frees_the_slot() -> None:
    pool = Pool("test-error", threads=1, per_namespace=1)

    async def main() -> str:
        with pytest.raises(ZeroDivisionError):
            await pool.run("a", lambda: 1 / 0)
        return await asyncio.wait_for(pool.run("a", str, "again"), timeout=20)

    assert asyncio.run(main()) == "again"
