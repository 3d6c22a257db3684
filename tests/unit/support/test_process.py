"""Services started through tests.support.process end with the interpreter that started them,
even a SIGKILLed one, and take the workers they forked with them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.kube import REPO, wait_for
from tests.support.process import spawn, terminate

# A service that forks a worker, as `mlflow server` runs uvicorn; each writes its pid to a file.
SERVICE = """
import subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
open(sys.argv[1], "w").write(f"{worker.pid}\\n")
time.sleep(600)
"""

# What pytest is to the services: it starts one through the helper and then runs on.
PARENT = """
import sys, time
from tests.support.process import spawn
service = spawn([sys.executable, "-c", sys.argv[1], sys.argv[2]])
open(sys.argv[3], "w").write(f"{service.pid}\\n")
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie no one reaps (PID 1 in a container may not) has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def written_pid(path: Path) -> int | None:
    text = path.read_text() if path.exists() else ""
    return int(text) if text.endswith("\n") else None


def test_service_and_its_worker_end_when_the_run_that_started_them_is_killed(tmp_path: Path) -> None:
    service_file, worker_file = tmp_path / "service.pid", tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, SERVICE, str(worker_file), str(service_file)], cwd=REPO)
    service = worker = None
    try:
        service = wait_for(lambda: written_pid(service_file), timeout=60, what="the service to start")
        worker = wait_for(lambda: written_pid(worker_file), timeout=60, what="the service's worker to start")

        parent.kill()
        parent.wait()

        wait_for(lambda: not running(service) and not running(worker), timeout=60, what="service and worker to end")
    finally:
        parent.kill()
        parent.wait()
        if service is not None:  # the group still exists only when the test failed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service, signal.SIGKILL)


def test_terminate_ends_the_workers_a_service_forked(tmp_path: Path) -> None:
    worker_file = tmp_path / "worker.pid"
    service = spawn([sys.executable, "-c", SERVICE, str(worker_file)])
    try:
        worker = wait_for(lambda: written_pid(worker_file), timeout=60, what="the service's worker to start")
    finally:
        terminate(service, timeout=10)

    wait_for(lambda: not running(worker), timeout=60, what="the worker to end")
