"""What a project permits: Argo CD's rules for sources, destinations, resource kinds and app namespaces.

Order and semantics follow Argo CD:
* sourceRepos: both sides normalized as repository URLs, globbed with `/` as separator; a `!pattern`
  that does not match is a veto; otherwise any matching pattern permits.
* destinations: an entry matches when its server or its name glob matches and its namespace glob
  matches; a `!` entry the destination fails to match is a veto.
* kinds: a cluster-scoped kind must be in clusterResourceWhitelist (empty = none) and not in
  clusterResourceBlacklist; a namespaced kind must be in namespaceResourceWhitelist (unset = all) and
  not in namespaceResourceBlacklist; then its namespace must be a permitted destination.

Before any glob runs, names are checked for what they must be (a namespace is a DNS-1123 label, a repo
URL is printable ASCII with no dot segments): look-alike Unicode, `..` and encoded separators are
refused outright instead of being matched.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from shared.core.globs import glob_match
from shared.core.repo_url import normalize_repo_url, redact_url
from shared.project.model import AppProject, GroupKindPattern

__all__ = [
    "Destination", "app_namespace_permitted", "destination_message", "group_kind_permitted",
    "invalid_namespace", "invalid_repo_url", "is_deny", "namespace_message", "repo_message",
    "resource_message", "source_permitted", "destination_permitted",
]

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", re.ASCII)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", re.ASCII)
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+", re.ASCII)


@dataclass(frozen=True)
class Destination:
    """Where an app (or one of its objects) deploys: the cluster by server and name, and a namespace."""

    server: str = ""
    name: str = ""
    namespace: str = ""


def is_deny(pattern: str) -> bool:
    return pattern.startswith("!")


def _match(pattern: str, text: str, separators: str = "") -> bool:
    """Argo CD's globMatch with negation: `!p` matches whatever `p` does not."""
    if is_deny(pattern):
        return not glob_match(pattern[1:], text, separators)
    return glob_match(pattern, text, separators)


# -- names -------------------------------------------------------------------------------------------

def invalid_namespace(namespace: str) -> str | None:
    """Why `namespace` cannot be a Kubernetes namespace, or None ('' is allowed: no namespace)."""
    if namespace == "":
        return None
    if len(namespace) > 63 or not _DNS_LABEL.fullmatch(namespace):
        return f"namespace {namespace!r} is not a valid namespace name (a lower-case DNS-1123 label)"
    return None


def invalid_project_name(name: str) -> str | None:
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        return f"project name {name!r} is not a valid Kubernetes name"
    return None


def invalid_repo_url(url: str) -> str | None:
    """Why a repository URL is refused before matching: characters or path segments that could make it
    name a different repository than its normalized form says."""
    shown = redact_url(url)
    if not _PRINTABLE_ASCII.fullmatch(url):
        return f"repository URL {shown!r} contains whitespace, control or non-ASCII characters"
    if "\\" in url:
        return f"repository URL {shown!r} contains a backslash"
    path = url
    if "://" in url:
        try:
            path = urlsplit(url).path
        except ValueError:
            return f"repository URL {shown!r} is not a valid URL"
    elif ":" in url and not url.startswith("/"):
        path = url.split(":", 1)[1]  # scp-like git@host:org/repo
    decoded = unquote(unquote(path))
    if "%2f" in path.lower() or "%5c" in path.lower():
        return f"repository URL {shown!r} contains an encoded path separator"
    segments = decoded.split("/")
    if any(seg in (".", "..") for seg in segments):
        return f"repository URL {shown!r} contains a '.' or '..' path segment"
    return None


# -- sources -----------------------------------------------------------------------------------------

def _normalize_pattern(pattern: str) -> str:
    try:
        return normalize_repo_url(pattern)
    except ValueError:  # e.g. a '[' the URL parser reads as an IPv6 host
        return pattern.strip().lower()


def source_permitted(project: AppProject, repo_url: str) -> bool:
    """Whether the project's sourceRepos permit `repo_url` (Argo CD's IsSourcePermitted)."""
    if invalid_repo_url(repo_url):
        return False
    wanted = normalize_repo_url(repo_url)
    any_match = False
    for raw in project.spec.source_repos:
        if is_deny(raw):
            pattern = "!" + _normalize_pattern(raw[1:])
        else:
            pattern = raw if raw == "*" else _normalize_pattern(raw)
        matched = _match(pattern, wanted, "/")
        if matched:
            any_match = True
        elif is_deny(pattern):
            return False
    return any_match


# -- destinations ------------------------------------------------------------------------------------

def destination_permitted(project: AppProject, dest: Destination,
                          project_clusters: Collection[Destination] = ()) -> bool:
    """Argo CD's IsDestinationPermitted: some entry matches and no `!` entry vetoes; with
    permitOnlyProjectScopedClusters the cluster must also be one scoped to the project (`project_clusters`:
    the clusters whose Secret names this project, by name and server)."""
    if not _destination_matched(project, dest):
        return False
    if not project.spec.permit_only_project_scoped_clusters:
        return True
    return any((c.name and c.name == dest.name) or (c.server and c.server == dest.server) for c in project_clusters)


def _destination_matched(project: AppProject, dest: Destination) -> bool:
    if invalid_namespace(dest.namespace):
        return False
    any_match = False
    no_veto = True
    for item in project.spec.destinations:
        name_ok = dest.name != "" and _match(item.name, dest.name)
        server_ok = dest.server != "" and _match(item.server, dest.server)
        namespace_ok = _match(item.namespace, dest.namespace)
        if (server_ok or name_ok) and namespace_ok:
            any_match = True
        elif ((not name_ok and is_deny(item.name)) or (not server_ok and is_deny(item.server))
              or (not namespace_ok and is_deny(item.namespace))):
            no_veto = False
    return any_match and no_veto


# -- kinds -------------------------------------------------------------------------------------------

def _in_list(group: str, kind: str, name: str, patterns: list[GroupKindPattern]) -> bool:
    for item in patterns:
        if not (glob_match(item.kind, kind) and glob_match(item.group, group)):
            continue
        if item.name and not glob_match(item.name, name):
            continue
        return True
    return False


def group_kind_permitted(project: AppProject, group: str, kind: str, namespaced: bool, name: str = "") -> bool:
    """Argo CD's IsGroupKindPermitted: whitelist first, then the blacklist vetoes."""
    spec = project.spec
    if namespaced:
        white = spec.namespace_resource_whitelist
        whitelisted = white is None or (len(white) > 0 and _in_list(group, kind, name, white))
        return whitelisted and not _in_list(group, kind, name, spec.namespace_resource_blacklist)
    whitelisted = _in_list(group, kind, name, spec.cluster_resource_whitelist)
    return whitelisted and not _in_list(group, kind, name, spec.cluster_resource_blacklist)


# -- app namespaces ----------------------------------------------------------------------------------

def app_namespace_permitted(project: AppProject, app_namespace: str, control_namespace: str) -> bool:
    """Apps in WaveCD's own namespace may use any project; others need it in sourceNamespaces."""
    if app_namespace in ("", control_namespace):
        return True
    return any(_match(pattern, app_namespace) for pattern in project.spec.source_namespaces)


# -- Argo CD's messages ------------------------------------------------------------------------------

def repo_message(repo_url: str, project: str) -> str:
    reason = invalid_repo_url(repo_url)
    suffix = f" ({reason})" if reason else ""
    return f"application repo {redact_url(repo_url)} is not permitted in project '{project}'{suffix}"


def destination_message(dest: Destination, project: str) -> str:
    reason = invalid_namespace(dest.namespace)
    suffix = f" ({reason})" if reason else ""
    cluster = dest.server or dest.name
    return (f"application destination server '{cluster}' and namespace '{dest.namespace}' do not match any "
            f"of the allowed destinations in project '{project}'{suffix}")


def resource_message(group: str, kind: str, project: str) -> str:
    return f"resource {group}:{kind} is not permitted in project {project}"


def namespace_message(namespace: str, project: str) -> str:
    reason = invalid_namespace(namespace)
    suffix = f" ({reason})" if reason else ""
    return f"namespace {namespace} is not permitted in project '{project}'{suffix}"
