"""compose.yaml is a valid Compose file (checked offline against the Compose specification vendored in
check-jsonschema) and runs WaveCD as asked: Redis that never evicts and persists, two workers on all
queues, exactly one beat, the API server and an authenticated, persistent, prefixed Flower, each with a
healthcheck where one is possible, configured by environment, with no secret written in the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import COMPOSE_FILE, WORKER_ARGS

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


def test_compose_file_matches_the_compose_specification():
    done = _check(COMPOSE_FILE)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_specification_check_bites(tmp_path, compose):
    broken = dict(
        compose, services={**compose["services"], "beat": {**compose["services"]["beat"], "replica": 1}}
    )
    path = tmp_path / "compose.yaml"
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    done = _check(path)
    assert done.returncode != 0 and "replica" in done.stdout


def test_redis_never_evicts_and_persists(services):
    redis = services["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])


def test_two_workers_on_all_queues(services):
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    assert worker["command"] == WORKER_ARGS
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"


def test_exactly_one_beat(services):
    beat = services["beat"]
    assert beat["deploy"]["replicas"] == 1
    assert beat["command"] == ["celery", "-A", "scheduler.beat", "beat", "--loglevel=INFO"]
    assert [name for name, s in services.items() if "beat" in " ".join(s.get("command", []))] == ["beat"]


def test_api_server(services):
    api = services["api"]
    assert api["command"] == ["wavecd", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_flower_has_basic_auth_persistence_and_prefix(services):
    flower = services["flower"]
    script = " ".join(flower["command"])
    assert "celery -A workers.celery_app flower --port=5555 --url_prefix=flower" in script
    assert "--persistent=True --db=/data/flower.db" in script
    # Refuses to start without credentials; Flower takes them from FLOWER_BASIC_AUTH in its environment.
    assert 'test -n "$${FLOWER_BASIC_AUTH}" ||' in script
    assert "basic_auth" not in script, "credentials stay off the command line"
    assert "flower-data:/data" in flower["volumes"]
    assert "/flower/healthcheck" in " ".join(flower["healthcheck"]["test"])
    # Started after the workers answer, so its first inspection of them does not fail.
    assert flower["depends_on"] == {"redis": {"condition": "service_healthy"},
                                    "worker": {"condition": "service_healthy"}}


@pytest.mark.parametrize("name", ["redis", "worker", "beat", "api", "flower"])
def test_healthchecks(services, name):
    check = services[name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert check["interval"] and check["timeout"] and check["retries"] >= 1


def test_worker_healthcheck_pings_this_worker(services):
    (test,) = services["worker"]["healthcheck"]["test"][1:]
    assert test.startswith("celery -A workers.celery_app inspect ping -d celery@$$HOSTNAME")


def test_configuration_is_by_environment_without_secrets(services):
    for name in ("worker", "beat", "api"):
        env = services[name]["environment"]
        assert env["WAVECD_REDIS_URL"] == "redis://redis:6379/0"
        assert env["WAVECD_LOG_JSON"] == "true"
        assert "WAVECD_APP_NAMESPACE" in env
        assert not [k for k in env if any(w in k for w in ("SECRET", "TOKEN", "PASSWORD", "AUTH"))]
        # Secrets come from an optional env file that is not part of the repository.
        assert services[name]["env_file"] == [{"path": "./wavecd.env", "required": False}]


def test_wavecd_services_share_one_image_and_run_read_only(services):
    wavecd = [s for name, s in services.items() if name != "redis"]
    assert len({s["image"] for s in wavecd}) == 1
    for s in wavecd:
        assert s["read_only"] is True and "/tmp" in s["tmpfs"]


def test_beat_health_is_the_tick_heartbeat(services):
    assert services["beat"]["healthcheck"]["test"][1:4] == ["wavecd", "check", "tick"]


def test_every_service_is_restarted_when_it_dies(services):
    """Issue #17: a worker that dies (a Redis restart killed it once) must come back on its own."""
    for name, service in services.items():
        assert service.get("restart") in ("unless-stopped", "always", "on-failure"), name
