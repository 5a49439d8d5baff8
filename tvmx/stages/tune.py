"""Stage 3, tune: give every kernel a schedule. Without tuning records, CPU kernels get TVM's
default CPU schedules (dlight) and accelerator kernels the accelerator's default tiling (passed to
their calls); which schedule each kernel got is recorded in schedules.json."""

from __future__ import annotations

import json
from typing import Any

from tvmx.build.builddir import atomic_write
from tvmx.stages.artifacts import GraphModule, ScheduledModule
from tvmx.stages.context import StageContext


def llvm_target(ctx: StageContext) -> object:
    """dlight rules read vector width and the like from an LLVM target description of the CPU."""
    import tvm

    cpu = ctx.target.cpu
    letters = cpu.march.split("_")[0][4:].replace("g", "imafd")
    mattr = [f"+{c}" for c in "mafdcv" if c in letters]
    return tvm.target.Target({"kind": "llvm", "mtriple": f"riscv{cpu.xlen}-unknown-elf",
                              "mcpu": f"generic-rv{cpu.xlen}", "mabi": cpu.mabi, "mattr": mattr})


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


def schedule_offloaded(ctx: StageContext, name: str, func: Any) -> tuple[Any, str, dict[str, Any]]:
    """An accelerator kernel (tensorized when the relax stage created it) with its default
    schedule from the accelerator: the tiling its call passes."""
    op, intrin = str(func.attrs["tvmx.offloaded"]), str(func.attrs["tvmx.intrinsic"])
    sizes = {str(k): int(v) for k, v in func.attrs["tvmx.sizes"].items()}
    accelerator = ctx.accelerator
    assert accelerator is not None, "offloaded kernels only exist for accelerator targets"
    schedule = accelerator.schedule_kernel(op, sizes, name, ctx.executor)
    summary = f"tensorized with {intrin}: the accelerator's {op}, {schedule.summary}"
    return with_call_args(func, schedule.args), summary, {"op": op, "sizes": sizes, **schedule.detail}


def apply_default_schedules(ctx: StageContext, mod: object,
                            target: object) -> tuple[object, dict[str, str], dict[str, Any]]:
    """dlight's ApplyDefaultSchedule, one kernel at a time, so we know which rule matched; the
    accelerator's default schedule for offloaded kernels."""
    import tvm
    from tvm.s_tir import dlight as dl

    from tvmx.schedules.cpu import InnerSpatialReduction, SingleReduction

    rules = [InnerSpatialReduction(ctx.target.cpu.vector), dl.cpu.GEMV(), SingleReduction()]
    choices: dict[str, str] = {}
    accelerated: dict[str, Any] = {}
    updated = {}
    for gv, func in mod.functions.items():  # type: ignore[attr-defined]
        if not isinstance(func, tvm.tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        if "tvmx.offloaded" in func.attrs:
            func, choices[gv.name_hint], accelerated[gv.name_hint] = schedule_offloaded(ctx, gv.name_hint, func)
            updated[gv] = func.with_attr("tirx.is_scheduled", True)
            continue
        chosen = "none (loop nest as legalized)"
        for rule in rules:
            sch = rule.apply(func, target, False)
            if sch is None:
                continue
            sch = sch[-1] if isinstance(sch, list) else sch
            updated[gv] = sch.mod["main"].with_attr("tirx.is_scheduled", True)
            chosen = f"{type(rule).__module__.replace('tvm.s_tir.', '')}.{type(rule).__name__}"
            break
        choices[gv.name_hint] = chosen
    for gv, func in updated.items():
        mod[gv] = func  # type: ignore[index]
    return mod, choices, accelerated


def run(ctx: StageContext, graph: GraphModule) -> ScheduledModule:
    out_dir = ctx.stage_dir(3, "tune")
    target = llvm_target(ctx)
    with target:  # type: ignore[attr-defined]
        mod, choices, accelerated = apply_default_schedules(ctx, graph.mod, target)
    record = out_dir / "schedules.json"
    atomic_write(record, json.dumps({"source": "default (no tuning records)", "kernels": choices,
                                     "accelerator_kernels": accelerated}, indent=2) + "\n")
    text = out_dir / "module.py"
    atomic_write(text, mod.script(show_meta=False))  # type: ignore[attr-defined]
    ctx.build.record_stage("tune", [], [record, text], {})
    return ScheduledModule(mod, graph.model, choices)
