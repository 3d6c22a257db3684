"""Webhook answers: 2xx is a yes, anything else a no that says why; nothing raises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpilot.sources.webhooks import post_json
from tests.support.http import serving
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
    with serving(_Hooks) as url:
        yield url


def test_2xx_is_yes_and_other_answers_say_why(server: str) -> None:
    assert post_json(f"{server}/204", {"text": "hi"}, timedelta(seconds=5)).ok
    assert _Hooks.bodies[-1] == {"text": "hi"}
    refused = post_json(f"{server}/503", {}, timedelta(seconds=5))
    assert not refused.ok and refused.message == "answered 503: not now"


def test_an_unreachable_hook_is_a_no() -> None:
    answer = post_json(f"http://127.0.0.1:{free_port()}/", {}, timedelta(seconds=2))
    assert not answer.ok and answer.message.startswith("unreachable")


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "data:text/plain,hi", "ftp://example.org/x", "not a url", "javascript:alert(1)", "http://\x00evil/"],
)
def test_only_http_and_https_urls_are_called_and_none_is_quoted(url: str) -> None:
    answer = post_json(url, {}, timedelta(seconds=2))
    assert not answer.ok and answer.message == "refused: the URL in the Secret is not a valid http or https URL"


def test_a_redirect_is_not_followed(server: str) -> None:
    moved = post_json(f"{server}/307", {"text": "secret payload"}, timedelta(seconds=5))
    assert not moved.ok and moved.message.startswith("answered 307")


def test_a_malformed_url_says_what_failed_without_quoting_it() -> None:
    answer = post_json("http://user:s3cret@[::1/", {}, timedelta(seconds=2))
    assert not answer.ok and "s3cret" not in answer.message


class _Anything(BaseHTTPRequestHandler):
    """Answers what ``answer`` says: a status line, a Location, a body; or hangs up, or sends
    bytes that are no HTTP at all."""

    answer: dict[str, Any] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers["Content-Length"]))
        answer = _Anything.answer
        if answer["kind"] == "hang up":
            self.close_connection = True
            return
        if answer["kind"] == "garbage":
            self.wfile.write(answer["body"])
            return
        self.send_response(answer["status"])
        self.send_header("Location", answer["location"])
        self.send_header("Content-Length", str(len(answer["body"])))
        self.end_headers()
        self.wfile.write(answer["body"])


@pytest.fixture(scope="module")
def anything() -> Iterator[str]:
    with serving(_Anything) as url:
        yield url


SECRET = "s3cret-t0ken"
ANSWERS = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.just("http"),
            "status": st.integers(200, 599),
            "location": st.sampled_from(["http://elsewhere.example/", f"http://x/{SECRET}", "file:///etc/passwd", ""]),
            "body": st.one_of(st.binary(max_size=300), st.just(b"<html>" + b"x" * 50_000 + b"</html>")),
        }
    ),
    st.fixed_dictionaries({"kind": st.just("hang up")}),
    st.fixed_dictionaries({"kind": st.just("garbage"), "body": st.binary(min_size=1, max_size=200)}),
)


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=ANSWERS)
def test_any_answer_is_a_yes_or_a_no_that_never_quotes_the_url(anything: str, answer: dict[str, Any]) -> None:
    _Anything.answer = answer
    result = post_json(f"{anything}/hooks/{SECRET}", {"text": "hi"}, timedelta(seconds=5))
    assert result.ok == (answer["kind"] == "http" and 200 <= answer["status"] < 300)
    assert SECRET not in result.message
    assert len(result.message) < 300
