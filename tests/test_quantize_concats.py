"""One scale for a quantized Concat and its inputs (tvmx/quantize_concats.py): onnxruntime's
quantizer calibrates each input on its own, which leaves a requantization per element on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvmx.quantize import quantize_model
from tvmx.quantize_concats import shared_concat_scales
from tvmx.target import load_target


def _qdq(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], name: str, scale: float) -> str:
    inits += [numpy_helper.from_array(np.array(scale, np.float32), f"{name}_scale"),
              numpy_helper.from_array(np.array(0, np.int8), f"{name}_zero_point")]
    nodes += [helper.make_node("QuantizeLinear", [name, f"{name}_scale", f"{name}_zero_point"], [f"{name}_q"]),
              helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale", f"{name}_zero_point"],
                               [f"{name}_dq"])]
    return f"{name}_dq"


def concat_graph(scales: dict[str, float], out_scale: float, relu_before: str | None = None,
                 constant: bool = False) -> onnx.ModelProto:
    """Inputs t (QDQ each, scales[t]; `relu_before` through QDQ -> Relu first) -> Concat -> QDQ
    (out_scale); `constant` adds an initializer input."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    operands = []
    for name, scale in scales.items():
        if name == relu_before:
            nodes.append(helper.make_node("Relu", [_qdq(nodes, inits, f"{name}_pre", scale / 2)], [name]))
        operands.append(_qdq(nodes, inits, name, scale))
    if constant:
        inits.append(numpy_helper.from_array(np.zeros((1, 2), np.float32), "k"))
        operands.append("k")
    nodes.append(helper.make_node("Concat", operands, ["y"], axis=1, name="cat"))
    out = _qdq(nodes, inits, "y", out_scale)
    sources = [f"{n}_pre" if n == relu_before else n for n in scales]
    graph = helper.make_graph(nodes, "cat", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2])
                                             for n in sources],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 2 * len(operands)])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_concat_and_its_inputs_get_the_largest_scale() -> None:
    shared, made = shared_concat_scales(concat_graph({"a": 0.02, "b": 0.05}, 0.05))
    assert made == 1
    assert shared == {"a_scale": np.float32(0.05), "b_scale": np.float32(0.05), "y_scale": np.float32(0.05)}
    # an input calibrated wider than the output (another calibration method) is not clipped
    shared, _ = shared_concat_scales(concat_graph({"a": 0.08, "b": 0.05}, 0.06))
    assert set(shared.values()) == {np.float32(0.08)}


def test_the_scale_before_a_relu_into_an_input_follows() -> None:
    """conv -> QDQ -> Relu -> QDQ -> Concat: the conv's own output scale too (the accelerator's conv
    with ReLU then writes the concatenation's scale)."""
    shared, _ = shared_concat_scales(concat_graph({"a": 0.02, "b": 0.05}, 0.05, relu_before="a"))
    assert set(shared) == {"a_scale", "a_pre_scale", "b_scale", "y_scale"}


def test_concats_at_one_scale_or_with_a_constant_are_left() -> None:
    assert shared_concat_scales(concat_graph({"a": 0.05, "b": 0.05}, 0.05)) == ({}, 0)
    assert shared_concat_scales(concat_graph({"a": 0.02, "b": 0.05}, 0.05, constant=True)) == ({}, 0)


def test_tvmx_quantize_gives_a_concat_one_scale(tmp_path: Path) -> None:
    """Two branches of different ranges, concatenated: after `tvmx quantize`, both inputs of the
    Concat and its output share one scale, through onnxruntime's own overrides."""
    rng = np.random.default_rng(0)
    w1, w2 = (numpy_helper.from_array(rng.normal(0, s, (4, 3, 1, 1)).astype(np.float32), f"w{i}")
              for i, s in ((1, 0.3), (2, 1.0)))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"]), helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["x", "w2"], ["c2"]), helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("Concat", ["r1", "r2"], ["y"], axis=1)]
    graph = helper.make_graph(nodes, "branches", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 4, 4])], [w1, w2])
    src, dst = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(src))
    info = quantize_model(src, dst, load_target("gemmini"), random_n=4, seed=0)
    assert info["shared_concats"] == 1
    model = onnx.load(str(dst))
    inits = {t.name: float(numpy_helper.to_array(t)) for t in model.graph.initializer if not t.dims}
    producer = {o: n for n in model.graph.node for o in n.output}
    concat = next(n for n in model.graph.node if n.op_type == "Concat")
    after = next(n for n in model.graph.node if concat.output[0] in n.input)
    scales = {inits[producer[i].input[1]] for i in concat.input} | {inits[after.input[1]]}
    assert len(scales) == 1
    assert shared_concat_scales(model) == ({}, 0)  # nothing left to share
