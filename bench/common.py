"""What every benchmark shares: timing with warm-up and repeats, the result record, the
machine description, and the RESULT line each benchmark ends with."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Bench", "Settings", "Timing", "machine", "measure", "measure_rounds", "ratio", "seconds"]


@dataclass(frozen=True)
class Settings:
    """How big and how often: ``--quick`` shrinks the data, never the method."""

    quick: bool
    repeats: int
    warmup: int = 1


@dataclass(frozen=True)
class Timing:
    """Seconds of the measured runs (warm-up excluded): median, min and max."""

    median: float
    min: float
    max: float
    runs: tuple[float, ...]

    @classmethod
    def of(cls, runs: list[float]) -> Timing:
        return cls(statistics.median(runs), min(runs), max(runs), tuple(runs))

    def __str__(self) -> str:
        return f"{seconds(self.median)} [{seconds(self.min)}-{seconds(self.max)}]"


def measure(
    run: Callable[[], Any], *, repeats: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> tuple[Timing, Any]:
    """Time ``run`` ``repeats`` times after ``warmup`` untimed runs; returns the timing and the
    last run's result (for the agreement checks)."""
    result = None
    for _ in range(warmup):
        result = run()
    runs = []
    for _ in range(repeats):
        began = clock()
        result = run()
        runs.append(clock() - began)
    return Timing.of(runs), result


def measure_rounds(
    contenders: dict[str, Callable[[], Any]], *, repeats: int, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Like ``measure`` for several contenders, in rounds (each runs once per round), so that a
    change in the machine's load during the benchmark hits every contender alike."""
    results: dict[str, Any] = {}
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + repeats):
        for name, run in contenders.items():
            began = clock()
            results[name] = run()
            if round_ >= warmup:
                runs[name].append(clock() - began)
    return {name: Timing.of(values) for name, values in runs.items()}, results


def seconds(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else float("nan")


@dataclass
class Bench:
    """One benchmark's outcome: a table, notes, the figures for latest.json, one RESULT line."""

    name: str
    title: str
    header: tuple[str, ...] = ()
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    result: tuple[str, str] | None = None
    skipped: str | None = None
    seconds: float = 0.0

    def table(self) -> str:
        """A Markdown table: readable in a terminal and pasted as is into bench/README.md."""
        if not self.rows:
            return ""
        widths = [max(len(str(r[i])) for r in (self.header, *self.rows)) for i in range(len(self.header))]

        def line(cells: tuple[str, ...]) -> str:
            return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

        rule = "| " + " | ".join("-" * w for w in widths) + " |"
        return "\n".join([line(self.header), rule, *(line(r) for r in self.rows)])

    def report(self) -> str:
        parts = [f"## {self.title}", ""]
        if self.skipped:
            parts.append(f"skipped: {self.skipped}")
        else:
            parts.append(self.table())
        if self.notes:
            parts.append("")
            parts.extend(f"- {note}" for note in self.notes)
        return "\n".join(parts)

    def result_line(self) -> str:
        name, value = self.result or (self.name, "skipped")
        return f"RESULT {name} {value}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _lscpu() -> dict[str, str]:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, memory, Python."""
    cpu = _lscpu()
    memory_kib = 0
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    memory_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": cpu.get("Model name", platform.processor() or "unknown"),
        "architecture": cpu.get("Architecture", platform.machine()),
        "nproc": os.cpu_count(),
        "threads_per_core": cpu.get("Thread(s) per core"),
        "hypervisor": cpu.get("Hypervisor vendor"),
        "memory_gib": round(memory_kib / 1024**2, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }
