"""A load generator for the example model server: seeded feature rows, sent at a bounded rate
for a bounded time, split between targets (stable, canary) by weights that may change while it
runs.

CLI::

    python examples/model_server/loadgen.py --target stable=http://127.0.0.1:8501 \\
        --target canary=http://127.0.0.1:8502 --weights stable=90,canary=10 \\
        --rps 50 --duration 60 --seed 1 [--feature-shift amount_scale=1.5 ...]

``--weights-file PATH`` instead of ``--weights`` re-reads ``{"stable": 90, "canary": 10}``
from the file every second, so a test can write there the weights a router holds. In-process,
:class:`LoadGenerator` does the same with any ``weights_provider`` callable. Only loopback
targets are accepted.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import ipaddress
import json
import math
import random
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "FeatureShift",
    "LoadGenerator",
    "LoadStats",
    "RowSampler",
    "TargetStats",
    "WeightsFile",
    "parse_weights",
]

MERCHANTS = ("grocery", "gas", "online", "electronics", "travel")
MERCHANT_WEIGHTS = (0.35, 0.2, 0.25, 0.1, 0.1)
REFRESH_S = 1.0


@dataclass(frozen=True)
class FeatureShift:
    """Drift knobs; the defaults draw the reference distribution.

    ``amount_scale`` multiplies the amount, ``distance_shift`` adds kilometres, a share
    ``merchant_share`` of rows gets merchant ``merchant``, a share ``missing_rate`` of rows has
    no ``distance_km``.
    """

    amount_scale: float = 1.0
    distance_shift: float = 0.0
    merchant: str | None = None
    merchant_share: float = 0.0
    missing_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("merchant_share", "missing_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        if self.amount_scale <= 0:
            raise ValueError(f"amount_scale must be positive, not {self.amount_scale}")
        if self.merchant_share > 0 and not self.merchant:
            raise ValueError("merchant_share needs a merchant, e.g. merchant=online")

    @classmethod
    def parse(cls, items: Sequence[str]) -> FeatureShift:
        """From ``["amount_scale=1.5", "merchant=online", ...]``."""
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for item in items:
            name, sep, text = item.partition("=")
            if not sep or name not in types:
                raise ValueError(f"--feature-shift takes NAME=VALUE with NAME among {sorted(types)}, not {item!r}")
            values[name] = text if name == "merchant" else float(text)
        return cls(**values)


class RowSampler:
    """Feature rows ``{amount, distance_km, hour, merchant}`` from a seeded stream.

    Every row consumes the same draws whatever the shift, so two samplers with one seed and
    different shifts produce paired rows.
    """

    def __init__(self, seed: int, shift: FeatureShift | None = None) -> None:
        self.shift = shift or FeatureShift()
        self._rng = random.Random(seed)

    def row(self) -> dict[str, Any]:
        rng, shift = self._rng, self.shift
        amount = math.exp(rng.gauss(3.5, 1.0)) * shift.amount_scale
        distance = max(0.0, rng.expovariate(0.1) + shift.distance_shift)
        hour = rng.randrange(24)
        merchant = rng.choices(MERCHANTS, MERCHANT_WEIGHTS)[0]
        forced, missing = rng.random(), rng.random()
        if forced < shift.merchant_share:
            merchant = str(shift.merchant)
        return {
            "amount": round(amount, 2),
            "distance_km": None if missing < shift.missing_rate else round(distance, 2),
            "hour": hour,
            "merchant": merchant,
        }


@dataclass
class TargetStats:
    """Requests to one target: ``ok`` (2xx), ``errors`` (other HTTP status), ``failures``
    (no answer: refused, reset, timed out)."""

    sent: int = 0
    ok: int = 0
    errors: int = 0
    failures: int = 0
    predictions: int = 0


@dataclass(frozen=True)
class LoadStats:
    """What a run did. ``dropped`` ticks found ``max_in_flight`` requests still open; ``idle``
    ticks had no target with a positive weight."""

    targets: dict[str, TargetStats]
    dropped: int = 0
    idle: int = 0
    weight_errors: int = 0
    last_weight_error: str = ""
    elapsed_s: float = 0.0
    weights: dict[str, float] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(t.sent for t in self.targets.values())


class WeightsFile:
    """A weights provider reading ``{"name": weight, ...}`` from a JSON file on every call."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __call__(self) -> Mapping[str, float]:
        return json.loads(self.path.read_text())


def parse_weights(text: str) -> dict[str, float]:
    """``"stable=90,canary=10"`` -> ``{"stable": 90.0, "canary": 10.0}``."""
    weights = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or not name:
            raise ValueError(f"weights look like stable=90,canary=10, not {text!r}")
        weights[name] = float(value)
    return weights


def _loopback(name: str, url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "http" or not loopback:
        raise ValueError(f"target {name}: only http:// loopback addresses are allowed, not {url!r}")
    return host, parts.port or 80, parts.path.rstrip("/")


class LoadGenerator:
    """Sends one prediction request every ``1/rps`` seconds, to a target drawn by weight.

    ``targets`` maps a name to a base URL (``http://127.0.0.1:8501``); ``weights_provider``
    returns name -> weight and is called once a second (a failing call or a bad answer keeps
    the previous weights; before the first good one nothing is sent). The schedule is open
    loop: a tick that finds ``max_in_flight`` requests still open is dropped rather than
    queued, so neither the rate nor the run's end can slip. Target choice and rows come from
    two streams seeded by ``seed``.
    """

    def __init__(
        self,
        targets: Mapping[str, str],
        weights_provider: Callable[[], Mapping[str, float]],
        rps: float,
        seed: int = 0,
        *,
        model: str = "fraud-detector",
        shift: FeatureShift | None = None,
        batch_size: int = 1,
        timeout_s: float = 5.0,
        max_in_flight: int = 16,
    ) -> None:
        if not targets:
            raise ValueError("give at least one target")
        if not 0 < rps <= 10_000:
            raise ValueError(f"rps must be in (0, 10000], not {rps}")
        if batch_size < 1 or max_in_flight < 1:
            raise ValueError("batch_size and max_in_flight must be at least 1")
        self._targets = {name: _loopback(name, url) for name, url in targets.items()}
        self._provider = weights_provider
        self.rps = float(rps)
        self.model = model
        self.batch_size = batch_size
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self._choice = random.Random(f"{seed}:targets")
        self._rows = RowSampler(seed, shift)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stats = LoadStats({name: TargetStats() for name in targets})
        self._counters = {"dropped": 0, "idle": 0, "weight_errors": 0}
        self._last_error = ""
        self._weights: dict[str, float] = {}
        self._elapsed = 0.0

    # -- control ----------------------------------------------------------------------------

    def run(self, duration: float) -> LoadStats:
        """Send load for ``duration`` seconds (or until :meth:`stop`), wait for the requests
        still open, and return the totals."""
        if not 0 < duration < math.inf:
            raise ValueError(f"duration must be a positive number of seconds, not {duration}")
        start = time.monotonic()
        end = start + duration
        next_refresh = start
        tick = 0
        in_flight = threading.BoundedSemaphore(self.max_in_flight)
        with ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="loadgen") as pool:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= end:
                    break
                if now >= next_refresh:
                    self._refresh()
                    next_refresh = now + REFRESH_S
                due = start + tick / self.rps
                if due > now:
                    if self._stop.wait(min(due, end) - now):
                        break
                    continue
                if now - due > 1.0:  # fell behind (a stalled machine): skip, never burst
                    tick = math.ceil((now - start) * self.rps)
                    continue
                tick += 1
                target = self._pick()
                body = json.dumps({"instances": [self._rows.row() for _ in range(self.batch_size)]})
                if target is None:
                    self._count("idle")
                elif not in_flight.acquire(blocking=False):
                    self._count("dropped")
                else:
                    pool.submit(self._send, target, body, in_flight)
        self._elapsed = time.monotonic() - start
        return self.stats

    def start(self, duration: float) -> None:
        """:meth:`run` in a background thread."""
        if self._thread is not None:
            raise RuntimeError("a LoadGenerator runs once; create a new one")
        self._thread = threading.Thread(target=self.run, args=(duration,), name="loadgen", daemon=True)
        self._thread.start()

    def stop(self) -> LoadStats:
        """Stop sending, wait for the requests still open, return the totals."""
        self._stop.set()
        return self.join()

    def join(self, timeout: float | None = None) -> LoadStats:
        """Wait for a :meth:`start`-ed run to finish."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.stats

    @property
    def running(self) -> bool:
        """Whether a :meth:`start`-ed run is still going."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def stats(self) -> LoadStats:
        """A snapshot of the totals so far."""
        with self._lock:
            return LoadStats(
                targets={n: dataclasses.replace(s) for n, s in self._stats.targets.items()},
                dropped=self._counters["dropped"],
                idle=self._counters["idle"],
                weight_errors=self._counters["weight_errors"],
                last_weight_error=self._last_error,
                elapsed_s=self._elapsed,
                weights=dict(self._weights),
            )

    # -- work -------------------------------------------------------------------------------

    def _refresh(self) -> None:
        try:
            raw = dict(self._provider())
            unknown = sorted(set(raw) - set(self._targets))
            if unknown:
                raise ValueError(f"weights name unknown targets {unknown}; targets are {sorted(self._targets)}")
            weights = {name: float(raw.get(name, 0.0)) for name in self._targets}
            if any(not math.isfinite(w) or w < 0 for w in weights.values()):
                raise ValueError(f"weights must be finite and non-negative, not {raw}")
        except Exception as error:  # noqa: BLE001 - a half-written file must not end the run
            with self._lock:
                self._counters["weight_errors"] += 1
                self._last_error = f"{type(error).__name__}: {error}"
            return
        with self._lock:
            self._weights = weights

    def _pick(self) -> str | None:
        with self._lock:
            weights = self._weights
        draw = self._choice.random()  # one draw per tick whatever the weights
        total = sum(weights.values())
        if total <= 0:
            return None
        running = 0.0
        for name, weight in weights.items():
            running += weight
            if draw * total < running:
                return name
        return next(n for n, w in reversed(weights.items()) if w > 0)

    def _count(self, what: str) -> None:
        with self._lock:
            self._counters[what] += 1

    def _send(self, target: str, body: str, in_flight: threading.BoundedSemaphore) -> None:
        host, port, prefix = self._targets[target]
        outcome, predictions = "failures", 0
        try:
            connection = http.client.HTTPConnection(host, port, timeout=self.timeout_s)
            try:
                connection.request(
                    "POST", f"{prefix}/v1/models/{self.model}:predict", body,
                    {"Content-Type": "application/json"},
                )
                response = connection.getresponse()
                payload = response.read()
            finally:
                connection.close()
            if 200 <= response.status < 300:
                outcome = "ok"
                predictions = len(json.loads(payload).get("predictions", []))
            else:
                outcome = "errors"
        except (OSError, http.client.HTTPException, ValueError):
            pass
        finally:
            in_flight.release()
            with self._lock:
                stats = self._stats.targets[target]
                stats.sent += 1
                setattr(stats, outcome, getattr(stats, outcome) + 1)
                stats.predictions += predictions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", action="append", required=True, metavar="NAME=URL",
                        help="a target, repeatable: stable=http://127.0.0.1:8501")
    weights = parser.add_mutually_exclusive_group(required=True)
    weights.add_argument("--weights", help="fixed weights: stable=90,canary=10")
    weights.add_argument("--weights-file", help="JSON {name: weight} re-read every second")
    parser.add_argument("--rps", type=float, default=20.0, help="requests per second (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (default 60)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="fraud-detector")
    parser.add_argument("--batch-size", type=int, default=1, help="rows per request (default 1)")
    parser.add_argument("--feature-shift", action="append", default=[], metavar="NAME=VALUE",
                        help="drift knob, repeatable: amount_scale, distance_shift, merchant, "
                             "merchant_share, missing_rate")
    args = parser.parse_args(argv)
    try:
        targets = dict(_pair(t) for t in args.target)
        provider: Callable[[], Mapping[str, float]]
        if args.weights_file:
            provider = WeightsFile(args.weights_file)
        else:
            fixed = parse_weights(args.weights)
            provider = lambda: fixed  # noqa: E731
        generator = LoadGenerator(
            targets, provider, args.rps, args.seed, model=args.model,
            shift=FeatureShift.parse(args.feature_shift), batch_size=args.batch_size,
        )
    except ValueError as error:
        parser.error(str(error))
    # SIGTERM/SIGINT end the run early but still print the totals.
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    generator.start(args.duration)
    while generator.running:
        if signal.sigtimedwait(stop_signals, 0.2) is not None:
            generator.stop()
    stats = generator.join()
    print(json.dumps({
        "elapsed_s": round(stats.elapsed_s, 3),
        "targets": {n: dataclasses.asdict(s) for n, s in stats.targets.items()},
        "dropped": stats.dropped, "idle": stats.idle, "weight_errors": stats.weight_errors,
        "last_weight_error": stats.last_weight_error,
    }), flush=True)
    return 0


def _pair(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name:
        raise ValueError(f"--target takes NAME=URL, not {text!r}")
    return name, url


if __name__ == "__main__":
    sys.exit(main())
