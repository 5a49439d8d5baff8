"""Which outputs verify compares in quantization steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvmx.verify.reference import quantized_output_scales


def test_int8_outputs_are_compared_in_steps(tmp_path: Path) -> None:
    """A dequantized output in steps of its scale, a QuantizeLinear's integers in steps of one, a float
    output by rtol/atol."""
    consts = [numpy_helper.from_array(np.array(0.5, np.float32), "s"),
              numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
             helper.make_node("Relu", ["x"], ["f"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("q", TensorProto.INT8, [4]),
                               helper.make_tensor_value_info("d", TensorProto.FLOAT, [4]),
                               helper.make_tensor_value_info("f", TensorProto.FLOAT, [4])], consts)
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), str(path))
    assert quantized_output_scales(path) == {"q": 1.0, "d": 0.5}
