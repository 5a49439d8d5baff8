"""Accelerators a target can declare. Each kind plugs into the simulator and the build through this interface."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from tvmx.errors import InputError
from tvmx.target.model import Target
from tvmx.toolchain.command import Executor


@dataclass(frozen=True)
class SimulatorExtras:
    """What Spike needs to model an accelerator: extension libraries, the RoCC name, environment."""

    extlibs: tuple[Path, ...] = ()
    extension: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    stats_file: Path | None = None  # where the model writes its counters as JSON at exit


@dataclass(frozen=True)
class KernelSchedule:
    """How one offloaded kernel runs: integer arguments appended to its accelerator call (a tiling;
    none where the accelerator picks at run time) and what to record about it in schedules.json."""

    args: tuple[int, ...]
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProfileCounters:
    """The accelerator's counters that C code can read at any moment, for the per-kernel profile
    (`tvmx run --profile`): the generated main reads each of them around every kernel call."""

    header: str  # the header that defines `read`, included by model.c
    read: str  # a C expression of `{id}` that reads one counter, e.g. "acc_counter({id})"
    ids: tuple[tuple[str, str], ...]  # (counter name, its C id expression), in a fixed order
    peak_macs_per_cycle: int  # the array's: utilisation = MACs / (peak x cycles)


class Accelerator(Protocol):
    def simulator_extras(self, workdir: Path, executor: Executor) -> SimulatorExtras:
        """Build (or reuse from the cache) the simulator model; say how to load it."""
        ...

    def collect_stats(self, extras: SimulatorExtras, instret: int | None) -> dict[str, Any]:
        """Counters for stats.json; must include `cycles`, the estimated total for the program."""
        ...

    def include_dirs(self, build_dir: Path) -> tuple[Path, ...]:
        """Header folders for C code that drives the accelerator (writes generated headers into build_dir)."""
        ...

    def unsupported_layer(self, op: str, sizes: dict[str, int], executor: Executor) -> str | None:
        """Why an offload candidate with these call sizes (a fused max pool's among them) cannot run
        on the accelerator, or None."""
        ...

    def glue_c(self, header: str, functions: dict[str, str]) -> str:
        """accel_glue.c, which includes `header`: for each op's header function in `functions`, a C
        wrapper named offload.kernels.wrapper_name(function) that takes the kernel call's arguments
        (int64 sizes, float scales, the activation, void* buffers, then the schedule's args) and
        calls the header's function."""
        ...

    def schedule_kernel(self, op: str, sizes: dict[str, int], kernel: str, executor: Executor) -> KernelSchedule:
        """The default schedule of an offloaded kernel of `op` with these call sizes."""
        ...

    def tuning_space(self, op: str, sizes: dict[str, int], kernel: str, executor: Executor) -> list[KernelSchedule]:
        """Every schedule `tvmx tune` may try for the kernel, each one legal on this configuration
        (fits the memories; the header accepts it), distinct, and the default (schedule_kernel's) first.
        A kernel with nothing to choose returns just the default."""
        ...

    def profile_counters(self) -> ProfileCounters:
        """The counters the generated main reads around every kernel call."""
        ...

    def kernel_figures(self, counts: dict[str, int]) -> dict[str, Any]:
        """One kernel's profile figures from its counter deltas (`instret` and the `profile_counters`
        names): `cycles` (CPU cycles: instret plus stalls on the accelerator), `macs`,
        `units` (busy cycles per unit), `dma_bytes`, `commands`, and, where the kernel used the
        accelerator, `utilisation` (of the array) and `bound_cycles` (its roofline: the cycles no
        schedule can beat, compute at the array's peak and DMA at the bus width)."""
        ...


# kind -> (module, class): imported on first use, so that a target loads only its own accelerator's
# code. The class has `from_target(target)` and `check_section(section, path)`; the kind's part of
# the target schema is `<kind>.schema.json` beside it (kind_schema).
KINDS: dict[str, tuple[str, str]] = {"gemmini": ("tvmx.accelerators.gemmini", "Gemmini")}


def kind_schema(kind: str) -> dict[str, Any]:
    """The kind's sections of the target schema (`<kind>.schema.json` in this package): `accelerator`,
    the simulator's `timing`, and the `$defs` they refer to (target.loader.schema merges them)."""
    text = resources.files(__package__).joinpath(f"{kind}.schema.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


def accelerator_for(target: Target) -> Accelerator | None:
    if target.accelerator is None:
        return None
    accelerator: Accelerator = _kind_class(target.accelerator["kind"], target.path).from_target(target)
    return accelerator


def check_accelerator_section(kind: str, section: dict[str, Any], path: Path) -> None:
    """The accelerator kind's own checks of a target's accelerator section (its hardware limits)."""
    _kind_class(kind, path).check_section(section, path)


def _kind_class(kind: str, path: Path) -> Any:
    if kind not in KINDS:
        raise InputError(f"{path}: $.accelerator.kind: unknown accelerator '{kind}'", hint=f"known: {', '.join(KINDS)}")
    module, name = KINDS[kind]
    return getattr(importlib.import_module(module), name)
