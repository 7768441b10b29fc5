"""Loading and running Lua health customizations: layout, keys, precedence, caching, isolation."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from shared.health import (
    HealthRuleError,
    HealthStatusCode,
    InvalidObjectError,
    LuaHealthRules,
    assess,
    default_lua_rules,
    parse_rule_key,
)
from shared.health import lua as lua_module

WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"}}
CORE_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Pending"}}


def _write(root: Path, group: str, kind: str, text: str) -> None:
    folder = root / group / kind
    folder.mkdir(parents=True)
    (folder / "health.lua").write_text(text, encoding="utf-8")


def test_from_directory_layout(tmp_path: Path) -> None:
    _write(tmp_path, "example.com", "Widget", 'return { status = "Degraded", message = "from file" }')
    _write(tmp_path, "core", "Pod", 'return { status = "Suspended", message = "core pod" }')
    _write(tmp_path, "_", "Gadget", 'return { status = "Healthy", message = "any group" }')
    (tmp_path / "example.com" / "Empty").mkdir()  # a kind folder without health.lua is ignored
    rules = LuaHealthRules.from_directory(tmp_path)
    assert len(rules) == 3
    assert assess(WIDGET, rules).message == "from file"
    assert assess(CORE_POD, rules).status is HealthStatusCode.SUSPENDED
    gadget = {**WIDGET, "apiVersion": "other.io/v2", "kind": "Gadget"}
    assert assess(gadget, rules).message == "any group"


def test_from_directory_underscore_folders_are_globs(tmp_path: Path) -> None:
    """Argo CD's resource_customizations layout: `_` in a folder name stands for `*`."""
    _write(tmp_path, "_.cnrm.cloud.google.com", "_", 'return { status = "Healthy", message = "any cnrm" }')
    _write(tmp_path, "_.cnrm.cloud.google.com", "ComputeInstance", 'return { status = "Degraded", message = "vm" }')
    _write(tmp_path, "sql.cnrm.cloud.google.com", "_", 'return { status = "Suspended", message = "sql" }')
    rules = LuaHealthRules.from_directory(tmp_path)

    def message(api_version: str, kind: str) -> str | None:
        result = assess({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}, rules)
        return None if result is None else result.message

    assert message("storage.cnrm.cloud.google.com/v1beta1", "StorageBucket") == "any cnrm"
    assert message("compute.cnrm.cloud.google.com/v1beta1", "ComputeInstance") == "vm"
    assert message("sql.cnrm.cloud.google.com/v1beta1", "SQLInstance") == "sql"  # literal group wins
    assert message("sql.cnrm.cloud.google.com/v1beta1", "ComputeInstance") == "sql"
    assert message("cnrm.cloud.google.com/v1beta1", "ConfigConnector") is None
    assert message("example.com/v1", "StorageBucket") is None


def test_from_directory_rejects_a_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(HealthRuleError, match="does not exist or is not a directory"):
        LuaHealthRules.from_directory(tmp_path / "nope")


def test_from_directory_rejects_undecodable_script(tmp_path: Path) -> None:
    folder = tmp_path / "example.com" / "Widget"
    folder.mkdir(parents=True)
    (folder / "health.lua").write_bytes(b"\xff\xfe return")
    with pytest.raises(HealthRuleError, match="cannot read health customizations"):
        LuaHealthRules.from_directory(tmp_path)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("cert-manager.io/Certificate", ("cert-manager.io", "Certificate")),
        ("cert-manager.io_Certificate", ("cert-manager.io", "Certificate")),
        ("core/Pod", ("", "Pod")),
        ("/Pod", ("", "Pod")),
        ("Pod", ("", "Pod")),
        ("_/_", ("_", "_")),
        ("*.crossplane.io/*", ("*.crossplane.io", "*")),
    ],
)
def test_parse_rule_key(key: str, expected: tuple[str, str]) -> None:
    assert parse_rule_key(key) == expected


@pytest.mark.parametrize(("key", "fragment"), [("", "is empty"), ("a/b/c", "more than one '/'"),
                                               ("apps/", "names no kind")])
def test_parse_rule_key_rejects_bad_keys(key: str, fragment: str) -> None:
    with pytest.raises(HealthRuleError, match=fragment):
        parse_rule_key(key)


def test_from_mapping_rejects_non_text_script() -> None:
    with pytest.raises(HealthRuleError, match="must be Lua text, got int"):
        LuaHealthRules.from_mapping({"apps/Deployment": 3})  # type: ignore[dict-item]


def test_merged_other_wins() -> None:
    base = LuaHealthRules.from_mapping({
        "example.com/Widget": 'return { status = "Healthy", message = "base" }',
        "example.com/Gadget": 'return { status = "Healthy", message = "gadget" }',
    })
    top_script = 'return { status = "Degraded", message = "top" }'
    top = LuaHealthRules.from_mapping({"example.com/Widget": top_script})
    merged = base.merged(top)
    assert assess(WIDGET, merged).message == "top"
    assert assess({**WIDGET, "kind": "Gadget"}, merged).message == "gadget"
    assert assess(WIDGET, base).message == "base"  # merging leaves the originals alone


def test_merged_other_wins_even_with_a_wildcard_over_an_exact_base_rule() -> None:
    """Argo CD consults resource overrides (wildcards included) before its built-in scripts."""
    shipped = LuaHealthRules.from_mapping({"example.com/Widget": 'return { status = "Healthy", message = "built-in" }'})
    user = LuaHealthRules.from_mapping({"*.com/*": 'return { status = "Degraded", message = "override" }',
                                        "other.io/Gadget": 'return { status = "Healthy", message = "gadget" }'})
    merged = shipped.merged(user)
    assert assess(WIDGET, merged).message == "override"
    later = LuaHealthRules.from_mapping({"example.com/Gizmo": 'return { status = "Suspended", message = "later" }'})
    chained = merged.merged(later)
    assert assess(WIDGET, chained).message == "override"
    assert assess({**WIDGET, "kind": "Gizmo"}, chained).message == "later"
    assert assess({**WIDGET, "apiVersion": "other.io/v1", "kind": "Gadget"}, chained).message == "gadget"
    assert len(chained) == 4
    assert LuaHealthRules.from_mapping({}).merged(user).script_for("example.com", "Widget") is not None


def test_each_run_gets_fresh_globals() -> None:
    rules = LuaHealthRules.from_mapping(
        {"example.com/Widget": 'n = (n or 0) + 1\nreturn { status = "Healthy", message = tostring(n) }'}
    )
    assert [assess(WIDGET, rules).message for _ in range(3)] == ["1", "1", "1"]


def test_script_is_compiled_once() -> None:
    text = 'return { status = "Healthy", message = "compiled once" }'
    rules_a = LuaHealthRules.from_mapping({"example.com/Widget": text})
    rules_b = LuaHealthRules.from_mapping({"example.com/Widget": text})
    engine = lua_module._engine()
    assess(WIDGET, rules_a)
    first = engine.compiled("example.com/Widget/health.lua", text)[0]
    assess(WIDGET, rules_b)
    assert engine.compiled("example.com/Widget/health.lua", text)[0] is first


def test_engine_recovers_after_a_timeout() -> None:
    rules = LuaHealthRules.from_mapping({
        "example.com/Widget": "while true do end",
        "example.com/Counter": (
            'local n = 0\nfor i = 1, 2000000 do n = n + 1 end\n'
            'return { status = "Healthy", message = tostring(n) }'
        ),
    })
    assert assess(WIDGET, rules).status is HealthStatusCode.UNKNOWN
    assert assess({**WIDGET, "kind": "Counter"}, rules).message == "2000000"


def test_non_json_values_reach_lua_as_text() -> None:
    obj = {**WIDGET, "metadata": {"name": "w", "creationTimestamp": datetime(2024, 5, 1, 10, 0, tzinfo=UTC)}}
    script = (
        "local t = obj.metadata.creationTimestamp\n"
        'return { status = "Healthy", message = type(t) .. " " .. t }'
    )
    rules = LuaHealthRules.from_mapping({"example.com/Widget": script})
    assert assess(obj, rules).message == "string 2024-05-01T10:00:00Z"


def test_non_string_message_is_converted() -> None:
    rules = LuaHealthRules.from_mapping({"example.com/Widget": 'return { status = "Healthy", message = 42 }'})
    assert assess(WIDGET, rules).message == "42"


def test_concurrent_threads_share_the_engine_safely() -> None:
    rules = LuaHealthRules.from_mapping(
        {"example.com/Widget": 'return { status = "Healthy", message = obj.metadata.name }'}
    )
    results: list[str] = []

    def work(index: int) -> None:
        for _ in range(50):
            obj = {**WIDGET, "metadata": {"name": f"w{index}"}}
            results.append(assess(obj, rules).message == f"w{index}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [True] * 200


def _assess_in_child(queue: multiprocessing.Queue) -> None:
    script = 'return { status = "Suspended", message = "child" }'
    rules = LuaHealthRules.from_mapping({"example.com/Widget": script})
    result = assess(WIDGET, rules)
    queue.put((result.status.value, result.message))


def test_forked_worker_gets_its_own_engine() -> None:
    assess(WIDGET, LuaHealthRules.from_mapping({"example.com/Widget": 'return { status = "Healthy" }'}))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_assess_in_child, args=(queue,))
    child.start()
    child.join(timeout=30)
    assert queue.get(timeout=5) == ("Suspended", "child")


def test_default_rules_are_shipped_and_cached() -> None:
    rules = default_lua_rules()
    assert rules is default_lua_rules()
    for group, kind in [("postgresql.cnpg.io", "Cluster"), ("external-secrets.io", "ExternalSecret"),
                        ("external-secrets.io", "SecretStore"), ("external-secrets.io", "ClusterSecretStore"),
                        ("cert-manager.io", "Certificate")]:
        assert rules.covers(group, kind), f"{group}/{kind}"
    assert not rules.covers("apps", "Deployment")


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ("not an object", "expected a Kubernetes object"),
        ({"apiVersion": "v1"}, "without a kind"),
        ({"kind": "Pod"}, "Pod without an apiVersion"),
    ],
)
def test_invalid_objects_raise_a_typed_error(obj: object, fragment: str) -> None:
    with pytest.raises(InvalidObjectError, match=fragment):
        assess(obj)  # type: ignore[arg-type]


def test_from_argocd_cm_reads_both_spellings_and_the_per_key_one_wins() -> None:
    data = {
        "resource.customizations": (
            "example.com/Widget:\n  health.lua: |\n    return {status = \"Degraded\", message = \"block\"}\n"
            "example.com/Gadget:\n  health.lua: |\n    return {status = \"Healthy\", message = \"block gadget\"}\n"
            "example.com/Actions:\n  actions: '{}'\n"),
        "resource.customizations.health.example.com_Widget": 'return { status = "Healthy", message = "key" }',
        "resource.customizations.health.Pod": 'return { status = "Suspended", message = "core" }',
        "resource.customizations.ignoreDifferences.all": "jsonPointers: [/x]",
        "url": "https://argocd.example.com",
    }
    rules = LuaHealthRules.from_argocd_cm(data)
    assert len(rules) == 3
    assert assess(WIDGET, rules).message == "key"
    assert assess({**WIDGET, "kind": "Gadget"}, rules).message == "block gadget"
    assert assess(CORE_POD, rules).message == "core"


@pytest.mark.parametrize(("data", "fragment"), [
    ({"resource.customizations.health.example.com_Widget": 3}, "must be Lua text, got int"),
    ({"resource.customizations": "a: [unclosed"}, "is not valid YAML"),
    ({"resource.customizations": "example.com/Widget: text"}, "example.com/Widget must be a mapping"),
    ({"resource.customizations": "example.com/Widget: {health.lua: 7}"}, "health.lua must be Lua text"),
    ({"resource.customizations.health.a/b/c": "return {}"}, "more than one '/'"),
])
def test_from_argocd_cm_refuses_unusable_entries(data: dict, fragment: str) -> None:
    with pytest.raises(HealthRuleError, match=fragment):
        LuaHealthRules.from_argocd_cm(data)


# -- argocd-cm as the workers read it (WAVECD_ARGOCD_CM) ---------------------------------------------------------

_ARGOCD_CM_SCRIPT = 'return {status = "Degraded", message = "from argocd-cm"}'


@pytest.mark.parametrize("form", ["manifest", "mounted-directory"])
def test_workers_read_argocd_cm_and_it_wins_over_the_directory(tmp_path: Path, form: str) -> None:
    from shared.core.settings import Settings
    from shared.pipeline.services import Services

    lua_dir = tmp_path / "lua"
    _write(lua_dir, "example.com", "Widget", 'return {status = "Healthy", message = "from the directory"}')
    key = "resource.customizations.health.example.com_*"  # a wildcard key, as Argo CD accepts
    if form == "manifest":
        argocd_cm = tmp_path / "argocd-cm.yaml"
        argocd_cm.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap",
                                             "metadata": {"name": "argocd-cm"}, "data": {key: _ARGOCD_CM_SCRIPT}}))
    else:
        argocd_cm = tmp_path / "argocd-cm"
        argocd_cm.mkdir()
        (argocd_cm / key).write_text(_ARGOCD_CM_SCRIPT)
        (argocd_cm / "url").write_text("https://argocd.example.com")  # other keys are not scripts
    services = Services(Settings(lua_health_dir=lua_dir, argocd_cm=argocd_cm))
    health = assess(WIDGET, services.lua)
    assert health is not None
    assert (health.status, health.message) == (HealthStatusCode.DEGRADED, "from argocd-cm")


def test_an_argocd_cm_that_is_not_a_configmap_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "argocd-cm.yaml"
    path.write_text("kind: Secret\ndata: {}\n")
    with pytest.raises(HealthRuleError, match="expected one ConfigMap"):
        LuaHealthRules.from_argocd_cm_path(path)
    with pytest.raises(HealthRuleError, match="neither a ConfigMap file nor a mounted directory"):
        LuaHealthRules.from_argocd_cm_path(tmp_path / "absent")
