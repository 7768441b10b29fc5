"""A step's applies share one thread pool per process; a step that fails leaves none of them running on."""

from __future__ import annotations

import threading
import time

import pytest

from shared.pipeline import sync_steps


def test_a_failed_group_waits_for_its_other_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    finished: list[str] = []
    started = threading.Event()

    def apply(ctx, record, item, desired):  # noqa: ANN001, ANN202 - the real signature's stand-in
        if item == "fails":
            started.wait(5)
            raise RuntimeError("the time limit, say")
        started.set()
        time.sleep(0.3)
        finished.append(item)
        return None

    monkeypatch.setattr(sync_steps, "_apply_object", apply)
    with pytest.raises(RuntimeError):
        sync_steps._apply_group(None, None, ["fails", "slow"], None)  # type: ignore[arg-type]
    assert finished == ["slow"], "an apply of the step was still running after the step ended"


def test_the_pool_is_kept_for_the_process() -> None:
    from shared.core.thread_pools import thread_pool

    assert thread_pool("apply", sync_steps.APPLY_PARALLELISM) is thread_pool("apply", sync_steps.APPLY_PARALLELISM)
    assert thread_pool("apply", 1) is not thread_pool("probe", 1)
