"""Stage 2, relax (alias relay): graph-level passes, then operator fusion into TIR kernels."""

from __future__ import annotations

import json

from tvmx.build.builddir import atomic_write
from tvmx.errors import UnsupportedError
from tvmx.stages.artifacts import GraphModule, ImportedModel
from tvmx.stages.context import StageContext


def graph_passes() -> list[object]:
    from tvm import relax

    return [
        relax.transform.DecomposeOpsForInference(),  # BatchNorm etc. into elementwise arithmetic
        relax.transform.LegalizeOps(),  # every Relax op into a TIR PrimFunc
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        relax.transform.FuseOps(),
        relax.transform.FuseTIR(),
    ]


def check_legalized(mod: object) -> None:
    """Ops without a TIR legalization would need the Relax VM at run time, which bare metal lacks."""
    from tvm import relax

    leftovers: set[str] = set()

    def visit(expr: object) -> None:
        if isinstance(expr, relax.Call) and isinstance(expr.op, relax.ExternFunc):
            leftovers.add(str(expr.op.global_symbol))
        elif isinstance(expr, relax.Call) and hasattr(expr.op, "name"):
            name = str(expr.op.name)
            if name.startswith("relax.") and name not in ALLOWED_RELAX_OPS:
                leftovers.add(name)

    relax.analysis.post_order_visit(mod["main"], visit)  # type: ignore[index]
    if leftovers:
        raise UnsupportedError(
            f"no bare-metal lowering for: {', '.join(sorted(leftovers))}",
            hint="these ops have no TIR legalization in TVM 0.27; replace them in the model",
        )


ALLOWED_RELAX_OPS = {"relax.call_tir", "relax.reshape", "relax.builtin.alloc_tensor"}


def run(ctx: StageContext, model: ImportedModel) -> GraphModule:
    import tvm

    out_dir = ctx.stage_dir(2, "relax")
    mod = model.mod
    outputs = []
    functions = ctx.offload_functions
    if functions and ctx.target.accelerator is not None:
        # Before FoldConstant, which would fold dequantize(int8 weight) into float.
        from tvmx.offload.partition import partition
        from tvmx.stages.import_onnx import load_onnx

        accel, accelerator = ctx.target.accelerator, ctx.accelerator
        assert accelerator is not None

        def unsupported(op: str, sizes: dict[str, int]) -> str | None:
            return accelerator.unsupported_layer(op, sizes, ctx.executor)

        mod, report = partition(mod, load_onnx(ctx.model_path), str(accel["kind"]), functions, int(accel["dim"]),
                                unsupported)
        report_json, report_txt = out_dir / "offload.json", out_dir / "offload.txt"
        atomic_write(report_json, json.dumps(report.to_json(), indent=2) + "\n")
        atomic_write(report_txt, report.text() + "\n")
        outputs += [report_json, report_txt]
        ctx.log(report.text())
        if report.offloaded == 0:
            ctx.log("  hint: nothing matched; `tvmx quantize MODEL -o MODEL.int8.onnx` makes a model the "
                    "accelerator can run")
    else:
        from tvmx.offload.qdq_simplify import simplify_qdq, sum_to_add

        mod = simplify_qdq(sum_to_add(mod))  # int8 pools and concats on the CPU too
    from tvmx.offload.int8_tables import int8_tables

    mod = int8_tables(mod)  # int8 activations: table lookups instead of float functions
    mod = tvm.ir.transform.Sequential(graph_passes())(mod)
    check_legalized(mod)
    text = out_dir / "module.py"
    atomic_write(text, mod.script(show_meta=False))
    kernels = [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    ctx.build.record_stage("relax", [], [text, *outputs], {"kernels": len(kernels)})
    return GraphModule(mod, model)
