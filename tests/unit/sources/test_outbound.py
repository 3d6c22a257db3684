"""The operator calls only the URL prefixes its configuration allows, and says so without the URL
of a Secret."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from modelpilot.api.common import PrometheusEndpoint
from modelpilot.reconcile.queries import QueryFailed
from modelpilot.sources.mlflow import RegistryRejected, registry_for
from modelpilot.sources.monitor import prometheus_client
from modelpilot.sources.outbound import allow_prefixes, url_allowed
from modelpilot.sources.webhooks import post_json

PREFIXES = ["https://prom.example.org", "http://mlflow.ml:5000/", "https://hooks.example.org/team-a/"]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://prom.example.org", True),
        ("https://prom.example.org/prometheus", True),
        ("https://prom.example.org.attacker.net", False),
        ("https://prom.example.org@attacker.net", False),
        ("http://prom.example.org", False),
        ("http://mlflow.ml:5000", True),
        ("http://mlflow.ml:50001", False),
        ("https://hooks.example.org/team-a/deploys", True),
        ("https://hooks.example.org/team-b/deploys", False),
    ],
)
def test_a_prefix_ends_at_a_path_boundary(url: str, allowed: bool) -> None:
    assert url_allowed(url, PREFIXES) is allowed


def test_no_prefix_configured_allows_every_url() -> None:
    assert url_allowed("https://anywhere.example.org", [])


@pytest.fixture
def configured() -> Iterator[None]:
    allow_prefixes(PREFIXES)
    yield
    allow_prefixes([])


@pytest.mark.usefixtures("configured")
async def test_every_outgoing_call_checks_the_prefixes() -> None:
    answer = post_json("https://hooks.example.org/team-b/s3cret", {}, timedelta(seconds=1))
    assert not answer.ok and answer.message == "refused: the URL in the Secret is under no prefix the operator allows"
    with pytest.raises(QueryFailed) as refused:
        await prometheus_client(PrometheusEndpoint(url="https://elsewhere.example.org"), "ml", None)
    assert refused.value.reason == "URLNotAllowed"
    with pytest.raises(RegistryRejected, match="no URL prefix the operator allows"):
        registry_for("http://mlflow.attacker.net:5000")
