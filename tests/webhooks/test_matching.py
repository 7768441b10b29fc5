"""Which apps a push refreshes (Argo CD's rules plus WaveCD's path check), one testdata file per case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shared.webhooks import PushEvent, match_apps
from shared.webhooks.event import split_ref
from shared.webhooks.matching import file_touches, refresh_paths
from tests.webhooks.cases import MATCHING_CASES, load, make_app


def _event(spec: dict[str, Any]) -> PushEvent:
    branch, tag = split_ref(spec["ref"])
    return PushEvent(
        provider="test",
        repo_urls=spec["repo_urls"],
        ref=spec["ref"],
        revision=spec.get("revision", "1111111111111111111111111111111111111111"),
        branch=branch,
        tag=tag,
        default_branch=spec.get("default_branch"),
        changed_files=spec.get("changed_files"),
        event="push",
        more_refs=spec.get("more_refs", []),
    )


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem) for p in MATCHING_CASES])
def test_matching_case(path: Path):
    case = load(path)
    apps = [make_app(spec) for spec in case["apps"]]
    result = match_apps(_event(case["event"]), apps)
    assert result.refresh == case["refresh"], case["description"]
    assert set(result.skipped) == {a.name for a in apps} - set(case["refresh"])
    for name, fragment in case["skipped"].items():
        assert fragment in result.skipped[name], (name, result.skipped[name])
    if "watch" in case:  # skipped by path only: their repository is fetched, the detection decides
        assert result.watch == case["watch"], case["description"]
    assert set(result.watch) <= set(result.skipped)


def test_every_matching_case_checks_both_outcomes_or_says_why():
    for path in MATCHING_CASES:
        case = load(path)
        assert case["description"], path.name
        assert case["refresh"] or case["skipped"], path.name


def test_refresh_paths_join_annotation_entries_to_every_moved_source():
    app = make_app({"name": "x", "sources": [
        {"repoURL": "https://github.com/a/b", "path": "one", "targetRevision": "main"},
        {"repoURL": "https://github.com/a/b", "path": "two/", "targetRevision": "main"}],
        "annotations": {"argocd.argoproj.io/manifest-generate-paths": "../common;/abs/dir;."}})
    paths = refresh_paths(app, app.spec.sources or [])
    assert paths == ["one", "two", "common", "abs/dir"]


@pytest.mark.parametrize(("changed", "path", "touches"), [
    ("apps/a/x.yaml", "apps/a", True),
    ("apps/a", "apps/a", True),
    ("/apps/a/x.yaml", "apps/a", True),
    ("apps/ab/x.yaml", "apps/a", False),
    ("apps/x.yaml", "apps/a", False),
    ("anything.md", ".", True),
    ("charts/web/templates/d.yaml", "charts/*", True),
    ("charts.yaml", "charts/*", False),
    ("values/prod-eu.yaml", "values/prod-*.yaml", True),
    ("values/eu/prod.yaml", "values/*.yaml", False),
    ("../escape.yaml", ".", False),
])
def test_file_touches(changed: str, path: str, touches: bool):
    assert file_touches(changed, path) is touches
