"""What a matched QDQ pattern computes, in the accelerator's terms, or why it cannot be offloaded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Pool:
    """Max pooling fused into the accelerator's mvout: square window, one stride, one pad (floor mode)."""

    size: int
    stride: int
    pad: int

    def out(self, extent: int) -> int:
        return (extent + 2 * self.pad - self.size) // self.stride + 1


@dataclass(frozen=True)
class QLayer:
    """An int8 layer: out = [maxpool] act(sat8(round_half_even((x · w + bias) * acc_scale)))."""

    op: str  # "matmul" | "conv2d"
    x_shape: tuple[int, ...]  # NCHW for conv2d
    out_shape: tuple[int, ...]  # of the matmul or conv (NCHW), before a fused pool
    # int8; matmul [K, N]; conv2d [S, KH, KW, C_in/S, C_out/S]: S blocks of packed groups, each block
    # diagonal (zero weights between the groups packed into it), so each block is one dense conv
    weight: np.ndarray = field(repr=False)
    bias: np.ndarray | None = field(repr=False)  # int32 [N]
    acc_scale: float  # float32: x_scale * w_scale / y_scale, as onnxruntime computes it
    relu: bool
    strides: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    groups: int = 1  # the model's conv groups (S = weight.shape[0] of them after packing)
    pool: Pool | None = None

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer itself (not of the zeros that packing adds)."""
        if self.op == "matmul":
            k, n = self.weight.shape
            return int(np.prod(self.x_shape[:-1])) * int(k) * int(n)
        _, kh, kw, _, _ = self.weight.shape
        return int(np.prod(self.out_shape)) * int(kh * kw * self.x_shape[1] // self.groups)

    @property
    def final_shape(self) -> tuple[int, ...]:
        """The shape the layer writes: after the fused pool, if any (NCHW for conv2d)."""
        if self.pool is None:
            return self.out_shape
        n, c, h, w = self.out_shape
        return (n, c, self.pool.out(h), self.pool.out(w))


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


def analyze(ann: dict[str, Any], op: str, relu: bool, dim: int, transposed: bool = False) -> QLayer:
    """Build the QLayer for one match, or raise Rejected. `dim` is the array's width (group packing)."""
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
        outer = ann["act_q"]
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
    if any(int(d) != 1 for d in attrs.dilation):
        raise Rejected("dilated conv")
    if str(attrs.data_layout) != "NCHW" or str(attrs.kernel_layout) != "OIHW":
        raise Rejected(f"conv layout {attrs.data_layout}/{attrs.kernel_layout}")
    pad = tuple(int(p) for p in attrs.padding)
    if len(set(pad)) != 1 or int(attrs.strides[0]) != int(attrs.strides[1]):
        raise Rejected(f"asymmetric pads {list(pad)} or strides (the tiled conv helper takes one of each)")
    groups = int(attrs.groups)
    return QLayer("conv2d", x_shape, out_shape, pack_groups(weight, groups, dim),
                  None if bias is None else bias.reshape(-1), acc_scale, relu,
                  strides=(int(attrs.strides[0]), int(attrs.strides[1])), padding=(pad[0], pad[1], pad[2], pad[3]),
                  groups=groups)


def pack_groups(weight: np.ndarray, groups: int, dim: int) -> np.ndarray:
    """OIHW weights of a conv with `groups` groups -> [S, KH, KW, C_in/S, C_out/S].

    A group of a depthwise conv has one input channel: alone it would fill 1/dim of the array's
    rows and columns. So P consecutive groups (P * group width <= dim) are packed into one dense
    conv whose weights are block diagonal; the accelerator runs S = groups / P such convs on
    channel slices. A dense conv (groups = 1) is S = 1: its weights in HWIO order."""
    cout, cin_g, kh, kw = weight.shape
    cout_g = cout // groups
    pack = max([p for p in range(1, groups + 1) if groups % p == 0 and p * max(cin_g, cout_g) <= dim] or [1])
    blocks = groups // pack
    out = np.zeros((blocks, kh, kw, pack * cin_g, pack * cout_g), np.int8)
    hwio = weight.transpose(2, 3, 1, 0)  # [KH, KW, cin_g, C_out]
    for g in range(groups):
        s, p = divmod(g, pack)
        out[s, :, :, p * cin_g:(p + 1) * cin_g, p * cout_g:(p + 1) * cout_g] = hwio[..., g * cout_g:(g + 1) * cout_g]
    return out


MAX_POOL = 3  # Gemmini's config_mvout has 2-bit pool size and stride fields


def analyze_pool(pool: Any, conv_q: Any, pool_q: Any) -> Pool:
    """The Pool of quantize(max_pool2d(dequantize(conv output))), or raise Rejected: it must be the
    conv's own int8 values that are pooled (one scale, zero point 0)."""
    a = pool.attrs
    size, strides, pads = [int(v) for v in a.pool_size], [int(v) for v in a.strides], [int(v) for v in a.padding]
    if str(a.layout) != "NCHW" or any(int(d) != 1 for d in a.dilation) or bool(a.ceil_mode):
        raise Rejected("MaxPool with dilation, ceil_mode or a non-NCHW layout")
    if len(set(size)) != 1 or len(set(strides)) != 1 or len(set(pads)) != 1:
        raise Rejected(f"MaxPool window {size}, strides {strides}, pads {pads}: mvout pools square windows")
    if pads[0] >= size[0]:
        raise Rejected("MaxPool padding as wide as its window")
    if size[0] > MAX_POOL or strides[0] > MAX_POOL:
        raise Rejected(f"MaxPool {size[0]}x{size[0]}/{strides[0]}: mvout pools windows and strides up to {MAX_POOL}")
    if _scalar(pool_q.args[1], "output") != _scalar(conv_q.args[1], "output"):
        raise Rejected("MaxPool requantizes to another scale")
    _zero(pool_q.args[2], "output")
    return Pool(size[0], strides[0], pads[0])


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
