"""Softmax of int8 tensors with a table of exponentials: the same bytes as onnxruntime's
DequantizeLinear -> Softmax -> QuantizeLinear, and the rewrite leaves no float exp behind."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.offload.softmax_table import exp_table, softmax_tables

SHAPE = [2, 7, 40]


def _model(s_in: float, z_in: int, s_out: float, z_out: int, axis: int = -1, opset: int = 17,
           shape: list[int] = SHAPE) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(np.array(s_in, np.float32), "si"),
             numpy_helper.from_array(np.array(z_in, np.int8), "zi"),
             numpy_helper.from_array(np.array(s_out, np.float32), "so"),
             numpy_helper.from_array(np.array(z_out, np.int8), "zo")]
    nodes = [helper.make_node("DequantizeLinear", ["q", "si", "zi"], ["d"]),
             helper.make_node("Softmax", ["d"], ["p"], axis=axis),
             helper.make_node("QuantizeLinear", ["p", "so", "zo"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("q", TensorProto.INT8, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _run_tvm(mod: Any, q: np.ndarray) -> np.ndarray:
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(relax.transform.LegalizeOps()(mod), target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(q)).numpy()  # type: ignore[no-any-return]


def test_exp_table_holds_the_float32_difference_of_each_pair() -> None:
    s = np.float32(0.06805368512868881)  # attention's Q.K^T scale: fl(a s) - fl(b s) != fl((a - b) s) here
    table = exp_table("int8", float(s), 0.0).reshape(256, 256)
    for m, q in [(127, -128), (5, 3), (-7, -7), (100, -3)]:
        want = np.float32(np.exp(np.float64(np.float32(q) * s - np.float32(m) * s)))
        assert table[m + 128, q + 128] == want


# scales from the attention sample and from a wide-range logit; a non-zero input zero point
@pytest.mark.parametrize(("s_in", "z_in", "s_out", "z_out"), [(0.06805368512868881, 0, 1 / 127, 0),
                                                            (0.2113, -9, 1 / 255, -128), (0.0123, 4, 0.0061, 0)])
# opset 11's Softmax (ResNet-50's) imports as a reshape to 2-D, the softmax and a reshape back
@pytest.mark.parametrize(("opset", "shape"), [(17, SHAPE), (11, [14, 40])], ids=["opset17", "opset11"])
def test_rewrite_matches_onnxruntime(s_in: float, z_in: int, s_out: float, z_out: int, opset: int,
                                     shape: list[int]) -> None:
    from tvm.relax.frontend.onnx import from_onnx

    model = _model(s_in, z_in, s_out, z_out, axis=len(shape) - 1, opset=opset, shape=shape)
    mod = softmax_tables(from_onnx(model, keep_params_in_input=False))
    text = mod["main"].script()
    assert "R.nn.softmax" not in text and "R.dequantize" not in text
    q = np.random.default_rng(3).integers(-128, 128, shape, dtype=np.int8)
    q.reshape(-1, shape[-1])[0, :] = 127  # a row of ties at the top of the range
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # the QDQ graph as written
    want = ort.InferenceSession(model.SerializeToString(), options).run(None, {"q": q})[0]
    np.testing.assert_array_equal(_run_tvm(mod, q), want)


def test_softmax_over_another_axis_stays_float() -> None:
    from tvm.relax.frontend.onnx import from_onnx

    mod = softmax_tables(from_onnx(_model(0.05, 0, 1 / 127, 0, axis=1), keep_params_in_input=False))
    assert "R.nn.softmax" in mod["main"].script()
