"""Prometheus failures become reasons a condition can carry."""

import asyncio
import contextlib
import gzip
import http.server
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_api_client import PrometheusApiClientException

from modelpilot.reconcile.queries import QueryFailed
from modelpilot.sources import prometheus
from modelpilot.sources.prometheus import PrometheusClient, _classified
from tests.support.http import serving
from tests.support.ports import free_port


def test_bad_query_is_told_apart_with_prometheus_words() -> None:
    body = b'{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected \\"}\\""}'
    failure = _classified(PrometheusApiClientException(f"HTTP Status Code 400 ({body!r})"), "up}", "http://p")
    assert failure.reason == "BadQuery"
    assert failure.message == 'Prometheus refused the query: 1:5: parse error: unexpected "}"'


def test_server_errors_are_not_bad_queries() -> None:
    failure = _classified(PrometheusApiClientException("HTTP Status Code 503 (b'overloaded')"), "up", "http://p")
    assert failure.reason == "ServerError" and "503" in failure.message


def test_nothing_listening_is_unreachable() -> None:
    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=timedelta(seconds=2))
    with pytest.raises(QueryFailed) as caught:
        asyncio.run(client.instant("up", datetime.now(UTC)))
    assert caught.value.reason == "Unreachable"
    assert caught.value.query == "up"


class _Answers(http.server.BaseHTTPRequestHandler):
    """Answers every query with ``body`` (gzip-encoded when ``gzipped``)."""

    body = b""
    gzipped = False

    def do_GET(self) -> None:
        payload = gzip.compress(self.body) if self.gzipped else self.body
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[Callable[[bytes, bool], str]]:
    with contextlib.ExitStack() as servers:

        def serve(body: bytes, gzipped: bool = False) -> str:
            handler = type("Handler", (_Answers,), {"body": body, "gzipped": gzipped})
            return servers.enter_context(serving(handler))

        yield serve


def _vector(series: int, padding: int = 0) -> bytes:
    result = [{"metric": {"feature": f"f{i}", "pad": "x" * padding}, "value": [0, "1"]} for i in range(series)]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_an_answer_longer_than_the_limit_is_a_failed_query(
    answering: Callable[[bytes, bool], str], monkeypatch: pytest.MonkeyPatch, gzipped: bool
) -> None:
    small, large = _vector(10), _vector(1, padding=100_000)
    # The limit is configuration: lowered so that a test-sized answer is over it.
    monkeypatch.setattr(prometheus, "MAX_ANSWER_BYTES", len(small) * 2)
    fits = PrometheusClient(answering(small, gzipped), timeout=timedelta(seconds=5))
    assert len(asyncio.run(fits.instant("up", datetime.now(UTC)))) == 10
    # gzip shrinks the large answer below the limit on the wire: the limit holds for what it unpacks to.
    assert not gzipped or len(gzip.compress(large)) < len(small) * 2
    over = PrometheusClient(answering(large, gzipped), timeout=timedelta(seconds=5))
    with pytest.raises(QueryFailed) as caught:
        asyncio.run(over.instant("up", datetime.now(UTC)))
    assert caught.value.reason == "AnswerTooLarge"
    assert f"longer than {len(small) * 2} bytes" in caught.value.message
