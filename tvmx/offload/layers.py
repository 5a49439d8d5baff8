"""What a matched QDQ pattern computes, in the accelerator's terms, or why it cannot be offloaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class QLayer:
    """An int8 layer: out = act(sat8(round_half_even((x · w + bias) * acc_scale)))."""

    op: str  # "matmul" | "conv2d"
    x_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    weight: np.ndarray = field(repr=False)  # int8; matmul [K, N], conv2d [KH, KW, C_in, C_out]
    bias: np.ndarray | None = field(repr=False)  # int32 [N]
    acc_scale: float  # float32: x_scale * w_scale / y_scale, as onnxruntime computes it
    relu: bool
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right

    @property
    def macs(self) -> int:
        if self.op == "matmul":
            k, n = self.weight.shape
            return int(np.prod(self.x_shape[:-1])) * int(k) * int(n)
        kh, kw, cin, _ = self.weight.shape
        return int(np.prod(self.out_shape)) * int(kh * kw * cin)


class Rejected(Exception):
    """A candidate layer the accelerator cannot run; the message says why (for the offload report)."""


def _scalar(const: Any, what: str) -> float:
    arr = const.value.numpy()
    if arr.size != 1:
        raise Rejected(f"per-channel {what} ({arr.size} scales; the accelerator applies one per layer)")
    return float(arr.reshape(()))


def _zero(const: Any, what: str) -> None:
    if np.any(const.value.numpy() != 0):
        raise Rejected(f"non-zero {what} zero point (the accelerator's int8 path is symmetric)")


def analyze(ann: dict[str, Any], op: str, relu: bool, transposed: bool = False) -> QLayer:
    """Build the QLayer for one match, or raise Rejected."""
    dq_x, dq_w, q = ann["dq_x"], ann["dq_w"], ann["q"]
    x, w, core = ann["x"], ann["w"], ann["core"]
    if str(x.ty.dtype) != "int8" or str(w.value.numpy().dtype) != "int8":
        raise Rejected("not int8 x int8 (the array multiplies int8 operands)")
    sx, sw, sy = _scalar(dq_x.args[1], "input scale"), _scalar(dq_w.args[1], "weight"), _scalar(q.args[1], "output")
    for expr, what in ((dq_x, "input"), (dq_w, "weight"), (q, "output")):
        _zero(expr.args[2], what)
    if str(q.attrs.out_dtype) != "int8":
        raise Rejected(f"output quantized to {q.attrs.out_dtype}, not int8")
    if relu:
        outer = ann["root"]
        if _scalar(outer.args[1], "output") != sy:
            raise Rejected("ReLU requantizes to another scale")
        _zero(outer.args[2], "output")
    bias = None
    if "b" in ann:
        bias = ann["b"].value.numpy()
        if bias.dtype != np.int32:
            raise Rejected(f"bias is {bias.dtype}, not int32")
        _zero(ann["dq_b"].args[2], "bias")
        sb = _scalar(ann["dq_b"].args[1], "bias scale")
        if not np.isclose(sb, np.float32(sx) * np.float32(sw), rtol=1e-6):
            raise Rejected("bias scale is not input scale x weight scale, so it cannot seed the accumulator")
    acc_scale = float(np.float32(np.float32(sx) * np.float32(sw)) / np.float32(sy))
    weight = w.value.numpy()
    x_shape = tuple(int(d) for d in x.ty.shape)
    out_shape = tuple(int(d) for d in q.ty.shape)
    if op == "matmul":
        if weight.ndim != 2 or len(x_shape) < 2:
            raise Rejected("matmul with a batched weight")
        weight = np.ascontiguousarray(weight.T if transposed else weight)
        return QLayer("matmul", x_shape, out_shape, weight, bias, acc_scale, relu)
    attrs = core.attrs
    if int(attrs.groups) != 1:
        kind = "depthwise" if int(attrs.groups) == x_shape[1] else f"grouped (groups={int(attrs.groups)})"
        raise Rejected(f"{kind} conv: the tiled conv helper needs groups=1")
    if any(int(d) != 1 for d in attrs.dilation):
        raise Rejected("dilated conv")
    if str(attrs.data_layout) != "NCHW" or str(attrs.kernel_layout) != "OIHW":
        raise Rejected(f"conv layout {attrs.data_layout}/{attrs.kernel_layout}")
    if bias is not None:
        bias = bias.reshape(-1)
    # OIHW -> HWIO: the im2col column order (ky, kx, c_in) times C_out
    weight = np.ascontiguousarray(weight.transpose(2, 3, 1, 0))
    pad = tuple(int(p) for p in attrs.padding)
    if len(set(pad)) != 1 or int(attrs.strides[0]) != int(attrs.strides[1]):
        raise Rejected(f"asymmetric pads {list(pad)} or strides (the tiled conv helper takes one of each)")
    return QLayer("conv2d", x_shape, out_shape, weight, bias, acc_scale, relu,
                  strides=(int(attrs.strides[0]), int(attrs.strides[1])), padding=(pad[0], pad[1], pad[2], pad[3]))


@dataclass(frozen=True)
class QAdd:
    """An int8 residual add: out = act(sat8(rne((rne(a * a_scale) + rne(b * b_scale)) * out_scale))).

    The QDQ graph computes rne((a*sa + b*sb) / sy) with one rounding. The accelerator rounds each
    scaled input into the int32 accumulator first, so the scales carry `frac_bits` fractional bits
    (a_scale = sa/sy * 2^f, out_scale = 2^-f): the two early roundings then cost at most 2^-f LSB,
    which changes the result only where the exact sum lies within that of a rounding boundary."""

    shape: tuple[int, ...]
    a_scale: float
    b_scale: float
    out_scale: float
    frac_bits: int
    relu: bool
    op: str = "add"


# mvout converts the int32 accumulator to float32, exact below 2^24: |a|, |b| <= 128 bounds the sum.
ACC_EXACT_BITS = 24
MAX_FRAC_BITS = 20


def analyze_add(a_ty: Any, b_ty: Any, scales: tuple[Any, Any, Any], zeros: tuple[Any, Any, Any], out_dtype: str,
                relu: bool) -> QAdd:
    """The QAdd for add(dequantize(a), dequantize(b)) quantized to int8, or raise Rejected."""
    if str(a_ty.dtype) != "int8" or str(b_ty.dtype) != "int8" or out_dtype != "int8":
        raise Rejected("not int8 + int8 -> int8")
    shape_a, shape_b = (tuple(int(d) for d in t.shape) for t in (a_ty, b_ty))
    if shape_a != shape_b:
        raise Rejected(f"broadcasting add {list(shape_a)} + {list(shape_b)} (the accelerator adds equal shapes)")
    roles = ("input", "input", "output")
    sa, sb, sy = (np.float32(_scalar(s, f"{what} scale")) for s, what in zip(scales, roles, strict=True))
    for z, what in zip(zeros, roles, strict=True):
        _zero(z, what)
    ra, rb = float(sa / sy), float(sb / sy)
    frac_bits = min(MAX_FRAC_BITS, int(np.floor(np.log2(2.0 ** (ACC_EXACT_BITS - 7) / (abs(ra) + abs(rb))))))
    if frac_bits < 8:
        raise Rejected(f"input/output scale ratios {ra:.3g}, {rb:.3g} leave under 8 fractional bits")
    return QAdd(shape_a, float(np.float32(ra * 2.0**frac_bits)), float(np.float32(rb * 2.0**frac_bits)),
                2.0**-frac_bits, frac_bits, relu)
