"""Adapters to the outside world: Prometheus, the MLflow registry, Kubernetes objects."""
