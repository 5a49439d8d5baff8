"""A BatchNormalization between int8 tensors (onnxruntime's QDQ graph without pre-processing) as a
per-channel table lookup: the same bytes as onnxruntime, with and without the ReLU and the MaxPool
after it, the pool moved before the lookup only where every channel's table never decreases."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmx.offload.channel_tables import channel_tables
from tvmx.offload.lookups import lower_lookups

C = 8


def _model(seed: int, relu: bool, pool: bool, negative_gamma: bool) -> onnx.ModelProto:
    """q (int8) -> DQ -> BatchNormalization -> Q -> DQ [-> Relu -> Q -> DQ] [-> MaxPool -> Q -> DQ] -> Q -> y"""
    rng = np.random.default_rng(seed)
    gamma = rng.uniform(0.5, 1.5, C).astype(np.float32)
    if negative_gamma:
        gamma[::3] *= -1
    values = {"si": 0.05, "sb": 0.07, "z": 0, "gamma": gamma, "beta": rng.standard_normal(C) * 0.3,
              "mean": rng.standard_normal(C) * 0.3, "var": rng.uniform(0.3, 2.0, C)}
    inits = [numpy_helper.from_array(np.asarray(v, np.int8 if k == "z" else np.float32), k) for k, v in values.items()]
    nodes = [helper.make_node("DequantizeLinear", ["q", "si", "z"], ["d0"]),
             helper.make_node("BatchNormalization", ["d0", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-5)]
    last = "bn"
    stages = (["Relu"] if relu else []) + (["MaxPool"] if pool else [])
    for i, op in enumerate(stages):
        nodes += [helper.make_node("QuantizeLinear", [last, "sb", "z"], [f"q{i}"]),
                  helper.make_node("DequantizeLinear", [f"q{i}", "sb", "z"], [f"d{i + 1}"])]
        attrs: dict[str, Any] = {"kernel_shape": [2, 2], "strides": [2, 2]} if op == "MaxPool" else {}
        nodes.append(helper.make_node(op, [f"d{i + 1}"], [f"o{i}"], **attrs))
        last = f"o{i}"
    nodes.append(helper.make_node("QuantizeLinear", [last, "sb", "z"], ["y"]))
    out = [1, C, 8, 8] if pool else [1, C, 16, 16]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("q", TensorProto.INT8, [1, C, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, out)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _every_value(seed: int) -> np.ndarray:
    """Each channel holds all 256 int8 values, in its own order."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(np.arange(-128, 128)) for _ in range(C)]).astype(np.int8).reshape(1, C, 16, 16)


def _run_tvm(mod: Any, q: np.ndarray) -> np.ndarray:
    import tvm
    from tvm import relax

    mod = relax.transform.LegalizeOps()(mod)
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(q)).numpy()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("relu", "pool", "negative_gamma"), [(False, False, False), (True, False, True),
                                                              (True, True, False), (False, True, True)])
def test_batch_norm_between_int8_tensors_is_a_lookup_with_onnxruntime_values(relu: bool, pool: bool,
                                                                               negative_gamma: bool) -> None:
    from tvm.relax.frontend.onnx import from_onnx

    model = _model(3, relu, pool, negative_gamma)
    q = _every_value(4)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # as verify runs QDQ graphs
    want = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
        None, {"q": q})[0]
    mod = channel_tables(from_onnx(model, keep_params_in_input=False))
    text = mod["main"].script()
    assert "batch_norm" not in text and "R.take(" in text
    assert ("R.nn.relu" in text) is False
    if pool:  # the pool reads the input's dequantize (moved before the lookup) only if every table is monotone
        moved = text.index("max_pool2d") < text.index("R.take(")
        assert moved == (not negative_gamma)
    got = _run_tvm(lower_lookups(mod), q)
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {want.size} differ"
    assert "channel_lookup" in lower_lookups(mod).script()


def test_a_chain_without_per_channel_constants_is_left_alone() -> None:
    """quantize(relu(dequantize(x))) is the accelerator's fused ReLU or an int8_tables lookup."""
    from tvm.relax.frontend.onnx import from_onnx

    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]), helper.make_node("Relu", ["d"], ["r"]),
             helper.make_node("QuantizeLinear", ["r", "s", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("q", TensorProto.INT8, [1, C, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.INT8, [1, C, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    mod = from_onnx(model, keep_params_in_input=False)
    assert channel_tables(mod) is mod


def test_batch_norm_arithmetic_is_onnxruntimes_to_the_bit() -> None:
    """The float32 values themselves (the quantized tables above only rarely sit on a rounding edge)."""
    from tvmx.offload.channel_tables import _batch_norm

    rng = np.random.default_rng(7)
    channels = 64
    params = [rng.uniform(-1.5, 1.5, channels), rng.standard_normal(channels), rng.standard_normal(channels),
              rng.uniform(0.1, 2.0, channels)]
    gamma, beta, mean, var = (p.astype(np.float32) for p in params)
    inits = [numpy_helper.from_array(a, n) for a, n in zip((gamma, beta, mean, var), "gbmv", strict=True)]
    graph = helper.make_graph([helper.make_node("BatchNormalization", ["x", "g", "b", "m", "v"], ["y"], epsilon=1e-5)],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 256])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    x = (np.arange(-128, 128, dtype=np.float32) * np.float32(0.0371))[None].repeat(channels, 0)
    want = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x[None]})[0][0]
    col = [a.reshape(-1, 1) for a in (gamma, beta, mean, var)]
    got = _batch_norm(x, *col, np.full((1, 1), 1e-5, np.float32))
    assert np.array_equal(got, want), f"{int((got != want).sum())} of {want.size} differ"


def test_a_dequantize_with_other_users_still_starts_a_chain_and_the_longest_chain_wins() -> None:
    """DenseNet: a concatenation's dequantize feeds its BatchNorm and the next concatenation. The
    BatchNorm -> Q -> DQ -> Mul -> Q chain is one lookup (not a float BatchNorm and then a lookup of
    the rest from the later dequantize); the other user keeps the dequantize."""
    from tvm.relax.frontend.onnx import from_onnx

    rng = np.random.default_rng(5)
    values = {"si": 0.05, "sb": 0.07, "sm": 0.09, "z": 0, "gamma": rng.uniform(0.5, 1.5, C),
              "beta": rng.standard_normal(C), "mean": rng.standard_normal(C) * 0.3, "var": rng.uniform(0.3, 2.0, C),
              "w": rng.uniform(0.5, 2.0, (C, 1, 1))}
    inits = [numpy_helper.from_array(np.asarray(v, np.int8 if k == "z" else np.float32), k) for k, v in values.items()]
    nodes = [helper.make_node("DequantizeLinear", ["q", "si", "z"], ["d0"]),
             helper.make_node("BatchNormalization", ["d0", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-5),
             helper.make_node("QuantizeLinear", ["bn", "sb", "z"], ["q1"]),
             helper.make_node("DequantizeLinear", ["q1", "sb", "z"], ["d1"]),
             helper.make_node("Mul", ["d1", "w"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "sm", "z"], ["y"]),
             helper.make_node("Relu", ["d0"], ["r"]),  # the dequantize's other user
             helper.make_node("QuantizeLinear", ["r", "si", "z"], ["y2"])]
    shape = [1, C, 16, 16]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("q", TensorProto.INT8, shape)],
                              [helper.make_tensor_value_info(n, TensorProto.INT8, shape) for n in ("y", "y2")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    q = _every_value(6)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    want = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(
        None, {"q": q})
    mod = channel_tables(from_onnx(model, keep_params_in_input=False))
    text = mod["main"].script()
    assert "batch_norm" not in text and text.count("R.take(") == 1 and "R.multiply" not in text
    import tvm
    from tvm import relax

    vm = relax.VirtualMachine(tvm.compile(relax.transform.LegalizeOps()(lower_lookups(mod)), target="llvm"), tvm.cpu())
    got = vm["main"](tvm.runtime.tensor(q))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g.numpy(), w)
