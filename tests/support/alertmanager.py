"""A real Alertmanager (Debian's prometheus-alertmanager) on a free loopback port, routing every
alert to one webhook receiver, with waits short enough for a test to see firing and resolved."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.ports import free_port
from tests.support.process import ServiceProcess, spawn, terminate

__all__ = ["AlertmanagerServer"]

BINARIES = ("prometheus-alertmanager", "alertmanager")


class AlertmanagerServer(ServiceProcess):
    def __init__(self, workdir: Path, webhook_url: str) -> None:
        self.workdir = workdir
        self.webhook_url = webhook_url
        self.port = free_port()
        self.log_path = workdir / "alertmanager.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port, as Prometheus's alerting configuration names it."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> AlertmanagerServer:
        binary = next((found for name in BINARIES if (found := shutil.which(name))), None)
        if binary is None:
            raise RuntimeError("Alertmanager not found: install Debian's prometheus-alertmanager (make deps)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "route": {
                "receiver": "test",
                "group_by": ["alertname", "namespace", "monitor"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [{"name": "test", "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}]}],
        }
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        command = [
            binary,
            f"--config.file={config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ]
        with self.log_path.open("ab") as log:
            self._proc = spawn(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Alertmanager exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{self.address}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Alertmanager did not become ready:\n{self.log_tail()}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            terminate(proc, 10)
