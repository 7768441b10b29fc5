"""Git over HTTPS with a TLS client certificate: what libgit2 cannot do, done with dulwich.

Argo CD's repository Secrets may carry `tlsClientCertData` / `tlsClientCertKey`, a certificate the git
server demands during the TLS handshake. libgit2 (pygit2) has no way to present one, so for an https://
repository whose credential holds a client certificate, the git cache's ls-remote and fetch go through
dulwich's smart-HTTP client instead, with a urllib3 pool manager whose TLS context carries the
certificate. The pack is written into the same bare repository pygit2 reads (dulwich and libgit2 share
git's on-disk format); the refs are then moved by the cache as after a libgit2 fetch.

Python's ssl module loads a certificate chain only from files: the PEM text is written to a private
temporary directory (mode 0700), loaded into the context, and removed at once. Errors are typed as the
libgit2 path types them, with credentials scrubbed by the caller.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import urllib3
from dulwich.client import HttpGitClient, HTTPUnauthorized, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.repo import Repo

from shared.core.errors import ConfigurationError, TransientError
from shared.core.repo_url import redact_url
from shared.source.git_credentials import RepoCredential

__all__ = ["ClientCertTransport", "needs_client_cert"]

_WANTED_PREFIXES = (b"refs/heads/", b"refs/tags/")


def needs_client_cert(url: str, credential: RepoCredential | None) -> bool:
    """True when `url` is https and its credential holds a client certificate (or half of one)."""
    if credential is None or not (credential.tls_client_cert_data or credential.tls_client_cert_key):
        return False
    return url.strip().lower().startswith("https://")


def tls_context(credential: RepoCredential) -> ssl.SSLContext:
    """A client TLS context presenting the credential's certificate; `insecure` skips server verification,
    as it does for libgit2. Half a certificate, or one that does not load, is a ConfigurationError."""
    cert, key = credential.tls_client_cert_data, credential.tls_client_cert_key
    shown = redact_url(credential.url)
    if not cert or not key:
        missing = "tlsClientCertKey" if cert else "tlsClientCertData"
        raise ConfigurationError(f"repository {shown}: {missing} is missing (a client certificate needs "
                                 "tlsClientCertData and tlsClientCertKey)")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if credential.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    folder = tempfile.mkdtemp(prefix="wavecd-tls-")  # 0700: only this user reads the key, and only now
    try:
        cert_file, key_file = os.path.join(folder, "client.crt"), os.path.join(folder, "client.key")
        for path, text in ((cert_file, cert), (key_file, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text if text.endswith("\n") else text + "\n")
        try:
            context.load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, ValueError):
            # Never quote the reason: OpenSSL's message may echo part of the PEM text.
            raise ConfigurationError(f"repository {shown}: tlsClientCertData / tlsClientCertKey is not a "
                                     "PEM certificate and matching unencrypted private key") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return context


@dataclass
class ClientCertTransport:
    """ls-remote and fetch of one https repository, presenting the credential's client certificate."""

    url: str
    credential: RepoCredential
    timeout: float

    def _client(self) -> tuple[HttpGitClient, str]:
        pool = urllib3.PoolManager(ssl_context=tls_context(self.credential), retries=False,
                                   timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout))
        client, path = get_transport_and_path(self.url, pool_manager=pool, username=self.credential.username,
                                              password=self.credential.password, quiet=True)
        if not isinstance(client, HttpGitClient):
            raise ConfigurationError(f"{redact_url(self.url)} is not an https repository")
        return client, path

    def list_refs(self) -> tuple[dict[str, str], str | None]:
        """`refname -> sha` (branches, tags, peeled tags, HEAD) and the branch HEAD points at."""
        client, path = self._client()
        with _errors(self.url, "listing refs of"), self._quiet():
            result = client.get_refs(path)
        refs = {name.decode(): sha.decode() for name, sha in result.refs.items()
                if sha is not None and (name == b"HEAD" or name.startswith(_WANTED_PREFIXES))}
        head = (result.symrefs or {}).get(b"HEAD")
        return refs, head.decode() if head else None

    def fetch(self, repo_path: str, wanted: list[str]) -> None:
        """Bring `wanted` commits and tags (and what they reach) into the bare repository at `repo_path`;
        refs are left to the caller. Each network read is bounded by the timeout (urllib3's)."""
        client, path = self._client()
        target = Repo(repo_path, bare=True)
        store = target.object_store

        def determine_wants(refs: dict[bytes, bytes], depth: int | None = None) -> list[bytes]:
            return [sha.encode() for sha in dict.fromkeys(wanted) if sha.encode() not in store]

        try:
            with _errors(self.url, "fetching"), self._quiet():
                client.fetch(path, target, determine_wants=determine_wants)
        finally:
            target.close()

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """`insecure: "true"` is the Secret's explicit choice: urllib3's warning on every request is noise."""
        if not self.credential.insecure:
            yield
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            yield


class _errors:  # noqa: N801 - used as a context manager, like contextlib's
    """Typed errors, as git_source types libgit2's: refused credentials or certificate and a missing
    repository are ConfigurationErrors, the network a TransientError. Messages never quote a secret."""

    def __init__(self, url: str, action: str) -> None:
        self.shown = redact_url(url)
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> bool:  # noqa: ANN401
        if exc is None:
            return False
        where = f"{self.action} {self.shown}"
        if isinstance(exc, HTTPUnauthorized):
            raise ConfigurationError(f"{where}: authentication failed (the credentials were rejected)") from None
        if isinstance(exc, NotGitRepository):
            raise ConfigurationError(f"{where}: repository not found") from None
        if isinstance(exc, (ConfigurationError, TransientError)):
            return False
        ssl_error = _ssl_cause(exc)
        if ssl_error is not None:
            reason = getattr(ssl_error, "reason", None) or type(ssl_error).__name__
            raise ConfigurationError(f"{where}: TLS handshake failed ({reason}): the server refused the client "
                                     "certificate or its own certificate is not trusted") from None
        if isinstance(exc, GitProtocolError) and "404" in str(exc):
            raise ConfigurationError(f"{where}: repository not found") from None
        if isinstance(exc, (urllib3.exceptions.HTTPError, OSError, GitProtocolError, HangupException)):
            raise TransientError(f"{where} failed: {type(exc).__name__}") from None
        return False


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    """The ssl error behind urllib3's wrappers (MaxRetryError -> SSLError -> ssl.SSLError), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return current
        if isinstance(current, urllib3.exceptions.SSLError) and current.args and isinstance(
                current.args[0], ssl.SSLError):
            return current.args[0]
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
    return None
