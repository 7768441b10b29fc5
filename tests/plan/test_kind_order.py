"""The kind order Argo CD applies within a wave."""

from __future__ import annotations

from shared.sync.kind_order import KIND_ORDER, UNLISTED_KIND_INDEX, kind_order_index


def test_listed_kinds_follow_argo_cd_order() -> None:
    expected_pairs = [("Namespace", "NetworkPolicy"), ("ServiceAccount", "Secret"), ("Secret", "ConfigMap"),
                      ("PersistentVolumeClaim", "CustomResourceDefinition"),
                      ("CustomResourceDefinition", "ClusterRole"),
                      ("RoleBinding", "Service"), ("Service", "Deployment"), ("Deployment", "StatefulSet"),
                      ("Job", "CronJob"), ("IngressClass", "Ingress"), ("Ingress", "APIService")]
    for before, after in expected_pairs:
        assert kind_order_index(before) < kind_order_index(after), (before, after)
    assert kind_order_index("Namespace") == 0
    assert len(set(KIND_ORDER)) == len(KIND_ORDER) == 35


def test_unlisted_kinds_go_last_and_case_matters() -> None:
    assert kind_order_index("Widget") == UNLISTED_KIND_INDEX
    assert kind_order_index("Rollout") == kind_order_index("Certificate") == UNLISTED_KIND_INDEX
    assert all(kind_order_index(kind) < UNLISTED_KIND_INDEX for kind in KIND_ORDER)
    assert kind_order_index("namespace") == UNLISTED_KIND_INDEX
