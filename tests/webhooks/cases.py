"""Shared helpers of the webhook tests: the testdata cases, settings with every secret, and real signing.

Signatures are computed here the way each git host computes them (HMAC-SHA256 of the raw body, a token,
a hook UUID, basic auth), independently of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

from shared.core.models import Application
from shared.core.settings import Settings

TESTDATA = Path(__file__).resolve().parent.parent / "testdata" / "webhooks"
PROVIDER_CASES = sorted((TESTDATA / "providers").glob("*.json"))
MATCHING_CASES = sorted((TESTDATA / "matching").glob("*.json"))

SECRETS: dict[str, Any] = {
    "webhook_github_secret": "gh-s3cret",
    "webhook_gitlab_secret": "gl-t0ken",
    "webhook_bitbucket_uuid": "{8d1c6f2e-3b4a-4c5d-9e6f-7a8b9c0d1e2f}",
    "webhook_bitbucketserver_secret": "bbs-s3cret",
    "webhook_gogs_secret": "gogs-s3cret",
    "webhook_gitea_secret": "gitea-s3cret",
    "webhook_azuredevops_username": "wavecd",
    "webhook_azuredevops_password": "az-p4ss",
}
NO_SECRETS: dict[str, Any] = {key: None for key in SECRETS}


def settings(**overrides: Any) -> Settings:
    """Settings with every provider's secret configured, unless overridden."""
    return Settings(**{**SECRETS, **overrides})


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def body_bytes(case: dict[str, Any]) -> bytes:
    return json.dumps(case["body"]).encode("utf-8")


def _hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def auth_headers(provider: str, body: bytes, secrets: dict[str, Any] | None = None) -> dict[str, str]:
    """The headers the git host adds to prove the request, for the given secrets."""
    s = {**SECRETS, **(secrets or {})}
    if provider == "github":
        return {"X-Hub-Signature-256": "sha256=" + _hmac(s["webhook_github_secret"], body)}
    if provider == "gitlab":
        return {"X-Gitlab-Token": s["webhook_gitlab_secret"]}
    if provider == "bitbucket":
        return {"X-Hook-UUID": s["webhook_bitbucket_uuid"]}
    if provider == "bitbucketserver":
        return {"X-Hub-Signature": "sha256=" + _hmac(s["webhook_bitbucketserver_secret"], body)}
    if provider == "gogs":
        return {"X-Gogs-Signature": _hmac(s["webhook_gogs_secret"], body)}
    if provider == "gitea":
        digest = _hmac(s["webhook_gitea_secret"], body)
        return {"X-Gitea-Signature": digest, "X-Gogs-Signature": digest, "X-Hub-Signature-256": "sha256=" + digest}
    if provider == "azuredevops":
        token = f"{s['webhook_azuredevops_username']}:{s['webhook_azuredevops_password']}"
        return {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()}
    raise AssertionError(f"unknown provider {provider}")


FORGED_SECRETS = {
    "webhook_github_secret": "wrong",
    "webhook_gitlab_secret": "wrong",
    "webhook_bitbucket_uuid": "{00000000-0000-0000-0000-000000000000}",
    "webhook_bitbucketserver_secret": "wrong",
    "webhook_gogs_secret": "wrong",
    "webhook_gitea_secret": "wrong",
    "webhook_azuredevops_username": "wavecd",
    "webhook_azuredevops_password": "wrong",
}


def signed_headers(case: dict[str, Any], body: bytes) -> dict[str, str]:
    return {**case["headers"], **auth_headers(case["provider"], body)}


def forged_headers(case: dict[str, Any], body: bytes) -> dict[str, str]:
    return {**case["headers"], **auth_headers(case["provider"], body, FORGED_SECRETS)}


def make_app(spec: dict[str, Any]) -> Application:
    """An Application from the compact testdata form (name, repoURL, path, targetRevision or sources)."""
    metadata: dict[str, Any] = {"name": spec["name"], "namespace": "argocd"}
    if spec.get("annotations"):
        metadata["annotations"] = spec["annotations"]
    if "sources" in spec:
        source_spec: dict[str, Any] = {"sources": spec["sources"]}
    else:
        source_spec = {"source": {"repoURL": spec["repoURL"], "path": spec.get("path", "."),
                                  "targetRevision": spec.get("targetRevision", "HEAD")}}
    return Application.parse({"metadata": metadata, "spec": {**source_spec, "destination": {
        "server": "https://kubernetes.default.svc", "namespace": "default"}}})
