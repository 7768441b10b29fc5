"""Render with the Redis cache, change detection by tree id, and kustomize apps."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
import redis

from shared.core.errors import ConfigurationError, StallingError
from shared.source import render
from shared.source.git_source import RepoCache
from shared.source.manifests import DirectoryOptions, load_manifests_from_dir
from shared.source.render import render_app, source_fingerprint

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n"
OPTS = DirectoryOptions()


@pytest.fixture()
def repo(git_factory, tmp_path: Path):
    handle = git_factory.create("mono", {"apps/a/cm.yaml": CM.format("a"), "apps/b/cm.yaml": CM.format("b"),
                                         "apps/a-copy/cm.yaml": CM.format("a")})
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    return handle, cache


def test_second_render_is_a_cache_hit(repo, redis_client) -> None:
    handle, cache = repo
    render.stats.clear()
    first = render_app(cache, redis_client, handle.url, handle.head(), "apps/a", OPTS)
    second = render_app(cache, redis_client, handle.url, handle.head(), "apps/a", OPTS)
    assert render.stats["renders"] == 1 and render.stats["cache_hits"] == 1
    assert second.objects == first.objects and second.sources == ["apps/a/cm.yaml"]
    keys = redis_client.keys("wavecd:render:*")
    assert len(keys) == 1 and 0 < redis_client.ttl(keys[0]) <= render.CACHE_TTL_SECONDS
    assert b"ConfigMap" in zlib.decompress(redis_client.get(keys[0]))


def test_identical_trees_share_one_render_but_keep_their_paths(repo, redis_client) -> None:
    handle, cache = repo
    render.stats.clear()
    render_app(cache, redis_client, handle.url, handle.head(), "apps/a", OPTS)
    copy = render_app(cache, redis_client, handle.url, handle.head(), "apps/a-copy", OPTS)
    assert render.stats["renders"] == 1
    assert copy.sources == ["apps/a-copy/cm.yaml"]


def test_options_are_part_of_the_key(repo, redis_client) -> None:
    handle, cache = repo
    render.stats.clear()
    render_app(cache, redis_client, handle.url, handle.head(), "apps/a", OPTS)
    render_app(cache, redis_client, handle.url, handle.head(), "apps/a", DirectoryOptions(recurse=True))
    assert render.stats["renders"] == 2


def test_a_cache_miss_renders_again(repo, redis_client) -> None:
    handle, cache = repo
    render.stats.clear()
    render_app(cache, redis_client, handle.url, handle.head(), "apps/a", OPTS)
    redis_client.flushdb()
    again = render_app(cache, redis_client, handle.url, handle.head(), "apps/a", OPTS)
    assert render.stats["renders"] == 2 and again.objects[0]["metadata"]["name"] == "a"


def test_unreachable_redis_is_only_a_missed_cache(repo) -> None:
    handle, cache = repo
    dead = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.2)
    rendered = render_app(cache, dead, handle.url, handle.head(), "apps/a", OPTS)
    assert rendered.objects[0]["metadata"]["name"] == "a"


def test_fingerprint_follows_the_path_tree_and_the_options(repo) -> None:
    """What the fetch step's detection compares (its behaviour: tests/pipeline/test_fetch_detection.py)."""
    handle, cache = repo
    old = handle.head()
    new = handle.commit({"apps/b/cm.yaml": CM.format("b2")})
    cache.fetch(handle.url)
    assert source_fingerprint(cache, handle.url, old, "apps/a", OPTS) \
        == source_fingerprint(cache, handle.url, new, "apps/a", OPTS)
    assert source_fingerprint(cache, handle.url, old, "apps/b", OPTS) \
        != source_fingerprint(cache, handle.url, new, "apps/b", OPTS)
    assert source_fingerprint(cache, handle.url, old, "apps/a", OPTS) \
        != source_fingerprint(cache, handle.url, old, "apps/a", DirectoryOptions(recurse=True))
    gone = handle.commit({"apps/a/cm.yaml": None})
    cache.fetch(handle.url)
    with pytest.raises(StallingError, match="does not exist"):
        source_fingerprint(cache, handle.url, gone, "apps/a", OPTS)


def test_commit_not_fetched_is_a_configuration_error(repo) -> None:
    handle, cache = repo
    with pytest.raises(ConfigurationError, match="fetch first"):
        render_app(cache, None, handle.url, "1" * 40, "apps/a", OPTS)


KUSTOMIZATION = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"


def test_kustomize_app_with_a_base_is_rendered_and_tracks_the_base(git_factory, tmp_path: Path,
                                                                   redis_client) -> None:
    handle = git_factory.create("k", {
        "base/kustomization.yaml": KUSTOMIZATION + "resources:\n- cm.yaml\n",
        "base/cm.yaml": CM.format("base-cm"),
        "overlays/prod/kustomization.yaml": KUSTOMIZATION + "namePrefix: prod-\nresources:\n- ../../base\n",
    })
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    old = handle.head()
    rendered = render_app(cache, redis_client, handle.url, old, "overlays/prod", OPTS)
    assert rendered.renderer == "kustomize"
    assert [o["metadata"]["name"] for o in rendered.objects] == ["prod-base-cm"]
    new = handle.commit({"base/cm.yaml": CM.format("changed")})
    cache.fetch(handle.url)
    # The overlay's own tree did not change, but its base did: a kustomize app must count as changed.
    assert cache.path_tree_id(handle.url, old, "overlays/prod") == cache.path_tree_id(handle.url, new,
                                                                                    "overlays/prod")
    assert source_fingerprint(cache, handle.url, old, "overlays/prod", OPTS) \
        != source_fingerprint(cache, handle.url, new, "overlays/prod", OPTS)
    again = render_app(cache, redis_client, handle.url, new, "overlays/prod", OPTS)
    assert [o["metadata"]["name"] for o in again.objects] == ["prod-changed"]


def test_kustomize_errors_and_missing_binary(git_factory, tmp_path: Path, monkeypatch) -> None:
    files = {"app/kustomization.yaml": KUSTOMIZATION + "resources:\n- missing.yaml\n"}
    handle = git_factory.create("k", files)
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    with pytest.raises(StallingError, match="kustomize build failed") as info:
        render_app(cache, None, handle.url, handle.head(), "app", OPTS)
    assert info.value.path == "app" and "wavecd-kustomize-" not in str(info.value)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigurationError, match="neither `kustomize` nor `kubectl`"):
        render_app(cache, None, handle.url, handle.head(), "app", OPTS)


def test_kustomize_export_refuses_symlinks_leaving_the_repository(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("k", {"app/kustomization.yaml": KUSTOMIZATION + "resources:\n- cm.yaml\n"})
    handle.symlink("app/cm.yaml", "../../../../etc/hostname")
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    with pytest.raises(StallingError, match="outside the repository"):
        render_app(cache, None, handle.url, handle.head(), "app", OPTS)


def test_kustomization_on_disk(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(KUSTOMIZATION + "namespace: team\nresources:\n- cm.yaml\n")
    (tmp_path / "cm.yaml").write_text(CM.format("disk"))
    rendered = load_manifests_from_dir(tmp_path, OPTS)
    assert rendered.objects[0]["metadata"] == {"name": "disk", "namespace": "team"}
