"""Release webhooks: an HTTP POST of a JSON body to a URL kept in a Secret.

A 2xx answer is a yes; anything else (another status, a refused connection, a timeout, a
missing Secret) is a no with a message saying why, never an exception: a hook that is down
holds a gate, it does not crash the operator.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from modelpilot.reconcile.canary import HookAnswer

from .kubernetes import KubeError, KubernetesReader

__all__ = ["call_webhook", "post_json"]


def post_json(url: str, payload: Mapping[str, Any], timeout: timedelta) -> HookAnswer:
    """POST ``payload``; blocks (callers on the event loop use :func:`call_webhook`)."""
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout.total_seconds()) as response:
            return HookAnswer(True, f"answered {response.status}")
    except urllib.error.HTTPError as err:
        return HookAnswer(False, f"answered {err.code}: {err.read(200).decode(errors='replace').strip()}")
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return HookAnswer(False, f"unreachable: {reason}")


async def call_webhook(
    kube: KubernetesReader, namespace: str, secret: str, key: str, payload: Mapping[str, Any], timeout: timedelta
) -> HookAnswer:
    """Read the URL from ``secret[key]`` and POST ``payload`` to it."""
    try:
        url = (await kube.secret_value(namespace, secret, key)).strip()
    except KubeError as err:
        return HookAnswer(False, f"no URL from Secret {namespace}/{secret}: {err}")
    return await asyncio.to_thread(post_json, url, payload, timeout)
