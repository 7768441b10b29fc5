"""Git credentials per repository URL, and the pygit2 callbacks that hand them to libgit2.

Configured as Argo CD does: *repository* entries match one repository (any spelling of its URL), and
*credential templates* (`repo-creds`) match every repository whose URL starts with their prefix, the
longest prefix winning. Sources: a mapping `{url_prefix: {"username", "password", "sshPrivateKey"}}`, a
JSON/YAML file named by `WAVECD_REPO_CREDENTIALS_FILE`, and Argo CD's Secrets labelled
`argocd.argoproj.io/secret-type: repository|repo-creds` (turned into entries by a pure function; reading
the cluster happens elsewhere).

Secrets never leave this module in readable form: `repr` hides them, and `secrets()` lists them so that
callers can scrub any text (libgit2 errors) before it reaches a log or a status.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pygit2
import yaml

from shared.core.errors import ConfigurationError
from shared.core.repo_url import normalize_repo_url, redact_url, same_repo

CREDENTIALS_FILE_ENV = "WAVECD_REPO_CREDENTIALS_FILE"
SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
_FIELDS = {"username", "password", "sshPrivateKey"}


@dataclass(frozen=True)
class RepoCredential:
    """One credential entry. `exact` entries (Argo CD repository secrets) match a single repository.

    From Secrets also: `insecure` (accept any server certificate), `name`, `project` (Argo CD's
    project-scoped repositories: the entry serves only apps of that project), and
    `tlsClientCertData`/`tlsClientCertKey`, kept and never shown; libgit2 has no client-certificate hook,
    so the git cache fetches an https repository with a client certificate through `git_https` (dulwich)."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    exact: bool = False
    insecure: bool = False
    tls_client_cert_data: str | None = field(default=None, repr=False)
    tls_client_cert_key: str | None = field(default=None, repr=False)
    name: str = ""
    project: str = ""

    def __repr__(self) -> str:
        pairs = (("password", self.password), ("sshPrivateKey", self.ssh_private_key),
                 ("tlsClientCertKey", self.tls_client_cert_key))
        kinds = [name for name, value in pairs if value]
        return (f"RepoCredential(url={redact_url(self.url)!r}, username={self.username!r}, "
                f"secrets={kinds}, exact={self.exact})")

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.ssh_private_key, self.tls_client_cert_key) if s]

    def fingerprint(self) -> str:
        """A digest of every field, to tell credentials apart in this process's memory (never stored)."""
        fields = (self.url, self.username, self.password, self.ssh_private_key, self.tls_client_cert_data,
                  self.tls_client_cert_key, self.insecure, self.exact, self.project)
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()

    def summary(self) -> dict[str, Any]:
        """What `repo list` may show: never a secret value, only which kinds of credential exist."""
        return {"url": redact_url(self.url), "name": self.name, "project": self.project,
                "kind": "repository" if self.exact else "repo-creds", "type": "git",
                "username": bool(self.username), "password": bool(self.password),
                "sshPrivateKey": bool(self.ssh_private_key),
                "tlsClientCert": bool(self.tls_client_cert_data or self.tls_client_cert_key),
                "insecure": self.insecure}


def _scheme(url: str) -> str:
    text = url.strip()
    if "://" in text:
        return text.split("://", 1)[0].lower()
    return "file" if text.startswith("/") else "ssh"


def _match_key(url: str) -> str:
    """Argo CD compares normalized URLs; we also keep the scheme, so an https password is never offered
    to an http:// URL of the same host."""
    normalized = normalize_repo_url(url)
    return normalized if normalized.startswith("file://") else f"{_scheme(url)}://{normalized}"


class CredentialStore:
    """Finds the credential for a repository URL: an exact repository entry, else the longest prefix."""

    def __init__(self, entries: Iterable[RepoCredential] = ()) -> None:
        self.entries = list(entries)

    def __repr__(self) -> str:
        return f"CredentialStore({len(self.entries)} entries)"

    def for_url(self, url: str, project: str | None = None) -> RepoCredential | None:
        """The credential for `url` as an app of `project` may use it, as Argo CD's GetRepository picks:
        an entry scoped to that project first, then an unscoped one; an entry scoped to another project
        never. With `project=None` (the per-repository fetch, which serves apps of every project) any
        entry may be used, unscoped first: the project gate decides which apps may read what it fetched."""
        exact = [e for e in self.entries
                 if e.exact and _scheme(e.url) == _scheme(url) and same_repo(e.url, url)]
        found = _pick(exact, project)
        if found is not None:
            return found
        key = _match_key(url)
        by_length: dict[int, list[RepoCredential]] = {}
        for entry in self.entries:
            if not entry.exact and key.startswith(prefix := _match_key(entry.url)):
                by_length.setdefault(len(prefix), []).append(entry)
        for length in sorted(by_length, reverse=True):
            found = _pick(by_length[length], project)
            if found is not None:
                return found
        return None

    def scoped_to_others(self, url: str, project: str) -> bool:
        """Whether an entry matching `url` is scoped to a project other than `project`: then the shared
        clone of the repository may hold what that project's credential fetched."""
        key = _match_key(url)
        return any(e.project and e.project != project and (
            (e.exact and _scheme(e.url) == _scheme(url) and same_repo(e.url, url))
            or (not e.exact and key.startswith(_match_key(e.url)))) for e in self.entries)

    def all_secrets(self) -> list[str]:
        return [secret for entry in self.entries for secret in entry.secrets()]

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, source: str = "credentials") -> CredentialStore:
        """`{url_prefix: {"username": ..., "password": ..., "sshPrivateKey": ...}}` (prefix templates)."""
        if not isinstance(mapping, Mapping):
            raise ConfigurationError("repository credentials must be a mapping of URL prefix to credentials",
                                     path=source)
        entries = []
        for prefix, values in mapping.items():
            shown = redact_url(str(prefix))
            if not isinstance(values, Mapping):
                raise ConfigurationError(f"credentials for {shown!r} must be a mapping", path=source)
            unknown = sorted(set(values) - _FIELDS)
            if unknown:
                raise ConfigurationError(f"credentials for {shown!r}: unknown field(s) {', '.join(unknown)} "
                                         f"(expected {', '.join(sorted(_FIELDS))})", path=source)
            entries.append(_entry(str(prefix), values, exact=False, source=source))
        return cls(entries)

    @classmethod
    def from_file(cls, path: str | Path) -> CredentialStore:
        """Load the mapping from a JSON or YAML file."""
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not valid UTF-8"
            raise ConfigurationError(f"cannot read repository credentials file: {reason}",
                                     path=str(file)) from None
        try:
            data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError):
            # Never quote the content: it is full of secrets.
            raise ConfigurationError("repository credentials file is not valid JSON/YAML",
                                     path=str(file)) from None
        return cls.from_mapping(data or {}, source=str(file))

    @classmethod
    def from_env(cls, extra: Iterable[RepoCredential] = ()) -> CredentialStore:
        """Entries from `$WAVECD_REPO_CREDENTIALS_FILE` (when set) plus `extra` (e.g. from Secrets)."""
        entries = list(extra)
        path = os.environ.get(CREDENTIALS_FILE_ENV)
        if path:
            entries.extend(cls.from_file(path).entries)
        return cls(entries)

    def callbacks(self, url: str) -> GitCallbacks:
        """pygit2 callbacks for `url`: credentials from this store, or from the URL's own userinfo."""
        return GitCallbacks(self.for_url(url) or credential_from_url(url))


def _pick(entries: list[RepoCredential], project: str | None) -> RepoCredential | None:
    """The first of equally specific entries that `project` may use: its own, then an unscoped one."""
    if project is not None:
        own = next((e for e in entries if e.project and e.project == project), None)
        return own or next((e for e in entries if not e.project), None)
    return next((e for e in entries if not e.project), None) or next(iter(entries), None)


def _entry(url: str, values: Mapping[str, Any], *, exact: bool, source: str) -> RepoCredential:
    def text(name: str) -> str | None:
        value = values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigurationError(f"credentials for {redact_url(url)!r}: {name} must be a string",
                                     path=source)
        return value

    insecure = values.get("insecure", False)
    return RepoCredential(url=url, username=text("username"), password=text("password"),
                          ssh_private_key=text("sshPrivateKey"), exact=exact,
                          insecure=str(insecure).strip().lower() == "true",
                          tls_client_cert_data=text("tlsClientCertData"), tls_client_cert_key=text("tlsClientCertKey"),
                          name=text("name") or "", project=text("project") or "")


def credential_from_url(url: str) -> RepoCredential | None:
    """`https://user:token@host/repo` carries its own credential; libgit2 then gets the redacted URL."""
    if "://" not in url:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return None
    return RepoCredential(url=redact_url(url), username=unquote(parts.username or ""),
                          password=unquote(parts.password), exact=True)


def credentials_from_secrets(secrets: Iterable[Mapping[str, Any]]) -> list[RepoCredential]:
    """Argo CD repository Secrets (as dicts) -> entries. Pure: the caller reads the cluster.

    `secret-type: repository` secrets match one repository, `repo-creds` a URL prefix. Values come from
    `stringData` or base64 `data`; Secrets of other types, of type helm/oci, or without `url` are skipped.
    """
    entries = []
    for secret in secrets:
        meta = secret.get("metadata") or {}
        kind = (meta.get("labels") or {}).get(SECRET_TYPE_LABEL)
        if kind not in ("repository", "repo-creds"):
            continue
        name = f"Secret {meta.get('namespace') or ''}/{meta.get('name') or ''}".replace(" /", " ")
        values = _secret_values(secret, name)
        if values.get("type", "git") != "git" or not values.get("url"):
            continue
        entries.append(_entry(values["url"], values, exact=kind == "repository", source=name))
    return entries


def _secret_values(secret: Mapping[str, Any], name: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, raw in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(raw), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigurationError(f"data.{key} is not valid base64 UTF-8 text", path=name) from None
    for key, raw in (secret.get("stringData") or {}).items():
        values[key] = str(raw)
    return values


class AuthenticationFailed(Exception):  # noqa: N818 - raised through libgit2, mapped by git_source
    """The remote refused our credentials (libgit2 asked again), or it wants some we do not have."""


class GitCallbacks(pygit2.RemoteCallbacks):
    """Answers libgit2's credential requests once; a second request means the credential was refused."""

    def __init__(self, credential: RepoCredential | None) -> None:
        super().__init__()
        self.credential = credential
        self.attempts = 0

    def credentials(self, url: str, username_from_url: str | None,
                    allowed_types: pygit2.enums.CredentialType) -> Any:  # noqa: ANN401 - a pygit2 credential
        self.attempts += 1
        cred = self.credential
        shown = redact_url(url)
        if cred is None:
            raise AuthenticationFailed(f"{shown} requires credentials and none are configured for it")
        if self.attempts > 1:
            raise AuthenticationFailed(f"authentication to {shown} failed: the credentials were rejected")
        types = pygit2.enums.CredentialType
        if allowed_types & types.SSH_KEY and cred.ssh_private_key:
            return pygit2.KeypairFromMemory(username_from_url or cred.username or "git", None,
                                            cred.ssh_private_key, "")
        if allowed_types & types.USERPASS_PLAINTEXT and cred.password is not None:
            return pygit2.UserPass(cred.username or username_from_url or "", cred.password)
        if allowed_types & types.USERNAME and (cred.username or username_from_url):
            return pygit2.Username(cred.username or username_from_url or "")
        raise AuthenticationFailed(f"{shown} asks for a kind of credential that is not configured for it")

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        """`insecure: "true"` on the repository Secret accepts any server certificate, as in Argo CD."""
        if self.credential is not None and self.credential.insecure:
            return True
        return super().certificate_check(certificate, valid, host)

    def scrub(self, text: str) -> str:
        """`text` with this callback's secrets replaced by `***`."""
        for secret in self.credential.secrets() if self.credential else []:
            text = text.replace(secret, "***")
        return text
