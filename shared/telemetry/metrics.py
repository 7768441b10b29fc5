"""WaveCD's Prometheus metrics under Argo CD's names, kept in Redis so that every worker on every host is counted.

Names and labels are Argo CD's, so existing Grafana dashboards and alerts keep working:
`argocd_app_info` (namespace, name, project, autosync_enabled, repo, dest_server, dest_namespace,
sync_status, health_status, operation), `argocd_app_sync_total` (namespace, name, project, dest_server,
phase), `argocd_app_reconcile` (histogram by namespace, dest_server; buckets 0.25 to 16 s),
`argocd_app_k8s_request_total` (namespace, name, project, server, response_code, verb, resource_kind,
resource_namespace; the last two are empty for now),
`argocd_git_request_total` and `argocd_git_request_duration_seconds` (repo, request_type). What Argo CD has
no metric for is WaveCD's own, under `wavecd_`: queue depth, app locks held, webhook requests. An app's
`namespace` label is its Application's namespace (Argo CD's `argocd` unless it says otherwise).

Why Redis and not prometheus-client's multiprocess mode: multiprocess mode shares mmap files among the
processes of ONE host, but in Kubernetes the workers run in other pods (often other nodes) than the API
server that answers `/metrics`, so their files would never be read. Redis is the one place every WaveCD
process already reaches, and a counter there costs one HINCRBY.

Storage: one Redis hash per metric, `wavecd:metrics:<name>`. A counter's field is its label values (a JSON
list, in the definition's label order) and its value the count. A histogram keeps, per label set, one field
per bucket (non-cumulative: an observation is one HINCRBY on the bucket it falls in, plus one HINCRBYFLOAT on
the sum); the scrape makes the buckets cumulative. Workers batch increments in memory and write them in one
pipeline per task (`MetricsRecorder(batch_seconds=...)`); the API writes each webhook's count directly. The
labels an app lends a series (namespace, project, destination) are read from its record when the series is
recorded (cached a short while per process), so a series never changes its labels afterwards.

Gauges are not stored at all: `argocd_app_info`, `wavecd_queue_depth` and `wavecd_app_locks_held` are read
from their source (the app index, the Celery queue lists, the lock keys) when Prometheus scrapes. The text
format itself is prometheus-client's: `WaveCDCollector` is a custom collector, `registry` holds it and
`render` calls `generate_latest`.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from pydantic import ValidationError

from shared.core.models import ApplicationSpec
from shared.core.repo_url import redact_url
from shared.core.settings import get_settings
from shared.operation.model import ACTIVE_PHASES
from shared.state import keys
from shared.state.app_lock import AppLocks
from shared.state.app_store import AppStore
from shared.telemetry import log_context

log = logging.getLogger(__name__)

# keys.SYNC_COUNTED: the last operation id counted per app, so a finished sync is counted once however often
# it is seen. keys.oplog(app): where AppStore.log_operation appends {"op", "event", "phase"}; its last entry
# tells that an operation ended.
FINAL_SYNC_PHASES = ("Succeeded", "Failed", "Error")
_INF = float("inf")


@dataclass(frozen=True, slots=True)
class CounterDef:
    """A counter kept in Redis. `name` ends in `_total`, as the exposition shows it."""

    name: str
    help: str
    labels: tuple[str, ...]

    @property
    def key(self) -> str:
        return keys.metric(self.name)


@dataclass(frozen=True, slots=True)
class HistogramDef:
    """A histogram kept in Redis; `buckets` are the finite upper bounds (+Inf is implied)."""

    name: str
    help: str
    labels: tuple[str, ...]
    buckets: tuple[float, ...]

    @property
    def key(self) -> str:
        return keys.metric(self.name)

    def bucket_index(self, value: float) -> int:
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                return index
        return len(self.buckets)


# Argo CD's metric names, labels and buckets (util/metrics and controller/metrics of Argo CD).
APP_RECONCILE = HistogramDef(
    "argocd_app_reconcile", "Application reconciliation performance in seconds.", ("namespace", "dest_server"),
    (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0))
APP_SYNC_TOTAL = CounterDef(
    "argocd_app_sync_total", "Counter for application sync history",
    ("namespace", "name", "project", "dest_server", "phase"))
GIT_REQUEST_TOTAL = CounterDef(
    "argocd_git_request_total", "Number of git requests performed by repo server",
    ("repo", "request_type"))
GIT_REQUEST_DURATION = HistogramDef(
    "argocd_git_request_duration_seconds", "Git requests duration seconds.", ("repo", "request_type"),
    (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0, 20.0))
KUBE_REQUEST_TOTAL = CounterDef(
    "argocd_app_k8s_request_total", "Number of Kubernetes requests executed during application reconciliation "
    "(response_code 0: no answer).",
    ("namespace", "name", "project", "server", "response_code", "verb", "resource_kind", "resource_namespace"))
# WaveCD's own.
WEBHOOK_REQUESTS_TOTAL = CounterDef(
    "wavecd_webhook_requests_total", "Number of webhook requests received, by provider and result.",
    ("provider", "result"))

COUNTERS: tuple[CounterDef, ...] = (APP_SYNC_TOTAL, GIT_REQUEST_TOTAL, KUBE_REQUEST_TOTAL, WEBHOOK_REQUESTS_TOTAL)
HISTOGRAMS: tuple[HistogramDef, ...] = (APP_RECONCILE, GIT_REQUEST_DURATION)


class MetricsError(ValueError):
    """A metric was recorded with the wrong label names (a programming error, reported precisely)."""


def _field(definition: CounterDef | HistogramDef, labels: Mapping[str, object]) -> str:
    if set(labels) != set(definition.labels):
        raise MetricsError(f"metric {definition.name} takes labels {list(definition.labels)}, "
                           f"got {sorted(labels)}")
    return json.dumps([str(labels[name]) for name in definition.labels], separators=(",", ":"))


DEFAULT_APP_NAMESPACE = "argocd"
# How long a process trusts the labels it read from an app's record (project, destination, ...).
APP_LABELS_TTL_SECONDS = 30.0
RUNNING_OPERATION_PHASES = ACTIVE_PHASES  # the operation model says which phases are still running


_SCP_LIKE = re.compile(r"^[^/@:]+@[^/:]+:")


def argocd_repo_label(url: str) -> str:
    """Argo CD's `repo` label (its git.NormalizeGitURL): lower case, no `.git`, an scp-like SSH address
    (`git@host:org/repo`) as `git@host/org/repo`. HTTP(S) credentials never show (a user name there may
    be a token); the user of an SSH address is kept, as Argo CD keeps it."""
    text = url.strip()
    if "://" not in text and _SCP_LIKE.match(text):
        text = "ssh://" + text.replace(":", "/", 1)
    elif not text.lower().startswith("ssh://") or urlsplit(text).password:
        text = redact_url(text)
    return text.lower().removesuffix(".git").removeprefix("ssh://")


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class AppLabels:
    """What an Application lends the series about it, read from its record as Argo CD labels them."""

    namespace: str = ""
    project: str = ""
    dest_server: str = ""
    dest_namespace: str = ""
    repo: str = ""
    autosync_enabled: bool = False
    deleting: bool = False

    @classmethod
    def of(cls, record: Mapping[str, Any] | None, default_namespace: str) -> AppLabels:
        """The labels of an app record (`{"metadata", "spec"}`); tolerant of invalid specs."""
        record = _mapping(record)
        meta, spec = _mapping(record.get("metadata")), _mapping(record.get("spec"))
        destination = _mapping(spec.get("destination"))
        source = _mapping(spec.get("source"))
        if not source and isinstance(spec.get("sources"), list) and spec["sources"]:
            source = _mapping(spec["sources"][0])  # Argo CD labels a multi-source app by its first source
        repo = _text(source.get("repoURL"))
        return cls(namespace=_text(meta.get("namespace")) or default_namespace,
                   project=_text(spec.get("project")) or "default",
                   dest_server=_text(destination.get("server")),
                   dest_namespace=_text(destination.get("namespace")),
                   repo=argocd_repo_label(repo) if repo else "",
                   autosync_enabled=_autosync(spec),
                   deleting=bool(meta.get("deletionTimestamp")))


def _default_namespace() -> str:
    try:
        return get_settings().app_namespace or DEFAULT_APP_NAMESPACE
    except ValidationError:  # broken WAVECD_* settings: the work reports them, metrics carry on
        return DEFAULT_APP_NAMESPACE


# Marks an operation as counted and increments its phase's counter field in one step (exactly once per op).
_COUNT_SYNC = """
local last = redis.call('LINDEX', KEYS[1], -1)
if not last then return false end
local entry = cjson.decode(last)
if entry['event'] ~= 'end' then return false end
if redis.call('HGET', KEYS[2], ARGV[1]) == entry['op'] then return false end
for i = 2, #ARGV, 2 do
  if ARGV[i] == entry['phase'] then
    redis.call('HSET', KEYS[2], ARGV[1], entry['op'])
    redis.call('HINCRBY', KEYS[3], ARGV[i + 1], 1)
    return entry['phase']
  end
end
return false
"""


class MetricsRecorder:
    """Records counter increments and histogram observations into Redis.

    With `batch_seconds` > 0 (workers) increments gather in memory and are written by `flush()` (called
    after every task) or by the first record made `batch_seconds` after the last write; with 0 (the API)
    every record is written at once. Thread-safe. A Redis failure is logged and the batch dropped: metrics
    never fail the work they measure.
    """

    def __init__(self, client: redis.Redis, *, batch_seconds: float = 0.0, app_namespace: str | None = None
                 ) -> None:
        self._client = client
        self._batch_seconds = batch_seconds
        self._app_namespace = app_namespace
        self._store = AppStore(client)
        self._app_labels: dict[str, tuple[float, AppLabels]] = {}
        self._lock = threading.Lock()
        self._ints: Counter[tuple[str, str]] = Counter()
        self._floats: dict[tuple[str, str], float] = {}
        self._last_flush = time.monotonic()
        self._count_sync = client.register_script(_COUNT_SYNC)

    # -- generic ----------------------------------------------------------------------------------------
    def inc(self, counter: CounterDef, labels: Mapping[str, object], amount: int = 1) -> None:
        field = _field(counter, labels)
        with self._lock:
            self._ints[(counter.key, field)] += amount
        self._maybe_flush()

    def observe(self, histogram: HistogramDef, labels: Mapping[str, object], value: float) -> None:
        field = _field(histogram, labels)
        index = histogram.bucket_index(value)
        with self._lock:
            self._ints[(histogram.key, f"b{index}|{field}")] += 1
            sum_key = (histogram.key, f"s|{field}")
            self._floats[sum_key] = self._floats.get(sum_key, 0.0) + float(value)
        self._maybe_flush()

    def pending(self) -> int:
        """How many distinct fields wait for the next flush."""
        with self._lock:
            return len(self._ints) + len(self._floats)

    def flush(self) -> None:
        with self._lock:
            ints, floats = self._ints, self._floats
            self._ints, self._floats = Counter(), {}
            self._last_flush = time.monotonic()
        if not ints and not floats:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            for (key, field), amount in ints.items():
                pipe.hincrby(key, field, amount)
            for (key, field), amount in floats.items():
                pipe.hincrbyfloat(key, field, amount)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("dropping %d metric updates: Redis refused them (%s)", len(ints) + len(floats),
                        type(exc).__name__)

    def _maybe_flush(self) -> None:
        if self._batch_seconds <= 0 or time.monotonic() - self._last_flush >= self._batch_seconds:
            self.flush()

    # -- the labels an app lends its series ------------------------------------------------------------
    def app_labels(self, app: str) -> AppLabels:
        """The app's labels, from its record (cached APP_LABELS_TTL_SECONDS); empty for no app."""
        if not app:
            return AppLabels()
        now = time.monotonic()
        with self._lock:
            cached = self._app_labels.get(app)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self._app_namespace is None:
            self._app_namespace = _default_namespace()
        try:
            record = self._store.get_app(app)
        except (redis.RedisError, ValueError) as exc:
            log.warning("could not read app %s for its metric labels (%s)", app, type(exc).__name__)
            return AppLabels(namespace=self._app_namespace)  # not cached: the next record tries again
        labels = AppLabels.of(record, self._app_namespace)
        with self._lock:
            self._app_labels[app] = (now + APP_LABELS_TTL_SECONDS, labels)
        return labels

    # -- WaveCD's events ----------------------------------------------------------------------------------
    def kube_request(self, verb: str, code: int, kind: str = "", namespace: str = "") -> None:
        """The hook `shared.cluster.client.on_request` calls after every Kubernetes API request; the app is the one
        the running task serves (its log context), none for requests outside an app's task. `kind` and
        `namespace` are the requested resource's ("" when unknown, or cluster-scoped)."""
        app = log_context.current().get("app", "")
        labels = self.app_labels(app)
        self.inc(KUBE_REQUEST_TOTAL, {"namespace": labels.namespace, "name": app, "project": labels.project,
                                      "server": labels.dest_server, "response_code": code, "verb": verb,
                                      "resource_kind": kind, "resource_namespace": namespace})

    def git_request(self, request_type: str, repo_url: str, seconds: float) -> None:
        """One git request (`ls-remote` or `fetch`) and its duration; the URL is shown without credentials."""
        labels = {"repo": redact_url(repo_url), "request_type": request_type}
        self.inc(GIT_REQUEST_TOTAL, labels)
        self.observe(GIT_REQUEST_DURATION, labels, seconds)

    def webhook_request(self, provider: str, result: str) -> None:
        """The `on_result(provider, result)` callback of `scheduler.webhook.create_webhook_router`."""
        self.inc(WEBHOOK_REQUESTS_TOTAL, {"provider": provider, "result": result})

    def reconcile(self, seconds: float, app: str | None = None) -> None:
        """One reconciliation (the diff step) of `app` (default: the app of the current log context)."""
        name = app if app is not None else log_context.current().get("app", "")
        labels = self.app_labels(name)
        self.observe(APP_RECONCILE, {"namespace": labels.namespace, "dest_server": labels.dest_server}, seconds)

    def count_finished_sync(self, app: str) -> str | None:
        """Count the app's last operation if it has ended and was not counted yet; its phase, or None.

        Reads only the last entry of the app's operation log (small), never the operation document; the
        mark and the increment happen in one script, so redelivered or repeated calls count once.
        """
        labels = self.app_labels(app)
        args: list[str] = [app]
        for phase in FINAL_SYNC_PHASES:
            args += [phase, _field(APP_SYNC_TOTAL, {"namespace": labels.namespace, "name": app,
                                                    "project": labels.project, "dest_server": labels.dest_server,
                                                    "phase": phase})]
        try:
            result = self._count_sync(keys=[keys.oplog(app), keys.SYNC_COUNTED, APP_SYNC_TOTAL.key],
                                      args=args)
        except redis.RedisError as exc:
            log.warning("could not count the finished sync of %s (%s)", app, type(exc).__name__)
            return None
        return result.decode() if isinstance(result, bytes) else result


# -- reading: the scrape ------------------------------------------------------------------------------------

def _labels(field: str) -> list[str]:
    return [str(v) for v in json.loads(field)]


def _counter_family(definition: CounterDef, raw: Mapping[bytes, bytes]) -> CounterMetricFamily:
    family = CounterMetricFamily(definition.name, definition.help, labels=list(definition.labels))
    for field, value in sorted(raw.items()):
        family.add_metric(_labels(field.decode()), float(value))
    return family


def _histogram_family(definition: HistogramDef, raw: Mapping[bytes, bytes]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(definition.name, definition.help, labels=list(definition.labels))
    counts: dict[str, list[int]] = {}
    sums: dict[str, float] = {}
    for field_bytes, value in raw.items():
        head, _, field = field_bytes.decode().partition("|")
        if head == "s":
            sums[field] = float(value)
        elif head.startswith("b") and head[1:].isdigit():
            index = int(head[1:])
            if index <= len(definition.buckets):
                counts.setdefault(field, [0] * (len(definition.buckets) + 1))[index] += int(value)
    for field in sorted(counts):
        running = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*definition.buckets, _INF), counts[field], strict=True):
            running += count
            buckets.append((floatToGoString(bound), float(running)))
        family.add_metric(_labels(field), buckets, sums.get(field, 0.0))
    return family


def _autosync(spec: Mapping[str, Any]) -> bool:
    try:
        return ApplicationSpec.model_validate(spec).automated
    except ValidationError:
        auto = _mapping(spec.get("syncPolicy")).get("automated")
        return isinstance(auto, dict) and auto.get("enabled") is not False


APP_INFO_LABELS = ["namespace", "name", "project", "autosync_enabled", "repo", "dest_server", "dest_namespace",
                   "sync_status", "health_status", "operation"]


def _operation_label(labels: AppLabels, raw_operation: bytes | None) -> str:
    """Argo CD's `operation` label: "delete" while the app is deleted, "sync" while an operation runs."""
    if labels.deleting:
        return "delete"
    if raw_operation:
        try:
            operation = json.loads(raw_operation)
        except ValueError:
            return ""
        if isinstance(operation, dict) and operation.get("phase") in RUNNING_OPERATION_PHASES:
            return "sync"
    return ""


def _app_info(store: AppStore, client: redis.Redis, default_namespace: str, batch: int = 200) -> GaugeMetricFamily:
    family = GaugeMetricFamily("argocd_app_info", "Information about application.", labels=APP_INFO_LABELS)
    apps = store.all_apps()
    names = sorted(apps)
    for start in range(0, len(names), batch):
        chunk = names[start:start + batch]
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.hmget(keys.state(name), ["status", "operation"])
        for name, (raw_status, raw_operation) in zip(chunk, pipe.execute(), strict=True):
            status = json.loads(raw_status) if raw_status else {}
            labels = AppLabels.of(apps[name], default_namespace)
            family.add_metric([labels.namespace, name, labels.project,
                               "true" if labels.autosync_enabled else "false", labels.repo, labels.dest_server,
                               labels.dest_namespace,
                               str((status.get("sync") or {}).get("status") or "Unknown"),
                               str((status.get("health") or {}).get("status") or "Unknown"),
                               _operation_label(labels, raw_operation)], 1.0)
    return family


class WaveCDCollector(Collector):
    """Everything `/metrics` shows, read from Redis at scrape time.

    `queue_keys` maps each Celery queue name to the Redis lists that hold its messages (the queue list and
    its priority lists); the caller, which knows the broker, supplies them.
    """

    def __init__(self, client: redis.Redis, queue_keys: Mapping[str, Sequence[str]], lock_ttl: float = 60.0,
                 app_namespace: str = DEFAULT_APP_NAMESPACE) -> None:
        self._client = client
        self._app_namespace = app_namespace
        self._queue_keys = {name: list(keys) for name, keys in queue_keys.items()}
        self._store = AppStore(client)
        self._locks = AppLocks(client, lock_ttl)

    def collect(self) -> Iterator[Metric]:
        pipe = self._client.pipeline(transaction=False)
        for definition in (*COUNTERS, *HISTOGRAMS):
            pipe.hgetall(definition.key)
        for queue_lists in self._queue_keys.values():
            for key in queue_lists:
                pipe.llen(key)
        results = iter(pipe.execute())
        for counter in COUNTERS:
            yield _counter_family(counter, next(results))
        for histogram in HISTOGRAMS:
            yield _histogram_family(histogram, next(results))
        depth = GaugeMetricFamily("wavecd_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"])
        for name, queue_lists in self._queue_keys.items():
            depth.add_metric([name], float(sum(int(next(results)) for _ in queue_lists)))
        yield depth
        yield GaugeMetricFamily("wavecd_app_locks_held", "App operation locks currently held.",
                                value=float(self._locks.held_count()))
        yield _app_info(self._store, self._client, self._app_namespace)


def registry(client: redis.Redis, queue_keys: Mapping[str, Sequence[str]], lock_ttl: float = 60.0,
             app_namespace: str = DEFAULT_APP_NAMESPACE) -> CollectorRegistry:
    """A registry holding only WaveCD's collector (no process metrics of the scraping process)."""
    result = CollectorRegistry(auto_describe=False)
    result.register(WaveCDCollector(client, queue_keys, lock_ttl, app_namespace))
    return result


def render(client: redis.Redis, queue_keys: Mapping[str, Sequence[str]], lock_ttl: float = 60.0,
           app_namespace: str = DEFAULT_APP_NAMESPACE) -> bytes:
    """The Prometheus text exposition (format 0.0.4) of all WaveCD metrics."""
    return generate_latest(registry(client, queue_keys, lock_ttl, app_namespace))
