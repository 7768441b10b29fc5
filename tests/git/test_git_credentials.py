"""Credential lookup (Argo CD's repository and repo-creds rules) and the pygit2 callbacks."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pygit2
import pytest

from shared.core.errors import ConfigurationError
from shared.source.git_credentials import (
    AuthenticationFailed,
    CredentialStore,
    GitCallbacks,
    RepoCredential,
    credentials_from_secrets,
)

T = pygit2.enums.CredentialType


def test_longest_prefix_wins() -> None:
    store = CredentialStore.from_mapping({
        "https://github.com/": {"username": "org", "password": "p-broad"},
        "https://github.com/team/": {"username": "team", "password": "p-team"},
    })
    assert store.for_url("https://github.com/team/app.git").password == "p-team"
    assert store.for_url("https://github.com/other/app").password == "p-broad"
    assert store.for_url("https://gitlab.com/team/app") is None


def test_https_credentials_are_not_offered_to_plain_http() -> None:
    store = CredentialStore.from_mapping({"https://git.example.com/": {"username": "u", "password": "p"}})
    assert store.for_url("http://git.example.com/repo.git") is None


def test_exact_repository_entry_beats_templates() -> None:
    store = CredentialStore([
        RepoCredential("https://github.com/", "tmpl", "p-tmpl"),
        RepoCredential("https://github.com/org/repo", "repo", "p-repo", exact=True),
    ])
    assert store.for_url("https://GitHub.com/org/repo.git").password == "p-repo"
    assert store.for_url("https://github.com/org/repo-two").password == "p-tmpl"


def test_repr_never_shows_secrets() -> None:
    cred = RepoCredential("https://u:inline-pw@h/r", "u", "the-password", "-----BEGIN KEY-----")
    text = repr(cred) + repr(CredentialStore([cred]))
    assert "the-password" not in text and "BEGIN KEY" not in text and "inline-pw" not in text


def test_from_file_yaml_and_json(tmp_path: Path, monkeypatch) -> None:
    yaml_file = tmp_path / "creds.yaml"
    yaml_file.write_text("https://git.example.com/:\n  username: u\n  password: p1\n")
    json_file = tmp_path / "creds.json"
    json_file.write_text(json.dumps({"ssh://git.example.com/": {"sshPrivateKey": "KEY"}}))
    assert CredentialStore.from_file(yaml_file).for_url("https://git.example.com/a").password == "p1"
    assert CredentialStore.from_file(json_file).for_url("git@git.example.com:a/b").ssh_private_key == "KEY"
    monkeypatch.setenv("WAVECD_REPO_CREDENTIALS_FILE", str(yaml_file))
    assert CredentialStore.from_env().for_url("https://git.example.com/x").username == "u"


def test_bad_files_are_clear_errors_without_content(tmp_path: Path) -> None:
    broken = tmp_path / "creds.yaml"
    broken.write_text("https://h/: {password: hunter2-secret\n")
    with pytest.raises(ConfigurationError) as info:
        CredentialStore.from_file(broken)
    assert "hunter2" not in str(info.value) and str(broken) in str(info.value)
    with pytest.raises(ConfigurationError, match="unknown field"):
        CredentialStore.from_mapping({"https://h/": {"pasword": "typo"}})
    with pytest.raises(ConfigurationError, match="cannot read"):
        CredentialStore.from_file(tmp_path / "absent.yaml")


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_argo_cd_secrets_become_entries() -> None:
    secrets = [
        {"metadata": {"name": "repo", "labels": {"argocd.argoproj.io/secret-type": "repository"}},
         "data": {"url": _b64("https://github.com/org/repo"), "username": _b64("u"), "password": _b64("p")}},
        {"metadata": {"name": "tmpl", "labels": {"argocd.argoproj.io/secret-type": "repo-creds"}},
         "stringData": {"url": "git@github.com:org", "sshPrivateKey": "KEY"}},
        {"metadata": {"name": "helm", "labels": {"argocd.argoproj.io/secret-type": "repository"}},
         "stringData": {"url": "https://charts.example.com", "type": "helm", "password": "x"}},
        {"metadata": {"name": "other", "labels": {"app": "x"}},
         "stringData": {"url": "https://x", "password": "y"}},
    ]
    entries = credentials_from_secrets(secrets)
    assert [(e.url, e.exact) for e in entries] == [("https://github.com/org/repo", True),
                                                     ("git@github.com:org", False)]
    store = CredentialStore(entries)
    assert store.for_url("https://github.com/org/repo.git").password == "p"
    assert store.for_url("git@github.com:org/other.git").ssh_private_key == "KEY"


def test_secret_with_bad_base64_is_named() -> None:
    secret = {"metadata": {"name": "r", "namespace": "argocd",
                           "labels": {"argocd.argoproj.io/secret-type": "repository"}},
              "data": {"url": "!!!"}}
    with pytest.raises(ConfigurationError, match="argocd/r"):
        credentials_from_secrets([secret])


def test_callbacks_hand_out_the_right_credential_type_once() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n"
    ssh = GitCallbacks(RepoCredential("ssh://h/", ssh_private_key=key))
    cred = ssh.credentials("ssh://git@h/r", "git", T.SSH_KEY)
    assert isinstance(cred, pygit2.KeypairFromMemory)
    assert cred.credential_tuple[0] == "git" and cred.credential_tuple[2] == key
    with pytest.raises(AuthenticationFailed, match="rejected"):
        ssh.credentials("ssh://git@h/r", "git", T.SSH_KEY)
    https = GitCallbacks(RepoCredential("https://h/", "user", "pw"))
    userpass = https.credentials("https://h/r", None, T.USERPASS_PLAINTEXT)
    assert isinstance(userpass, pygit2.UserPass) and userpass.credential_tuple == ("user", "pw")
    with pytest.raises(AuthenticationFailed, match="kind of credential"):
        GitCallbacks(RepoCredential("https://h/", "user", "pw")).credentials("ssh://h/r", "git", T.SSH_KEY)
    with pytest.raises(AuthenticationFailed, match="none are configured"):
        GitCallbacks(None).credentials("https://h/r", None, T.USERPASS_PLAINTEXT)
    assert https.scrub("failed with pw in it") == "failed with *** in it"
