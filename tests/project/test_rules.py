"""Argo CD's project rules, one YAML case per file under tests/testdata/project/<rule>/."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.globs import glob_match
from shared.core.models import Application
from shared.pipeline.project_orphans import find_orphans
from shared.project.model import AppProject, ProjectError, default_project
from shared.project.permissions import Destination, destination_permitted, group_kind_permitted, source_permitted
from shared.project.verdict import PlannedResource, app_violations, namespaced_mode_violations, resource_violations
from shared.project.windows import WindowVerdict, can_sync, matching_windows, window_state

DATA = Path(__file__).parent.parent / "testdata" / "project"


def cases(rule: str) -> list[Path]:
    return sorted((DATA / rule).glob("*.yaml"))


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def project(spec: dict[str, Any]) -> AppProject:
    return AppProject.parse({"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
                             "metadata": {"name": "team"}, "spec": spec})


def ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", cases("sources"), ids=ids(cases("sources")))
def test_source_case(path: Path) -> None:
    case = load(path)
    assert source_permitted(project({"sourceRepos": case["sourceRepos"]}), case["repoURL"]) is case["permitted"]


@pytest.mark.parametrize("path", cases("destinations"), ids=ids(cases("destinations")))
def test_destination_case(path: Path) -> None:
    case = load(path)
    dst = case["destination"]
    dest = Destination(dst.get("server", ""), dst.get("name", ""), dst.get("namespace", ""))
    spec = {"destinations": case["destinations"],
            "permitOnlyProjectScopedClusters": case.get("permitOnlyProjectScopedClusters", False)}
    scoped = [Destination(c.get("server", ""), c.get("name", ""), "") for c in case.get("projectClusters") or []]
    assert destination_permitted(project(spec), dest, scoped) is case["permitted"]


@pytest.mark.parametrize("path", cases("kinds"), ids=ids(cases("kinds")))
def test_kind_case(path: Path) -> None:
    case = load(path)
    res = case["resource"]
    assert group_kind_permitted(project(case["spec"]), res["group"], res["kind"], res["namespaced"],
                                res.get("name", "")) is case["permitted"]


@pytest.mark.parametrize("path", cases("windows"), ids=ids(cases("windows")))
def test_window_case(path: Path) -> None:
    case = load(path)
    proj = project({"syncWindows": case["windows"]})
    app = case["app"]
    dest = Destination(app["server"], app["clusterName"], app["namespace"])
    now = datetime.fromisoformat(case["now"].replace("Z", "+00:00"))
    windows = matching_windows(proj, app["name"], dest)
    assert can_sync(windows, now, manual=False) is case["automated"]
    assert can_sync(windows, now, manual=True) is case["manual"]
    state = window_state(proj, app["name"], dest, now)
    if case["verdict"] is None:
        assert state is None
    else:
        assert state is not None and state.verdict == WindowVerdict(case["verdict"])


@pytest.mark.parametrize("path", cases("invalid"), ids=ids(cases("invalid")))
def test_invalid_project_case(path: Path) -> None:
    case = load(path)
    with pytest.raises(ProjectError) as info:
        AppProject.parse(case["project"])
    assert case["error"] in str(info.value)
    assert "'p'" in str(info.value)  # the project is named


@pytest.mark.parametrize("path", cases("apps"), ids=ids(cases("apps")))
def test_app_case(path: Path) -> None:
    case = load(path)
    app = Application.parse(case["application"])
    dst = app.spec.destination
    found = app_violations(project(case["project"]), app, Destination(dst.server or "", dst.name or "",
                                                                       dst.namespace), case["controlNamespace"])
    assert len(found) == len(case["violations"]), found
    for message, expected in zip(found, case["violations"], strict=True):
        assert expected in message
        assert "s3cr3t" not in message


@pytest.mark.parametrize("path", cases("resources"), ids=ids(cases("resources")))
def test_resource_case(path: Path) -> None:
    case = load(path)
    dst = case["destination"]
    resources = [PlannedResource(r["group"], r["kind"], r["namespace"], r["name"], r["namespaced"])
                 for r in case["resources"]]
    found = resource_violations(project(case["project"]), Destination(dst["server"], dst["name"],
                                                                      dst["namespace"]), resources)
    assert len(found) == len(case["violations"]), [str(v) for v in found]
    for violation, expected in zip(found, case["violations"], strict=True):
        assert expected in str(violation)


def test_every_rule_has_cases() -> None:
    for rule, least in {"sources": 15, "destinations": 12, "kinds": 10, "windows": 14, "invalid": 6, "apps": 8,
                        "resources": 5}.items():
        assert len(cases(rule)) >= least, rule


def test_default_project_allows_everything() -> None:
    proj = default_project()
    assert source_permitted(proj, "https://example.com/any/repo.git")
    assert destination_permitted(proj, Destination("https://anywhere.example.com", "", "any-ns"))
    assert group_kind_permitted(proj, "rbac.authorization.k8s.io", "ClusterRole", namespaced=False)
    assert group_kind_permitted(proj, "apps", "Deployment", namespaced=True)


@pytest.mark.parametrize(("pattern", "text", "separators", "matched"), [
    ("a*c", "abc", "", True), ("a*c", "a/c", "/", False), ("a**c", "a/b/c", "/", True),
    ("a?c", "a/c", "/", False), ("[ab]x", "bx", "", True), ("[!ab]x", "cx", "", True), ("[!ab]x", "ax", "", False),
    ("{x,y}z", "yz", "", True), ("a\\*", "a*", "", True), ("a\\*", "ab", "", False),
    ("[unclosed", "[unclosed", "", False), ("{unclosed", "{unclosed", "", False),
])
def test_glob_dialect(pattern: str, text: str, separators: str, matched: bool) -> None:
    assert glob_match(pattern, text, separators) is matched


@pytest.mark.parametrize("path", cases("orphans"), ids=ids(cases("orphans")))
def test_orphan_case(path: Path) -> None:
    case = load(path)
    found = find_orphans(project(case["project"]), case["objects"], case["namespace"])
    assert [str(o) for o in found] == case["orphans"]


@pytest.mark.parametrize("path", cases("namespaced_mode"), ids=ids(cases("namespaced_mode")))
def test_namespaced_mode_case(path: Path) -> None:
    case = load(path)
    resources = [PlannedResource(r["group"], r["kind"], r["namespace"], r["name"], r["namespaced"])
                 for r in case["resources"]]
    found = namespaced_mode_violations(case["namespaces"], case["clusterResources"], case["destinationNamespace"],
                                       resources)
    assert len(found) == len(case["violations"]), [str(v) for v in found]
    for violation, expected in zip(found, case["violations"], strict=True):
        assert expected in str(violation)


@pytest.mark.parametrize("path", cases("api_validation"), ids=ids(cases("api_validation")))
def test_api_validation_case(path: Path) -> None:
    case = load(path)
    assert AppProject.parse(case["project"]).api_problems() == case["problems"]


def test_a_window_without_target_matches_nothing_but_the_project_still_runs() -> None:
    proj = project({"syncWindows": [{"kind": "deny", "schedule": "* * * * *", "duration": "1h"}]})
    assert window_state(proj, "web", Destination("https://x", "x", "web"), datetime(2026, 5, 4, 12)) is None
