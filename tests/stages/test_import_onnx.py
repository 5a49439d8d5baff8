from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import relu_add_model, save, single_op_model
from onnx import TensorProto, helper, numpy_helper

from tvmx.errors import InputError, UnsupportedError
from tvmx.stages.artifacts import TensorSpec
from tvmx.stages.import_onnx import (
    _relax_from_onnx,
    check_ops,
    graph_inputs,
    graph_macs,
    load_onnx,
    upsample_scales_as_attribute,
)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="model file not found"):
        load_onnx(tmp_path / "nope.onnx")


def test_not_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00\x01 this is not protobuf \xff\xfe")
    with pytest.raises(InputError, match="not an ONNX model"):
        load_onnx(bad)


def test_unsupported_op_names_op_and_node(tmp_path: Path) -> None:
    model = load_onnx(save(single_op_model("Frobnicate", domain="com.example"), tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedError) as info:
        check_ops(model)
    assert "'Frobnicate'" in info.value.message and "'my_frobnicate'" in info.value.message


def test_dynamic_shape_needs_input_shape(tmp_path: Path) -> None:
    model = load_onnx(save(relu_add_model(["batch", 4]), tmp_path / "m.onnx"))
    with pytest.raises(UnsupportedError) as info:
        graph_inputs(model, {})
    assert "input 'x' has a dynamic shape [batch,4]" in info.value.message
    assert info.value.hint is not None and "--input-shape x=1,4" in info.value.hint
    (spec,) = graph_inputs(model, {"x": (1, 4)})
    assert (spec.name, spec.shape, spec.dtype) == ("x", (1, 4), "float32")


def test_input_shape_for_unknown_input(tmp_path: Path) -> None:
    model = load_onnx(save(relu_add_model([1, 4]), tmp_path / "m.onnx"))
    with pytest.raises(InputError, match="names 'y', which is not a model input"):
        graph_inputs(model, {"y": (1, 4)})


def _upsample(mode: str, constant_scales: bool = True) -> onnx.ModelProto:
    """An opset-9 Upsample, whose scales are an input (an initializer, or one fed at run time)."""
    scales = numpy_helper.from_array(np.array([1, 1, 2, 3], np.float32), "s")
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])]
    if not constant_scales:
        inputs.append(helper.make_tensor_value_info("s", TensorProto.FLOAT, [4]))
    graph = helper.make_graph([helper.make_node("Upsample", ["x", "s"], ["y"], mode=mode)], "up", inputs,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 12])],
                              [scales] if constant_scales else [])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)], ir_version=8)


def test_upsample_constant_scales_reach_tvms_converter() -> None:
    """TVM's converter reads the scales attribute of opset 7; the model is copied, not changed."""
    model = _upsample("linear")
    mod = _relax_from_onnx(model, [TensorSpec("x", (1, 2, 3, 4), "float32")])
    assert "resize2d" in mod.script() and "R.Tensor((1, 2, 6, 12)" in mod.script()
    assert not model.graph.node[0].attribute[1:]  # only its mode


@pytest.mark.parametrize(("mode", "constant", "words"), [
    ("nearest", True, "in mode nearest: TVM 0.27's converter rounds"),  # a wrong result otherwise
    ("linear", False, "takes its scales from a run-time value ('s')"),
])
def test_upsample_the_converter_gets_wrong_is_refused(mode: str, constant: bool, words: str) -> None:
    with pytest.raises(UnsupportedError, match=re.escape(words)) as info:
        upsample_scales_as_attribute(_upsample(mode, constant))
    assert "Upsample node '#0'" in str(info.value) and info.value.hint


def test_graph_macs_counts_grouped_convs_and_transposed_gemms() -> None:
    """A grouped conv (each output: C_in/groups x kh x kw) and a Gemm with transA (K from A's rows)."""
    w = numpy_helper.from_array(np.zeros((8, 2, 3, 3), np.float32), "w")  # 8 out, 4 in, groups 2
    b = numpy_helper.from_array(np.zeros((8 * 4 * 4, 5), np.float32), "b")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], group=2),
             helper.make_node("Reshape", ["c", "s"], ["r"]),
             helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),
             helper.make_node("Gemm", ["t", "b"], ["y"], transA=1)]
    shape = numpy_helper.from_array(np.array([1, -1], np.int64), "s")
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], [w, b, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert graph_macs(model) == 8 * 4 * 4 * (2 * 3 * 3) + 5 * 128
