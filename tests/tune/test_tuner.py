"""`tvmx tune` end to end: candidates measured on Spike, records applied by compile, resuming
after a kill, the same records through a Dask cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tvmx.options import make_options
from tvmx.target import load_target
from tvmx.tune.records import TUNING_RECORDS, Records
from tvmx.tune.tuner import TuneOptions, tune_model
from tvmx.verify.flow import verify_model

pytestmark = [pytest.mark.toolchain, pytest.mark.spike, pytest.mark.slow]


def _records_lines(root: Path) -> list[str]:
    files = list(root.glob(f"*/{TUNING_RECORDS}"))
    return files[0].read_text().splitlines() if files else []


def _measured(root: Path, target_name: str) -> dict[tuple[str, str], int | None]:
    return Records.open(root, load_target(target_name)).measured


@pytest.mark.parametrize("target_name", ["gemmini", "rv64gc"])
def test_tuned_build_is_bit_exact_and_not_slower(tmp_path: Path, int8_models: dict[str, Path],
                                                 target_name: str) -> None:
    model, target = int8_models["cnn"] if target_name == "rv64gc" else int8_models["mlp"], load_target(target_name)
    only = "fused_conv2d_add*" if target_name == "rv64gc" else None  # the CNN's costliest CPU kernel
    report = tune_model(model, target, make_options(), TuneOptions(trials=8, records=tmp_path / "rec", jobs=2,
                                                                   only=only))
    spent = sum(s.trials + s.reused for s in report.tasks)  # trials: measured, or known already
    assert spent == 8 or (spent < 8 and all(s.exhausted for s in report.tasks))
    assert report.measured == sum(s.trials for s in report.tasks) == len(_records_lines(tmp_path / "rec"))
    assert all(s.default_cycles for s in report.tasks)  # every default measured: the reference
    assert all(s.best_cycles is not None and s.best_cycles <= (s.default_cycles or 0) for s in report.tasks)
    default = verify_model(model, target, make_options(records=tmp_path / "none"), tmp_path / "default")
    tuned = verify_model(model, target, make_options(records=tmp_path / "rec"), tmp_path / "tuned")
    assert default.comparison.ok and tuned.comparison.ok
    assert tuned.comparison.summary().count("max 0 LSB") == 1  # bit-exact against onnxruntime
    assert tuned.stats["cycles"] <= default.stats["cycles"]
    schedules = json.loads((tmp_path / "tuned" / "03-tune" / "schedules.json").read_text())
    measured = schedules["measured"]
    assert set(measured) == set(schedules["kernels"])
    for kernel in (k for s in report.tasks for k in s.task.kernels):
        assert measured[kernel]["default_cycles"] is not None, kernel
        assert measured[kernel]["cycles"] <= measured[kernel]["default_cycles"]
    if target_name == "rv64gc":  # MetaSchedule finds a faster conv than the default rule within 8 trials
        assert any(m["schedule"] == "tuned" for m in measured.values())
        assert tuned.stats["cycles"] < default.stats["cycles"]


def test_a_killed_tune_remeasures_nothing_that_finished(tmp_path: Path, int8_models: dict[str, Path]) -> None:
    records = tmp_path / "rec"
    argv = [sys.executable, "-m", "tvmx", "tune", str(int8_models["cnn"]), "-t", "rv64gc", "--trials", "10",
            "-j", "2", "--records", str(records), "--only", "fused_conv2d*"]
    # (the kill leaves its measuring processes' temporary folders: in tmp_path, not in /tmp)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    deadline = time.monotonic() + 300
    while len(_records_lines(records)) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the tuner and its measuring processes, mid-flight
    proc.wait()
    before = _measured(records, "rv64gc")
    assert 4 <= len(before) < 10
    report = tune_model(int8_models["cnn"], load_target("rv64gc"), make_options(),
                        TuneOptions(trials=10, records=records, jobs=2, only="fused_conv2d*"))
    after = _measured(records, "rv64gc")
    assert set(before) <= set(after)
    assert report.measured == len(after) - len(before)  # only new candidates were run
    assert sum(s.trials + s.reused for s in report.tasks) == 10  # the budget counts what the records had
    assert len(_records_lines(records)) == len(after)  # no candidate measured twice


def test_a_dask_cluster_gives_the_records_of_a_local_tune(tmp_path: Path, int8_models: dict[str, Path]) -> None:
    from distributed import LocalCluster

    target, model = load_target("gemmini"), int8_models["mlp"]
    local = tune_model(model, target, make_options(), TuneOptions(trials=7, records=tmp_path / "local", jobs=2))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        remote = tune_model(model, target, make_options(),
                            TuneOptions(trials=7, records=tmp_path / "dask", cluster=cluster.scheduler_address))
    assert remote.measured == local.measured
    assert _measured(tmp_path / "dask", "gemmini") == _measured(tmp_path / "local", "gemmini")
