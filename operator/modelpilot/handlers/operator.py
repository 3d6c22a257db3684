"""Starting the operator: kopf settings, the /metrics and /healthz endpoints, the event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf
from prometheus_client import REGISTRY, start_http_server

from modelpilot.api import GROUP

from .metrics import MONITORS, STATES

__all__ = ["run_operator"]

log = logging.getLogger(__name__)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Keep kopf's bookkeeping under our own API group, not kopf.zalando.org.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    # Events are posted by us on condition transitions only; handler log lines stay in the log.
    settings.posting.loggers = False
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60


def run_operator(
    *,
    namespaces: list[str],
    clusterwide: bool,
    metrics_port: int,
    liveness_port: int,
    verbose: bool = False,
) -> int:
    """Run until interrupted; returns the process exit code."""
    from . import admission, canary, monitor, retrain  # noqa: F401  (registers the handlers)

    if metrics_port:
        REGISTRY.register(STATES)
        REGISTRY.register(MONITORS)
        start_http_server(metrics_port, addr="0.0.0.0")
        log.info("serving /metrics on port %d", metrics_port)
    liveness = f"http://0.0.0.0:{liveness_port}/healthz" if liveness_port else None
    kopf.configure(verbose=verbose)
    asyncio.run(
        kopf.operator(
            clusterwide=clusterwide or not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            standalone=True,
        )
    )
    return 0
