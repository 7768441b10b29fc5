"""The REST API's request and response shapes, and the label selector its list filter accepts.

Field names are Argo CD's (camelCase on the wire: `dryRun`, `syncOptions`), so a body written for
Argo CD's API reads the same here. Requests forbid unknown fields: a typo such as `dryrun` is a 422
naming the field, not a silently ignored option. The response models document the API in
/openapi.json; they allow extra fields because status documents carry Argo CD's full, open shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel, to_pascal


class _Request(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


# -- requests -----------------------------------------------------------------------------------------


class SyncResource(_Request):
    """One resource to sync (a partial sync), as `argocd app sync --resource GROUP:KIND:NAME`."""

    group: str = ""
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    namespace: str = ""


class SyncRequest(_Request):
    prune: bool = False
    dry_run: bool = False
    revision: str | None = Field(default=None, min_length=1, max_length=255)
    resources: list[SyncResource] | None = None
    sync_options: list[str] | None = None


class RollbackRequest(_Request):
    id: int = Field(ge=0, description="the history id to roll back to")
    prune: bool = False
    dry_run: bool = False


# -- responses ----------------------------------------------------------------------------------------


class ErrorBody(_Response):
    error: str
    code: int


class Accepted(_Response):
    """A request recorded and handed to the workers; its effect shows in the app's status later."""

    message: str
    name: str
    request: dict[str, Any] | None = None


class Pending(_Response):
    """Work asked for but not yet taken by a worker."""

    sync: bool = False
    refresh: bool = False


class ApplicationView(_Response):
    """An Application as Argo CD's API returns it: metadata, spec and status (no resource bodies)."""

    api_version: str = "argoproj.io/v1alpha1"
    kind: str = "Application"
    metadata: dict[str, Any]
    spec: dict[str, Any]
    status: dict[str, Any] = Field(default_factory=dict)
    pending: Pending = Field(default_factory=Pending)


class ApplicationList(_Response):
    items: list[ApplicationView]


class HistoryList(_Response):
    items: list[dict[str, Any]]


class ResourceDiff(_Response):
    resource: str
    diff: str


class DiffView(_Response):
    """The masked diffs of the app's OutOfSync resources, from its last comparison."""

    name: str
    sync_status: str
    revision: str | None = None
    reconciled_at: str | None = None
    items: list[ResourceDiff]


class Health(_Response):
    status: str


class VersionInfo(BaseModel):
    """`GET /api/version`, Argo CD's shape (PascalCase keys); the build details only for a signed-in caller."""

    model_config = ConfigDict(alias_generator=to_pascal, populate_by_name=True)

    version: str
    python_version: str | None = None
    platform: str | None = None


# -- the label selector of `GET /api/v1/applications?selector=...` -------------------------------------

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_RE = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s+\(([^()]*)\)\s*$")
_EQ_RE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*({_VALUE})\s*$")
_EXISTS_RE = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


class SelectorError(ValueError):
    """A label selector that does not parse; the message names the offending requirement."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # "!=" and "notin" match absent keys too


def _split_requirements(text: str) -> list[str]:
    """Split on commas outside parentheses (`a in (x,y),b=c` is two requirements)."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced ')' in label selector {text!r}")
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SelectorError(f"unbalanced '(' in label selector {text!r}")
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class LabelSelector:
    """Kubernetes' label selector syntax: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a)`."""

    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        if len(text) > 4096:
            raise SelectorError("label selector is longer than 4096 characters")
        requirements: list[Requirement] = []
        for raw in _split_requirements(text):
            if not raw.strip():
                raise SelectorError(f"empty requirement in label selector {text!r}")
            if match := _SET_RE.match(raw):
                values = tuple(v.strip() for v in match.group(4).split(",") if v.strip())
                if not values:
                    raise SelectorError(f"'{raw.strip()}': '{match.group(3)}' needs at least one value")
                bad = [v for v in values if not re.fullmatch(_VALUE, v)]
                if bad:
                    raise SelectorError(f"'{raw.strip()}': invalid label value {bad[0]!r}")
                requirements.append(Requirement(match.group(1), match.group(3), values))
            elif match := _EQ_RE.match(raw):
                op = "!=" if match.group(3) == "!=" else "="
                requirements.append(Requirement(match.group(1), op, (match.group(4),)))
            elif match := _EXISTS_RE.match(raw):
                requirements.append(Requirement(match.group(2), "!" if match.group(1) else "exists"))
            else:
                raise SelectorError(f"invalid requirement {raw.strip()!r} in label selector "
                                    "(expected k=v, k!=v, k, !k, 'k in (a,b)' or 'k notin (a,b)')")
        return cls(tuple(requirements))

    def matches(self, labels: dict[str, str]) -> bool:
        return all(req.matches(labels) for req in self.requirements)
