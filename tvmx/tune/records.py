"""Tuning records: MetaSchedule's own JSON database, one per target fingerprint.

MetaSchedule's QueryTuningRecord ignores the target (apache/tvm issue 15549), so records of two
targets must never share a database: `RECORDS/<fingerprint>/` holds the database of every target
whose CPU, accelerator parameters, header, simulator model and timing are the same, and only of
those. Layout (MetaSchedule's JSONDatabase): `database_workload.json`, one workload per line, and
`database_tuning_record.json`, one measured candidate per line: its trace, its cost as run_secs
(modelled cycles at 1 GHz: cycles * 1e-9), the target and the argument types. A failed candidate
(does not build, traps, times out, computes a wrong result) is recorded with MetaSchedule's
failure mark, run_secs [1e9], so it is never measured again and never chosen.

Each measurement is appended (one line, flushed) as soon as it finishes. A tune killed while
writing leaves at most a truncated last line, which is not a finished measurement and is dropped
on the next open; any other malformed line is an error that names it, and nothing is rewritten.
Several tvmx processes may share one folder: reads and appends hold a file lock (`.records.lock`).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvmx.build.lock import file_lock
from tvmx.errors import InputError
from tvmx.target.model import Target
from tvmx.tune.tasks import structural_key

WORKLOADS, TUNING_RECORDS = "database_workload.json", "database_tuning_record.json"
LOCK = ".records.lock"  # held while reading the files and around each append (tvmx/build/lock.py)
FAILED_RUN_SECS = 1e9  # MetaSchedule's mark of a failed measurement (meta_schedule.testing.validate_database)
SECONDS_PER_CYCLE = 1e-9


def default_records_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tvmx" / "records"


def target_fingerprint(target: Target) -> str:
    """What a measured cost depends on: the CPU, the accelerator's parameters and the content of the
    files it names (header, simulator model), the simulator's ISA and timing model. Not the target's
    name or description: two files describing the same machine share records."""
    from tvmx.target.checks import resolve_file

    acc = dict(target.accelerator or {})
    files = {}
    for key, rel in (("header", acc.pop("header", None)),
                     ("model", (target.simulator.extension or {}).get("source"))):
        path = resolve_file(target.path, rel) if rel else None
        if path is not None and path.is_file():
            files[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    cpu = target.cpu
    ext = dict(target.simulator.extension or {})
    ext.pop("source", None)
    doc = {"cpu": [cpu.march, cpu.mabi, cpu.xlen, cpu.vector], "toolchain": target.toolchain,
           "accelerator": acc, "files": files,
           "simulator": [target.simulator.isa, ext, target.simulator.timing]}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def records_folder(root: Path | None, target: Target) -> Path:
    """Where the records of this target live under `root` (default: the per-user cache)."""
    root = root or default_records_dir()
    if root.exists() and not root.is_dir():
        raise InputError(f"--records {root}: not a folder", hint="pass the folder `tvmx tune --records` wrote")
    return root / target_fingerprint(target)


def open_existing(root: Path | None, target: Target) -> Records | None:
    """The records of this target under `root` (default: the per-user cache), or None if it has none."""
    if not (records_folder(root, target) / TUNING_RECORDS).is_file():
        return None
    return Records.open(root or default_records_dir(), target)


def records_digest(folder: Path) -> str | None:
    """Of the files compile reads (part of the build key); None where there are none."""
    if not (folder / TUNING_RECORDS).is_file():
        return None
    h = hashlib.sha256()
    for name in (WORKLOADS, TUNING_RECORDS):
        path = folder / name
        h.update(path.read_bytes() if path.is_file() else b"")
    return h.hexdigest()


def cycles_of(run_secs: list[float] | None) -> int | None:
    if not run_secs or run_secs[0] >= FAILED_RUN_SECS:
        return None
    return round(float(run_secs[0]) / SECONDS_PER_CYCLE)


def _check_lines(path: Path, columns: int) -> None:
    """Refuse a file with a malformed line (naming it); drop a truncated last line left by a kill."""
    if not path.is_file():
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1] and not data.endswith(b"\n"):
        try:
            json.loads(lines[-1])
            complete = True
        except ValueError:
            complete = False
        if not complete:  # an interrupted append: cut it off so the next append starts a fresh line
            with path.open("r+b") as f:
                f.truncate(len(data) - len(lines[-1]))
            lines = lines[:-1]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ok = isinstance(row, list) and len(row) == columns
        except ValueError:
            ok = False
        if not ok:
            raise InputError(f"{path}: line {number} is not a MetaSchedule record",
                             hint=f"the other lines are intact; delete or fix line {number}, or pass another --records")


@dataclass
class Records:
    """The database of one target fingerprint, plus what the tuner needs to avoid re-measuring."""

    folder: Path
    database: Any  # ms.database.JSONDatabase
    measured: dict[tuple[str, str], int | None] = field(default_factory=dict)  # (workload, candidate) -> cycles
    successes: dict[str, list[tuple[Any, int]]] = field(default_factory=dict)  # workload -> (trace, cycles)
    seen: tuple[int, int] = (0, 0)  # sizes of the two files as this process last read or wrote them

    @classmethod
    def open(cls, root: Path, target: Target) -> Records:
        folder = records_folder(root, target)
        if not folder.is_dir():
            folder.mkdir(parents=True)
        records = cls(folder, None)
        # no other tvmx is half-way through an append while we read (a read-only folder has no writers)
        with file_lock(folder / LOCK, readonly_ok=True):
            records._load()
        return records

    def _load(self) -> None:
        """(Re)read the database from its files; the caller holds the lock."""
        from tvm.s_tir import meta_schedule as ms

        _check_lines(self.folder / WORKLOADS, 2)
        _check_lines(self.folder / TUNING_RECORDS, 2)
        try:
            self.database = ms.database.JSONDatabase(work_dir=str(self.folder), module_equality="structural")
        except Exception as exc:  # TVM's own parser: a line that is JSON but not a record
            raise InputError(f"{self.folder}: the tuning records cannot be read "
                             f"({str(exc).splitlines()[-1][:120]})",
                             hint="move the folder away or pass another --records; nothing was changed") from exc
        self.measured.clear()
        self.successes.clear()
        for record in self.database.get_all_tuning_records():
            self._note(record.workload.mod, record.trace, cycles_of(record.run_secs))
        self.seen = self._sizes()

    def _sizes(self) -> tuple[int, int]:
        return tuple(p.stat().st_size if p.is_file() else 0  # type: ignore[return-value]
                     for p in (self.folder / WORKLOADS, self.folder / TUNING_RECORDS))

    def _note(self, workload: Any, trace: Any, cycles: int | None) -> None:
        wkey = structural_key(workload)
        self.measured[(wkey, candidate_key(trace, workload))] = cycles
        if cycles is not None:
            self.successes.setdefault(wkey, []).append((trace, cycles))

    def commit(self, workload: Any, trace: Any, cycles: int | None, target: Any) -> None:
        """Append one measurement. Under the folder's lock: another tvmx (a second `tvmx tune` of the
        same target) may have appended since this one read the files, and MetaSchedule numbers a
        record's workload by its line in database_workload.json, so the database is read again
        first whenever the files are not as this process left them."""
        from tvm.s_tir import meta_schedule as ms

        with file_lock(self.folder / LOCK):
            if self._sizes() != self.seen:
                self._load()
            entry = self.database.commit_workload(workload)
            run_secs = [FAILED_RUN_SECS if cycles is None else cycles * SECONDS_PER_CYCLE]
            args = ms.arg_info.ArgInfo.from_prim_func(workload["main"])
            self.database.commit_tuning_record(ms.database.TuningRecord(trace, entry, run_secs, target, args))
            self.seen = self._sizes()
        self._note(workload, trace, cycles)

    def cycles_of_func(self, workload: Any, func: Any) -> int | None:
        """The measured cycles of one schedule (a PrimFunc named main) of the workload, if measured."""
        import tvm

        return self.measured.get((structural_key(workload), structural_key(tvm.IRModule({"main": func}))))

    def cycles_of_args(self, workload: Any, schedule: Any) -> int | None:
        """The measured cycles of an accelerator kernel with these call arguments, if measured."""
        from tvmx.tune.spaces import accelerator_candidate

        return self.cycles_of_func(workload, accelerator_candidate(workload, [schedule], 0).mod["main"])

    def best(self, workload: Any) -> tuple[Any, int] | None:
        """The fastest successful record of a workload: (trace, cycles). (Not the database's get_top_k:
        it skips records with an empty trace, and a kernel's default can be its unchanged loop nest.)"""
        found = self.successes.get(structural_key(workload))
        return min(found, key=lambda tc: tc[1]) if found else None


def apply_trace(trace: Any, workload: Any) -> Any:
    """The schedule a trace makes of the workload."""
    from tvm import s_tir

    sch = s_tir.Schedule(workload)
    trace.apply_to_schedule(sch, remove_postproc=False)
    return sch


def candidate_key(trace: Any, workload: Any) -> str:
    """A candidate is the module its trace makes: two traces that make the same one are one candidate."""
    return structural_key(apply_trace(trace, workload).mod)


