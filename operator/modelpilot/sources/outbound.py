"""Where the operator may send requests and credentials: the URL prefixes its configuration
allows (all, when none is configured). A resource names its Prometheus, MLflow and webhook URLs;
with prefixes configured, a team cannot point the operator, or an opted-in Secret, elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["allow_prefixes", "allowed", "url_allowed"]

_ALLOWED: list[str] = []


def url_allowed(url: str, prefixes: Sequence[str]) -> bool:
    """Whether ``url`` lies under one of ``prefixes``; a prefix ends at a path boundary, so
    ``https://prom.example.org`` does not allow ``https://prom.example.org.attacker.net``."""
    if not prefixes:
        return True
    for prefix in prefixes:
        base = prefix.rstrip("/")
        if url == base or url.startswith(base + "/"):
            return True
    return False


def allow_prefixes(prefixes: Sequence[str]) -> None:
    """Set the operator's allowed URL prefixes (``modelpilot run --allowed-url-prefix``)."""
    _ALLOWED[:] = list(prefixes)


def allowed(url: str) -> bool:
    """Whether the operator's configuration lets it call ``url``."""
    return url_allowed(url, _ALLOWED)
