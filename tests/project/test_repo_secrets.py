"""Argo CD repository Secrets (`repository`, `repo-creds`) as credentials, one case per file under
tests/testdata/repo_secrets: which URL they match, and a summary that never holds a secret value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.git_credentials import CredentialStore, GitCallbacks, credentials_from_secrets

CASES = sorted((Path(__file__).parent.parent / "testdata" / "repo_secrets").glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_repo_secret_case(path: Path) -> None:
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    entries = credentials_from_secrets([case["secret"]])
    found = CredentialStore(entries).for_url(case["lookup"])
    assert (found is not None) is case["expect"]["matched"]
    if found is None:
        return
    summary = found.summary()
    assert summary == case["expect"]["summary"]
    assert "s3cr3t" not in repr(found) and "s3cr3t" not in str(summary)


def test_insecure_accepts_any_certificate_and_secure_defers_to_libgit2() -> None:
    case = yaml.safe_load((Path(__file__).parent.parent / "testdata" / "repo_secrets" /
                           "tls_client_cert_insecure.yaml").read_text(encoding="utf-8"))
    (insecure,) = credentials_from_secrets([case["secret"]])
    assert GitCallbacks(insecure).certificate_check(None, False, b"git.internal") is True
    secure = yaml.safe_load((Path(__file__).parent.parent / "testdata" / "repo_secrets" /
                             "https_password.yaml").read_text(encoding="utf-8"))
    (entry,) = credentials_from_secrets([secure["secret"]])
    import pygit2

    with pytest.raises(pygit2.Passthrough):
        GitCallbacks(entry).certificate_check(None, False, b"git.example.com")
    assert "s3cr3t-key" in insecure.secrets()  # scrubbed from libgit2 errors like the other secrets
