#!/usr/bin/env bash
# Installs the MLflow tracking server that the integration tests and the demo start.
#
# Full `mlflow` pins python-dateutil<3 while the kubernetes client needs >=3, so the server
# lives in its own virtualenv outside the repo, keyed by the pinned version:
#   ${MODELPILOT_CACHE:-~/.cache/modelpilot}/mlflow-server-<version>
# The operator itself only needs `mlflow-skinny` (the client), in the project venv.
#
# Usage: install_mlflow_server.sh [--check]
#   (no flag)  install if missing; a fast no-op when already installed
#   --check    install nothing; exit 1 when missing
# Either way the last line printed on stdout is the path of the `mlflow` executable.
# Environment: MODELPILOT_CACHE (cache root), PYTHON (interpreter for the venv, default python3).
set -euo pipefail

# The newest release whose whole dependency set installs on Python 3.11 (mlflow 3.18.0 was
# listed before its matching mlflow-skinny was); keep it equal to, or close to, the
# mlflow-skinny the operator's venv resolves, since client and server talk REST.
MLFLOW_VERSION=3.17.2

cache_root="${MODELPILOT_CACHE:-$HOME/.cache/modelpilot}"
venv="$cache_root/mlflow-server-$MLFLOW_VERSION"
mlflow_bin="$venv/bin/mlflow"
# Written last: a directory without it is an interrupted install and is rebuilt.
marker="$venv/.modelpilot-installed"

installed() { [[ -f "$marker" && -x "$mlflow_bin" ]]; }

if [[ "${1:-}" == "--check" ]]; then
    if installed; then
        echo "$mlflow_bin"
        exit 0
    fi
    echo "MLflow server $MLFLOW_VERSION is not installed in $venv;" \
         "run 'make mlflow-server' or tests/support/install_mlflow_server.sh" >&2
    exit 1
elif [[ $# -gt 0 ]]; then
    echo "usage: $0 [--check]" >&2
    exit 2
fi

if installed; then
    echo "$mlflow_bin"
    exit 0
fi

mkdir -p "$cache_root"
# Two concurrent callers (make -j, parallel CI jobs) must not build the same venv at once.
exec 9>"$cache_root/.mlflow-server-$MLFLOW_VERSION.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if installed; then
    echo "$mlflow_bin"
    exit 0
fi

rm -rf "$venv"
trap 'rm -rf "$venv"' ERR
echo "installing mlflow $MLFLOW_VERSION into $venv" >&2
"${PYTHON:-python3}" -m venv "$venv"
# pip's chatter goes to stderr so that stdout stays the one line callers parse.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION" >&2
"$mlflow_bin" --version >&2
touch "$marker"
echo "$mlflow_bin"
