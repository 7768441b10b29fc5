"""Argo CD's rules for running a sync, one YAML case per file under tests/testdata/operation/chains/.

Each case is a whole operation driven in-process (tests/operation/driver.py): the real `wave_apply` and
`health_check` steps over a real Redis, a fake cluster whose objects behave as their
`test.wavecd.io/outcome` annotation says, and a fake clock that the calls' countdowns move. A case gives
the app's sync policy, the manifests (and objects live before the sync, for prune), optionally the
settings and the call before which the user terminates (`terminate_before`: task, step and which
occurrence of that call), and what must hold at the end: the operation's
phase and message, its retry count, which objects exist, which were deleted with which propagation policy,
the per-resource results, and the order of cluster writes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.core.resources import ResourceKey
from shared.operation.machine import StepCall
from tests.operation.driver import Driver, placed

CASES = sorted((Path(__file__).parents[1] / "testdata" / "operation" / "chains").glob("*.yaml"))


def _terminate_at(case: dict[str, Any]) -> Any:  # noqa: ANN401
    spot = case.get("terminate_before")
    if spot is None:
        return None

    seen = [0]

    def world(driver: Driver, call: StepCall) -> None:
        if call.task == spot["task"] and call.step == spot["step"]:
            seen[0] += 1
            if seen[0] == spot.get("occurrence", 1):  # the n-th call of that task and step
                driver.svc.store.request_terminate(driver.name)
    return world


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_chain_case(path: Path, driver: Driver) -> None:
    case = yaml.safe_load(path.read_text())
    for name, value in (case.get("settings") or {}).items():
        setattr(driver.svc.settings, name, value)
    driver.put_app(case["manifests"], sync_policy=case.get("syncPolicy"))
    for obj in placed(case.get("live") or [], driver.name, "dest"):
        driver.cluster._store(obj)  # noqa: SLF001
    to_prune = [o for k, o in driver.cluster.objects.items()
                if k not in {ResourceKey.from_object(d) for d in driver.desired.objects}]  # type: ignore[union-attr]
    driver.world = _terminate_at(case)
    op = driver.run(driver.start(case.get("request"), automated=bool(case.get("automated")), to_prune=to_prune))
    expect = case["expect"]
    assert op.phase == expect["phase"], op.message
    assert expect.get("message", "") in op.message
    assert op.retry_count == expect.get("retryCount", 0)
    for key in expect.get("present", []):
        assert key in {str(k) for k in driver.cluster.objects}, f"{key} should exist: {driver.cluster.log}"
    for key in expect.get("absent", []):
        assert key not in {str(k) for k in driver.cluster.objects}, f"{key} should be gone: {driver.cluster.log}"
    for key, policy in expect.get("deletes", []):
        assert (key, policy) in [(str(k), p) for k, p in driver.cluster.deletes], driver.cluster.deletes
    if "writes" in expect:
        assert driver.cluster.log == expect["writes"]
    results = [r.dump() for r in op.sync_result.resources]
    for wanted in expect.get("results", []):
        assert any(all(r.get(k) == v for k, v in wanted.items()) for r in results), (wanted, results)
    if "countdowns" in expect:
        assert [c.countdown for c in driver.calls if c.countdown] == expect["countdowns"]
    status = driver.svc.store.status(driver.name)
    assert status["operationState"]["phase"] == op.phase  # the final state is published
    assert driver.svc.locks.holder(driver.name) is None  # the last step released the lock
    assert status["operationState"].get("currentStep") is None
