"""A candidate that traps, times out or computes a wrong result is a failed measurement, not a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tvmx.accelerators import accelerator_for
from tvmx.options import make_options
from tvmx.stages.tune import with_call_args
from tvmx.target import load_target
from tvmx.toolchain.command import Executor
from tvmx.tune.bench import Bench, same_outputs
from tvmx.tune.measure import Job, LocalMeasurer, measure, measurement_from_bytes
from tvmx.tune.tasks import ACCELERATOR, Task, model_tasks

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]


@pytest.fixture(scope="module")
def matmul(int8_models: dict[str, Path]) -> Task:
    tasks = model_tasks(int8_models["mlp"], load_target("gemmini"), make_options())
    return next(t for t in tasks if t.kind == ACCELERATOR and t.op == "matmul")


def _job(task: Task, args: tuple[int, ...], timeout: float | None = 60) -> bytes:
    import tvm

    func = with_call_args(task.workload["main"], args)
    return Job(Bench.of(task), tvm.ir.save_json(func), str(load_target("gemmini").path), timeout).to_bytes()


def _space(task: Task) -> list[tuple[int, ...]]:
    """The call arguments of the accelerator's candidates for the task, the default first."""
    accel = accelerator_for(load_target("gemmini"))
    assert accel is not None
    return [c.args for c in accel.tuning_space(task.op or "", task.sizes, task.name, Executor())]


def test_a_legal_tiling_is_measured_and_an_illegal_one_fails(matmul: Task) -> None:
    default = _space(matmul)[0]
    ok = measurement_from_bytes(measure(_job(matmul, default)))
    assert ok.error is None and ok.cycles and ok.cycles > 0
    assert set(ok.outputs) == {matmul.args[-1].name}
    huge = tuple(4096 for _ in default)  # tiles far past the scratchpad: the header traps
    trapped = measurement_from_bytes(measure(_job(matmul, huge)))
    assert trapped.cycles is None and "trapped" in (trapped.error or "")


def test_a_candidate_that_runs_too_long_fails(matmul: Task) -> None:
    slow = measurement_from_bytes(measure(_job(matmul, _space(matmul)[0], timeout=0.01)))
    assert slow.cycles is None and "did not finish" in (slow.error or "")


def test_local_processes_return_every_job(matmul: Task) -> None:
    space = _space(matmul)
    pool = LocalMeasurer(2)
    try:
        done = dict(pool.run([("a", _job(matmul, space[0])), ("b", _job(matmul, space[-1]))]))
    finally:
        pool.close()
    assert set(done) == {"a", "b"}
    a, b = (measurement_from_bytes(done[k]) for k in "ab")
    assert a.cycles and b.cycles
    assert same_outputs(a.outputs, b.outputs) is None  # another tiling, the same numbers


def test_same_outputs_catches_a_wrong_kernel() -> None:
    ref = {"y": np.arange(8, dtype=np.int8)}
    assert same_outputs({"y": ref["y"].copy()}, ref) is None
    wrong = ref["y"].copy()
    wrong[3] += 1
    assert "differs" in (same_outputs({"y": wrong}, ref) or "")
    f = {"y": np.linspace(0, 1, 8, dtype=np.float32)}
    assert same_outputs({"y": f["y"] * (1 + 1e-7)}, f) is None  # another summation order
    assert same_outputs({"y": f["y"] + 1e-2}, f) is not None
    assert same_outputs({}, ref) is not None
