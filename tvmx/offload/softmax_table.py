"""Softmax of an 8-bit tensor with its exponentials from a table.

In `quantize(softmax(dequantize(q, s, z)))` every exponential is exp(v - max(v)) with v = (q - z) * s
in float32: it depends only on the pair (max(q), q) of 8-bit values, so a table of 256 x 256
float32 entries holds it, the float32 difference as the graph computes it and exp in float64
rounded to float32. The row's maximum is an integer max; the sum, the division and the quantize
stay float32 as in the graph. The CPU saves the ~120 instructions of picolibc's expf per element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tvmx.offload.int8_tables import RANGES
from tvmx.offload.rewrite import bound_value, op_name, rewrite_main, same_shape, scalar_value


def exp_table(in_dtype: str, scale: float, zero: float) -> np.ndarray:
    """Entry 256 * (m - low) + (q - low): exp(v(q) - v(m)) in float32, for every q <= m."""
    low, high = RANGES[in_dtype]
    v = (np.arange(low, high + 1, dtype=np.float32) - np.float32(zero)) * np.float32(scale)
    diff = v[None, :] - v[:, None]  # [m, q], float32 as the graph subtracts
    with np.errstate(over="ignore", under="ignore"):
        table = np.exp(np.minimum(diff, 0).astype(np.float64)).astype(np.float32)
    return table.reshape(-1)


def softmax_tables(mod: Any) -> Any:
    """Every quantize(softmax(dequantize(x), axis=-1)) with an 8-bit x, scalar scales and zero points
    becomes one kernel: per row, m = max(x), e = E[m, x] (exp_table), the sum of e, then
    quantize(e * (1 / sum)), the reciprocal as onnxruntime's MLAS multiplies by it."""
    from tvm import relax, te, tirx

    @relax.expr_functor.mutator
    class Rewrite(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if op_name(call) != "relax.quantize" or str(call.attrs.out_dtype) not in RANGES:
                return call
            soft: Any = self._source(call.args[0])
            if op_name(soft) != "relax.nn.softmax":
                return call
            dq: Any = self._source(soft.args[0])
            if op_name(dq) != "relax.dequantize" or str(dq.args[0].ty.dtype) not in RANGES:
                return call
            x = dq.args[0]
            rank = len(x.ty.shape)
            if int(soft.attrs.axis) not in (-1, rank - 1):
                return call
            params = [scalar_value(e, {}) for e in (dq.args[1], dq.args[2], call.args[1], call.args[2])]
            if any(p is None for p in params) or float(params[0] or 0) <= 0:
                return call  # (a positive scale keeps the max of q the max of v)
            s_in, z_in, s_out, z_out = (float(p) for p in params if p is not None)
            low = RANGES[str(x.ty.dtype)][0]
            table = exp_table(str(x.ty.dtype), s_in, z_in)
            out_dtype = str(call.attrs.out_dtype)
            out_low, out_high = RANGES[out_dtype]

            def compute(t: Any, xs: Any) -> Any:
                *rows, n = xs.shape
                k = te.reduce_axis((0, n), name="k")
                m = te.compute(rows, lambda *r: te.max(xs(*r, k), axis=k), name="row_max")
                e = te.compute(xs.shape, lambda *i: t[(m(*i[:-1]).astype("int64") - low) * 256
                                                      + xs(*i).astype("int64") - low], name="row_exp")
                k2 = te.reduce_axis((0, n), name="k2")
                total = te.compute(rows, lambda *r: te.sum(e(*r, k2), axis=k2), name="row_sum")

                def quantize(*i: Any) -> Any:
                    y = e(*i) * (tirx.const(1.0, "float32") / total(*i[:-1]))
                    qv = tirx.round(y / tirx.const(s_out, "float32")) + tirx.const(z_out, "float32")
                    return tirx.max(tirx.min(qv, tirx.const(out_high, "float32")),
                                    tirx.const(out_low, "float32")).astype(out_dtype)

                return te.compute(xs.shape, quantize, name="quantized")

            return self.builder_.call_te(compute, relax.const(table), x, primfunc_name_hint="softmax_lookup")

        def _source(self, expr: Any) -> Any:
            """The value bound to expr, through reshapes to its own shape (an opset-11 Softmax
            imports as reshape -> softmax -> reshape, to 2-D and back)."""
            value = bound_value(self, expr)
            while op_name(value) == "relax.reshape" and same_shape(value.args[0], value):
                value = bound_value(self, value.args[0])
            return value

    return rewrite_main(Rewrite(mod), mod)
