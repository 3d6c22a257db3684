"""Notifications end to end: a drifting ModelMonitor's news reaches real local receivers (an HTTP
server taking Slack, Teams, webhook and PagerDuty bodies, and an SMTP server), a failing receiver
is retried, a Secret that did not opt in is refused, and no secret shows anywhere."""

from __future__ import annotations

import json
import os
import secrets
import threading
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from modelpilot.reconcile.pod_policy import OPT_IN_LABEL
from tests.support.http import serving
from tests.support.kube import Cluster, OperatorProcess, wait_for
from tests.support.manifests import drift_monitor, serving_deployment
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer

MONITOR = "fraud-detector"
TOKEN = secrets.token_hex(12)  # the secret part of every webhook URL, as Slack's and Teams' are
ROUTING_KEY = f"R{secrets.token_hex(16)}"
#: What the news of the drift scenario's first evaluation is about.
# The drift scenario's problem conditions (tests/support/scenarios.py), each a notice.
PROBLEMS = {"PerformanceDegraded", "DataDrift", "LabelDrift", "ConceptDrift", "DataQuality"}


class _Receiver(BaseHTTPRequestHandler):
    """Records every POST by its first path segment; /flaky answers 500 twice, then 200."""

    bodies: dict[str, list[dict[str, Any]]] = {}
    lock = threading.Lock()

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        channel = self.path.strip("/").split("/")[0]
        with self.lock:
            received = self.bodies.setdefault(channel, [])
            received.append(body)
            failing = channel == "flaky" and len(received) <= 2
        self.send_response(500 if failing else 200)
        self.end_headers()
        self.wfile.write(b"try again" if failing else b"ok")


class _Mailbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def receivers() -> Iterator[tuple[str, _Mailbox, int]]:
    _Receiver.bodies = {}
    mailbox = _Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        with serving(_Receiver) as url:
            yield url, mailbox, smtp.port
    finally:
        smtp.stop()


@pytest.fixture
def notified(crds: Cluster, workdir: Path, receivers: tuple[str, _Mailbox, int]) -> Iterator[tuple[OperatorProcess, str]]:
    """An operator of this test's own (its PagerDuty events go to the local receiver) watching
    one namespace of its own."""
    url = receivers[0]
    namespace = f"own-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-notify-{uuid.uuid4().hex[:6]}"
    crds.kubectl("create", "namespace", namespace)
    env = {"MODELPILOT_PAGERDUTY_EVENTS_URL": f"{url}/pagerduty/v2/enqueue"}
    try:
        with OperatorProcess(crds, workdir, env, namespaces=[namespace], name=f"notify-{namespace}") as process:
            yield process, namespace
    finally:
        crds.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def channel(name: str, type_: str, key: str, secret: str = "channels", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "secret": {"name": secret, "key": key}, **extra}


def secret(cluster: Cluster, namespace: str, name: str, data: dict[str, str], opted_in: bool) -> None:
    labels = {OPT_IN_LABEL: "true"} if opted_in else {}
    manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "labels": labels}, "stringData": data}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(manifest))


def delivery(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    status = cluster.get("modelmonitors.modelpilot.dev", MONITOR, namespace).get("status", {})
    return {d["channel"]: d for d in status.get("notifications", [])}


def test_monitor_news_reaches_every_channel_type_retried_refused_and_never_leaking_a_secret(
    notified: tuple[OperatorProcess, str], drift_prometheus: PrometheusServer, receivers: tuple[str, _Mailbox, int]
) -> None:
    operator, namespace = notified
    cluster = operator.cluster
    url, mailbox, smtp_port = receivers
    secret(
        cluster,
        namespace,
        "channels",
        {
            "slack": f"{url}/slack/services/{TOKEN}",
            "teams": f"{url}/teams/workflows/{TOKEN}",
            "hook": f"{url}/hook/{TOKEN}",
            "flaky": f"{url}/flaky/{TOKEN}",
            "routing": ROUTING_KEY,
            "smtp": f"smtp://127.0.0.1:{smtp_port}",
        },
        opted_in=True,
    )
    secret(cluster, namespace, "unlabelled", {"url": f"{url}/refused/{TOKEN}"}, opted_in=False)
    serving_deployment(cluster, namespace)
    monitor = drift_monitor(drift_prometheus.url, interval="10s")
    monitor["spec"]["notifications"] = [
        channel("slack", "slack", "slack"),
        channel("teams", "teams", "teams"),
        channel("hook", "webhook", "hook", minSeverity="info"),
        channel("pager", "pagerduty", "routing", minSeverity="critical"),
        channel("mail", "email", "smtp", to=["ml-oncall@example.org"], sender="modelpilot@example.org"),
        channel("flaky", "webhook", "flaky"),
        channel("refused", "webhook", "url", secret="unlabelled"),
    ]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(monitor))

    # The flaky receiver fails twice: status says Retrying, then Delivered on the third try.
    states: list[str] = []

    def flaky_delivered() -> dict[str, Any] | None:
        shown = delivery(cluster, namespace).get("flaky")
        if shown and (not states or states[-1] != shown["state"]):
            states.append(shown["state"])
        return shown if shown and shown["state"] == "Delivered" else None

    flaky = wait_for(flaky_delivered, timeout=120, what="the flaky channel Delivered")
    assert "Retrying" in states and flaky["attempts"] == 3, states
    assert len(_Receiver.bodies["flaky"]) == 3 and _Receiver.bodies["flaky"][0] == _Receiver.bodies["flaky"][2]

    # Every channel type got the first evaluation's news in one grouped message.
    def all_delivered() -> dict[str, dict[str, Any]] | None:
        shown = delivery(cluster, namespace)
        return (
            shown
            if all(shown.get(c, {}).get("state") == "Delivered" for c in ("slack", "teams", "hook", "pager", "mail"))
            else None
        )

    shown = wait_for(all_delivered, timeout=30, what="every channel Delivered")
    (slack,) = _Receiver.bodies["slack"]
    assert slack["text"].startswith(f"modelpilot: {len(PROBLEMS)} notices about ModelMonitor {namespace}/{MONITOR}")
    assert {b["type"] for b in slack["blocks"]} == {"header", "section"}
    (teams,) = _Receiver.bodies["teams"]
    assert teams["attachments"][0]["content"]["type"] == "AdaptiveCard"
    (hook,) = _Receiver.bodies["hook"]
    assert {n["condition"] for n in hook["notices"]} == PROBLEMS
    drift = next(n for n in hook["notices"] if n["condition"] == "DataDrift")
    assert drift["kind"] == "ModelMonitor" and (drift["namespace"], drift["name"]) == (namespace, MONITOR)
    assert (drift["status"], drift["reason"], drift["severity"], drift["state"]) == (
        "True",
        "FeaturesDrifted",
        "warning",
        "firing",
    )
    # PagerDuty subscribed to critical news only: PerformanceDegraded.
    (page,) = _Receiver.bodies["pagerduty"]
    assert page["routing_key"] == ROUTING_KEY and page["event_action"] == "trigger"
    assert page["dedup_key"] == f"modelpilot/ModelMonitor/{namespace}/{MONITOR}/PerformanceDegraded"
    assert page["payload"]["severity"] == "critical" and page["payload"]["source"] == f"{namespace}/{MONITOR}"
    ((to, raw),) = mailbox.mails
    mail = message_from_bytes(raw, policy=policy.default)
    assert to == ["ml-oncall@example.org"] and mail["From"] == "modelpilot@example.org"
    assert (
        mail["Subject"].startswith(f"modelpilot: {len(PROBLEMS)} notices")
        and "DataDrift=True (FeaturesDrifted)" in mail.get_content()
    )

    # The Secret that did not opt in is refused, said in status, and nothing reached its URL.
    refused = shown.get("refused") or wait_for(lambda: delivery(cluster, namespace).get("refused"), timeout=30, what="refused")
    assert refused["state"] == "Failed" and f"not labelled {OPT_IN_LABEL}=true" in refused["message"]
    assert "refused" not in _Receiver.bodies

    # No secret in status, Events or the operator's log.
    status = json.dumps(cluster.get("modelmonitors.modelpilot.dev", MONITOR, namespace))
    events = json.dumps(cluster.events(namespace, MONITOR))
    log = operator.log_path.read_text()
    for leak in (TOKEN, ROUTING_KEY):
        assert leak not in status and leak not in events and leak not in log

    # A spec that no longer holds the model to 0.9 accuracy nor watches its trend: the critical
    # problem resolves, and PagerDuty gets the resolve of the same incident.
    cluster.kubectl(
        "patch",
        "mm",
        MONITOR,
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps({"spec": {"quality": {"accuracy": 0.01}, "degradation": {"enabled": False}}}),
    )
    bodies = _Receiver.bodies
    wait_for(lambda: bodies["pagerduty"][1:] and bodies["hook"][1:], timeout=60, what="the resolve on PagerDuty and the webhook")
    resolve = bodies["pagerduty"][1]
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", page["dedup_key"])
    resolved = [n for body in _Receiver.bodies["hook"][1:] for n in body["notices"]]
    assert ("PerformanceDegraded", "resolved", "critical") in [(n["condition"], n["state"], n["severity"]) for n in resolved]
    assert operator.running
