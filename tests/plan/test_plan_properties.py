"""Properties of the planner over generated inputs: deterministic, complete, ordered, and serialisable."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.resources import ResourceKey
from shared.sync.kind_order import kind_order_index
from shared.sync.plan import ACTION_PRUNE, SyncPlan, plan_sync

_PHASE_ORDER = {"PreSync": 0, "Sync": 1, "PostSync": 2, "SyncFail": 3}
_KINDS = [("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("apps/v1", "Deployment"),
          ("batch/v1", "Job"), ("example.com/v1", "Widget"), ("example.com/v1", "Gadget")]
_HOOKS = [None, None, None, "PreSync", "PostSync", "Sync", "SyncFail", "PreSync,PostSync", "Skip"]


@st.composite
def _objects(draw: st.DrawFn, prefix: str, hooks: bool) -> list[dict[str, Any]]:
    count = draw(st.integers(min_value=0, max_value=12))
    result = []
    for index in range(count):
        api, kind = draw(st.sampled_from(_KINDS))
        annotations: dict[str, str] = {}
        wave = draw(st.one_of(st.none(), st.integers(min_value=-3, max_value=3)))
        if wave is not None:
            annotations["argocd.argoproj.io/sync-wave"] = str(wave)
        hook = draw(st.sampled_from(_HOOKS)) if hooks else None
        if hook:
            annotations["argocd.argoproj.io/hook"] = hook
        if draw(st.booleans()):
            option = draw(st.sampled_from(["PruneLast=true", "Prune=false"]))
            annotations["argocd.argoproj.io/sync-options"] = option
        name = f"{prefix}{draw(st.sampled_from('abcdef'))}{index}"
        result.append({"apiVersion": api, "kind": kind, "metadata": {
            "name": name, "namespace": draw(st.sampled_from(["ns1", "ns2"])), "annotations": annotations}})
    return result


_inputs = st.tuples(_objects("d-", True), _objects("l-", False), st.booleans(),
                    st.randoms(use_true_random=False))


def _plan(desired: list[dict[str, Any]], live: list[dict[str, Any]], prune: bool) -> SyncPlan:
    return plan_sync(desired, live_tracked=live, prune=prune, default_namespace="ns1")


@settings(max_examples=120, deadline=None)
@given(_inputs)
def test_same_input_in_any_order_gives_the_same_plan(data: tuple) -> None:
    desired, live, prune, rnd = data
    first = _plan(desired, live, prune)
    shuffled_desired, shuffled_live = list(desired), list(live)
    rnd.shuffle(shuffled_desired)
    rnd.shuffle(shuffled_live)
    assert _plan(shuffled_desired, shuffled_live, prune).to_dict() == first.to_dict()


@settings(max_examples=120, deadline=None)
@given(_inputs)
def test_every_object_is_planned_once_and_steps_are_ordered(data: tuple) -> None:
    desired, live, prune, _ = data
    plan = _plan(desired, live, prune)
    planned = [(o.phase, o.key) for step in (*plan.steps, *plan.sync_fail_steps) for o in step.objects]
    assert len(planned) == len(set(planned))

    expected: set[tuple[str, ResourceKey]] = set()
    for obj in desired:
        key = ResourceKey.from_object(obj)
        hook = obj["metadata"]["annotations"].get("argocd.argoproj.io/hook")
        if hook == "Skip":
            continue
        for phase in (hook or "Sync").split(","):
            expected.add((phase, key))
    desired_keys = {ResourceKey.from_object(o) for o in desired}
    prunable = {ResourceKey.from_object(o): o for o in live if ResourceKey.from_object(o) not in desired_keys}
    pruned = {o.key for o in plan.objects() if o.action == ACTION_PRUNE}
    skipped = {o.key for o in plan.prune_skipped}
    assert pruned | skipped == set(prunable) and not pruned & skipped
    if not prune:
        assert not pruned
    assert set(planned) == expected | {("Sync", key) for key in pruned}

    order = [(_PHASE_ORDER[s.phase], s.wave) for s in plan.steps]
    assert order == sorted(order) and len(order) == len(set(order))
    for step in (*plan.steps, *plan.sync_fail_steps):
        actions = [o.action == ACTION_PRUNE for o in step.objects]
        assert actions == sorted(actions, reverse=True), "prunes come first in a step"
        for group in ([o for o in step.objects if o.action == ACTION_PRUNE],
                      [o for o in step.objects if o.action != ACTION_PRUNE]):
            ranks = [(kind_order_index(o.key.kind), o.key.name) for o in group]
            assert ranks == sorted(ranks)


@settings(max_examples=60, deadline=None)
@given(_inputs)
def test_plan_round_trips_through_its_dict(data: tuple) -> None:
    desired, live, prune, _ = data
    plan = _plan(desired, live, prune)
    assert SyncPlan.from_dict(plan.to_dict()).to_dict() == plan.to_dict()
    assert SyncPlan.from_dict(plan.to_dict()).steps == plan.steps
