"""Argo CD's health of the three kinds (manifests/argocd/health.lua), run by Debian's lua5.1 as Argo
CD runs a health script: the resource is the global table ``obj``, only the base, table and os
libraries are there (no string library, no string methods), and the status returned must be one
Argo CD accepts. The resources carry the statuses the operator itself writes: admission, a failed
tick, decide_monitor, decide_retrain and the canary's state machine; a few states no decision
writes (no status yet, a status of an older generation) are written here by hand."""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import string
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml

from modelpilot.api import CANARY_RELEASE, GROUP, KINDS, MODEL_MONITOR, RETRAIN_POLICY, VERSION, Kind, load_spec, load_status
from modelpilot.api.canary import CanaryPhase
from modelpilot.api.common import ResourceStatus
from modelpilot.api.monitor import ModelMonitorStatus
from modelpilot.api.retrain import RetrainPhase, RetrainPolicyStatus
from modelpilot.handlers.canary import CANARY_TICK
from modelpilot.handlers.monitor import MONITOR_TICK
from modelpilot.handlers.retrain import RETRAIN_TICK
from modelpilot.handlers.tick import TickSteps, run_tick
from modelpilot.reconcile import EventToPost, OwnerRef, PolicyRef, admit, set_condition
from modelpilot.reconcile.monitor import DeploymentState, MonitorObservations, decide_monitor
from modelpilot.reconcile.monitor.alerts import PROBLEMS
from modelpilot.reconcile.queries import QueryOutcome
from modelpilot.reconcile.retrain import JobView, RetrainObservations, RunView, VersionView, decide_retrain
from tests.support.canary_world import Behaviour, World, release_spec
from tests.support.mergepatch import apply_merge_patch
from tests.unit.reconcile.test_monitor import NOW, failed, feedback, observations
from tests.unit.reconcile.test_monitor import SPEC as MONITOR_SPEC

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "manifests" / "argocd"
SCRIPT = (ARGOCD / "health.lua").read_text()
#: What Argo CD accepts from a health script; it turns anything else into Unknown.
ARGOCD_HEALTH = ("Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown")
TICKS = {tick.kind.kind: tick for tick in (MONITOR_TICK, RETRAIN_TICK, CANARY_TICK)}
POLICY = PolicyRef("ml", "fraud-detector", "uid-1")

# -- running the script as Argo CD does --------------------------------------------------------


def lua_literal(value: Any) -> str:
    """``value`` (a JSON value) as a Lua 5.1 expression: objects and arrays become tables, as
    Argo CD turns the resource into ``obj``."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_lua_byte(b) for b in value.encode()) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no JSON value: {value!r}")


def _lua_byte(byte: int) -> str:
    char = chr(byte)
    return char if char.isascii() and char.isprintable() and char not in '"\\' else f"\\{byte:03d}"


#: A health script run as Argo CD runs it: ``obj`` a global, only the base, table and a safe os
#: library opened, and no string library, which also leaves strings without methods (("x"):find()
#: fails there as it fails here). It prints the status, a newline and the message.
HARNESS = string.Template("""\
local check = assert(loadstring($script, "=health.lua"))
getmetatable("").__index = nil
local env = { obj = $obj, table = table, os = { clock = os.clock, date = os.date, difftime = os.difftime, time = os.time } }
for _, name in ipairs({ "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print", "rawequal",
    "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "unpack", "xpcall" }) do
  env[name] = _G[name]
end
local hs = setfenv(check, env)()
assert(type(hs) == "table" and type(hs.status) == "string", "a health script returns { status = ..., message = ... }")
assert(hs.message == nil or type(hs.message) == "string", "its message is a string")
io.write(hs.status, "\\n", hs.message or "")
""")


def run_lua(script: str, obj: Mapping[str, Any]) -> subprocess.CompletedProcess[bytes]:
    """Run a health script on ``obj`` with Debian's lua5.1, in the environment Argo CD gives it."""
    lua = shutil.which("lua5.1")
    assert lua is not None, "lua5.1 is missing: apt-get install -y lua5.1"
    program = HARNESS.substitute(script=lua_literal(script), obj=lua_literal(dict(obj)))
    return subprocess.run([lua, "-"], input=program.encode(), capture_output=True, check=False)


def argocd_health(obj: Mapping[str, Any]) -> tuple[str, str]:
    """The (status, message) Argo CD shows for ``obj``."""
    done = run_lua(SCRIPT, obj)
    assert done.returncode == 0, done.stderr.decode()
    status, _, message = done.stdout.decode().partition("\n")
    assert status in ARGOCD_HEALTH, f"Argo CD would show Unknown for the status {status!r}"
    return status, message


# -- resources as the operator leaves them ------------------------------------------------------


def example_spec(kind: Kind[Any, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((ROOT / "examples" / f"{kind.singular}.yaml").read_text())["spec"]
    return spec


def resource(
    kind: Kind[Any, Any], spec: Mapping[str, Any], status: Mapping[str, Any] | None, generation: int = 1
) -> dict[str, Any]:
    """The object Argo CD reads: ``status`` None for one the operator has not written yet."""
    meta = {"name": "fraud-detector", "namespace": "ml", "uid": "uid-1", "generation": generation, "resourceVersion": "7"}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind.kind, "metadata": meta, "spec": dict(spec)}
    if status is not None:
        body["status"] = dict(status)
    return body


def admitted(
    kind: Kind[Any, Any], spec: Mapping[str, Any], status: ResourceStatus | None = None, generation: int = 1
) -> dict[str, Any]:
    """The status after admission of ``spec`` at ``generation``: what the admission handler writes
    (conditions and observedGeneration) over what was there."""
    before = status.to_body() if status is not None else {}
    result = admit(kind, spec, list(status.conditions) if status else [], generation=generation, now=NOW)
    written = {"conditions": [c.to_body() for c in result.conditions], "observedGeneration": generation}
    return resource(kind, spec, {**before, **written}, generation)


class StoredResource:
    """One resource as the API server keeps it, for the operator's own tick to read and write."""

    def __init__(self, body: dict[str, Any]):
        self.body = body

    async def read(self, kind: Kind[Any, Any], ref: OwnerRef) -> Mapping[str, Any]:
        return self.body

    async def write_status(self, kind: Kind[Any, Any], ref: OwnerRef, resource_version: str, patch: dict[str, Any]) -> bool:
        self.body = {**self.body, "status": apply_merge_patch(self.body.get("status") or {}, patch)}
        return True

    async def post_event(self, body: Mapping[str, Any], event: EventToPost) -> None:
        pass


def tick_failed(kind: Kind[Any, Any]) -> dict[str, Any]:
    """An admitted resource after a tick that met an error nobody foresaw."""

    async def broken(*_: Any) -> Any:
        raise RuntimeError("an answer nobody foresaw")

    steps: TickSteps[Any, Any, Any, Any, Any] = replace(TICKS[kind.kind], observe=broken)
    stored = StoredResource(admitted(kind, example_spec(kind)))
    asyncio.run(run_tick(steps, stored.body, stored, logger=logging.getLogger("argocd-health"), now=NOW))
    return stored.body


def monitor(obs: MonitorObservations, previous: ModelMonitorStatus | None = None, now: datetime = NOW) -> dict[str, Any]:
    status = decide_monitor(MONITOR_SPEC, previous or ModelMonitorStatus(), obs, generation=1, now=now).status
    return resource(MODEL_MONITOR, MONITOR_SPEC.to_body(), status.to_body())


@functools.cache
def healthy_monitor() -> ModelMonitorStatus:
    return decide_monitor(MONITOR_SPEC, ModelMonitorStatus(), observations(), generation=1, now=NOW).status


def monitor_with(problem: str, status: str) -> dict[str, Any]:
    """A healthy monitor's status with one condition set to ``status``."""
    conditions = set_condition(
        healthy_monitor().conditions, problem, status, "Injected", f"{problem} is {status}", now=NOW, generation=1
    )
    return resource(
        MODEL_MONITOR, MONITOR_SPEC.to_body(), healthy_monitor().model_copy(update={"conditions": conditions}).to_body()
    )


def monitor_without_enough_labels() -> dict[str, Any]:
    obs = observations()
    thin = replace(obs, current={**obs.current, "feedback": QueryOutcome("q", samples=tuple(feedback(40, 0.5)))})
    return monitor(replace(thin, quality_series=QueryOutcome("q", series=())))


def monitor_blocked() -> dict[str, Any]:
    blocked = MonitorObservations(
        at=NOW,
        version=None,
        deployment=DeploymentState(name="m", ready=2, desired=2),
        blocked_reason="VersionUnresolved",
        blocked_message="MLflow alias 'champion' of 'm' is not set",
    )
    return monitor(blocked, healthy_monitor(), NOW + timedelta(minutes=5))


def policy_spec(auto: bool = True) -> dict[str, Any]:
    """The example policy, its canary template completed with the example release's target and
    analysis (the template alone names neither)."""
    spec, release = example_spec(RETRAIN_POLICY), example_spec(CANARY_RELEASE)
    template = {**spec["deployment"]["canaryTemplate"], "target": release["target"], "analysis": release["analysis"]}
    return {**spec, "deployment": {**spec["deployment"], "auto": auto, "canaryTemplate": template}}


def policy_walk(spec: Mapping[str, Any], *seen: RetrainObservations) -> RetrainPolicyStatus:
    """A policy's status after one tick a minute, each seeing the next of ``seen``."""
    model, status = load_spec(RETRAIN_POLICY, spec), RetrainPolicyStatus()
    for minute, obs in enumerate(seen):
        status = decide_retrain(model, status, obs, ref=POLICY, generation=1, now=NOW + timedelta(minutes=minute)).status
    return status


def policy(spec: Mapping[str, Any], *seen: RetrainObservations) -> dict[str, Any]:
    return resource(RETRAIN_POLICY, spec, policy_walk(spec, *seen).to_body())


def run_seen(*later: RetrainObservations) -> tuple[RetrainObservations, ...]:
    """A manual request whose Job runs, succeeds and logs a run that beats the champion, then ``later``."""
    job = f"{POLICY.name}-1-1"
    run = RunView("run-9", {"accuracy": 0.95, "f1": 0.92})
    done = JobView(job, "Succeeded")
    gated = RetrainObservations(
        manual_annotation="go",
        job=done,
        run=run,
        candidate=VersionView("4", "run-9", {}),
        champion=VersionView("3", "run-3", {"accuracy": 0.93, "f1": 0.88}),
    )
    return (
        RetrainObservations(manual_annotation="go"),
        RetrainObservations(manual_annotation="go", job=JobView(job, "Active")),
        RetrainObservations(manual_annotation="go", job=done),
        RetrainObservations(manual_annotation="go", job=done, run=run),
        gated,
        *later,
    )


def canary(world: World) -> dict[str, Any]:
    return resource(CANARY_RELEASE, world.spec.to_body(), world.status.to_body())


@functools.cache
def manual_release() -> dict[str, dict[str, Any]]:
    """A release approved by hand, in each phase on its way to promotion."""
    world = World(release_spec(promotion="manual"))
    seen = {}
    for phase in ("Initializing", "Progressing", "AwaitingPromotion"):
        world.run_until(phase)
        seen[phase] = canary(world)
    world.spec = world.spec.model_copy(update={"promote": True})
    for phase in ("Promoting", "Promoted"):
        world.run_until(phase)
        seen[phase] = canary(world)
    return seen


def release_rolled_back() -> dict[str, Any]:
    world = World(release_spec(), candidate_behaviour=Behaviour(error_rate=0.2))
    world.run_until("RolledBack")
    return canary(world)


def release_shadow_stopped() -> dict[str, Any]:
    shadow = {"then": "stop", "duration": "1m"}
    world = World(release_spec(router={"type": "gatewayAPI", "httpRoute": {"name": "fraud"}}, mode="shadow", shadow=shadow))
    world.run_until("Completed")
    return canary(world)


def release_aborted() -> dict[str, Any]:
    world = World(release_spec())
    world.run_until("Progressing")
    world.spec = world.spec.model_copy(update={"abort": True})
    world.tick()
    return canary(world)


def release_held(world: World, verdict: str) -> dict[str, Any]:
    """``world``'s release once a check of its first step has come back ``verdict``."""
    while world.status.last_check != verdict:
        world.tick()
    return canary(world)


def release_without_prometheus() -> dict[str, Any]:
    world = World(release_spec())
    while world.status.step_started is None:
        world.tick()
    world.prometheus_up = False
    return release_held(world, "QueryError")


def release_waiting_for_a_gate() -> dict[str, Any]:
    hook = {"type": "confirm-rollout", "urlSecret": {"name": "hooks", "key": "confirm"}}
    world = World(release_spec(webhooks=[hook]), hook_ok={"confirm-rollout": False})
    world.tick()
    return canary(world)


def release_without_a_stable_version() -> dict[str, Any]:
    world = World(release_spec(), alias_holder=None)
    world.tick()
    return canary(world)


def healthy(kind: Kind[Any, Any]) -> tuple[dict[str, Any], ResourceStatus]:
    """A spec and the status the operator decided for it, all well."""
    if kind is MODEL_MONITOR:
        return MONITOR_SPEC.to_body(), healthy_monitor()
    if kind is RETRAIN_POLICY:
        return policy_spec(), policy_walk(policy_spec(), RetrainObservations())
    body = manual_release()["Promoted"]
    return body["spec"], load_status(CANARY_RELEASE, body["status"])


def older_generation(kind: Kind[Any, Any]) -> dict[str, Any]:
    """A spec changed after the status was written, before the operator saw the change."""
    spec, status = healthy(kind)
    return resource(kind, spec, status.to_body(), generation=2)


def admitted_change(kind: Kind[Any, Any]) -> dict[str, Any]:
    """A spec change the operator has admitted but not yet decided on."""
    spec, status = healthy(kind)
    return admitted(kind, spec, status, generation=2)


def invalid(kind: Kind[Any, Any]) -> dict[str, Any]:
    return admitted(kind, {k: v for k, v in example_spec(kind).items() if k != "model"})


@dataclass(frozen=True)
class Sample:
    """A resource as Argo CD reads it, the health it must show, and words its message must hold.
    ``decided``: the whole status is the operator's, written for the resource's generation."""

    build: Callable[[], dict[str, Any]]
    health: str
    says: str
    decided: bool = True


SAMPLES: dict[str, Sample] = {}
for _kind in KINDS:
    SAMPLES |= {
        f"{_kind.kind}: no status yet": Sample(
            functools.partial(resource, _kind, example_spec(_kind), None), "Progressing", "admit", decided=False
        ),
        f"{_kind.kind}: admitted": Sample(
            functools.partial(admitted, _kind, example_spec(_kind)), "Progressing", "Spec accepted"
        ),
        f"{_kind.kind}: invalid spec": Sample(functools.partial(invalid, _kind), "Degraded", "InvalidSpec: spec.model"),
        f"{_kind.kind}: tick failed": Sample(functools.partial(tick_failed, _kind), "Degraded", "TickFailed: RuntimeError"),
        f"{_kind.kind}: status of an older generation": Sample(
            functools.partial(older_generation, _kind), "Progressing", "not yet seen generation 2", decided=False
        ),
        # Admission keeps the verdict for the previous spec and leaves observedGeneration alone.
        f"{_kind.kind}: spec change admitted": Sample(
            functools.partial(admitted_change, _kind), "Progressing", "not yet seen generation 2", decided=False
        ),
    }
SAMPLES |= {
    "ModelMonitor: all well": Sample(lambda: monitor(observations()), "Healthy", "queries answered"),
    "ModelMonitor: drift": Sample(
        lambda: monitor(observations(shift=1.0, category_shift=True)), "Degraded", "DataDrift: 2/3 features drifted"
    ),
    "ModelMonitor: slow and failing": Sample(
        lambda: monitor(observations(slow=True, errors=0.05)), "Degraded", "LatencyHigh: latency p99"
    ),
    "ModelMonitor: replicas missing": Sample(lambda: monitor(observations(ready=1)), "Degraded", "Healthy: 1/2 replicas"),
    "ModelMonitor: too few labels for a verdict": Sample(
        monitor_without_enough_labels, "Healthy", "without a verdict: PerformanceDegraded (InsufficientData)"
    ),
    "ModelMonitor: Prometheus down": Sample(
        lambda: monitor(failed(observations()), healthy_monitor(), NOW + timedelta(minutes=5)),
        "Degraded",
        "cannot evaluate: QueryFailed",
    ),
    "ModelMonitor: model version unresolved": Sample(monitor_blocked, "Degraded", "cannot evaluate: VersionUnresolved"),
    "RetrainPolicy: Idle": Sample(lambda: policy(policy_spec(), RetrainObservations()), "Healthy", "waiting for a trigger"),
    "RetrainPolicy: Training": Sample(
        lambda: policy(policy_spec(), *run_seen()[:2]), "Progressing", "Job fraud-detector-1-1 is running"
    ),
    "RetrainPolicy: Registering": Sample(lambda: policy(policy_spec(), *run_seen()[:4]), "Progressing", "registering run"),
    "RetrainPolicy: AwaitingApproval": Sample(
        lambda: policy(policy_spec(auto=False), *run_seen()),
        "Suspended",
        'approveVersion: "4"',
    ),
    "RetrainPolicy: Deploying": Sample(
        lambda: policy(policy_spec(), *run_seen(RetrainObservations(manual_annotation="go", canary_phase="Progressing"))),
        "Progressing",
        "is Progressing",
    ),
    "RetrainPolicy: Idle after a promotion": Sample(
        lambda: policy(policy_spec(), *run_seen(RetrainObservations(manual_annotation="go", canary_phase="Promoted"))),
        "Healthy",
        "version 4 promoted",
    ),
    "RetrainPolicy: Idle after a canary rollback": Sample(
        lambda: policy(policy_spec(), *run_seen(RetrainObservations(manual_annotation="go", canary_phase="RolledBack"))),
        "Healthy",
        "RolledBack",
    ),
    "RetrainPolicy: Idle after a failed run": Sample(
        lambda: policy(
            policy_spec(),
            RetrainObservations(manual_annotation="go"),
            RetrainObservations(manual_annotation="go", job=JobView("fraud-detector-1-1", "Failed", "OOMKilled")),
        ),
        "Degraded",
        "the last run failed: Job fraud-detector-1-1 failed: OOMKilled",
    ),
    "CanaryRelease: Initializing": Sample(lambda: manual_release()["Initializing"], "Progressing", "preparing version 4"),
    "CanaryRelease: Initializing behind a gate": Sample(
        release_waiting_for_a_gate, "Suspended", "WaitingForHook: waiting for the confirm-rollout webhook"
    ),
    "CanaryRelease: Progressing": Sample(lambda: manual_release()["Progressing"], "Progressing", "step 1/3 (20% traffic)"),
    "CanaryRelease: AwaitingPromotion by hand": Sample(
        lambda: manual_release()["AwaitingPromotion"], "Suspended", "AwaitingApproval: promotion is manual"
    ),
    "CanaryRelease: Promoting": Sample(lambda: manual_release()["Promoting"], "Progressing", "promoting version 4"),
    "CanaryRelease: Promoted": Sample(lambda: manual_release()["Promoted"], "Healthy", "version 4 promoted"),
    "CanaryRelease: RolledBack": Sample(release_rolled_back, "Degraded", "RolledBack: error-rate failed at step 1/3"),
    "CanaryRelease: RolledBack by abort": Sample(release_aborted, "Degraded", "RolledBack: aborted at step 1/3"),
    "CanaryRelease: Completed after its shadow": Sample(release_shadow_stopped, "Healthy", "passed its shadow"),
    "CanaryRelease: held without Prometheus": Sample(release_without_prometheus, "Degraded", "AnalysisHeld"),
    "CanaryRelease: held without candidate data": Sample(
        lambda: release_held(World(release_spec(), samples=(800.0, 0.0)), "NoData"), "Progressing", "AnalysisHeld"
    ),
    "CanaryRelease: no stable version": Sample(release_without_a_stable_version, "Degraded", "NoStableVersion"),
}


@pytest.mark.parametrize("name", list(SAMPLES))
def test_argocd_health_follows_the_status(name: str) -> None:
    sample = SAMPLES[name]
    status, message = argocd_health(sample.build())
    assert (status, sample.says in message) == (sample.health, True), message


def test_every_phase_of_each_kind_has_a_sample() -> None:
    phases: dict[str, set[str]] = {RETRAIN_POLICY.kind: set(), CANARY_RELEASE.kind: set()}
    for sample in SAMPLES.values():
        body = sample.build()
        if "phase" in body.get("status", {}):
            phases[body["kind"]].add(body["status"]["phase"])
    assert phases == {RETRAIN_POLICY.kind: set(get_args(RetrainPhase)), CANARY_RELEASE.kind: set(get_args(CanaryPhase))}


@pytest.mark.parametrize(
    ("problem", "bad"), sorted((problem, bad) for problem, (bad, severity) in PROBLEMS.items() if severity != "info")
)
def test_every_condition_a_monitor_alerts_on_is_degraded(problem: str, bad: str) -> None:
    assert argocd_health(monitor_with(problem, bad)) == ("Degraded", f"{problem}: {problem} is {bad}")


@pytest.mark.parametrize(("problem", "bad"), sorted((p, bad) for p, (bad, severity) in PROBLEMS.items() if severity == "info"))
def test_advice_at_info_leaves_a_monitor_healthy(problem: str, bad: str) -> None:
    assert argocd_health(monitor_with(problem, bad))[0] == "Healthy"


def test_what_the_script_does_not_know_is_unknown() -> None:
    body = manual_release()["Progressing"]
    newer = {**body, "status": {**body["status"], "phase": "Hibernating"}}
    assert argocd_health(newer) == ("Unknown", "unknown phase Hibernating")
    assert argocd_health({**body, "kind": "ModelServer"}) == ("Unknown", "not a modelpilot.dev kind: ModelServer")


def test_the_sandbox_lacks_the_string_library_as_argocd_does() -> None:
    for script in ('return { status = ("Healthy"):lower() }', 'return { status = string.format("%s", "Healthy") }'):
        assert run_lua(script, {}).returncode != 0, script
    assert run_lua('return { status = "Heal" .. "thy" }', {}).returncode == 0


def test_argocd_cm_carries_the_script_for_each_kind() -> None:
    config = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())
    assert (config["kind"], config["metadata"]["name"], config["metadata"]["namespace"]) == ("ConfigMap", "argocd-cm", "argocd")
    assert config["data"] == {f"resource.customizations.health.{GROUP}_{kind.kind}": SCRIPT for kind in KINDS}
