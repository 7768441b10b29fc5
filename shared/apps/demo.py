"""The demo that `wavecd up` deploys when nothing is configured: a git repository and its Application.

A first run should show what WaveCD is for on an app shaped like the ones our users deploy, so the
repository has the usual layers in sync waves: namespace and RBAC (wave 1), secrets (wave 2), a database
(wave 3: a postgres StatefulSet and Service, or a CloudNativePG `Cluster` when that CRD is installed),
then the application's Deployment and Service (wave 4). It is a bare repository served over `file://`
(what the workers fetch) plus a checkout whose `origin` is that repository, so a user edits, commits and
pushes with plain git and watches the sync. Everything is made with pygit2; nothing here runs git.

The manifests are written as a person would write them (no YAML anchors for repeated label maps), and
the checkout carries a git identity when none is configured, so the suggested `git commit` works in a
fresh home.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pygit2
import yaml

from shared.core.errors import ConfigurationError
from shared.core.resources import SYNC_WAVE_ANNOTATION

Database = Literal["statefulset", "cnpg"]

DEMO_APP_NAME = "demo"
DEMO_NAMESPACE = "demo"
DEMO_BRANCH = "main"
DEMO_PATH = "manifests"
CNPG_CRD = "clusters.postgresql.cnpg.io"

_AUTHOR = ("WaveCD demo", "demo@wavecd.invalid")
_APP_LABELS = {"app.kubernetes.io/part-of": "wavecd-demo"}


@dataclass(frozen=True)
class DemoRepo:
    """The demo's bare repository (what WaveCD fetches) and the user's checkout of it."""

    bare: Path
    checkout: Path
    branch: str = DEMO_BRANCH
    path: str = DEMO_PATH

    @property
    def url(self) -> str:
        return f"file://{self.bare}"

    def head(self) -> str:
        """The commit the branch points to in the bare repository (what a sync must reach)."""
        repo = pygit2.Repository(str(self.bare))
        return str(repo.references[f"refs/heads/{self.branch}"].target)

    def commit(self, files: dict[str, str | None], message: str) -> str:
        """Commit `files` (relative path -> text; None deletes) in the checkout and push it to the bare repo.

        What a user does with `git commit -a && git push`; the tests use it to change the demo.
        """
        repo = pygit2.Repository(str(self.checkout))
        for rel, text in files.items():
            target = _inside(self.checkout, rel)
            index_path = target.relative_to(self.checkout.resolve()).as_posix()
            if text is None:
                target.unlink(missing_ok=True)
                if index_path in repo.index:
                    repo.index.remove(index_path)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                repo.index.add(index_path)
        repo.index.write()
        sha = _commit_index(repo, f"refs/heads/{self.branch}", message)
        repo.remotes["origin"].push([f"refs/heads/{self.branch}:refs/heads/{self.branch}"])
        return sha

    def hint(self) -> str:
        """One line telling a user how to change the demo and see it sync."""
        return (f"cd {self.checkout} && $EDITOR {self.path}/40-app.yaml && git commit -am 'Scale the app' "
                f"&& git push")


def _inside(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if not target.is_relative_to(root.resolve()) or target == root.resolve():
        raise ConfigurationError(f"demo file path {rel!r} is outside the checkout")
    return target


def _signature() -> pygit2.Signature:
    return pygit2.Signature(*_AUTHOR, int(time.time()), 0)


def _commit_index(repo: pygit2.Repository, ref: str, message: str) -> str:
    tree = repo.index.write_tree()
    parents = [repo.references[ref].target] if ref in repo.references else []
    sig = _signature()
    return str(repo.create_commit(ref, sig, sig, message, tree, parents))


def _wave(meta: dict[str, Any], wave: int) -> dict[str, Any]:
    meta.setdefault("annotations", {})[SYNC_WAVE_ANNOTATION] = str(wave)
    meta.setdefault("labels", {}).update(_APP_LABELS)
    return meta


class _PlainDumper(yaml.SafeDumper):
    """Writes a mapping used twice (a label selector and its pod labels) out twice, not as `&id001`/`*id001`."""

    def ignore_aliases(self, data: Any) -> bool:  # noqa: ANN401 - any YAML node value
        return True


def _dump(*docs: dict[str, Any], header: str) -> str:
    return f"# {header}\n" + yaml.dump_all(list(docs), Dumper=_PlainDumper, sort_keys=False)


def _postgres_statefulset(namespace: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "postgres"}
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": _wave({"name": "postgres", "namespace": namespace}, 3),
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"name": "postgres", "port": 5432}]},
    }
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": _wave({"name": "postgres", "namespace": namespace}, 3),
        "spec": {
            "serviceName": "postgres", "replicas": 1, "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": "demo-app", "containers": [{
                    "name": "postgres", "image": "postgres:16-alpine",
                    "ports": [{"name": "postgres", "containerPort": 5432}],
                    "env": [
                        {"name": "POSTGRES_USER", "valueFrom": {"secretKeyRef": {"name": "db-credentials",
                                                                                 "key": "username"}}},
                        {"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials",
                                                                                     "key": "password"}}},
                        {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
                    ],
                    "readinessProbe": {"exec": {"command": ["pg_isready", "-U", "app"]}, "periodSeconds": 5},
                    "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql/data"}],
                }]},
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }],
        },
    }
    return [service, statefulset]


def _postgres_cnpg(namespace: str) -> list[dict[str, Any]]:
    return [{
        "apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
        "metadata": _wave({"name": "postgres", "namespace": namespace}, 3),
        "spec": {"instances": 1, "storage": {"size": "1Gi"},
                 "bootstrap": {"initdb": {"database": "app", "owner": "app",
                                          "secret": {"name": "db-credentials"}}}},
    }]


def demo_manifests(*, namespace: str = DEMO_NAMESPACE, database: Database = "statefulset",
                   password: str | None = None) -> dict[str, str]:
    """The demo repository's files (path -> text). `password` defaults to a fresh random one."""
    if database not in ("statefulset", "cnpg"):
        raise ConfigurationError(f"unknown demo database {database!r}: use 'statefulset' or 'cnpg'")
    password = password or secrets.token_urlsafe(18)
    labels = {"app.kubernetes.io/name": "demo-app"}
    rbac = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _wave({"name": namespace}, 1)},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _wave({"name": "demo-app", "namespace": namespace}, 1)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": _wave({"name": "demo-app", "namespace": namespace}, 1),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _wave({"name": "demo-app", "namespace": namespace}, 1),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "demo-app"},
         "subjects": [{"kind": "ServiceAccount", "name": "demo-app", "namespace": namespace}]},
    ]
    # CNPG's initdb secret must be of type basic-auth; a plain StatefulSet reads the same two keys.
    secret = {"apiVersion": "v1", "kind": "Secret",
              "metadata": _wave({"name": "db-credentials", "namespace": namespace}, 2),
              "type": "kubernetes.io/basic-auth",
              "stringData": {"username": "app", "password": password}}
    database_docs = _postgres_cnpg(namespace) if database == "cnpg" else _postgres_statefulset(namespace)
    db_host = "postgres-rw" if database == "cnpg" else "postgres"
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _wave({"name": "demo-app", "namespace": namespace}, 4),
        "spec": {
            "replicas": 2, "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": "demo-app", "containers": [{
                    "name": "web", "image": "nginxinc/nginx-unprivileged:1.27-alpine",
                    "ports": [{"name": "http", "containerPort": 8080}],
                    "env": [
                        {"name": "DATABASE_HOST", "value": db_host},
                        {"name": "DATABASE_USER", "valueFrom": {"secretKeyRef": {"name": "db-credentials",
                                                                                 "key": "username"}}},
                        {"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db-credentials",
                                                                                     "key": "password"}}},
                    ],
                    "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                }]},
            },
        },
    }
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": _wave({"name": "demo-app", "namespace": namespace}, 4),
               "spec": {"selector": labels, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    return {
        "README.md": ("# WaveCD demo\n\nManifests under `manifests/`, applied in sync waves 1 (namespace, "
                      "RBAC), 2 (secrets), 3 (database), 4 (application).\nEdit, commit and push: WaveCD syncs "
                      "the change.\n\nThe database password below is generated for this demo only; real "
                      "repositories keep secrets out of git (sealed-secrets, external-secrets).\n"),
        f"{DEMO_PATH}/10-namespace-rbac.yaml": _dump(*rbac, header="Wave 1: the namespace and the app's RBAC."),
        f"{DEMO_PATH}/20-secrets.yaml": _dump(secret, header="Wave 2: credentials (demo only: never commit "
                                                            "real secrets)."),
        f"{DEMO_PATH}/30-database.yaml": _dump(*database_docs, header="Wave 3: the database."),
        f"{DEMO_PATH}/40-app.yaml": _dump(deployment, service, header="Wave 4: the application."),
    }


def create_demo_repo(root: Path, *, namespace: str = DEMO_NAMESPACE, database: Database = "statefulset") -> DemoRepo:
    """Create the demo under `root` (`repo.git` and `checkout/`), or reuse the one already there.

    Reuse keeps a user's own commits: an existing bare repository is never rewritten. A missing checkout
    is cloned again from it.
    """
    try:
        return _create(root, namespace, database)
    except (pygit2.GitError, OSError) as exc:
        raise ConfigurationError(f"cannot create the demo repository under {root}: {exc}") from None


def _create(root: Path, namespace: str, database: Database) -> DemoRepo:
    bare_path, checkout_path = root / "repo.git", root / "checkout"
    demo = DemoRepo(bare_path, checkout_path)
    if bare_path.exists():
        try:
            bare = pygit2.Repository(str(bare_path))
        except pygit2.GitError as exc:
            raise ConfigurationError(f"{bare_path} exists but is not a git repository: {exc}") from exc
        if f"refs/heads/{DEMO_BRANCH}" not in bare.references:
            raise ConfigurationError(f"{bare_path} has no branch {DEMO_BRANCH!r}; remove it to recreate the demo")
    else:
        root.mkdir(parents=True, exist_ok=True)
        bare = pygit2.init_repository(str(bare_path), bare=True, initial_head=DEMO_BRANCH)
        index = pygit2.Index()
        for rel, text in sorted(demo_manifests(namespace=namespace, database=database).items()):
            blob = bare.create_blob(text.encode("utf-8"))
            index.add(pygit2.IndexEntry(rel, blob, pygit2.enums.FileMode.BLOB))
        tree = index.write_tree(bare)
        sig = _signature()
        bare.create_commit(f"refs/heads/{DEMO_BRANCH}", sig, sig, "WaveCD demo: an app in four sync waves",
                           tree, [])
    if not checkout_path.exists():
        pygit2.clone_repository(demo.url, str(checkout_path), checkout_branch=DEMO_BRANCH)
    _ensure_identity(pygit2.Repository(str(checkout_path)))
    return demo


def _ensure_identity(repo: pygit2.Repository) -> None:
    """Give the checkout a committer identity when git would find none (a fresh home has no ~/.gitconfig),
    so `git commit` works there; a user's own identity, global or local, is left as it is."""
    config = repo.config
    for key, value in zip(("user.name", "user.email"), _AUTHOR, strict=True):
        if key not in config:
            config[key] = value  # written to the checkout's own .git/config


def demo_application(repo: DemoRepo, *, app_namespace: str, name: str = DEMO_APP_NAME,
                     dest_namespace: str = DEMO_NAMESPACE, api_version: str = "argoproj.io/v1alpha1") -> dict[str, Any]:
    """The demo's Application: automated sync with prune and self-heal, creating its namespace."""
    return {
        "apiVersion": api_version, "kind": "Application",
        "metadata": {"name": name, "namespace": app_namespace, "labels": dict(_APP_LABELS)},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.url, "path": repo.path, "targetRevision": repo.branch},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": dest_namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True},
                           "syncOptions": ["CreateNamespace=true"]},
        },
    }
