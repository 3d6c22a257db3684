"""A real Prometheus for tests and the demo: its own config, data dir and loopback port.

History comes in through ``promtool tsdb create-blocks-from openmetrics`` (see history.py);
live data through scrape targets. It never touches a system-wide Prometheus (Debian's package
installs a service on :9090; nothing here uses it).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.ports import free_port
from tests.support.process import ServiceProcess, spawn, terminate

__all__ = ["PrometheusError", "PrometheusServer", "create_blocks", "find_binary"]

INSTALL_HINT = "apt-get install -y prometheus (the Debian package also ships promtool)"

# promtool cuts blocks of the largest standard range (2h * 3^n) not above this: 744h gives 486h
# blocks, the size Prometheus's own compactor grows to under our retention, so it leaves them
# alone. promtool re-reads the whole file for every block: its default (2h) turns a 60-day
# history into 720 passes and minutes of work; here it is four or five passes, a few seconds.
BACKFILL_MAX_BLOCK_DURATION = "744h"

DEFAULT_START_TIMEOUT = 60.0


class PrometheusError(RuntimeError):
    """Prometheus or promtool is missing, did not start, failed, or answered an error."""


def find_binary(name: str) -> Path:
    """``prometheus`` or ``promtool`` from $PROMETHEUS_BIN / $PROMTOOL_BIN or the PATH."""
    override = os.environ.get(f"{name.upper()}_BIN")
    found = override or shutil.which(name)
    if not found or not os.access(found, os.X_OK):
        where = f"${name.upper()}_BIN={override}" if override else "the PATH"
        raise PrometheusError(f"{name} not found on {where}: install it with `{INSTALL_HINT}`")
    return Path(found)


def create_blocks(openmetrics: str | os.PathLike[str], data_dir: str | os.PathLike[str]) -> float:
    """Backfill ``openmetrics`` into TSDB blocks under ``data_dir``; returns the seconds taken.

    A Prometheus running on ``data_dir`` only loads new blocks at its next block reload (about
    a minute), which is why :meth:`PrometheusServer.backfill` stops it around the backfill.
    """
    promtool = find_binary("promtool")
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    result = subprocess.run(
        [
            str(promtool), "tsdb", "create-blocks-from", "openmetrics", "--quiet",
            f"--max-block-duration={BACKFILL_MAX_BLOCK_DURATION}",
            str(openmetrics), str(data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()[-4000:]
        raise PrometheusError(f"promtool could not backfill {openmetrics}:\n{output}")
    return time.monotonic() - began


class PrometheusServer(ServiceProcess):
    """``prometheus`` on 127.0.0.1 with its config, data and log under ``workdir``.

    ``scrape_targets`` are ``host:port`` strings (one job, ``modelpilot``) or a mapping of job
    name to targets, scraped every ``scrape_interval``. ``backfill`` files (OpenMetrics) are
    loaded by the first :meth:`start`. ``stop()`` and ``start()`` again keep the port and the
    data, so a test can take Prometheus away and bring it back.

    ``retention`` counts back from the newest block, not from the wall clock: at start,
    Prometheus deletes blocks ending more than ``retention`` before the newest one, so with
    the default 15d it would drop most of a 60-day backfill. Hence 400d.

    ``lookback_delta`` is how far back an instant selector looks for a sample: longer than
    Prometheus's 5m default so a plain selector sees histories backfilled at steps up to 15
    minutes (a scraped series that goes away still ends at once: scrapes write staleness markers).
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        scrape_targets: Sequence[str] | Mapping[str, Sequence[str]] = (),
        scrape_interval: timedelta = timedelta(seconds=1),
        backfill: Sequence[str | os.PathLike[str]] = (),
        port: int | None = None,
        retention: str = "400d",
        lookback_delta: str = "20m",
        start_timeout: float = DEFAULT_START_TIMEOUT,
        rule_files: Sequence[str | os.PathLike[str]] = (),
        alertmanagers: Sequence[str] = (),
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.port = port
        self.scrape_interval = scrape_interval
        self.retention = retention
        self.lookback_delta = lookback_delta
        self.start_timeout = start_timeout
        self.config_path = self.workdir / "prometheus.yml"
        self.data_dir = self.workdir / "data"
        self.log_path = self.workdir / "prometheus.log"
        self.start_seconds: float | None = None
        self.backfill_seconds: float = 0.0
        self._jobs = _jobs(scrape_targets)
        self._pending = [Path(p) for p in backfill]
        self._rule_files = [str(Path(p).resolve()) for p in rule_files]
        self._alertmanagers = list(alertmanagers)  # host:port of each Alertmanager alerts go to
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise PrometheusError("Prometheus has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> PrometheusServer:
        """Backfill what is pending, start Prometheus and wait until it is ready."""
        if self.running:
            return self
        prometheus = find_binary("prometheus")
        self.workdir.mkdir(parents=True, exist_ok=True)
        while self._pending:
            self.backfill_seconds += create_blocks(self._pending[0], self.data_dir)
            self._pending.pop(0)
        self._write_config()
        if self.port is None:
            self.port = free_port()
        command = [
            str(prometheus),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            f"--query.lookback-delta={self.lookback_delta}",
        ]
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"--- starting {' '.join(command)}\n".encode())
            log.flush()
            self._proc = spawn(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _started.add(self)
        try:
            self._wait_ready(began)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (Prometheus flushes its head and WAL), SIGKILL after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        _started.discard(self)
        if proc is None or proc.poll() is not None:
            return
        terminate(proc, timeout)

    def backfill(self, openmetrics: str | os.PathLike[str]) -> None:
        """Load an OpenMetrics file; a running server is stopped around it and restarted on
        the same port, so its queries see the new history as soon as this returns."""
        was_running = self.running
        self.stop()
        self.backfill_seconds += create_blocks(openmetrics, self.data_dir)
        if was_running:
            self.start()

    def set_scrape_targets(self, targets: Sequence[str] | Mapping[str, Sequence[str]]) -> None:
        """Replace the scrape targets; a running server reloads its config."""
        self._jobs = _jobs(targets)
        self._write_config()
        if self.running:
            self._request("/-/reload", method="POST")

    # -- queries ----------------------------------------------------------------------------

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; raises PrometheusError on an API
        error and lets connection errors (``urllib.error.URLError``) through."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        body = self._request(f"/api/v1/{path}?{query}")
        return body["data"]

    def query(self, expr: str, at: datetime | float | None = None) -> list[dict[str, Any]]:
        """An instant query (at ``at``, else now): the ``result`` list of the answer."""
        return self.api("query", query=expr, time=_unix(at))["result"]

    def query_range(self, expr: str, start: datetime | float, end: datetime | float, step: timedelta) -> list[dict[str, Any]]:
        """A range query: the ``result`` list (one entry per series, ``values`` in order)."""
        return self.api(
            "query_range",
            query=expr,
            start=_unix(start),
            end=_unix(end),
            step=step / timedelta(seconds=1),
        )["result"]

    # -- internals --------------------------------------------------------------------------

    def _write_config(self) -> None:
        seconds = self.scrape_interval / timedelta(seconds=1)
        interval = f"{int(seconds * 1000)}ms"
        config = {
            # The scrape timeout may not exceed the interval (Prometheus's default is 10s).
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": list(targets)}]} for job, targets in self._jobs.items()
            ],
            "rule_files": self._rule_files,
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": self._alertmanagers}]}]}
            if self._alertmanagers
            else {},
        }
        self.workdir.mkdir(parents=True, exist_ok=True)
        # JSON is YAML: no YAML library needed to write the config.
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _wait_ready(self, began: float) -> None:
        assert self._proc is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise PrometheusError(
                    f"prometheus exited with code {code} before it was ready; log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet, or 503 while the TSDB loads
            if time.monotonic() - began > self.start_timeout:
                raise PrometheusError(
                    f"prometheus at {self.url} not ready after {self.start_timeout:.0f} s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def _request(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                detail = json.loads(raw).get("error", raw.decode(errors="replace"))
            except ValueError:
                detail = raw.decode(errors="replace")
            raise PrometheusError(f"{method} {path}: HTTP {error.code}: {detail}") from error
        return json.loads(raw) if raw.startswith(b"{") else raw.decode(errors="replace")


def _jobs(targets: Sequence[str] | Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    if isinstance(targets, Mapping):
        return {job: list(hosts) for job, hosts in targets.items()}
    if isinstance(targets, str):
        raise TypeError("scrape_targets is a list of host:port strings, not one string")
    return {"modelpilot": list(targets)} if targets else {}


def _unix(at: datetime | float | None) -> float | None:
    if isinstance(at, datetime):
        if at.tzinfo is None:
            raise ValueError("query times must be timezone-aware")
        return at.timestamp()
    return at


# Servers a test forgot to stop (or that an error skipped past) go down with the interpreter.
_started: set[PrometheusServer] = set()


@atexit.register
def _stop_forgotten_servers() -> None:
    for server in list(_started):
        server.stop()
