"""Exact rewrites of the QDQ graph, each computing the same values.

simplify_qdq runs quantization-invariant ops on int8 directly: `quantize(op(dequantize(x, s)), s)`
equals `op(x)` exactly when op only selects or moves values (concatenation, max pooling,
transposition, reshapes) and every scale and zero point is the same: dequantize then quantize
with one scale gives back the integer (|q| <= 128, so q*s/s rounds to q). The float round trip it
removes costs the CPU tens of instructions per element. A concatenation of parts on other scales
becomes one of requantized parts.

clip_to_relu and sum_to_add put what the ONNX importer writes for a ReLU6 and a two-input Sum into
the forms the accelerator patterns match.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tvmx.offload.rewrite import bindings, op_name, rewrite_main, same_constant, same_shape, scalar_value

SELECTING_OPS = frozenset({"relax.concat", "relax.nn.max_pool2d", "relax.permute_dims", "relax.reshape"})
# Without an accelerator a transpose or reshape stays float: in int8, the dequantize after it would
# fuse into the consuming float matmul and run once per multiply-accumulate instead of once per element.
CPU_SELECTING_OPS = frozenset({"relax.concat", "relax.nn.max_pool2d"})


def collapse_reshapes(mod: Any) -> Any:
    """reshape(reshape(x)) is one reshape, and a reshape to x's own shape is x: alone, a reshape is
    an alias of its input's memory, but two in a row become a copying kernel."""
    from tvm import relax

    @relax.expr_functor.mutator
    class Collapse(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if op_name(call) != "relax.reshape":
                return call
            inner: Any = self.lookup_binding(call.args[0]) if isinstance(call.args[0], relax.Var) else None
            source = inner.args[0] if op_name(inner) == "relax.reshape" else call.args[0]
            if same_shape(source, call):
                return source
            return call if source is call.args[0] else relax.op.reshape(source, call.args[1])

    return rewrite_main(Collapse(mod), mod)


def simplify_qdq(mod: Any, ops: frozenset[str] = SELECTING_OPS) -> Any:
    from tvm import relax

    @relax.expr_functor.mutator
    class Simplify(relax.PyExprMutator):  # type: ignore[misc]
        def _binding(self, expr: Any) -> Any:
            return self.lookup_binding(expr) if isinstance(expr, relax.Var) else expr

        def _int8_source(self, expr: Any, scale: Any, zero: Any) -> Any:
            """x if expr is dequantize(x, scale, zero) with an int8 x, else None."""
            dq = self._binding(expr)
            if op_name(dq) != "relax.dequantize":
                return None
            x, s, z = dq.args
            ok = str(x.ty.dtype) == "int8" and same_constant(s, scale) and same_constant(z, zero)
            return x if ok else None

        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if op_name(call) != "relax.quantize" or str(call.attrs.out_dtype) != "int8":
                return call
            _, scale, zero = call.args
            inner = self._binding(call.args[0])
            op = op_name(inner)
            if op not in ops:
                return call
            if op == "relax.concat":
                fields = self._binding(inner.args[0])
                if not isinstance(fields, relax.Tuple):
                    return call
                if not all(op_name(self._binding(f)) == "relax.dequantize" for f in fields.fields):
                    return call
                # Concatenation only moves values: quantizing each part gives the same elements.
                # Parts already on the output's scale are taken as they are; the others are
                # requantized (int8_tables turns those into lookups).
                sources = [self._int8_source(f, scale, zero) for f in fields.fields]
                parts = [src if src is not None else self.builder_.emit(relax.Call(call.op, [f, scale, zero],
                                                                                      call.attrs, call.ty_args))
                         for src, f in zip(sources, fields.fields, strict=True)]
                return relax.op.concat(parts, axis=int(inner.attrs.axis))
            source = self._int8_source(inner.args[0], scale, zero)
            if source is None:
                return call
            return relax.Call(inner.op, [source, *inner.args[1:]], inner.attrs, inner.ty_args)

    return rewrite_main(Simplify(mod), mod)


def _clamp_bounds(call: Any, values: dict[Any, Any]) -> tuple[Any, float, float] | None:
    """(x, lo, hi) if call is min(max(x, lo), hi) as the ONNX importer writes Clip (call_tir of its
    `maximum`/`minimum` functions, named after the TOPI ops), else None."""
    from tvm import relax

    def call_tir_of(expr: Any, name: str) -> tuple[Any, Any] | None:
        if op_name(expr) != "relax.call_tir" or not expr.args[0].name_hint.startswith(name):
            return None
        args = expr.args[1].fields
        return (args[0], args[1]) if len(args) == 2 else None

    outer = call_tir_of(call, "minimum")
    if outer is None:
        return None
    inner_expr = values.get(outer[0]) if isinstance(outer[0], relax.Var) else None
    inner = call_tir_of(inner_expr, "maximum")
    if inner is None:
        return None
    lo, hi = scalar_value(inner[1], values), scalar_value(outer[1], values)
    return None if lo is None or hi is None else (inner[0], lo, hi)


def clip_to_relu(mod: Any) -> Any:
    """quantize(clip(dequantize(q, s_in), lo, hi), s_out) -> quantize(relu(dequantize(q, s_in)), s_out)
    where both give the same int8 for every one of the 256 values of q, in float32 as onnxruntime
    computes them. A ReLU6 whose output scale is 6/127 (what the quantizer picks for it) is such
    a clip: the accelerator's ReLU then covers it, and the layout passes can move it."""
    from tvm import relax

    main = mod["main"]
    values = bindings(main)

    @relax.expr_functor.mutator
    class Rewrite(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            if op_name(call) != "relax.quantize" or not isinstance(call.args[0], relax.Var):
                return super().visit_call_(call)
            clamp = _clamp_bounds(values.get(call.args[0]), values)
            dq: Any = values.get(clamp[0]) if clamp and isinstance(clamp[0], relax.Var) else None
            if clamp is None or op_name(dq) != "relax.dequantize" or str(dq.args[0].ty.dtype) != "int8":
                return super().visit_call_(call)
            s_in, s_out = (scalar_value(dq.args[1], values), scalar_value(call.args[1], values))
            zeros = (scalar_value(dq.args[2], values), scalar_value(call.args[2], values))
            if s_in is None or s_out is None or zeros != (0.0, 0.0) or str(call.attrs.out_dtype) != "int8":
                return super().visit_call_(call)
            q = np.arange(-128, 128, dtype=np.float32)
            x = np.minimum(np.maximum(q * np.float32(s_in), np.float32(clamp[1])), np.float32(clamp[2]))
            if not np.array_equal(np.clip(np.rint(x / np.float32(s_out)), -128, 127), np.maximum(q, 0)):
                return super().visit_call_(call)
            relu = self.builder_.emit(relax.op.nn.relu(self.visit_expr(clamp[0])))
            return relax.Call(call.op, [relu, *call.args[1:]], call.attrs, call.ty_args)

    return rewrite_main(Rewrite(mod), mod)


def sum_to_add(mod: Any) -> Any:
    """sum(stack([broadcast_to(a), broadcast_to(b), ...]), axis=0) -> add(add(a, b), ...): how the
    ONNX importer writes a Sum, as the Adds it is: the same float additions in the same order
    (onnxruntime's Sum and the stacked reduction both add left to right), so that a residual Sum
    matches the residual-add pattern and a Sum of more inputs is elementwise adds the layout
    passes can move. Broadcasts that change the shape stay as they are."""
    from tvm import relax

    main = mod["main"]
    values = bindings(main)

    def unbroadcast(var: Any) -> Any:
        value: Any = values.get(var)
        if op_name(value) != "relax.broadcast_to":
            return None
        src = value.args[0]
        same = [int(d) for d in src.ty.shape] == [int(d) for d in var.ty.shape]
        return src if same else None

    @relax.expr_functor.mutator
    class Rewrite(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            if op_name(call) != "relax.sum" or [int(a) for a in call.attrs.axis or []] != [0]:
                return super().visit_call_(call)
            stack: Any = values.get(call.args[0]) if isinstance(call.args[0], relax.Var) else None
            if op_name(stack) != "relax.stack" or int(stack.attrs.axis) != 0:
                return super().visit_call_(call)
            fields = stack.args[0].fields if isinstance(stack.args[0], relax.Tuple) else []
            parts = [unbroadcast(f) for f in fields]
            if len(parts) < 2 or any(p is None for p in parts) or bool(call.attrs.keepdims):
                return super().visit_call_(call)
            total = self.visit_expr(parts[0])
            for i, part in enumerate(parts[1:]):
                add = relax.op.add(total, self.visit_expr(part))
                total = add if i == len(parts) - 2 else self.builder_.emit(add)
            return total

    return rewrite_main(Rewrite(mod), mod)
