"""Every Redis key WaveCD writes, in one place: one function (or constant) per key family.

A module that reads or writes Redis asks this registry for the key instead of spelling `"wavecd:..."` itself,
so the key space can be read here at a glance (what exists, who owns it, what expires), two families can
never collide by accident, and a test can prove no other module spells a key. Names stay as they were
before the registry, so the data a previous run left in Redis is still found.

Only Celery's own keys (its queues `git`, `apply`, `health`, its unacked hashes, `_kombu.*`) are not here:
kombu names them. The render cache's key is built by `shared.source.render`, a verb below this layer that
cannot import it; its prefix is named here (`RENDER_CACHE`) so the registry still lists it.
"""

from __future__ import annotations

from shared.core.repo_url import normalize_repo_url

PREFIX = "wavecd:"

# -- Applications and their status (shared.state.app_store.AppStore) -----------------------------------------

APPS = "wavecd:apps"  # hash: app name -> the Application's JSON
DUE = "wavecd:due"  # sorted set: app name -> the time its next routine reconcile is due
RUNNING = "wavecd:running"  # set: apps with an operation in progress


def state(app: str) -> str:
    """Hash: the app's published status, operation, history and inventory."""
    return f"wavecd:state:{app}"


def source(app: str) -> str:
    """The source fingerprint the app was last compared at (what the fetch's detector compares against)."""
    return f"wavecd:source:{app}"


def oplog(app: str) -> str:
    """List: the app's finished operations (the metrics count each once)."""
    return f"wavecd:oplog:{app}"


def sync_request(app: str) -> str:
    """A sync asked for by a user (API, CLI, dashboard), taken by the next diff."""
    return f"wavecd:sync-request:{app}"


def terminate(app: str) -> str:
    """A terminate asked for the app's running operation."""
    return f"wavecd:terminate:{app}"


def hard_refresh(app: str) -> str:
    """A hard refresh asked for: the next diff renders again instead of reading the render cache."""
    return f"wavecd:hard-refresh:{app}"


# -- one operation per app (shared.state.app_lock) and coalesced refreshes (shared.state.coalesce) -----------


def lock(app: str) -> str:
    """The app's lock: its owner token, for as long as an operation chain holds it."""
    return f"wavecd:lock:{app}"


def fence(app: str) -> str:
    """The app's fencing counter: each lock acquisition takes the next number."""
    return f"wavecd:fence:{app}"


HANDOVER_DUE = "wavecd:handover:due"  # sorted set: app -> when the step its chain handed over was due to start
HANDOVER_TASK = "wavecd:handover:task"  # hash: app -> "<lock token> <task id>" of that step


def queued(app: str) -> str:
    """A diff of the app is queued (at most one at a time)."""
    return f"wavecd:queued:{app}"


def pending(app: str) -> str:
    """A refresh arrived while the app was busy: the lock's owner enqueues one when it is done."""
    return f"wavecd:pending:{app}"


# -- the diff step (shared.pipeline) --------------------------------------------------------------------------


def diff(app: str) -> str:
    """The app's last diff text per resource (Secret values masked), for `app diff` and the dashboard."""
    return f"wavecd:diff:{app}"


def diff_retry(app: str) -> str:
    """Consecutive transient failures of the app's diff (reset by a diff that gets through)."""
    return f"wavecd:diffretry:{app}"


def published(app: str) -> str:
    """A digest of the status last mirrored onto the Application resource: an unchanged one is not patched."""
    return f"wavecd:published:{app}"


def selfheal(app: str) -> str:
    """Self-heal attempts at the synced revision and when the next may start (Argo CD's self-heal backoff)."""
    return f"wavecd:selfheal:{app}"


# -- the fetch step (shared.pipeline.source_watch) -------------------------------------------------------------


def fetch_lock(repo_url: str) -> str:
    """The repository's fetch lock: one fetch per repository at a time."""
    return f"wavecd:fetchlock:{normalize_repo_url(repo_url)}"


def fetch_pending(repo_url: str) -> str:
    """Set: apps that asked for a fetch while one ran; the running fetch goes round again for them."""
    return f"wavecd:fetchpending:{normalize_repo_url(repo_url)}"


# -- beat's tick (shared.pipeline.app_index, workers.tasks) and the tasks (workers.base) ---------------------

TICK_LOCK = "wavecd:ticklock"  # one tick at a time, however many beats
TICK_HEARTBEAT = "wavecd:heartbeat:tick"  # when the last tick finished (`wavecd check`)


def deliveries(task_id: str, attempt: int) -> str:
    """How many times one attempt of a task was delivered (the redelivery cap)."""
    return f"wavecd:deliveries:{task_id}:{attempt}"


# -- metrics (shared.telemetry.metrics) -------------------------------------------------------------------------

METRICS_PREFIX = "wavecd:metrics:"


def metric(name: str) -> str:
    """Hash: one Prometheus metric, a field per label set."""
    return METRICS_PREFIX + name


SYNC_COUNTED = metric("sync-counted")  # operations already counted in the sync total

# -- the broker transport's redelivery bookkeeping (workers.redis_transport) -------------------------------------

UNACKED_OWNER = "wavecd:unacked-owner"  # hash: delivery tag -> id of the consuming process holding it


def consumer_alive(process_id: str) -> str:
    """A consuming process's heartbeat; expires when the process is gone."""
    return f"wavecd:consumer-alive:{process_id}"


# -- revisions and webhooks (shared.pipeline.revision_metadata) -------------------------------------------------


def revision(sha: str) -> str:
    """A commit's metadata (author, date, message) for the dashboard and history."""
    return f"wavecd:revision:{sha}"


def webhook_push(sha: str) -> str:
    """A webhook announced this commit: the dashboard says which syncs a push started."""
    return f"wavecd:webhook-push:{sha}"


# -- projects, clusters and repositories (shared.pipeline.project_catalog, project_declarative) -----------------

CATALOG_PROJECTS = "wavecd:catalog:projects"
CATALOG_CLUSTERS = "wavecd:catalog:clusters"
CATALOG_REPOS = "wavecd:catalog:repos"
CATALOG_REFRESHED = "wavecd:catalog:refreshedAt"
CATALOG_CLUSTER_STATUS = "wavecd:catalog:clusterStatus"


def catalog_probing(cluster: str) -> str:
    """A worker is probing this cluster's connection (one probe at a time)."""
    return f"wavecd:catalog:probing:{cluster}"


# -- requests handed from the API to a worker (shared.apps) ----------------------------------------------------


def app_stash(token: str) -> str:
    """A stashed Application change (create, update, delete a resource); the task carries only this key."""
    return f"wavecd:stash:{token}"


def project_stash(token: str) -> str:
    """A stashed AppProject change; the task carries only this key."""
    return f"wavecd:stash:project:{token}"


def stash_result(stash_key: str) -> str:
    """The outcome of a stashed change, for a client that waits on it."""
    return f"{stash_key}:result"


def manifests(request_id: str) -> str:
    """A manifests request and, once a worker produced them, the (masked) manifests."""
    return f"wavecd:manifests:{request_id}"


# -- the render cache (shared.source.render builds the key) ------------------------------------------------------

RENDER_CACHE = "wavecd:render:v2"  # tests/state check it is shared.source.render's CACHE_PREFIX
