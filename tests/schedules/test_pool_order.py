"""Average pools and spatial means add their terms in onnxruntime's order: bit-identical results,
checked by building the legalized kernels for the host (no cross compiler or simulator needed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

tvm = pytest.importorskip("tvm")
from tvm import relax  # noqa: E402

from tvmx.schedules.pool_order import legalize_map  # noqa: E402

SCALE = np.float32(0.0570057)  # dequantized int8 values: a 2x2 mean is often a tie in quantization steps


def _onnxruntime(x: np.ndarray, op: str, **attrs: Any) -> np.ndarray:
    graph = helper.make_graph([helper.make_node(op, ["x"], ["y"], **attrs)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # as verify runs QDQ graphs
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]  # type: ignore[no-any-return]


def _tvm(x: np.ndarray, make: Callable[[Any], Any], custom: bool = True) -> np.ndarray:
    bb = relax.BlockBuilder()
    var = relax.Var("x", relax.TensorType(x.shape, "float32"))
    with bb.function("main", [var]):
        with bb.dataflow():
            out = bb.emit_output(make(var))
        bb.emit_func_output(out)
    mod = relax.transform.LegalizeOps(legalize_map() if custom else None)(bb.get())
    vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
    return vm["main"](tvm.runtime.tensor(x)).numpy()  # type: ignore[no-any-return]


def _int8_like(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, shape).astype(np.float32) * SCALE


POOLS = [  # kernel, strides, pads, input size, count_include_pad
    ((2, 2), (2, 2), (0, 0, 0, 0), 16, 0),  # DenseNet's transitions
    ((3, 3), (1, 1), (1, 1, 1, 1), 8, 0),  # Inception v2
    ((3, 3), (2, 2), (1, 1, 1, 1), 16, 0),  # ShuffleNet
    ((3, 3), (1, 1), (1, 1, 1, 1), 2, 0),  # every window clipped by the padding
    ((7, 7), (1, 1), (0, 0, 1, 1), 6, 0),  # Inception v1's last pool
    ((7, 7), (1, 1), (0, 0, 0, 0), 7, 0),  # a window that is the whole input: a global pool
    ((5, 5), (2, 2), (2, 2, 2, 2), 16, 0),
    ((3, 3), (1, 1), (1, 1, 1, 1), 8, 1),
]


@pytest.mark.parametrize(("kernel", "strides", "pads", "size", "include_pad"), POOLS)
def test_average_pool_is_bit_identical_to_onnxruntime(kernel: tuple[int, int], strides: tuple[int, int],
                                                       pads: tuple[int, int, int, int], size: int,
                                                       include_pad: int) -> None:
    x = _int8_like((1, 32, size, size), size)
    want = _onnxruntime(x, "AveragePool", kernel_shape=list(kernel), strides=list(strides), pads=list(pads),
                        count_include_pad=include_pad)
    got = _tvm(x, lambda v: relax.op.nn.avg_pool2d(v, kernel, strides, pads, count_include_pad=bool(include_pad)))
    np.testing.assert_array_equal(got, want)


def test_topi_order_differs_so_the_test_can_fail() -> None:
    """TVM's own legalization adds rows first: on the same inputs it is not bit-identical."""
    x = _int8_like((1, 32, 16, 16), 1)
    want = _onnxruntime(x, "AveragePool", kernel_shape=[2, 2], strides=[2, 2])
    got = _tvm(x, lambda v: relax.op.nn.avg_pool2d(v, (2, 2), (2, 2)), custom=False)
    assert np.count_nonzero(got != want) > 0


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7, 13])
def test_global_average_pool_is_bit_identical_to_onnxruntime(size: int) -> None:
    x = _int8_like((1, 32, size, size), size)
    want = _onnxruntime(x, "GlobalAveragePool")
    got = _tvm(x, lambda v: relax.op.mean(v, axis=[2, 3], keepdims=True))
    np.testing.assert_array_equal(got, want)


def test_other_means_keep_tvms_legalization() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    got = _tvm(x, lambda v: relax.op.mean(v, axis=[1], keepdims=False))
    np.testing.assert_allclose(got, x.mean(axis=1), rtol=1e-6)
