# modelpilot: `make demo` runs the operator end to end on a local stack; `make test` runs every test.
# Everything a fresh machine needs is installed here: the virtualenv, Prometheus, the MLflow
# server, and the control plane (kube-apiserver + etcd + kubectl built from Go modules, cached).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export MODELPILOT_CACHE ?= $(HOME)/.cache/modelpilot

.PHONY: all deps venv prometheus lua mlflow-server controlplane helm manifests test unit integration demo crds lint bench clean image image-test

all: test

deps: venv prometheus lua mlflow-server controlplane helm

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

# Debian's prometheus package provides prometheus and promtool, prometheus-alertmanager the
# Alertmanager; tests start their own servers.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null || { \
	  echo "installing Debian's prometheus and prometheus-alertmanager packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager >/dev/null; }

# Debian's lua5.1 runs the Argo CD health checks in tests (Argo CD's Lua has 5.1 semantics).
lua:
	@command -v lua5.1 >/dev/null || { echo "installing Debian's lua5.1"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lua5.1 >/dev/null; }

mlflow-server:
	@bash tests/support/install_mlflow_server.sh >/dev/null

controlplane: venv
	@$(PY) -m tests.support.controlplane build >/dev/null

# Helm v4 for the chart's tests, built from tests/helm (pinned in its go.mod), cached like the
# control plane.
helm: venv
	@$(PY) -m tests.support.helm build >/dev/null

# manifests/base and manifests/policy rendered from charts/modelpilot, and crds/ copied into it.
manifests: venv helm
	$(PY) -m tests.support.chart_manifests

crds: venv
	$(VENV)/bin/modelpilot crds

test: deps lint
	$(PY) -m pytest -q -p no:cacheprovider -n 4 --dist loadgroup --ignore=tests/image
	$(MAKE) image-test

# The operator's image, localhost/modelpilot:<version>, built with buildah (installed when
# missing); `make image BASE=IMAGE` picks the base image.
image:
	bash image/build.sh

# Builds the image and runs it as the operator against a local control plane (needs root:
# namespaces and chroot stand in for a container runtime).
image-test: venv prometheus controlplane
	$(PY) -m pytest -q -p no:cacheprovider tests/image

# ruff over the package, tests and benchmarks; mypy over the package, strict for api, analysis
# and reconcile (configured in pyproject.toml).
lint: venv
	$(VENV)/bin/ruff check operator tests bench
	$(VENV)/bin/ruff format --check operator tests bench
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest -q tests/unit

integration: deps
	$(PY) -m pytest -q -n 4 --dist loadgroup tests/integration

demo: deps
	$(PY) -m tests.support.demo

# Benchmarks beside their peers (installed by bench/ into their own virtualenv, never into
# $(VENV)); `make bench BENCH_ARGS=--quick` for the short run. Figures: bench/results/latest.json.
bench: venv prometheus controlplane
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
