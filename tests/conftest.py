"""Wires the fixture plugins: each real part the tests use has a module in tests/fixtures/."""

from __future__ import annotations

# Every plugin is required: a missing fixture module is an error, not a quietly smaller suite.
pytest_plugins = ["tests.fixtures.redis", "tests.fixtures.git", "tests.fixtures.kube", "tests.fixtures.celery",
                  "tests.fixtures.faults"]
