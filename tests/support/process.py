"""What every service the tests start shares: stopping its process, its log, a context manager."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from types import TracebackType
from typing import TypeVar

__all__ = ["ServiceProcess", "terminate"]

S = TypeVar("S", bound="ServiceProcess")


def terminate(process: subprocess.Popen[bytes] | None, timeout: float, *, group: bool = False) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; with ``group`` the whole process group, so
    workers a server forked go too (the process must have started a new session)."""
    if process is None:
        return

    def send(sig: signal.Signals) -> None:
        try:
            os.killpg(process.pid, sig) if group else process.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            pass

    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    if group or process.poll() is None:
        send(signal.SIGKILL)
    process.wait()


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

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
