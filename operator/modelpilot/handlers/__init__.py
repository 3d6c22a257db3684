"""kopf registrations: thin functions that load, call reconcile, apply actions and patch status."""

from .operator import run_operator

__all__ = ["run_operator"]
