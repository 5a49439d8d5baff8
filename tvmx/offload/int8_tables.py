"""Elementwise functions of one int8 tensor as 256-entry lookup tables.

`quantize(f(dequantize(q, s_in, z_in)), s_out, z_out)` depends only on the 256 values q can take.
The table holds it for each: dequantize in float32, f in float64 rounded to float32 (onnxruntime's
Sigmoid and Tanh give these values to the bit: checked on 400 random scale pairs), quantize in
float32 as QuantizeLinear does. The CPU then does one load an element instead of a dequantize, a
float function (a Sigmoid costs ~180 instructions an element with picolibc's expf) and a quantize.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tvmx.offload.rewrite import bound_value, op_name, rewrite_main, scalar_value

IDENTITY = "relax.dequantize"  # quantize(dequantize(x)) itself: a requantization
FUNCTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    IDENTITY: lambda x: x,
    "relax.sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "relax.tanh": np.tanh,
    "relax.exp": np.exp,
    "relax.nn.relu": lambda x: np.maximum(x, 0),  # after the accelerator patterns, which fuse it where they can
}
RANGES = {"int8": (-128, 127), "uint8": (0, 255)}


def table(function: str, in_dtype: str, scales: tuple[float, float], zeros: tuple[float, float],
          out_dtype: str) -> np.ndarray:
    """quantize(f(dequantize(v))) for every v of in_dtype, in order (the entry of v is v - min)."""
    low, high = RANGES[in_dtype]
    q = np.arange(low, high + 1, dtype=np.float32)
    x = (q - np.float32(zeros[0])) * np.float32(scales[0])
    with np.errstate(over="ignore"):
        fx = FUNCTIONS[function](x.astype(np.float64)).astype(np.float32)
        y = np.rint(fx / np.float32(scales[1])) + np.float32(zeros[1])
    out_low, out_high = RANGES[out_dtype]
    out: np.ndarray = np.clip(y, out_low, out_high).astype(out_dtype)
    return out


def int8_tables(mod: Any, relu: bool = True) -> Any:
    """Every quantize(f(dequantize(x))) with an 8-bit x, scalar scales and zero points and f in
    FUNCTIONS (or none: a requantization) becomes take(table, x), or x where it is one. `relu=False`
    keeps ReLUs float (without an accelerator a float ReLU fuses into the producing kernel, while
    an int8 result would have the next float matmul dequantize it once per multiply-accumulate)."""
    from tvm import relax

    @relax.expr_functor.mutator
    class Rewrite(relax.PyExprMutator):  # type: ignore[misc]
        def visit_call_(self, call: Any) -> Any:
            call = super().visit_call_(call)
            if op_name(call) != "relax.quantize" or str(call.attrs.out_dtype) not in RANGES:
                return call
            inner: Any = bound_value(self, call.args[0])
            if op_name(inner) not in FUNCTIONS or (op_name(inner) == "relax.nn.relu" and not relu):
                return call
            dq: Any = inner if op_name(inner) == IDENTITY else bound_value(self, inner.args[0])
            if op_name(dq) != "relax.dequantize" or str(dq.args[0].ty.dtype) not in RANGES:
                return call
            params = [scalar_value(e, {}) for e in (dq.args[1], call.args[1], dq.args[2], call.args[2])]
            if any(p is None for p in params):
                return call
            s_in, s_out, z_in, z_out = (float(p) for p in params if p is not None)
            in_dtype = str(dq.args[0].ty.dtype)
            same = (s_in, z_in, in_dtype) == (s_out, z_out, str(call.attrs.out_dtype))
            if op_name(inner) == IDENTITY and same:
                return dq.args[0]  # |q| <= 128: q * s / s rounds back to q
            if op_name(inner) == "relax.nn.relu" and same and z_in == 0:
                return relax.op.nn.relu(dq.args[0])  # relu(q * s) = max(q, 0) * s
            lut = table(op_name(inner), in_dtype, (s_in, s_out), (z_in, z_out), str(call.attrs.out_dtype))
            # Indexed by the 8-bit value itself, in one kernel: an int8 table is rotated so that
            # entry v mod 256 holds v's value, and "wrap" maps -128..-1 to 128..255 (uint8 values
            # are in range; "fast" mode would have TVM warn on every compile).
            lut = np.roll(lut, RANGES[in_dtype][0])
            return relax.op.take(relax.const(lut), dq.args[0], axis=0, mode="wrap")

    return rewrite_main(Rewrite(mod), mod)
