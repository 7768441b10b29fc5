"""Wires the fixture plugins: each real part the tests use has a module in tests/fixtures/."""

from __future__ import annotations

import importlib.util

_PLUGINS = ["tests.fixtures.redis", "tests.fixtures.git", "tests.fixtures.kube", "tests.fixtures.celery",
            "tests.fixtures.faults"]

# A plugin module exists once its part is built; listing only those keeps the suite runnable meanwhile.
pytest_plugins = [name for name in _PLUGINS if importlib.util.find_spec(name) is not None]
