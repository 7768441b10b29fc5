"""The Application resource, field for field as Argo CD spells it, as pydantic models.

Users bring Argo CD manifests unchanged, so the models accept Argo CD's camelCase names and keep
fields WaveCD does not act on (they round-trip to the cluster). Validation errors become a condition
on that one app, never an exception that stops the others.
"""

from __future__ import annotations

import re
from typing import Any

import durationpy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from shared.core.errors import StallingError


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


# Go's `time.ParseDuration` units; durationpy also reads d, w, mm and y, which Argo CD would refuse.
_GO_UNITS = frozenset({"ns", "us", "\u00b5s", "\u03bcs", "ms", "s", "m", "h"})


def parse_duration(text: str | int | float) -> float:
    """Go durations as Argo CD writes them (`5s`, `3m`, `1h30m`, `300ms`), read by `durationpy` (Go's
    `time.ParseDuration` grammar); a bare number is seconds (a WaveCD convenience Go does not have)."""
    if isinstance(text, int | float):
        return float(text)
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        if not set(re.findall(r"[^\d.+-]+", value)) <= _GO_UNITS:
            raise durationpy.DurationError(value)
        return durationpy.from_str(value).total_seconds()
    except durationpy.DurationError:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 5s, 3m, 1h)") from None


class DirectorySource(_Model):
    recurse: bool = False
    include: str = ""
    exclude: str = ""
    jsonnet: dict[str, Any] | None = None


class ApplicationSource(_Model):
    repo_url: str = Field(alias="repoURL")
    path: str = "."
    target_revision: str = "HEAD"
    directory: DirectorySource | None = None
    kustomize: dict[str, Any] | None = None
    helm: dict[str, Any] | None = None
    plugin: dict[str, Any] | None = None
    chart: str | None = None

    @field_validator("repo_url")
    @classmethod
    def _repo_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("repoURL must not be empty")
        return value.strip()

    @field_validator("target_revision", mode="before")
    @classmethod
    def _default_head(cls, value: Any) -> str:
        return str(value) if value not in (None, "") else "HEAD"

    @field_validator("path", mode="before")
    @classmethod
    def _default_path(cls, value: Any) -> str:
        return str(value) if value not in (None, "") else "."


class ApplicationDestination(_Model):
    server: str | None = None
    name: str | None = None
    namespace: str = ""


class SyncPolicyAutomated(_Model):
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    enabled: bool | None = None


class Backoff(_Model):
    duration: str = "5s"
    factor: int = 2
    max_duration: str = "3m"

    @field_validator("duration", "max_duration", mode="before")
    @classmethod
    def _check_duration(cls, value: Any) -> str:
        parse_duration(value)
        return str(value)


class RetryStrategy(_Model):
    limit: int = 0
    backoff: Backoff = Field(default_factory=Backoff)


class SyncPolicy(_Model):
    automated: SyncPolicyAutomated | None = None
    sync_options: list[str] = Field(default_factory=list)
    retry: RetryStrategy | None = None
    managed_namespace_metadata: dict[str, Any] | None = None

    def option(self, name: str) -> str | None:
        """The value of `Name=value` in syncOptions, or None."""
        for item in self.sync_options:
            key, _, value = item.partition("=")
            if key.strip() == name:
                return value.strip()
        return None

    def flag(self, name: str) -> bool:
        return (self.option(name) or "").lower() == "true"


class ResourceIgnoreDifferences(_Model):
    group: str = ""
    kind: str
    name: str = ""
    namespace: str = ""
    json_pointers: list[str] = Field(default_factory=list)
    jq_path_expressions: list[str] = Field(default_factory=list)
    managed_fields_managers: list[str] = Field(default_factory=list)


class ApplicationSpec(_Model):
    project: str = "default"
    source: ApplicationSource | None = None
    sources: list[ApplicationSource] | None = None
    destination: ApplicationDestination = Field(default_factory=ApplicationDestination)
    sync_policy: SyncPolicy = Field(default_factory=SyncPolicy)
    ignore_differences: list[ResourceIgnoreDifferences] = Field(default_factory=list)
    revision_history_limit: int = 10
    info: list[dict[str, Any]] | None = None

    @property
    def primary_source(self) -> ApplicationSource:
        if self.source is not None:
            return self.source
        if self.sources:
            return self.sources[0]
        raise StallingError("spec.source is required (spec.sources with no entries is not supported)")

    @property
    def automated(self) -> bool:
        auto = self.sync_policy.automated
        return auto is not None and auto.enabled is not False


class Application(_Model):
    """An Argo CD Application: metadata, spec, and (opaque here) status and operation."""

    api_version: str = "argoproj.io/v1alpha1"
    kind: str = "Application"
    metadata: dict[str, Any]
    spec: ApplicationSpec
    operation: dict[str, Any] | None = None
    status: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "")

    @property
    def finalizers(self) -> list[str]:
        return list(self.metadata.get("finalizers") or [])

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.get("labels") or {})

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.get("annotations") or {})

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> Application:
        """Validate an Application object; an invalid spec is a StallingError naming the fields."""
        meta = obj.get("metadata") or {}
        if not isinstance(meta, dict) or not meta.get("name"):
            raise StallingError("Application has no metadata.name")
        try:
            app = cls.model_validate(obj)
            app.spec.primary_source  # noqa: B018 - raises when neither source nor sources is set
        except ValidationError as exc:
            raise StallingError(f"invalid Application spec: {format_validation_error(exc)}") from None
        return app


def format_validation_error(exc: ValidationError) -> str:
    """pydantic's errors as one readable line: `spec.source.repoURL: Field required; ...`."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
