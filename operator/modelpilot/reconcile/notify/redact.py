"""Secrets out of text: what a sender reports (an error, a server's answer) may quote the
address it was given, and an address from a Secret is a secret in whole and in its parts."""

from __future__ import annotations

import urllib.parse

__all__ = ["MASK", "redact"]

MASK = "***"
#: Parts shorter than this (a port, "/") are common words, not secrets worth masking.
_SHORTEST = 4


def _parts(secret: str) -> list[str]:
    parts = [secret, secret.strip()]
    try:
        url = urllib.parse.urlsplit(secret.strip())
    except ValueError:
        return parts
    # The credentials, and the path and query: a Slack or Teams webhook's token is its path.
    for part in (url.netloc.rpartition("@")[0], url.password, url.username, url.path, url.query):
        if part:
            parts += [part, urllib.parse.unquote(part)]
    return parts


def redact(text: str, *secrets: str) -> str:
    """``text`` with every secret, and every part of a secret URL, masked."""
    for part in sorted({p for s in secrets for p in _parts(s) if len(p) >= _SHORTEST}, key=len, reverse=True):
        text = text.replace(part, MASK)
    return text
