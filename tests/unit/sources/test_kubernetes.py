"""What the operator takes from a Secret: only from one that opted in, only text, never quoted."""

from __future__ import annotations

import base64

import pytest

from modelpilot.reconcile.pod_policy import OPT_IN_LABEL
from modelpilot.sources.kubernetes import SecretUnusable, secret_text

OPTED_IN = {OPT_IN_LABEL: "true"}


def encoded(value: bytes) -> str:
    return base64.b64encode(value).decode()


def test_an_opted_in_secret_gives_its_text() -> None:
    assert secret_text("ml/hooks", OPTED_IN, {"url": encoded(b"https://hooks.example.org/x")}, "url") == (
        "https://hooks.example.org/x"
    )


@pytest.mark.parametrize(
    ("labels", "data", "why"),
    [
        ({}, {"url": encoded(b"https://s3cret.example.org")}, "not labelled modelpilot.dev/opt-in=true"),
        ({OPT_IN_LABEL: "yes"}, {"url": encoded(b"https://s3cret.example.org")}, "not labelled"),
        (OPTED_IN, {"other": encoded(b"s3cret")}, "has no key 'url'"),
        (OPTED_IN, {"url": encoded(b"\xffs3cret\xfe")}, "holds no UTF-8 text"),
        (OPTED_IN, {"url": "not base64 s3cret!"}, "holds no UTF-8 text"),
    ],
)
def test_an_unusable_secret_says_why_without_its_value(labels: dict[str, str], data: dict[str, str], why: str) -> None:
    with pytest.raises(SecretUnusable, match=why) as raised:
        secret_text("ml/hooks", labels, data, "url")
    assert "s3cret" not in str(raised.value)
