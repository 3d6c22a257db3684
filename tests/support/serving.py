"""The test's stand-in for kubelet and the Deployment controller, for the model-server Deployments
of one namespace: each Deployment with replicas runs as one real example model-server process,
started from its pod template's env, and gets the status a controller would write.

One process serves however many replicas a Deployment asks for; its port depends on the pod's
role (stable or candidate), so Prometheus scrapes fixed targets. A pod template without
MODEL_VERSION gets the version the MLflow alias in MODEL_ALIAS points to at start, as a server
loading ``models:/NAME@champion`` would: restarting the stable (the restart annotation changes
the template) is what makes it serve a newly promoted version. While a Deployment restarts it
reports no ready replicas, as a Service's endpoints would, so traffic split by ready replicas
goes elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes

from tests.support.kube import REPO
from tests.support.process import kill, spawn, terminate

__all__ = ["DeploymentKubelet", "ServerProcess", "api_for", "load_example", "start_server"]

SERVER = REPO / "examples" / "model_server" / "server.py"
ROLE_LABEL = "modelpilot.dev/role"
# The load generator re-reads weights every second: a restart waits that long after its
# replicas went unready, so no request goes to a process that is about to stop.
DRAIN_SECONDS = 1.2


def load_example(name: str) -> ModuleType:
    """A module of examples/model_server (``loadgen``), which is not a package."""
    spec = importlib.util.spec_from_file_location(f"example_{name}", SERVER.parent / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def api_for(kubeconfig: Path) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(kubeconfig))


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    key: str
    version: str

    def stop(self) -> None:
        terminate(self.process, 10)


def start_server(env: Mapping[str, str], port: int, log: Path) -> subprocess.Popen[str]:
    """The example server as a container would run it; returns once it listens."""
    with log.open("a") as out:
        process = spawn(
            [sys.executable, str(SERVER), "--port", str(port)],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
        )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5) and "listening" in process.stdout.readline():
                return process
            if process.poll() is not None:
                raise RuntimeError(f"model server exited with {process.returncode}; see {log}")
    kill(process)
    raise RuntimeError(f"model server on port {port} did not start; see {log}")


class DeploymentKubelet:
    """Runs the namespace's model-server Deployments as processes until :meth:`stop`."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        ports: Mapping[str, int],
        resolve_alias: Callable[[str, str], str],
        workdir: Path,
    ):
        self.namespace, self.ports, self.resolve_alias = namespace, dict(ports), resolve_alias
        self.log = workdir / f"kubelet-{namespace}.log"
        self._apps = kubernetes.client.AppsV1Api(api_for(kubeconfig))
        self._servers: dict[str, ServerProcess] = {}
        self._ready: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{namespace}", daemon=True)
        self.starts: Counter[str] = Counter()
        self.error: BaseException | None = None

    def __enter__(self) -> DeploymentKubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for server in self._servers.values():
            server.stop()
        self._servers.clear()

    def ready(self, deployment: str) -> int:
        """Ready replicas as a Service's endpoints would count them."""
        with self._lock:
            return self._ready.get(deployment, 0)

    def version(self, deployment: str) -> str | None:
        server = self._servers.get(deployment)
        return server.version if server else None

    # -- the loop ------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for deployment in self._list():
                    self._sync(deployment)
            except Exception as error:  # noqa: BLE001 - kept for the test to raise
                self.error = error
                with self.log.open("a") as out:
                    out.write(f"kubelet error: {error!r}\n")
            self._stop.wait(0.3)

    def _list(self) -> list[dict[str, Any]]:
        response = self._apps.list_namespaced_deployment(self.namespace, _preload_content=False, _request_timeout=10)
        return json.loads(response.data)["items"]

    def _sync(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        name, generation, replicas = meta["name"], meta["generation"], spec.get("replicas", 1)
        template = spec["template"]
        env = {e["name"]: e.get("value", "") for e in template["spec"]["containers"][0].get("env", [])}
        key = json.dumps([env, (template["metadata"].get("annotations") or {})], sort_keys=True)
        server = self._servers.get(name)
        if replicas == 0:
            if server is not None:
                self._set_ready(name, 0)
                self._servers.pop(name).stop()
            self._write_status(deployment, replicas, replicas)
            return
        if server is None or server.key != key:
            self._write_status(deployment, replicas, 0)
            self._set_ready(name, 0)
            if server is not None:
                time.sleep(DRAIN_SECONDS)
                self._servers.pop(name).stop()
            role = "candidate" if template["metadata"].get("labels", {}).get(ROLE_LABEL) == "candidate" else "stable"
            version = env.get("MODEL_VERSION") or self.resolve_alias(env["MODEL_NAME"], env.get("MODEL_ALIAS", "champion"))
            process = start_server({**env, "MODEL_VERSION": version}, self.ports[role], self.log)
            self._servers[name] = ServerProcess(process, key, version)
            self.starts[name] += 1
            with self.log.open("a") as out:
                out.write(f"{time.time():.3f} started {name} version {version} generation {generation}\n")
        self._set_ready(name, replicas)
        self._write_status(deployment, replicas, replicas)

    def _set_ready(self, name: str, ready: int) -> None:
        with self._lock:
            self._ready[name] = ready

    def _write_status(self, deployment: dict[str, Any], replicas: int, ready: int) -> None:
        wanted = {
            "observedGeneration": deployment["metadata"]["generation"],
            "replicas": replicas,
            "updatedReplicas": ready,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        current = deployment.get("status") or {}
        if all(current.get(k, 0) == v for k, v in wanted.items()):
            return
        self._apps.patch_namespaced_deployment_status(
            deployment["metadata"]["name"],
            self.namespace,
            {"status": wanted},
            _preload_content=False,
            _request_timeout=10,
        )
        deployment["status"] = wanted
