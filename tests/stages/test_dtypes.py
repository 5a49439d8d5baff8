"""Inputs and outputs of every dtype the C kernels and the ELF's I/O sections carry, end to end
against onnxruntime; half precision is refused with one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as TP
from onnx import helper

from tvmx.errors import UnsupportedError
from tvmx.options import make_options
from tvmx.target import load_target
from tvmx.verify.flow import verify_model


def _model(path: Path, in_type: int, ops: list[tuple[str, dict[str, int]]]) -> Path:
    """One input x [2, 8] and one output per op applied to it."""
    nodes = [helper.make_node(op, ["x"], [f"y{i}"], name=f"n{i}", **attrs) for i, (op, attrs) in enumerate(ops)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", in_type, [2, 8])],
                              [helper.make_tensor_value_info(f"y{i}", TP.UNDEFINED, None) for i in range(len(ops))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model = onnx.shape_inference.infer_shapes(model)
    onnx.save(model, str(path))
    return path


CASES = {  # input dtype: ops, whose outputs cover the dtypes too
    "float64": (TP.DOUBLE, [("Exp", {}), ("Abs", {}), ("Softmax", {"axis": 1}), ("Cast", {"to": TP.FLOAT})]),
    "int32": (TP.INT32, [("Abs", {}), ("ReduceSum", {"keepdims": 0}), ("ReduceMean", {"axes": [1]}),
                        ("Cast", {"to": TP.FLOAT})]),  # an integer mean truncates, in int32
    "int64": (TP.INT64, [("Neg", {}), ("ArgMax", {"axis": 1}), ("Cast", {"to": TP.DOUBLE})]),
    "bool": (TP.BOOL, [("Not", {}), ("Cast", {"to": TP.INT32})]),
    "int16": (TP.INT16, [("Neg", {}), ("Cast", {"to": TP.FLOAT})]),
    "float32": (TP.FLOAT, [("IsNaN", {}), ("IsInf", {}), ("Cast", {"to": TP.INT64})]),
}


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_dtypes_match_onnxruntime(tmp_path: Path, name: str) -> None:
    in_type, ops = CASES[name]
    path = _model(tmp_path / f"{name}.onnx", in_type, ops)
    report = verify_model(path, load_target("rv64gc"), make_options(), tmp_path / "b", seed=2)
    assert report.comparison.ok, report.comparison.summary()
    assert {str(v.dtype) for v in report.outputs.values()} == {str(v.dtype) for v in report.reference.values()}
    assert len(report.outputs) == len(ops)
    assert str(next(iter(report.reference.values())).dtype) != "object"


def test_float16_input_is_refused(tmp_path: Path) -> None:
    path = _model(tmp_path / "half.onnx", TP.FLOAT16, [("Cast", {"to": TP.FLOAT})])
    with pytest.raises(UnsupportedError, match="dtype float16") as info:
        verify_model(path, load_target("rv64gc"), make_options(), tmp_path / "b", seed=2)
    assert info.value.hint and "float64" in info.value.hint


def test_random_inputs_of_each_dtype_are_that_dtype() -> None:
    from tvmx.run.runner import random_inputs

    specs = [{"name": n, "shape": [3], "dtype": n} for n in ("float64", "int16", "int64", "bool")]
    arrays = random_inputs(specs, 0)
    assert [str(arrays[s["name"]].dtype) for s in specs] == ["float64", "int16", "int64", "bool"]
    assert np.isfinite(arrays["float64"]).all()
