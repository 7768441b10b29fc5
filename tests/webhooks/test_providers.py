"""Every provider's real payload shape: parsed, verified, refused when forged or unsigned, and matched."""

from __future__ import annotations

import base64
import hmac
import json
from pathlib import Path

import pytest

from shared.webhooks import WebhookError, match_apps, parse_webhook
from tests.webhooks.cases import (
    NO_SECRETS,
    PROVIDER_CASES,
    body_bytes,
    forged_headers,
    load,
    make_app,
    settings,
    signed_headers,
)

CASES = [pytest.param(path, id=path.stem) for path in PROVIDER_CASES]
PUSH_CASES = [pytest.param(path, id=path.stem) for path in PROVIDER_CASES if not load(path)["expect"].get("ignored")]
# Providers whose proof is a signature over the body (the others send a token, UUID or basic auth).
SIGNED_CASES = [pytest.param(path, id=path.stem) for path in PROVIDER_CASES
                if load(path)["provider"] in ("github", "bitbucketserver", "gogs", "gitea")]
FIELDS = ("event", "ref", "branch", "tag", "revision", "default_branch", "changed_files", "repo_urls", "more_refs")


def test_every_provider_has_a_testdata_case():
    providers = {load(path)["provider"] for path in PROVIDER_CASES}
    assert providers == {"github", "gitlab", "bitbucket", "bitbucketserver", "gogs", "gitea", "azuredevops"}


@pytest.mark.parametrize("path", CASES)
def test_signed_push_is_parsed_as_documented(path: Path):
    case = load(path)
    body = body_bytes(case)
    event = parse_webhook(signed_headers(case, body), body, settings())
    expect = case["expect"]
    if expect.get("ignored"):
        assert event is None
        return
    assert event is not None
    assert event.provider == case["provider"]
    for name in FIELDS:
        if name in expect:
            assert getattr(event, name) == expect[name], name


@pytest.mark.parametrize("path", PUSH_CASES)
def test_signed_push_refreshes_the_expected_apps(path: Path):
    case = load(path)
    body = body_bytes(case)
    event = parse_webhook(signed_headers(case, body), body, settings())
    assert event is not None
    apps = [make_app(spec) for spec in case["apps"]]
    result = match_apps(event, apps)
    assert result.refresh == case["expect"]["refresh"]
    assert set(result.skipped) == {a.name for a in apps} - set(case["expect"]["refresh"])
    assert all(result.skipped.values()), "every skipped app says why"


@pytest.mark.parametrize("path", CASES)
def test_forged_request_is_refused(path: Path):
    case = load(path)
    body = body_bytes(case)
    with pytest.raises(WebhookError) as err:
        parse_webhook(forged_headers(case, body), body, settings())
    assert err.value.status_code == 403
    assert case["provider"] in err.value.message


@pytest.mark.parametrize("path", CASES)
def test_unsigned_request_is_refused_when_a_secret_is_configured(path: Path):
    case = load(path)
    body = body_bytes(case)
    with pytest.raises(WebhookError) as err:
        parse_webhook(case["headers"], body, settings())
    assert err.value.status_code == 401


@pytest.mark.parametrize("path", SIGNED_CASES)
def test_signature_over_another_body_is_refused(path: Path):
    case = load(path)
    body = body_bytes(case)
    headers = signed_headers(case, body)
    tampered = body.replace(b"apps", b"appz", 1) if b"apps" in body else body + b" "
    with pytest.raises(WebhookError) as err:
        parse_webhook(headers, tampered, settings())
    assert err.value.status_code == 403


@pytest.mark.parametrize("path", CASES)
def test_unsigned_request_is_accepted_without_secrets_unless_required(path: Path):
    case = load(path)
    body = body_bytes(case)
    open_settings = settings(**NO_SECRETS)
    event = parse_webhook(case["headers"], body, open_settings)
    assert (event is None) == bool(case["expect"].get("ignored"))
    with pytest.raises(WebhookError) as err:
        parse_webhook(case["headers"], body, settings(**NO_SECRETS, webhook_require_secrets=True))
    assert err.value.status_code == 403
    assert "webhook_require_secrets" in err.value.message


@pytest.mark.parametrize("path", CASES)
def test_verify_false_skips_authentication(path: Path):
    case = load(path)
    body = body_bytes(case)
    event = parse_webhook(case["headers"], body, settings(webhook_require_secrets=True), verify=False)
    assert (event is None) == bool(case["expect"].get("ignored"))


def test_header_names_are_case_insensitive():
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    body = body_bytes(case)
    headers = {key.upper(): value for key, value in signed_headers(case, body).items()}
    event = parse_webhook(headers, body, settings())
    assert event is not None and event.branch == "main"


def test_gitea_is_verified_with_the_gogs_secret_when_only_that_is_set():
    case = load(next(p for p in PROVIDER_CASES if p.stem == "gitea-push"))
    body = body_bytes(case)
    only_gogs = settings(webhook_gitea_secret=None)
    signed_with_gogs = {**case["headers"], "X-Gitea-Signature": hmac.new(b"gogs-s3cret", body, "sha256").hexdigest()}
    assert parse_webhook(signed_with_gogs, body, only_gogs) is not None
    with pytest.raises(WebhookError) as err:
        parse_webhook(case["headers"], body, only_gogs)
    assert err.value.status_code == 401


def test_bitbucket_uuid_compares_without_braces_or_case():
    case = load(next(p for p in PROVIDER_CASES if p.stem == "bitbucket-push"))
    body = body_bytes(case)
    headers = {**case["headers"], "X-Hook-UUID": "8D1C6F2E-3B4A-4C5D-9E6F-7A8B9C0D1E2F"}
    assert parse_webhook(headers, body, settings()) is not None


def test_azure_basic_auth_with_wrong_username_is_refused():
    case = load(next(p for p in PROVIDER_CASES if p.stem == "azuredevops-git-push"))
    body = body_bytes(case)
    headers = {**case["headers"], "Authorization": "Basic " + base64.b64encode(b"intruder:az-p4ss").decode()}
    with pytest.raises(WebhookError) as err:
        parse_webhook(headers, body, settings())
    assert err.value.status_code == 403
    garbled = {**case["headers"], "Authorization": "Basic %%%not-base64"}
    with pytest.raises(WebhookError) as err:
        parse_webhook(garbled, body, settings())
    assert err.value.status_code == 401


def test_oversized_body_is_refused_before_parsing():
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    body = body_bytes(case)
    with pytest.raises(WebhookError) as err:
        parse_webhook(signed_headers(case, body), body, settings(webhook_max_bytes=len(body) - 1))
    assert err.value.status_code == 413


def test_refusals_never_echo_the_secret_or_the_signature():
    case = load(next(p for p in PROVIDER_CASES if p.stem == "github-push"))
    body = body_bytes(case)
    headers = forged_headers(case, body)
    with pytest.raises(WebhookError) as err:
        parse_webhook(headers, body, settings())
    assert "gh-s3cret" not in str(err.value)
    assert headers["X-Hub-Signature-256"][7:] not in str(err.value)


def test_gitlab_system_hook_push_without_ref_is_a_clear_400():
    case = load(next(p for p in PROVIDER_CASES if p.stem == "gitlab-system-hook-push"))
    body = json.dumps({**{k: v for k, v in case["body"].items() if k != "ref"}}).encode()
    with pytest.raises(WebhookError) as err:
        parse_webhook(signed_headers(case, body), body, settings())
    assert err.value.status_code == 400
    assert err.value.message == "invalid gitlab push payload: ref: Field required"
