"""Sync windows: when a project lets an app sync, with Argo CD's semantics.

A window is *active* when its cron schedule (5 fields, in its timeZone, UTC by default) fired within the
last `duration`: the next firing after `now - duration` lies before `now`. The windows that apply to an
app are those whose applications, clusters or namespaces globs match it (all of the given lists with
`andOperator`). Then, as Argo CD decides:
1. an active deny window blocks, except a manual sync when every active deny window has manualSync;
2. otherwise an active allow window allows;
3. otherwise, if allow windows exist but none is active, only a manual sync may run, and only when one
   of them has manualSync;
4. otherwise syncs are allowed.
Cron arithmetic is croniter's; nothing here reads a clock it is not given.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from croniter import croniter
from pydantic import BaseModel, Field

from shared.core.globs import match_any
from shared.core.models import parse_duration
from shared.project.model import AppProject, SyncWindow, WindowKind
from shared.project.permissions import Destination

__all__ = ["BLOCKED_MESSAGE", "WindowState", "WindowVerdict", "can_sync", "is_active", "matching_windows",
           "window_state"]

BLOCKED_MESSAGE = "Cannot sync: Blocked by sync window"


class WindowVerdict(StrEnum):
    ALLOWED = "Sync Allowed"
    MANUAL_ALLOWED = "Manual Allowed"
    DENIED = "Sync Denied"


class WindowState(BaseModel):
    """What `app get` shows: the verdict for automated syncs, and the windows behind it."""

    verdict: WindowVerdict
    assigned: list[str] = Field(default_factory=list)
    active: list[str] = Field(default_factory=list)

    def condition_message(self) -> str:
        windows = ", ".join(self.active or self.assigned)
        return f"{self.verdict.value} ({windows})" if windows else self.verdict.value


def is_active(window: SyncWindow, now: datetime) -> bool:
    zone = ZoneInfo(window.time_zone) if window.time_zone else UTC
    duration = timedelta(seconds=parse_duration(window.duration))
    start = (now.astimezone(UTC) - duration).astimezone(zone)
    next_fire: datetime = croniter(window.schedule, start).get_next(datetime)
    return next_fire < now.astimezone(zone)


def _applies(window: SyncWindow, app_name: str, dest: Destination) -> bool:
    def clusters_match() -> bool:
        return match_any(window.clusters, dest.server) or (dest.name != "" and match_any(window.clusters, dest.name))

    checks: list[bool] = []
    if window.applications:
        checks.append(match_any(window.applications, app_name))
    if window.clusters:
        checks.append(clusters_match())
    if window.namespaces:
        checks.append(match_any(window.namespaces, dest.namespace))
    if not checks:
        return False
    return all(checks) if window.use_and_operator else any(checks)


def matching_windows(project: AppProject, app_name: str, dest: Destination) -> list[SyncWindow]:
    return [w for w in project.spec.sync_windows if _applies(w, app_name, dest)]


def can_sync(windows: list[SyncWindow], now: datetime, *, manual: bool) -> bool:
    if not windows:
        return True
    active = [w for w in windows if is_active(w, now)]
    active_deny = [w for w in active if w.kind == WindowKind.DENY]
    if active_deny:
        return manual and all(w.manual_sync for w in active_deny)
    if any(w.kind == WindowKind.ALLOW for w in active):
        return True
    inactive_allow = [w for w in windows if w.kind == WindowKind.ALLOW and w not in active]
    if inactive_allow:
        return manual and any(w.manual_sync for w in inactive_allow)
    return True


def window_state(project: AppProject, app_name: str, dest: Destination, now: datetime) -> WindowState | None:
    """None when no window applies to the app; else its verdict and the windows behind it."""
    windows = matching_windows(project, app_name, dest)
    if not windows:
        return None
    if can_sync(windows, now, manual=False):
        verdict = WindowVerdict.ALLOWED
    elif can_sync(windows, now, manual=True):
        verdict = WindowVerdict.MANUAL_ALLOWED
    else:
        verdict = WindowVerdict.DENIED
    return WindowState(verdict=verdict, assigned=[w.label() for w in windows],
                       active=[w.label() for w in windows if is_active(w, now)])
