"""Exact graph rewrites: a Clip that is a ReLU on int8 values becomes one (any other stays a Clip); a
two-input Sum becomes the Add it is."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.offload.qdq_simplify import clip_to_relu


def _qdq_clip(hi: float, out_scale: float) -> onnx.ModelProto:
    """x -> Q(s) -> DQ(s) -> Clip(0, hi) -> Q(out_scale) -> DQ -> y"""
    inits = [numpy_helper.from_array(np.array(v, dt), n) for n, v, dt in (
        ("s", 6 / 127, np.float32), ("so", out_scale, np.float32), ("z", 0, np.int8), ("lo", 0.0, np.float32),
        ("hi", hi, np.float32))]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("Clip", ["d", "lo", "hi"], ["c"]),
             helper.make_node("QuantizeLinear", ["c", "so", "z"], ["q2"]),
             helper.make_node("DequantizeLinear", ["q2", "so", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 2, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize(("hi", "out_scale", "is_relu"), [(6.0, 6 / 127, True), (100.0, 6 / 127, True),
                                                         (1.0, 6 / 127, False), (6.0, 0.01, False)])
def test_clip_becomes_relu_only_when_it_is_one_on_int8(hi: float, out_scale: float, is_relu: bool) -> None:
    from tvm.relax.frontend.onnx import from_onnx

    text = clip_to_relu(from_onnx(_qdq_clip(hi, out_scale), keep_params_in_input=False))["main"].script()
    assert ("R.nn.relu(" in text) == is_relu
    assert ("minimum" in text) != is_relu


def _qdq_sum(inputs: int, relu: bool) -> onnx.ModelProto:
    """int8 inputs -> DequantizeLinear each -> Sum -> [Relu, in float: ResNet's residual] -> QuantizeLinear"""
    inits = [numpy_helper.from_array(np.array(0.1, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    names = [f"x{i}" for i in range(inputs)]
    nodes = [helper.make_node("DequantizeLinear", [n, "s", "z"], [f"d{n}"]) for n in names]
    nodes += [helper.make_node("Sum", [f"d{n}" for n in names], ["y"], name="residual"),
              *([helper.make_node("Relu", ["y"], ["r"])] if relu else []),
              helper.make_node("QuantizeLinear", ["r" if relu else "y", "s", "z"], ["q"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.INT8, [1, 4, 2, 2])
                                           for n in names],
                              [helper.make_tensor_value_info("q", TensorProto.INT8, [1, 4, 2, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize(("inputs", "relu", "offloaded"), [(2, False, True), (2, True, True), (3, False, False)])
def test_a_two_input_sum_is_a_residual_add(inputs: int, relu: bool, offloaded: bool) -> None:
    from tvm.relax.frontend.onnx import from_onnx

    from tvmx.offload.partition import partition

    model = _qdq_sum(inputs, relu)
    mod, report = partition(from_onnx(model, keep_params_in_input=False), model, "gemmini",
                            {"add": "tiled_resadd_auto"}, 16)
    (entry,) = report.entries
    assert (entry.node, entry.op_type, entry.where) == ("residual", "Sum", "accelerator" if offloaded else "cpu")
    assert entry.reason.endswith("+ relu") == (offloaded and relu)
    assert ("R.call_tir(accel_add_0" in mod["main"].script()) == offloaded


def test_back_to_back_reshapes_are_one_and_a_reshape_to_the_same_shape_is_none() -> None:
    from tvm import relax

    from tvmx.offload.qdq_simplify import collapse_reshapes

    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 32, 64), "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            flat = bb.emit(relax.op.reshape(x, (32, 64)))
            back = bb.emit(relax.op.reshape(flat, (1, 32, 64)))
            other = bb.emit(relax.op.reshape(bb.emit(relax.op.reshape(back, (64, 32))), (2048,)))
            out = bb.emit_output(relax.Tuple([back, other]))
        bb.emit_func_output(out)
    text = collapse_reshapes(bb.get())["main"].script()
    assert text.count("R.reshape(") == 1 and "R.shape([2048])" in text, text  # x itself, and x as 2048
