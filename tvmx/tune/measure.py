"""Measuring candidates in parallel, behind one interface: N local processes (`-j N`) or an existing
Dask distributed cluster (`--cluster tcp://HOST:PORT`).

A job is bytes and so is its result: the scheduled kernel as TVM JSON, the kernel's buffers and the
target's path in; cycles, error and outputs out. Each job builds the benchmark program (TVM's C
codegen, the cross compiler) and runs it on the simulator in a scratch folder of the worker, so
workers need tvmx installed and the target's files at the same path (the shipped targets are).
"""

from __future__ import annotations

import concurrent.futures as cf
import io
import multiprocessing
import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tvmx.errors import InputError
from tvmx.tune.bench import Bench, Measurement, npz_bytes


@dataclass(frozen=True)
class Job:
    bench: Bench
    func_json: str  # the scheduled kernel (tvm.ir.save_json)
    target: str  # path of the target YAML
    timeout: float | None

    def to_bytes(self) -> bytes:
        return pickle.dumps(self)


def measure(job_bytes: bytes) -> bytes:
    """Build and run one candidate (in a worker process). Never raises: failures are results."""
    job: Job = pickle.loads(job_bytes)
    try:
        result = _measure(job)
    except Exception as exc:  # any candidate that cannot be built or run is a failed candidate
        result = Measurement(None, f"{exc.__class__.__name__}: {str(exc).strip().splitlines()[0][:300]}"
                             if str(exc).strip() else exc.__class__.__name__)
    return pickle.dumps((result.cycles, result.error, npz_bytes(result.outputs), result.stats))


def _measure(job: Job) -> Measurement:
    import tvm

    from tvmx.target import load_target
    from tvmx.tune.bench import build_program, run_program

    target = load_target(job.target)
    func = tvm.ir.load_json(job.func_json)
    with tempfile.TemporaryDirectory(prefix="tvmx-tune-") as tmp:
        program = build_program(job.bench, func, target, Path(tmp) / "build")
        return run_program(program, target, Path(tmp) / "run", timeout=job.timeout)


def measurement_from_bytes(data: bytes) -> Measurement:
    cycles, error, outputs, stats = pickle.loads(data)
    with np.load(io.BytesIO(outputs)) as arrays:
        return Measurement(cycles, error, {k: arrays[k] for k in arrays.files}, stats)


class Measurer(Protocol):
    """Runs jobs somewhere; yields (tag, result bytes) as each one finishes."""

    workers: int

    def run(self, jobs: list[tuple[Any, bytes]]) -> Iterator[tuple[Any, bytes]]: ...

    def close(self) -> None: ...


class LocalMeasurer:
    """N worker processes on this machine (spawned: TVM's threads do not survive a fork)."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool = self._new_pool()

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def run(self, jobs: list[tuple[Any, bytes]]) -> Iterator[tuple[Any, bytes]]:
        futures = {self._pool.submit(measure, data): tag for tag, data in jobs}
        for future in cf.as_completed(futures):
            try:
                yield futures[future], future.result()
            except cf.process.BrokenProcessPool:  # a worker died (a crash inside TVM): that job failed
                self._pool = self._new_pool()
                yield futures[future], pickle.dumps((None, "the measuring process crashed", npz_bytes({}), {}))

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


class DaskMeasurer:
    """Workers of an existing Dask distributed cluster."""

    def __init__(self, address: str) -> None:
        from distributed import Client

        try:
            self._client = Client(address, timeout=10)
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask cluster at {address}: {exc}",
                             hint="start a scheduler (dask scheduler) and workers (dask worker ADDRESS) first") from exc
        self.workers = max(1, sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))

    def run(self, jobs: list[tuple[Any, bytes]]) -> Iterator[tuple[Any, bytes]]:
        from distributed import as_completed

        futures = {self._client.submit(measure, data, pure=False): tag for tag, data in jobs}
        for future in as_completed(list(futures)):
            try:
                yield futures[future], future.result()
            except Exception as exc:  # a lost worker: the job failed, the tune goes on
                yield futures[future], pickle.dumps((None, f"the Dask worker failed: {exc}", npz_bytes({}), {}))

    def close(self) -> None:
        self._client.close()


def measurer(jobs: int, cluster: str | None) -> Measurer:
    return DaskMeasurer(cluster) if cluster else LocalMeasurer(jobs)
