"""The example model server, run as real processes and driven by the load generator, exports the
generic metrics with counts that match the traffic it got."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.kube import wait_for
from tests.support.ports import free_port
from tests.support.process import kill, spawn, terminate

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "model_server"
MODEL = "fraud-detector"
# Every tolerance below is 4 binomial standard deviations: a correct server fails it about
# once in 16,000 runs (two-sided normal tail at 4 sigma, 6e-5).
SIGMAS = 4.0


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


loadgen = _load("loadgen")


@dataclass
class Server:
    process: subprocess.Popen[str]
    url: str

    def scrape(self) -> list[tuple[str, dict[str, str], float]]:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            text = response.read().decode()
        return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]

    def post(self, path: str, body: bytes) -> tuple[int, dict[str, object]]:
        request = urllib.request.Request(f"{self.url}{path}", body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


def _start(args: list[str], env: Mapping[str, str]) -> Server:
    """Launch the server like a kubelet would run its container, and wait for its ready line."""
    port = free_port()
    process = spawn(
        [sys.executable, str(EXAMPLE / "server.py"), *args, "--port", str(port)],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if selector.select(timeout=0.5):
                line = process.stdout.readline()
                if line.startswith("listening on "):
                    url = line.split()[-1]
                    assert url == f"http://127.0.0.1:{port}"
                    return Server(process, url)
                if not line:
                    break
    kill(process)
    output = process.communicate(timeout=10)[0]
    raise AssertionError(f"the model server did not start: {output}")


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """Start model servers (args, env); each is stopped with SIGTERM, and killed if it hangs."""
    started: list[Server] = []

    def start(*args: str, env: Mapping[str, str] | None = None) -> Server:
        server = _start(list(args), env or {})
        started.append(server)
        return server

    yield start
    for server in started:
        terminate(server.process, 10)


# The pod template's args are shared; what a canary changes comes through env, as the operator's
# candidate Deployment overrides env of the stable template.
COMMON_ARGS = ("--model", MODEL, "--latency-ms", "2", "--latency-jitter-ms", "1", "--feedback-fraction", "1")


def _within(observed: float, n: float, p: float) -> bool:
    """``observed`` successes of ``n`` Binomial(n, p) trials, within SIGMAS standard deviations."""
    return abs(observed - n * p) <= SIGMAS * math.sqrt(n * p * (1 - p))


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(v for n, lab, v in samples if n == name and labels.items() <= lab.items())


def test_traffic_split_and_error_rate_show_in_each_servers_metrics(start_server: Callable[..., Server]) -> None:
    stable = start_server(*COMMON_ARGS, env={"MODEL_VERSION": "3", "ACCURACY": "0.95", "SEED": "1"})
    canary = start_server(*COMMON_ARGS, env={"MODEL_VERSION": "4", "ERROR_RATE": "0.2", "ACCURACY": "0.8", "SEED": "2"})
    rps, duration = 40, 5.0
    generator = loadgen.LoadGenerator(
        {"stable": stable.url, "canary": canary.url}, lambda: {"stable": 50, "canary": 50}, rps, seed=7
    )
    stats = generator.run(duration)

    sent = {name: t.sent for name, t in stats.targets.items()}
    n = sum(sent.values())
    assert n <= rps * duration + 1, "the load generator exceeded its rate"
    assert n >= 0.5 * rps * duration, f"only {n} requests in {duration}s: {stats}"
    assert all(t.failures == 0 for t in stats.targets.values()), stats
    # target choice: Binomial(n, 1/2) given n
    assert _within(sent["stable"], n, 0.5), sent

    for server, name, version, error_rate, accuracy in (
        (stable, "stable", "3", 0.0, 0.95),
        (canary, "canary", "4", 0.2, 0.8),
    ):
        samples = server.scrape()
        ours = {"model": MODEL, "version": version}
        assert all(lab.items() >= ours.items() for n_, lab, _ in samples if n_.startswith("model_")), version

        # every request the generator made is counted, once, with its outcome
        success = _total(samples, "model_requests_total", status="success")
        errors = _total(samples, "model_requests_total", status="error")
        assert success + errors == sent[name]
        assert (success, errors) == (stats.targets[name].ok, stats.targets[name].errors)
        assert _total(samples, "model_request_duration_seconds_count") == sent[name]
        if error_rate == 0:
            assert errors == 0
        else:
            assert _within(errors, sent[name], error_rate), (errors, sent[name])

        # one instance per request: predictions, features and (fraction 1) feedback per success
        predictions = {lab["class"]: v for n_, lab, v in samples if n_ == "model_predictions_total"}
        assert set(predictions) == {"legit", "review", "fraud"}
        assert sum(predictions.values()) == success
        feedback = [(lab, v) for n_, lab, v in samples if n_ == "model_feedback_total"]
        assert {frozenset(lab) for lab, _ in feedback} == {frozenset({"model", "version", "predicted", "actual", "group"})}
        labelled = sum(v for _, v in feedback)
        right = sum(v for lab, v in feedback if lab["predicted"] == lab["actual"])
        assert labelled == success
        assert _within(right, labelled, accuracy), (right, labelled)

        for feature in ("amount", "distance_km", "hour"):
            buckets = [(lab, v) for n_, lab, v in samples if n_ == "model_feature_value_bucket" and lab["feature"] == feature]
            assert {frozenset(lab) for lab, _ in buckets} == {frozenset({"model", "version", "feature", "le"})}
            assert max(v for _, v in buckets) == success, feature
            assert _total(samples, "model_feature_value_count", feature=feature) == success
        categories = {lab["category"]: v for n_, lab, v in samples if n_ == "model_feature_category_total"}
        assert set(categories) == {"grocery", "gas", "online", "electronics", "travel"}
        assert sum(categories.values()) == success
        assert _total(samples, "model_batch_size_sum") == success


def test_weights_read_from_a_file_move_traffic_while_running(start_server: Callable[..., Server], tmp_path: Path) -> None:
    stable = start_server(*COMMON_ARGS, env={"MODEL_VERSION": "3"})
    canary = start_server(*COMMON_ARGS, env={"MODEL_VERSION": "4"})
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"stable": 100, "canary": 0}))
    generator = loadgen.LoadGenerator({"stable": stable.url, "canary": canary.url}, loadgen.WeightsFile(weights), rps=20, seed=1)
    generator.start(duration=30)
    try:
        wait_for(lambda: generator.stats.targets["stable"].sent > 10, timeout=20, what="traffic to stable")
        before = generator.stats.targets
        weights.write_text(json.dumps({"stable": 0, "canary": 100}))
        wait_for(lambda: generator.stats.targets["canary"].sent > 10, timeout=20, what="traffic to canary")
    finally:
        stats = generator.stop()

    assert before["stable"].sent > 10 and before["canary"].sent == 0
    assert stats.targets["canary"].sent > 10
    assert stats.targets["stable"].sent <= before["stable"].sent + 25  # at most ~1 s of 20 rps after the switch
    assert stats.elapsed_s < 10, "stop() ends the run at once"
    assert stats.weight_errors == 0


def test_server_finishes_and_exits_zero_on_sigterm(start_server: Callable[..., Server]) -> None:
    server = start_server("--model", MODEL, "--version", "3", "--latency-ms", "1")
    status, answer = server.post(f"/v1/models/{MODEL}:predict", json.dumps({"instances": [{"amount": 12.5}]}).encode())
    assert status == 200 and answer["version"] == "3" and len(answer["predictions"]) == 1  # type: ignore[arg-type]

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=10) == 0
    assert server.process.stdout is not None
    assert "stopped" in server.process.stdout.read()


def test_server_refuses_bad_requests_and_counts_them_as_errors(start_server: Callable[..., Server]) -> None:
    server = start_server("--model", MODEL, "--version", "3", "--latency-ms", "0")

    assert server.post(f"/v1/models/{MODEL}:predict", b"not json")[0] == 400
    assert server.post(f"/v1/models/{MODEL}:predict", b'{"instances": []}')[0] == 400
    assert server.post("/v1/models/other-model:predict", b'{"instances": [{}]}')[0] == 404
    assert server.post(f"/v1/models/{MODEL}:feedback", b'{"predicted": "fraud", "actual": "legit", "group": "eu"}') == (
        200,
        {"recorded": 1},
    )
    assert server.post(f"/v1/models/{MODEL}:feedback", b'{"predicted": "cat", "actual": "legit"}')[0] == 400
    with urllib.request.urlopen(f"{server.url}/healthz", timeout=10) as response:
        assert response.status == 200

    samples = server.scrape()
    assert _total(samples, "model_requests_total", status="error") == 2  # the 404 never reached the model
    assert _total(samples, "model_feedback_total", predicted="fraud", actual="legit", group="eu") == 1


def test_loadgen_cli_stops_by_itself_and_prints_its_totals(start_server: Callable[..., Server]) -> None:
    server = start_server("--model", MODEL, "--version", "3", "--latency-ms", "1")
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE / "loadgen.py"),
            "--target",
            f"stable={server.url}",
            "--weights",
            "stable=1",
            "--rps",
            "10",
            "--duration",
            "1.5",
            "--seed",
            "3",
            "--feature-shift",
            "amount_scale=2",
            "--feature-shift",
            "missing_rate=0.5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    totals = json.loads(result.stdout)
    assert 5 <= totals["targets"]["stable"]["ok"] <= 16
    missing = _total(server.scrape(), "model_feature_missing_total", feature="distance_km")
    assert 0 < missing < totals["targets"]["stable"]["ok"]


def test_loadgen_sends_only_to_loopback_addresses() -> None:
    with pytest.raises(ValueError, match="loopback"):
        loadgen.LoadGenerator({"stable": "http://10.0.0.1:8501"}, lambda: {"stable": 1}, rps=1)
    with pytest.raises(ValueError, match="loopback"):
        loadgen.LoadGenerator({"stable": "http://example.com"}, lambda: {"stable": 1}, rps=1)
    loadgen.LoadGenerator({"a": "http://localhost:1", "b": "http://[::1]:2"}, lambda: {"a": 1}, rps=1)
