"""Release webhooks: an HTTP POST of a JSON body to a URL kept in a Secret.

A 2xx answer is a yes; anything else (another status, a refused connection, a timeout, a
missing Secret) is a no with a message saying why, never an exception: a hook that is down
holds a gate, it does not crash the operator.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from modelpilot.reconcile.canary import HookAnswer

from .kubernetes import KubeError, KubernetesReader
from .outbound import allowed
from .pools import WEBHOOKS

__all__ = ["call_webhook", "post_json", "url_refusal"]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as what it is (a 3xx, so a no): following it could carry the
    payload to a host the URL's owner never named."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# http and https only (urllib's default opener also reads file:, data: and ftp: URLs); TLS is
# verified by the default context.
_OPENER = urllib.request.OpenerDirector()
for _handler in (
    urllib.request.HTTPHandler,
    urllib.request.HTTPSHandler,
    urllib.request.HTTPErrorProcessor,
    urllib.request.HTTPDefaultErrorHandler,
    _NoRedirects,
):
    _OPENER.add_handler(_handler())
#: Bytes of a refusing answer's body quoted in the message.
QUOTED_BODY = 200


def post_json(url: str, payload: Mapping[str, Any], timeout: timedelta) -> HookAnswer:
    """POST ``payload``; blocks (callers on the event loop use :func:`call_webhook`). The URL
    (a secret) appears in no answer, and no value of it raises."""
    if refusal := url_refusal(url):
        return HookAnswer(False, refusal)
    try:
        request = urllib.request.Request(
            url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with _OPENER.open(request, timeout=timeout.total_seconds()) as response:
            return HookAnswer(True, f"answered {response.status}")
    except urllib.error.HTTPError as err:
        return HookAnswer(False, f"answered {err.code}: {err.read(QUOTED_BODY).decode(errors='replace').strip()}")
    except urllib.error.URLError as err:
        return HookAnswer(False, f"unreachable: {err.reason}")
    except http.client.HTTPException as err:  # the answer was no HTTP: its text may be anything
        return HookAnswer(False, f"answered something that is not HTTP ({type(err).__name__})")
    except (OSError, ValueError) as err:  # a malformed URL's message would quote it: name the class only
        return HookAnswer(False, f"unreachable: {type(err).__name__}")


def url_refusal(url: str) -> str | None:
    """Why ``url`` may not be called, without quoting it; None when it may."""
    if _scheme(url) not in ("http", "https"):
        return "refused: the URL in the Secret is not a valid http or https URL"
    if not allowed(url):
        return "refused: the URL in the Secret is under no prefix the operator allows"
    return None


def _scheme(url: str) -> str:
    try:
        return urllib.parse.urlsplit(url).scheme if url.isprintable() else ""
    except ValueError:
        return ""


async def call_webhook(
    kube: KubernetesReader, namespace: str, secret: str, key: str, payload: Mapping[str, Any], timeout: timedelta
) -> HookAnswer:
    """Read the URL from ``secret[key]`` and POST ``payload`` to it."""
    try:
        url = (await kube.secret_value(namespace, secret, key)).strip()
    except KubeError as err:
        return HookAnswer(False, f"no URL from Secret {namespace}/{secret}: {err}")
    return await WEBHOOKS.run(namespace, post_json, url, payload, timeout)
