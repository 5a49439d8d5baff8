"""A candidate that traps, times out or computes a wrong result is a failed measurement, not a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tvmx.options import make_options
from tvmx.stages.tune import with_call_args
from tvmx.target import load_target
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


def test_a_legal_tiling_is_measured_and_an_illegal_one_fails(matmul: Task) -> None:
    ok = measurement_from_bytes(measure(_job(matmul, (1, 1, 1))))
    assert ok.error is None and ok.cycles and ok.cycles > 0
    assert set(ok.outputs) == {matmul.args[-1].name}
    trapped = measurement_from_bytes(measure(_job(matmul, (4096, 4096, 4096))))  # far past the scratchpad
    assert trapped.cycles is None and trapped.error


def test_a_candidate_that_runs_too_long_fails(matmul: Task) -> None:
    slow = measurement_from_bytes(measure(_job(matmul, (1, 1, 1), timeout=0.01)))
    assert slow.cycles is None and "did not finish" in (slow.error or "")


def test_local_processes_return_every_job(matmul: Task) -> None:
    pool = LocalMeasurer(2)
    try:
        done = dict(pool.run([("a", _job(matmul, (1, 1, 1))), ("b", _job(matmul, (1, 1, 2)))]))
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
