"""A small instrumented model server: a toy fraud classifier with knobs for errors, latency and
accuracy, exporting the ``generic`` modelpilot metrics on ``/metrics``.

Run ``python examples/model_server/server.py --help`` for the flags; every flag also reads an
environment variable (the flag wins), so a canary Deployment can change a knob with an env
override. Endpoints:

- ``POST /v1/models/<model>:predict``  ``{"instances": [{feature: value, ...}, ...]}`` ->
  ``{"model", "version", "predictions": [class, ...]}``
- ``POST /v1/models/<model>:feedback`` ``{"predicted", "actual", "group"?}`` or a list of them
- ``GET /v1/models/<model>`` (metadata), ``GET /metrics``, ``GET /healthz``

Ground truth: every row has a true class, derived from its features by fixed rules
(:func:`true_class`). The "model" answers the true class with probability ``--accuracy``, and
another class otherwise; which rows it gets wrong is a hash of the row and ``--seed``, so the
same row always gets the same answer. For a fraction ``--feedback-fraction`` of predictions the
server records the true class in ``model_feedback_total`` itself, as if labels had arrived.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from modelpilot.instrument import ModelMetrics

CLASSES = ("legit", "review", "fraud")
NUMERICAL = ("amount", "distance_km", "hour")
CATEGORICAL = ("merchant",)
FEATURES = NUMERICAL + CATEGORICAL
FEATURE_BUCKETS = {
    "amount": (5, 10, 20, 35, 50, 75, 100, 150, 250, 500, 1000),
    "distance_km": (1, 2, 5, 10, 15, 20, 30, 50, 100),
    "hour": (2, 5, 8, 11, 14, 17, 20, 23),
}
MERCHANTS = ("grocery", "gas", "online", "electronics", "travel")
RISKY_MERCHANTS = frozenset({"online", "electronics", "travel"})
MAX_BODY = 1 << 20
MAX_INSTANCES = 1000

_PATH = re.compile(r"^/v1/models/(?P<model>[^/:]+)(?::(?P<verb>predict|feedback))?$")


def true_class(row: Mapping[str, Any]) -> str:
    """The ground truth of a row: risk points for a large amount, a long distance, night hours
    and a risky merchant; 4+ points is fraud, 3 is review. Missing features score nothing."""
    points = 0
    amount, distance, hour = (_number(row.get(f)) for f in NUMERICAL)
    if amount is not None:
        points += 2 if amount > 150 else 1 if amount > 60 else 0
    if distance is not None:
        points += 2 if distance > 30 else 1 if distance > 15 else 0
    if hour is not None and 0 <= hour < 6:
        points += 1
    if row.get("merchant") in RISKY_MERCHANTS:
        points += 1
    return "fraud" if points >= 4 else "review" if points == 3 else "legit"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class ToyModel:
    """Right with probability ``accuracy``, deterministically per (seed, row)."""

    def __init__(self, accuracy: float, seed: int) -> None:
        self.accuracy = accuracy
        self.seed = seed

    def predict(self, row: Mapping[str, Any]) -> tuple[str, str]:
        """(predicted, actual) for one row."""
        actual = true_class(row)
        key = json.dumps([self.seed, row], sort_keys=True, default=str).encode()
        digest = hashlib.blake2b(key, digest_size=16).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        if u < self.accuracy:
            return actual, actual
        others = [c for c in CLASSES if c != actual]
        return others[digest[8] % len(others)], actual


class Behaviour:
    """The simulated failures and latency, drawn from one seeded stream."""

    def __init__(self, error_rate: float, latency_ms: float, jitter_ms: float, feedback: float, seed: int):
        self.error_rate = error_rate
        self.latency_ms = latency_ms
        self.jitter_ms = jitter_ms
        self.feedback = feedback
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def request(self) -> tuple[float, bool]:
        """(seconds to sleep, whether the request fails)."""
        with self._lock:
            delay = max(0.0, self._rng.gauss(self.latency_ms, self.jitter_ms)) / 1000
            return delay, self._rng.random() < self.error_rate

    def labelled(self) -> bool:
        """Whether the ground truth of one prediction arrives."""
        with self._lock:
            return self._rng.random() < self.feedback


class ModelServer(ThreadingHTTPServer):
    # Join in-flight requests on close, so SIGTERM never cuts an answer in half.
    daemon_threads = False

    def __init__(self, address: tuple[str, int], args: argparse.Namespace) -> None:
        self.model_name: str = args.model
        self.version: str = args.version
        self.group_feature: str | None = args.group_feature or None
        self.model = ToyModel(args.accuracy, args.seed)
        self.behaviour = Behaviour(
            args.error_rate, args.latency_ms, args.latency_jitter_ms, args.feedback_fraction, args.seed
        )
        self.metrics = ModelMetrics(
            args.model, args.version, feature_buckets=FEATURE_BUCKETS, classes=CLASSES,
            feature_categories={"merchant": MERCHANTS},
        )
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: ModelServer
    server_version = "modelpilot-example/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # one line per request would cost more than the model

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        srv = self.server
        if self.path == "/metrics":
            body, content_type = srv.metrics.render(self.headers.get("Accept"))
            self._send(200, body, content_type)
        elif self.path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        elif (match := _PATH.match(self.path)) and not match["verb"] and match["model"] == srv.model_name:
            self._json(200, {"model": srv.model_name, "version": srv.version, "classes": list(CLASSES),
                             "features": list(FEATURES)})
        else:
            self._json(404, {"error": f"no such resource: {self.path}"})

    def do_POST(self) -> None:  # noqa: N802
        match = _PATH.match(self.path)
        if not match or not match["verb"] or match["model"] != self.server.model_name:
            self._json(404, {"error": f"no such resource: {self.path}"})
        elif match["verb"] == "predict":
            self._predict()
        else:
            self._feedback()

    def _predict(self) -> None:
        srv = self.server
        with srv.metrics.track() as request:
            status, answer = self._answer()
            if status != 200:
                request.fail()
        self._json(status, answer)

    def _answer(self) -> tuple[int, dict[str, Any]]:
        srv = self.server
        try:
            rows = _instances(self._body())
        except ValueError as error:
            return 400, {"error": str(error)}
        delay, fails = srv.behaviour.request()
        time.sleep(delay)
        if fails:
            return 500, {"error": "simulated model failure (--error-rate)"}
        srv.metrics.observe_batch(len(rows))
        predictions = []
        for row in rows:
            srv.metrics.observe_features({f: row.get(f) for f in FEATURES})
            predicted, actual = srv.model.predict(row)
            srv.metrics.observe_prediction(predicted)
            if srv.behaviour.labelled():
                group = str(row.get(srv.group_feature, "")) if srv.group_feature else ""
                srv.metrics.observe_feedback(predicted, actual, group)
            predictions.append(predicted)
        return 200, {"model": srv.model_name, "version": srv.version, "predictions": predictions}

    def _feedback(self) -> None:
        try:
            body = self._body()
            items = body if isinstance(body, list) else [body]
            labels = [_label(item) for item in items]
        except ValueError as error:
            self._json(400, {"error": str(error)})
            return
        for predicted, actual, group in labels:
            self.server.metrics.observe_feedback(predicted, actual, group)
        self._json(200, {"recorded": len(labels)})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 < length <= MAX_BODY:
            raise ValueError(f"the body must be 1 to {MAX_BODY} bytes of JSON, with a Content-Length")
        try:
            return json.loads(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"the body is not JSON: {error}") from None

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode() + b"\n", "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up; the request is already counted


def _instances(body: Any) -> list[dict[str, Any]]:
    rows = body.get("instances") if isinstance(body, dict) else None
    if not isinstance(rows, list) or not 0 < len(rows) <= MAX_INSTANCES:
        raise ValueError(f'expected {{"instances": [row, ...]}} with 1 to {MAX_INSTANCES} rows')
    for row in rows:
        if not isinstance(row, dict):
            raise ValueError("each instance must be an object of feature values")
        for name in FEATURES:
            value = row.get(name)
            if value is not None and not isinstance(value, (int, float, str)):
                raise ValueError(f"feature {name!r} must be a number, a string or null")
    return rows


def _label(item: Any) -> tuple[str, str, str]:
    if not isinstance(item, dict) or not {"predicted", "actual"} <= item.keys():
        raise ValueError('feedback is {"predicted": class, "actual": class, "group": optional}')
    predicted, actual, group = (str(item.get(k, "")) for k in ("predicted", "actual", "group"))
    if predicted not in CLASSES or actual not in CLASSES:
        raise ValueError(f"predicted and actual must be among {list(CLASSES)}")
    return predicted, actual, group


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def parse_args(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> argparse.Namespace:
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])

    def option(flag: str, var: str, default: str, help: str, **kw: Any) -> None:
        parser.add_argument(flag, default=env.get(var, default), help=f"{help} (env {var}; default {default})", **kw)

    option("--model", "MODEL_NAME", "fraud-detector", "model name, the `model` label")
    option("--version", "MODEL_VERSION", "1", "model version, the `version` label")
    option("--host", "HOST", "127.0.0.1", "address to listen on")
    option("--port", "PORT", "8501", "port to listen on, 0 for any free one", type=int)
    option("--error-rate", "ERROR_RATE", "0.0", "share of requests answered with HTTP 500", type=_fraction)
    option("--latency-ms", "LATENCY_MS", "20", "mean added latency per request", type=_non_negative)
    option("--latency-jitter-ms", "LATENCY_JITTER_MS", "5", "standard deviation of the latency",
           type=_non_negative)
    option("--accuracy", "ACCURACY", "0.95", "share of rows predicted right", type=_fraction)
    option("--feedback-fraction", "FEEDBACK_FRACTION", "0.5",
           "share of predictions whose ground truth the server records", type=_fraction)
    option("--group-feature", "GROUP_FEATURE", "", "feature whose value labels feedback `group`")
    option("--seed", "SEED", "1", "seed of the errors, latency, mistakes and feedback", type=int)
    args = parser.parse_args(argv)
    if not args.model or not args.version:
        parser.error("--model and --version must not be empty")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Block the stop signals before any thread exists (threads inherit the mask), then wait for
    # them here: no handler runs at an arbitrary point, so none can deadlock on a lock.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    server = ModelServer((args.host, args.port), args)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    signal.sigwait(stop_signals)
    server.shutdown()
    server.server_close()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
