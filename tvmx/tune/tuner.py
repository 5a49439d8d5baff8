"""The tuning loop: measure every kernel's default, then spend the budget where the cycles are.

Per task, candidates come from MetaSchedule: CPU kernels from an EvolutionarySearch over the
rule-based space (seeded from the database's best records), accelerator kernels from the
accelerator's own space in order. A gradient-style task scheduler (MetaSchedule's idea: the next
trials go to the task whose improvement would save the most cycles of the whole model) picks the
task of each round: weight = calls x best cycles so far, halved for every round without progress.

Every finished measurement is committed to the records before the next result is looked at; a
candidate whose module was measured before (this run or an earlier, killed one) is not measured
again. Each candidate's outputs are compared with the default schedule's on the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tvmx.build.builddir import atomic_write
from tvmx.errors import InputError
from tvmx.options import Options
from tvmx.target.model import Target
from tvmx.tune import spaces
from tvmx.tune.bench import Bench, Measurement, npz_bytes, same_outputs
from tvmx.tune.measure import Job, Measurer, measurement_from_bytes, measurer
from tvmx.tune.records import FAILED_RUN_SECS, SECONDS_PER_CYCLE, Records, default_records_dir
from tvmx.tune.tasks import ACCELERATOR, Task, model_tasks, select_kernels, structural_key

MIN_WEIGHT_FACTOR = 1 / 64  # a task that stopped improving still gets a trial now and then
DRY_ROUNDS = 3  # rounds without a new candidate after which a task's space counts as exhausted


@dataclass(frozen=True)
class TuneOptions:
    trials: int = 64  # total measurements, every kernel's default included (max_trials_global)
    records: Path | None = None  # None: the per-user cache
    jobs: int = 1
    cluster: str | None = None
    timeout: float | None = 120.0  # seconds per candidate run
    only: str | None = None  # glob over kernel names
    seed: int = 1


@dataclass
class TaskState:
    task: Task
    default_cycles: int | None = None
    best_cycles: int | None = None
    trials: int = 0  # measurements spent on this task in this run
    reused: int = 0  # candidates found measured in the records by an earlier tune
    repeats: int = 0  # candidates the search proposed again in this tune (not trials)
    rounds: int = 0
    dry_rounds: int = 0  # rounds in a row that proposed nothing new
    failures: int = 0
    stale_rounds: int = 0
    exhausted: bool = False
    reference: dict[str, np.ndarray] | None = None
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)  # "default" / "best": the simulator's counters
    error: str | None = None  # why the task could not be tuned (its default failed)
    candidates: list[Any] = field(default_factory=list)  # the accelerator's space
    next_index: int = 0
    context: Any = None  # MetaSchedule TuneContext (CPU tasks)

    @property
    def weight(self) -> float:
        if self.exhausted or self.best_cycles is None:
            return 0.0
        return self.task.calls * self.best_cycles * max(MIN_WEIGHT_FACTOR, 0.5 ** self.stale_rounds)

    @property
    def speedup(self) -> float | None:
        if self.default_cycles and self.best_cycles:
            return self.default_cycles / self.best_cycles
        return None

    def to_json(self) -> dict[str, Any]:
        return {"kernel": self.task.name, "kernels": list(self.task.kernels), "kind": self.task.kind,
                "calls": self.task.calls, "trials": self.trials, "reused": self.reused, "repeats": self.repeats,
                "failures": self.failures,
                "default_cycles": self.default_cycles, "best_cycles": self.best_cycles,
                "speedup": round(self.speedup, 4) if self.speedup else None, "error": self.error}


@dataclass
class TuneReport:
    records: Path
    tasks: list[TaskState]
    measured: int  # candidates run on the simulator in this tune
    seconds: float

    @property
    def model_default(self) -> int:
        return sum(s.task.calls * (s.default_cycles or 0) for s in self.tasks)

    @property
    def model_best(self) -> int:
        return sum(s.task.calls * (s.best_cycles or s.default_cycles or 0) for s in self.tasks)

    def to_json(self) -> dict[str, Any]:
        speedup = self.model_default / self.model_best if self.model_best else None
        return {"records": str(self.records), "measured": self.measured, "seconds": round(self.seconds, 2),
                "kernel_cycles": {"default": self.model_default, "tuned": self.model_best,
                                  "speedup": round(speedup, 4) if speedup else None},
                "tasks": [s.to_json() for s in self.tasks]}


class Tuner:
    def __init__(self, target: Target, tasks: list[Task], records: Records, options: TuneOptions,
                 progress: Callable[[TaskState], None] = lambda _s: None) -> None:
        from tvmx.stages.tune import llvm_target_of

        self.target, self.records, self.options, self.progress = target, records, options, progress
        self.llvm = llvm_target_of(target)
        self.states = [TaskState(t) for t in tasks]
        self.measured = 0
        self.budget = max(options.trials, len(tasks))  # every default is measured: it is the reference
        self.measurer: Measurer | None = None  # while run() runs
        self.prior = set(records.measured)  # measured before this tune: reusing them is a trial

    # -------------------------------------------------------------- candidates
    def _default(self, state: TaskState) -> Any:
        """The default schedule of the task, as a schedule of its workload (with a trace)."""
        from tvm import s_tir

        from tvmx.stages.tune import default_cpu_schedule

        task = state.task
        if task.kind == ACCELERATOR:
            from tvmx.accelerators import accelerator_for
            from tvmx.toolchain.command import Executor

            accel = accelerator_for(self.target)
            assert accel is not None
            state.candidates = accel.tuning_space(task.op or "", task.sizes, task.name, Executor())
            state.next_index = 1
            return spaces.accelerator_candidate(task.workload, state.candidates, 0)
        with self.llvm:
            sch, _rule = default_cpu_schedule(task.workload["main"], self.llvm, self.target.cpu.vector)
        return sch if sch is not None else s_tir.Schedule(task.workload)

    def _next_candidates(self, state: TaskState, n: int) -> list[Any]:
        if state.task.kind == ACCELERATOR:
            out: list[Any] = []
            while len(out) < n and state.next_index < len(state.candidates):
                out.append(spaces.accelerator_candidate(state.task.workload, state.candidates, state.next_index))
                state.next_index += 1
            return out
        if state.context is None:
            state.context = self._cpu_context(state)
        found = state.context.generate_measure_candidates()
        return [c.sch for c in found or []]

    def _cpu_context(self, state: TaskState) -> Any:
        from tvm.s_tir import meta_schedule as ms

        spaces.quiet_tensor_intrin()
        context = ms.TuneContext(mod=state.task.workload, target=self.llvm,
                                 space_generator=spaces.cpu_space(self.target.cpu.vector),
                                 search_strategy=ms.search_strategy.EvolutionarySearch(
                                     population_size=64, init_min_unmeasured=16, genetic_num_iters=2),
                                 task_name=state.task.name, rand_state=self.options.seed, num_threads=1)
        context.pre_tuning(max_trials=self.budget, num_trials_per_iter=self._batch(),
                           design_spaces=context.generate_design_space(), database=self.records.database,
                           cost_model=ms.cost_model.RandomModel())
        return context

    def _batch(self) -> int:
        """Candidates per round: enough to keep every worker busy while the next are generated."""
        return max(2, 2 * self.measurer.workers) if self.measurer else 2

    # -------------------------------------------------------------- measuring
    def _measure(self, state: TaskState, schedules: list[Any], reference: bool = False) -> list[int | None]:
        """Cycles of each schedule (None: failed), measuring only what the records do not have."""
        import tvm

        from tvmx.stages.tune import with_call_args

        task, wkey = state.task, structural_key(state.task.workload)
        results: dict[int, int | None] = {}
        jobs = []
        known: set[int] = set()
        for i, sch in enumerate(schedules):
            key = (wkey, structural_key(sch.mod))
            if key in self.records.measured:
                known.add(i)
                if not (reference and state.reference is None):
                    results[i] = self.records.measured[key]
                    if key in self.prior:
                        state.reused += 1
                    else:
                        state.repeats += 1
                    continue
                # a default measured by an earlier tune whose reference outputs are gone: run it again
                # for them, without recording it twice
            func = sch.mod["main"]
            if task.kind == ACCELERATOR:  # the choice reaches the kernel as its call's arguments
                func = with_call_args(func, spaces.accelerator_args(sch) or ())
            job = Job(Bench.of(task), tvm.ir.save_json(func), str(self.target.path), self.options.timeout)
            jobs.append((i, job.to_bytes()))
        assert self.measurer is not None, "measuring happens inside run()"
        for i, data in self.measurer.run(jobs):
            m = measurement_from_bytes(data)
            cycles = self._check(state, m, reference)
            if cycles is not None and (reference or state.best_cycles is None or cycles < state.best_cycles):
                state.stats["default" if reference else "best"] = m.stats
            if i in known:
                state.reused += 1
            else:
                self.records.commit(task.workload, schedules[i].trace, cycles, self.llvm)
                self.measured += 1
                state.trials += 1
                state.failures += cycles is None
            results[i] = cycles
        return [results[i] for i in range(len(schedules))]

    def _check(self, state: TaskState, m: Measurement, reference: bool) -> int | None:
        if m.cycles is None:
            return None
        if reference:
            state.reference = m.outputs
            self._save_reference(state)
            return m.cycles
        if state.reference is None or same_outputs(m.outputs, state.reference) is not None:
            return None  # a fast wrong kernel is a failed candidate
        return m.cycles

    def _reference_path(self, state: TaskState) -> Path:
        return self.records.folder / "references" / f"{structural_key(state.task.workload)}.npz"

    def _save_reference(self, state: TaskState) -> None:
        path = self._reference_path(state)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, npz_bytes(state.reference or {}))

    def _load_reference(self, state: TaskState) -> None:
        path = self._reference_path(state)
        if path.is_file():
            with np.load(path) as arrays:
                state.reference = {k: arrays[k] for k in arrays.files}

    def _update(self, state: TaskState, schedules: list[Any], cycles: list[int | None]) -> None:
        successes = [c for c in cycles if c is not None]
        improved = bool(successes) and (state.best_cycles is None or min(successes) < state.best_cycles)
        if improved:
            state.best_cycles = min(successes)
        state.stale_rounds = 0 if improved else state.stale_rounds + 1
        if state.context is not None:
            from tvm.s_tir import meta_schedule as ms

            candidates = [ms.MeasureCandidate(s, ms.arg_info.ArgInfo.from_prim_func(s.mod["main"]))
                          for s in schedules]
            results = [ms.runner.RunnerResult(run_secs=[FAILED_RUN_SECS if c is None else c * SECONDS_PER_CYCLE],
                                              error_msg=None) for c in cycles]
            state.context.notify_runner_results(candidates, results)

    # -------------------------------------------------------------- the loop
    def run(self) -> None:
        self.measurer = measurer(self.options.jobs, self.options.cluster)
        try:
            self._run()
        finally:
            self.measurer.close()
            self.measurer = None

    def _run(self) -> None:
        for state in self.states:  # the defaults: the reference outputs and each kernel's share
            self._load_reference(state)
            default = self._default(state)
            cycles = self._measure(state, [default], reference=True)[0]
            if cycles is None:
                state.error, state.exhausted = "the default schedule failed on the simulator", True
            state.default_cycles = state.best_cycles = cycles
            if state.task.kind == ACCELERATOR and len(state.candidates) <= 1:
                state.exhausted = True
            self.progress(state)
        while self.spent < self.budget:
            live = [s for s in self.states if s.weight > 0]
            if not live:
                break
            # A first round for every task (MetaSchedule's warm-up: the next candidates of a cheap
            # kernel can still be much faster), then the gradient rule.
            fresh = [s for s in live if s.rounds == 0]
            state = max(fresh or live, key=lambda s: s.weight)
            n = min(self.measurer.workers if fresh and self.measurer else self._batch(), self.budget - self.spent)
            schedules = self._next_candidates(state, n)[:n]
            state.rounds += 1
            if not schedules:
                state.exhausted = True
                continue
            before = state.trials + state.reused
            self._update(state, schedules, self._measure(state, schedules))
            state.dry_rounds = 0 if state.trials + state.reused > before else state.dry_rounds + 1
            if state.dry_rounds >= DRY_ROUNDS:  # the search keeps proposing what it measured
                state.exhausted = True
            self.progress(state)

    @property
    def spent(self) -> int:
        """Trials so far: measured in this run, or found measured in the records."""
        return sum(s.trials + s.reused for s in self.states)


def tune_model(model: Path, target: Target, pipeline: Options, options: TuneOptions,
               progress: Callable[[TaskState], None] = lambda _s: None,
               on_tasks: Callable[[list[TaskState]], None] = lambda _s: None) -> TuneReport:
    import time

    if options.trials < 1:
        raise InputError("--trials must be at least 1", hint="e.g. --trials 64")
    start = time.perf_counter()
    tasks = select_kernels(model_tasks(model, target, pipeline), options.only)
    records = Records.open(options.records or default_records_dir(), target)
    tuner = Tuner(target, tasks, records, options, progress)
    on_tasks(tuner.states)
    tuner.run()
    return TuneReport(records.folder, tuner.states, tuner.measured, time.perf_counter() - start)
