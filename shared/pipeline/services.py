"""The per-process bundle of clients the pipeline steps use: Redis, store, locks, git cache, clusters.

Each worker process builds one after it forks (never at import), tests build their own, and every step
function takes it as its first argument, so no step reaches for a global.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import redis

from shared.core.settings import Settings, get_settings
from shared.state.app_lock import AppLocks
from shared.state.app_store import AppStore
from shared.state.coalesce import Coalescer
from shared.state.redis_conn import make_redis

if TYPE_CHECKING:
    from shared.cluster.client import ClusterRegistry
    from shared.health import LuaHealthRules
    from shared.source.git_source import RepoCache


@dataclass
class Services:
    settings: Settings = field(default_factory=get_settings)
    redis_client: redis.Redis | None = None

    @cached_property
    def redis(self) -> redis.Redis:
        return self.redis_client or make_redis(self.settings.redis_url)

    @cached_property
    def store(self) -> AppStore:
        return AppStore(self.redis)

    @cached_property
    def locks(self) -> AppLocks:
        return AppLocks(self.redis, self.settings.lock_ttl)

    @cached_property
    def coalescer(self) -> Coalescer:
        return Coalescer(self.redis, self.settings.refresh_queued_ttl, self.settings.refresh_queued_stale)

    @cached_property
    def repos(self) -> RepoCache:
        from shared.source.git_credentials import CredentialStore  # heavy: only when used
        from shared.source.git_source import RepoCache

        creds = (CredentialStore.from_file(self.settings.repo_credentials_file)
                 if self.settings.repo_credentials_file else None)
        return RepoCache(self.settings.resolved_git_cache_dir, credentials=creds,
                         timeout=self.settings.git_timeout)

    @cached_property
    def clusters(self) -> ClusterRegistry:
        from shared.cluster.client import ClusterRegistry

        return ClusterRegistry(self.settings)

    @cached_property
    def lua(self) -> LuaHealthRules:
        from shared.health import LuaHealthRules, default_lua_rules

        rules = default_lua_rules()
        if self.settings.lua_health_dir:
            rules = rules.merged(LuaHealthRules.from_directory(self.settings.lua_health_dir))
        if self.settings.argocd_cm:
            rules = rules.merged(LuaHealthRules.from_argocd_cm_path(self.settings.argocd_cm))
        return rules
