"""The demo repository `wavecd up` deploys: its sync waves, its Application, and git round trips."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pygit2
import pytest
import yaml

from shared.apps.demo import DemoRepo, create_demo_repo, demo_application, demo_manifests
from shared.core.errors import ConfigurationError
from shared.core.models import Application
from shared.core.resources import SYNC_WAVE_ANNOTATION


def _docs(files: dict[str, str]) -> list[dict[str, Any]]:
    return [doc for name, text in files.items() if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def _waves(files: dict[str, str]) -> dict[tuple[str, str], int]:
    return {(d["kind"], d["metadata"]["name"]): int(d["metadata"]["annotations"][SYNC_WAVE_ANNOTATION])
            for d in _docs(files)}


def test_statefulset_demo_has_the_four_waves_users_deploy():
    assert _waves(demo_manifests(password="pw")) == {
        ("Namespace", "demo"): 1, ("ServiceAccount", "demo-app"): 1, ("Role", "demo-app"): 1,
        ("RoleBinding", "demo-app"): 1,
        ("Secret", "db-credentials"): 2,
        ("StatefulSet", "postgres"): 3, ("Service", "postgres"): 3,
        ("Deployment", "demo-app"): 4, ("Service", "demo-app"): 4,
    }


def test_cnpg_demo_replaces_the_statefulset_with_a_cluster():
    waves = _waves(demo_manifests(database="cnpg", password="pw"))
    assert waves[("Cluster", "postgres")] == 3
    assert ("StatefulSet", "postgres") not in waves
    cluster = next(d for d in _docs(demo_manifests(database="cnpg")) if d["kind"] == "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"] == "db-credentials"


def test_every_namespaced_object_goes_to_the_chosen_namespace():
    docs = _docs(demo_manifests(namespace="shop", password="pw"))
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"shop"}
    assert next(d for d in docs if d["kind"] == "Namespace")["metadata"]["name"] == "shop"


def test_each_demo_gets_its_own_password():
    def password(files: dict[str, str]) -> str:
        return next(d for d in _docs(files) if d["kind"] == "Secret")["stringData"]["password"]

    first, second = password(demo_manifests()), password(demo_manifests())
    assert first != second and len(first) >= 20


def test_unknown_database_is_a_clear_error():
    with pytest.raises(ConfigurationError, match="unknown demo database 'mysql'"):
        demo_manifests(database="mysql")  # type: ignore[arg-type]


def test_application_is_automated_with_prune_self_heal_and_create_namespace(tmp_path: Path):
    repo = create_demo_repo(tmp_path / "demo")
    doc = demo_application(repo, app_namespace="wavecd-apps")
    app = Application.parse(doc)
    assert app.name == "demo" and app.namespace == "wavecd-apps"
    assert app.spec.sync_policy.automated is not None
    assert app.spec.sync_policy.automated.prune and app.spec.sync_policy.automated.self_heal
    assert "CreateNamespace=true" in app.spec.sync_policy.sync_options
    assert app.spec.destination.namespace == "demo"
    source = app.spec.primary_source
    assert source.repo_url == f"file://{tmp_path / 'demo' / 'repo.git'}"
    assert source.path == "manifests" and source.target_revision == "main"


def test_repository_holds_the_manifests_at_its_head(tmp_path: Path):
    repo = create_demo_repo(tmp_path / "demo")
    bare = pygit2.Repository(str(repo.bare))
    assert bare.is_bare
    tree = bare.get(repo.head()).tree
    names = sorted(entry.name for entry in tree["manifests"])
    assert names == ["10-namespace-rbac.yaml", "20-secrets.yaml", "30-database.yaml", "40-app.yaml"]
    # The checkout is a clone of it, ready for `git commit && git push`.
    checkout = pygit2.Repository(str(repo.checkout))
    assert checkout.remotes["origin"].url == repo.url
    assert str(checkout.head.target) == repo.head()
    assert (repo.checkout / "manifests" / "40-app.yaml").is_file()


def test_commit_pushes_to_the_bare_repository_and_deletes_files(tmp_path: Path):
    repo = create_demo_repo(tmp_path / "demo")
    first = repo.head()
    app_file = repo.checkout / "manifests" / "40-app.yaml"
    sha = repo.commit({"manifests/40-app.yaml": app_file.read_text().replace("replicas: 2", "replicas: 3"),
                       "manifests/20-secrets.yaml": None}, "Scale up, drop the secret")
    assert repo.head() == sha != first
    commit = pygit2.Repository(str(repo.bare)).get(sha)
    assert [str(p) for p in commit.parent_ids] == [first]
    files = {entry.name for entry in commit.tree["manifests"]}
    assert "20-secrets.yaml" not in files
    scaled = yaml.safe_load_all(commit.tree["manifests"]["40-app.yaml"].data.decode())
    assert next(d for d in scaled if d["kind"] == "Deployment")["spec"]["replicas"] == 3


def test_creating_again_keeps_the_users_commits(tmp_path: Path):
    repo = create_demo_repo(tmp_path / "demo")
    sha = repo.commit({"notes.txt": "mine\n"}, "A user's commit")
    again = create_demo_repo(tmp_path / "demo")
    assert again.head() == sha


def test_a_lost_checkout_is_cloned_again(tmp_path: Path):
    import shutil

    repo = create_demo_repo(tmp_path / "demo")
    shutil.rmtree(repo.checkout)
    again = create_demo_repo(tmp_path / "demo")
    assert str(pygit2.Repository(str(again.checkout)).head.target) == repo.head()


def test_something_else_in_the_way_is_a_clear_error(tmp_path: Path):
    (tmp_path / "demo" / "repo.git").mkdir(parents=True)
    with pytest.raises(ConfigurationError, match="is not a git repository"):
        create_demo_repo(tmp_path / "demo")


def test_commit_refuses_paths_outside_the_checkout(tmp_path: Path):
    repo = create_demo_repo(tmp_path / "demo")
    with pytest.raises(ConfigurationError, match="outside the checkout"):
        repo.commit({"../escape.txt": "x"}, "nope")
    assert not (tmp_path / "demo" / "escape.txt").exists()


def test_hint_names_the_checkout(tmp_path: Path):
    repo = DemoRepo(tmp_path / "repo.git", tmp_path / "checkout")
    assert str(tmp_path / "checkout") in repo.hint() and "git push" in repo.hint()


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError, match="cannot create the demo repository under"):
        create_demo_repo(blocker / "demo")


def test_manifests_carry_no_yaml_anchors():
    """A label map used twice (selector and pod labels) is written out twice, as a person would."""
    for database in ("statefulset", "cnpg"):
        for name, text in demo_manifests(database=database, password="pw").items():
            assert "&id" not in text and "*id" not in text, f"{name} has YAML anchors:\n{text}"
    deployment = next(d for d in _docs(demo_manifests(password="pw")) if d["kind"] == "Deployment")
    assert deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]


@pytest.mark.skipif(shutil.which("git") is None, reason="the git command is not installed")
def test_the_suggested_git_commit_works_in_a_home_without_a_git_identity(tmp_path: Path):
    home = tmp_path / "user"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1"}
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        assert var not in env
    # pygit2 looks for global and system config as git does: point it at the same empty home.
    levels = (pygit2.enums.ConfigLevel.GLOBAL, pygit2.enums.ConfigLevel.XDG, pygit2.enums.ConfigLevel.SYSTEM)
    saved = {level: pygit2.settings.search_path[level] for level in levels}
    try:
        for level in levels:
            pygit2.settings.search_path[level] = str(home)
        demo = create_demo_repo(tmp_path / "demo")
    finally:
        for level, path in saved.items():
            pygit2.settings.search_path[level] = path
    assert "email = demo@wavecd.invalid" in (demo.checkout / ".git" / "config").read_text()
    app_file = demo.checkout / "manifests" / "40-app.yaml"
    app_file.write_text(app_file.read_text().replace("replicas: 2", "replicas: 3"))
    for command in (["git", "commit", "-am", "Scale the app"], ["git", "push"]):
        result = subprocess.run(command, cwd=demo.checkout, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{' '.join(command)}: {result.stdout}{result.stderr}"
    assert demo.head() == str(pygit2.Repository(str(demo.checkout)).head.target)
