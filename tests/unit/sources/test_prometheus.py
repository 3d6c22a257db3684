"""Prometheus failures become reasons a condition can carry."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_api_client import PrometheusApiClientException

from modelpilot.reconcile.queries import QueryFailed
from modelpilot.sources.prometheus import PrometheusClient, _classified
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
