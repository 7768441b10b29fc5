"""The plan has one serialisation: `PlanStep.to_dict()` read into the operation's `Step`, stored with Argo
CD-style camelCase names and the apiVersion each object is applied with (the shape the dashboard, the
project gate and a resumed chain read)."""

from __future__ import annotations

from shared.core.resources import ResourceKey
from shared.operation.model import Step, StepAction
from shared.sync.options import SyncOptions
from shared.sync.plan import plan_sync


def test_a_planned_step_is_recorded_with_its_api_versions_and_options() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "migrate", "namespace": "dest",
                        "annotations": {"argocd.argoproj.io/hook": "PreSync",
                                        "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"}}}
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "cfg", "namespace": "dest",
                       "annotations": {"argocd.argoproj.io/sync-options": "Replace=true"}}}
    options = SyncOptions.parse(["PruneLast=true", "CreateNamespace=true"])
    plan = plan_sync([job, cm], options=options, default_namespace="dest", create_namespace="dest")
    versions = {ResourceKey.from_object(o): o["apiVersion"] for o in (job, cm)}
    steps = [Step.from_plan(s.to_dict(), versions) for s in plan.steps]
    first = steps[0].dump()
    assert first["phase"] == "PreSync"
    namespace, hook = first["objects"]
    assert namespace == {"group": "", "kind": "Namespace", "namespace": "", "name": "dest", "apiVersion": "v1",
                         "action": "apply", "hookTypes": [], "deletePolicies": [], "options": {},
                         "managedNamespace": True}
    assert hook["apiVersion"] == "batch/v1" and hook["action"] == "hook"
    assert hook["hookTypes"] == ["PreSync"] and hook["deletePolicies"] == ["HookSucceeded"]
    applied = steps[1].objects[0]
    assert applied.action == StepAction.APPLY and applied.api_version == "v1"
    assert applied.options == {"PruneLast": "true", "Replace": "true"}  # the object's effective options
    assert "managedNamespace" not in steps[1].dump()["objects"][0]
    assert Step.model_validate(steps[1].dump()) == steps[1]  # what a resumed chain reads back
