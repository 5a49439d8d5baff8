"""What a matched QDQ pattern computes, in the accelerator's terms, or why it cannot be offloaded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Pool:
    """Max pooling fused into the accelerator's output store: square window, one stride, one pad (floor mode)."""

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


def analyze_pool(pool: Any, conv_q: Any, pool_q: Any) -> Pool:
    """The Pool of quantize(max_pool2d(dequantize(conv output))), or raise Rejected: it must be the
    conv's own int8 values that are pooled (one scale, zero point 0)."""
    a = pool.attrs
    size, strides, pads = [int(v) for v in a.pool_size], [int(v) for v in a.strides], [int(v) for v in a.padding]
    if str(a.layout) != "NCHW" or any(int(d) != 1 for d in a.dilation) or bool(a.ceil_mode):
        raise Rejected("MaxPool with dilation, ceil_mode or a non-NCHW layout")
    if len(set(size)) != 1 or len(set(strides)) != 1 or len(set(pads)) != 1:
        raise Rejected(f"MaxPool window {size}, strides {strides}, pads {pads}: only square windows pool in the store")
    if pads[0] >= size[0]:
        raise Rejected("MaxPool padding as wide as its window")
    if _scalar(pool_q.args[1], "output") != _scalar(conv_q.args[1], "output"):
        raise Rejected("MaxPool requantizes to another scale")
    _zero(pool_q.args[2], "output")
    return Pool(size[0], strides[0], pads[0])


@dataclass(frozen=True)
class QAdd:
    """An int8 residual add of two or three tensors (an ONNX Add or Sum):
    out = act(sat8(rne((rne(a * in_scales[0]) + rne(b * in_scales[1]) [+ ...]) * out_scale))).

    The QDQ graph computes rne((a*sa + b*sb [+ c*sc]) / sy) in float32. The accelerator rounds each
    scaled input into the int32 accumulator first, so the scales carry `frac_bits` fractional bits
    (in_scale = s/sy * 2^f, out_scale = 2^-f): the early roundings then cost at most 2^-f LSB each.
    analyze_add accepts the scales only where that gives the QDQ graph's result for every input."""

    shape: tuple[int, ...]
    in_scales: tuple[float, ...]
    out_scale: float
    frac_bits: int
    relu: bool

    @property
    def arity(self) -> int:
        return len(self.in_scales)

    @property
    def op(self) -> str:
        """The intrinsic's op: the target's add takes two tensors, its add3 three."""
        return "add" if self.arity == 2 else "add3"


# The accelerator's store converts the int32 accumulator to float32, exact below 2^24: |a|, |b| <= 128 bounds the sum.
ACC_EXACT_BITS = 24
MAX_FRAC_BITS = 20
INT8 = np.arange(-128, 128)


def qdq_sum(ints: Sequence[np.ndarray], scales: list[np.float32], out_scale: np.float32, relu: bool) -> Any:
    """The QDQ graph's float32 arithmetic (onnxruntime's, and tvmx's CPU kernels'): dequantize each
    operand, add left to right, [relu], quantize (divide, round half to even, saturate)."""
    total = ints[0].astype(np.float32) * scales[0]
    for x, s in zip(ints[1:], scales[1:], strict=True):
        total = total + x.astype(np.float32) * s
    q = np.clip(np.rint(total / out_scale), -128, 127)
    return np.maximum(q, 0) if relu else q


def accelerator_sum(ints: Sequence[np.ndarray], add: QAdd) -> Any:
    """What the accelerator computes: each operand rounded into the int32 accumulator, summed, stored."""
    acc = sum(np.rint(x.astype(np.float32) * np.float32(s)).astype(np.int64)
              for x, s in zip(ints, add.in_scales, strict=True))
    q = np.clip(np.rint(np.asarray(acc).astype(np.float32) * np.float32(add.out_scale)), -128, 127)
    return np.maximum(q, 0) if add.relu else q


# Away from a rounding boundary both sides round the exact sum the same way: the QDQ graph's float32
# errors and the accelerator's early roundings (arity * 2^-(f+1) LSB) are far below this, in LSB.
NEAR_TIE = 1e-3
NUDGES = 4  # ulps each accelerator scale may move from its exact value, to agree on the near ties


def _nudged(base: list[np.float32], most: int) -> list[tuple[np.float32, ...]]:
    """The scales, then each moved by up to `most` ulps, the smallest total moves first."""
    import itertools

    steps = sorted(itertools.product(range(-most, most + 1), repeat=len(base)), key=lambda d: (sum(map(abs, d)), d))
    out = []
    for d in steps:
        scales = []
        for b, k in zip(base, d, strict=True):
            for _ in range(abs(k)):
                b = np.nextafter(b, np.float32(np.inf if k > 0 else -np.inf), dtype=np.float32)
            scales.append(b)
        out.append(tuple(scales))
    return out


def _exact_add(shape: tuple[int, ...], ins: list[np.float32], sy: np.float32, frac_bits: int,
               relu: bool) -> tuple[QAdd | None, int]:
    """A QAdd at these fractional bits whose result equals the QDQ graph's for every combination of
    int8 inputs (256^arity), its scales nudged by a few ulps where the unnudged ones miss a near tie;
    else (None, the unnudged one's mismatches)."""
    grids = np.meshgrid(*[INT8] * len(ins), indexing="ij", sparse=True)
    exact = sum(g * (float(s) / float(sy)) for g, s in zip(grids, ins, strict=True))
    near = np.abs(np.abs(exact - np.floor(exact)) - 0.5) < NEAR_TIE
    picks = np.nonzero(np.broadcast_to(near, near.shape))
    ties = [(g.reshape(-1)[i] if g.size > 1 else np.broadcast_to(g.reshape(-1), i.shape))
            for g, i in zip(grids, picks, strict=True)]
    want = qdq_sum(ties, ins, sy, relu)
    base = [np.float32(float(s) / float(sy) * 2.0**frac_bits) for s in ins]
    first_misses = -1
    for scales in _nudged(base, NUDGES if len(ins) == 2 else 1):
        add = QAdd(shape, tuple(float(x) for x in scales), 2.0**-frac_bits, frac_bits, relu)
        misses = int(np.count_nonzero(accelerator_sum(ties, add) != want))
        first_misses = misses if first_misses < 0 else first_misses
        if misses == 0:  # confirmed over every input, not only the near ties
            full = int(np.count_nonzero(accelerator_sum(grids, add) != qdq_sum(grids, ins, sy, relu)))
            if full == 0:
                return add, 0
    return None, first_misses


def analyze_add(types: list[Any], scales: tuple[Any, ...], zeros: tuple[Any, ...], out_dtype: str,
                relu: bool) -> QAdd:
    """The QAdd for add(dequantize(a), dequantize(b) [, dequantize(c)]) quantized to int8 (scales and
    zeros: the inputs' then the output's), or raise Rejected."""
    if any(str(t.dtype) != "int8" for t in types) or out_dtype != "int8":
        raise Rejected("not int8 + int8 -> int8")
    shapes = [tuple(int(d) for d in t.shape) for t in types]
    if len(set(shapes)) > 1:
        raise Rejected(f"broadcasting add {' + '.join(str(list(s)) for s in shapes)} (the accelerator adds equal "
                       "shapes)")
    roles = ("input",) * len(types) + ("output",)
    *ins, sy = (np.float32(_scalar(s, f"{what} scale")) for s, what in zip(scales, roles, strict=True))
    for z, what in zip(zeros, roles, strict=True):
        _zero(z, what)
    return plan_add(shapes[0], ins, sy, relu)


def plan_add(shape: tuple[int, ...], ins: list[np.float32], sy: np.float32, relu: bool) -> QAdd:
    """The QAdd that reproduces the QDQ graph's add at these input and output scales on every int8
    input, or raise Rejected."""
    ratios = [float(s / sy) for s in ins]
    frac_bits = min(MAX_FRAC_BITS, int(np.floor(np.log2(2.0 ** (ACC_EXACT_BITS - 7) / sum(map(abs, ratios))))))
    if frac_bits < 8:
        raise Rejected(f"input/output scale ratios {', '.join(f'{r:.3g}' for r in ratios)} leave under 8 "
                       "fractional bits")
    add, bad = _exact_add(shape, ins, sy, frac_bits, relu)
    if add is None:
        raise Rejected(f"at these scales the accelerator's rounding differs from the QDQ graph's float32 "
                       f"arithmetic on {bad} of {256 ** len(ins)} inputs")
    return add
