"""The pipeline fixtures (a Kubernetes API, the harness) for the metrics tests that run a real sync."""

from __future__ import annotations

from tests.pipeline.conftest import cd_api, cd_cluster, harness  # noqa: F401 - fixtures re-exported
