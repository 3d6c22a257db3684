"""The `modelpilot` command: run the operator, write the CRDs, and one-shot tools."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

__all__ = ["main"]

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _cmd_crds(args: argparse.Namespace) -> int:
    from modelpilot.api import render_crds

    rendered = render_crds()
    if args.check:
        stale = [
            name
            for name, text in rendered.items()
            if not (args.output / name).exists() or (args.output / name).read_text() != text
        ]
        if stale:
            print(f"out of date in {args.output}: {', '.join(stale)}; run `modelpilot crds`", file=sys.stderr)
            return 1
        print(f"{len(rendered)} CRDs in {args.output} are up to date")
        return 0
    if str(args.output) == "-":
        sys.stdout.write("---\n".join(rendered.values()))
        return 0
    args.output.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        (args.output / name).write_text(text)
        print(f"wrote {args.output / name}")
    return 0


class _UnusableFile(Exception):
    """A file of ModelMonitors that cannot be used; the message says why."""


def _monitors(file: Path, prometheus: str | None = None) -> list[tuple[str, str, Any]]:
    """(namespace, name, spec) of each ModelMonitor in a YAML file; raises _UnusableFile."""
    import yaml

    from modelpilot.api import MODEL_MONITOR, SpecError, load_spec

    documents = [d for d in yaml.safe_load_all(file.read_text()) if d and d.get("kind") == MODEL_MONITOR.kind]
    if not documents:
        raise _UnusableFile(f"{file}: no {MODEL_MONITOR.kind} in the file")
    monitors = []
    for document in documents:
        metadata = document.get("metadata") or {}
        name = metadata.get("name", "-")
        spec_body = dict(document.get("spec") or {})
        if prometheus:
            spec_body["prometheus"] = {**spec_body.get("prometheus", {}), "url": prometheus}
        try:
            spec = load_spec(MODEL_MONITOR, spec_body)
        except SpecError as err:
            raise _UnusableFile(f"{file}: {name}: {err}") from None
        monitors.append((metadata.get("namespace", "default"), name, spec))
    return monitors


def _cmd_check(args: argparse.Namespace) -> int:
    import asyncio
    import json
    from datetime import datetime

    from modelpilot.api import now_utc
    from modelpilot.api.monitor import ModelMonitorStatus
    from modelpilot.reconcile.monitor import PROBLEMS, decide_monitor
    from modelpilot.report import monitor_report
    from modelpilot.sources.monitor import observe_monitor

    try:
        monitors = _monitors(args.file, args.prometheus)
    except _UnusableFile as err:
        print(err, file=sys.stderr)
        return 2
    at = now_utc() if args.at is None else datetime.fromisoformat(args.at.replace("Z", "+00:00")).astimezone(UTC)
    worst = 0
    reports: list[dict[str, Any]] = []
    texts: list[str] = []
    for namespace, name, spec in monitors:
        observations = asyncio.run(observe_monitor(spec, namespace=namespace, at=at, kube=None))
        status = decide_monitor(spec, ModelMonitorStatus(), observations, generation=None, now=at).status
        if args.output == "json":
            reports.append({"name": name, "status": status.to_body()})
        else:
            texts.append(monitor_report(name, spec, status))
        conditions = {c.type: c.status for c in status.conditions}
        if conditions.get("Ready") != "True":
            worst = max(worst, 2)
        elif any(conditions.get(type_) == bad for type_, (bad, _) in PROBLEMS.items()):
            worst = max(worst, 1)
    if args.output == "json":
        print(json.dumps(reports[0] if len(reports) == 1 else reports, indent=2))
    else:
        print("\n".join(texts), end="")
    return worst


def _cmd_alerts(args: argparse.Namespace) -> int:
    import yaml

    from modelpilot.reconcile.monitor.rules import OPERATOR_RULES, RuleDefaults, rule_groups

    groups = list(OPERATOR_RULES) if args.operator else []
    if args.file is not None:
        try:
            monitors = _monitors(args.file)
        except _UnusableFile as err:
            print(err, file=sys.stderr)
            return 2
        defaults = RuleDefaults(rule_labels={}, **({"runbook_url": args.runbook_url} if args.runbook_url else {}))
        for namespace, name, spec in monitors:
            groups += rule_groups(spec, namespace=namespace, monitor=name, version=args.version, defaults=defaults)
    if not groups:
        print("nothing to print: give -f FILE, --operator, or both", file=sys.stderr)
        return 2
    sys.stdout.write(yaml.safe_dump({"groups": groups}, sort_keys=False, width=1000))
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    import json

    from modelpilot.reconcile.monitor.dashboard import fleet_dashboard, monitor_dashboard

    if args.fleet:
        print(json.dumps(fleet_dashboard(), indent=2))
        return 0
    if args.file is None:
        print("give -f FILE or --fleet", file=sys.stderr)
        return 2
    try:
        monitors = _monitors(args.file)
    except _UnusableFile as err:
        print(err, file=sys.stderr)
        return 2
    dashboards = [monitor_dashboard(spec, namespace, name) for namespace, name, spec in monitors]
    print(json.dumps(dashboards[0] if len(dashboards) == 1 else dashboards, indent=2))
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    import json

    from modelpilot.profiling import UnreadableTable, build_profile, read_table

    bounds = json.loads(args.bounds.read_text()) if args.bounds else None
    try:
        table = read_table(args.data)
    except UnreadableTable as err:
        print(f"modelpilot profile: {err}", file=sys.stderr)
        return 2
    profile = build_profile(
        table,
        bounds=bounds,
        buckets=args.buckets,
        prediction_column=args.prediction_column,
        exclude=args.exclude,
    )
    body = profile.model_dump(mode="json", by_alias=True)
    if args.output:
        args.output.write_text(json.dumps(body, indent=2) + "\n")
        print(f"wrote {args.output}: {profile.rows} rows, {len(profile.features)} features")
    numerical = {n: f.upper_bounds for n, f in profile.features.items() if f.kind == "numerical"}
    if args.bounds_output:
        args.bounds_output.write_text(json.dumps(numerical, indent=2) + "\n")
        print(f"wrote {args.bounds_output}: give these bounds to the model server's ModelMetrics(feature_buckets=...)")
    if args.model:
        from modelpilot.sources.mlflow import MlflowRegistry, RegistryError

        if not (args.version and args.tracking_uri):
            print("--model needs --version and --tracking-uri", file=sys.stderr)
            return 2
        try:
            MlflowRegistry(args.tracking_uri).log_profile(args.model, args.version, body)
        except RegistryError as err:
            print(f"logging the profile to MLflow failed: {err}", file=sys.stderr)
            return 1
        print(f"logged the profile with {args.model} version {args.version} in {args.tracking_uri}")
    elif not args.output:
        print(json.dumps(body, indent=2))
    return 0


def _cmd_retrain(args: argparse.Namespace) -> int:
    from modelpilot.api import RETRAIN_POLICY, load_status, now_utc
    from modelpilot.reconcile.retrain import APPROVE_ANNOTATION, MANUAL_ANNOTATION, ROLLBACK_ANNOTATION, history_rows
    from modelpilot.report import table
    from modelpilot.sources.kubernetes import ObjectMissing, get_resource, patch_resource

    plural = RETRAIN_POLICY.plural
    try:
        if args.action == "history":
            status = load_status(RETRAIN_POLICY, get_resource(plural, args.namespace, args.name).get("status"))
            header = ["TIME", "TRIGGER", "VERSION", "PRIMARY", "OUTCOME", "MESSAGE"]
            print("\n".join(table(header, history_rows(status.history))) if status.history else "no retraining yet")
            return 0
        if args.action == "approve":
            if not args.version:
                print("approve needs the candidate version: modelpilot retrain approve NAME VERSION", file=sys.stderr)
                return 2
            patch_resource(plural, args.namespace, args.name, {"metadata": {"annotations": {APPROVE_ANNOTATION: args.version}}})
            print(f"approved version {args.version} of retrainpolicy/{args.name} for deployment")
            return 0
        token = now_utc().isoformat()
        if args.action == "rollback":
            patch_resource(plural, args.namespace, args.name, {"metadata": {"annotations": {ROLLBACK_ANNOTATION: token}}})
            print(f"requested a rollback of retrainpolicy/{args.name} to the version its last promotion replaced ({token})")
            return 0
        patch_resource(plural, args.namespace, args.name, {"metadata": {"annotations": {MANUAL_ANNOTATION: token}}})
        print(f"requested retraining of retrainpolicy/{args.name} ({token})")
        return 0
    except ObjectMissing:
        print(f"retrainpolicy {args.namespace}/{args.name} not found", file=sys.stderr)
        return 1


def _cmd_versions(args: argparse.Namespace) -> int:
    from modelpilot.sources.mlflow import RegistryError, registry_for
    from modelpilot.versions import compare_lines, describe_lines, list_lines

    if args.action == "rollback":
        return _versions_rollback(args)
    registry = registry_for(args.tracking_uri)
    try:
        if args.action == "list":
            versions = registry.list_versions(args.model)
            trained = {v.version: registry.run_metrics(v.run_id) if v.run_id else {} for v in versions}
            lines = list_lines(versions, trained, args.metric) if versions else [f"model {args.model} has no versions"]
        elif args.action == "describe":
            if len(args.versions) != 1:
                print("describe needs one version: modelpilot versions describe MODEL VERSION", file=sys.stderr)
                return 2
            info = registry.get_version(args.model, args.versions[0])
            lines = describe_lines(info, registry.run_metrics(info.run_id) if info.run_id else {})
        else:
            if len(args.versions) != 2:
                print("compare needs two versions: modelpilot versions compare MODEL A B", file=sys.stderr)
                return 2
            a, b = (registry.get_version(args.model, v) for v in args.versions)
            metrics = [registry.run_metrics(v.run_id) if v.run_id else {} for v in (a, b)]
            lines = compare_lines(a, b, *metrics)
    except RegistryError as err:
        print(f"{args.tracking_uri}: {err}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


def _versions_rollback(args: argparse.Namespace) -> int:
    """Ask the RetrainPolicy of the model to roll back, through its guard's path."""
    from modelpilot.api import RETRAIN_POLICY, now_utc
    from modelpilot.reconcile.retrain import ROLLBACK_ANNOTATION
    from modelpilot.sources.kubernetes import KubeError, list_resources, patch_resource

    try:
        policies = [
            p for p in list_resources(RETRAIN_POLICY.plural, args.namespace) if (p.get("spec") or {}).get("model") == args.model
        ]
        if len(policies) != 1:
            found = ", ".join(p["metadata"]["name"] for p in policies) or "none"
            print(f"rollback needs one RetrainPolicy of model {args.model} in {args.namespace}; found {found}", file=sys.stderr)
            return 1
        name = policies[0]["metadata"]["name"]
        token = now_utc().isoformat() + (f";to={args.to}" if args.to else "")
        patch_resource(RETRAIN_POLICY.plural, args.namespace, name, {"metadata": {"annotations": {ROLLBACK_ANNOTATION: token}}})
    except KubeError as err:
        print(f"cannot ask for the rollback: {err}", file=sys.stderr)
        return 1
    target = f"version {args.to}" if args.to else "the version its last promotion replaced"
    print(f"asked retrainpolicy/{name} to roll model {args.model} back to {target}; `kubectl describe rtp {name}` follows it")
    return 0


def _cmd_canary(args: argparse.Namespace) -> int:
    from modelpilot.api import CANARY_RELEASE
    from modelpilot.sources.kubernetes import ObjectMissing, patch_resource

    # spec.promote / spec.abort are the user's fields: the CLI writes them on the user's behalf.
    try:
        patch_resource(CANARY_RELEASE.plural, args.namespace, args.name, {"spec": {args.action: True}})
    except ObjectMissing:
        print(f"canaryrelease {args.namespace}/{args.name} not found", file=sys.stderr)
        return 1
    print(f"canaryrelease/{args.name}: spec.{args.action} set")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from modelpilot.handlers import run_operator
    from modelpilot.handlers.monitor import set_rule_defaults
    from modelpilot.handlers.retrain import set_pod_policy
    from modelpilot.reconcile.monitor import RuleDefaults
    from modelpilot.reconcile.pod_policy import PodPolicy
    from modelpilot.sources.outbound import allow_prefixes

    allow_prefixes(args.allowed_url_prefix)
    if args.leader_election:
        from modelpilot.handlers.leadership import LEADERSHIP

        namespace = args.leader_election_namespace or _own_namespace()
        if namespace is None:
            print("--leader-election needs --leader-election-namespace outside a pod", file=sys.stderr)
            return 2
        identity = f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        LEADERSHIP.enable(namespace=namespace, name=args.leader_election_name, identity=identity)
    set_pod_policy(PodPolicy(training_service_accounts=frozenset(args.training_service_account or ["default"])))
    try:
        rule_labels = dict(_key_value(item) for item in args.rule_label)
    except ValueError as err:
        print(f"--rule-label: {err}", file=sys.stderr)
        return 2
    set_rule_defaults(RuleDefaults(rule_labels=rule_labels, **({"runbook_url": args.runbook_url} if args.runbook_url else {})))
    return run_operator(
        namespaces=args.namespace,
        clusterwide=args.all_namespaces,
        metrics_port=args.metrics_port,
        liveness_port=args.liveness_port,
        verbose=args.verbose,
    )


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"{item!r} is not KEY=VALUE")
    return key, value


def _own_namespace() -> str | None:
    """The namespace of the pod the operator runs in, from its service account's mount."""
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def _cmd_gpu_exporter(args: argparse.Namespace) -> int:
    from modelpilot.gpu_exporter import run

    return run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelpilot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the operator against the current kubeconfig or in-cluster config")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (default)")
    scope.add_argument("-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)")
    run.add_argument("--metrics-port", type=int, default=9808, help="port of /metrics (0 disables)")
    run.add_argument("--liveness-port", type=int, default=8080, help="port of /healthz (0 disables)")
    run.add_argument(
        "--allowed-url-prefix",
        action="append",
        default=[],
        metavar="URL",
        help="call Prometheus, MLflow and webhooks only under these URL prefixes (repeatable; default: any)",
    )
    run.add_argument(
        "--training-service-account",
        action="append",
        metavar="NAME",
        help="a service account training Jobs may run as (repeatable; default: default). Templates that ask for "
        "another, or for host namespaces, host paths or ports, privileged containers or capabilities beyond the "
        "Pod Security baseline, are refused",
    )
    run.add_argument(
        "--leader-election",
        action="store_true",
        help="run as one of several replicas: only the holder of a coordination.k8s.io Lease ticks and writes",
    )
    run.add_argument(
        "--leader-election-namespace",
        metavar="NAMESPACE",
        help="namespace of the Lease (default: the pod's own namespace)",
    )
    run.add_argument("--leader-election-name", default="modelpilot", metavar="NAME", help="name of the Lease")
    run.add_argument(
        "--rule-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label on every PrometheusRule the operator writes, so the cluster's Prometheus ruleSelector "
        "matches it (repeatable; e.g. release=kube-prometheus-stack)",
    )
    run.add_argument("--runbook-url", metavar="URL", help="base of the alerts' runbook_url annotation")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_cmd_run)

    check = commands.add_parser(
        "check",
        help="evaluate ModelMonitors from a file once, without Kubernetes, and print a report",
        description="Runs the same evaluation the operator runs, against any Prometheus. Exit status: 0 nothing "
        "wrong, 1 a problem condition is True (drift, degradation, latency, errors), 2 the evaluation was "
        "incomplete (a query failed, too little to go on for Ready) or the file is invalid.",
    )
    check.add_argument("-f", "--file", type=Path, required=True, help="YAML with one or more ModelMonitor documents")
    check.add_argument("--prometheus", help="Prometheus URL, replacing spec.prometheus.url")
    check.add_argument("--at", help="evaluation time (RFC 3339), default now")
    check.add_argument("-o", "--output", choices=("text", "json"), default="text")
    check.set_defaults(func=_cmd_check)

    alerts = commands.add_parser(
        "alerts",
        help="print the Prometheus alert rules of ModelMonitors from a file, as a rule file for any Prometheus",
        description="The same rules a monitor's PrometheusRule holds, for a Prometheus without the "
        "prometheus-operator (rule_files). --operator adds the rules on the operator itself.",
    )
    alerts.add_argument("-f", "--file", type=Path, help="YAML with one or more ModelMonitor documents")
    alerts.add_argument("--version", help="the served version, for the alerts' version label")
    alerts.add_argument("--runbook-url", metavar="URL", help="base of the alerts' runbook_url annotation")
    alerts.add_argument("--operator", action="store_true", help="include the rules on the operator itself")
    alerts.set_defaults(func=_cmd_alerts)

    dashboard = commands.add_parser(
        "dashboard",
        help="print the Grafana dashboard JSON of ModelMonitors from a file, or the fleet overview",
    )
    dashboard.add_argument("-f", "--file", type=Path, help="YAML with one or more ModelMonitor documents")
    dashboard.add_argument("--fleet", action="store_true", help="print the overview of every monitor instead")
    dashboard.set_defaults(func=_cmd_dashboard)

    profile = commands.add_parser(
        "profile",
        help="build a reference profile from training data and store it with a model version in MLflow",
        description="Counts every column of the training data: numerical ones in bucket bounds (the model "
        "server's, from --bounds, else quantile buckets of the data, written with --bounds-output for the "
        "server), the others by category. A ModelMonitor with drift.baseline.mlflowProfile compares with it.",
    )
    profile.add_argument("--data", type=Path, required=True, help="CSV with a header row, or Parquet (needs pyarrow)")
    profile.add_argument("--bounds", type=Path, help="JSON: feature -> bucket upper bounds the server uses")
    profile.add_argument("--buckets", type=int, default=10, help="quantile buckets per numerical feature without bounds")
    profile.add_argument("--prediction-column", help="column with the model's predicted class (label-drift baseline)")
    profile.add_argument("--exclude", action="append", default=[], help="column to leave out (repeatable)")
    profile.add_argument("-o", "--output", type=Path, help="write the profile JSON here")
    profile.add_argument("--bounds-output", type=Path, help="write the numerical bucket bounds (JSON) here")
    profile.add_argument("--model", help="registered model to store the profile with")
    profile.add_argument("--version", help="model version to store the profile with")
    profile.add_argument("--tracking-uri", help="MLflow tracking URI")
    profile.set_defaults(func=_cmd_profile)

    retrain = commands.add_parser(
        "retrain",
        help="request a retraining, approve a candidate, roll back a promotion, or print the history of a RetrainPolicy",
        description="`retrain request NAME` sets the modelpilot.dev/retrain-request annotation (a manual trigger); "
        "`retrain approve NAME VERSION` approves a gated candidate; `retrain rollback NAME` returns serving to the "
        "version the policy's last promotion replaced, through a CanaryRelease (as spec.rollback does); "
        "`retrain history NAME` prints the history.",
    )
    retrain.add_argument("action", choices=("request", "approve", "history", "rollback"))
    retrain.add_argument("name", help="the RetrainPolicy")
    retrain.add_argument("version", nargs="?", help="candidate version (approve)")
    retrain.add_argument("-n", "--namespace", default="default")
    retrain.set_defaults(func=_cmd_retrain)

    versions = commands.add_parser(
        "versions",
        help="list, describe or compare a model's registered versions, or roll production back",
        description="`versions list MODEL`: aliases, creation, trigger, gate and quality in training and production; "
        "`versions describe MODEL VERSION`; `versions compare MODEL A B`; `versions rollback MODEL [--to VERSION]` "
        "asks the model's RetrainPolicy to return serving to the version its last promotion replaced (or VERSION), "
        "through a CanaryRelease.",
    )
    versions.add_argument("action", choices=("list", "describe", "compare", "rollback"))
    versions.add_argument("model", help="the registered model")
    versions.add_argument("versions", nargs="*", help="version(s): one for describe, two for compare")
    versions.add_argument(
        "--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"), help="MLflow (default $MLFLOW_TRACKING_URI)"
    )
    versions.add_argument("--metric", default="accuracy", help="the metric list shows (default accuracy)")
    versions.add_argument("--to", help="rollback: the version to return to")
    versions.add_argument("-n", "--namespace", default="default", help="rollback: the RetrainPolicy's namespace")
    versions.set_defaults(func=_cmd_versions)

    canary = commands.add_parser(
        "canary",
        help="approve the promotion of a CanaryRelease, or abort it",
        description="`canary promote NAME` sets spec.promote (a manual promotion waits for it); `canary abort NAME` "
        "sets spec.abort (traffic back to stable at once). Clear the field before the next release.",
    )
    canary.add_argument("action", choices=("promote", "abort"))
    canary.add_argument("name", help="the CanaryRelease")
    canary.add_argument("-n", "--namespace", default="default")
    canary.set_defaults(func=_cmd_canary)

    crds = commands.add_parser("crds", help="write the CustomResourceDefinitions generated from the API models")
    crds.add_argument("-o", "--output", type=Path, default=Path("crds"), help="directory, or - for stdout")
    crds.add_argument("--check", action="store_true", help="fail if the files in the directory are out of date")
    crds.set_defaults(func=_cmd_crds)
    from modelpilot.gpu_exporter import add_arguments as add_gpu_exporter_arguments

    gpu_exporter = commands.add_parser(
        "gpu-exporter",
        help="serve this node's NVIDIA GPU metrics under the DCGM exporter's names (NVML)",
        description="Serves DCGM_FI_DEV_* series with DCGM's labels, and per-process GPU memory with pod UID and "
        "container ID. Without NVML it serves modelpilot_gpu_exporter_up 0; --once prints one exposition and exits 1.",
    )
    add_gpu_exporter_arguments(gpu_exporter)
    gpu_exporter.set_defaults(func=_cmd_gpu_exporter)
    return parser


#: Clients that log whole request and response bodies at debug level (Secrets among them):
#: --verbose never turns that on.
QUIET_CLIENTS = ("kubernetes", "urllib3", "mlflow", "requests")


def configure_logging(verbose: bool) -> None:
    """The operator's own debug logging with -v; the HTTP clients' stays off."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for name in QUIET_CLIENTS:
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(bool(getattr(args, "verbose", False)))
    from modelpilot.sources.kubernetes import NoCluster
    from modelpilot.sources.mlflow import use_http_defaults

    use_http_defaults()
    try:
        return int(args.func(args))
    except NoCluster as err:
        print(f"modelpilot {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
