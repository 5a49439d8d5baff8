from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tvmx.accelerators import KernelSchedule
from tvmx.errors import InputError
from tvmx.options import make_options
from tvmx.stages.tune import llvm_target_of
from tvmx.target import load_target
from tvmx.tune import spaces
from tvmx.tune.records import TUNING_RECORDS, WORKLOADS, Records, apply_trace, target_fingerprint
from tvmx.tune.tasks import ACCELERATOR, Task, model_tasks, structural_key


@pytest.fixture(scope="module")
def task(int8_models: dict[str, Path]) -> Task:
    tasks = model_tasks(int8_models["mlp"], load_target("gemmini"), make_options())
    return next(t for t in tasks if t.kind == ACCELERATOR and t.op == "matmul")


def _commit(records: Records, task: Task, args: tuple[int, ...], cycles: int | None) -> None:
    candidates = [KernelSchedule(args, "x")]
    sch = spaces.accelerator_candidate(task.workload, candidates, 0)
    records.commit(task.workload, sch.trace, cycles, llvm_target_of(load_target("gemmini")))


def test_records_survive_reopening_and_keep_the_best(tmp_path: Path, task: Task) -> None:
    target = load_target("gemmini")
    records = Records.open(tmp_path, target)
    _commit(records, task, (1, 1, 2), 900)
    _commit(records, task, (1, 1, 1), 700)
    _commit(records, task, (2, 1, 1), None)  # a failed candidate: recorded, never best
    again = Records.open(tmp_path, target)
    assert len(again.measured) == 3
    best = again.best(task.workload)
    assert best is not None and best[1] == 700
    assert spaces.accelerator_args(apply_trace(best[0], task.workload)) == (1, 1, 1)
    failed = spaces.accelerator_candidate(task.workload, [KernelSchedule((2, 1, 1), "")], 0)
    assert again.measured[(next(iter(again.successes)), structural_key(failed.mod))] is None
    lines = (again.folder / TUNING_RECORDS).read_text().splitlines()
    assert [json.loads(ln)[1][1][0] for ln in lines] == pytest.approx([9e-07, 7e-07, 1e9])  # MetaSchedule's run_secs


def test_a_truncated_last_line_is_dropped_and_nothing_else(tmp_path: Path, task: Task) -> None:
    target = load_target("gemmini")
    records = Records.open(tmp_path, target)
    _commit(records, task, (1, 1, 2), 900)
    path = records.folder / TUNING_RECORDS
    path.write_text(path.read_text() + '[0, [[["SampleCateg')  # a kill in the middle of an append
    again = Records.open(tmp_path, target)
    assert len(again.measured) == 1
    _commit(again, task, (1, 1, 1), 700)  # appends after the cut, on a line of its own
    assert len(Records.open(tmp_path, target).measured) == 2


@pytest.mark.parametrize("name", [TUNING_RECORDS, WORKLOADS])
def test_a_corrupt_line_is_a_clear_error_and_loses_nothing(tmp_path: Path, task: Task, name: str) -> None:
    target = load_target("gemmini")
    records = Records.open(tmp_path, target)
    _commit(records, task, (1, 1, 2), 900)
    _commit(records, task, (1, 1, 1), 700)
    path = records.folder / name
    lines = path.read_text().splitlines(keepends=True)
    corrupt = [lines[0], "not json at all\n", *lines[1:]]
    path.write_text("".join(corrupt))
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"line 2 is not a MetaSchedule record"):
        Records.open(tmp_path, target)
    assert path.read_bytes() == before  # nothing rewritten, no valid record lost


def test_fingerprint_follows_what_the_cycles_depend_on() -> None:
    gemmini = load_target("gemmini")
    assert target_fingerprint(gemmini) == target_fingerprint(load_target("gemmini"))
    assert target_fingerprint(gemmini) != target_fingerprint(load_target("gemmini-8"))
    assert target_fingerprint(gemmini) != target_fingerprint(load_target("rv64gc"))
    timing = {**(gemmini.simulator.timing or {}), "dma_latency": 7}
    slower = dataclasses.replace(gemmini, simulator=dataclasses.replace(gemmini.simulator, timing=timing))
    assert target_fingerprint(slower) != target_fingerprint(gemmini)
    renamed = dataclasses.replace(gemmini, name="mine", description="the same machine")
    assert target_fingerprint(renamed) == target_fingerprint(gemmini)
