"""A real MLflow tracking server for tests and the demo, started from its own virtualenv.

The server venv comes from tests/support/install_mlflow_server.sh (full `mlflow` cannot share the
operator's venv); this module asks that script where it is, so the cache rule lives in one place.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.ports import free_port
from tests.support.process import ServiceProcess, spawn, terminate

__all__ = ["MlflowServer", "MlflowServerError", "find_mlflow_executable"]

INSTALL_SCRIPT = Path(__file__).with_name("install_mlflow_server.sh")

# The first start of a fresh sqlite store runs every Alembic migration, which takes a while.
DEFAULT_START_TIMEOUT = 120.0


class MlflowServerError(RuntimeError):
    """The MLflow server is not installed, did not start, or died."""


def find_mlflow_executable() -> Path:
    """The `mlflow` executable of the server venv; raises when it is not installed."""
    result = subprocess.run(["bash", str(INSTALL_SCRIPT), "--check"], capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise MlflowServerError(
            result.stderr.strip()
            or "the MLflow tracking server is not installed: run `make mlflow-server` or tests/support/install_mlflow_server.sh"
        )
    return Path(lines[-1])


class MlflowServer(ServiceProcess):
    """`mlflow server` on 127.0.0.1 with a sqlite store and proxied artifacts under `workdir`.

    Clients upload and download artifacts through the server (`--serve-artifacts`), as the
    operator does in a cluster; nothing but the server touches `workdir/artifacts`.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        port: int | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.start_timeout = start_timeout
        self.log_path = self.workdir / "mlflow-server.log"
        self.db_path = self.workdir / "mlflow.db"
        self.artifacts_path = self.workdir / "artifacts"
        self.start_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise MlflowServerError("the MLflow server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> MlflowServer:
        if self.running:
            return self
        mlflow = find_mlflow_executable()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.artifacts_path.mkdir(exist_ok=True)
        if self.port is None:
            self.port = free_port()
        command = [
            str(mlflow), "server",
            "--backend-store-uri", f"sqlite:///{self.db_path}",
            "--serve-artifacts",
            "--artifacts-destination", str(self.artifacts_path),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
        ]  # fmt: skip
        # The default --allowed-hosts already admits 127.0.0.1:<any port> and localhost; a
        # server reached under another name (a Service in a cluster) must list it there.
        env = dict(os.environ)
        # The operator venv's settings must not leak into the server venv's interpreter.
        for name in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI"):
            env.pop(name, None)
        # MLflow 3 also launches a huey job runner (GenAI jobs) by default: more processes and
        # a temp dir in /dev/shm per start, and nothing in modelpilot needs it.
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            # `mlflow server` runs uvicorn as its child: spawn's process group holds both.
            self._proc = spawn(
                command,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy(began)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def _wait_healthy(self, began: float) -> None:
        assert self._proc is not None
        health = f"{self.url}/health"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise MlflowServerError(
                    f"mlflow server exited with code {code} before it became healthy; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(health, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() - began > self.start_timeout:
                raise MlflowServerError(
                    f"mlflow server at {self.url} not healthy after {self.start_timeout:.0f} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def stop(self, timeout: float = 15.0) -> None:
        proc, self._proc = self._proc, None
        terminate(proc, timeout)
