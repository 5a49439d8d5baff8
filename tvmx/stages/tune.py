"""Stage 3, tune: give every kernel a schedule. A kernel with a successful tuning record (`tvmx
tune`, MetaSchedule's database of this target) gets the fastest one; the others get the defaults:
CPU kernels tvmx's and TVM's default CPU schedules (dlight), accelerator kernels the accelerator's
default tiling (passed to their calls). schedules.json says which, with the measured cycles."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tvmx.accelerators import KernelSchedule
from tvmx.build.builddir import atomic_write
from tvmx.stages import kernels_c
from tvmx.stages.artifacts import GraphModule, ScheduledModule
from tvmx.stages.context import StageContext
from tvmx.target.model import Target

if TYPE_CHECKING:
    from tvmx.tune.records import Records


def llvm_target(ctx: StageContext) -> object:
    return llvm_target_of(ctx.target)


def llvm_target_of(target: Target) -> Any:
    """dlight rules and MetaSchedule read vector width and the like from an LLVM target description
    of the CPU (code is generated as C all the same). One core: bare metal has no thread pool."""
    import tvm

    cpu = target.cpu
    letters = cpu.march.split("_")[0][4:].replace("g", "imafd")
    mattr = [f"+{c}" for c in "mafdcv" if c in letters]
    return tvm.target.Target({"kind": "llvm", "mtriple": f"riscv{cpu.xlen}-unknown-elf",
                              "mcpu": f"generic-rv{cpu.xlen}", "mabi": cpu.mabi, "mattr": mattr,
                              "num-cores": 1})


def with_call_args(func: Any, args: tuple[int, ...]) -> Any:
    """`func` with `args` (int64) appended to its accelerator call (the call_extern of a tvmx_ wrapper)."""
    import tvm
    import tvm_ffi

    def extend(call: Any) -> Any:
        name = call.args[0].value if call.args and isinstance(call.args[0], tvm.ir.StringImm) else ""
        if not name.startswith("tvmx_"):
            return call
        extra = [tvm.tirx.IntImm("int64", v) for v in args]
        return tvm.ir.Call(call.op, [*call.args, *extra], ret_ty=call.ty)

    return tvm_ffi.structural_map(func, (tvm.ir.Call, extend))


def offloaded_sizes(func: Any) -> tuple[str, dict[str, int]]:
    return str(func.attrs["tvmx.offloaded"]), {str(k): int(v) for k, v in func.attrs["tvmx.sizes"].items()}


def schedule_offloaded(ctx: StageContext, name: str, func: Any) -> tuple[KernelSchedule, str, dict[str, Any]]:
    """The default schedule of an accelerator kernel (tensorized when the relax stage created it)
    from the accelerator: the tiling its call passes; with its summary and detail for schedules.json."""
    op, sizes = offloaded_sizes(func)
    accelerator = ctx.accelerator
    assert accelerator is not None, "offloaded kernels only exist for accelerator targets"
    schedule = accelerator.schedule_kernel(op, sizes, name, ctx.executor)
    summary = f"tensorized with {func.attrs['tvmx.intrinsic']}: the accelerator's {op}, {schedule.summary}"
    return schedule, summary, {"op": op, "sizes": sizes, **schedule.detail}


# The elementwise rule's kernels keep every rounding their TIR has (kernels_c.CONTRACT)
ELEMENTWISE_RULE = "tvmx.schedules.cpu.InlineElementwise"


def default_cpu_schedule(func: Any, target: object, vector: bool) -> tuple[Any | None, str]:
    """The first default CPU rule that applies (tvmx's, then dlight's): its schedule (with its
    trace) and its name; None where none applies and the loop nest stays as legalized."""
    from tvm import s_tir
    from tvm.s_tir import dlight as dl

    from tvmx.schedules.cpu import InlineElementwise, InnerSpatialReduction, SingleReduction

    failed = []
    for rule in (InnerSpatialReduction(vector), dl.cpu.GEMV(), SingleReduction(), InlineElementwise()):
        name = f"{type(rule).__module__.replace('tvm.s_tir.', '')}.{type(rule).__name__}"
        try:
            sch = rule.apply(func, target, False)
        except (s_tir.ScheduleError, AssertionError):  # a rule that matched but cannot schedule it (dlight
            # asserts where it does not expect a kernel's shape): try the next
            failed.append(name)
            continue
        if sch is not None:
            sch = sch[-1] if isinstance(sch, list) else sch
            return sch, name + (f" (after {', '.join(failed)} failed on it)" if failed else "")
    return None, "none (loop nest as legalized)" + (f"; {', '.join(failed)} failed on it" if failed else "")


@dataclass
class Schedules:
    """What the tune stage chose, per kernel, for schedules.json."""

    choices: dict[str, str] = field(default_factory=dict)  # kernel -> one line
    accelerated: dict[str, Any] = field(default_factory=dict)  # kernel -> the accelerator's detail
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)  # kernel -> tuned or default, cycles

    def note(self, name: str, tuned: bool, cycles: int | None, default_cycles: int | None) -> None:
        self.measured[name] = {"schedule": "tuned" if tuned else "default", "cycles": cycles,
                               "default_cycles": default_cycles}


def apply_schedules(ctx: StageContext, mod: Any, target: object, records: Records | None = None) -> Schedules:
    """Per kernel, in place: the fastest tuning record where it beats the default, else the default
    schedule (one kernel at a time, so we know which rule matched)."""
    import tvm
    import tvm_ffi

    from tvmx.tune.tasks import workload_of

    out = Schedules()
    updated = {}
    for gv, func in mod.functions.items():
        if not isinstance(func, tvm.tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        name = gv.name_hint
        workload = workload_of(func) if records is not None else None  # the records' key: only to look it up
        best = records.best(workload) if records is not None else None
        if "tvmx.offloaded" in func.attrs:
            schedule, out.choices[name], out.accelerated[name] = schedule_offloaded(ctx, name, func)
            args, default_cycles = schedule.args, None
            if records is not None:
                default_cycles = records.cycles_of_args(workload, schedule)
            tuned = tuned_args(best, workload) if best is not None else None
            if tuned is not None and best is not None and tuned != schedule.args:
                args = tuned
                out.choices[name] = (f"tuned: call arguments {list(args)} (MetaSchedule record, {best[1]:,} cycles; "
                                     f"the default {list(schedule.args)}: {_cycles(default_cycles)})")
                out.accelerated[name] |= {"tuned_args": list(args)}
            out.note(name, args != schedule.args, best[1] if args != schedule.args and best else default_cycles,
                     default_cycles)
            updated[gv] = with_call_args(func, args).with_attr("tirx.is_scheduled", True)
            continue
        sch, out.choices[name] = default_cpu_schedule(func, target, ctx.target.cpu.vector)
        default = (sch.mod["main"] if sch is not None else func).with_attr("global_symbol", "main")
        default_cycles = records.cycles_of_func(workload, default) if records is not None else None
        chosen, tuned_func = default, None
        if best is not None:
            from tvmx.tune.records import apply_trace

            tuned_func = apply_trace(best[0], workload).mod["main"]
            if not tvm_ffi.structural_equal(tuned_func, default):
                chosen = tuned_func
                out.choices[name] = (f"tuned: MetaSchedule record, {best[1]:,} cycles "
                                     f"(the default {out.choices[name]}: {_cycles(default_cycles)})")
        is_tuned = chosen is not default
        out.note(name, is_tuned, best[1] if is_tuned and best else default_cycles, default_cycles)
        if is_tuned or sch is not None:
            updated[gv] = chosen.with_attr("global_symbol", name).with_attr("tirx.is_scheduled", True)
            if is_tuned or not out.choices[name].startswith(ELEMENTWISE_RULE):
                updated[gv] = updated[gv].with_attr(kernels_c.CONTRACT, True)
    for gv, func in updated.items():
        mod[gv] = func
    return out


def _cycles(n: int | None) -> str:
    return "not measured" if n is None else f"{n:,} cycles"


def tuned_args(best: tuple[Any, int], workload: Any) -> tuple[int, ...] | None:
    """The call arguments the best record of an accelerator kernel chose."""
    from tvmx.tune.records import apply_trace
    from tvmx.tune.spaces import accelerator_args

    return accelerator_args(apply_trace(best[0], workload))


def run(ctx: StageContext, graph: GraphModule) -> ScheduledModule:
    out_dir = ctx.stage_dir(3, "tune")
    target = llvm_target(ctx)
    records = ctx.records
    mod = graph.mod
    with target:  # type: ignore[attr-defined]
        chosen = apply_schedules(ctx, mod, target, records)
    tuned = sum(1 for m in chosen.measured.values() if m["schedule"] == "tuned")
    source = (f"tuning records {records.folder} ({tuned} of {len(chosen.choices)} kernels tuned)" if records
              else "default (no tuning records)")
    record = out_dir / "schedules.json"
    atomic_write(record, json.dumps({"source": source, "kernels": chosen.choices, "measured": chosen.measured,
                                     "accelerator_kernels": chosen.accelerated}, indent=2) + "\n")
    text = out_dir / "module.py"
    atomic_write(text, mod.script(show_meta=False))  # type: ignore[attr-defined]
    ctx.build.record_stage("tune", [], [record, text], {})
    return ScheduledModule(mod, graph.model, chosen.choices)
