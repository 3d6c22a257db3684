"""A local receiver for Alertmanager's webhook notifications: it records every alert it is sent,
with the time it arrived, so the demo can print what an on-call person would get."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.http import serving

__all__ = ["AlertReceiver", "ReceivedAlert"]


@dataclass(frozen=True)
class ReceivedAlert:
    """One alert of one notification, as Alertmanager's webhook sends it."""

    name: str
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    received: float  # time.time() at arrival

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def summary(self) -> str:
        return self.annotations.get("summary", "")


class AlertReceiver:
    """An HTTP server on a free loopback port; ``url`` is what Alertmanager's webhook config names."""

    def __init__(self) -> None:
        self.alerts: list[ReceivedAlert] = []
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self.url = ""

    def __enter__(self) -> AlertReceiver:
        self.url = self._stack.enter_context(serving(self._handler()))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def first(self, name: str, status: str = "firing") -> ReceivedAlert | None:
        """The earliest received alert named ``name`` with ``status``."""
        with self._lock:
            return next((a for a in self.alerts if a.name == name and a.status == status), None)

    def names(self, status: str = "firing") -> list[str]:
        """The names received with ``status``, in order of arrival, each once."""
        with self._lock:
            return list(dict.fromkeys(a.name for a in self.alerts if a.status == status))

    def _record(self, notification: Mapping[str, Any]) -> None:
        now = time.time()
        with self._lock:
            self.alerts.extend(_alerts(notification, now))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver._record(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


def _alerts(notification: Mapping[str, Any], received: float) -> Iterator[ReceivedAlert]:
    for alert in notification.get("alerts", []):
        labels = dict(alert.get("labels", {}))
        yield ReceivedAlert(
            labels.get("alertname", ""), alert.get("status", ""), labels, dict(alert.get("annotations", {})), received
        )
