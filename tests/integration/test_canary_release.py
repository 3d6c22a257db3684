"""CanaryRelease end to end: the operator on a real API server, a real Prometheus scraping real
example model servers (stable and candidate processes started from their Deployments' pod
templates by the test's kubelet) every second, a real MLflow registry, and a load generator that
splits its requests the way the router says (replica counts, HTTPRoute or VirtualService
weights), so every weight the operator writes changes the traffic the analysis sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from mlflow import MlflowClient

from modelpilot.reconcile.pod_policy import OPT_IN_LABEL
from modelpilot.sources.mlflow import MlflowRegistry
from tests.integration.test_leader_election import leads, replica, take_over
from tests.support.kube import Cluster, OperatorProcess, wait_for
from tests.support.mlflow_server import MlflowServer
from tests.support.ports import free_port
from tests.support.prometheus import PrometheusServer
from tests.support.serving import DeploymentKubelet, api_for, load_example

loadgen = load_example("loadgen")

INTERVAL_S = 5
FAILURE_LIMIT = 1  # the default analysis.failureLimit
RPS = 30
STABLE = "fraud"
SERVER_ENV = {"LATENCY_MS": "20", "LATENCY_JITTER_MS": "4", "ACCURACY": "0.95", "FEEDBACK_FRACTION": "1", "ERROR_RATE": "0"}


@pytest.fixture(scope="module")
def ports() -> dict[str, int]:
    return {"stable": free_port(), "candidate": free_port()}


@pytest.fixture(scope="module")
def prometheus(ports: dict[str, int], tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """One Prometheus for the module, scraping the stable and the candidate port every second;
    each test serves a model of its own name, so their series never mix."""
    targets = [f"127.0.0.1:{port}" for port in ports.values()]
    with PrometheusServer(tmp_path_factory.mktemp("prometheus-canary"), scrape_targets=targets) as server:
        yield server


@dataclass
class Stage:
    """One test's serving stack: stable Deployment and Service, a route, the kubelet, the load."""

    cluster: Cluster
    namespace: str
    model: str
    name: str
    router: str
    kubelet: DeploymentKubelet
    api: kubernetes.client.ApiClient
    load: Any = None
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def candidate(self) -> str:
        return f"{self.name}-candidate"

    def status(self) -> dict[str, Any]:
        custom = kubernetes.client.CustomObjectsApi(self.api)
        body = custom.get_namespaced_custom_object("modelpilot.dev", "v1alpha1", self.namespace, "canaryreleases", self.name)
        return body.get("status") or {}

    def condition(self, type_: str) -> tuple[str, str, str]:
        found = next((c for c in self.status().get("conditions", []) if c["type"] == type_), None)
        return (found["status"], found["reason"], found["message"]) if found else ("", "", "")

    def wait(self, probe: Callable[[dict[str, Any]], bool], what: str, timeout: float = 120) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            if self.kubelet.error is not None:
                raise self.kubelet.error
            status = self.status()
            self.seen.append(status)
            return status if probe(status) else None

        return wait_for(check, timeout=timeout, interval=0.2, what=f"{what} (log: {self.kubelet.log})")

    def candidate_replicas(self) -> int:
        apps = kubernetes.client.AppsV1Api(self.api)
        try:
            return int(apps.read_namespaced_deployment(self.candidate, self.namespace).spec.replicas)
        except kubernetes.client.exceptions.ApiException as err:
            if err.status == 404:
                return 0
            raise

    def route_weights(self) -> dict[str, float]:
        """What the router holds: backend -> weight, as a mesh would split the traffic."""
        if self.router == "replicas":
            return {"stable": self.kubelet.ready(STABLE), "candidate": self.kubelet.ready(self.candidate)}
        custom = kubernetes.client.CustomObjectsApi(self.api)
        if self.router == "gatewayAPI":
            route = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.namespace, "httproutes", STABLE)
            refs = next(r["backendRefs"] for r in route["spec"]["rules"] if any(b["name"] == STABLE for b in r["backendRefs"]))
            weights = {b["name"]: float(b.get("weight", 1)) for b in refs}
        else:
            service = custom.get_namespaced_custom_object("networking.istio.io", "v1", self.namespace, "virtualservices", STABLE)
            routes = next(
                h["route"] for h in service["spec"]["http"] if any(d["destination"]["host"] == STABLE for d in h["route"])
            )
            weights = {d["destination"]["host"]: float(d.get("weight", 100)) for d in routes}
        return {"stable": weights.get(STABLE, 0.0), "candidate": weights.get(self.candidate, 0.0)}

    def on_stable(self) -> bool:
        """All traffic back on stable, as the router says."""
        if self.router == "replicas":
            return self.candidate_replicas() == 0
        return self.route_weights()["candidate"] == 0


def register(mlflow_url: str, model: str, versions: int = 2) -> list[str]:
    """``versions`` registered versions of ``model``; the first is the champion."""
    client = MlflowClient(tracking_uri=mlflow_url)
    registry = MlflowRegistry(mlflow_url)
    experiment = client.create_experiment(f"{model}-training")
    numbers = []
    for _ in range(versions):
        run = client.create_run(experiment)
        client.log_text(run.info.run_id, "model", "model/MLmodel")
        client.set_terminated(run.info.run_id)
        numbers.append(registry.register(model, run.info.run_id, "model").version)
    registry.set_alias(model, "champion", numbers[0])
    return numbers


def apply(cluster: Cluster, namespace: str, *manifests: dict[str, Any]) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(manifests))


def stable_objects(model: str, router: str) -> list[dict[str, Any]]:
    env = [{"name": "MODEL_NAME", "value": model}, {"name": "MODEL_ALIAS", "value": "champion"}]
    env += [{"name": k, "value": v} for k, v in SERVER_ENV.items()]
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": STABLE, "labels": {OPT_IN_LABEL: "true"}},
            "spec": {
                "replicas": 4,
                "selector": {"matchLabels": {"app": STABLE}},
                "template": {
                    "metadata": {"labels": {"app": STABLE}},
                    "spec": {"containers": [{"name": "server", "image": "example/model-server:1", "env": env}]},
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": STABLE},
            "spec": {"selector": {"app": STABLE}, "ports": [{"name": "http", "port": 80, "targetPort": 8501}]},
        },
    ]
    if router == "gatewayAPI":
        objects.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": STABLE},
                "spec": {
                    "parentRefs": [{"name": "gateway"}],
                    "rules": [
                        {
                            "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                            "backendRefs": [{"name": STABLE, "port": 80}],
                        },
                    ],
                },
            }
        )
    if router == "istio":
        objects.append(
            {
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {"name": STABLE},
                "spec": {"hosts": [STABLE], "http": [{"route": [{"destination": {"host": STABLE, "port": {"number": 80}}}]}]},
            }
        )
    return objects


def release(stage: Stage, prometheus: PrometheusServer, mlflow_url: str, version: str, **changes: Any) -> dict[str, Any]:
    routers = {
        "replicas": {"type": "replicas"},
        "gatewayAPI": {"type": "gatewayAPI", "httpRoute": {"name": STABLE}},
        "istio": {"type": "istio", "virtualService": {"name": STABLE}},
    }
    spec: dict[str, Any] = {
        "model": stage.model,
        "target": {"deployment": STABLE, "service": STABLE},
        "candidate": {"modelVersion": version},
        "router": routers[stage.router],
        "stepWeights": [20, 50, 100],
        "interval": f"{INTERVAL_S}s",
        "analysis": {
            "prometheus": {"url": prometheus.url, "timeout": "3s"},
            "window": "20s",
            "minSamples": 50,
            "metrics": [
                {"name": "error-rate", "builtin": "error-rate", "thresholdRange": {"max": 0.1}, "tolerance": 0.05},
                # p99 within 500 ms holds for both a 20 ms and a 45 ms server: only the distribution tells them apart.
                {"name": "latency", "builtin": "latency", "thresholdRange": {"max": 0.5}, "tolerance": 0.15},
                {"name": "accuracy", "builtin": "accuracy", "thresholdRange": {"min": 0.5}, "tolerance": 0.1},
            ],
        },
        "mlflow": {"trackingUri": mlflow_url},
    }
    spec.update(changes)
    return {"apiVersion": "modelpilot.dev/v1alpha1", "kind": "CanaryRelease", "metadata": {"name": stage.name}, "spec": spec}


@contextmanager
def serving(
    operator: OperatorProcess,
    route_crds: Cluster,
    mlflow_server: MlflowServer,
    prometheus: PrometheusServer,
    namespace: str,
    ports: dict[str, int],
    router: str,
    tmp_path: Path,
) -> Iterator[tuple[Stage, list[str]]]:
    """The stable model served and loaded at RPS requests a second, split as the router says."""
    model = f"fraud-{uuid.uuid4().hex[:6]}"
    versions = register(mlflow_server.url, model)
    registry = MlflowRegistry(mlflow_server.url)

    def champion(name: str, alias: str) -> str:
        found = registry.resolve_alias(name, alias)
        assert found is not None
        return found.version

    cluster = operator.cluster
    apply(cluster, namespace, *stable_objects(model, router))
    with DeploymentKubelet(cluster.kubeconfig, namespace, ports, champion, tmp_path) as kubelet:
        stage = Stage(cluster, namespace, model, f"{model}-v2", router, kubelet, api_for(cluster.kubeconfig))
        wait_for(lambda: kubelet.ready(STABLE), timeout=60, what="the stable model server")
        targets = {role: f"http://127.0.0.1:{port}" for role, port in ports.items()}
        stage.load = loadgen.LoadGenerator(targets, stage.route_weights, RPS, seed=7, model=model)
        stage.load.start(3600)
        try:
            yield stage, versions
        finally:
            stage.load.stop()


@pytest.fixture
def stack(
    operator: OperatorProcess,
    route_crds: Cluster,
    mlflow_server: MlflowServer,
    prometheus: PrometheusServer,
    namespace: str,
    ports: dict[str, int],
    tmp_path: Path,
) -> Callable[[str], Any]:
    return lambda router: serving(operator, route_crds, mlflow_server, prometheus, namespace, ports, router, tmp_path)


def events(stage: Stage, last: str) -> list[tuple[str, str, str]]:
    """The release's Events once the one with reason ``last`` is there: the operator posts a
    tick's Events after writing its status and applying its plan."""

    def posted() -> list[tuple[str, str, str]] | None:
        found = [(e["type"], e["reason"], e["message"]) for e in stage.cluster.events(stage.namespace, stage.name)]
        return found if any(reason == last for _, reason, _ in found) else None

    return wait_for(posted, timeout=30, what=f"a {last} Event")


def cli(stage: Stage, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "modelpilot.cli", *args, "-n", stage.namespace],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(stage.cluster.kubeconfig)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def reaction(stage: Stage, status: dict[str, Any], record_property: Callable[[str, object], None], *, detection: bool) -> None:
    """Print and record the rollback figures: seconds from the failing check to every request on
    stable by the router (the check time has whole-second resolution, so an upper bound), and,
    for a failing metric, from the step's start (candidate ready and weighted) to that check."""
    wait_for(stage.on_stable, timeout=30, interval=0.05, what="traffic back on stable")
    failing = datetime.fromisoformat(status["rollback"]["time"]).timestamp()
    seconds = time.time() - failing
    record_property(f"rollback_reaction_s_{stage.router}", round(seconds, 3))
    line = f"\nrollback ({stage.router}): {seconds:.2f} s from the failing check to stable weights"
    if detection:
        found = failing - datetime.fromisoformat(status["stepStarted"]).timestamp()
        record_property(f"rollback_detection_s_{stage.router}", round(found, 3))
        line += (
            f"; {found:.0f} s from the candidate taking traffic to the failing check. Flagger with interval "
            f"{INTERVAL_S} s and threshold {FAILURE_LIMIT} rolls back at failed check number {FAILURE_LIMIT}: "
            f"interval x threshold = {INTERVAL_S * FAILURE_LIMIT} s after failures start"
        )
    print(line)


# --- behaviour -------------------------------------------------------------------------------------


def test_healthy_candidate_walks_every_step_is_promoted_and_moves_the_alias(
    stack: Callable[[str], Any], prometheus: PrometheusServer, mlflow_server: MlflowServer
) -> None:
    with stack("gatewayAPI") as (stage, (champion, candidate)):
        apply(stage.cluster, stage.namespace, release(stage, prometheus, mlflow_server.url, candidate))
        done = stage.wait(lambda s: s.get("phase") in ("Promoted", "RolledBack"), "promotion", timeout=180)
        assert done["phase"] == "Promoted", json.dumps(done, indent=1)
        steps = [s.get("currentStep") for s in stage.seen if s.get("phase") == "Progressing" and s.get("stepStarted")]
        assert sorted(set(steps)) == [1, 2, 3] and steps == sorted(steps)
        weights_seen = {s.get("canaryWeight") for s in stage.seen}
        assert {20, 50, 100} <= weights_seen
        assert done["promotion"]["previousAliasVersion"] == champion and done["stableVersion"] == candidate
        assert MlflowRegistry(mlflow_server.url).resolve_alias(stage.model, "champion").version == candidate
        tags = MlflowRegistry(mlflow_server.url).get_version(stage.model, candidate).tags
        assert tags["modelpilot.dev/release"] == f"{stage.namespace}/{stage.name}"
        wait_for(lambda: stage.candidate_replicas() == 0 and stage.on_stable(), timeout=20, what="leftover capacity scaled down")
        assert stage.kubelet.version(STABLE) == candidate  # the stable restarted onto the new champion
        assert stage.kubelet.starts[STABLE] == 2
        assert [h["outcome"] for h in done["history"]] == ["Promoted"]
        reasons = [r for _, r, _ in events(stage, "Promoted")]
        for reason in ("ReleaseStarted", "StepStarted", "AnalysisPassed", "Promoting", "AliasMoved", "Promoted"):
            assert reason in reasons
        assert reasons.count("Promoted") == 1
        table = stage.cluster.kubectl("get", "crel", stage.name, "-n", stage.namespace).stdout
        assert "Promoted" in table and candidate in table
        # The candidate really took its shares of the traffic on the way.
        assert stage.load.stats.targets["candidate"].ok > 100


@pytest.mark.parametrize(
    ("router", "override", "metric"),
    [
        ("istio", {"ERROR_RATE": "0.3"}, "error-rate"),
        ("replicas", {"LATENCY_MS": "45"}, "latency"),
        ("gatewayAPI", {"ACCURACY": "0.6"}, "accuracy"),
    ],
    ids=["higher-error-rate", "slower-latency-distribution", "lower-accuracy"],
)
def test_worse_candidate_is_rolled_back_at_the_first_step_with_the_reason(
    stack: Callable[[str], Any],
    prometheus: PrometheusServer,
    mlflow_server: MlflowServer,
    router: str,
    override: dict[str, str],
    metric: str,
    record_property: Callable[[str, object], None],
) -> None:
    with stack(router) as (stage, (champion, candidate)):
        env = [{"name": k, "value": v} for k, v in override.items()]
        manifest = release(stage, prometheus, mlflow_server.url, candidate)
        manifest["spec"]["candidate"]["env"] = env
        apply(stage.cluster, stage.namespace, manifest)
        done = stage.wait(lambda s: s.get("phase") in ("Promoted", "RolledBack"), "a verdict", timeout=120)
        assert done["phase"] == "RolledBack", json.dumps(done, indent=1)
        reaction(stage, done, record_property, detection=True)
        reason = done["rollback"]
        assert reason["reason"] == "MetricFailed" and reason["metric"] == metric and reason["step"] == 1
        assert reason["value"] is not None and reason["baseline"] is not None and reason["threshold"] is not None
        if metric == "latency":
            record = next(r for r in done["lastAnalysis"] if r["metric"] == "latency")
            assert record["value"] < 0.5 and record["effect"] > 0.15  # p99 fine, distribution clearly slower
        wait_for(lambda: stage.candidate_replicas() == 0, timeout=20, what="candidate scaled to zero")
        assert MlflowRegistry(mlflow_server.url).resolve_alias(stage.model, "champion").version == champion
        ready = stage.condition("Ready")
        assert ready[:2] == ("False", "RolledBack") and ready[2] == reason["message"]
        assert ("Warning", "RolledBack", reason["message"]) in events(stage, "RolledBack")
        described = stage.cluster.kubectl("describe", "crel", stage.name, "-n", stage.namespace).stdout
        assert f"{metric} failed at step 1/3 (20% traffic)" in described


def test_prometheus_outage_holds_the_release_and_it_continues_afterwards(
    stack: Callable[[str], Any], prometheus: PrometheusServer, mlflow_server: MlflowServer
) -> None:
    with stack("replicas") as (stage, (_, candidate)):
        apply(stage.cluster, stage.namespace, release(stage, prometheus, mlflow_server.url, candidate))
        stage.wait(lambda s: s.get("currentStep") == 2 and bool(s.get("stepStarted")), "step 2", timeout=120)
        prometheus.stop()
        try:
            held = stage.wait(lambda s: s.get("lastCheck") == "QueryError", "a held check", timeout=30)
            stage.seen.clear()
            errors = held["counters"]["queryError"]
            during = stage.wait(lambda s: s["counters"]["queryError"] >= errors + 3, "three more checks, all held", timeout=60)
        finally:
            prometheus.start()
        assert {(s.get("phase"), s.get("currentStep")) for s in stage.seen} == {("Progressing", 2)}
        assert during["counters"]["queryError"] >= 2 and during["counters"].get("failed", 0) == 0
        assert stage.condition("Ready")[:2] == ("Unknown", "AnalysisHeld")
        assert "cannot connect to Prometheus" in held["lastAnalysis"][0]["message"]
        assert stage.candidate_replicas() == 4  # the step's weight is kept while held
        done = stage.wait(lambda s: s.get("phase") in ("Promoted", "RolledBack"), "promotion after the outage", timeout=150)
        assert done["phase"] == "Promoted"
        reasons = [r for _, r, _ in events(stage, "Promoted")]
        assert reasons.count("AnalysisHeld") == 1 and "AnalysisResumed" in reasons


def test_operator_killed_at_each_step_resumes_the_same_release_and_promotes_once(
    stack: Callable[[str], Any], prometheus: PrometheusServer, mlflow_server: MlflowServer, operator: OperatorProcess
) -> None:
    with stack("replicas") as (stage, (champion, candidate)):
        apply(stage.cluster, stage.namespace, release(stage, prometheus, mlflow_server.url, candidate))
        try:
            for step in (1, 2, 3):
                status = stage.wait(
                    lambda s, step=step: s.get("currentStep") == step and bool(s.get("stepStarted")), f"step {step}", timeout=120
                )
                operator.kill()
                time.sleep(1)
                operator.start()
                after = stage.wait(lambda s, step=step: s.get("currentStep", 0) >= step, f"step {step} kept", timeout=60)
                assert after["release"] == status["release"] and after["started"] == status["started"]
            promoting = stage.wait(lambda s: s.get("phase") in ("Promoting", "Promoted"), "promotion", timeout=120)
            if promoting["phase"] == "Promoting":
                operator.kill()
                time.sleep(1)
                operator.start()
        finally:
            if not operator.running:
                operator.start()
        done = stage.wait(lambda s: s.get("phase") == "Promoted", "promotion after restarts", timeout=120)
        progress = [s.get("currentStep") or 0 for s in stage.seen if s.get("release") == done["release"]]
        assert progress == sorted(progress)  # never went back a step
        assert [h["outcome"] for h in done["history"]] == ["Promoted"]
        assert done["promotion"]["previousAliasVersion"] == champion
        assert MlflowRegistry(mlflow_server.url).resolve_alias(stage.model, "champion").version == candidate
        wait_for(lambda: stage.candidate_replicas() == 0, timeout=20, what="candidate scaled down")
        assert stage.kubelet.starts[STABLE] == 2  # one restart of the stable, whatever the kills
        assert [r for _, r, _ in events(stage, "Promoted")].count("Promoted") == 1


def test_a_standby_takes_over_a_release_from_a_killed_leader_and_promotes_it_once(
    crds: Cluster,
    route_crds: Cluster,
    mlflow_server: MlflowServer,
    prometheus: PrometheusServer,
    unwatched_namespace: str,
    ports: dict[str, int],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    """Two replicas on one Lease; the leader is SIGKILLed during a step: the standby goes on
    with the same release, which promotes once, moves the alias once and restarts stable once."""
    first = replica(route_crds, unwatched_namespace, tmp_path, "first")
    second = replica(route_crds, unwatched_namespace, tmp_path, "second")
    with first, second:
        wait_for(lambda: leads(first)() or leads(second)(), timeout=60, what="a replica to lead")
        leader, standby = (first, second) if leads(first)() else (second, first)
        with serving(leader, route_crds, mlflow_server, prometheus, unwatched_namespace, ports, "replicas", tmp_path) as (
            stage,
            (champion, candidate),
        ):
            apply(stage.cluster, stage.namespace, release(stage, prometheus, mlflow_server.url, candidate))
            during = stage.wait(lambda s: s.get("currentStep") == 2 and bool(s.get("stepStarted")), "step 2", timeout=180)
            take_over(standby, leader.kill, record_property, "failover during canary step 2")
            done = stage.wait(lambda s: s.get("phase") == "Promoted", "promotion by the new leader", timeout=240)
            assert done["release"] == during["release"] and done["started"] == during["started"]
            assert [h["outcome"] for h in done["history"]] == ["Promoted"]
            assert done["promotion"]["previousAliasVersion"] == champion
            assert MlflowRegistry(mlflow_server.url).resolve_alias(stage.model, "champion").version == candidate
            assert stage.kubelet.starts[STABLE] == 2  # one restart of the stable, across the failover
            assert [r for _, r, _ in events(stage, "Promoted")].count("Promoted") == 1


class _Hooks(BaseHTTPRequestHandler):
    answers: dict[str, int] = {}
    received: list[tuple[str, dict[str, Any]]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Hooks.received.append((self.path, body))
        self.send_response(_Hooks.answers.get(self.path, 200))
        self.end_headers()

    @staticmethod
    def bodies(path: str, *, last: str) -> list[dict[str, Any]]:
        """What ``path`` received, once a transition ``last`` arrived (the operator notifies after
        the tick that made the transition has applied its plan)."""

        def arrived() -> list[dict[str, Any]] | None:
            found = [body for p, body in _Hooks.received if p == path]
            return found if any(body.get("reason") == last for body in found) else None

        return wait_for(arrived, timeout=30, what=f"a {last} notification at {path}")


@pytest.fixture
def hooks() -> Iterator[str]:
    _Hooks.answers, _Hooks.received = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_manual_promotion_waits_for_approval_behind_a_confirm_rollout_gate(
    stack: Callable[[str], Any], prometheus: PrometheusServer, mlflow_server: MlflowServer, hooks: str
) -> None:
    _Hooks.answers["/confirm"] = 503
    with stack("istio") as (stage, (_, candidate)):
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hooks", "labels": {OPT_IN_LABEL: "true"}},
            "stringData": {"confirm": f"{hooks}/confirm", "events": f"{hooks}/events"},
        }
        webhooks = [
            {"type": "confirm-rollout", "urlSecret": {"name": "hooks", "key": "confirm"}, "timeout": "2s"},
            {"type": "event", "urlSecret": {"name": "hooks", "key": "events"}, "timeout": "2s"},
        ]
        manifest = release(
            stage, prometheus, mlflow_server.url, candidate, stepWeights=[50], promotion="manual", webhooks=webhooks
        )
        apply(stage.cluster, stage.namespace, secret, manifest)
        stage.wait(lambda s: s.get("phase") == "Initializing", "initializing", timeout=30)
        wait_for(lambda: stage.condition("Paused")[:2] == ("True", "WaitingForHook"), timeout=30, what="the gate")
        # A refused gate sets the next try an interval ahead: a new nextCheck is a later tick that
        # asked the gate again and wrote its decision.
        refused = stage.status()["nextCheck"]
        stage.wait(lambda s: s.get("nextCheck") != refused, "the gate asked again", timeout=30)
        assert stage.status()["phase"] == "Initializing" and stage.route_weights()["candidate"] == 0
        assert "answered 503" in stage.condition("Paused")[2]
        _Hooks.answers["/confirm"] = 200

        passed = stage.wait(lambda s: s.get("phase") == "AwaitingPromotion", "all steps passed", timeout=120)
        checks = passed["counters"]["checks"]
        stage.wait(lambda s: s["counters"]["checks"] >= checks + 2, "two checks while awaiting approval", timeout=60)
        waiting = stage.status()
        assert waiting["phase"] == "AwaitingPromotion" and stage.route_weights()["candidate"] == 50
        assert stage.condition("Paused")[:2] == ("True", "AwaitingApproval")
        assert "modelpilot canary promote" in stage.condition("Paused")[2]
        assert "set" in cli(stage, "canary", "promote", stage.name)
        done = stage.wait(lambda s: s.get("phase") == "Promoted", "promotion", timeout=60)
        assert done["stableVersion"] == candidate
        slack = _Hooks.bodies("/events", last="Promoted")
        assert all(set(body) >= {"text", "reason", "phase", "name"} for body in slack)
        assert [b["reason"] for b in slack][-1] == "Promoted" and "AnalysisPassed" in [b["reason"] for b in slack]
        assert sum(path == "/confirm" for path, _ in _Hooks.received) >= 2


def test_abort_sends_traffic_back_to_stable_at_once_and_leaves_the_alias(
    stack: Callable[[str], Any],
    prometheus: PrometheusServer,
    mlflow_server: MlflowServer,
    record_property: Callable[[str, object], None],
) -> None:
    with stack("gatewayAPI") as (stage, (champion, candidate)):
        apply(stage.cluster, stage.namespace, release(stage, prometheus, mlflow_server.url, candidate))
        stage.wait(lambda s: s.get("currentStep") == 2 and bool(s.get("stepStarted")), "step 2", timeout=120)
        assert stage.route_weights()["candidate"] == 50
        cli(stage, "canary", "abort", stage.name)
        done = stage.wait(lambda s: s.get("phase") == "RolledBack", "rollback", timeout=30)
        reaction(stage, done, record_property, detection=False)
        # Aborted where it stood: step 2, or step 3 when a check passed before the abort landed.
        step = next(s["currentStep"] for s in reversed(stage.seen) if s.get("phase") == "Progressing")
        weight = {2: 50, 3: 100}[step]
        assert done["rollback"]["reason"] == "Aborted"
        assert f"aborted at step {step}/3 ({weight}% traffic)" in done["rollback"]["message"]
        wait_for(lambda: stage.candidate_replicas() == 0, timeout=20, what="candidate scaled to zero")
        assert MlflowRegistry(mlflow_server.url).resolve_alias(stage.model, "champion").version == champion
        assert stage.condition("RolledBack")[:2] == ("True", "Aborted")


def test_an_ab_test_declares_the_better_candidate_the_winner_and_promotes_it(
    stack: Callable[[str], Any], prometheus: PrometheusServer, mlflow_server: MlflowServer
) -> None:
    with stack("replicas") as (stage, (_, candidate)):
        manifest = release(
            stage,
            prometheus,
            mlflow_server.url,
            candidate,
            mode="abTest",
            abTest={"metric": "accuracy", "split": 50, "duration": "10m", "minSamples": 100},
        )
        del manifest["spec"]["stepWeights"]
        manifest["spec"]["candidate"]["env"] = [{"name": "ACCURACY", "value": "1.0"}]  # the stable's is 0.95
        apply(stage.cluster, stage.namespace, manifest)
        done = stage.wait(lambda s: s.get("phase") in ("Promoted", "RolledBack"), "a verdict", timeout=180)
        assert done["phase"] == "Promoted", json.dumps(done, indent=1)
        assert max(s.get("canaryWeight") or 0 for s in stage.seen if s.get("phase") == "Progressing") == 50
        ab = done["abTest"]
        assert ab["decision"] == "CandidateWins" and ab["pValue"] <= 0.05
        assert ab["candidate"]["rate"] > ab["stable"]["rate"] and min(ab["candidate"]["samples"], ab["stable"]["samples"]) >= 100
        assert MlflowRegistry(mlflow_server.url).resolve_alias(stage.model, "champion").version == candidate
        assert any(reason == "ABTestDecided" for _, reason, _ in events(stage, "Promoted"))


def test_a_shadow_mirrors_requests_to_the_candidate_then_walks_the_steps(
    stack: Callable[[str], Any], prometheus: PrometheusServer, mlflow_server: MlflowServer, ports: dict[str, int]
) -> None:
    with stack("gatewayAPI") as (stage, (_, candidate)):
        custom = kubernetes.client.CustomObjectsApi(stage.api)

        def mirrored() -> bool:
            route = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", stage.namespace, "httproutes", STABLE)
            return any(f.get("type") == "RequestMirror" for rule in route["spec"]["rules"] for f in rule.get("filters", []))

        # The mesh's mirror: the same request stream (same seed), sent to the candidate while the route says so.
        mirror = loadgen.LoadGenerator(
            {"candidate": f"http://127.0.0.1:{ports['candidate']}"},
            lambda: {"candidate": 1.0 if mirrored() else 0.0},
            RPS,
            seed=7,
            model=stage.model,
        )
        mirror.start(3600)
        try:
            manifest = release(
                stage,
                prometheus,
                mlflow_server.url,
                candidate,
                mode="shadow",
                shadow={"percent": 100, "duration": "20s", "minAgreement": 0.9, "minSamples": 100},
                stepWeights=[50, 100],
            )
            apply(stage.cluster, stage.namespace, manifest)
            shadowing = stage.wait(lambda s: (s.get("shadow") or {}).get("decision") == "Running", "the shadow", timeout=90)
            assert shadowing["canaryWeight"] == 0
            wait_for(mirrored, timeout=30, what="the RequestMirror filter on the HTTPRoute")
            done = stage.wait(lambda s: s.get("phase") in ("Promoted", "RolledBack"), "a verdict", timeout=240)
        finally:
            mirror.stop()
        assert done["phase"] == "Promoted", json.dumps(done, indent=1)
        shadow = done["shadow"]
        assert shadow["decision"] == "Passed" and shadow["agreement"] >= 0.9 and shadow["candidatePredictions"] >= 100
        assert not mirrored()  # the steps and the promotion removed the mirror
        assert {"ShadowStarted", "ShadowPassed", "StepStarted"} <= {reason for _, reason, _ in events(stage, "Promoted")}
