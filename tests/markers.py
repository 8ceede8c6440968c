"""Marks every test that starts a process (nats-server, a service, a browser, a pip install, a
CLI) as `process`, so that `make test-unit` can leave those out and run in seconds.

Loaded as a pytest plugin (`-p tests.markers` in pyproject.toml), so new tests are classified
without anyone remembering a marker: a test is `process` if it is marked `e2e`, or uses a
fixture that starts nats-server (directly or through another fixture), or its own code or a
function of its module that it calls starts a subprocess.
"""

from __future__ import annotations

import inspect
import re

import pytest

__all__ = ["PROCESS_FIXTURES"]

# the fixtures of tests/conftest.py and tests/registry/conftest.py that start nats-server
PROCESS_FIXTURES = frozenset({"nats_server", "module_nats", "system", "module_system"})

_STARTS_PROCESS = re.compile(r"\bsubprocess\.|\bPopen\(|\bcreate_subprocess_exec\(|\bpip\b")


def _starts_process(item: pytest.Item) -> bool:
    if item.get_closest_marker("e2e") is not None:
        return True
    if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    function = getattr(item, "function", None)
    if function is None:
        return False
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return False
    if _STARTS_PROCESS.search(source):
        return True
    # a helper of the same module that starts one, called by name
    module = inspect.getmodule(function)
    for name, helper in vars(module).items() if module else ():
        if (
            inspect.isfunction(helper)
            and helper.__module__ == module.__name__  # type: ignore[union-attr]
            and not name.startswith("test_")
            and re.search(rf"\b{re.escape(name)}\(", source)
        ):
            try:
                if _STARTS_PROCESS.search(inspect.getsource(helper)):
                    return True
            except (OSError, TypeError):
                continue
    return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "process: starts a process (set by tests/markers.py; `make test-unit` skips)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _starts_process(item):
            item.add_marker(pytest.mark.process)
