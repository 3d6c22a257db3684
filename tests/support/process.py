"""What every service the tests start shares: starting it so that it ends with this interpreter,
however the interpreter ends (SIGKILL and timeouts included); stopping it; its log.

Each service runs in a process group of its own, and a guard process (one per interpreter, in a
session of its own, so killing the test run's process group spares it) holds the read end of a
pipe whose only write end this interpreter holds. The kernel closes that end when the
interpreter dies, whatever killed it; the guard then SIGKILLs every group still registered. A
service registers its group itself, between fork and exec, so no moment exists in which it runs
unregistered. Linux's parent-death signal would not do: it reaches only the process started,
not the workers it forks (``mlflow server`` runs uvicorn as a child), and it fires when the
*thread* that started the process ends (the test kubelets start servers from their threads).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

__all__ = ["ServiceProcess", "kill", "spawn", "terminate"]

S = TypeVar("S", bound="ServiceProcess")

# The guard's program: "+ PGID" registers a group, "- PGID" forgets it; end of input (this
# interpreter is gone) kills what is still registered. A group is identified by its leader's
# start time as well: a service that ended without being forgotten leaves an id that a later,
# unrelated process may have taken, and that process's group is not ours to kill.
GUARD_PROGRAM = """
import os, signal, sys

def started(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[19]
    except OSError:
        return None

groups = {}
for line in sys.stdin.buffer:
    sign, pgid = line.split()
    if sign == b"+":
        groups[int(pgid)] = started(int(pgid))
    else:
        groups.pop(int(pgid), None)
for pgid, start in groups.items():
    if started(pgid) in (start, None):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
"""

_guard: subprocess.Popen[bytes] | None = None
_guard_lock = threading.Lock()


def _guard_pipe() -> int:
    """The write end of the guard's pipe; the guard starts on first use."""
    global _guard
    with _guard_lock:
        if _guard is None:
            _guard = subprocess.Popen([sys.executable, "-c", GUARD_PROGRAM], stdin=subprocess.PIPE, start_new_session=True)
        if _guard.poll() is not None:
            raise RuntimeError(f"the process guard exited with {_guard.returncode}: services would outlive the run")
        assert _guard.stdin is not None
        return _guard.stdin.fileno()


def spawn(command: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(command, **popen)`` for a service: in a process group of its own that
    ends with this interpreter. Stop it with :func:`terminate` or :func:`kill`."""
    pipe = _guard_pipe()

    def register() -> None:
        # Runs in the child after setsid (its pid is now its group's id), before exec.
        os.write(pipe, f"+ {os.getpid()}\n".encode())

    return subprocess.Popen(command, start_new_session=True, preexec_fn=register, **popen)


def _kill_and_forget(process: subprocess.Popen[Any]) -> None:
    """SIGKILL the group, unregister it (signalled, its processes cannot outlive the run), and
    reap the service's process."""
    _signal_group(process, signal.SIGKILL)
    os.write(_guard_pipe(), f"- {process.pid}\n".encode())
    process.wait()


def _signal_group(process: subprocess.Popen[Any], sig: signal.Signals) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(process: subprocess.Popen[Any] | None, timeout: float) -> None:
    """SIGTERM to the service's group, SIGKILL after ``timeout``; workers the service forked go
    too. Returns once the service's process has been reaped."""
    if process is None:
        return
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    # Also after a clean exit of the service's own process: its workers may linger.
    _kill_and_forget(process)


def kill(process: subprocess.Popen[Any]) -> None:
    """SIGKILL to the service's group, as a crashed or evicted pod would end."""
    _kill_and_forget(process)


class ServiceProcess:
    """Subclasses set ``log_path`` and implement ``start`` and ``stop``."""

    log_path: Path

    def start(self: S) -> S:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
