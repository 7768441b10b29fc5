"""An in-process driver for the project tests: the real pipeline steps (refresh, wave_apply,
health_check) called directly with real Redis, a real Kubernetes API and real git, without Celery."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from shared.pipeline.diff_result import DiffOutcome
from shared.pipeline.diff_step import diff
from shared.pipeline.services import Services
from shared.pipeline.sync_steps import health_check, wave_apply

GROUP, VERSION = "argoproj.io", "v1alpha1"
MAX_STEPS = 50


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def reconcile(svc: Services, name: str) -> DiffOutcome:
    """One refresh of `name`; an operation it starts is driven to its end (each step once, in order)."""
    token = svc.locks.acquire(name)
    assert token is not None, f"app {name} is locked"
    outcome = diff(svc, token)
    call = outcome.next
    if call is None:
        svc.locks.release(token)
    for _ in range(MAX_STEPS):
        if call is None:
            return outcome
        verb = wave_apply if call.task == "wave_apply" else health_check
        step = verb(svc, token, call.operation, call.step, call.seq)
        call = step.next
    raise AssertionError(f"the operation of {name} did not end within {MAX_STEPS} steps")


def application(name: str, namespace: str, repo_url: str, dest_namespace: str, *, project: str = "default",
                destination: dict[str, str] | None = None, automated: bool = True) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "project": project, "source": {"repoURL": repo_url, "path": ".", "targetRevision": "HEAD"},
        "destination": {**(destination or {"server": "https://kubernetes.default.svc"}), "namespace": dest_namespace},
        "syncPolicy": {"automated": {"prune": True}} if automated else {},
    }
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Application",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def project(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AppProject",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def configmap(name: str, namespace: str | None = None, **data: str) -> str:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data or {"k": "v"}})


def cluster_secret(secret_name: str, namespace: str, cluster_name: str, server: str,
                   config: dict[str, Any], project: str = "") -> dict[str, Any]:
    """An Argo CD declarative cluster Secret (scoped to `project` when given)."""
    data = {"name": cluster_name, "server": server, "config": json.dumps(config)}
    if project:
        data["project"] = project
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": namespace,
                         "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "stringData": data}


def argo_config_from_kubeconfig(path: str, context: str | None) -> tuple[str, dict[str, Any]]:
    """The server and Argo CD cluster `config` that reach the cluster a kubeconfig context names."""
    doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    ctx_name = context or doc.get("current-context")
    ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
    user = next((u["user"] for u in doc.get("users") or [] if u["name"] == ctx.get("user")), {}) or {}

    def data(inline: str, file_key: str, holder: dict[str, Any]) -> str | None:
        if holder.get(inline):
            return str(holder[inline])
        if holder.get(file_key):
            return base64.b64encode(Path(holder[file_key]).read_bytes()).decode()
        return None

    tls: dict[str, Any] = {}
    if cluster.get("insecure-skip-tls-verify"):
        tls["insecure"] = True
    for key, inline, file_key, holder in (("caData", "certificate-authority-data", "certificate-authority", cluster),
                                          ("certData", "client-certificate-data", "client-certificate", user),
                                          ("keyData", "client-key-data", "client-key", user)):
        value = data(inline, file_key, holder)
        if value:
            tls[key] = value
    config: dict[str, Any] = {"tlsClientConfig": tls} if tls else {}
    if user.get("token"):
        config["bearerToken"] = user["token"]
    return str(cluster["server"]).rstrip("/"), config


@dataclass
class World:
    """A control namespace (Applications, AppProjects, Secrets) and helpers to change it."""

    svc: Services
    api: client.ApiClient
    control: str
    namespaces: list[str] = field(default_factory=list)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def namespace(self, prefix: str) -> str:
        name = unique(prefix)
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
            name=name, labels={"app.kubernetes.io/created-by": "wavecd-tests"})))
        self.namespaces.append(name)
        return name

    def put_project(self, name: str, spec: dict[str, Any]) -> None:
        body = project(name, self.control, spec)
        try:
            current = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.control, "appprojects", name)
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.custom.replace_namespaced_custom_object(GROUP, VERSION, self.control, "appprojects", name, body)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            self.custom.create_namespaced_custom_object(GROUP, VERSION, self.control, "appprojects", body)

    def put_app(self, doc: dict[str, Any]) -> str:
        """The Application as the beat's tick stores it (the index the workers read)."""
        name = doc["metadata"]["name"]
        self.svc.store.put_app(name, doc)
        return name

    def status(self, name: str) -> dict[str, Any]:
        return self.svc.store.status(name)

    def conditions(self, name: str) -> dict[str, str]:
        return {c["type"]: c["message"] for c in self.status(name).get("conditions") or []}

    def configmap_exists(self, namespace: str, name: str, api: client.ApiClient | None = None) -> bool:
        try:
            client.CoreV1Api(api or self.api).read_namespaced_config_map(name, namespace)
            return True
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
