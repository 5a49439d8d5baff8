"""Transpose sinking: keep activations NHWC between accelerator layers.

The graph is NCHW (ONNX) and the accelerator's conv is NHWC, so each offloaded conv sits between two
transposes. Ops that do not care about the layout (dequantize/quantize with one scale, ReLU, Clip,
Sigmoid, a residual Add, Concat along channels, MaxPool, table lookups and the per-channel offsets
of their indices) are moved to the NHWC side, so an
NHWC->NCHW transpose meets the next NCHW->NHWC one and both vanish. Only exact rewrites: every op
moved computes the same values, element for element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tvmx.offload.rewrite import constant_array, op_name, rewrite_main

TO_NCHW = [0, 3, 1, 2]
TO_NHWC = [0, 2, 3, 1]
UNARY = {"relax.dequantize", "relax.quantize", "relax.nn.relu", "relax.sigmoid", "relax.clip", "relax.astype"}
BINARY = {"relax.add", "relax.maximum", "relax.minimum", "relax.multiply", "relax.subtract"}


def _axes(expr: Any) -> list[int]:
    return [int(a) for a in expr.attrs.axes]


def _channel_constant_nhwc(expr: Any) -> Any:
    """A [1, C, 1, 1] constant (one value per channel) as the [1, 1, 1, C] constant of the NHWC
    tensor, else None."""
    from tvm import relax

    arr = constant_array(expr)
    if arr is None or arr.ndim != 4 or arr.shape[0] != 1 or arr.shape[2:] != (1, 1):
        return None
    return relax.const(np.ascontiguousarray(arr.transpose(TO_NHWC)), str(arr.dtype))


def _is_table(value: Any) -> bool:
    """take(1-D constant, index, axis=0): each output element is the table's entry at its index."""
    table = constant_array(value.args[0])
    axis = value.attrs.axis
    return table is not None and table.ndim == 1 and axis is not None and int(axis) == 0


def sink_transposes(mod: Any) -> Any:
    from tvm import relax

    @relax.expr_functor.mutator
    class Sink(relax.PyExprMutator):  # type: ignore[misc]
        def __init__(self, mod: Any) -> None:
            super().__init__(mod)
            self.nhwc: dict[Any, Any] = {}  # NCHW var -> the same tensor in NHWC

        def _scalar(self, expr: Any) -> bool:
            return isinstance(expr, relax.Expr) and hasattr(expr, "ty") and getattr(expr.ty, "ndim", -1) == 0

        def _nhwc_value(self, value: Any) -> Any:
            """The NHWC form of `value` if every tensor operand has one, else None."""
            op = op_name(value)
            if op == "relax.permute_dims" and _axes(value) == TO_NHWC and value.args[0] in self.nhwc:
                return self.nhwc[value.args[0]]  # cancels: that is the point
            if op in UNARY and value.args[0] in self.nhwc and all(self._scalar(a) for a in value.args[1:]):
                x = self.nhwc[value.args[0]]
                if op in ("relax.quantize", "relax.dequantize"):  # one scale: the axis is nominal
                    make = relax.op.quantize if op == "relax.quantize" else relax.op.dequantize
                    return make(x, *value.args[1:], axis=3, out_dtype=str(value.attrs.out_dtype))
                return relax.Call(value.op, [x, *value.args[1:]], value.attrs, value.ty_args)
            if op in BINARY:
                a, b = value.args
                if a in self.nhwc and b in self.nhwc:
                    return relax.Call(value.op, [self.nhwc[a], self.nhwc[b]], value.attrs, value.ty_args)
                if a in self.nhwc and self._scalar(b):
                    return relax.Call(value.op, [self.nhwc[a], b], value.attrs, value.ty_args)
                per_channel = _channel_constant_nhwc(b)
                if a in self.nhwc and per_channel is not None:
                    return relax.Call(value.op, [self.nhwc[a], per_channel], value.attrs, value.ty_args)
            if op == "relax.take" and _is_table(value) and value.args[1] in self.nhwc:
                # an elementwise lookup (channel_tables, int8_tables): the index tensor's layout is the result's
                return relax.Call(value.op, [value.args[0], self.nhwc[value.args[1]]], value.attrs, value.ty_args)
            if op == "relax.concat" and int(value.attrs.axis) == 1:
                fields = value.args[0].fields if isinstance(value.args[0], relax.Tuple) else None
                if fields and all(f in self.nhwc for f in fields):
                    return relax.op.concat([self.nhwc[f] for f in fields], axis=3)
            if op == "relax.nn.max_pool2d" and str(value.attrs.layout) == "NCHW" and value.args[0] in self.nhwc:
                a = value.attrs
                return relax.op.nn.max_pool2d(self.nhwc[value.args[0]], a.pool_size, a.strides, a.padding,
                                              a.dilation, bool(a.ceil_mode), bool(a.count_include_pad),
                                              layout="NHWC", out_layout="NHWC")
            return None

        def visit_var_binding_(self, binding: Any) -> None:
            value = self.visit_expr(binding.value)
            var = binding.var
            if isinstance(var, relax.DataflowVar) and getattr(var.ty, "ndim", -1) == 4:
                nhwc = self._nhwc_value(value)
                if nhwc is not None:
                    nhwc_var = self.builder_.emit(nhwc, name_hint=var.name) if not isinstance(nhwc, relax.Var) else nhwc
                    if op_name(value) == "relax.permute_dims":  # var was an NCHW->NHWC transpose: it is nhwc_var
                        self.set_var_remap(var, nhwc_var)
                        return
                    nchw = self.builder_.emit(relax.op.permute_dims(nhwc_var, TO_NCHW))  # removed if unused
                    self.nhwc[nchw] = nhwc_var
                    self.set_var_remap(var, nchw)
                    return
                if op_name(value) == "relax.permute_dims" and _axes(value) == TO_NCHW:
                    new = self.builder_.emit(value, name_hint=var.name)
                    self.nhwc[new] = value.args[0]
                    self.set_var_remap(var, new)
                    return
            super().visit_var_binding_(binding)

    return rewrite_main(Sink(mod), mod)
