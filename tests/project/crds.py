"""Installs the Application and AppProject CRDs (the exact files operators apply) into a test cluster."""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from kubernetes import client

ROOT = Path(__file__).resolve().parents[2]
APPPROJECT_CRD = ROOT / "k8s" / "base" / "crd-appproject.yaml"
APPLICATION_CRD = ROOT / "k8s" / "base" / "crd-application.yaml"


def install_crd(api: client.ApiClient, path: Path) -> dict:
    ext = client.ApiextensionsV1Api(api)
    body = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        ext.create_custom_resource_definition(body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + 30
    while True:
        crd = ext.read_custom_resource_definition(body["metadata"]["name"])
        conditions = (crd.status.conditions if crd.status else None) or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return body
        assert time.monotonic() < deadline, f"{body['metadata']['name']} never became Established"
        time.sleep(0.1)  # polling the API server for a condition, bounded by the deadline
