"""Mark quantized layers for the accelerator (FuseOpsByPattern), replace each with a call to a TIR
kernel that drives the accelerator, and say which ONNX node went where, and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import onnx

from tvmx.offload import kernels
from tvmx.offload.activation_matmul import is_activation_matmul, offload_activation_matmuls
from tvmx.offload.layers import QLayer, Rejected, analyze, analyze_pool
from tvmx.offload.layout import sink_transposes
from tvmx.offload.patterns import fusion_patterns
from tvmx.offload.qdq_simplify import clip_to_relu, collapse_reshapes, simplify_qdq, sum_to_add
from tvmx.offload.resadd import AddResult, offload_residual_adds
from tvmx.offload.rewrite import bindings, op_name, rewrite_main
from tvmx.stages.provenance import KernelWork, labels_of, node_label, restore_names

Unsupported = Callable[[str, dict[str, int]], "str | None"]
CANDIDATE_OPS = {"relax.matmul": ("MatMul", "Gemm"), "relax.nn.conv2d": ("Conv",), "relax.nn.max_pool2d": ("MaxPool",)}


@dataclass
class ReportEntry:
    node: str  # ONNX node name (or op_type#index when unnamed)
    op_type: str
    where: str  # "accelerator" | "cpu"
    reason: str
    kernel: str = ""
    macs: int = 0


@dataclass
class OffloadReport:
    accelerator: str
    layout_transforms: int = 0  # transposes left at run time (NCHW graph around NHWC accelerator layers)
    entries: list[ReportEntry] = field(default_factory=list)
    # accelerator kernel -> every ONNX node its layer absorbed (quantize, dequantize, activation,
    # weights' dequantize; a residual add's too), beside the entry's node: for kernels.json
    absorbed: dict[str, list[str]] = field(default_factory=dict)

    @property
    def offloaded(self) -> int:
        return sum(e.where == "accelerator" for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        return {"accelerator": self.accelerator, "offloaded": self.offloaded, "candidates": len(self.entries),
                "layout_transforms_at_run_time": self.layout_transforms, "nodes": [e.__dict__ for e in self.entries]}

    def kernel_work(self) -> dict[str, KernelWork]:
        """Each accelerator kernel -> the ONNX nodes it computes and their MACs."""
        work: dict[str, KernelWork] = {}
        for e in self.entries:
            if e.kernel:
                work.setdefault(e.kernel, KernelWork()).add([*self.absorbed.get(e.kernel, []), e.node], e.macs)
        return work

    def text(self) -> str:
        lines = [f"offload report ({self.accelerator}): {self.offloaded} of {len(self.entries)} candidate layers "
                 f"offloaded; {self.layout_transforms} layout transforms remain at run time"]
        for e in self.entries:
            extra = f" -> {e.kernel}" if e.kernel else ""
            lines.append(f"  {e.node:<32} {e.op_type:<6} {e.where:<11} {e.reason}{extra}")
        return "\n".join(lines)


class _Matcher:
    """Pattern checks that remember, per candidate op, the layer or the reason it was rejected."""

    def __init__(self, dim: int, unsupported: Unsupported) -> None:
        self.dim = dim
        self.unsupported = unsupported
        self.layers: dict[Any, QLayer] = {}
        self.reasons: dict[Any, str] = {}
        self.ordered: list[QLayer] = []
        self.core_of: dict[int, Any] = {}
        self.pooled: dict[Any, Any] = {}  # max_pool2d call -> the conv whose output store pools it

    def attrs(self, annotated: Any) -> dict[str, str]:
        """Tag the composite function with the index of its layer."""
        core = annotated["core"]
        self.ordered.append(self.layers[core])
        self.core_of[len(self.ordered) - 1] = core
        return {"tvmx.layer": str(len(self.ordered) - 1)}

    def check(self, ctx: Any) -> bool:
        ann = dict(ctx.annotated_expr)
        relu = "relu" in ann
        core = ann["core"]
        op = "conv2d" if op_name(core) == "relax.nn.conv2d" else "matmul"
        if not _self_contained(ctx):  # a smaller pattern may still match
            self.reasons.setdefault(core, "an intermediate result is also used outside the layer")
            return False
        # In dataflow form the matmul's operand is a variable; its binding says whether a
        # permute_dims (ONNX Gemm transB) sits between it and the dequantized weight.
        rhs = dict(ctx.matched_bindings).get(core.args[1]) if op == "matmul" else None
        transposed = op_name(rhs) == "relax.permute_dims"
        try:
            layer = analyze(ann, op, relu, self.dim, transposed)
        except Rejected as exc:
            self.reasons.setdefault(core, str(exc))
            return False
        if "pool" in ann:
            try:
                layer = replace(layer, pool=analyze_pool(ann["pool"], ann.get("act_q", ann["q"]), ann["pool_q"]))
            except Rejected as exc:  # the conv alone may still match a smaller pattern
                self.reasons.setdefault(ann["pool"], str(exc))
                return False
        reason = self.unsupported(layer.op, kernels.call_sizes(layer))
        if reason is not None:
            self.reasons.setdefault(ann["pool"] if layer.pool else core, reason)
            return False
        if layer.pool:
            self.pooled[ann["pool"]] = core
        self.layers[core] = layer
        return True


def _unshare_dequantize(mod: Any) -> Any:
    """Give every consumer its own dequantize(x): a layer whose input is also read elsewhere (a
    residual branch) can then still take the int8 x into the accelerator."""
    from tvm import relax

    main = mod["main"]
    dq_values: dict[Any, Any] = {}
    for block in main.body.blocks:
        for b in block.bindings:
            if op_name(b.value) == "relax.dequantize":
                dq_values[b.var] = b.value

    @relax.expr_functor.mutator
    class Unshare(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if not any(isinstance(a, relax.Var) and a in dq_values for a in call.args):
                return call
            args = [self.builder_.emit(_copy(dq_values[a])) if isinstance(a, relax.Var) and a in dq_values else a
                    for a in call.args]
            return relax.Call(call.op, args, call.attrs, call.ty_args)

    return rewrite_main(Unshare(mod), mod)


def _count_transposes(main: Any) -> int:
    return sum(op_name(b.value) == "relax.permute_dims" for block in main.body.blocks for b in block.bindings)


def _copy(call: Any) -> Any:
    """A new node: the block builder would hand back the old binding for the same object."""
    from tvm import relax

    return relax.Call(call.op, call.args, call.attrs, call.ty_args)


def _self_contained(ctx: Any) -> bool:
    """Only the match's root may be used outside it; otherwise fusing would duplicate work."""
    matched = set(ctx.matched_bindings.keys())
    root = ctx.value_to_bound_var.get(ctx.matched_expr)
    for var in matched:
        if var.same_as(root):
            continue
        if any(user not in matched for user in ctx.var_usages.get(var, [])):
            return False
    return True


def partition(mod: Any, model: onnx.ModelProto, prefix: str, functions: dict[str, str], dim: int,
              unsupported: Unsupported = lambda _op, _sizes: None) -> tuple[Any, OffloadReport]:
    """Returns the module with offloaded layers as call_tir to accelerator kernels, and the report.
    `dim` is the array's width; `unsupported` says why a layer cannot run on the accelerator
    (for example no tiling fits its memories), or None."""
    from tvm import relax

    matcher = _Matcher(dim, unsupported)
    mod = _unshare_dequantize(clip_to_relu(sum_to_add(mod)))
    candidates = _candidate_ops(mod["main"])
    fused = restore_names(mod["main"], relax.transform.FuseOpsByPattern(
        fusion_patterns(prefix, set(functions), matcher.check, matcher.attrs), bind_constants=True)(mod))
    fused, kernels_of, absorbed = _lower_composites(fused, matcher, functions)
    fused = simplify_qdq(fused)
    fused = sink_transposes(fused)
    fused, matmuls = (offload_activation_matmuls(fused, functions["matmul"], unsupported) if "matmul" in functions
                      else (fused, []))
    fused, adds = (offload_residual_adds(fused, {op: functions[op] for op in ("add", "add3") if op in functions})
                   if "add" in functions else (fused, []))
    fused = collapse_reshapes(fused)  # the reshapes around accelerator matmuls, back to back
    for add in adds:  # (a Sum's two adds share one kernel)
        if add.kernel:
            absorbed.setdefault(add.kernel, []).extend(add.absorbed)
    labels = [node_label(i, node) for i, node in enumerate(model.graph.node)]
    report = OffloadReport(prefix, layout_transforms=_count_transposes(fused["main"]),
                           absorbed={k: labels_of(names, labels) for k, names in absorbed.items()})
    onnx_nodes = _onnx_candidates(model)
    values = bindings(mod["main"])
    activation_results = iter(matmuls)
    for index, core in enumerate(candidates):
        relax_op = op_name(core)
        node = onnx_nodes[relax_op][index_in(candidates, core, relax_op)] if relax_op in onnx_nodes else None
        label, op_type = node if node else (f"#{index}", relax_op)
        if core in kernels_of:
            layer, kernel = kernels_of[core]
            report.entries.append(ReportEntry(label, op_type, "accelerator", _describe(layer), kernel, layer.macs))
        elif matcher.pooled.get(core) in kernels_of:
            kernel = kernels_of[matcher.pooled[core]][1]
            report.entries.append(ReportEntry(label, op_type, "accelerator", "int8 max pool in the conv's output store",
                                              kernel))
        elif is_activation_matmul(core, values):
            result = next(activation_results, None)
            if result is not None and result.kernel:
                report.entries.append(ReportEntry(label, op_type, "accelerator", "int8 matmul of two activations",
                                                  result.kernel, result.macs))
            else:
                why = result.reason if result is not None else "the target declares no matmul intrinsic"
                report.entries.append(ReportEntry(label, op_type, "cpu", f"matmul of two int8 activations: {why}"))
        elif relax_op == "relax.nn.max_pool2d":
            reason = matcher.reasons.get(core) or "not right after an offloaded conv; runs on the CPU (on int8 when " \
                                                  "its scales match)"
            report.entries.append(ReportEntry(label, op_type, "cpu", reason))
        else:
            reason = matcher.reasons.get(core) or _no_match_reason(core)
            report.entries.append(ReportEntry(label, op_type, "cpu", reason))
    report.entries += _residual_entries(model, adds, set(functions))
    return fused, report


def _describe(layer: QLayer) -> str:
    kind = layer.op
    if layer.groups > 1:
        kind = "depthwise conv2d" if layer.groups == layer.x_shape[1] else f"grouped conv2d (groups={layer.groups})"
    return (f"int8 {kind}" + (" + bias" if layer.bias is not None else "") + (" + relu" if layer.relu else "")
            + (f" + maxpool {layer.pool.size}x{layer.pool.size}/{layer.pool.stride}" if layer.pool else ""))


def _residual_entries(model: onnx.ModelProto, adds: list[AddResult], functions: set[str]) -> list[ReportEntry]:
    """ONNX Adds and Sums of computed tensors, paired in graph order with the Relax adds of two
    tensors (sum_to_add writes a Sum of n tensors as n - 1 adds)."""
    constants = {t.name for t in model.graph.initializer}
    nodes = [(node.name or f"{node.op_type}#{i}", node.op_type, len(node.input) - 1)
             for i, node in enumerate(model.graph.node)
             if node.op_type in ("Add", "Sum") and len(node.input) >= 2 and not constants & set(node.input)]
    if sum(count for *_, count in nodes) != len(adds):  # the importer decomposed something else into adds
        nodes = [(f"add#{i}", "Add", 1) for i in range(len(adds))]
    entries = []
    results = iter(adds)
    for label, op_type, count in nodes:
        parts = [next(results) for _ in range(count)]
        what = "int8 residual add" if count == 1 else f"int8 Sum of {count + 1} tensors"
        if parts[-1].kernel and all(p.kernel == parts[-1].kernel for p in parts):
            entries.append(ReportEntry(label, op_type, "accelerator", what + (" + relu" if parts[-1].relu else ""),
                                       parts[-1].kernel))
        elif count > 2 or (count == 2 and "add3" not in functions):
            takes = "two or three" if "add3" in functions else "two"
            entries.append(ReportEntry(label, op_type, "cpu", f"Sum of {count + 1} tensors: {count} float adds on the "
                                       f"CPU (the accelerator's adds take {takes} int8 tensors)"))
        elif count == 2:
            entries.append(ReportEntry(label, op_type, "cpu", f"Sum of 3 tensors: {parts[-1].reason}"))
        else:
            reason = parts[0].reason if "add" in functions else "the target declares no add intrinsic"
            entries.append(ReportEntry(label, op_type, "cpu", reason))
    return entries


def index_in(candidates: list[Any], core: Any, relax_op: str) -> int:
    same = [c for c in candidates if op_name(c) == relax_op]
    return next(i for i, c in enumerate(same) if c.same_as(core))


def _no_match_reason(core: Any) -> str:
    return "not inside a QDQ int8 pattern (a float layer: quantize the model with `tvmx quantize`)"


def _candidate_ops(main: Any) -> list[Any]:
    """matmul/conv2d calls in binding order, which is the ONNX graph's node order."""

    return [b.value for block in main.body.blocks for b in block.bindings if op_name(b.value) in CANDIDATE_OPS]


def _onnx_candidates(model: onnx.ModelProto) -> dict[str, list[tuple[str, str]]]:
    """ONNX nodes per Relax op, in graph order: the importer emits them in the same order."""
    out: dict[str, list[tuple[str, str]]] = {}
    for i, node in enumerate(model.graph.node):
        for relax_op, op_types in CANDIDATE_OPS.items():
            if node.op_type in op_types:
                out.setdefault(relax_op, []).append((node.name or f"{node.op_type}#{i}", node.op_type))
    return out


def _lower_composites(mod: Any, matcher: _Matcher,
                      functions: dict[str, str]) -> tuple[Any, dict[Any, Any], dict[str, list[str]]]:
    """Each composite call becomes call_tir(kernel, [x, weight, bias]). Also returns each kernel's
    composite's binding names (which keep the nodes they were named after)."""
    from tvm import relax

    kernels_of: dict[Any, tuple[QLayer, str]] = {}
    absorbed: dict[str, list[str]] = {}
    by_function: dict[str, QLayer] = {}
    core_by_function: dict[str, Any] = {}
    names_by_function: dict[str, list[str]] = {}
    for gv, func in mod.functions.items():
        if isinstance(func, relax.Function) and func.attrs is not None and "tvmx.layer" in func.attrs:
            by_function[gv.name_hint] = _layer_of(func, matcher)
            core_by_function[gv.name_hint] = matcher.core_of[int(func.attrs["tvmx.layer"])]
            names_by_function[gv.name_hint] = [b.var.name for block in func.body.blocks for b in block.bindings]
    for var, value in bindings(mod["main"]).items():  # (a composite's result is bound, and named, in main)
        if isinstance(value, relax.Call) and isinstance(value.op, relax.GlobalVar) \
                and value.op.name_hint in names_by_function:
            names_by_function[value.op.name_hint].append(var.name)

    @relax.expr_functor.mutator
    class Rewriter(relax.PyExprMutator):  # type: ignore[misc]
        def _add(self, source: kernels.KernelSource, name: str, layer: QLayer) -> Any:
            return self.builder_.add_func(kernels.accelerator_kernel(source, name, layer.op), name)

        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if isinstance(call.op, relax.GlobalVar) and call.op.name_hint in by_function:
                layer = by_function[call.op.name_hint]
                name = f"accel_{layer.op}_{len(kernels_of)}"
                kernels_of[core_by_function[call.op.name_hint]] = (layer, name)
                absorbed[name] = names_by_function[call.op.name_hint]
                channels = layer.weight.shape[1] if layer.op == "matmul" else layer.out_shape[1]
                bias = layer.bias if layer.bias is not None else np.zeros(channels, np.int32)
                consts = [relax.const(layer.weight), relax.const(bias.astype(np.int32))]
                if layer.op == "matmul":
                    m, n = int(np.prod(layer.x_shape[:-1])), layer.weight.shape[1]
                    gv = self._add(kernels.matmul_source(layer, functions["matmul"]), name, layer)
                    x = call.args[0] if len(layer.x_shape) == 2 else self.builder_.emit(
                        relax.op.reshape(call.args[0], (m, layer.weight.shape[0])))
                    y = relax.call_tir(gv, [x, *consts], relax.TensorType((m, n), "int8"))
                    return y if len(layer.out_shape) == 2 else relax.op.reshape(self.builder_.emit(y),
                                                                                layer.out_shape)
                # The graph is NCHW (ONNX); the accelerator's conv is NHWC: transposes on the CPU around it.
                n, oc, oh, ow = layer.final_shape
                gv = self._add(kernels.conv2d_source(layer, functions["conv2d"]), name, layer)
                x_nhwc = self.builder_.emit(relax.op.permute_dims(call.args[0], [0, 2, 3, 1]))
                y = self.builder_.emit(relax.call_tir(gv, [x_nhwc, *consts], relax.TensorType((n, oh, ow, oc), "int8")))
                return relax.op.permute_dims(y, [0, 3, 1, 2])
            return call

    return rewrite_main(Rewriter(mod), mod), kernels_of, absorbed


def _layer_of(func: Any, matcher: _Matcher) -> QLayer:
    """The QLayer the check recorded for this composite (its index travels as a function attribute)."""
    return matcher.ordered[int(func.attrs["tvmx.layer"])]
