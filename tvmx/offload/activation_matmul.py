"""Matmuls of two int8 activations (attention's Q.K^T and P.V) onto the accelerator:

    quantize( matmul( dequantize(a), dequantize(b) ) )        a [1.., M, K], b [1.., K, N] int8

The accelerator's matmul reads its second operand from memory like any weight, so an activation
can take the weight's place: the same kernel as a layer's matmul (zero bias), with the operands
as run-time tensors. Runs after transpose sinking and simplify_qdq, so a K^T written as
quantize(permute_dims(dequantize(k))) is already the int8 transpose of k.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tvmx.offload import kernels
from tvmx.offload.layers import QLayer, Rejected
from tvmx.offload.rewrite import bindings, constant_array, op_name, rewrite_main

Unsupported = Any  # (op, sizes) -> reason or None, as partition's


@dataclass
class MatmulResult:
    """One matmul of two computed tensors, in graph order: offloaded (kernel) or why not (reason)."""

    kernel: str = ""
    reason: str = ""
    macs: int = 0


def _scalar(expr: Any, what: str) -> float:
    arr = constant_array(expr)
    if arr is None or arr.size != 1:
        raise Rejected(f"per-channel {what} (the accelerator applies one scale per layer)")
    return float(arr.reshape(()))


def _zero(expr: Any, what: str) -> None:
    arr = constant_array(expr)
    if arr is None or np.any(arr != 0):
        raise Rejected(f"non-zero {what} zero point (the accelerator's int8 path is symmetric)")


def is_activation_matmul(call: Any, values: dict[Any, Any]) -> bool:
    """matmul(dequantize(a), dequantize(b)) with neither a nor b a constant."""
    if op_name(call) != "relax.matmul":
        return False
    operands = [values.get(a, a) for a in call.args]
    return all(op_name(d) == "relax.dequantize" and constant_array(d.args[0]) is None for d in operands)


def _layer(q: Any, mm: Any, dq_a: Any, dq_b: Any) -> QLayer:
    """The QLayer of quantize(matmul(dq_a, dq_b)), or raise Rejected."""
    a, b = dq_a.args[0], dq_b.args[0]
    if str(a.ty.dtype) != "int8" or str(b.ty.dtype) != "int8":
        raise Rejected("matmul of two activations that are not both int8")
    if str(q.attrs.out_dtype) != "int8":
        raise Rejected(f"output quantized to {q.attrs.out_dtype}, not int8")
    sa, sb, sy = _scalar(dq_a.args[1], "input scale"), _scalar(dq_b.args[1], "input scale"), \
        _scalar(q.args[1], "output scale")
    for expr, what in ((dq_a, "input"), (dq_b, "input"), (q, "output")):
        _zero(expr.args[2], what)
    shape_a, shape_b = ([int(d) for d in t.ty.shape] for t in (a, b))
    if len(shape_a) < 2 or len(shape_b) < 2 or any(d != 1 for d in shape_a[:-2] + shape_b[:-2]):
        raise Rejected(f"batched matmul of two activations {shape_a} x {shape_b} (the accelerator's matmul "
                       "multiplies one pair of matrices)")
    m, k = shape_a[-2:]
    if shape_b[-2] != k:
        raise Rejected(f"matmul shapes {shape_a} x {shape_b}")
    acc_scale = float(np.float32(np.float32(sa) * np.float32(sb)) / np.float32(sy))
    # The values of b arrive at run time: only the shape of the weight slot is used.
    return QLayer("matmul", (m, k), tuple(int(d) for d in q.ty.shape), np.zeros((k, shape_b[-1]), np.int8), None,
                  acc_scale, False)


def offload_activation_matmuls(mod: Any, function: str, unsupported: Unsupported) -> tuple[Any, list[MatmulResult]]:
    """The module with every matching matmul as an accelerator call, and one result per matmul of
    two dequantized activations, in graph order."""
    from tvm import relax

    main = mod["main"]
    values = bindings(main)
    results: list[MatmulResult] = []
    plan: dict[Any, tuple[QLayer, Any, Any, MatmulResult]] = {}  # quantize var -> layer, a, b, result
    users: dict[Any, int] = {}
    for value in values.values():
        for arg in getattr(value, "args", []):
            users[arg] = users.get(arg, 0) + 1
    for var, value in values.items():
        if not is_activation_matmul(value, values):
            continue
        result = MatmulResult()
        results.append(result)
        roots = [v for v, q in values.items() if op_name(q) == "relax.quantize" and q.args[0].same_as(var)]
        if len(roots) != 1 or users.get(var, 0) != 1:
            result.reason = "matmul of two activations whose float result is used other than by one quantize"
            continue
        dq_a, dq_b = (values[a] for a in value.args)
        try:
            layer = _layer(values[roots[0]], value, dq_a, dq_b)
        except Rejected as exc:
            result.reason = str(exc)
            continue
        reason = unsupported(layer.op, kernels.call_sizes(layer))
        if reason is not None:
            result.reason = reason
            continue
        result.macs = layer.macs
        plan[roots[0]] = (layer, dq_a.args[0], dq_b.args[0], result)
    if not plan:
        return mod, results

    @relax.expr_functor.mutator
    class Rewriter(relax.PyExprMutator):  # type: ignore[misc]
        def visit_var_binding_(self, binding: Any) -> None:
            if binding.var not in plan:
                super().visit_var_binding_(binding)
                return
            layer, a, b, result = plan[binding.var]
            name = f"accel_amatmul_{sum(bool(r.kernel) for r in results)}"
            result.kernel = name
            gv = self.builder_.add_func(kernels.accelerator_kernel(kernels.matmul_source(layer, function), name,
                                                                   "matmul"), name)
            k, n = layer.weight.shape
            m = layer.x_shape[0]
            x = self.builder_.emit(relax.op.reshape(self.visit_expr(a), (m, k)))
            w = self.builder_.emit(relax.op.reshape(self.visit_expr(b), (k, n)))
            y = self.builder_.emit(relax.call_tir(gv, [x, w, relax.const(np.zeros(n, np.int32))],
                                                  relax.TensorType((m, n), "int8")))
            emit = self.builder_.emit if isinstance(binding.var, relax.DataflowVar) else self.builder_.emit_output
            self.set_var_remap(binding.var, emit(relax.op.reshape(y, layer.out_shape)))

    return rewrite_main(Rewriter(mod), mod), results
