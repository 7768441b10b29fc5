"""The small pieces of `wavecd admin` that the case files reach only indirectly: header parsing, which
setting `--secret` fills per provider, and the strict check of Application fields."""

from __future__ import annotations

import pytest

from scheduler.cli.admin import (
    AdminInputError,
    parse_application_strictly,
    parse_headers,
    settings_with_secret,
    unknown_fields,
)
from shared.core.models import ResourceIgnoreDifferences
from shared.core.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch):
    for name in ("WAVECD_WEBHOOK_GITEA_SECRET", "WAVECD_WEBHOOK_GITHUB_SECRET"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_headers_keep_values_with_colons():
    assert parse_headers(["Authorization: Basic a:b", " X-GitHub-Event :push "]) == {
        "Authorization": "Basic a:b", "X-GitHub-Event": "push"}


@pytest.mark.parametrize(("headers", "field"), [
    ({"X-GitHub-Event": "push"}, "webhook_github_secret"),
    ({"X-Gitlab-Event": "Push Hook"}, "webhook_gitlab_secret"),
    ({"X-Gitea-Event": "push", "X-GitHub-Event": "push"}, "webhook_gitea_secret"),
    ({"X-Gogs-Event": "push"}, "webhook_gogs_secret"),
    ({"X-Event-Key": "repo:push", "X-Hook-UUID": "u"}, "webhook_bitbucket_uuid"),
    ({"X-Event-Key": "repo:refs_changed"}, "webhook_bitbucketserver_secret"),
])
def test_secret_fills_the_sending_providers_setting(headers, field):
    settings = settings_with_secret(headers, "s3cret")
    assert getattr(settings, field).get_secret_value() == "s3cret"
    others = [f for f in type(settings).model_fields if f.startswith("webhook_") and f.endswith(("_secret", "_uuid"))
              and f != field]
    assert all(getattr(settings, f) is None for f in others)


def test_azure_devops_secret_is_username_and_password():
    settings = settings_with_secret({"X-Vss-ActivityId": "1"}, "hook:p4:ss")
    assert settings.webhook_azuredevops_username == "hook"
    assert settings.webhook_azuredevops_password.get_secret_value() == "p4:ss"
    with pytest.raises(AdminInputError, match="username:password"):
        settings_with_secret({"X-Vss-ActivityId": "1"}, "no-colon")


def _app(**spec_extra):
    spec = {"project": "default", "source": {"repoURL": "https://git.example.com/a.git"},
            "destination": {"namespace": "a"}, **spec_extra}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "a"}, "spec": spec}


def test_unknown_fields_are_found_at_every_depth():
    with pytest.raises(AdminInputError) as caught:
        parse_application_strictly(_app(
            destinaton={"namespace": "x"},
            ignoreDifferences=[{"kind": "Service", "jsonPointer": ["/spec"]}],
            syncPolicy={"retry": {"limit": 1, "backoff": {"duration": "5s", "maxDuraton": "1m"}}},
        ), "apps.yaml")
    message = str(caught.value)
    assert message.startswith("apps.yaml: Application a: unknown field(s) ")
    for path in ("spec.destinaton", "spec.ignoreDifferences[0].jsonPointer",
                 "spec.syncPolicy.retry.backoff.maxDuraton"):
        assert path in message


def test_argo_cd_fields_passed_through_are_not_unknown():
    app = parse_application_strictly(_app(source={"repoURL": "https://g/a.git", "ref": "v", "name": "n"},
                                          syncPolicy={"retry": {"refresh": True}}), "apps.yaml")
    assert app.name == "a"
    assert unknown_fields(ResourceIgnoreDifferences.model_validate({"kind": "Service", "name": "x"}), "") == []


def test_invalid_application_is_one_line_with_its_name():
    bad = _app()
    bad["spec"]["revisionHistoryLimit"] = "ten"
    with pytest.raises(AdminInputError) as caught:
        parse_application_strictly(bad, "apps.yaml")
    assert "apps.yaml: Application a: invalid Application spec: spec.revisionHistoryLimit" in str(caught.value)
    assert "\n" not in str(caught.value)
