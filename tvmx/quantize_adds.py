"""Activation scales at which a quantized model's residual adds run exactly on the accelerator.

The QDQ graph's int8 add, quantize(dequantize(a) + dequantize(b) [+ dequantize(c)]), rounds in
float32; an accelerator that accumulates the scaled operands in an int32 register rounds elsewhere,
and on a few of the 256^n inputs the two disagree (the sample CNN's Sum: 118 of 16.7M). With every
input scale an integer multiple N_i 2^e of one power of two and the output scale an odd multiple
M 2^e, both are exact: each dequantized operand and the sum are exact in float32 (N_i, M < 2^15),
sum / (M 2^e) is a rational with an odd denominator, never a tie and at least 1/(2M) from one, which
float32 division and the accumulator's fractional bits both round the same. 2^e leaves every scale
that moves at least 11 bits (N_i, M >= 2^11), so none moves by more than 2^-11 of itself; an add
whose scales are too far apart for that under 2^15 is left as it is. `plan_add` confirms every add
over all its inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

OUT_BITS = 11  # the smallest scale that moves becomes N 2^e with N in [2^11, 2^12)
MAX_MULTIPLE = 2**15


@dataclass
class Int8Add:
    """One int8 add of a QDQ model: the scales of its operands, then its result's, by initializer name."""

    node: str
    scales: list[str]


def scalar_scale(inits: dict[str, onnx.TensorProto], name: str) -> np.float32 | None:
    tensor = inits.get(name)
    if tensor is None or list(tensor.dims) != [] or tensor.data_type != onnx.TensorProto.FLOAT:
        return None
    return np.float32(numpy_helper.to_array(tensor))


def _zero_int8(inits: dict[str, onnx.TensorProto], node: onnx.NodeProto) -> bool:
    zero = inits.get(node.input[2]) if len(node.input) > 2 else None
    return zero is not None and zero.data_type == onnx.TensorProto.INT8 and not numpy_helper.to_array(zero).any()


def graph_maps(model: onnx.ModelProto) -> tuple[dict[str, onnx.TensorProto], dict[str, onnx.NodeProto],
                                                 dict[str, list[onnx.NodeProto]]]:
    """The graph's initializers by name, each tensor's producing node and its consuming nodes."""
    graph = model.graph
    users: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)
    return {t.name: t for t in graph.initializer}, {out: n for n in graph.node for out in n.output}, users


def qdq_scale_name(inits: dict[str, onnx.TensorProto], node: onnx.NodeProto | None, op: str) -> str | None:
    """The scale initializer of `node` if it is an `op` (QuantizeLinear or DequantizeLinear) of a
    computed tensor (not a constant: a bias) with a scalar scale and a zero int8 zero point."""
    if node is None or node.op_type != op or node.input[0] in inits or not _zero_int8(inits, node):
        return None
    return node.input[1] if scalar_scale(inits, node.input[1]) is not None else None


def int8_adds(model: onnx.ModelProto, arities: set[int]) -> list[Int8Add]:
    """The Add and Sum nodes of `arities` operands whose operands all come through DequantizeLinear of
    computed int8 tensors and whose result goes to one QuantizeLinear, directly or through a Relu,
    all symmetric with scalar scales."""
    inits, producer, users = graph_maps(model)
    adds = []
    for node in model.graph.node:
        if node.op_type not in ("Add", "Sum") or len(node.input) not in arities:
            continue
        after = users.get(node.output[0], [])
        if len(after) == 1 and after[0].op_type == "Relu":  # (the accelerator applies it after rounding)
            after = users.get(after[0].output[0], [])
        scales = [qdq_scale_name(inits, producer.get(name), "DequantizeLinear") for name in node.input]
        scales.append(qdq_scale_name(inits, after[0], "QuantizeLinear") if len(after) == 1 else None)
        if all(scales):
            adds.append(Int8Add(node.name, [s for s in scales if s]))
    return adds


def _exponent(value: float) -> int:
    """The e of value = odd * 2^e."""
    mantissa, exp = math.frexp(value)
    m = int(mantissa * 2**53)
    return exp - 53 + ((m & -m).bit_length() - 1)


def _exact(scales: list[np.float32]) -> bool:
    from tvmx.offload.layers import Rejected, plan_add  # (the offload package loads TVM)

    try:
        plan_add((1,), scales[:-1], scales[-1], relu=False)
    except Rejected:
        return False
    return True


def count_exact(model: onnx.ModelProto, arities: set[int]) -> tuple[int, int]:
    """(adds the accelerator executes exactly at the model's scales, int8 adds)."""
    inits = {t.name: t for t in model.graph.initializer}
    adds = int8_adds(model, arities)
    return sum(_exact([np.float32(scalar_scale(inits, s)) for s in add.scales]) for add in adds), len(adds)


def exact_add_scales(model: onnx.ModelProto, arities: set[int]) -> tuple[dict[str, float], int]:
    """New values for the scale initializers of the int8 adds the accelerator would execute
    otherwise than the QDQ graph (see the module docstring), and how many adds they make exact. A
    scale that an earlier add has fixed, by moving it or by being exact already, is kept. Activation
    scales equal before stay equal (a Concat's and that of its input with the widest range, which
    then needs no requantization)."""
    inits = {t.name: t for t in model.graph.initializer}
    by_value: dict[float, list[str]] = {}
    for name in dict.fromkeys(n.input[1] for n in model.graph.node
                              if n.op_type == "QuantizeLinear" and n.input[0] not in inits):
        value = scalar_scale(inits, name)
        if value is not None:
            by_value.setdefault(float(value), []).append(name)
    moved: dict[str, float] = {}
    fixed: set[str] = set()
    made = 0
    for add in int8_adds(model, arities):
        old = [float(moved.get(s, scalar_scale(inits, s))) for s in add.scales]  # type: ignore[arg-type]
        equal = [by_value.get(float(scalar_scale(inits, s)), [s]) for s in add.scales]  # type: ignore[arg-type]
        if _exact([np.float32(v) for v in old]):
            fixed.update(*equal)
            continue
        keep = [s in fixed for s in add.scales]
        # Every scale that moves keeps OUT_BITS bits below its leading one: moved by at most 2^-OUT_BITS.
        e = min(_exponent(v) if k else math.floor(math.log2(v)) - OUT_BITS for v, k in zip(old, keep, strict=True))
        new = [v if k else max(1, round(v / 2.0**e)) * 2.0**e for v, k in zip(old[:-1], keep[:-1], strict=True)]
        m = 2 * math.floor(old[-1] / 2.0**e / 2) + 1  # an odd multiple, within 2^e of the output scale
        new.append(old[-1] if keep[-1] else m * 2.0**e)
        multiples = [v / 2.0**e for v in new]
        if max(multiples) >= MAX_MULTIPLE or sum(multiples[:-1]) >= MAX_MULTIPLE:
            continue
        if not _exact([np.float32(v) for v in new]):
            continue
        for names, k, v in zip(equal, keep, new, strict=True):
            if not k:
                moved.update(dict.fromkeys(names, v))
        fixed.update(*equal)
        made += 1
    return moved, made


def with_scales(model: onnx.ModelProto, scales: dict[str, float]) -> onnx.ModelProto:
    """A copy of `model` with these scalar scale initializers set to these values (to plan with: the
    model itself is quantized again with them as overrides, so that the bias scales follow)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    for init in copy.graph.initializer:
        if init.name in scales:
            init.CopyFrom(numpy_helper.from_array(np.array(scales[init.name], np.float32), init.name))
    return copy


def quant_overrides(model: onnx.ModelProto, scales: dict[str, float]) -> dict[str, list[dict[str, Any]]]:
    """onnxruntime's TensorQuantOverrides that give these scale initializers these values: every
    tensor that a QuantizeLinear quantizes with one gets it (and a MaxPool or Reshape that shares
    its input's scale keeps sharing it)."""
    overrides: dict[str, list[dict[str, Any]]] = {}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and node.input[1] in scales:
            overrides[node.input[0]] = [{"scale": np.array(scales[node.input[1]], np.float32),
                                         "zero_point": np.array(0, np.int8)}]
    return overrides
