"""The health vocabulary: Argo CD's six status codes, their order from best to worst, and app aggregation.

Every producer of health (built-in rules, Lua rules) and every consumer (the wave gate, the app's
status, the dashboard) speaks these types, so the order that decides "which is worse" lives in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class HealthStatusCode(StrEnum):
    """Argo CD's health status codes, spelled exactly as Argo CD spells them (a str and an Enum)."""

    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    SUSPENDED = "Suspended"
    MISSING = "Missing"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class HealthStatus:
    """One resource's (or one app's) health: a code and a human message (may be empty)."""

    status: HealthStatusCode
    message: str = ""

    def to_dict(self) -> dict[str, str]:
        """Argo CD's JSON shape: `{"status": ..., "message": ...}`, message omitted when empty."""
        data = {"status": self.status.value}
        if self.message:
            data["message"] = self.message
        return data


# Argo CD's healthOrder: most healthy first, least healthy last.
HEALTH_ORDER: tuple[HealthStatusCode, ...] = (
    HealthStatusCode.HEALTHY,
    HealthStatusCode.SUSPENDED,
    HealthStatusCode.PROGRESSING,
    HealthStatusCode.MISSING,
    HealthStatusCode.DEGRADED,
    HealthStatusCode.UNKNOWN,
)
_RANK: dict[HealthStatusCode, int] = {code: index for index, code in enumerate(HEALTH_ORDER)}

HEALTHY = HealthStatus(HealthStatusCode.HEALTHY)


def is_worse(current: HealthStatusCode, new: HealthStatusCode) -> bool:
    """True when `new` is strictly worse than `current` in Argo CD's order."""
    return _RANK[new] > _RANK[current]


def worst(a: HealthStatusCode, b: HealthStatusCode) -> HealthStatusCode:
    """The worse of two codes; `a` on a tie."""
    return b if _RANK[b] > _RANK[a] else a


def aggregate(statuses: Iterable[HealthStatus | None], *, ignore_missing: bool = False) -> HealthStatus:
    """An app's (or a wave's) health: the worst of its resources' health.

    `None` entries are live resources that have no health rule: they are skipped (they never make the
    result worse), but they do count as resources that exist. An empty input is Healthy.

    Missing (a resource git wants that is absent live):

    * default (`ignore_missing=False`, what a wave gate wants): Missing takes its place in the order
      Healthy < Suspended < Progressing < Missing < Degraded < Unknown, so a wave with an absent
      resource is never Healthy; the result is Missing when every assessed resource is Missing.
    * `ignore_missing=True` (Argo CD 3's app health): a Missing resource does not make an app with live
      resources worse (OutOfSync already says something is missing); the app is Missing only when none
      of its resources exist, i.e. every entry is Missing.

    The caller leaves out hooks and objects annotated `argocd.argoproj.io/ignore-healthcheck: "true"`
    (see `is_health_ignored`). The result's message is empty, as for an Argo CD app.
    """
    result = HealthStatusCode.HEALTHY
    seen_missing = False
    seen_present = False
    for entry in statuses:
        if entry is None:
            seen_present = True
            continue
        code = entry.status
        if code is HealthStatusCode.MISSING:
            seen_missing = True
            if ignore_missing:
                continue
        else:
            seen_present = True
        if _RANK[code] > _RANK[result]:
            result = code
    if ignore_missing and seen_missing and not seen_present:
        result = HealthStatusCode.MISSING
    return HEALTHY if result is HealthStatusCode.HEALTHY else HealthStatus(result)
