"""The local git cache: one bare clone per repository, fetched only when the remote moved.

`fetch` is the first step of every reconcile, and a monorepo has many apps: the cache makes that step
cheap. One bare repository per normalized URL (every spelling of a URL shares it); before fetching, the
remote's refs are listed (ls-remote) and compared with the local refs, and the fetch is skipped when they
are equal, as Flux's optimized clone does. Revisions resolve as Argo CD resolves `targetRevision`: `HEAD`
(the remote's default branch), a branch, a tag, a full or a short commit SHA.

Several worker processes on one host share the cache: a file lock per repository serializes fetches,
and libgit2 writes packs before it moves refs, so a fetch interrupted half way leaves the old refs
pointing at complete objects and the next fetch simply starts again.

Every libgit2 error is redacted (URL userinfo and configured secrets) before it becomes a typed error:
network trouble is a TransientError, refused credentials or a missing revision a ConfigurationError.

An https repository whose credential holds a TLS client certificate (`tlsClientCertData`/`Key`) is
listed and fetched through `git_https` (dulwich), since libgit2 cannot present one; the objects land in
the same bare repository and everything after the fetch is the same.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import filelock
import pygit2

from shared.core.errors import ConfigurationError, TransientError
from shared.core.repo_url import normalize_repo_url, redact_text, redact_url
from shared.source.git_credentials import AuthenticationFailed, CredentialStore, GitCallbacks, RepoCredential
from shared.source.git_https import ClientCertTransport, needs_client_cert
from shared.source.manifests import clean_app_path

log = logging.getLogger(__name__)

# Set by the worker's instrumentation: called with ("ls-remote" | "fetch", url, seconds) after each
# request to a remote, so git traffic shows in metrics without this module knowing about Prometheus.
on_request: Callable[[str, str, float], None] | None = None


def _report(kind: str, url: str, started: float) -> None:
    hook = on_request
    if hook is not None:
        try:
            hook(kind, redact_url(url), time.monotonic() - started)
        except Exception:  # noqa: BLE001 - metrics never break a fetch
            log.debug("git request hook failed", exc_info=True)

PROBE_TTL = 300.0
_FULL_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-fA-F]{7,39}$")
_REFSPECS = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]
_AUTH_HINTS = ("authentication", "401", "403", "credentials", "permission denied", "publickey")
_NOT_FOUND_HINTS = ("404", "not found", "could not find repository", "does not appear to be a git repository",
                    "failed to resolve path", "not a git repository")


@dataclass
class FetchResult:
    """What `fetch` did: `fetched` is False when the remote had not moved since the last fetch."""

    fetched: bool
    refs: dict[str, str] = field(default_factory=dict)


def _transport_url(url: str) -> str:
    """The URL libgit2 sees: a password in the URL is removed (it goes through the callbacks instead)."""
    text = url.strip()
    if "://" in text and urlsplit(text).password is not None:
        return redact_url(text)
    return text


class _FetchCallbacks(GitCallbacks):
    """Credentials plus a deadline: libgit2 calls `transfer_progress` often, and raising aborts."""

    def __init__(self, base: GitCallbacks, deadline: float,
                 progress: Callable[[int, int], None] | None) -> None:
        super().__init__(base.credential)
        self.deadline = deadline
        self.progress = progress

    def transfer_progress(self, stats: Any) -> None:  # noqa: ANN401 - pygit2.TransferProgress
        if time.monotonic() > self.deadline:
            raise TransientError("git fetch timed out")
        if self.progress is not None:
            self.progress(int(stats.received_objects), int(stats.total_objects))


class RepoCache:
    """Bare clones under `cache_dir`, shared safely by the processes of one host."""

    def __init__(self, cache_dir: Path, credentials: CredentialStore | None = None, timeout: float = 60.0,
                 *, progress: Callable[[int, int], None] | None = None) -> None:
        self.cache_dir = Path(cache_dir)
        self.credentials = credentials or CredentialStore()
        self.timeout = timeout
        self.progress = progress
        self.stats: Counter[str] = Counter()
        self._repos: dict[str, pygit2.Repository] = {}
        self._remote_head: str | None = None
        self._probes: dict[tuple[str, str], tuple[float, str | None]] = {}
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        pygit2.settings.server_connect_timeout = int(timeout * 1000)
        pygit2.settings.server_timeout = int(timeout * 1000)

    # --- layout and locking ---------------------------------------------------------------------------

    def repo_dir(self, url: str) -> Path:
        key = normalize_repo_url(url)
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", key.rsplit("/", 1)[-1])[:40] or "repo"
        return self.cache_dir / f"{slug}-{digest}.git"

    @contextmanager
    def lock(self, url: str) -> Iterator[None]:
        """The per-repository file lock that serializes fetches across processes."""
        path = self.repo_dir(url).with_suffix(".lock")
        try:
            with filelock.FileLock(str(path), timeout=self.timeout):
                yield
        except filelock.Timeout:
            raise TransientError(f"timed out waiting for the fetch lock of {redact_url(url)}") from None

    def open(self, url: str) -> pygit2.Repository:
        """The bare repository for `url`, created empty on first use."""
        key = normalize_repo_url(url)
        repo = self._repos.get(key)
        if repo is not None:
            return repo
        path = self.repo_dir(url)
        with self.lock(url):
            try:
                repo = pygit2.Repository(str(path)) if path.exists() else None
            except pygit2.GitError:
                log.warning("git cache for %s is unreadable; recreating it", redact_url(url))
                shutil.rmtree(path, ignore_errors=True)
                repo = None
            if repo is None:
                repo = pygit2.init_repository(str(path), bare=True)
        self._repos[key] = repo
        return repo

    # --- remote operations ----------------------------------------------------------------------------

    def _cert_transport(self, url: str) -> ClientCertTransport | None:
        """dulwich's smart-HTTP client for an https repository whose credential holds a TLS client
        certificate (libgit2 cannot present one); None for every other repository."""
        credential = self.credentials.for_url(url)
        if credential is None or not needs_client_cert(url, credential):
            return None
        return ClientCertTransport(_transport_url(url), credential, self.timeout)

    def _callbacks(self, url: str) -> _FetchCallbacks:
        deadline = time.monotonic() + self.timeout
        return _FetchCallbacks(self.credentials.callbacks(url), deadline, self.progress)

    @contextmanager
    def _errors(self, url: str, callbacks: GitCallbacks, action: str) -> Iterator[None]:
        shown = redact_url(url)
        try:
            yield
        except AuthenticationFailed as exc:
            raise ConfigurationError(callbacks.scrub(redact_text(str(exc), url))) from None
        except TransientError:
            raise
        except (pygit2.GitError, OSError, ValueError, KeyError) as exc:
            text = self._scrub(callbacks, url, str(exc))
            lower = text.lower()
            if any(hint in lower for hint in _AUTH_HINTS):
                raise ConfigurationError(f"{action} {shown}: authentication failed ({text})") from None
            if any(hint in lower for hint in _NOT_FOUND_HINTS):
                raise ConfigurationError(f"{action} {shown}: repository not found ({text})") from None
            raise TransientError(f"{action} {shown} failed: {text}") from None

    def _scrub(self, callbacks: GitCallbacks, url: str, text: str) -> str:
        text = callbacks.scrub(redact_text(text, url))
        for secret in self.credentials.all_secrets():
            text = text.replace(secret, "***")
        return text

    def remote_refs(self, url: str) -> dict[str, str]:
        """ls-remote: `refname -> sha` for branches and tags (peeled tags as `name^{}`), plus `HEAD`.

        The remote's default branch is remembered, for `resolve(url, "HEAD")`.
        """
        repo = self.open(url)
        callbacks = self._callbacks(url)
        transport = self._cert_transport(url)
        self.stats["ls_remote"] += 1
        started = time.monotonic()
        refs: dict[str, str] = {}
        head_target: str | None = None
        try:
            if transport is not None:
                refs, head_target = self._scrubbed(callbacks, url, transport.list_refs)
            else:
                with self._errors(url, callbacks, "listing refs of"):
                    remote = repo.remotes.create_anonymous(_transport_url(url))
                    heads = remote.list_heads(callbacks=callbacks)
                for head in heads:
                    name = head.name or ""
                    if name == "HEAD":
                        refs["HEAD"] = str(head.oid)
                        head_target = head.symref_target
                    elif name.startswith(("refs/heads/", "refs/tags/")):
                        refs[name] = str(head.oid)
        finally:
            _report("ls-remote", url, started)
        if head_target is None and "HEAD" in refs:
            # Transports without symref information: the branch HEAD points at (main/master first).
            candidates = sorted((n for n, sha in refs.items()
                                 if n.startswith("refs/heads/") and sha == refs["HEAD"]),
                                key=lambda n: (n not in ("refs/heads/main", "refs/heads/master"), n))
            head_target = candidates[0] if candidates else None
        self._remote_head = head_target
        return refs

    def probe(self, url: str, credential: RepoCredential | None) -> str | None:
        """None when `credential` (None: no credential) may list the repository's refs, else why not.

        The project gate asks this when the cache was fetched with another project's credential: an app
        may read it only if its own credential (or none, as Argo CD would then fetch) reaches the same
        repository. Answers are kept PROBE_TTL seconds per repository and credential."""
        key = (normalize_repo_url(url), credential.fingerprint() if credential else "")
        now = time.monotonic()
        cached = self._probes.get(key)
        if cached is not None and now - cached[0] < PROBE_TTL:
            return cached[1]
        callbacks = _FetchCallbacks(GitCallbacks(credential), now + self.timeout, None)
        transport = (ClientCertTransport(_transport_url(url), credential, self.timeout)
                     if credential is not None and needs_client_cert(url, credential) else None)
        started = time.monotonic()
        try:
            if transport is not None:
                self._scrubbed(callbacks, url, transport.list_refs)
            else:
                with self._errors(url, callbacks, "listing refs of"):
                    self.open(url).remotes.create_anonymous(_transport_url(url)).list_heads(callbacks=callbacks)
            answer = None
        except (ConfigurationError, TransientError) as exc:
            answer = self._scrub(callbacks, url, str(exc))
        finally:
            _report("ls-remote", url, started)
        if len(self._probes) > 1024:
            self._probes.clear()
        self._probes[key] = (now, answer)
        return answer

    def _local_refs(self, repo: pygit2.Repository) -> dict[str, str]:
        refs = {}
        for name in repo.references:
            if name.startswith(("refs/heads/", "refs/tags/")):
                refs[name] = str(repo.references[name].target)
        return refs

    def fetch(self, url: str, *, force: bool = False) -> FetchResult:
        """Bring the cache up to date with the remote; skipped when the remote's refs are unchanged."""
        repo = self.open(url)
        with self.lock(url):
            refs = self.remote_refs(url)
            head_target = self._remote_head
            wanted = {name: sha for name, sha in refs.items() if name != "HEAD" and not name.endswith("^{}")}
            if not force and wanted == self._local_refs(repo):
                self.stats["fetch_skipped"] += 1
                self._set_head(repo, head_target)
                return FetchResult(False, refs)
            callbacks = self._callbacks(url)
            transport = self._cert_transport(url)
            self.stats["fetch"] += 1
            started = time.monotonic()
            try:
                if transport is not None:
                    self._scrubbed(callbacks, url, lambda: transport.fetch(repo.path, list(wanted.values())))
                    self._move_refs(repo, wanted)
                else:
                    with self._errors(url, callbacks, "fetching"):
                        remote = repo.remotes.create_anonymous(_transport_url(url))
                        remote.fetch(refspecs=_REFSPECS, callbacks=callbacks,
                                     prune=pygit2.enums.FetchPrune.PRUNE)
            finally:
                _report("fetch", url, started)
            self._set_head(repo, head_target)
            log.info("fetched %s in %.2fs", redact_url(url), time.monotonic() - started)
        return FetchResult(True, refs)

    def _scrubbed(self, callbacks: GitCallbacks, url: str, call: Callable[[], Any]) -> Any:  # noqa: ANN401
        """`call()` with its typed errors' messages scrubbed of credentials, as libgit2's are."""
        try:
            return call()
        except ConfigurationError as exc:
            raise ConfigurationError(self._scrub(callbacks, url, exc.message)) from None
        except TransientError as exc:
            raise TransientError(self._scrub(callbacks, url, str(exc))) from None

    def _move_refs(self, repo: pygit2.Repository, wanted: dict[str, str]) -> None:
        """After a dulwich fetch: the local branches and tags become the remote's, pruned as libgit2's
        `+refs/heads/*:refs/heads/*` fetch with prune leaves them."""
        for name in [n for n in repo.references if n.startswith(("refs/heads/", "refs/tags/"))]:
            if name not in wanted:
                repo.references.delete(name)
        for name, sha in wanted.items():
            repo.references.create(name, sha, force=True)

    def _set_head(self, repo: pygit2.Repository, target: str | None) -> None:
        if target and target in repo.references:
            head = repo.references.get("HEAD")
            if head is None or head.type != pygit2.enums.ReferenceType.SYMBOLIC or head.target != target:
                repo.references.create("HEAD", target, force=True)

    # --- local lookups --------------------------------------------------------------------------------

    def resolve(self, url: str, revision: str) -> str:
        """The full commit SHA of `revision` in the cache (call `fetch` first).

        Order as Argo CD: `HEAD` or empty -> the remote's default branch; a branch; a tag (peeled); a full
        ref name; a full SHA (fetched by id if no ref reaches it); a short SHA (7+ hex digits).
        """
        repo = self.open(url)
        rev = (revision or "HEAD").strip()
        shown = redact_url(url)
        if rev == "HEAD":
            head = repo.references.get("HEAD")
            try:
                return str(head.peel(pygit2.Commit).id) if head is not None else self._missing(rev, shown)
            except (pygit2.GitError, KeyError):
                return self._missing(rev, shown, "the repository has no default branch")
        for name in (f"refs/heads/{rev}", f"refs/tags/{rev}", rev):
            if name.startswith("refs/") and name in repo.references:
                try:
                    return str(repo.references[name].peel(pygit2.Commit).id)
                except (pygit2.GitError, ValueError):
                    return self._missing(rev, shown, f"{name} does not point at a commit")
        if _FULL_SHA.match(rev):
            sha = rev.lower()
            if not self._has_commit(repo, sha):
                self._fetch_sha(url, sha)
            if self._has_commit(repo, sha):
                return sha
            return self._missing(rev, shown)
        if _SHORT_SHA.match(rev):
            try:
                obj = repo.revparse_single(rev.lower())
                return str(obj.peel(pygit2.Commit).id)
            except (KeyError, ValueError, pygit2.GitError) as exc:
                if "ambiguous" in str(exc).lower():
                    raise ConfigurationError(f"short SHA {rev!r} is ambiguous in {shown}") from None
        return self._missing(rev, shown)

    @staticmethod
    def _missing(rev: str, shown: str, why: str = "") -> str:
        detail = f": {why}" if why else ""
        raise ConfigurationError(f"unable to resolve {rev!r} to a commit SHA in {shown}{detail}")

    @staticmethod
    def _has_commit(repo: pygit2.Repository, sha: str) -> bool:
        try:
            return isinstance(repo[sha], pygit2.Commit)
        except (KeyError, ValueError):
            return False

    def _fetch_sha(self, url: str, sha: str) -> None:
        """Fetch one commit by id (servers that allow it); failure leaves the SHA unresolved."""
        repo = self.open(url)
        callbacks = self._callbacks(url)
        transport = self._cert_transport(url)
        with self.lock(url):
            self.stats["fetch"] += 1
            started = time.monotonic()
            try:
                if transport is not None:
                    transport.fetch(repo.path, [sha])
                else:
                    remote = repo.remotes.create_anonymous(_transport_url(url))
                    remote.fetch(refspecs=[sha], callbacks=callbacks)
                _report("fetch", url, started)
            except (pygit2.GitError, AuthenticationFailed, TransientError, ConfigurationError, OSError) as exc:
                log.info("fetching %s by id from %s failed: %s", sha, redact_url(url),
                         self._scrub(callbacks, url, str(exc)))

    def commit_tree(self, url: str, commit: str) -> tuple[pygit2.Repository, pygit2.Tree]:
        """The cached repository and the root tree of `commit`."""
        repo = self.open(url)
        try:
            obj = repo[commit]
            tree = obj.peel(pygit2.Tree)
        except (KeyError, ValueError, pygit2.GitError):
            raise ConfigurationError(f"commit {commit} is not in the cache of {redact_url(url)} "
                                     "(fetch first)") from None
        return repo, tree

    def path_tree_id(self, url: str, commit: str, path: str) -> str | None:
        """The git tree id of `path` at `commit` (the root tree for `.`), or None when it is not a directory.

        Equal tree ids mean byte-identical content: the pipeline's cheap "did this push touch the app".
        """
        clean = clean_app_path(path)
        _, tree = self.commit_tree(url, commit)
        if clean == ".":
            return str(tree.id)
        try:
            entry = tree[clean]
        except KeyError:
            return None
        return str(entry.id) if entry.filemode == pygit2.enums.FileMode.TREE else None

