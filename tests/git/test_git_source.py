"""The repository cache against real repositories over file:// and smart HTTP with basic auth."""

from __future__ import annotations

import logging
import multiprocessing
from pathlib import Path

import pygit2
import pytest

from shared.core.errors import ConfigurationError, StallingError, TransientError
from shared.source.git_credentials import CredentialStore
from shared.source.git_source import RepoCache

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {}\n"


def test_fetch_skipped_when_remote_unchanged(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo", {"a/x.yaml": CM.format("x")})
    cache = RepoCache(tmp_path / "cache")
    assert cache.fetch(handle.url).fetched is True
    assert cache.fetch(handle.url).fetched is False
    assert cache.stats["fetch"] == 1 and cache.stats["ls_remote"] == 2
    new = handle.commit({"a/y.yaml": CM.format("y")})
    result = cache.fetch(handle.url)
    assert result.fetched is True and result.refs["refs/heads/main"] == new
    assert cache.resolve(handle.url, "main") == new
    assert cache.stats["fetch"] == 2


def test_one_cache_per_normalized_url(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo")
    cache = RepoCache(tmp_path / "cache")
    assert cache.repo_dir(handle.url) == cache.repo_dir(handle.url + "/") == cache.repo_dir(str(handle.path))
    assert cache.repo_dir("https://GitHub.com/Org/Repo.git") == cache.repo_dir("git@github.com:org/repo")


def test_remote_refs_lists_branches_tags_and_head(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo")
    first = handle.head()
    handle.tag("v1", first)
    handle.commit({"b.txt": "b"}, branch="feature", from_branch="main")
    refs = RepoCache(tmp_path / "cache").remote_refs(handle.url)
    assert refs["HEAD"] == first
    assert refs["refs/heads/main"] == first
    assert refs["refs/tags/v1"] == first
    assert refs["refs/heads/feature"] == handle.head("feature")


def test_resolve_like_argo_cd(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo")
    first = handle.head()
    second = handle.commit({"x.txt": "2"})
    handle.tag("v1.0.0", first)
    handle.tag("release", first, annotated=True)
    feature = handle.commit({"f.txt": "f"}, branch="feature", from_branch="main")
    handle.commit({"t.txt": "t"}, branch="v1.0.0", from_branch="main")  # branch named like the tag
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    assert cache.resolve(handle.url, "HEAD") == second
    assert cache.resolve(handle.url, "") == second
    assert cache.resolve(handle.url, "main") == second
    assert cache.resolve(handle.url, "feature") == feature
    assert cache.resolve(handle.url, "refs/heads/feature") == feature
    assert cache.resolve(handle.url, "release") == first  # annotated tag peeled to its commit
    assert cache.resolve(handle.url, "v1.0.0") == handle.head("v1.0.0")  # a branch wins over a tag
    assert cache.resolve(handle.url, "refs/tags/v1.0.0") == first
    assert cache.resolve(handle.url, first) == first
    assert cache.resolve(handle.url, first.upper()) == first
    assert cache.resolve(handle.url, first[:8]) == first
    with pytest.raises(ConfigurationError, match="unable to resolve 'nope'"):
        cache.resolve(handle.url, "nope")
    with pytest.raises(ConfigurationError, match="unable to resolve"):
        cache.resolve(handle.url, "0" * 40)


def test_head_follows_the_remote_default_branch(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo")
    other = handle.commit({"o.txt": "o"}, branch="trunk", from_branch="main")
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    assert cache.resolve(handle.url, "HEAD") == handle.head("main")
    handle.set_default_branch("trunk")
    cache.fetch(handle.url)
    assert cache.resolve(handle.url, "HEAD") == other


def test_full_sha_unreachable_by_refs_is_fetched_by_id(git_factory, git_http_server, tmp_path: Path) -> None:
    # Smart HTTP lets a client want any commit (the fixture allows it, as GitHub does); libgit2's local
    # file:// transport does not, so this runs over HTTP.
    handle = git_factory.create("repo")
    dangling = handle.commit({"d.txt": "d"}, branch="tmp", from_branch="main")
    handle.delete_branch("tmp")
    url = git_http_server.url_for(handle)
    cache = RepoCache(tmp_path / "cache", _store(git_http_server, git_http_server.password))
    cache.fetch(url)
    assert cache.resolve(url, dangling) == dangling


def test_deleted_branch_is_pruned(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo")
    handle.commit({"f.txt": "f"}, branch="gone", from_branch="main")
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    assert cache.resolve(handle.url, "gone")
    handle.delete_branch("gone")
    assert cache.fetch(handle.url).fetched is True
    with pytest.raises(ConfigurationError):
        cache.resolve(handle.url, "gone")


def test_path_tree_id_changes_only_when_the_path_changes(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo", {"a/x.yaml": CM.format("x"), "b/y.yaml": CM.format("y")})
    first = handle.head()
    second = handle.commit({"b/y.yaml": CM.format("y2")})
    cache = RepoCache(tmp_path / "cache")
    cache.fetch(handle.url)
    assert cache.path_tree_id(handle.url, first, "a") == cache.path_tree_id(handle.url, second, "a")
    assert cache.path_tree_id(handle.url, first, "b") != cache.path_tree_id(handle.url, second, "b")
    assert cache.path_tree_id(handle.url, first, ".") != cache.path_tree_id(handle.url, second, "./")
    assert cache.path_tree_id(handle.url, first, "missing") is None
    assert cache.path_tree_id(handle.url, first, "a/x.yaml") is None
    with pytest.raises(StallingError):
        cache.path_tree_id(handle.url, first, "../a")


def test_unreachable_repository_is_transient(tmp_path: Path) -> None:
    cache = RepoCache(tmp_path / "cache", timeout=5)
    with pytest.raises(TransientError, match="127.0.0.1"):
        cache.fetch("http://127.0.0.1:9/nothing.git")


def test_missing_local_repository_is_a_configuration_error(tmp_path: Path) -> None:
    cache = RepoCache(tmp_path / "cache")
    with pytest.raises(ConfigurationError, match="repository not found"):
        cache.fetch(f"file://{tmp_path}/absent.git")


def test_interrupted_fetch_leaves_a_usable_cache(git_factory, tmp_path: Path) -> None:
    files = {f"f{i}.txt": f"content {i}\n" * 50 for i in range(200)}
    handle = git_factory.create("repo", {"a.txt": "a"})
    cache_dir = tmp_path / "cache"
    RepoCache(cache_dir).fetch(handle.url)
    new = handle.commit(files)

    def abort(received: int, total: int) -> None:
        if received > 0:
            raise TransientError("simulated interruption")

    with pytest.raises(TransientError, match="simulated interruption"):
        RepoCache(cache_dir, progress=abort).fetch(handle.url)
    cache = RepoCache(cache_dir)
    assert cache.resolve(handle.url, "main") != new  # refs were not moved by the broken fetch
    assert cache.fetch(handle.url).fetched is True
    assert cache.resolve(handle.url, "main") == new
    repo = cache.open(handle.url)
    assert repo[new].tree["f199.txt"].data.startswith(b"content 199")


def _fetch_in_process(cache_dir: str, url: str, queue: multiprocessing.Queue) -> None:
    cache = RepoCache(Path(cache_dir))
    result = cache.fetch(url)
    queue.put((result.fetched, cache.resolve(url, "main")))


def test_processes_share_the_cache_safely(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo", {f"f{i}.txt": f"{i}\n" * 200 for i in range(300)})
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_process, args=(str(tmp_path / "cache"), handle.url, queue))
             for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    results = [queue.get(timeout=5) for _ in procs]
    assert sorted(fetched for fetched, _ in results) == [False, False, True]  # the lock serialized them
    assert {sha for _, sha in results} == {handle.head()}


# --- credentials over smart HTTP --------------------------------------------------------------------------

def _store(server, password: str) -> CredentialStore:
    return CredentialStore.from_mapping({f"http://127.0.0.1:{server.port}/": {"username": server.username,
                                                                            "password": password}})


def test_http_with_right_credentials(git_factory, git_http_server, tmp_path: Path) -> None:
    handle = git_factory.create("private", {"a/x.yaml": CM.format("x")})
    url = git_http_server.url_for(handle)
    cache = RepoCache(tmp_path / "cache", _store(git_http_server, git_http_server.password))
    assert cache.fetch(url).fetched is True
    assert cache.resolve(url, "HEAD") == handle.head()
    assert any(path.endswith("git-upload-pack") and status == 200
               for _, path, status in git_http_server.requests)


def test_http_with_wrong_credentials_hides_the_password(git_factory, git_http_server, tmp_path: Path,
                                                        caplog) -> None:
    handle = git_factory.create("private")
    url = git_http_server.url_for(handle)
    wrong = "wrong-Pa55word-that-must-not-leak"
    cache = RepoCache(tmp_path / "cache", _store(git_http_server, wrong))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ConfigurationError) as info:
        cache.fetch(url)
    assert "rejected" in str(info.value) or "authentication" in str(info.value)
    assert wrong not in str(info.value)
    assert wrong not in caplog.text and git_http_server.password not in caplog.text


def test_http_without_credentials(git_factory, git_http_server, tmp_path: Path) -> None:
    handle = git_factory.create("private")
    with pytest.raises(ConfigurationError, match="requires credentials"):
        RepoCache(tmp_path / "cache").fetch(git_http_server.url_for(handle))


def test_credentials_in_the_url_work_and_never_show(git_factory, git_http_server, tmp_path: Path,
                                                   caplog) -> None:
    handle = git_factory.create("private")
    good = git_http_server.url_for(handle, with_credentials=f"{git_http_server.username}:"
                                                            f"{git_http_server.password}")
    cache = RepoCache(tmp_path / "cache")
    caplog.set_level(logging.DEBUG)
    assert cache.fetch(good).fetched is True
    bad = git_http_server.url_for(handle, with_credentials=f"{git_http_server.username}:leaky-Secret-123")
    with pytest.raises(ConfigurationError) as info:
        RepoCache(tmp_path / "cache2").fetch(bad)
    assert "leaky-Secret-123" not in str(info.value)
    assert git_http_server.password not in caplog.text and "leaky-Secret-123" not in caplog.text


def test_cache_dir_may_be_recreated_when_corrupt(git_factory, tmp_path: Path) -> None:
    handle = git_factory.create("repo")
    cache = RepoCache(tmp_path / "cache")
    path = cache.repo_dir(handle.url)
    path.mkdir(parents=True)
    (path / "HEAD").write_text("garbage")
    fresh = RepoCache(tmp_path / "cache")
    assert fresh.fetch(handle.url).fetched is True
    assert isinstance(fresh.open(handle.url), pygit2.Repository)
    assert fresh.resolve(handle.url, "HEAD") == handle.head()
