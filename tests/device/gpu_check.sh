#!/usr/bin/env bash
# Checks modelpilot's GPU exporter against nvidia-smi on a machine with an NVIDIA GPU, offline:
# readings before, during (~60 s of load) and after, side by side, then agreement per metric.
# Run from the repository root:  bash tests/device/gpu_check.sh
# Needs the NVIDIA driver and python3. pynvml (nvidia-ml-py) and prometheus_client are taken from
# wheels in .whl/ when that folder exists (installed without an index), else from python3's path.
# Exit status: 0 agreement, 1 disagreement, 2 no NVIDIA driver or missing modules.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

site=""
if [ -d .whl ]; then
  site=$(mktemp -d /tmp/gpu-check-site.XXXXXX)
  # One wheel at a time: a wheel for another Python (numpy is per version) must not stop the rest.
  for wheel in .whl/*.whl; do
    [ -e "$wheel" ] || continue
    if ! timeout 120 python3 -m pip install -q --no-index --no-deps --disable-pip-version-check --target "$site" "$wheel" 2>/dev/null; then
      case "$wheel" in
        # Without pip, a pure-Python wheel is just a zip of the package.
        *-none-any.whl) timeout 60 python3 -m zipfile -e "$wheel" "$site" || echo "gpu_check: cannot unpack $wheel" >&2 ;;
        *) echo "gpu_check: skipped $wheel (not for this Python or platform)" >&2 ;;
      esac
    fi
  done
fi
export PYTHONPATH="${site:+$site:}operator${PYTHONPATH:+:$PYTHONPATH}"

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA driver: nvidia-smi is not installed" >&2
  exit 2
fi
if ! timeout 30 nvidia-smi -L; then
  echo "gpu_check: no NVIDIA driver: nvidia-smi -L failed" >&2
  exit 2
fi
echo "driver: $(timeout 30 nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)"
echo "python: $(python3 --version 2>&1)"
if ! timeout 60 python3 -c 'import pynvml, prometheus_client' ; then
  echo "gpu_check: pynvml or prometheus_client cannot be imported (put their wheels in .whl/)" >&2
  exit 2
fi

timeout 230 python3 tests/device/gpu_check.py check 60
status=$?
[ -n "$site" ] && rm -rf "$site"
[ "$status" -eq 124 ] && echo "gpu_check: timed out" >&2
exit "$status"
