"""Whatever answers at a tracking URL (errors, HTML, JSON of another shape, a hang-up), the
registry adapter answers or raises a RegistryError: nothing else reaches the tick."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpilot.sources.mlflow import MlflowRegistry, RegistryError
from tests.support.http import serving


class _Tracking(BaseHTTPRequestHandler):
    answer: dict[str, Any] = {}

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        answer = _Tracking.answer
        if answer["kind"] == "hang up":
            self.close_connection = True
            return
        self.send_response(answer["status"])
        self.send_header("Content-Type", answer["type"])
        self.send_header("Content-Length", str(len(answer["body"])))
        self.end_headers()
        self.wfile.write(answer["body"])

    do_GET = do_POST = do_PATCH = do_DELETE = _answer  # noqa: N815


@pytest.fixture(scope="module")
def tracking(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[str]:
    # No client retries: every example gets one answer, at once.
    monkeypatch_module.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch_module.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with serving(_Tracking) as url:
        yield url


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
SHAPED = st.sampled_from(
    [
        {"registered_model": "x"},
        {"registered_model": {"name": "m", "aliases": "x"}},
        {"registered_model": {"name": "m", "aliases": [{"alias": "champion"}]}},
        {"model_version": {"version": None, "run_id": 3}},
        {"model_versions": [{"version": "1", "tags": "x"}]},
        {"runs": [{"info": {}, "data": {"metrics": "x"}}]},
        {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "<script>"},
        {"error_code": 42},
    ]
)
ANSWERS = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("http"),
            "status": st.sampled_from([200, 200, 200, 400, 403, 404, 429, 500, 502, 503]),
            "type": st.sampled_from(["application/json", "text/html"]),
            "body": st.one_of(
                JSON.map(lambda value: json.dumps(value).encode()),
                SHAPED.map(lambda value: json.dumps(value).encode()),
                st.just(b"<html><body>502 Bad Gateway</body></html>"),
                st.binary(max_size=64),
            ),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("hang up")}),
)
CALLS = st.sampled_from(
    [
        lambda registry: registry.resolve_alias("m", "champion"),
        lambda registry: registry.get_version("m", "1"),
        lambda registry: registry.load_profile("m", "1"),
        lambda registry: registry.find_runs_by_tag("exp", "modelpilot.dev/run", "ns/p/1"),
        lambda registry: registry.set_alias("m", "challenger", "1"),
    ]
)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=ANSWERS, call=CALLS)
def test_any_answer_is_a_result_or_a_registry_error(tracking: str, answer: dict[str, Any], call: Any) -> None:
    _Tracking.answer = answer
    try:
        call(MlflowRegistry(tracking))
    except RegistryError as err:
        assert len(str(err)) < 2000
