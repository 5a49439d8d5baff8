"""Stage 3, tune: give every kernel a schedule. Without tuning records, CPU kernels get TVM's
default CPU schedules (dlight); which rule each kernel got is recorded in schedules.json."""

from __future__ import annotations

import json

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


def apply_default_schedules(mod: object, target: object, vector: bool) -> tuple[object, dict[str, str]]:
    """dlight's ApplyDefaultSchedule, one kernel at a time, so we know which rule matched."""
    import tvm
    from tvm.s_tir import dlight as dl

    from tvmx.schedules.cpu import InnerSpatialReduction, SingleReduction

    rules = [InnerSpatialReduction(vector), dl.cpu.GEMV(), SingleReduction()]
    choices: dict[str, str] = {}
    updated = {}
    for gv, func in mod.functions.items():  # type: ignore[attr-defined]
        if not isinstance(func, tvm.tirx.PrimFunc) or func.attrs.get("tirx.is_scheduled", False):
            continue
        if "tvmx.offloaded" in func.attrs:  # tensorized when the relax stage created it
            op, intrin = str(func.attrs["tvmx.offloaded"]), str(func.attrs["tvmx.intrinsic"])
            updated[gv] = func.with_attr("tirx.is_scheduled", True)
            choices[gv.name_hint] = f"tensorized with {intrin}: the accelerator's {op} (header's auto tiling)"
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
    return mod, choices


def run(ctx: StageContext, graph: GraphModule) -> ScheduledModule:
    out_dir = ctx.stage_dir(3, "tune")
    target = llvm_target(ctx)
    with target:  # type: ignore[attr-defined]
        mod, choices = apply_default_schedules(graph.mod, target, ctx.target.cpu.vector)
    record = out_dir / "schedules.json"
    atomic_write(record, json.dumps({"source": "default (no tuning records)", "kernels": choices}, indent=2) + "\n")
    text = out_dir / "module.py"
    atomic_write(text, mod.script(show_meta=False))  # type: ignore[attr-defined]
    ctx.build.record_stage("tune", [], [record, text], {})
    return ScheduledModule(mod, graph.model, choices)
