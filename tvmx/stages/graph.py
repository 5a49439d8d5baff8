"""Stage 2, relax (alias relay): graph-level passes, then operator fusion into TIR kernels."""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tvmx.build.builddir import atomic_write
from tvmx.errors import TvmxError, UnsupportedError
from tvmx.stages.artifacts import GraphModule, ImportedModel
from tvmx.stages.context import StageContext
from tvmx.stages.provenance import KernelWork, Provenance, mark_added


def graph_passes(provenance: Provenance | None = None) -> list[object]:
    """TVM's graph passes; with `provenance`, its passes around FuseOps record what each kernel
    computes (stages/provenance.py)."""
    from tvm import relax

    from tvmx.schedules.pool_order import legalize_map

    around = (provenance.name_pass(), provenance.record_pass()) if provenance else ()
    return [
        relax.transform.DecomposeOpsForInference(),  # BatchNorm etc. into elementwise arithmetic
        _fold_constants_pass(),
        relax.transform.LegalizeOps(legalize_map()),  # every Relax op into a TIR PrimFunc (pools: ORT's order)
        relax.transform.AnnotateTIROpPattern(),
        relax.transform.FoldConstant(),
        *around[:1],
        relax.transform.FuseOps(),
        *around[1:],
        relax.transform.FuseTIR(),
    ]


def _reshaped(x: np.ndarray, shape: tuple[int, ...], _call: Any) -> np.ndarray:
    return x.reshape(shape)


def _transposed(x: np.ndarray, _shape: tuple[int, ...], call: Any) -> np.ndarray:
    axes = call.attrs.axes
    return np.transpose(x, None if axes is None else [int(a) for a in axes])


# Relax ops whose numpy result is bit-identical to the TIR TVM would JIT-compile for them (IEEE
# add/sub/mul/div/sqrt, moves of values): folded here in microseconds instead of one LLVM build each.
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "relax.add": np.add, "relax.subtract": np.subtract, "relax.multiply": np.multiply,
    "relax.divide": np.divide,
}
_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relax.sqrt": np.sqrt, "relax.negative": np.negative,
    "relax.rsqrt": lambda x: np.divide(np.ones_like(x), np.sqrt(x)),
}
_MOVES: dict[str, Callable[[np.ndarray, tuple[int, ...], Any], np.ndarray]] = {
    "relax.expand_dims": _reshaped, "relax.squeeze": _reshaped, "relax.reshape": _reshaped,
    "relax.permute_dims": _transposed,
}
MAX_FOLDED_GROWTH = 4  # a broadcast may not turn a small constant into a large one


def _fold(call: Any, args: list[np.ndarray]) -> np.ndarray | None:
    """The value of `call` on constant `args`, or None where it is not an op folded here."""
    name = str(call.op.name)
    shape = tuple(int(d) for d in call.ty.shape)
    floats = all(a.dtype.kind == "f" for a in args)
    with np.errstate(all="ignore"):  # inf and NaN come out as TVM's kernels would compute them
        if name in _BINARY and floats:
            return _BINARY[name](args[0], args[1])
        if name in _UNARY and floats:
            return _UNARY[name](args[0])
    if name in _MOVES:
        return _MOVES[name](args[0], shape, call)
    return None


def fold_constants(mod: Any) -> Any:
    """Fold float arithmetic and reshapes of constants (BatchNorm's statistics after
    DecomposeOpsForInference) with numpy, before FoldConstant would build a kernel for each."""
    import tvm
    from tvm import relax

    from tvmx.offload.rewrite import rewrite_main

    def constant(expr: Any, mutator: Any) -> Any:
        if isinstance(expr, relax.Var):
            expr = mutator.lookup_binding(expr)
        return expr if isinstance(expr, tvm.ir.Constant) else None

    @relax.expr_functor.mutator
    class Fold(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if not isinstance(call.op, tvm.ir.Op) or not isinstance(call.ty, relax.TensorType):
                return call
            consts = [constant(a, self) for a in call.args]
            tensors = [c for c in consts if c is not None]
            if not tensors or len(tensors) < len([a for a in call.args if not isinstance(a, relax.ShapeExpr)]):
                return call
            arrays = [c.value.numpy() for c in tensors]
            value = _fold(call, arrays)
            if value is None or str(value.dtype) != str(call.ty.dtype) or tuple(value.shape) != tuple(
                    int(d) for d in call.ty.shape):
                return call
            if value.nbytes > MAX_FOLDED_GROWTH * max(sum(a.nbytes for a in arrays), 1 << 16):
                return call
            return relax.const(np.ascontiguousarray(value), str(value.dtype))

    return rewrite_main(Fold(mod), mod)


def _fold_constants_pass() -> Any:
    import tvm

    return tvm.ir.transform.module_pass(lambda mod, _ctx: fold_constants(mod), opt_level=0,
                                        name="tvmx.FoldConstantsNumpy")


# Relax op names (lower case, no dots or underscores) that are not their ONNX op's name.
RELAX_TO_ONNX = {"power": "pow", "floormod": "mod", "avgpool2d": "averagepool", "maxpool2d": "maxpool",
                 "conv2d": "conv", "conv2dtranspose": "convtranspose", "permutedims": "transpose"}


def onnx_nodes_of(relax_op: str, model_path: Path) -> str:
    """' in node 'a' (Op)' for the ONNX nodes whose op type is the Relax op's name ('relax.cumsum',
    a legalization '_nn_prelu'), else ''; for error messages, so only read on the error path."""
    from tvmx.stages.import_onnx import load_onnx

    def key(name: str) -> str:
        name = re.sub(r"^(relax\.)?(_?nn[._])?", "", name.lower()).replace("_", "").replace(".", "")
        return RELAX_TO_ONNX.get(name, name)

    try:
        nodes = [(i, n) for i, n in enumerate(load_onnx(model_path).graph.node) if key(n.op_type) == key(relax_op)]
    except TvmxError:
        return ""
    if not nodes:
        return ""
    names = ", ".join(f"'{n.name or '#' + str(i)}'" for i, n in nodes[:3])
    more = " ..." if len(nodes) > 3 else ""
    return f" in node{'s' if len(nodes) > 1 else ''} {names}{more} ({nodes[0][1].op_type})"


# Element types TVM imports but the plain C kernels have no type for.
C_UNSUPPORTED_DTYPES = ("float16", "bfloat16", "float8", "float4")


def check_dtypes(mod: Any, model_path: Path) -> None:
    """A tensor of an element type C has no type for (half, bfloat16): one error naming the node."""
    from tvm import relax

    seen: set[str] = set()

    def visit(expr: Any) -> None:
        ty = getattr(expr, "ty", None) if isinstance(expr, relax.Expr) else None
        if isinstance(ty, relax.TensorType) and str(ty.dtype).startswith(C_UNSUPPORTED_DTYPES):
            seen.add(str(ty.dtype))

    relax.analysis.post_order_visit(mod["main"], visit)
    if seen:
        dtype = sorted(seen)[0]
        raise UnsupportedError(f"the model computes in {dtype}{_onnx_node_of_dtype(model_path, dtype)}, which the "
                               "bare-metal C kernels cannot represent",
                               hint="cast to float32 (or quantize to int8) in the model")


def _onnx_node_of_dtype(model_path: Path, dtype: str) -> str:
    import onnx

    from tvmx.stages.import_onnx import load_onnx

    family = next(f for f in C_UNSUPPORTED_DTYPES if dtype.startswith(f))
    model = onnx.shape_inference.infer_shapes(load_onnx(model_path))
    types = {v.name: onnx.TensorProto.DataType.Name(v.type.tensor_type.elem_type).lower()
             for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]}
    for i, node in enumerate(model.graph.node):
        if any(types.get(name, "").startswith(family) for name in [*node.input, *node.output]):
            return f" in node '{node.name or '#' + str(i)}' ({node.op_type})"
    return ""


def run_graph_passes(mod: Any, model_path: Path, provenance: Provenance | None = None) -> Any:
    """TVM's passes; an error raised inside TVM (a legalization's assertion on a shape it does not
    handle) is one UnsupportedError naming the op and its ONNX node. tvmx's own bugs stay bugs."""
    import tvm

    try:
        return tvm.ir.transform.Sequential(graph_passes(provenance))(mod)
    except Exception as exc:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".py")]
        if not frames or "/tvmx/" in frames[-1].filename or "/tvm/" not in frames[-1].filename:
            raise
        op = _legalized_op(frames)
        where = f" ({op}{onnx_nodes_of(op, model_path)})" if op else ""
        detail = str(exc).strip().splitlines()
        reason = detail[-1] if detail else f"{type(exc).__name__} at `{frames[-1].line}`"
        raise UnsupportedError(f"TVM cannot lower this model{where}: {reason[:200]}",
                               hint="check the op's input shapes against the ONNX spec (onnxruntime too may "
                                    "refuse it), or replace the op") from exc


def _legalized_op(frames: list[traceback.FrameSummary]) -> str | None:
    """The Relax op whose legalization raised, from the name of TVM's legalize function for it
    (`_nn_prelu`); None where only a shared helper (`binary_call_te`) shows."""
    names = [f.name for f in reversed(frames) if "legalize_ops" in f.filename and f.name.startswith("_")]
    return names[0].lstrip("_") if names else None


def check_legalized(mod: object, model_path: Path | None = None) -> None:
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
        nodes = "".join(onnx_nodes_of(op, model_path) for op in sorted(leftovers)) if model_path else ""
        raise UnsupportedError(
            f"no bare-metal lowering for: {', '.join(sorted(leftovers))}{nodes}",
            hint="these ops have no TIR legalization in TVM 0.27; replace them in the model",
        )


ALLOWED_RELAX_OPS = {"relax.call_tir", "relax.reshape", "relax.builtin.alloc_tensor"}


def run(ctx: StageContext, model: ImportedModel) -> GraphModule:
    import tvm

    out_dir = ctx.stage_dir(2, "relax")
    mod = model.mod
    check_dtypes(mod, ctx.model_path)
    from tvmx.offload.channel_tables import channel_tables

    mod = channel_tables(mod)  # BatchNorm (and other per-channel arithmetic) between int8 tensors: tables
    outputs = []
    offloaded: dict[str, KernelWork] = {}
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
        offloaded = report.kernel_work()
        ctx.log(report.text())
        if report.offloaded == 0:
            ctx.log("  hint: nothing matched; `tvmx quantize MODEL -o MODEL.int8.onnx` makes a model the "
                    "accelerator can run")
    else:
        from tvmx.offload.qdq_simplify import CPU_SELECTING_OPS, simplify_qdq, sum_to_add

        mod = simplify_qdq(sum_to_add(mod), CPU_SELECTING_OPS)  # int8 pools and concats on the CPU too
    from tvmx.offload.int8_tables import int8_tables

    # int8 activations: table lookups instead of float functions
    mod = int8_tables(mod, relu=bool(functions and ctx.target.accelerator is not None))
    from tvmx.offload.softmax_table import softmax_tables

    mod = softmax_tables(mod)  # and softmaxes with their exponentials from a table
    from tvmx.offload.lookups import lower_lookups

    mod = lower_lookups(mod)  # every lookup one small loop (a legalized take is opaque and clamps in 64 bits)
    from tvmx.offload.permutations import channel_permutations

    mod = channel_permutations(mod)  # a channel shuffle between layout transforms: one gather
    provenance = Provenance(model.node_labels)
    mod = run_graph_passes(mark_added(mod), ctx.model_path, provenance)
    provenance.work.update(offloaded)  # (an accelerator kernel's body is an extern call: its report says)
    check_legalized(mod, ctx.model_path)
    text, kernels_json = out_dir / "module.py", out_dir / "kernels.json"
    atomic_write(text, mod.script(show_meta=False))
    atomic_write(kernels_json, json.dumps(provenance.to_json(), indent=1) + "\n")
    outputs.append(kernels_json)
    kernels = [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    ctx.build.record_stage("relax", [], [text, *outputs], {"kernels": len(kernels)})
    return GraphModule(mod, model)
