"""Webhook answers: 2xx is a yes, anything else a no that says why; nothing raises."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modelpilot.sources.webhooks import post_json
from tests.support.ports import free_port


class _Hooks(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        _Hooks.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        status = int(self.path.strip("/"))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"not now")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_2xx_is_yes_and_other_answers_say_why(server: str) -> None:
    assert post_json(f"{server}/204", {"text": "hi"}, timedelta(seconds=5)).ok
    assert _Hooks.bodies[-1] == {"text": "hi"}
    refused = post_json(f"{server}/503", {}, timedelta(seconds=5))
    assert not refused.ok and refused.message == "answered 503: not now"


def test_an_unreachable_hook_is_a_no() -> None:
    answer = post_json(f"http://127.0.0.1:{free_port()}/", {}, timedelta(seconds=2))
    assert not answer.ok and answer.message.startswith("unreachable")
