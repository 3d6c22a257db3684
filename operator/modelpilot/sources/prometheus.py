"""Prometheus queries through prometheus-api-client, run off the event loop with a timeout.

Failures become ``QueryFailed`` with a reason a condition can carry (``Unreachable``,
``Timeout``, ``BadQuery``, ``ServerError``), so callers report ``Unknown`` instead of guessing.
"""

from __future__ import annotations

import ast
import json
import re
from datetime import datetime, timedelta
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from modelpilot.reconcile.queries import PlannedQuery, QueryFailed, QueryOutcome, Sample, Series

from .pools import PROMETHEUS

__all__ = ["PrometheusClient", "instant_outcome", "range_outcome"]


#: The largest answer read; a range query of a year at one point an hour for a thousand series
#: is about 20 MiB of JSON.
MAX_ANSWER_BYTES = 64 * 2**20


class AnswerTooLarge(requests.RequestException):
    """An answer longer than ``MAX_ANSWER_BYTES``; the rest is never read."""


class _CappedAdapter(HTTPAdapter):
    """Reads an answer up to ``MAX_ANSWER_BYTES``: whatever answers at a tenant's Prometheus URL
    cannot fill the operator's memory."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["stream"] = True
        response = super().send(request, *args, **kwargs)
        limit = MAX_ANSWER_BYTES
        try:
            body = response.raw.read(limit + 1, decode_content=True)
        finally:
            response.close()
        if len(body) > limit:
            raise AnswerTooLarge(f"the answer is longer than {limit} bytes")
        response._content = body  # what requests itself sets once a body is read
        return response


class PrometheusClient:
    """Instant and range queries against one Prometheus, each bounded by ``timeout``."""

    def __init__(
        self,
        url: str,
        *,
        timeout: timedelta = timedelta(seconds=10),
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        namespace: str | None = None,
    ):
        headers = {"Authorization": f"Bearer {bearer_token}"} if bearer_token else None
        self.url = url.rstrip("/")
        self.timeout = timeout.total_seconds()
        self.namespace = namespace  # whose share of the query threads it uses
        # No client-side retries: a failing evaluation is retried by the reconcile loop with
        # backoff, and an outage must surface within one timeout, not after several.
        session = requests.Session()
        self._client = PrometheusConnect(
            url=self.url, headers=headers, auth=basic_auth, retry=Retry(total=0), timeout=self.timeout, session=session
        )
        # Replaces the adapter the library mounted for this URL.
        session.mount(self.url, _CappedAdapter(max_retries=Retry(total=0)))

    async def instant(self, query: str, at: datetime) -> list[Sample]:
        result = await self._call(query, self._client.custom_query, query, params={"time": at.timestamp()})
        return [Sample(labels=r.get("metric", {}), value=float(r["value"][1])) for r in result]

    async def range(self, query: str, start: datetime, end: datetime, step: timedelta) -> list[Series]:
        result = await self._call(
            query,
            self._client.custom_query_range,
            query,
            start_time=start,
            end_time=end,
            step=f"{int(step.total_seconds())}s",
        )
        return [Series(labels=r.get("metric", {}), points=tuple((float(t), float(v)) for t, v in r["values"])) for r in result]

    async def _call(self, query: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            # The timeout starts once a thread takes the query (waiting for a free one is not the
            # server's fault), and bounds a server that accepts the connection but never answers.
            return await PROMETHEUS.run(self.namespace, function, *args, timeout=self.timeout + 1, **kwargs)
        except AnswerTooLarge as err:
            raise QueryFailed("AnswerTooLarge", f"Prometheus at {self.url}: {err}", query) from None
        except (TimeoutError, requests.Timeout):
            raise QueryFailed("Timeout", f"Prometheus at {self.url} did not answer within {self.timeout:g}s", query) from None
        except requests.ConnectionError:
            raise QueryFailed("Unreachable", f"cannot connect to Prometheus at {self.url}", query) from None
        except PrometheusApiClientException as err:
            raise _classified(err, query, self.url) from None
        except (requests.RequestException, ValueError, KeyError) as err:
            raise QueryFailed("ServerError", f"unexpected answer from {self.url}: {err}", query) from None

    def close(self) -> None:
        self._client.close()


def _classified(err: PrometheusApiClientException, query: str, url: str) -> QueryFailed:
    # The library folds the HTTP status and the repr of the raw body into its message.
    text = str(err)
    status = re.search(r"HTTP Status Code (\d+)", text)
    detail = text
    body = re.search(r"\((b'.*'|b\".*\")\)\s*$", text, re.DOTALL)
    if body:
        try:
            detail = json.loads(ast.literal_eval(body.group(1))).get("error", text)
        except (ValueError, SyntaxError, AttributeError):
            pass
    if status and status.group(1) in {"400", "422"}:
        return QueryFailed("BadQuery", f"Prometheus refused the query: {detail}", query)
    code = status.group(1) if status else "an error"
    return QueryFailed("ServerError", f"Prometheus at {url} answered {code}: {detail}", query)


async def instant_outcome(client: PrometheusClient, query: PlannedQuery) -> QueryOutcome:
    """The answer of one instant query, or the failure; never raises."""
    try:
        return QueryOutcome(query.promql, samples=tuple(await client.instant(query.promql, query.at)))
    except QueryFailed as err:
        return QueryOutcome(query.promql, error=err)


async def range_outcome(client: PrometheusClient, query: PlannedQuery, horizon: timedelta, step: timedelta) -> QueryOutcome:
    """The answer of one range query over ``horizon`` up to the query's time, or the failure."""
    try:
        series = await client.range(query.promql, query.at - horizon + step, query.at, step)
        return QueryOutcome(query.promql, series=tuple(series))
    except QueryFailed as err:
        return QueryOutcome(query.promql, error=err)
