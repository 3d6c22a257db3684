"""modelpilot: a Kubernetes operator that monitors, retrains and canary-releases ML models."""

__version__ = "0.1.0"
