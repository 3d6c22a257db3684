"""The real services of benchmarks 3 and 4, started once and shared: a Prometheus holding the
fleet's backfilled history, and (on first use) the control plane with the CRDs applied."""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from tests.support.controlplane import ControlPlane
from tests.support.kube import REPO, Cluster
from tests.support.prometheus import PrometheusServer

from .common import Settings
from .fleet import Fleet, fleet_history

__all__ = ["Stack", "fleet_models"]
CRD_NAMES = ("modelmonitors.modelpilot.dev", "retrainpolicies.modelpilot.dev", "canaryreleases.modelpilot.dev")


def fleet_models(settings: Settings) -> int:
    """Models in Prometheus: 100, or 25 with --quick (the fan-out benchmark queries all of them)."""
    return 25 if settings.quick else 100


class Stack:
    def __init__(self, workdir: Path, fleet: Fleet, prometheus: PrometheusServer, facts: dict[str, float]):
        self.workdir = workdir
        self.fleet = fleet
        self.prometheus = prometheus
        self.facts = facts
        self.plane: ControlPlane | None = None
        self._cluster: Cluster | None = None

    @classmethod
    def start(cls, settings: Settings, *, log=print) -> Stack:
        workdir = Path(tempfile.mkdtemp(prefix="modelpilot-bench-stack-"))
        try:
            # Two days: the drift baseline is the first day, the current window the second.
            step = timedelta(hours=1) if settings.quick else timedelta(minutes=15)
            began = time.perf_counter()
            models = fleet_models(settings)
            fleet = fleet_history(models, step=step)
            history = workdir / "history.om"
            samples = fleet.history.write_openmetrics(history)
            generated = time.perf_counter() - began
            prometheus = PrometheusServer(workdir / "prometheus", backfill=[history], start_timeout=300).start()
            history.unlink()
            facts = {
                "models": models,
                "features_per_model": len(fleet.features),
                "series": len(fleet.history._rows),
                "samples": samples,
                "step_seconds": step.total_seconds(),
                "generate_seconds": round(generated, 1),
                "backfill_seconds": round(prometheus.backfill_seconds, 1),
            }
            log(
                f"  Prometheus: {models} models x {len(fleet.features)} features, {facts['series']:,} series, "
                f"{samples:,} samples at a {step} step over 2 days (generated in {generated:.0f}s, "
                f"backfilled in {prometheus.backfill_seconds:.0f}s)"
            )
            return cls(workdir, fleet, prometheus, facts)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise

    def cluster(self, *, log=print) -> Cluster:
        """The control plane (started on first use) with the CRDs established."""
        if self._cluster is None:
            began = time.perf_counter()
            self.plane = ControlPlane(self.workdir).start()
            cluster = Cluster(self.plane.kubeconfig)
            cluster.kubectl("apply", "-f", str(REPO / "crds"))
            cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES))
            self._cluster = cluster
            log(f"  control plane ready with the CRDs in {time.perf_counter() - began:.0f}s")
        return self._cluster

    def close(self) -> None:
        self.prometheus.stop()
        if self.plane is not None:
            self.plane.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)
