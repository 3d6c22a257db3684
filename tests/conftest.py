"""With pytest-xdist (``-n N``) the services integration tests share start once, in the
controller, before the workers (tests/support/shared_stack.py); each worker runs its own operator
on namespaces named after itself (tests/integration/conftest.py). Integration tests mostly wait
on operator intervals, so several run at once even on two cores. Without ``-n`` the integration
fixtures start everything themselves.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parent / "integration"

_shared = pytest.StashKey[ExitStack]()


def _distributes_integration_tests(config: pytest.Config) -> bool:
    """Whether this is an xdist controller about to hand integration tests to workers."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return False
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == INTEGRATION or INTEGRATION in path.parents or path in INTEGRATION.parents:
            return True
    return False


def pytest_configure(config: pytest.Config) -> None:
    if not _distributes_integration_tests(config):
        return
    from tests.support.shared_stack import start_shared_stack

    workdir = Path(tempfile.mkdtemp(prefix="modelpilot-tests-"))
    stack = ExitStack()
    config.stash[_shared] = stack
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    try:
        environment = start_shared_stack(workdir, stack)
    except BaseException:
        stack.close()
        raise
    os.environ.update(environment)  # the workers, started after this hook, inherit it
    for name in environment:
        stack.callback(os.environ.pop, name, None)


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_shared, None)
    if stack is not None:
        stack.close()
