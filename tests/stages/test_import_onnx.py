from __future__ import annotations

from pathlib import Path

import pytest
from helpers import relu_add_model, save, single_op_model

from tvmx.errors import InputError, UnsupportedError
from tvmx.stages.import_onnx import check_ops, graph_inputs, load_onnx


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
