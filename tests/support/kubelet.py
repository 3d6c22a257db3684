"""Playing kubelet and Job controller for training Jobs: no nodes run in the test cluster, so a
Job's container command runs here as a local process with the Job's environment, and its
outcome is written into the Job's status as the Job controller would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.support.kube import REPO, Cluster
from tests.support.process import spawn, terminate

__all__ = ["JobKubelet", "RanJob"]


@dataclass
class RanJob:
    name: str
    env: dict[str, str]
    returncode: int | None = None
    output: str = ""


@dataclass
class JobKubelet:
    """Runs every Job that appears in ``namespace``; ``hold`` keeps finished Jobs Active until set."""

    cluster: Cluster
    namespace: str
    workdir: Path
    hold: threading.Event = field(default_factory=threading.Event)
    jobs: dict[str, RanJob] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self.hold.set()  # by default nothing is held

    def start(self) -> JobKubelet:
        self._thread = threading.Thread(target=self._loop, name=f"kubelet-{self.namespace}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> JobKubelet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        running: list[threading.Thread] = []
        while not self._stop.is_set():
            listing = self.cluster.kubectl("get", "jobs", "-n", self.namespace, "-o", "json", check=False)
            if listing.returncode == 0:
                for job in json.loads(listing.stdout)["items"]:
                    name = job["metadata"]["name"]
                    if name not in self.jobs:
                        self.jobs[name] = RanJob(name, {})
                        thread = threading.Thread(target=self._run, args=(job,), daemon=True)
                        thread.start()
                        running.append(thread)
            time.sleep(0.5)
        for thread in running:
            thread.join(timeout=60)

    def _run(self, job: dict) -> None:
        name = job["metadata"]["name"]
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
        command = [*container.get("command", []), *container.get("args", [])]
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        self.jobs[name].env = env
        started = _now()
        self._patch(name, {"startTime": started, "active": 1})
        log = self.workdir / f"job-{name}.log"
        with log.open("w") as out:
            process = spawn(command, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
        try:
            code = process.wait(timeout=300)
        finally:
            terminate(process, 10)
        self.jobs[name].output = log.read_text()
        self.hold.wait()
        self.jobs[name].returncode = code
        done = _now()
        if code == 0:
            self._patch(
                name,
                {
                    "startTime": started,
                    "completionTime": done,
                    "active": 0,
                    "succeeded": 1,
                    "conditions": [_condition("SuccessCriteriaMet", done), _condition("Complete", done)],
                },
            )
        else:
            self._patch(
                name,
                {
                    "startTime": started,
                    "active": 0,
                    "failed": 1,
                    "conditions": [
                        _condition("FailureTarget", done, "BackoffLimitExceeded"),
                        _condition("Failed", done, "BackoffLimitExceeded"),
                    ],
                },
            )

    def _patch(self, name: str, status: dict) -> None:
        self.cluster.kubectl(
            "patch",
            "job",
            name,
            "-n",
            self.namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(type_: str, at: str, reason: str = "Completed") -> dict[str, str]:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": f"{type_} (written by the test kubelet)",
        "lastProbeTime": at,
        "lastTransitionTime": at,
    }
