"""Compares the GPU exporter with nvidia-smi on a machine with an NVIDIA GPU, before, during and after a load.

Run by gpu_check.sh (which installs the carried wheels and sets PYTHONPATH); ``gpu_check.py load
SECONDS`` is the load process it starts: a torch matmul loop when torch sees the GPU, else a
spinning kernel through the CUDA driver API (PTX compiled by the driver), so no framework is needed.
Exit status 0 only when every compared metric agrees and the load was visible in both.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import NamedTuple

MIB = 1024 * 1024
LOAD_MIB = 4096  # held by the load process, so its per-process line is unmistakable
SMI_FIELDS = ("index", "utilization.gpu", "memory.used", "memory.free", "temperature.gpu", "power.draw", "clocks.sm")
# metric -> (exporter series, nvidia-smi field)
COMPARED = {
    "util %": ("DCGM_FI_DEV_GPU_UTIL", "utilization.gpu"),
    "fb used MiB": ("DCGM_FI_DEV_FB_USED", "memory.used"),
    "fb free MiB": ("DCGM_FI_DEV_FB_FREE", "memory.free"),
    "temp C": ("DCGM_FI_DEV_GPU_TEMP", "temperature.gpu"),
    "power W": ("DCGM_FI_DEV_POWER_USAGE", "power.draw"),
    "sm clock MHz": ("DCGM_FI_DEV_SM_CLOCK", "clocks.sm"),
}


class Tolerance(NamedTuple):
    agrees: Callable[[float, float], bool]
    misses_allowed: int  # pairs read at a load transition may straddle it
    text: str


TOLERANCES = {
    "util %": Tolerance(lambda a, b: abs(a - b) <= 20, 1, "within 20 points (utilisation is a sampled average)"),
    "fb used MiB": Tolerance(lambda a, b: abs(a - b) <= 4, 0, "within 4 MiB"),
    "fb free MiB": Tolerance(lambda a, b: abs(a - b) <= 4, 0, "within 4 MiB"),
    "temp C": Tolerance(lambda a, b: abs(a - b) <= 2, 0, "within 2 C"),
    "power W": Tolerance(lambda a, b: abs(a - b) <= max(0.10 * max(a, b), 5.0), 1, "within 10% (or 5 W)"),
    "sm clock MHz": Tolerance(lambda a, b: abs(a - b) <= max(0.15 * max(a, b), 50.0), 1, "within 15% (boost moves)"),
}

PTX = r"""
.version 6.0
.target sm_50
.address_size 64

.visible .entry spin(.param .u64 out, .param .u32 iterations)
{
    .reg .pred %p<2>;
    .reg .b32 %r<8>;
    .reg .f32 %f<4>;
    .reg .b64 %rd<5>;

    ld.param.u64 %rd1, [out];
    ld.param.u32 %r1, [iterations];
    mov.u32 %r2, %ctaid.x;
    mov.u32 %r3, %ntid.x;
    mov.u32 %r4, %tid.x;
    mad.lo.s32 %r5, %r2, %r3, %r4;
    cvt.rn.f32.u32 %f1, %r5;
    mov.f32 %f2, 0f3F800000;
    mov.u32 %r6, 0;
SPIN:
    fma.rn.f32 %f1, %f1, 0f3F7FFFEF, %f2;
    add.u32 %r6, %r6, 1;
    setp.lt.u32 %p1, %r6, %r1;
    @%p1 bra SPIN;
    cvta.to.global.u64 %rd2, %rd1;
    mul.wide.u32 %rd3, %r5, 4;
    add.s64 %rd4, %rd2, %rd3;
    st.global.f32 [%rd4], %f1;
    ret;
}
"""


def load_with_torch(seconds: float) -> bool:
    try:
        import torch  # type: ignore[import-not-found]  # present on some GPU machines only
    except Exception:
        return False
    if not torch.cuda.is_available():
        return False
    held = torch.ones(LOAD_MIB * MIB, dtype=torch.uint8, device="cuda")
    matrix = torch.randn(8192, 8192, device="cuda")
    torch.cuda.synchronize()
    print(f"load: torch {torch.__version__}, pid {os.getpid()}, holding {LOAD_MIB} MiB", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(10):
            matrix = torch.tanh(matrix @ matrix)
        torch.cuda.synchronize()
    del held
    return True


def load_with_cuda_driver(seconds: float) -> bool:
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    c_void_p, c_uint, c_size_t, c_uint64 = ctypes.c_void_p, ctypes.c_uint, ctypes.c_size_t, ctypes.c_uint64
    cuda.cuMemAlloc_v2.argtypes = [ctypes.POINTER(c_uint64), c_size_t]
    cuda.cuMemsetD8_v2.argtypes = [c_uint64, ctypes.c_ubyte, c_size_t]
    cuda.cuLaunchKernel.argtypes = [c_void_p, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_void_p,
                                    ctypes.POINTER(c_void_p), ctypes.POINTER(c_void_p)]  # fmt: skip

    def check(result: int, call: str) -> None:
        if result != 0:
            raise RuntimeError(f"{call} failed with CUDA error {result}")

    check(cuda.cuInit(0), "cuInit")
    device, context = ctypes.c_int(), c_void_p()
    check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
    check(cuda.cuCtxCreate_v2(ctypes.byref(context), 0, device), "cuCtxCreate")
    buffer = c_uint64()
    check(cuda.cuMemAlloc_v2(ctypes.byref(buffer), LOAD_MIB * MIB), "cuMemAlloc")
    check(cuda.cuMemsetD8_v2(buffer, 1, LOAD_MIB * MIB), "cuMemsetD8")  # touch every page
    module, kernel = c_void_p(), c_void_p()
    check(cuda.cuModuleLoadData(ctypes.byref(module), PTX.encode() + b"\0"), "cuModuleLoadData")
    check(cuda.cuModuleGetFunction(ctypes.byref(kernel), module, b"spin"), "cuModuleGetFunction")
    iterations = c_uint(1 << 12)
    params = (c_void_p * 2)(ctypes.cast(ctypes.byref(buffer), c_void_p), ctypes.cast(ctypes.byref(iterations), c_void_p))

    def launch() -> float:
        started = time.monotonic()
        check(cuda.cuLaunchKernel(kernel, 4096, 1, 1, 256, 1, 1, 0, None, params, None), "cuLaunchKernel")
        check(cuda.cuCtxSynchronize(), "cuCtxSynchronize")
        return time.monotonic() - started

    while launch() < 0.05 and iterations.value < (1 << 30):
        iterations.value *= 2  # until one launch keeps the GPU busy for a while
    print(f"load: CUDA driver API kernel, pid {os.getpid()}, holding {LOAD_MIB} MiB", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        launch()
    return True


def run_load(seconds: float) -> int:
    choice = os.environ.get("GPU_CHECK_LOAD", "auto")
    if choice in ("auto", "torch") and load_with_torch(seconds):
        return 0
    if choice in ("auto", "cuda") and load_with_cuda_driver(seconds):
        return 0
    print("load: unavailable (no torch with CUDA, no libcuda.so.1)", flush=True)
    return 3


class Moment(NamedTuple):
    label: str
    phase: str  # idle-before, load, idle-after
    exporter: dict[str, dict[str, float]]  # gpu -> series -> value
    processes: dict[str, dict[str, str | float]]  # pid -> labels and value
    smi: dict[str, dict[str, float]]  # gpu -> field -> value
    smi_apps: dict[str, float]  # pid -> MiB


def scrape(url: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, str | float]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    body = urllib.request.urlopen(url, timeout=10).read().decode()
    by_gpu: dict[str, dict[str, float]] = {}
    processes: dict[str, dict[str, str | float]] = {}
    up = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "modelpilot_gpu_exporter_up":
                up = sample.value
            elif sample.name == "modelpilot_gpu_process_memory_used_bytes":
                processes[sample.labels["pid"]] = {**sample.labels, "MiB": sample.value / MIB}
            elif sample.name.startswith("DCGM_FI_"):
                by_gpu.setdefault(sample.labels["gpu"], {})[sample.name] = sample.value
    return by_gpu, processes, up


def number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        return float("nan")  # "[N/A]", "[Not Supported]"


def nvidia_smi() -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    query = ["timeout", "15", "nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits"]
    gpus = {}
    for line in subprocess.run(query, capture_output=True, text=True, check=True).stdout.splitlines():
        values = [v.strip() for v in line.split(",")]
        if len(values) == len(SMI_FIELDS):
            gpus[values[0]] = {field: number(value) for field, value in zip(SMI_FIELDS[1:], values[1:], strict=True)}
    apps_query = ["timeout", "15", "nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"]
    apps = subprocess.run(apps_query, capture_output=True, text=True).stdout
    return gpus, {p.split(",")[0].strip(): number(p.split(",")[1]) for p in apps.splitlines() if "," in p}


def take_moment(url: str, label: str, phase: str) -> Moment:
    scraped: list[tuple[dict[str, dict[str, float]], dict[str, dict[str, str | float]], float]] = []
    # Both at once, so a changing value is compared with itself.
    thread = threading.Thread(target=lambda: scraped.append(scrape(url)))
    thread.start()
    smi, apps = nvidia_smi()
    thread.join(timeout=20)
    if not scraped:
        raise SystemExit(f"gpu_check: the exporter did not answer at {label}")
    exporter, processes, _ = scraped[0]
    return Moment(label, phase, exporter, processes, smi, apps)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_exporter(url: str, exporter: subprocess.Popen[str]) -> float:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if exporter.poll() is not None:
            raise SystemExit(f"gpu_check: the exporter exited with status {exporter.returncode}")
        try:
            return scrape(url)[2]
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gpu_check: the exporter did not answer within 30 s")


def print_table(moments: list[Moment]) -> None:
    header = f"{'moment':<10} {'phase':<12} {'gpu':<4}" + "".join(f" {name:>24}" for name in COMPARED)
    print(header)
    print(" " * 28 + "".join(f" {'exporter / nvidia-smi':>24}" for _ in COMPARED))
    for moment in moments:
        for gpu, smi in sorted(moment.smi.items()):
            exported = moment.exporter.get(gpu, {})
            cells = []
            for series, field in COMPARED.values():
                mine = exported.get(series)
                cells.append(f"{'-' if mine is None else f'{mine:g}'} / {smi[field]:g}")
            print(f"{moment.label:<10} {moment.phase:<12} {gpu:<4}" + "".join(f" {c:>24}" for c in cells))


def verdicts(moments: list[Moment]) -> list[tuple[str, bool, str]]:
    results = []
    for name, (series, field) in COMPARED.items():
        tolerance = TOLERANCES[name]
        misses, pairs = [], 0
        for moment in moments:
            for gpu, smi in moment.smi.items():
                mine, theirs = moment.exporter.get(gpu, {}).get(series), smi[field]
                if theirs != theirs:  # nvidia-smi says N/A: nothing to compare with
                    continue
                pairs += 1
                if mine is None or not tolerance.agrees(mine, theirs):
                    misses.append(f"{moment.label} gpu {gpu}: {mine} vs {theirs}")
        ok = pairs > 0 and len(misses) <= tolerance.misses_allowed
        detail = f"{pairs - len(misses)}/{pairs} pairs {tolerance.text}" + (f"; off: {'; '.join(misses)}" if misses else "")
        results.append((name, ok, detail))
    return results


def load_was_seen(moments: list[Moment]) -> tuple[bool, str]:
    def median(phase: str, series: str, field: str) -> tuple[float, float]:
        mine = [m.exporter.get(g, {}).get(series, float("nan")) for m in moments if m.phase == phase for g in m.smi]
        theirs = [s[field] for m in moments if m.phase == phase for s in m.smi.values()]
        return statistics.median(mine), statistics.median(theirs)

    idle_util, load_util = (
        median("idle-before", "DCGM_FI_DEV_GPU_UTIL", "utilization.gpu"),
        median("load", "DCGM_FI_DEV_GPU_UTIL", "utilization.gpu"),
    )
    idle_mem, load_mem = (
        median("idle-before", "DCGM_FI_DEV_FB_USED", "memory.used"),
        median("load", "DCGM_FI_DEV_FB_USED", "memory.used"),
    )
    seen = load_util[0] >= 50 and load_util[1] >= 50 and load_mem[0] - idle_mem[0] >= LOAD_MIB * 0.9
    return seen, (
        f"util median idle {idle_util[0]:g}/{idle_util[1]:g} -> load {load_util[0]:g}/{load_util[1]:g} (exporter/smi); "
        f"fb used idle {idle_mem[0]:g} -> load {load_mem[0]:g} MiB"
    )


def process_lines(moments: list[Moment], load_pid: int) -> tuple[bool, list[str]]:
    lines, ok, compared = [], True, 0
    during_load = [m for m in moments if m.phase == "load"]
    for moment in during_load:
        for pid, mib in sorted(moment.smi_apps.items()):
            mine = moment.processes.get(pid)
            mark = " (the load process)" if pid == str(load_pid) else ""
            if mine is None:
                ok = False
                lines.append(f"{moment.label}: pid {pid}{mark}: nvidia-smi {mib:g} MiB, no exporter series")
                continue
            compared += 1
            agrees = mib != mib or abs(float(mine["MiB"]) - mib) <= 4  # nvidia-smi may say [N/A]
            ok &= agrees
            lines.append(
                f"{moment.label}: pid {pid}{mark}: exporter {float(mine['MiB']):g} MiB, nvidia-smi {mib:g} MiB, "
                f"pod_uid={mine['pod_uid']!r} container_id={str(mine['container_id'])[:12]!r}"
                + ("" if agrees else "  <- differs")
            )
    if compared == 0:
        lines.append("no compute process listed by nvidia-smi during the load (PID namespace?): not compared")
    elif not any(str(load_pid) in m.smi_apps for m in during_load):
        lines.append(f"the load's own pid {load_pid} is not among NVML's: NVML sees it in another PID namespace")
    return ok, lines


def check(load_seconds: float) -> int:
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    exporter_command = [sys.executable, "-m", "modelpilot.gpu_exporter", f"--port={port}", "--address=127.0.0.1", "--interval=0"]
    exporter = subprocess.Popen(exporter_command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    load: subprocess.Popen[str] | None = None
    try:
        if wait_for_exporter(url, exporter) != 1:
            print("gpu_check: the exporter serves modelpilot_gpu_exporter_up 0 although nvidia-smi works", file=sys.stderr)
            return 1
        moments = [take_moment(url, "before-1", "idle-before")]
        time.sleep(2)
        moments.append(take_moment(url, "before-2", "idle-before"))

        load = subprocess.Popen([sys.executable, __file__, "load", str(load_seconds)], stdout=subprocess.PIPE, text=True)
        assert load.stdout is not None
        ready = load.stdout.readline().strip()  # the load prints one line when it holds its memory
        print(ready or f"load: exited with status {load.wait()} before it started")
        if not ready.startswith("load: ") or "unavailable" in ready:
            print("gpu_check: no load could run; idle readings only")
            moments.append(take_moment(url, "idle-3", "idle-before"))
            print_table(moments)
            idle_result = report(moments, None, load.pid)
            return idle_result if ready else 1  # a load that crashed is a failure, not "unavailable"
        time.sleep(5)  # let utilisation and clocks settle
        for number_ in range(1, 7):
            moments.append(take_moment(url, f"load-{number_}", "load"))
            time.sleep(6)
        load.wait(timeout=load_seconds + 30)
        time.sleep(3)
        for number_ in (1, 2):
            moments.append(take_moment(url, f"after-{number_}", "idle-after"))
            time.sleep(2)
        print_table(moments)
        return report(moments, True, load.pid)
    finally:
        if load is not None and load.poll() is None:
            load.kill()
        exporter.terminate()
        try:
            _, errors = exporter.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            exporter.kill()
            _, errors = exporter.communicate()
        print("exporter log:\n  " + "\n  ".join(errors.strip().splitlines()[-8:]))


def report(moments: list[Moment], loaded: bool | None, load_pid: int) -> int:
    ok = True
    print("\nagreement:")
    for name, agrees, detail in verdicts(moments):
        ok &= agrees
        print(f"  {'OK  ' if agrees else 'FAIL'} {name:<13} {detail}")
    if loaded:
        seen, detail = load_was_seen(moments)
        ok &= seen
        print(f"  {'OK  ' if seen else 'FAIL'} {'load seen':<13} {detail}")
        processes_ok, lines = process_lines(moments, load_pid)
        ok &= processes_ok
        print(f"  {'OK  ' if processes_ok else 'FAIL'} per-process memory (modelpilot_gpu_process_memory_used_bytes):")
        for line in lines:
            print(f"       {line}")
    else:
        print("  ---- load        unavailable: only idle readings were compared")
    print("\ngpu_check: " + ("the exporter agrees with nvidia-smi" if ok else "DISAGREEMENT, see above"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", nargs="?", choices=("check", "load"), default="check")
    parser.add_argument("seconds", nargs="?", type=float, default=60.0)
    args = parser.parse_args(argv)
    return run_load(args.seconds) if args.mode == "load" else check(args.seconds)


if __name__ == "__main__":
    sys.exit(main())
