"""A real Prometheus answers for a backfilled 35-day history exactly what the history holds."""

from __future__ import annotations

import math
import time
import urllib.error
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Counter, start_http_server
from scipy import stats
from urllib3.util.retry import Retry

from tests.support.history import MetricsHistory, format_le
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusError, PrometheusServer, find_binary

pytestmark = pytest.mark.integration

STEP = timedelta(minutes=10)
DAYS = 35
MODEL = {"model": "churn", "version": "3"}
FEATURES = ["age", "income", "tenure", "balance"]
BUCKETS = [1, 2, 3, 4, 5, 6, 7, 8, 10, 15]
CLASSES = ["stay", "leave", "unknown"]


def _floor(at: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (at - epoch) // step * step


@pytest.fixture(scope="module")
def history() -> MetricsHistory:
    # Ends at the last whole step before now, as a live model server's history would: the
    # operator's windows count back from the wall clock.
    end = _floor(datetime.now(UTC), STEP)
    history = MetricsHistory(end - timedelta(days=DAYS), end, STEP, seed=20)
    drift = end - timedelta(days=7)
    for i, feature in enumerate(FEATURES):
        before, after = stats.norm(5 + i / 2, 2), stats.norm(6.5 + i / 2, 2)
        history.histogram(
            "model_feature_value", {**MODEL, "feature": feature}, BUCKETS, 1.0,
            lambda t, before=before, after=after: after if t >= drift else before,
        )  # fmt: skip
    history.categorical("model_requests_total", MODEL, "status", 1.0, {"success": 0.98, "error": 0.02})
    history.categorical("model_predictions_total", MODEL, "class", 1.0, {"stay": 0.7, "leave": 0.2, "unknown": 0.1})
    history.feedback(
        "model_feedback_total", MODEL, CLASSES, 0.2, [0.7, 0.2, 0.1],
        lambda t: 0.92 if t < drift else 0.8,
    )  # fmt: skip
    return history


@pytest.fixture(scope="module")
def prometheus(history: MetricsHistory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prometheus")
    openmetrics = workdir / "history.om"
    history.write_openmetrics(openmetrics)
    with PrometheusServer(workdir, backfill=[openmetrics]) as server:
        yield server


@pytest.fixture(scope="module")
def client(prometheus: PrometheusServer) -> PrometheusConnect:
    # No retries: a refused connection must fail at once, not after backoff.
    return PrometheusConnect(prometheus.url, disable_ssl=True, retry=Retry(total=0))


def at_sample(history: MetricsHistory, days_before_end: float) -> datetime:
    return history.end - timedelta(days=days_before_end)


def value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_server_runs_the_prometheus_2_range_semantics_the_history_models(
    prometheus: PrometheusServer,
) -> None:
    # prometheus_increase() models 2.x: closed ranges [t - window, t]. Prometheus 3 made them
    # left-open, which changes every expected value that involves extrapolation.
    assert prometheus.api("status/buildinfo")["version"].startswith("2.")


def test_range_query_over_30_days_returns_every_sample(history: MetricsHistory, client: PrometheusConnect) -> None:
    labels = {**MODEL, "status": "success"}
    start = at_sample(history, 30)

    result = client.custom_query_range(
        'model_requests_total{model="churn",status="success"}',
        start_time=start,
        end_time=history.end,
        step=str(int(STEP.total_seconds())),
    )

    assert len(result) == 1
    points = result[0]["values"]
    assert len(points) == 30 * 24 * 6 + 1
    first = history.index(start)
    expected = history.values("model_requests_total", labels)[first:]
    assert [float(v) for _, v in points] == [float(v) for v in expected]
    assert [t for t, _ in points] == [float(t) for t in history.timestamps[first:]]


def test_increase_over_a_day_ending_on_a_sample_is_the_exact_sum_of_draws(
    history: MetricsHistory, prometheus: PrometheusServer
) -> None:
    at = at_sample(history, 2)
    labels = {**MODEL, "status": "error"}

    answer = value(prometheus.query('increase(model_requests_total{status="error"}[1d])', at))

    # Samples sit on both ends of [at - 1d, at], so Prometheus extrapolates nothing.
    assert answer == history.increase("model_requests_total", labels, at - timedelta(days=1), at)
    assert answer > 0


def test_increase_between_samples_is_extrapolated_as_prometheus_does(
    history: MetricsHistory, prometheus: PrometheusServer
) -> None:
    at = at_sample(history, 2) + timedelta(minutes=3)
    labels = {**MODEL, "class": "leave"}

    answer = value(prometheus.query('increase(model_predictions_total{class="leave"}[1d])', at))

    # The range [at - 1d, at] starts 7 min before its first sample and ends 3 min after its
    # last: both gaps are under 1.1 intervals, so the 23h50m of samples stretch to 24h.
    exact = history.increase("model_predictions_total", labels, at - timedelta(days=1), at)
    assert answer != exact
    expected = history.prometheus_increase("model_predictions_total", labels, at, timedelta(days=1))
    assert answer == pytest.approx(expected, rel=1e-12)


def test_bucket_increases_summed_by_le_are_the_cumulative_draws(history: MetricsHistory, prometheus: PrometheusServer) -> None:
    at = at_sample(history, 1)
    since = at - timedelta(days=1)

    result = prometheus.query('sum by (le) (increase(model_feature_value_bucket{model="churn",version="3"}[1d]))', at)

    answer = {float(r["metric"]["le"]): float(r["value"][1]) for r in result}

    def bucket(feature: str, bound: float) -> dict[str, str]:
        return {**MODEL, "feature": feature, "le": format_le(bound)}

    expected = {
        bound: sum(history.increase("model_feature_value_bucket", bucket(f, bound), since, at) for f in FEATURES)
        for bound in [*BUCKETS, math.inf]
    }
    assert answer == expected
    counts = [answer[bound] for bound in sorted(answer)]
    assert counts == sorted(counts)  # cumulative in le


def test_injected_drift_shows_in_the_bucket_counts(history: MetricsHistory, prometheus: PrometheusServer) -> None:
    query = (
        'sum(increase(model_feature_value_bucket{feature="age",le="5.0"}[6d]))'
        ' / sum(increase(model_feature_value_count{feature="age"}[6d]))'
    )

    before = value(prometheus.query(query, at_sample(history, 8)))
    after = value(prometheus.query(query, history.end))

    assert before == pytest.approx(stats.norm(5, 2).cdf(5), abs=0.01)
    assert after == pytest.approx(stats.norm(6.5, 2).cdf(5), abs=0.01)


def test_confusion_matrix_over_a_week_matches_the_feedback_draws(history: MetricsHistory, prometheus: PrometheusServer) -> None:
    at = history.end

    result = prometheus.query("sum by (predicted, actual) (increase(model_feedback_total[7d]))", at)

    answer = {(r["metric"]["predicted"], r["metric"]["actual"]): float(r["value"][1]) for r in result}
    expected = {
        (labels["predicted"], labels["actual"]): history.increase("model_feedback_total", labels, at - timedelta(days=7), at)
        for labels, _ in history.select("model_feedback_total", MODEL)
    }
    assert answer == expected
    accuracy = sum(answer[(c, c)] for c in CLASSES) / sum(answer.values())
    assert accuracy == pytest.approx(0.8, abs=0.02)


def test_stopped_prometheus_refuses_queries_and_keeps_its_data_when_started_again(
    history: MetricsHistory, prometheus: PrometheusServer, client: PrometheusConnect
) -> None:
    query = 'sum(increase(model_requests_total{model="churn"}[30d]))'
    params = {"time": history.end.timestamp()}
    before = client.custom_query(query, params=params)
    url = prometheus.url

    prometheus.stop()
    try:
        with pytest.raises(requests.exceptions.ConnectionError):
            client.custom_query(query, params=params)
        with pytest.raises(urllib.error.URLError):
            prometheus.query(query, history.end)
    finally:
        prometheus.start()

    assert prometheus.url == url
    assert client.custom_query(query, params=params) == before


def test_missing_binaries_name_the_install_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("PROMTOOL_BIN", raising=False)

    with pytest.raises(PrometheusError, match="apt-get install -y prometheus"):
        find_binary("promtool")


def test_scrape_targets_are_scraped_and_replaced_with_a_reload(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    requests_total = Counter("model_requests", "Requests.", ["model"], registry=registry)
    requests_total.labels(model="churn").inc(3)
    target = f"127.0.0.1:{free_port()}"
    exporter, _ = start_http_server(int(target.split(":")[1]), "127.0.0.1", registry)
    try:
        with PrometheusServer(tmp_path, scrape_targets=[target]) as server:
            assert wait_for(server, 'model_requests_total{job="modelpilot"}') == 3

            server.set_scrape_targets({"models": [target]})

            assert wait_for(server, 'model_requests_total{job="models"}') == 3
    finally:
        exporter.shutdown()


def wait_for(server: PrometheusServer, query: str, timeout: float = 15.0) -> float:
    """The value of a one-series query once it has one (scrapes run every second)."""
    deadline = time.monotonic() + timeout
    while not (result := server.query(query)):
        assert time.monotonic() < deadline, f"no answer to {query} after {timeout} s"
        time.sleep(0.2)
    return value(result)
