"""The AppProject resource (`appprojects.argoproj.io/v1alpha1`), field for field as Argo CD spells it.

Users bring their AppProjects unchanged: the models accept Argo CD's camelCase names and keep fields
WaveCD does not act on (roles, signatureKeys, ...). `default_project()` is the project Argo CD creates
when none is declared: any source, any destination, every kind.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from shared.core.errors import StallingError
from shared.core.models import format_validation_error, parse_duration

__all__ = [
    "DEFAULT_PROJECT", "AppProject", "GroupKindPattern", "OrphanedResources", "ProjectDestination",
    "ProjectError", "ProjectSpec", "SyncWindow", "WindowKind", "default_project",
]

DEFAULT_PROJECT = "default"
API_VERSION = "argoproj.io/v1alpha1"
KIND = "AppProject"


class ProjectError(StallingError):
    """An AppProject that cannot be read, or that an Application may not use."""


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class ProjectDestination(_Model):
    """A permitted destination: cluster by `server` and/or `name`, and a namespace; all globs, `!` negates."""

    server: str = ""
    name: str = ""
    namespace: str = ""

    @field_validator("server", "name", "namespace", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> str:  # noqa: ANN401
        return "" if value is None else str(value)


class GroupKindPattern(_Model):
    """A whitelist/blacklist entry: API group and kind globs (Go filepath.Match), optional name glob."""

    group: str = ""
    kind: str = ""
    name: str = ""

    @field_validator("group", "kind", "name", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> str:  # noqa: ANN401
        return "" if value is None else str(value)


class OrphanedResources(_Model):
    warn: bool | None = None
    ignore: list[dict[str, Any]] = Field(default_factory=list)


class WindowKind(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class SyncWindow(_Model):
    """A time window that allows or denies syncs: a cron schedule opens it for `duration`."""

    kind: WindowKind
    schedule: str
    duration: str
    applications: list[str] = Field(default_factory=list)
    namespaces: list[str] = Field(default_factory=list)
    clusters: list[str] = Field(default_factory=list)
    manual_sync: bool = False
    time_zone: str = ""
    use_and_operator: bool = Field(default=False, alias="andOperator")
    description: str = ""

    @field_validator("duration")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        if parse_duration(value) <= 0:
            raise ValueError(f"duration {value!r} must be positive")
        return value

    @field_validator("schedule")
    @classmethod
    def _check_schedule(cls, value: str) -> str:
        from croniter import croniter  # a kept library for cron; imported where cron is read

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"schedule {value!r} is not a 5-field cron expression")
        return value

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        if value:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timeZone {value!r} is not an IANA time zone") from None
        return value

    def label(self) -> str:
        return f"{self.kind.value}:{self.schedule}:{self.duration}"


class ProjectSpec(_Model):
    description: str = ""
    source_repos: list[str] = Field(default_factory=list)
    destinations: list[ProjectDestination] = Field(default_factory=list)
    cluster_resource_whitelist: list[GroupKindPattern] = Field(default_factory=list)
    cluster_resource_blacklist: list[GroupKindPattern] = Field(default_factory=list)
    # None means "not set": every namespaced kind is allowed; [] means none is.
    namespace_resource_whitelist: list[GroupKindPattern] | None = None
    namespace_resource_blacklist: list[GroupKindPattern] = Field(default_factory=list)
    source_namespaces: list[str] = Field(default_factory=list)
    orphaned_resources: OrphanedResources | None = None
    sync_windows: list[SyncWindow] = Field(default_factory=list)
    # Only clusters whose Secret names this project (`project` in the cluster Secret) are destinations.
    permit_only_project_scoped_clusters: bool = False

    @field_validator("source_repos", "source_namespaces", mode="before")
    @classmethod
    def _none_is_empty_list(cls, value: Any) -> list[Any]:  # noqa: ANN401
        return [] if value is None else value

    @field_validator("destinations", "cluster_resource_whitelist", "cluster_resource_blacklist",
                     "namespace_resource_blacklist", "sync_windows", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> list[Any]:  # noqa: ANN401
        return [] if value is None else value


class AppProject(_Model):
    api_version: str = API_VERSION
    kind: str = KIND
    metadata: dict[str, Any]
    spec: ProjectSpec = Field(default_factory=ProjectSpec)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name") or "")

    def api_problems(self) -> list[str]:
        """What Argo CD's API server refuses in a project it is asked to create or update (the controller
        still runs a project written straight to the cluster: a window with no target matches nothing)."""
        problems: list[str] = []
        seen_dest: set[str] = set()
        for dest in self.spec.destinations:
            key = f"{dest.server or dest.name}/{dest.namespace}"
            if key in seen_dest:
                problems.append(f"destination '{key}' already added")
            seen_dest.add(key)
        seen_src: set[str] = set()
        for src in self.spec.source_repos:
            if src in seen_src:
                problems.append(f"source repository '{src}' already added")
            seen_src.add(src)
        seen_windows: set[str] = set()
        for window in self.spec.sync_windows:
            label = f"'{window.kind.value}':'{window.schedule}':'{window.duration}'"
            if label in seen_windows:
                problems.append(f"window {label} already exists, update or edit")
            seen_windows.add(label)
            if not (window.applications or window.namespaces or window.clusters):
                problems.append(f"window {label} requires one of application, cluster or namespace")
        return problems

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> AppProject:
        """Validate an AppProject object; errors name the project and the fields."""
        if not isinstance(obj, dict):
            raise ProjectError("an AppProject must be a mapping")
        meta = obj.get("metadata") or {}
        name = meta.get("name") if isinstance(meta, dict) else None
        if not name:
            raise ProjectError("AppProject has no metadata.name")
        if obj.get("kind", KIND) != KIND:
            raise ProjectError(f"kind must be {KIND}, not {obj.get('kind')!r}")
        try:
            return cls.model_validate(obj)
        except ValidationError as exc:
            raise ProjectError(f"AppProject {name!r} is invalid: {format_validation_error(exc)}") from None


def default_project(namespace: str = "") -> AppProject:
    """Argo CD's built-in `default` project: everything allowed."""
    meta: dict[str, Any] = {"name": DEFAULT_PROJECT}
    if namespace:
        meta["namespace"] = namespace
    return AppProject(metadata=meta, spec=ProjectSpec(
        source_repos=["*"], destinations=[ProjectDestination(server="*", namespace="*", name="*")],
        cluster_resource_whitelist=[GroupKindPattern(group="*", kind="*")]))
