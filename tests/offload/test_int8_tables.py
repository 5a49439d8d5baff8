"""Lookup tables for elementwise functions of int8 tensors: the same bytes as onnxruntime's
DequantizeLinear -> f -> QuantizeLinear, and the graph rewrite that uses them."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.offload.int8_tables import int8_tables, table


def _qdq_model(op: str | None, s_in: float, s_out: float, z_out: int = 0) -> onnx.ModelProto:
    """q (int8 input) -> DequantizeLinear -> [op] -> QuantizeLinear -> y (int8)"""
    inits = [numpy_helper.from_array(np.array(s_in, np.float32), "si"),
             numpy_helper.from_array(np.array(s_out, np.float32), "so"),
             numpy_helper.from_array(np.array(0, np.int8), "zi"),
             numpy_helper.from_array(np.array(z_out, np.int8), "zo")]
    nodes = [helper.make_node("DequantizeLinear", ["q", "si", "zi"], ["d"])]
    if op:
        nodes.append(helper.make_node(op, ["d"], ["f"]))
    nodes.append(helper.make_node("QuantizeLinear", ["f" if op else "d", "so", "zo"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("q", TensorProto.INT8, [1, 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4, 8, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


CASES = [("Sigmoid", "relax.sigmoid", 0.0734, 1 / 255, 0), ("Sigmoid", "relax.sigmoid", 0.0113, 0.0041, -20),
         ("Tanh", "relax.tanh", 0.031, 1 / 127, 0), ("Exp", "relax.exp", 0.02, 0.1, 0),
         (None, "relax.dequantize", 0.05, 0.0371, 3)]


@pytest.mark.parametrize(("onnx_op", "relax_op", "s_in", "s_out", "z_out"), CASES)
def test_tables_match_onnxruntime(onnx_op: str | None, relax_op: str, s_in: float, s_out: float, z_out: int) -> None:
    q = np.arange(-128, 128, dtype=np.int8).reshape(1, 4, 8, 8)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    session = ort.InferenceSession(_qdq_model(onnx_op, s_in, s_out, z_out).SerializeToString(), options)
    want = session.run(None, {"q": q})[0].reshape(-1)
    assert np.array_equal(table(relax_op, "int8", (s_in, s_out), (0, z_out), "int8"), want)


@pytest.mark.parametrize(("onnx_op", "s_out", "lookup"), [("Sigmoid", 1 / 255, True), (None, 0.0371, True),
                                                          (None, 0.05, False)])
def test_rewrite_to_lookups(onnx_op: str | None, s_out: float, lookup: bool) -> None:
    from tvm.relax.frontend.onnx import from_onnx

    text = int8_tables(from_onnx(_qdq_model(onnx_op, 0.05, s_out), keep_params_in_input=False))["main"].script()
    assert ("R.take(" in text) == lookup
    assert "R.sigmoid" not in text and "R.quantize" not in text  # same scale: nothing left at all
