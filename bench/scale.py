"""Benchmark 4: the operator at scale, a real process against the real API server and Prometheus.

N ModelMonitors (1,000; 200 with --quick) of the fleet's models are created at once in front of
a running operator. Measured: the operator's resident memory (VmRSS from /proc, idle and after
the first evaluation of every monitor, and its peak VmHWM), the time from the create call until
every monitor has its first evaluation (from the monitors' own status.lastEvaluation), and the
API requests of one steady interval from the API server's apiserver_request_total.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from collections import Counter
from datetime import datetime
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from modelpilot.api import parse_duration
from tests.support.kube import OperatorProcess

from .common import Bench, Settings
from .fleet import monitor_spec
from .stack import Stack

__all__ = ["run"]

NAMESPACE = "bench-scale"


class ApiServer:
    """Reads the control plane's API and /metrics with its admin token."""

    def __init__(self, stack: Stack):
        assert stack.plane is not None
        state = stack.plane.state_dir
        self.base = f"https://127.0.0.1:{stack.plane.port}"
        self.token = (state / "token").read_text().strip()
        self.context = ssl.create_default_context(cafile=str(state / "ca.crt"))
        self.lists = 0

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(request, context=self.context, timeout=120) as response:
            return response.read()

    def monitors(self) -> list[dict[str, Any]]:
        self.lists += 1
        body = json.loads(self.get(f"/apis/modelpilot.dev/v1alpha1/namespaces/{NAMESPACE}/modelmonitors"))
        return body["items"]

    def requests(self) -> Counter[tuple[str, str, str]]:
        """apiserver_request_total for modelmonitors and events, by (resource, subresource, verb)."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for family in text_string_to_metric_families(self.get("/metrics").decode()):
            if family.name != "apiserver_request":
                continue
            for sample in family.samples:
                labels = sample.labels
                if sample.name == "apiserver_request_total" and labels.get("resource") in ("modelmonitors", "events"):
                    counts[(labels["resource"], labels.get("subresource", ""), labels["verb"])] += sample.value
        return counts


def _memory(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MiB."""
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values


def _evaluated(items: list[dict[str, Any]]) -> dict[str, float]:
    """Monitor name -> unix time of its last evaluation, for those evaluated."""
    found = {}
    for item in items:
        stamp = (item.get("status") or {}).get("lastEvaluation")
        if stamp:
            found[item["metadata"]["name"]] = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    return found


def _manifest(count: int, stack: Stack, interval: str) -> str:
    models = stack.fleet.models
    items = [
        {
            "apiVersion": "modelpilot.dev/v1alpha1",
            "kind": "ModelMonitor",
            "metadata": {"name": f"monitor-{i:04d}"},
            "spec": monitor_spec(models[i % len(models)], stack.prometheus.url, interval=interval),
        }
        for i in range(count)
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def run(settings: Settings, stack: Stack, *, log=print) -> Bench:
    count = 200 if settings.quick else 1000
    # Long enough for the operator to evaluate every monitor once per interval on two cores.
    interval = "1m" if settings.quick else "5m"
    bench = Bench(
        "operator_scale",
        f"4. Operator at scale: {count:,} ModelMonitors (50 features each), interval {interval}, real API server and Prometheus",
        header=("measure", "value"),
    )
    cluster = stack.cluster(log=log)
    api = ApiServer(stack)
    cluster.kubectl("create", "namespace", NAMESPACE)
    operator = OperatorProcess(cluster, stack.workdir).start(timeout=120)
    try:
        time.sleep(5)
        assert operator.pid is not None
        idle = _memory(operator.pid)
        before = api.requests()
        created_at = time.time()
        cluster.kubectl("create", "-n", NAMESPACE, "-f", "-", input=_manifest(count, stack, interval))
        created_in = time.time() - created_at
        log(f"  {count} monitors created in {created_in:.0f}s; operator idle at {idle['VmRSS']:.0f} MiB")

        deadline = time.monotonic() + (600 if settings.quick else 1800)
        evaluated: dict[str, float] = {}
        peak_rss = idle["VmRSS"]
        while time.monotonic() < deadline:
            time.sleep(5)
            peak_rss = max(peak_rss, _memory(operator.pid)["VmRSS"])
            evaluated = _evaluated(api.monitors())
            if len(evaluated) >= count:
                break
            if not operator.running:
                raise RuntimeError(f"the operator exited:\n{operator.log_tail()}")
        if len(evaluated) < count:
            raise RuntimeError(f"only {len(evaluated)}/{count} monitors evaluated in time:\n{operator.log_tail()}")
        firsts = sorted(evaluated.values())
        all_first = firsts[-1] - created_at
        half_first = firsts[len(firsts) // 2] - created_at
        after_first = _memory(operator.pid)
        log(f"  every monitor evaluated {all_first:.0f}s after the create call; RSS {after_first['VmRSS']:.0f} MiB")

        # kopf posts Events one by one in the background: wait until the first cycle's are all
        # out, so that the steady interval counts only its own requests.
        def posted(counts: Counter) -> float:
            return counts[("events", "", "POST")] + counts[("events", "", "CREATE")]

        previous, quiet, changed_at = api.requests(), 0, time.time()
        drain_deadline = time.monotonic() + (300 if settings.quick else 900)
        while quiet < 2 and time.monotonic() < drain_deadline:
            time.sleep(3)
            current = api.requests()
            if posted(current) == posted(previous):
                quiet += 1
            else:
                quiet, changed_at = 0, time.time()
            previous = current
        events_done = changed_at - created_at
        first_cycle = previous
        log(f"  the first cycle's Events were all posted {events_done:.0f}s after the create call")

        # One steady interval: every monitor is due once; count what the operator asked of the API.
        window = parse_duration(interval).total_seconds()
        lists_before = api.lists
        start = time.time()
        mark = api.requests()
        time.sleep(window)
        end_counts = api.requests()
        end = time.time()
        items = api.monitors()
        steady = _memory(operator.pid)
        in_window = sum(1 for t in _evaluated(items).values() if start < t <= end)
        delta = end_counts - mark
        own_lists = api.lists - lists_before - 1  # our polls inside the window (none but the last, after it)
        peak_rss = max(peak_rss, steady["VmRSS"])
        errors = sum(
            1
            for item in items
            for c in (item.get("status") or {}).get("conditions", [])
            if c["type"] == "Ready" and c["status"] != "True"
        )
    finally:
        operator.stop()

    status_patches = delta[("modelmonitors", "status", "PATCH")]
    object_patches = delta[("modelmonitors", "", "PATCH")]
    events = delta[("events", "", "POST")] + delta[("events", "", "CREATE")]
    reads = sum(v for (resource, _, verb), v in delta.items() if resource == "modelmonitors" and verb in ("GET", "LIST", "WATCH"))
    reads = max(reads - max(own_lists, 0), 0)
    setup = first_cycle - before
    first_status_patches = setup[("modelmonitors", "status", "PATCH")]
    first_events = setup[("events", "", "POST")] + setup[("events", "", "CREATE")]
    per_eval = status_patches / in_window if in_window else float("nan")

    bench.rows += [
        ("operator RSS, idle before the monitors", f"{idle['VmRSS']:.0f} MiB"),
        ("operator RSS after every monitor's first evaluation", f"{after_first['VmRSS']:.0f} MiB"),
        ("operator RSS after one more interval / peak (VmHWM)", f"{steady['VmRSS']:.0f} MiB / {steady['VmHWM']:.0f} MiB"),
        ("RSS per monitor (after one interval, less idle)", f"{(steady['VmRSS'] - idle['VmRSS']) / count * 1024:.0f} KiB"),
        ("create call to every monitor's first evaluation", f"{all_first:.0f} s (half of them by {half_first:.0f} s)"),
        ("first cycle: status PATCHes / Events posted", f"{first_status_patches:.0f} / {first_events:.0f}"),
        ("create call to the first cycle's last Event posted", f"{events_done:.0f} s"),
        (f"one steady interval ({interval}): evaluations", f"{in_window}/{count}"),
        ("steady interval: status PATCHes (per evaluation)", f"{status_patches:.0f} ({per_eval:.2f})"),
        (
            "steady interval: object PATCHes / Events / reads (GET, LIST, WATCH)",
            f"{object_patches:.0f} / {events:.0f} / {reads:.0f}",
        ),
    ]
    bench.notes.append(
        f"{count} monitors over the fleet's {len(stack.fleet.models)} models (each model watched by "
        f"{count // len(stack.fleet.models)} monitors), no serving Deployment named (no Deployment reads); "
        f"kubectl create of all of them took {created_in:.0f}s; monitors not Ready at the end: {errors}"
    )
    bench.notes.append(
        "API requests from the API server's apiserver_request_total, before and after; the benchmark's own "
        "status polls (LIST) are subtracted"
    )
    bench.figures.update(
        {
            "monitors": count,
            "interval": interval,
            "rss_mib": {
                "idle": idle["VmRSS"],
                "after_first": after_first["VmRSS"],
                "steady": steady["VmRSS"],
                "hwm": steady["VmHWM"],
                "sampled_peak": peak_rss,
            },
            "seconds_to_all_first": all_first,
            "seconds_to_half_first": half_first,
            "create_seconds": created_in,
            "seconds_to_last_first_cycle_event": events_done,
            "first_cycle_requests": {"/".join(k): v for k, v in setup.items()},
            "steady_requests": {"/".join(k): v for k, v in delta.items()},
            "evaluations_in_interval": in_window,
            "status_patches_per_evaluation": per_eval,
            "not_ready": errors,
        }
    )
    bench.result = ("operator_scale_seconds_to_all_first_evaluations", f"{all_first:.0f}")
    return bench
