"""Small ONNX models for error-path tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DATA = Path(__file__).resolve().parent / "data"


def save(model: onnx.ModelProto, path: Path) -> Path:
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def single_op_model(op: str, shape: list[int | str] | None = None, domain: str = "",
                    **attrs: object) -> onnx.ModelProto:
    shape = shape or [1, 4]
    node = helper.make_node(op, ["x"], ["y"], name=f"my_{op.lower()}", domain=domain, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def relu_add_model(shape: list[int | str]) -> onnx.ModelProto:
    """y = relu(x) + c, with a dynamic-capable input shape."""
    c = numpy_helper.from_array(np.full([1, 4], 0.5, np.float32), "c")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], [c])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
