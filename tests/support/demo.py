"""`make demo`: a model's life in production, told on a local stack in a few minutes, unattended.

A fraud model (version 3, the MLflow champion) has 60 days of metrics in Prometheus in which its
accuracy falls and its features drift. The operator runs examples/ against it (the monitor, the
retrain policy, and the model server's Deployment; the policy makes the CanaryReleases):

1. the ModelMonitor sees accuracy fall and features drift;
2. the RetrainPolicy fires;
3. its training Job runs the example trainer (this program plays kubelet for Jobs);
4. the trainer's run is registered in MLflow as version 4 and beats the champion at the gate;
5. a CanaryRelease shifts live traffic (a load generator against example model servers, which
   this program runs as the Deployments' pods) to version 4 step by step;
6. version 4 is promoted: the alias moves and the stable serves it;
7. a second candidate, good offline but worse on live traffic, is rolled back with its reason;
8. the monitor's alert rules (`modelpilot alerts`) in a real Prometheus fire, and Alertmanager
   delivers the alert to a local receiver.

`kubectl get` is printed between phases, and a timeline at the end. With --once everything
stops after the story; without, it keeps running until interrupted (Ctrl-C). With KUBECONFIG set
the story runs on that cluster's API server instead of a local one; the operator it starts
watches only the demo's namespace, and the demo still plays kubelet there.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.support.demo_stack import MODEL, NAMESPACE, STABLE, DemoStack, start_stack
from tests.support.kube import REPO

T = TypeVar("T")

PHASES = 8
PROGRESS_EVERY_S = 8.0
# Canaries judged in seconds rather than minutes: a check every 5 s over 20 s of traffic, about
# a hundred requests a side, so the tolerances against stable are as wide as such samples resolve.
CHECKS = {"error-rate": ({"max": 0.1}, 0.05), "latency": ({"max": 0.5}, 0.15), "accuracy": ({"min": 0.8}, 0.1)}
ANALYSIS = {
    "window": "20s",
    "minSamples": 50,
    "metrics": [{"name": b, "builtin": b, "thresholdRange": limits, "tolerance": t} for b, (limits, t) in CHECKS.items()],
}
# The second candidate's server: right 60% of the time on live traffic (the stable: 95%), a
# training/serving skew no offline gate sees; far enough below the 0.8 minimum that the first
# check's few dozen labels tell.
SKEWED = {"name": "ACCURACY", "value": "0.6"}


def example(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "examples" / name).read_text())


def demo_monitor() -> dict[str, Any]:
    """examples/modelmonitor.yaml as the demo applies it: evaluated every 10 s; the history has a
    15-minute step, so the short window is widened to hold samples and the baseline is the week
    before the drift; the accuracy and drift alerts fire 2 s after their condition holds instead
    of minutes."""
    monitor = example("modelmonitor.yaml")
    spec = monitor["spec"]
    spec["interval"] = "10s"
    spec["performance"]["window"] = "1h"
    spec["drift"]["baseline"] = {"offset": "35d", "window": "7d"}
    quick = {"for": "2s"}
    spec["alerting"] = {"alerts": {"ModelAccuracyLow": quick, "ModelFeatureDrift": quick}}
    return monitor


def demo_policy(stack: DemoStack) -> dict[str, Any]:
    """examples/retrainpolicy.yaml as the demo applies it: its MLflow, the example trainer from
    this checkout as the Job's command, and canaries of seconds judged on the live Prometheus."""
    policy = example("retrainpolicy.yaml")
    spec = policy["spec"]
    spec["mlflow"]["trackingUri"] = stack.mlflow.url
    spec["training"]["template"]["spec"]["containers"][0]["command"] = ["python", "examples/trainer/train.py"]
    canary = spec["deployment"]["canaryTemplate"]
    canary.update({"stepWeights": [20, 50, 100], "interval": "5s"})
    canary["analysis"] = {**ANALYSIS, "prometheus": {"url": stack.live.url, "timeout": "3s"}}
    return policy


# --- telling -----------------------------------------------------------------------------------


@dataclass
class Story:
    """Headlines, progress while waiting, and the timeline."""

    began: float = field(default_factory=time.monotonic)
    phase: str = "setup"
    timeline: list[tuple[str, float, str]] = field(default_factory=list)

    def clock(self, at: float | None = None) -> str:
        seconds = (time.monotonic() if at is None else at) - self.began
        return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"

    def headline(self, number: int, phase: str, title: str) -> None:
        self.phase = f"{number} {phase}"
        print(f"\n{'=' * 100}\n[{number}/{PHASES}] {title}  (t+{self.clock()})\n{'=' * 100}", flush=True)

    def say(self, text: str) -> None:
        print(f"    {text}", flush=True)

    def happened(self, text: str, at: float | None = None) -> None:
        """A line of the timeline; ``at`` is a time.monotonic() reading (default: now)."""
        at = time.monotonic() if at is None else at
        self.timeline.append((self.phase, at, text))
        print(f"  * t+{self.clock(at)}  {text}", flush=True)

    def wait(
        self,
        probe: Callable[[], T | None],
        what: str,
        progress: Callable[[], str],
        detail: Callable[[], str] = lambda: "",
        timeout: float = 240,
    ) -> T:
        """Polls ``probe`` until it returns something truthy, printing ``progress()`` (and
        ``detail()``, which may change at every poll) when the progress changes and at least
        every few seconds."""
        began = time.monotonic()
        last_text, last_print = "", 0.0
        while True:
            found = probe()
            if found:
                return found
            now = time.monotonic()
            if now - began > timeout:
                raise TimeoutError(f"no {what} after {timeout:.0f}s; last: {last_text}")
            text = progress()
            if text != last_text or now - last_print >= PROGRESS_EVERY_S:
                print(f"    ... {text}{detail()}  [{now - began:.0f}s waiting for {what}]", flush=True)
                last_text, last_print = text, now
            time.sleep(0.5)

    def print_timeline(self, ending: str = "the story is told") -> None:
        print(f"\n{'=' * 100}\nTimeline\n{'=' * 100}", flush=True)
        print(f"  {'phase':<11} {'time':>5}  what happened")
        for phase, at, text in sorted(self.timeline, key=lambda entry: entry[1]):
            print(f"  {phase:<11} {self.clock(at):>5}  {text}")
        print(f"  {'end':<11} {self.clock():>5}  {ending}, in {time.monotonic() - self.began:.0f} s", flush=True)


# --- reading the resources -----------------------------------------------------------------


def status(stack: DemoStack, kind: str, name: str) -> dict[str, Any]:
    found = stack.cluster.kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json", check=False)
    return (json.loads(found.stdout).get("status") or {}) if found.returncode == 0 else {}


def status_when(
    stack: DemoStack, kind: str, name: str, test: Callable[[dict[str, Any]], bool]
) -> Callable[[], dict[str, Any] | None]:
    """A probe for :meth:`Story.wait`: the status once ``test`` holds for it."""

    def probe() -> dict[str, Any] | None:
        found = status(stack, kind, name)
        return found if test(found) else None

    return probe


def condition(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in body.get("conditions", []) if c["type"] == type_), {})


def ready_text(body: dict[str, Any]) -> str:
    ready = condition(body, "Ready")
    return f"{ready.get('reason', 'not yet reconciled')}: {ready.get('message', '')}"[:160]


def get(stack: DemoStack, kinds: str, headline: str = "", *options: str) -> None:
    """Prints ``kubectl get KINDS`` in the demo's namespace, indented, with a comment."""
    comment = f"    # {headline}" if headline else ""
    print(f"\n  $ kubectl get {' '.join([kinds, *options])} -n {NAMESPACE}{comment}", flush=True)
    indented(stack.kubectl("get", kinds, *options, "-n", NAMESPACE))


def modelpilot(stack: DemoStack, *args: str) -> None:
    """Runs and prints the `modelpilot` command in the demo's namespace."""
    print(f"\n  $ modelpilot {' '.join(args)} -n {NAMESPACE}", flush=True)
    indented(stack.modelpilot(*args, "-n", NAMESPACE))


def indented(text: str) -> None:
    print("".join(f"  {line}\n" for line in text.splitlines()), end="", flush=True)


# --- the phases ---------------------------------------------------------------------------------


def monitor_sees_the_fall(story: Story, stack: DemoStack) -> None:
    story.headline(1, "monitor", "The ModelMonitor sees accuracy fall and features drift")

    def degraded() -> dict[str, Any] | None:
        found = status(stack, "mm", MODEL)
        drifting = condition(found, "DataDrift").get("status") == "True"
        return found if condition(found, "PerformanceDegraded").get("status") == "True" and drifting else None

    found = story.wait(degraded, "the monitor's evaluation", lambda: ready_text(status(stack, "mm", MODEL)))
    summary = found.get("summary", {})
    story.happened(f"accuracy of version {summary.get('version')} is {summary.get('accuracy', 0):.3f}, below 0.9")
    drifted = [f["name"] for f in found.get("features", []) if f.get("verdict") == "Drift"]
    story.happened(f"{summary.get('drifted')} features drift: {', '.join(drifted)}")
    for type_ in ("PerformanceDegraded", "DataDrift", "LabelDrift", "ConceptDrift"):
        story.say(
            f"{type_:<20} {condition(found, type_).get('status', '?'):<6} {condition(found, type_).get('message', '')[:110]}"
        )
    get(stack, "modelmonitors", "accuracy, p99, throughput, errors, drifted features", "-o", "wide")


def policy_fires(story: Story, stack: DemoStack) -> None:
    story.headline(2, "trigger", "The RetrainPolicy fires")

    def streak() -> str:
        found = status(stack, "rtp", MODEL)
        below = found.get("triggers", {}).get("performanceStreak", 0)
        return f"{found.get('phase', '?')}, accuracy below the threshold for {below} of 2 evaluations"

    found = story.wait(lambda: status(stack, "rtp", MODEL).get("lastTrigger"), "a trigger", streak)
    story.happened(f"trigger {found['type']}: {found['reason']}")
    get(stack, "retrainpolicies,jobs", "the policy and the training Job it created")


def job_runs(story: Story, stack: DemoStack) -> None:
    story.headline(3, "training", "The training Job runs the example trainer")
    job = story.wait(lambda: next(iter(stack.jobs.jobs), None), "the Job", lambda: ready_text(status(stack, "rtp", MODEL)))
    story.happened(f"Job {job} started: examples/trainer/train.py with the RetrainPolicy's environment")
    ran = stack.jobs.jobs[job]
    env = ran.env
    story.say(f"MODELPILOT_TRIGGER={env.get('MODELPILOT_TRIGGER')}  MLFLOW_TRACKING_URI={env.get('MLFLOW_TRACKING_URI')}")
    story.say(f"MODELPILOT_HYPERPARAMETERS={env.get('MODELPILOT_HYPERPARAMETERS')}")
    story.wait(
        lambda: ran.returncode is not None, f"Job {job} to finish", lambda: "training (hyperparameter search, early stopping)"
    )
    result = json.loads(ran.output.strip().splitlines()[-1]) if ran.returncode == 0 else {}
    metrics = ", ".join(f"{k} {v:.3f}" for k, v in result.get("metrics", {}).items())
    story.happened(f"Job {job} exited {ran.returncode}: MLflow run {result.get('run_id', '?')[:8]}, test {metrics}")
    get(stack, "jobs", "the Job's status, written by the demo's kubelet")


def version_beats_champion(story: Story, stack: DemoStack, number: int = 4) -> dict[str, Any]:
    story.headline(4, "gate", "A new version is registered in MLflow and beats the champion")
    found = story.wait(
        status_when(stack, "rtp", MODEL, lambda s: s.get("phase") == "Deploying" and bool(s.get("canary"))),
        "the gate",
        lambda: ready_text(status(stack, "rtp", MODEL)),
    )
    report_gate(story, found)
    get(stack, "retrainpolicies", "LAST RESULT and CANDIDATE")
    return found


def report_gate(story: Story, found: dict[str, Any]) -> None:
    story.happened(
        f"version {found['candidateVersion']} registered; passed the gate against champion {found.get('championVersion')}"
    )
    story.say(f"{'metric':<10} {'champion':>9} {'candidate':>10} {'change':>8}  passed")
    for row in found.get("comparison", []):
        story.say(
            f"{row['metric']:<10} {_number(row.get('champion')):>9} {_number(row.get('challenger')):>10} "
            f"{_number(row.get('change'), '+.3f'):>8}  {row['passed']}"
        )
    story.happened(f"the policy created CanaryRelease {found['canary']}")


def _number(value: float | None, form: str = ".3f") -> str:
    return "-" if value is None else format(value, form)


def canary_walks(story: Story, stack: DemoStack, release: str, until: tuple[str, ...]) -> dict[str, Any]:
    """Follows a release step by step until one of the phases ``until``; returns its status."""
    stack.traffic.candidate = f"{release}-candidate"
    seen_steps: set[int] = set()
    before = stack.load.stats.targets["candidate"].ok

    def progress() -> str:
        found = status(stack, "crel", release)
        step = found.get("currentStep") or 0
        if step and step not in seen_steps and found.get("stepStarted"):
            seen_steps.add(step)
            story.happened(f"step {step}/{found.get('steps')}: {found.get('canaryWeight')}% of live traffic on the candidate")
            get(stack, "canaryreleases,deployments", "weights and replicas")
        checks = found.get("counters", {})
        return (
            f"{found.get('phase', 'Pending')}: step {step}/{found.get('steps', '?')}, "
            f"weight {found.get('canaryWeight', 0)}%, actual {found.get('actualWeight') or 0:.0f}%, "
            f"checks passed {checks.get('passed', 0)}, failed {checks.get('failed', 0)}"
        )

    def served() -> str:
        return f"; the candidate answered {stack.load.stats.targets['candidate'].ok - before} requests"

    return story.wait(
        status_when(stack, "crel", release, lambda s: s.get("phase") in until), f"{release} to end", progress, served
    )


def canary_shifts_traffic(story: Story, stack: DemoStack, release: str) -> dict[str, Any]:
    story.headline(5, "canary", "A CanaryRelease shifts live traffic to the candidate step by step")
    story.say(f"load generator: {stack.load.rps:.0f} requests/s, split by ready replicas of {STABLE} and the candidate")
    done = canary_walks(story, stack, release, ("Promoted", "RolledBack", "Failed"))
    if done["phase"] != "Promoted":
        raise RuntimeError(f"{release} ended {done['phase']}: {done.get('rollback', {}).get('message')}")
    return done


def promoted(story: Story, stack: DemoStack, release: str, done: dict[str, Any]) -> None:
    story.headline(6, "promotion", "Promoted: the alias moves and the stable serves the new version")
    version = done["candidateVersion"]
    story.happened(f"{release} promoted version {version}")
    story.happened(
        f"MLflow alias champion: version {done.get('promotion', {}).get('previousAliasVersion')} -> {stack.champion()}"
    )
    candidate = stack.traffic.candidate or ""
    story.wait(
        lambda: (
            stack.deployments.version(STABLE) == version
            and stack.deployments.ready(STABLE)
            and not stack.deployments.ready(candidate)
        ),
        "the stable to restart",
        lambda: f"stable: version {stack.deployments.version(STABLE)}; candidate: {stack.deployments.ready(candidate)} ready",
    )
    story.happened(f"Deployment {STABLE} restarted and serves version {version}; the candidate is scaled to zero")
    policy = story.wait(
        lambda: status(stack, "rtp", MODEL).get("lastResult"),
        "the policy to record it",
        lambda: ready_text(status(stack, "rtp", MODEL)),
    )
    story.happened(f"RetrainPolicy {MODEL}: last result {policy}")
    get(stack, "modelpilot", "every modelpilot resource")


def worse_candidate_rolled_back(story: Story, stack: DemoStack, policy: dict[str, Any]) -> None:
    story.headline(7, "rollback", "A second candidate, good offline but worse on live traffic, is rolled back")
    runs = status(stack, "rtp", MODEL).get("runs", 0)
    container = policy["spec"]["training"]["template"]["spec"]["containers"][0]
    container["env"] = [*container.get("env", []), {"name": "TRAINER_SEED", "value": "4"}]
    policy["spec"]["deployment"]["canaryTemplate"]["candidate"] = {"env": [SKEWED]}
    story.say("the demo edits the policy: the trainer draws a new sample (TRAINER_SEED=4), and candidates are")
    story.say(f"served with ACCURACY={SKEWED['value']} (the stable: 0.95): a training/serving skew the offline gate cannot see")
    stack.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump(policy))
    modelpilot(stack, "retrain", "request", MODEL)
    story.happened("a second retraining requested by hand")
    found = story.wait(
        status_when(stack, "rtp", MODEL, lambda s: s.get("runs", 0) > runs and s.get("phase") == "Deploying"),
        "the second candidate",
        lambda: ready_text(status(stack, "rtp", MODEL)),
    )
    report_gate(story, found)
    done = canary_walks(story, stack, found["canary"], ("Promoted", "RolledBack", "Failed"))
    rollback = done.get("rollback") or {}
    story.happened(f"{found['canary']} {done['phase']}: {rollback.get('message', '')}")
    story.say(
        f"reason {rollback.get('reason')}, metric {rollback.get('metric')}: candidate {_number(rollback.get('value'))}, "
        f"stable {_number(rollback.get('baseline'))}, threshold {_number(rollback.get('threshold'))}"
    )
    story.happened(f"MLflow alias champion stays on version {stack.champion()}")
    story.wait(
        lambda: status(stack, "rtp", MODEL).get("lastResult") == "RolledBack",
        "the policy to record it",
        lambda: ready_text(status(stack, "rtp", MODEL)),
    )
    get(stack, "modelpilot", "every modelpilot resource")
    modelpilot(stack, "retrain", "history", MODEL)


def alert_arrives(story: Story, stack: DemoStack) -> None:
    story.headline(8, "alert", "The monitor's alert reaches a local receiver through Prometheus and Alertmanager")
    alert = story.wait(
        lambda: stack.receiver.first("ModelAccuracyLow"),
        "ModelAccuracyLow at the receiver",
        lambda: f"alerts received so far: {', '.join(stack.receiver.names()) or 'none'}",
    )
    arrived = time.monotonic() - (time.time() - alert.received)
    story.happened(f"alert {alert.name} ({alert.severity}) delivered to the receiver", at=arrived)
    story.say(f"alertname: {alert.name}")
    story.say(f"severity:  {alert.severity}")
    story.say(f"summary:   {alert.summary}")
    story.say(f"labels:    {', '.join(f'{k}={v}' for k, v in sorted(alert.labels.items()))}")
    story.say(f"all alerts received: {', '.join(stack.receiver.names())}")


def tell(story: Story, stack: DemoStack, monitor: dict[str, Any]) -> None:
    policy = demo_policy(stack)
    story.say("applying examples/modelmonitor.yaml and examples/retrainpolicy.yaml (the CanaryRelease comes from the policy)")
    print(stack.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=yaml.safe_dump_all([monitor, policy])), end="")
    story.happened("examples applied")
    monitor_sees_the_fall(story, stack)
    policy_fires(story, stack)
    job_runs(story, stack)
    first = version_beats_champion(story, stack)
    done = canary_shifts_traffic(story, stack, first["canary"])
    promoted(story, stack, first["canary"], done)
    worse_candidate_rolled_back(story, stack, policy)
    alert_arrives(story, stack)


def run(once: bool) -> int:
    story = Story()
    with tempfile.TemporaryDirectory(prefix="modelpilot-demo-") as tmp, contextlib.ExitStack() as services:
        print(f"\n==> starting the local stack (t+{story.clock()})", flush=True)
        monitor = demo_monitor()
        stack = start_stack(Path(tmp), services, monitor, story.say)
        monitor["spec"]["prometheus"]["url"] = stack.history.url
        story.happened("stack ready")
        try:
            tell(story, stack, monitor)
        except (TimeoutError, RuntimeError, AssertionError, subprocess.CalledProcessError) as error:
            print(f"\nthe story stopped in phase {story.phase}: {error}", flush=True)
            story.print_timeline(ending=f"stopped in phase {story.phase}")
            print(f"\nthe operator's last log lines:\n{stack.operator.log_tail(30)}", flush=True)
            return 1
        story.print_timeline()
        if once:
            return 0
        print(
            f"\nEverything keeps running (live traffic included). Try:\n  export KUBECONFIG={stack.cluster.kubeconfig}\n"
            f"  {stack.cluster.kubectl_binary} get modelpilot -n {NAMESPACE}\nPress Ctrl-C to stop.",
            flush=True,
        )
        while True:
            time.sleep(3600)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="stop everything after the story and its timeline")
    args = parser.parse_args(argv)
    # SIGTERM stops the demo as Ctrl-C does, so the context managers stop every process.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args.once)
    except KeyboardInterrupt:
        print("\nstopping everything the demo started", flush=True)
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
